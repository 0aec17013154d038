#!/bin/bash
# The whole known-bug catalog on the running kernel: every entry runs its trigger (or SKIPs
# with a reason), and a current kernel has none of these fixed bugs. Also --emit-c and the
# exit status of a usage error.
. "$(dirname "$0")/lib/common.bash"
need_root

run_mmstorm 0 repro --list
n=$(grep -c '^[a-z0-9]' "$WORK/out")
[ "$n" -ge 12 ] || fail "catalog lists $n entries, expected at least 12"
run_mmstorm 2 repro no-such-bug
grep -q "no catalog entry 'no-such-bug'" "$WORK/err" || fail "unknown bug not named"
run_mmstorm 0 repro --emit-c cve-2020-29374 -o "$WORK/r.c"
grep -q 'CVE-2020-29374' "$WORK/r.c" || fail "emitted C lacks its header"

run_mmstorm 0 repro --results "$WORK/results" --run-id h
cat "$WORK/out"
[ "$(grep -c ' host ' "$WORK/out")" = "$n" ] || fail "not every entry has a result"
if grep -E ' host +(REPRODUCED|CRASH|TIMEOUT|ERROR) ' "$WORK/out"; then
	fail "a fixed bug came back on $(uname -r), or a trigger failed"
fi
ran=$(grep -Ec ' host +NOT REPRODUCED ' "$WORK/out" || true)
[ "$ran" -ge 4 ] || fail "only $ran triggers ran to a verdict; the rest SKIPped"
"$RUNJSON" "$WORK/results/h/host/run.json" check
say "$ran of $n entries not reproduced on $(uname -r), the rest SKIP with a reason"
