#!/bin/bash
# A case that overruns its timeout is TIMEOUT, and the next case still runs and passes.
. "$(dirname "$0")/lib/common.bash"
need_root
cat > "$WORK/t.ini" <<'INI'
[global]
workers=1
children=2
size=1M

[overrun]
workload=fork-storm
iterations=1000000000000
timeout=2s

[after]
workload=fork-storm
iterations=2
timeout=60s
INI
run_mmstorm 1 run --results "$WORK/results" --run-id t "$WORK/t.ini"
cat "$WORK/out"
r="$WORK/results/t/run.json"
"$RUNJSON" "$r" check
[ "$("$RUNJSON" "$r" verdict overrun)" = TIMEOUT ] || fail "overrun: $("$RUNJSON" "$r" verdict overrun)"
[ "$("$RUNJSON" "$r" verdict after)" = PASS ] || fail "after: $("$RUNJSON" "$r" verdict after)"
grep -Eq '^not ok 1 overrun' "$WORK/out" || fail "KTAP lacks 'not ok 1 overrun'"
grep -Eq '^ok 2 after' "$WORK/out" || fail "KTAP lacks 'ok 2 after'"
say "TIMEOUT reported, next case ran"
