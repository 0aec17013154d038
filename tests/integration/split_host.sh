#!/bin/bash
# configs/split.ini on the running kernel: THP split paths and MADV_COLLAPSE PASS, userfaultfd
# MINOR/COPY on hugetlb and shmem PASS (or SKIP with a reason), HGM SKIPs without MADV_SPLIT,
# the page-table figures match the cost model, and every knob the suite touched is restored.
. "$(dirname "$0")/lib/common.bash"
need_root
thp=/sys/kernel/mm/transparent_hugepage
[ -r "$thp/enabled" ] || skip "THP not built in"
"$MMSTORM" list > "$WORK/list" 2>&1 || fail "mmstorm list failed"
for w in thp-split hugetlb-minor hgm; do
	grep -q "^  $w: " "$WORK/list" || fail "workload $w is not registered"
done
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
knobs="$thp/enabled $thp/shmem_enabled"
[ -r "$hp" ] && knobs="$knobs $hp"
hp1g=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
[ -r "$hp1g" ] && knobs="$knobs $hp1g"
declare -A before
for k in $knobs; do before[$k]=$(cat "$k"); done

cd "$MMSTORM_SOURCE_DIR"
run_mmstorm 0 run -v --results "$WORK/results" --run-id split configs/split.ini
r="$WORK/results/split/run.json"
"$RUNJSON" "$r" check

# case_index NAME: the case's position in run.json
case_index() {
	local i=0 name
	while read -r name _; do
		[ "$name" = "$1" ] && { echo "$i"; return 0; }
		i=$((i + 1))
	done < <("$RUNJSON" "$r" verdicts)
	fail "no case $1 in $r"
}
verdict() { "$RUNJSON" "$r" get cases "$(case_index "$1")" verdict; }
reason() { "$RUNJSON" "$r" get cases "$(case_index "$1")" reason; }
metric() { "$RUNJSON" "$r" get cases "$(case_index "$1")" repeats 0 metrics "${@:2}"; }

# THP paths need only THP: they must pass (debugfs only where the file is there).
for c in thp-munmap thp-mprotect thp-mremap thp-dontneed thp-fork-cow thp-pin-vmsplice \
	 thp-pin-iouring thp-collapse; do
	v=$(verdict "$c")
	[ "$v" = PASS ] || fail "$c is $v: $(reason "$c")"
	checks=$("$RUNJSON" "$r" get cases "$(case_index "$c")" repeats 0 checks run)
	[ "$checks" -ge 20 ] || fail "$c ran only $checks checks"
done
v=$(verdict thp-debugfs)
if [ -w /sys/kernel/debug/split_huge_pages ]; then
	[ "$v" = PASS ] || fail "thp-debugfs is $v with debugfs mounted: $(reason thp-debugfs)"
else
	[ "$v" = SKIP ] || fail "thp-debugfs is $v without /sys/kernel/debug/split_huge_pages"
fi
say "thp-debugfs: $v"

# The cost model: 8M = 4 PMDs, one 4 KiB PTE table each after the split; mremap adds one per
# moved half.
pte=$(metric thp-munmap vmpte_after_op_bytes last)
[ "$pte" = 16384 ] || fail "thp-munmap: VmPTE after split $pte, expected 16384"
pte=$(metric thp-mremap vmpte_after_op_bytes last)
[ "$pte" = 32768 ] || fail "thp-mremap: VmPTE after split $pte, expected 32768"
n=$(metric thp-munmap vmstat_thp_split_pmd value)
[ "$n" -ge 16 ] || fail "thp-munmap: thp_split_pmd moved by $n, expected at least 16"
n=$(metric thp-collapse vmstat_thp_collapse_alloc value)
[ "$n" -ge 16 ] || fail "thp-collapse: thp_collapse_alloc moved by $n, expected at least 16"
say "split p50: munmap $(metric thp-munmap split_ns p50) ns, fork-cow" \
	"$(metric thp-fork-cow split_ns p50) ns; collapse p50 $(metric thp-collapse collapse_ns p50) ns"

# userfaultfd: PASS, or SKIP with a reason (no pool memory, uffd feature missing).
for c in minor-hugetlb-2m minor-shmem-thp-2m minor-shmem-4k copy-hugetlb-shared \
	 copy-hugetlb-private copy-shmem-4k minor-hugetlb-1g copy-hugetlb-1g-private; do
	v=$(verdict "$c")
	case "$v" in
	PASS) ;;
	SKIP) say "$c SKIP: $(reason "$c")" ;;
	*) fail "$c is $v: $(reason "$c")" ;;
	esac
done
if [ "$(verdict minor-shmem-4k)" = PASS ]; then
	g=$(metric minor-shmem-4k granule_bytes last)
	[ "$g" = 4096 ] || fail "minor-shmem-4k granule $g, expected 4096"
	say "minor fault p50: shmem 4K $(metric minor-shmem-4k fault_resolve_ns p50) ns"
fi
if [ "$(verdict minor-hugetlb-2m)" = PASS ]; then
	g=$(metric minor-hugetlb-2m granule_bytes last)
	[ "$g" = 2097152 ] || fail "minor-hugetlb-2m granule $g, expected 2097152"
	n=$(metric minor-hugetlb-2m fault_messages value)
	[ "$n" = 64 ] || fail "minor-hugetlb-2m: $n faults, expected 16 huge pages x 4 iterations"
	say "minor fault p50: hugetlb 2M $(metric minor-hugetlb-2m fault_resolve_ns p50) ns"
fi

if [ "$(verdict minor-hugetlb-1g)" = PASS ]; then
	g=$(metric minor-hugetlb-1g granule_bytes last)
	[ "$g" = 1073741824 ] || fail "minor-hugetlb-1g granule $g, expected 1073741824"
	say "minor fault p50: hugetlb 1G $(metric minor-hugetlb-1g fault_resolve_ns p50) ns"
fi

# HGM: PASS on a kernel with the series, else SKIP for exactly that reason.
for c in hgm-continue hgm-fork hgm-unmap hgm-mapcount hgm-exit; do
	v=$(verdict "$c")
	case "$v:$(reason "$c")" in
	PASS:*) ;;
	SKIP:"MADV_SPLIT not supported"*) ;;
	SKIP:*) say "$c SKIP: $(reason "$c")" ;;
	*) fail "$c is $v: $(reason "$c")" ;;
	esac
done
say "hgm-continue: $(verdict hgm-continue) $(reason hgm-continue)"

# hwpoison takes memory out of service: refused on the host without --allow-destructive (the
# VM test vm_inject_paths.sh runs it); HGM's 4K variant SKIPs without MADV_SPLIT before that.
for c in minor-hugetlb-hwpoison minor-hugetlb-1g-hwpoison; do
	v=$(verdict "$c")
	[ "$v" = SKIP ] && reason "$c" | grep -q -- --allow-destructive ||
		fail "$c is $v on the host: $(reason "$c")"
done
case "$(verdict hgm-hwpoison):$(reason hgm-hwpoison)" in
PASS:*|SKIP:"MADV_SPLIT not supported"*|SKIP:*destructive*) ;;
*) fail "hgm-hwpoison is $(verdict hgm-hwpoison): $(reason hgm-hwpoison)" ;;
esac

for k in $knobs; do
	now=$(cat "$k")
	[ "$now" = "${before[$k]}" ] || fail "$k is '$now' after the run, was '${before[$k]}'"
done
"$RUNJSON" "$r" verdicts
