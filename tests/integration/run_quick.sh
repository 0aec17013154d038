#!/bin/bash
# The default suite on the running kernel: KTAP on stdout, a valid run.json, all PASS/SKIP.
. "$(dirname "$0")/lib/common.bash"
need_root
cd "$MMSTORM_SOURCE_DIR"
run_mmstorm 0 run --results "$WORK/results" --run-id quick --junit "$WORK/junit.xml" \
	configs/quick.ini
cat "$WORK/out"
grep -q '^KTAP version 1$' "$WORK/out" || fail "no KTAP header"
grep -Eq '^1\.\.[0-9]+$' "$WORK/out" || fail "no KTAP plan"
grep -Eq '^ok [0-9]+ fork-anon$' "$WORK/out" || fail "fork-anon did not pass"
"$RUNJSON" "$WORK/results/quick/run.json" check
[ "$("$RUNJSON" "$WORK/results/quick/run.json" get status)" = complete ] || fail "status"
# Real numbers: fork latency percentiles and forks counted.
forks=$("$RUNJSON" "$WORK/results/quick/run.json" get cases 0 repeats 0 metrics forks value)
p50=$("$RUNJSON" "$WORK/results/quick/run.json" get cases 0 repeats 0 metrics fork_ns p50)
[ "$forks" -gt 0 ] && [ "$p50" -gt 0 ] || fail "no forks measured ($forks, p50 $p50)"
say "fork-anon: $forks forks, fork p50 $p50 ns"
lines=$(wc -l < "$WORK/results/quick/events.jsonl")
[ "$lines" -ge 4 ] || fail "events.jsonl has $lines lines"
grep -q '<testsuites' "$WORK/junit.xml" || fail "no JUnit XML"
"$RUNJSON" "$WORK/results/quick/run.json" verdicts
