#!/bin/bash
# Injection points beyond fork on the running kernel: kill -9 while a userfault is resolved,
# between mremap calls and while io_uring / gup-pin buffers are pinned. Each kill is counted,
# the verdict says it was an injector's doing, and the invariants (hugetlb pools, FOLL_PIN
# pins) are back. Without debugfs only sigkill can target these points here; the fail-nth
# sweeps over them run in vm_inject_paths.sh.
. "$(dirname "$0")/lib/common.bash"
need_root

cat > "$WORK/p.ini" <<'INI'
[global]
name=inject-paths-host
seed=3
timeout=120s
duration=3s

[uffd-copy-sigkill]
workload=hugetlb-minor
inject=sigkill
backing=hugetlb
mode=copy
size=8M
sigkill_point=ioctl:UFFDIO_COPY
sigkill_target=case
sigkill_nth=3

[uffd-shmem-sigkill]
workload=hugetlb-minor
inject=sigkill
backing=shmem
mode=copy
size=1M
sigkill_point=ioctl
sigkill_target=case
sigkill_nth=100

[mremap-sigkill]
workload=thp-split
inject=sigkill
path=mremap
sigkill_point=mremap
sigkill_nth=3

[pinned-sigkill]
workload=thp-split
inject=sigkill
path=pin-iouring
sigkill_point=pinned
sigkill_nth=2

[gup-pinned-sigkill]
workload=gup-pin
inject=sigkill
pins=io_uring
mems=anon,thp
sigkill_point=pinned
sigkill_target=case
sigkill_nth=4
INI
run_mmstorm 0 run --results "$WORK/results" --run-id p "$WORK/p.ini"
cat "$WORK/out"
r="$WORK/results/p/run.json"
"$RUNJSON" "$r" check
get() { "$RUNJSON" "$r" get cases "$@"; }
i=0
ran=0
while read -r name verdict; do
	case "$verdict" in
	PASS) ;;
	SKIP) say "$name: SKIP: $(get "$i" reason)"; i=$((i + 1)); continue ;;
	*) fail "case $name is $verdict: $(get "$i" reason)" ;;
	esac
	# Every case here ends by the kill: counted once, and the reason says whose doing it was.
	[ "$(get "$i" repeats 0 inject faults sigkill)" = 1 ] || fail "$name: not one kill"
	get "$i" reason | grep -q "injector's doing" || fail "$name: $(get "$i" reason)"
	checked=$(get "$i" repeats 0 inject invariants checked)
	bad=$(get "$i" repeats 0 inject invariants failed)
	[ "$checked" -ge 1 ] && [ "$bad" = 0 ] || fail "$name: invariants $checked checked, $bad bad"
	say "$name: PASS, killed at its point, $checked invariant checks"
	ran=$((ran + 1))
	i=$((i + 1))
done < <("$RUNJSON" "$r" verdicts)
[ "$ran" -ge 1 ] || skip "every case skipped on this kernel"
