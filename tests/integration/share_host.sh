#!/bin/bash
# Page-table sharing on the running kernel: 64 processes on one 1 GiB-aligned hugetlb range
# share its PMD table (VmPTE counts it 64 times, PageTables once), uffd-wp turns the sharing
# off, shmem has its own tables per process, and mshare SKIPs with its reason where the
# kernel has no msharefs. The hugetlb pool is raised through the journal and put back.
. "$(dirname "$0")/lib/common.bash"
need_root
[ "$(uname -m)" = x86_64 ] || skip "the page-table model is x86-64's"
pool=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
[ -w "$pool" ] || skip "no 2 MiB hugetlb pool ($pool)"
orig=$(cat "$pool")
cat > "$WORK/share.ini" <<'INI'
[global]
timeout=300s
iterations=1
rounds=4
noreserve=1
populate=32M

[hugetlb-n64]
workload=pmd-share
procs=64

[hugetlb-wp-n8]
workload=pmd-share
procs=8
uffd=wp

[shmem-n8]
workload=pmd-share
layout=shmem
size=64M
populate=0

[mshare-n8]
workload=mshare
procs=8
INI
run_mmstorm 0 run --results "$WORK/results" --run-id s "$WORK/share.ini"
r="$WORK/results/s/run.json"
"$RUNJSON" "$r" check
"$RUNJSON" "$r" verdicts

# gauge RUNJSON CASE-INDEX METRIC: the last value of a gauge
gauge() {
	"$RUNJSON" "$1" get cases "$2" repeats 0 metrics "$3" | sed 's/.*"last":\([-0-9]*\).*/\1/'
}

[ "$("$RUNJSON" "$r" get cases 0 verdict)" = PASS ] ||
	fail "hugetlb-n64: $("$RUNJSON" "$r" get cases 0 reason)"
# 64 x (PUD + shared PMD) in VmPTE; PageTables: 64 PUD tables + the PMD table once.
[ "$(gauge "$r" 0 vmpte_sum_bytes)" = 524288 ] || fail "hugetlb-n64: VmPTE sum"
[ "$(gauge "$r" 0 model_pagetables_bytes)" = 266240 ] || fail "hugetlb-n64: model"
growth=$(gauge "$r" 0 pagetables_growth_bytes)
tol=$(gauge "$r" 0 pt_tolerance_bytes)
say "hugetlb-n64: PageTables growth $growth bytes (tolerance $tol), VmPTE sum 524288, model 266240"
# Sharing must show unless other processes' page tables blur PageTables by more than the gap.
if [ "$tol" -lt $(( (524288 - 266240) / 2 )) ]; then
	[ $((growth + tol)) -lt 524288 ] || fail "hugetlb-n64: PageTables grew $growth, no sharing"
else
	say "hugetlb-n64: the host is too busy to see the sharing in PageTables (tolerance $tol)"
fi

[ "$("$RUNJSON" "$r" get cases 1 verdict)" = PASS ] ||
	fail "hugetlb-wp-n8: $("$RUNJSON" "$r" get cases 1 reason)"
[ "$(gauge "$r" 1 model_pagetables_bytes)" = "$(gauge "$r" 1 vmpte_sum_bytes)" ] ||
	fail "hugetlb-wp-n8: with uffd-wp the model has no sharing"
say "hugetlb-wp-n8: PageTables +$(gauge "$r" 1 pagetables_growth_bytes) bytes (no sharing)"

[ "$("$RUNJSON" "$r" get cases 2 verdict)" = PASS ] ||
	fail "shmem-n8: $("$RUNJSON" "$r" get cases 2 reason)"
# 8 x (32 PTE + 1 PMD + 1 PUD tables) for 64 MiB of 4 KiB pages
[ "$(gauge "$r" 2 vmpte_sum_bytes)" = 1114112 ] || fail "shmem-n8: VmPTE sum"

v=$("$RUNJSON" "$r" get cases 3 verdict)
reason=$("$RUNJSON" "$r" get cases 3 reason)
if grep -qw msharefs /proc/filesystems; then
	[ "$v" = PASS ] || fail "mshare-n8 on a kernel with msharefs: $v: $reason"
else
	[ "$v" = SKIP ] || fail "mshare-n8 without msharefs: $v"
	case "$reason" in
	*"msharefs not in /proc/filesystems (kernel without the mshare series)"*) ;;
	*) fail "mshare-n8: SKIP reason '$reason'" ;;
	esac
fi
say "mshare-n8: $v ($reason)"
[ "$(cat "$pool")" = "$orig" ] || fail "nr_hugepages is $(cat "$pool"), was $orig"
say "nr_hugepages back to $orig"
