#!/bin/bash
# A guest kernel panic in the middle of a suite: that case is CRASH with the panic excerpt,
# the guest is booted again, and every later case still runs.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(any_kernel)
cat > "$WORK/crash.ini" <<'INI'
[global]
name=crash
timeout=120s
iterations=2
size=1M
workers=1
children=2

[before]
workload=fork-storm

[crash]
workload=guest-crash

[after]
workload=fork-storm

[last]
workload=fork-storm
INI
vm_run 1 --run-id c --kernel "$kernel" "$WORK/crash.ini"
cat "$WORK/out" "$WORK/err"
r=$(only_run c)
"$RUNJSON" "$r" check
for c in before after last; do
	[ "$("$RUNJSON" "$r" verdict $c)" = PASS ] || fail "$c: $("$RUNJSON" "$r" verdict $c)"
done
[ "$("$RUNJSON" "$r" verdict crash)" = CRASH ] || fail "crash: $("$RUNJSON" "$r" verdict crash)"
"$RUNJSON" "$r" get cases 1 reason | grep -q 'Kernel panic' || fail "reason lacks the panic"
"$RUNJSON" "$r" get cases 1 repeats 0 console > "$WORK/console.json"
grep -q 'sysrq triggered crash' "$WORK/console.json" || fail "console excerpt lacks the panic"
grep -q 'Call Trace' "$WORK/console.json" || fail "console excerpt lacks the trace"
[ "$("$RUNJSON" "$r" get cases 1 repeats 0 kmsg class)" = CRASH ] || fail "kmsg.class"
[ "$("$RUNJSON" "$r" get status)" = complete ] || fail "status"
grep -q 'guest boot [0-9]* resumed at case 2' "$WORK/out" || fail "no resume at case 2"
grep -Eq '^not ok 2 crash' "$WORK/out" || fail "KTAP lacks 'not ok 2 crash'"
grep -Eq '^ok 4 last' "$WORK/out" || fail "KTAP lacks 'ok 4 last'"
say "CRASH reported with the panic excerpt; the cases after it ran"
