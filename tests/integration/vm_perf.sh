#!/bin/bash
# Tracepoint counts in a guest: the debug bzImage (tracefs mounted by the agent) reports
# tlb:tlb_flush and kmem:mm_page_alloc for fork-storm cases of the quick suite, in case_end.perf
# and among the metrics as perf.<event> counters.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no ../shared/kernels/bzImage (a kernel with tracefs and the tracepoints)"
cd "$MMSTORM_SOURCE_DIR"
printf '[global]\nduration=2s\nworkers=1\nchildren=4\nperf=default\n' > "$WORK/p.ini"
sed -n '/^\[fork-anon\]/,/^$/p' configs/quick.ini >> "$WORK/p.ini"
vm_run 0 --run-id p --kernel "$kernel" "$WORK/p.ini"
r=$(only_run p)
"$RUNJSON" "$r" check
[ "$("$RUNJSON" "$r" verdict fork-anon)" = PASS ] || fail "fork-anon: $("$RUNJSON" "$r" get cases 0 reason)"
forks=$("$RUNJSON" "$r" get cases 0 repeats 0 metrics forks value)
for ev in tlb:tlb_flush kmem:mm_page_alloc page-faults; do
	n=$("$RUNJSON" "$r" get cases 0 repeats 0 perf counters "$ev" value) ||
		fail "no $ev in case_end.perf: $("$RUNJSON" "$r" get cases 0 repeats 0 perf skipped)"
	[ "$n" -gt 0 ] || fail "$ev counted $n"
	m=$("$RUNJSON" "$r" get cases 0 repeats 0 metrics "perf.$ev" value) || fail "no perf.$ev metric"
	[ "$m" = "$n" ] || fail "perf.$ev metric $m differs from the counter $n"
	say "$ev: $n over $forks forks"
done
