#!/bin/bash
# LAVA end to end: the quick suite exported for Debian's 6.12 kernel and the debug bzImage with
# --shards 2, the four jobs run by lava-run on the local qemu device, collected, and compared
# case by case with the verdicts of `mmstorm vm` on the same kernels and suite.
. "$(dirname "$0")/vm_common.bash"
need_vm
command -v lava-run >/dev/null || skip "lava-run not installed (Debian package lava-dispatcher)"
k612=$(deb_kernel 6.12)
[ -n "$k612" ] || skip "no Debian 6.12 kernel in $KERNEL_DIR"
bz=$(shared_bzimage)
[ -n "$bz" ] || skip "no shared/kernels/bzImage"
device=$MMSTORM_SOURCE_DIR/tests/data/lava/qemu-tcg-device.yaml
cd "$MMSTORM_SOURCE_DIR"

# The reference, and the run times the export splits the shards by. Exit 1: the kernels'
# verdicts differ (the Debian kernel has no fault injection), which is not this test's matter.
rc=0
"$MMSTORM" vm --results "$WORK/results" --run-id vm --kernel deb612="$k612" --kernel bz="$bz" \
	configs/quick.ini >"$WORK/vm.out" 2>"$WORK/vm.err" || rc=$?
[ "$rc" -le 1 ] || { cat "$WORK/vm.err"; fail "mmstorm vm exited $rc"; }
for l in deb612 bz; do "$RUNJSON" "$WORK/results/vm/$l/run.json" check >/dev/null; done

run_mmstorm 0 lava export --out "$WORK/jobs" --shards 2 --run-id nightly \
	--timings "$WORK/results/vm/bz/run.json" --kernel deb612="$k612" --kernel bz="$bz" \
	configs/quick.ini
[ "$(ls "$WORK"/jobs/*.yaml | wc -l)" = 4 ] || fail "expected 4 jobs: $(ls "$WORK/jobs")"

logs=()
n=0
for job in "$WORK"/jobs/*.yaml; do
	n=$((n + 1))
	log=$WORK/$(basename "$job" .yaml).log
	t0=$(date +%s%N)
	# lava-run logs to stderr. A guest that crashes fails the job (exit 1): collect judges.
	rc=0
	lava-run --job-id "$$$n" --output-dir "$WORK/lava-$n" --device "$device" "$job" \
		>/dev/null 2>"$log" || rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	say "$(basename "$job"): $secs s, lava-run exit $rc"
	logs+=("$log")
done

# Exit 1 when a case failed (or the kernels differ): the verdicts against mmstorm vm judge.
rc=0
"$MMSTORM" lava collect --results "$WORK/results" --run-id lava "${logs[@]}" \
	>"$WORK/collect.out" 2>&1 || rc=$?
[ "$rc" -le 1 ] || { cat "$WORK/collect.out"; fail "lava collect exited $rc"; }
for l in deb612 bz; do
	r=$WORK/results/lava/$l/run.json
	"$RUNJSON" "$r" check
	[ "$("$RUNJSON" "$r" get env where)" = lava ] || fail "$l: env.where"
	[ "$("$RUNJSON" "$r" get status)" = complete ] || fail "$l: status"
	"$RUNJSON" "$WORK/results/vm/$l/run.json" verdicts >"$WORK/vm-$l.txt"
	"$RUNJSON" "$r" verdicts >"$WORK/lava-$l.txt"
	diff "$WORK/vm-$l.txt" "$WORK/lava-$l.txt" ||
		fail "$l: verdicts under LAVA differ from mmstorm vm"
	# The same numbers as a vm run: compare reads the collected run as any other.
	rc=0
	"$MMSTORM" compare "$WORK/results/vm/$l/run.json" "$r" >"$WORK/cmp-$l.txt" 2>&1 || rc=$?
	[ "$rc" -le 1 ] || { cat "$WORK/cmp-$l.txt"; fail "$l: compare exited $rc"; }
	say "$l: $(wc -l <"$WORK/lava-$l.txt") cases, verdicts equal to mmstorm vm"
done
[ -f "$WORK/results/lava/compare.md" ] || fail "no compare.md for the two kernels"
