#!/bin/bash
# kill -9 of mmstorm in the middle of a hugetlb case; the next `mmstorm run` puts the
# original nr_hugepages back from the journal.
. "$(dirname "$0")/lib/common.bash"
need_root
knob=/proc/sys/vm/nr_hugepages
[ -w "$knob" ] || skip "no writable $knob (hugetlb not built in)"
orig=$(cat "$knob")
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
cat > "$WORK/h.ini" <<INI
[hugetlb-long]
workload=fork-storm
region=hugetlb
size=$(( (free + 8) * 2 ))M
workers=1
children=2
touch_pages=1
duration=120s
timeout=300s
INI
"$MMSTORM" run --results "$WORK/results" --run-id k "$WORK/h.ini" >"$WORK/out" 2>"$WORK/err" &
pid=$!
sysfs=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
raised=
for _ in $(seq 1 300); do
	now=$(cat "$sysfs")
	if [ "$now" != "$orig" ]; then raised=$now; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$raised" ]; then
	kill -9 "$pid" 2>/dev/null || true
	cat "$WORK/out" "$WORK/err"
	skip "the hugetlb case never raised nr_hugepages (could not get pages?)"
fi
sleep 1
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
say "killed mmstorm with nr_hugepages=$(cat "$sysfs") (was $orig)"
[ -s "$MMSTORM_STATE_DIR/journal" ] || fail "no journal left behind by the killed run"
# events.jsonl survived: the case_start is there, every line is complete JSON.
grep -q '"case_start"' "$WORK/results/k/events.jsonl" || fail "events.jsonl lost the case start"
printf '[quick]\nworkload=fork-storm\nsize=1M\nworkers=1\nchildren=1\niterations=1\n' > "$WORK/q.ini"
run_mmstorm 0 run --results "$WORK/results" --run-id again "$WORK/q.ini"
grep -q 'did not finish' "$WORK/err" || fail "no message about the replayed journal"
now=$(cat "$knob")
[ "$now" = "$orig" ] || fail "nr_hugepages is $now, expected the original $orig"
if ls -d "${TMPDIR:-/tmp}"/mmstorm-case-"$pid"-* >/dev/null 2>&1; then
	fail "the killed run's case dir is still there"
fi
say "nr_hugepages restored to $orig after kill -9"
