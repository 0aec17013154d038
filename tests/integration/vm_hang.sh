#!/bin/bash
# A guest that stops making progress (CPUs halted, QEMU alive and silent): the case is
# TIMEOUT once its timeout and the margin have passed, and the run goes on after a new boot.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(any_kernel)
cat > "$WORK/hang.ini" <<'INI'
[global]
name=hang
timeout=120s
iterations=2
size=1M
workers=1
children=2

[before]
workload=fork-storm

[hang]
workload=guest-hang
timeout=5s

[after]
workload=fork-storm
INI
start=$(date +%s)
vm_run 1 --run-id h --hang-margin 5s --kernel "$kernel" "$WORK/hang.ini"
cat "$WORK/out" "$WORK/err"
r=$(only_run h)
"$RUNJSON" "$r" check
[ "$("$RUNJSON" "$r" verdict before)" = PASS ] || fail "before"
[ "$("$RUNJSON" "$r" verdict hang)" = TIMEOUT ] || fail "hang: $("$RUNJSON" "$r" verdict hang)"
"$RUNJSON" "$r" get cases 1 reason | grep -q 'no progress from the guest' || fail "reason"
[ "$("$RUNJSON" "$r" verdict after)" = PASS ] || fail "after: $("$RUNJSON" "$r" verdict after)"
grep -q 'System halted' "$WORK/results/h/"*/console-*.log || fail "the guest did not halt"
say "TIMEOUT after $(( $(date +%s) - start )) s in all; the next case ran"
