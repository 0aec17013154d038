#!/bin/bash
# Error paths beyond fork under QEMU on the shared debug kernel: fail-nth swept over the ioctls
# that resolve userfaults (UFFDIO_COPY / UFFDIO_CONTINUE on hugetlb and shmem, each under fresh
# page tables) and over thp-split's mremap and io_uring pin; memory.max hit during UFFDIO_COPY.
# Every injected failure returns a documented errno, nothing is left half-installed, the
# invariants hold, and each n of a sweep is a KTAP subtest.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no shared/kernels/bzImage"

cat > "$WORK/paths.ini" <<'INI'
[global]
name=inject-paths
seed=1
timeout=150s
duration=90s
iterations=100000
vm_mem=1G

[shmem-copy-nth]
workload=hugetlb-minor
inject=fail-nth
backing=shmem
mode=copy
size=4K
remap=1
nth_point=ioctl:UFFDIO_COPY

[shmem-continue-nth]
workload=hugetlb-minor
inject=fail-nth
backing=shmem
size=4K
remap=1
nth_point=ioctl:UFFDIO_CONTINUE

[hugetlb-continue-nth]
workload=hugetlb-minor
inject=fail-nth
backing=hugetlb
size=2M
remap=1
nth_point=ioctl:UFFDIO_CONTINUE

; A 2M UFFDIO_COPY has over 500 fault sites (one user copy per 4K): the first 24 here.
[hugetlb-copy-nth]
workload=hugetlb-minor
inject=fail-nth
backing=hugetlb
mode=copy
size=2M
remap=1
nth_point=ioctl:UFFDIO_COPY
nth_max=24

[thp-mremap-nth]
workload=thp-split
inject=fail-nth
path=mremap
size=4M
nth_point=mremap

[thp-iouring-nth]
workload=thp-split
inject=fail-nth
path=pin-iouring
size=4M
nth_point=io_uring_register

[shmem-copy-memcg]
workload=hugetlb-minor
inject=memcg
backing=shmem
mode=copy
size=64M
memcg_max=32M
duration=5s

; hwpoison of one 4K piece of a shared hugetlb file: the whole huge page goes, then unpoison.
[hugetlb-hwpoison]
workload=hugetlb-minor
backing=hugetlb
scenario=hwpoison
size=8M
iterations=1

; The same expecting HGM's promise (only the 4K piece lost): mainline must FAIL it.
[hugetlb-hwpoison-4k]
workload=hugetlb-minor
backing=hugetlb
scenario=hwpoison
hwpoison_lost=4k
size=8M
iterations=1
INI

# Exit 1: hugetlb-hwpoison-4k must FAIL (below); every other case must PASS.
vm_run 1 --run-id paths --kernel "$kernel" "$WORK/paths.ini"
cat "$WORK/out"
r=$(only_run paths)
"$RUNJSON" "$r" check
get() { "$RUNJSON" "$r" get cases "$@"; }
[ "$(get 0 verdict)" = SKIP ] && skip "$(basename "$kernel") has no fault injection: $(get 0 reason)"
i=0
while read -r name verdict; do
	if [ "$name" = hugetlb-hwpoison ]; then
		hwp=$i
		i=$((i + 1))
		continue
	fi
	if [ "$name" = hugetlb-hwpoison-4k ]; then
		hwp4k=$i
		i=$((i + 1))
		continue
	fi
	[ "$verdict" = PASS ] || fail "case $name is $verdict: $(get "$i" reason)"
	checked=$(get "$i" repeats 0 inject invariants checked)
	bad=$(get "$i" repeats 0 inject invariants failed)
	[ "$checked" -ge 8 ] && [ "$bad" = 0 ] || fail "$name: invariants $checked checked, $bad bad"
	faults=$(get "$i" repeats 0 metrics injected_faults value)
	[ "$faults" -ge 1 ] || fail "$name: no fault injected"
	say "$name: PASS, $faults faults injected, $checked invariant checks"
	i=$((i + 1))
done < <("$RUNJSON" "$r" verdicts)
# Sweeps that must end: a call ran clean after its allocations had failed one by one.
for k in 0 1 2 4 5; do
	note=$(get $k repeats 0 notes)
	echo "$note" | grep -q 'complete: the call ran clean at n=' || fail "case $k: $note"
done
for k in 0 3 4 5; do
	get $k repeats 0 inject detail fail-nth | grep -q 'ENOMEM' ||
		fail "case $k: no ENOMEM among the sub-results: $(get $k repeats 0 inject detail)"
done
get 3 repeats 0 notes | grep -q 'nth_max reached' || fail "hugetlb-copy-nth: not capped"
# The sweep per n in KTAP: nested subtests under the case, none of them not ok.
grep -qx '    # Subtest: shmem-copy-nth' "$WORK/out" || fail "no KTAP subtest block"
grep -qx '    ok 1 fail-nth n=1 # EFAULT' "$WORK/out" || fail "no subtest for n=1"
grep -q '^    not ok' "$WORK/out" && fail "a sub-result is not ok: $(grep '^    not ok' "$WORK/out")"
say "sweeps: $(for k in 0 1 2 3 4 5; do printf '%s=[%s] ' "$(get $k name)" \
	"$(get $k repeats 0 inject detail fail-nth | cut -c1-60)"; done)"
# hwpoison (no injector: the workload poisons): every mapper loses the whole 2M page with
# SIGBUS lsb 21, the poisoner is told at once, and unpoison-pfn (built in here) gives it back.
[ -n "${hwp:-}" ] || fail "no hugetlb-hwpoison case in $r"
v=$(get "$hwp" verdict)
[ "$v" = PASS ] || fail "hugetlb-hwpoison is $v: $(get "$hwp" reason)"
m() { get "$hwp" repeats 0 metrics "$@"; }
lsb=$(m sigbus_lsb last)
[ "$lsb" = 21 ] || fail "hugetlb-hwpoison: SIGBUS lsb $lsb, expected 21"
[ "$(m poisoner_signalled last)" = 1 ] || fail "hugetlb-hwpoison: the poisoner was not signalled"
[ "$(m hwpoison_ns count)" = 1 ] || fail "hugetlb-hwpoison: $(m hwpoison_ns count) poisonings"
checks=$(get "$hwp" repeats 0 checks run)
[ "$checks" -ge 20 ] || fail "hugetlb-hwpoison ran only $checks checks"
get "$hwp" repeats 0 notes | grep -q 'no unpoison' &&
	fail "hugetlb-hwpoison: no unpoison-pfn on a kernel with CONFIG_HWPOISON_INJECT=y"
say "hugetlb-hwpoison: PASS, $checks checks, lsb 21," \
	"madvise(MADV_HWPOISON) $(m hwpoison_ns p50) ns"
# Expecting only the 4K piece lost, the checks must catch mainline losing the huge page: the
# poisoned piece SIGBUSes with lsb 21, not 12, and the other 511 pieces SIGBUS too.
[ -n "${hwp4k:-}" ] || fail "no hugetlb-hwpoison-4k case in $r"
v=$(get "$hwp4k" verdict)
[ "$v" = FAIL ] || fail "hugetlb-hwpoison-4k is $v on mainline, expected FAIL"
f=$(get "$hwp4k" repeats 0 checks failures)
echo "$f" | grep -q 'rest of the poisoned huge page keeps its data.*511 of 511' ||
	fail "hugetlb-hwpoison-4k: the other 511 pieces were not seen lost: $f"
echo "$f" | grep -q 'si_addr_lsb 12.*lsb 21' || fail "hugetlb-hwpoison-4k: no lsb 21 seen: $f"
echo "$f" | grep -q '"child mapper: the rest of the poisoned huge page' ||
	fail "hugetlb-hwpoison-4k: the child mapper did not see the huge page lost: $f"
say "hugetlb-hwpoison-4k: FAIL as it must on mainline ($(get "$hwp4k" repeats 0 checks failed)" \
	"failed checks)"
