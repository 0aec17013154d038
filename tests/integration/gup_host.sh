#!/bin/bash
# gup-pin on the running kernel: the scenario matrix, random sequences and a fork-latency
# curve; every combination that can run here passes (or is a known kernel issue), the
# accounting checks ran, and the skips name their reasons.
. "$(dirname "$0")/lib/common.bash"
need_root
cat > "$WORK/gup.ini" <<'INI'
[global]
seed=7
timeout=600s

[matrix]
workload=gup-pin
mode=matrix

[random]
workload=gup-pin
mode=random
pins=io_uring,vmsplice,odirect,process-vm,procmem
sequences=2
steps=20

[curve]
workload=gup-pin
mode=fork-curve
mems=anon
size=16M
forks=2
INI
rc=0
"$MMSTORM" run --results "$WORK/results" --run-id g "$WORK/gup.ini" >"$WORK/out" 2>"$WORK/err" ||
	rc=$?
r="$WORK/results/g/run.json"
[ -f "$r" ] || { cat "$WORK/out" "$WORK/err"; fail "no run.json (exit $rc)"; }
"$RUNJSON" "$r" check
# metric NAME CASE: a counter's value (0 when it was never counted)
metric() {
	local v
	v=$("$RUNJSON" "$r" get cases "$2" repeats 0 metrics "$1" value 2>/dev/null) || v=0
	echo "${v:-0}"
}
for i in 0 1; do
	name=$("$RUNJSON" "$r" get cases $i name)
	verdict=$("$RUNJSON" "$r" get cases $i verdict)
	notes=$("$RUNJSON" "$r" get cases $i repeats 0 notes)
	if [ "$verdict" = SKIP ]; then
		say "$name SKIP: $("$RUNJSON" "$r" get cases $i reason)"
		continue
	fi
	[ "$verdict" = PASS ] || { cat "$WORK/out"; fail "$name is $verdict: $notes"; }
	ran=$(metric combos_run $i)
	failed=$(metric combos_failed $i)
	checks=$("$RUNJSON" "$r" get cases $i repeats 0 checks run)
	[ "$ran" -gt 0 ] || fail "$name: no combination ran: $notes"
	[ "$failed" = 0 ] || fail "$name: $failed combinations failed: $notes"
	[ "$checks" -gt "$ran" ] || fail "$name: only $checks checks for $ran combinations"
	# Pin balance is a check of its own per combination; io_uring pins must be counted.
	grep -q 'combinations (pin x memory x scenario)' <<<"$notes" || fail "$name: no tally"
	say "$name: $ran ran, $(metric combos_passed $i) passed," \
	    "$(metric combos_known_issue $i) known issue, $(metric combos_skipped $i) skipped," \
	    "$checks checks"
	say "$name notes: $notes"
done
# The matrix must have run io_uring and vmsplice on anonymous memory (any kernel has them).
pin=$("$RUNJSON" "$r" get cases 0 repeats 0 metrics pin_ns count)
[ "$pin" -gt 0 ] || fail "matrix: no pin latency recorded"
say "matrix pin_ns p50 $("$RUNJSON" "$r" get cases 0 repeats 0 metrics pin_ns p50) ns"
v=$("$RUNJSON" "$r" get cases 2 verdict)
case "$v" in
PASS)
	for p in 0 25 50 75 100; do
		say "curve: fork_ns_pinned_${p}pct p50" \
		    "$("$RUNJSON" "$r" get cases 2 repeats 0 metrics fork_ns_pinned_${p}pct p50) ns"
	done
	;;
SKIP) say "curve SKIP: $("$RUNJSON" "$r" get cases 2 reason)" ;;
*) fail "curve is $v: $("$RUNJSON" "$r" get cases 2 reason)" ;;
esac
[ "$rc" = 0 ] || fail "mmstorm exited $rc"
