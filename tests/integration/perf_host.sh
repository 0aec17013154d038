#!/bin/bash
# perf counters on the running kernel: a fork-storm case counts at least one page fault per
# page its children write, a missing tracepoint or absent PMU is a SKIP entry with its reason
# (the case still passes), perf=none counts nothing, a bad perf= is a config error (exit 2).
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
perf=default

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
EOF
run_mmstorm 0 run --results "$WORK/results" --run-id perf perf.ini
cat "$WORK/out"
json="$WORK/results/perf/run.json"
"$RUNJSON" "$json" check
get() { "$RUNJSON" "$json" get "$@"; }

for c in fork-counted fork-missing-tp fork-none; do
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
say "ok"
