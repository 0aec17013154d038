#!/bin/bash
# Two host "runs" of the same small fork-storm suite compare as same; --aa calibrates; outputs.
#
# Each side pools 8 single-repeat runs, taken alternately (A B A B ...), the design `mmstorm vm`
# uses for two kernels: load from elsewhere on the machine then falls on both sides alike.
# Two back-to-back runs with repeat=8 each would not do on a shared machine: their repeats
# share the conditions of their minutes, and compare rightly reports the difference. An A/A
# comparison still raises a false alarm with probability about alpha per metric; alpha 0.001
# (8 repeats reach it: 2 / C(16, 8) = 0.00016) keeps this test's false-failure rate near 1%.
. "$(dirname "$0")/lib/common.bash"
need_root
command -v jq >/dev/null || skip "jq not installed (Debian: jq)"
cat > "$WORK/suite.ini" <<'INI'
[global]
name=compare-host
seed=1
timeout=60s
duration=300ms
workers=2
children=4

[fork-anon]
workload=fork-storm
region=anon
size=8M

[fork-exit]
workload=fork-storm
region=anon
size=8M
action=exit
INI
A= B=
for i in 1 2 3 4 5 6 7 8; do
	for side in a b; do
		run_mmstorm 0 run --results "$WORK/results" --run-id "$side$i" "$WORK/suite.ini"
	done
	A="$A${A:+,}$WORK/results/a$i"
	B="$B${B:+,}$WORK/results/b$i"
done
say "16 runs done"

# The comparison: exit 0 (no regression), every metric "same" or "insufficient".
run_mmstorm 0 compare --alpha 0.001 --json "$WORK/cmp.json" --md "$WORK/cmp.md" \
	--junit "$WORK/cmp.xml" "A=$A" "B=$B"
run_mmstorm 0 compare --alpha 0.001 "A=$A" "B=$B"
cat "$WORK/out"
grep -q '^mmstorm compare: B against A$' "$WORK/out" || fail "no table header"
grep -q 'correctness: same verdicts' "$WORK/out" || fail "verdicts differ"
[ "$(jq -r .result "$WORK/cmp.json")" = ok ] || fail "result is not ok"
rows=$(jq '.comparisons[0].metrics | length' "$WORK/cmp.json")
[ "$rows" -ge 10 ] || fail "only $rows metric rows"
alarms=$(jq '[.comparisons[0].metrics[] | select(.verdict == "regressed" or
	.verdict == "improved")] | length' "$WORK/cmp.json")
[ "$alarms" = 0 ] || fail "$alarms false alarms in an A/A comparison"
same=$(jq '[.comparisons[0].metrics[] | select(.verdict == "same")] | length' "$WORK/cmp.json")
[ "$same" -ge 1 ] || fail "no metric compares as same"
jq -e '.comparisons[0].metrics[] | select(.case == "fork-anon" and .metric == "fork_ns") |
	.a.n == 8 and .b.n == 8 and (.p | type) == "number" and (.ci | length) == 2' \
	"$WORK/cmp.json" >/dev/null || fail "fork-anon fork_ns row incomplete"
say "$rows metrics: $same same, $((rows - same)) insufficient, 0 regressed or improved"
grep -q '^| fork-anon | fork_ns (p50) |' "$WORK/cmp.md" || fail "no Markdown row"
grep -q '<testsuite name="B against A" tests=' "$WORK/cmp.xml" || fail "no JUnit suite"
if command -v xmllint >/dev/null; then
	xmllint --noout "$WORK/cmp.xml" || fail "JUnit XML is not well-formed"
fi

# --fail-on: a made-up regression fails by default, not with correctness or none. B is A
# with every fork_ns ten times longer: far outside any noise, this checks the plumbing
# (sensitivity is what `mmstorm bench --stats` and the unit tests measure).
S=
for i in 1 2 3 4 5 6 7 8; do
	jq '(.cases[].repeats[].metrics.fork_ns.p50) |= . * 10' "$WORK/results/a$i/run.json" \
		> "$WORK/slow$i.json"
	S="$S${S:+,}$WORK/slow$i.json"
done
run_mmstorm 1 compare --quiet --json "$WORK/slow-cmp.json" "A=$A" "B=$S"
jq -e '[.comparisons[0].metrics[] | select(.metric == "fork_ns") | .verdict] ==
	["regressed", "regressed"]' "$WORK/slow-cmp.json" >/dev/null ||
	fail "10x fork_ns not seen as regressed"
run_mmstorm 0 compare --quiet --fail-on correctness "A=$A" "B=$S"
run_mmstorm 0 compare --quiet --fail-on none "A=$A" "B=$S"
say "10x fork_ns: regressed, exit 1; --fail-on correctness/none: exit 0"

# A/A calibration of all 16 runs pooled: the split halves have 8 repeats each.
run_mmstorm 0 compare --aa "$A,$B" --json "$WORK/aa.json"
jq -e '.schema == "mmstorm-aa/1" and (.splits | length) == 2 and .tests >= 20 and
	(.notes | length) == 0' "$WORK/aa.json" >/dev/null || fail "A/A model incomplete"
say "A/A: $(jq -r '"\(.false_alarms) false alarms in \(.tests) tests"' "$WORK/aa.json")"
run_mmstorm 0 compare --aa "$A,$B"
grep -q '^A/A calibration of ' "$WORK/out" || fail "no A/A summary"
# With the noise floor: still no regression
run_mmstorm 0 compare --quiet --aa "$A,$B" --alpha 0.001 "A=$A" "B=$B"

# bisect-run without booting anything: bad options stop a bisection (128, not 2, which git
# bisect run would take for a bad commit); a tree that does not build is a commit to skip.
run_mmstorm 128 bisect-run --suite "$WORK/suite.ini"
run_mmstorm 128 bisect-run --suite "$WORK/suite.ini" --case nosuchcase --good-run \
	"$WORK/results/a1" --kernel-build "$WORK" --work "$WORK/bisect"
if command -v qemu-system-x86_64 >/dev/null && command -v make >/dev/null; then
	mkdir "$WORK/linux"
	printf 'config MMSTORM_TEST\n\tbool "test"\n' > "$WORK/linux/Kconfig"
	printf 'olddefconfig:\n\t@true\nbzImage:\n\t@echo "no compiler here" >&2; exit 1\n' \
		> "$WORK/linux/Makefile"
	: > "$WORK/linux/.config"
	run_mmstorm 125 bisect-run --suite "$WORK/suite.ini" --case fork-anon --good-run \
		"$WORK/results/a1" --kernel-build "$WORK/linux" --work "$WORK/bisect"
	grep -q 'skip (cannot test): kernel build failed' "$WORK/out" || fail "no build failure"
	grep -q 'no compiler here' "$WORK"/bisect/build-*.log || fail "no build log"
	grep -q ' 125 kernel build failed' "$WORK/bisect/bisect.log" || fail "no bisect.log line"
	say "bisect-run: 128 on bad options, 125 on a failed build"
fi

# Unreadable input is a usage error, not a verdict.
run_mmstorm 2 compare "$WORK/results/a1" "$WORK/nonexistent"
grep -q 'nonexistent' "$WORK/err" || fail "no message for a missing run"
say "PASS"
