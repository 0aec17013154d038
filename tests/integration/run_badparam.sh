#!/bin/bash
# A suite with a broken workload parameter exits 2 naming file:line and the key, running nothing.
. "$(dirname "$0")/lib/common.bash"
cat > "$WORK/bad.ini" <<'INI'
[global]
timeout=10s

[good]
workload=fork-storm
size=1M

[broken]
workload=fork-storm
size=12 apples
INI
run_mmstorm 2 run --results "$WORK/results" "$WORK/bad.ini"
cat "$WORK/err"
grep -q "^$WORK/bad.ini:10: .*size" "$WORK/err" || fail "message lacks file:line and key"
[ ! -e "$WORK/results" ] || fail "a results dir was created: something ran"
# Unknown workload and unknown key, each with its line.
printf '[a]\nworkload=no-such-thing\n' > "$WORK/bad2.ini"
run_mmstorm 2 run --check-only "$WORK/bad2.ini"
grep -q "^$WORK/bad2.ini:2: " "$WORK/err" || fail "unknown workload: $(cat "$WORK/err")"
printf '[a]\nworkload=fork-storm\nsizee=1M\n' > "$WORK/bad3.ini"
run_mmstorm 2 run --check-only "$WORK/bad3.ini"
grep -q "^$WORK/bad3.ini:3: .*sizee" "$WORK/err" || fail "unknown key: $(cat "$WORK/err")"
say "bad suites rejected with file:line"
