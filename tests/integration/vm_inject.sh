#!/bin/bash
# Fault injection under QEMU on the shared debug kernel: fail-nth sweeps a fork to its end,
# failslab / fail_page_alloc / fail_function fail forks, memcg OOM-kills and sigkill kill -9s
# are expected results, and the invariants hold. On the same kernel with e9f180d7cfde
# reverted, the PAT memtype invariant catches the leaked memtypes.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no shared/kernels/bzImage"
revert=$(dirname "$kernel")/bzImage-revert-e9f180d7cfde-untrack-pfn-clear

cat > "$WORK/inject.ini" <<'INI'
[global]
name=inject-short
seed=1
timeout=180s
duration=2s
workers=1
children=2
size=2M
vm_mem=1G

[fork-nth]
workload=fork-storm
inject=fail-nth
duration=150s
iterations=100000

[fork-failslab]
workload=fork-storm
inject=failslab
slab_require=copy_process
slab_point=fork
slab_probability=2

[fork-fail-page-alloc]
workload=fork-storm
inject=fail-page-alloc
page_require=copy_process
page_point=fork
page_probability=5

[fork-fail-function]
workload=fork-storm
inject=fail-function
func_require=copy_process
func_point=fork
func_probability=3
func_task_filter=0

[fork-memcg-oom]
workload=fork-storm
inject=memcg
size=32M
children=4
action=write-all
memcg_max=80M

[fork-sigkill-case]
workload=fork-storm
inject=sigkill
sigkill_target=case
sigkill_delay=700ms
INI

vm_run 0 --run-id fi --kernel "$kernel" "$WORK/inject.ini"
cat "$WORK/out"
r=$(only_run fi)
"$RUNJSON" "$r" check
get() { "$RUNJSON" "$r" get cases "$@"; }
[ "$(get 0 verdict)" = SKIP ] && skip "$(basename "$kernel") has no fault injection: $(get 0 reason)"
check_inject_cases "$r"
# The sweep ran to its end: a clean fork after n - 1 injected failures, each n recorded.
note=$(get 0 repeats 0 notes)
echo "$note" | grep -Eq 'complete: the call ran clean at n=[0-9]{2,}' || fail "fail-nth: $note"
echo "$note" | grep -q 'ENOMEM' || fail "fail-nth: no ENOMEM among the sub-results: $note"
get 0 repeats 0 inject detail fail-nth | grep -Eq '^1(-[0-9]+)? ENOMEM' ||
	fail "fail-nth: no per-n detail"
get 5 reason | grep -q "injector's doing" || fail "sigkill-case: $(get 5 reason)"

[ -f "$revert" ] || skip "no $(basename "$revert"): the negative half needs it"
cat > "$WORK/leak.ini" <<'INI'
[global]
timeout=200s
vm_mem=1G
[pat-leak]
workload=pfnmap
source=devmem
iterations=1
inject=sigkill
sigkill_point=never
INI
vm_run 1 --run-id leak --kernel "$revert" "$WORK/leak.ini"
r=$(only_run leak)
[ "$(get 0 verdict)" = FAIL ] || fail "pat-leak on the revert kernel is $(get 0 verdict)"
"$RUNJSON" "$r" get cases 0 repeats 0 checks failures | grep -q \
	'invariant: PAT memtype entries back to its pre-case value' ||
	fail "the PAT memtype invariant did not catch the leak"
say "revert kernel: PAT memtype entries $(get 0 repeats 0 inject invariants after \
	pat_memtype_entries) after the case, $(get 0 repeats 0 inject invariants before \
	pat_memtype_entries) before: caught"
