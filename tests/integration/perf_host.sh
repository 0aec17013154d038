#!/bin/bash
# perf counters on the running kernel: a fork-storm case counts at least one page fault per
# page its children write, a missing tracepoint or absent PMU is a SKIP entry with its reason
# (the case still passes), perf=none counts nothing, a bad perf= is a config error (exit 2);
# perf_mode=task counts like the default cgroup mode; with tracefs mounted in a private mount
# namespace, a contended fork-storm reports its mmap_lock wait distribution, and thp-split's exact
# VmPTE checks pass with the mmap_lock sampler on (it runs in the runner, not in the case).
. "$(dirname "$0")/lib/common.bash"
need_root
cd "$WORK"
size_mb=8
cat > perf.ini <<EOF
[global]
name=perf-host
seed=7
timeout=120s
iterations=3
workers=1
children=4

[fork-counted]
workload=fork-storm
region=anon
size=${size_mb}M
action=write-all
perf=default,mmap-lock-wait

[fork-missing-tp]
workload=fork-storm
region=anon
size=1M
action=exit
perf=page-faults,nosuchsys:nosuchevent,tlb:*no_such_event*

[fork-none]
workload=fork-storm
region=anon
size=1M
action=exit
perf=none

[fork-counted-task]
workload=fork-storm
region=anon
size=${size_mb}M
action=write-all
perf=page-faults,minor-faults,task-clock
perf_mode=task
EOF
run_mmstorm 0 run --results "$WORK/results" --run-id perf perf.ini
cat "$WORK/out"
json="$WORK/results/perf/run.json"
"$RUNJSON" "$json" check
get() { "$RUNJSON" "$json" get "$@"; }

for c in fork-counted fork-missing-tp fork-none fork-counted-task; do
	[ "$("$RUNJSON" "$json" verdict "$c")" = PASS ] || fail "$c did not pass"
done
skipped=$(get cases 0 repeats 0 perf skipped)
if grep -q '"event":"\*"' <<<"$skipped"; then
	skip "perf counting compiled out: $skipped"
fi

# Children write every page of their copy of the region: one fault per page at least.
forks=$(get cases 0 repeats 0 metrics forks value)
faults=$(get cases 0 repeats 0 perf counters page-faults value)
minor=$(get cases 0 repeats 0 perf counters minor-faults value)
tclock=$(get cases 0 repeats 0 perf counters task-clock value)
pages=$(( forks * size_mb * 256 ))
say "fork-counted: $forks forks writing $pages pages: page-faults $faults, minor $minor," \
    "task-clock $tclock ns"
[ "$forks" -gt 0 ] || fail "no forks"
[ "$faults" -ge "$pages" ] || fail "page-faults $faults < $pages pages written"
[ "$minor" -ge "$pages" ] || fail "minor-faults $minor < $pages pages written"
[ "$tclock" -gt 0 ] || fail "task-clock $tclock"
for ev in context-switches cpu-migrations major-faults; do
	v=$(get cases 0 repeats 0 perf counters "$ev" value)
	[[ "$v" =~ ^[0-9]+$ ]] || fail "$ev: $v"
done

# Every default event is counted or skipped with a reason, never silently absent.
counters=$(get cases 0 repeats 0 perf counters)
for ev in instructions cycles cache-misses dTLB-load-misses iTLB-load-misses \
	  tlb:tlb_flush kmem:mm_page_alloc kmem:mm_page_free kmem:rss_stat \
	  migrate:mm_migrate_pages mmap_lock:mmap_lock_start_locking; do
	if grep -q "\"$ev\":{" <<<"$counters"; then
		say "counted: $ev"
	elif grep -Eq "\"event\":\"$ev\",\"reason\":\"[^\"]+\"" <<<"$skipped"; then
		why=$(grep -o "\"event\":\"$ev\",\"reason\":\"[^\"]*\"" <<<"$skipped")
		say "skipped: $ev: ${why#*\"reason\":}"
	else
		fail "$ev neither counted nor skipped"
	fi
done
if ! grep -q ' - tracefs ' /proc/self/mountinfo; then
	grep -q '"event":"tlb:tlb_flush","reason":"tracefs is not mounted' <<<"$skipped" ||
		fail "without tracefs, tlb:tlb_flush should be skipped for it: $skipped"
	grep -q '"event":"mmap-lock-wait","reason":"tracefs is not mounted' <<<"$skipped" ||
		fail "without tracefs, mmap-lock-wait should be skipped for it: $skipped"
fi

# A tracepoint this kernel lacks: skipped with a reason, the rest still counted.
skipped=$(get cases 1 repeats 0 perf skipped)
grep -Eq '"event":"nosuchsys:nosuchevent","reason":"[^"]+"' <<<"$skipped" ||
	fail "nosuchsys:nosuchevent not skipped with a reason: $skipped"
grep -Eq '"event":"tlb:\*no_such_event\*","reason":"[^"]+"' <<<"$skipped" ||
	fail "tlb:*no_such_event* not skipped with a reason: $skipped"
v=$(get cases 1 repeats 0 perf counters page-faults value)
[ "$v" -gt 0 ] || fail "fork-missing-tp: page-faults $v"

# perf=none: nothing opened, nothing skipped.
[ "$(get cases 2 repeats 0 perf counters)" = "{}" ] || fail "perf=none counted something"
[ "$(get cases 2 repeats 0 perf skipped)" = "[]" ] || fail "perf=none skipped something"

# A bad event name is caught when the suite is read, with file:line.
sed 's/^perf=none$/perf=page-faults,no-such-event/' perf.ini > bad.ini
run_mmstorm 2 run --check-only bad.ini
grep -q "bad.ini:[0-9]*: .*perf.*no-such-event" "$WORK/err" ||
	fail "bad perf= message: $(cat "$WORK/err")"

# Both counting modes count every page the children write: per cgroup (auto, where a cgroup
# of the case's own can be made) and with inherited per-task counters (perf_mode=task).
mode=$(get cases 0 repeats 0 perf mode)
say "fork-counted counted per $mode"
[ "$(get cases 3 repeats 0 perf mode)" = task ] || fail "perf_mode=task not honoured"
forks=$(get cases 3 repeats 0 metrics forks value)
faults=$(get cases 3 repeats 0 perf counters page-faults value)
say "fork-counted-task: $forks forks, page-faults $faults (task mode)"
[ "$faults" -ge $(( forks * size_mb * 256 )) ] || fail "task mode: page-faults $faults < pages"

# mmap_lock waits need the tracepoints, so tracefs: mounted here only in a private mount
# namespace of this test (gone with it; mmstorm itself never mounts tracefs on a host).
unshare -m true 2>/dev/null || skip "no private mount namespace (unshare -m) for tracefs"
cat > lw.ini <<EOF2
[global]
name=perf-lockwait
seed=7
timeout=120s
duration=2s
workers=2
children=4

[fork-contended]
workload=fork-storm
region=anon
size=4M
action=touch
lock_threads=4
perf=page-faults,mmap_lock:mmap_lock_start_locking,mmap-lock-wait

# Exact VmPTE checks with the sampler on: a sampler inside the case process
# (a reader thread, buffers, ring-buffer mappings) made this fail with one page table too many.
[thp-split-sampled]
workload=thp-split
path=fork-cow
iterations=3
perf=default,mmap-lock-wait
EOF2
unshare -m bash -c 'mount --make-rprivate / && mount -t tracefs nodev /sys/kernel/tracing &&
	exec "$0" run --results "$1/results" --run-id lw "$1/lw.ini"' "$MMSTORM" "$WORK" \
	>"$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err"; fail "mmap-lock-wait run"; }
json="$WORK/results/lw/run.json"
[ "$("$RUNJSON" "$json" verdict fork-contended)" = PASS ] || fail "fork-contended did not pass"
skipped=$(get cases 0 repeats 0 perf skipped)
if grep -q '"event":"mmap-lock-wait"' <<<"$skipped"; then
	grep -q '"event":"mmap-lock-wait","reason":"no tracepoint mmap_lock' <<<"$skipped" ||
		fail "mmap-lock-wait skipped for a wrong reason: $skipped"
	skip "this kernel has no mmap_lock tracepoints: $skipped"
fi
lw=$(get cases 0 repeats 0 perf mmap_lock_wait)
pairs=$(get cases 0 repeats 0 perf mmap_lock_wait pairs)
count=$(get cases 0 repeats 0 metrics perf.mmap_lock_wait_ns count)
unit=$(get cases 0 repeats 0 metrics perf.mmap_lock_wait_ns unit)
p50=$(get cases 0 repeats 0 metrics perf.mmap_lock_wait_ns p50)
p999=$(get cases 0 repeats 0 metrics perf.mmap_lock_wait_ns p999)
starts=$(get cases 0 repeats 0 perf counters mmap_lock:mmap_lock_start_locking value)
say "mmap_lock waits: $lw; p50 $p50 ns, p99.9 $p999 ns; start_locking counted $starts"
[ "$unit" = ns ] || fail "perf.mmap_lock_wait_ns unit '$unit'"
[ "$pairs" -gt 0 ] || fail "no mmap_lock wait recorded"
[ "$count" = "$pairs" ] || fail "histogram holds $count waits, $pairs pairs"
# Every wait began with a start_locking the counter saw too (no sample lost: equal or below).
lost=$(get cases 0 repeats 0 perf mmap_lock_wait lost)
[[ "$lost" =~ ^[0-9]+$ ]] || fail "lost: $lost"
[ "$pairs" -le "$starts" ] || fail "$pairs waits but only $starts start_locking events counted"

# The sampler runs in the runner, so the case's own page tables are the workload's alone.
v=$("$RUNJSON" "$json" verdict thp-split-sampled)
if [ "$v" = SKIP ]; then
	say "thp-split-sampled: SKIP ($(get cases 1 reason)): VmPTE with the sampler not checked"
else
	[ "$v" = PASS ] || fail "thp-split with mmap-lock-wait sampled: $v: $(get cases 1 reason)"
	lw=$(get cases 1 repeats 0 perf mmap_lock_wait) ||
		fail "thp-split-sampled: not sampled: $(get cases 1 repeats 0 perf skipped)"
	say "thp-split-sampled: PASS, exact VmPTE checks with the sampler on: $lw"
fi
say "ok"
