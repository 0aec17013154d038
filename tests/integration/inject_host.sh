#!/bin/bash
# Injectors that need no debugfs (sigkill, rlimit, hugetlb-exhaust, pressure, uffd-stall, memcg)
# on the running kernel: PASS or SKIP with a reason, faults counted, invariants checked; then a
# hugetlb page taken behind a case's back is caught as an invariant FAIL naming the rerun.
. "$(dirname "$0")/lib/common.bash"
need_root
# Not `list | grep -q`: under pipefail grep's early exit can fail the pipeline (SIGPIPE).
list=$("$MMSTORM" list)
grep -q '^  sigkill:' <<<"$list" || fail "the injectors are not in the registry"
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
orig_hp=$(cat "$hp" 2>/dev/null || echo none)

cat > "$WORK/h.ini" <<'INI'
[global]
name=inject-host
seed=5
timeout=120s
duration=2s
workers=1
children=4
size=8M

[sigkill-child]
workload=fork-storm
inject=sigkill
sigkill_point=fork
sigkill_target=child
sigkill_nth=2
sigkill_count=10

[sigkill-case]
workload=fork-storm
inject=sigkill
sigkill_target=case
sigkill_delay=700ms

[rlimit-as]
workload=fork-storm
inject=rlimit
rl_limit=2G

[hugetlb-exhaust]
workload=fork-storm
inject=hugetlb-exhaust
region=hugetlb
touch_pages=2

[pressure]
workload=fork-storm
inject=pressure
press_bytes=32M

[uffd-stall]
workload=fork-storm
inject=uffd-stall

[memcg]
workload=fork-storm
inject=memcg
memcg_max=512M
INI
run_mmstorm 0 run --results "$WORK/results" --run-id h "$WORK/h.ini"
cat "$WORK/out"
r="$WORK/results/h/run.json"
"$RUNJSON" "$r" check
get() { "$RUNJSON" "$r" get cases "$@"; }
i=0
while read -r name verdict; do
	case "$verdict" in
	PASS) ;;
	SKIP) say "$name: SKIP: $(get "$i" reason)"; i=$((i + 1)); continue ;;
	*) fail "case $name is $verdict: $(get "$i" reason)" ;;
	esac
	checked=$(get "$i" repeats 0 inject invariants checked)
	bad=$(get "$i" repeats 0 inject invariants failed)
	[ "$checked" -ge 1 ] && [ "$bad" = 0 ] || fail "$name: invariants $checked checked, $bad bad"
	say "$name: PASS, faults $(get "$i" repeats 0 metrics injected_faults value), $checked" \
	    "invariant checks"
	i=$((i + 1))
done < <("$RUNJSON" "$r" verdicts)
# Injected means counted: every kill of sigkill-child, the case kill of sigkill-case.
[ "$(get 0 repeats 0 inject faults sigkill)" = 10 ] || fail "sigkill-child: not 10 kills"
get 1 reason | grep -q "injector's doing" || fail "sigkill-case: $(get 1 reason)"
get 2 repeats 0 notes | grep -q 'RLIMIT_AS soft limit 2147483648' || fail "rlimit: no note"
get 4 repeats 0 notes | grep -Eq 'pressure: (stress-ng|builtin)' || fail "pressure: no note"
if [ "$(get 3 verdict)" = PASS ]; then
	[ "$(get 3 repeats 0 inject faults hugetlb-exhaust)" -ge 1 ] || fail "no pages taken"
fi
[ "$orig_hp" = none ] || [ "$(cat "$hp")" = "$orig_hp" ] || fail "nr_hugepages not restored"

# The invariants can fail: a huge page allocated while a case runs is not back at its end.
[ "$orig_hp" != none ] || skip "no 2 MB hugetlb pool: the negative half needs one"
cat > "$WORK/leak.ini" <<'INI'
[global]
name=inject-leak
seed=9
[leak]
workload=fork-storm
inject=sigkill
sigkill_point=never
size=4M
workers=1
children=2
duration=3s
INI
"$MMSTORM" run --results "$WORK/results" --run-id leak "$WORK/leak.ini" >"$WORK/out" \
	2>"$WORK/err" &
pid=$!
sleep 1.5
echo $((orig_hp + 1)) > "$hp" || true
wait "$pid" && rc=0 || rc=$?
now=$(cat "$hp")
echo "$orig_hp" > "$hp"
[ "$now" -gt "$orig_hp" ] || skip "could not allocate a huge page for the negative test"
cat "$WORK/out"
[ "$rc" = 1 ] || fail "a pool changed behind the case's back: exit $rc, expected 1"
r="$WORK/results/leak/run.json"
reason=$("$RUNJSON" "$r" get cases 0 reason)
for want in "invariant: HugePages_Total (2048kB)" "rerun: mmstorm run --case leak" "seed"; do
	echo "$reason" | grep -qF "$want" || fail "FAIL reason lacks '$want': $reason"
done
say "leak caught: $reason"
