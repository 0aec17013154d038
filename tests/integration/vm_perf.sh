#!/bin/bash
# Tracepoint counts in a guest: the debug bzImage (tracefs mounted by the agent) reports
# tlb:tlb_flush and kmem:mm_page_alloc for fork-storm cases of the quick suite, in case_end.perf
# and among the metrics as perf.<event> counters; a fork-storm with lock_threads reports its
# mmap_lock wait distribution (perf.mmap_lock_wait_ns) with perf=default,mmap-lock-wait, and
# thp-split's exact VmPTE checks pass with that sampler on. One boot runs the three cases.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no ../shared/kernels/bzImage (a kernel with tracefs and the tracepoints)"
cd "$MMSTORM_SOURCE_DIR"
printf '[global]\nduration=2s\nworkers=1\nchildren=4\nperf=default,mmap-lock-wait\n' > "$WORK/p.ini"
sed -n '/^\[fork-anon\]/,/^$/p' configs/quick.ini >> "$WORK/p.ini"
# Threads of each worker contend for its mmap_lock while it forks.
cat >> "$WORK/p.ini" <<EOF2

[fork-contended]
workload=fork-storm
region=anon
size=4M
action=touch
workers=2
lock_threads=4
EOF2
# Exact VmPTE checks while the runner samples mmap_lock waits.
printf '\n' >> "$WORK/p.ini"
sed -n '/^\[thp-split-fork-cow\]/,/^$/p' configs/quick.ini >> "$WORK/p.ini"
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

[ "$("$RUNJSON" "$r" verdict fork-contended)" = PASS ] ||
	fail "fork-contended: $("$RUNJSON" "$r" get cases 1 reason)"
lw=$("$RUNJSON" "$r" get cases 1 repeats 0 perf mmap_lock_wait) ||
	fail "no mmap_lock_wait: $("$RUNJSON" "$r" get cases 1 repeats 0 perf skipped)"
pairs=$("$RUNJSON" "$r" get cases 1 repeats 0 perf mmap_lock_wait pairs)
count=$("$RUNJSON" "$r" get cases 1 repeats 0 metrics perf.mmap_lock_wait_ns count)
mode=$("$RUNJSON" "$r" get cases 1 repeats 0 perf mode)
say "guest mmap_lock waits ($mode mode): $lw;" \
    "p50 $("$RUNJSON" "$r" get cases 1 repeats 0 metrics perf.mmap_lock_wait_ns p50) ns," \
    "p99.9 $("$RUNJSON" "$r" get cases 1 repeats 0 metrics perf.mmap_lock_wait_ns p999) ns"
[ "$pairs" -gt 0 ] || fail "no mmap_lock wait recorded in the guest"
[ "$count" = "$pairs" ] || fail "histogram holds $count waits, $pairs pairs"

v=$("$RUNJSON" "$r" verdict thp-split-fork-cow)
[ "$v" = PASS ] ||
	fail "thp-split-fork-cow with the sampler on: $v: $("$RUNJSON" "$r" get cases 2 reason)"
lw=$("$RUNJSON" "$r" get cases 2 repeats 0 perf mmap_lock_wait) ||
	fail "thp-split-fork-cow not sampled: $("$RUNJSON" "$r" get cases 2 repeats 0 perf skipped)"
say "thp-split-fork-cow: PASS with the sampler on: $lw"
