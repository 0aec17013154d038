#!/bin/bash
# mmstorm fuzz in QEMU on the shared debug kernels. On each bzImage-revert-* present (one
# upstream fix reverted), a short fixed-seed budget finds a failing sequence that the fixed
# bzImage does not have (--baseline replays it there), shrinks it, writes a reproducer, and the
# shrunk sequence still fails when replayed on that kernel. On the fixed bzImage the same seeds
# and budget find nothing.
. "$(dirname "$0")/vm_common.bash"
need_root
need_vm
fixed=$(shared_bzimage)
[ -n "$fixed" ] || skip "no shared/kernels/bzImage"
reverts=$(ls "$(dirname "$fixed")"/bzImage-revert-* 2>/dev/null | grep -v '\.config$' || true)
[ -n "$reverts" ] || skip "no bzImage-revert-* next to $fixed"
SEEDS=${VM_FUZZ_SEEDS:-1,2,3}
BUDGET=${VM_FUZZ_BUDGET:-60s}
# Op groups per kernel. The fixed kernel gets every op: pfnmap ops included, since PAT is
# judged by the model of 6.12's per-VMA tracking (the leaks its memtype_erase() leaves by
# design are predicted; docs/fuzz.md). Each revert kernel gets the ops its bug needs. The
# uffd-wp bug needs a uffd-reg, a uffd-wp and a moving mremap of the same pages; the FOLL_PIN
# ops and THP windows dilute that, and a minute is not enough with them in the mix (docs/fuzz.md
# has the longer run), so CI leaves them out there: the sequences are then the ones drawn
# before they existed (the shared-file window too: -file draws no file windows and no extra
# random numbers).
ops_for() {
	case "$1" in
	*uffd*) echo -pfn,-nth,-pinfoll,-thp,-file ;;
	*pfn*) echo -uffd,-pinfoll,-thp,-file ;;
	*) echo -nth ;;
	esac
}

# A failure on a revert kernel counts only if the fixed kernel does not have it too: --baseline
# replays each one on bzImage in a fresh guest, and the run fails (exit 1) only for failures
# that pass there.
for k in $reverts; do
	name=${k##*/bzImage-revert-}
	rc=0
	"$MMSTORM" fuzz --kernel "$k" --seeds "$SEEDS" --budget "$BUDGET" \
		--ops "$(ops_for "$name")" --max-shrink 200 --max-failures 3 --baseline "$fixed" \
		--results "$WORK/results" --run-id "rev-$name" \
		>"$WORK/out" 2>"$WORK/err" || rc=$?
	dir=$WORK/results/rev-$name/fuzz
	[ "$rc" = 1 ] || { cat "$WORK/out" "$WORK/err"; fail "$name: nothing new found (exit $rc)"; }
	# The first failure the baseline does not have: N of "FAILURE N: ...".
	n=$(awk '/^FAILURE [0-9]+:/ { sub(":", "", $2); f = $2 }
		/^  baseline: +passes on/ { print f; exit }' "$WORK/out")
	[ -n "$n" ] && [ -f "$dir/failure-$n.seq" ] ||
		{ cat "$WORK/out"; fail "$name: no failure marked new in this kernel"; }
	[ -s "$dir/failure-$n.c" ] || fail "$name: no C reproducer for failure $n"
	say "$name: $(grep -m1 "^FAILURE $n:" "$WORK/out")"
	say "$name: $(grep -c '^FAILURE' "$WORK/out") failures, $(grep -c 'baseline: *passes' \
		"$WORK/out") not on bzImage: $(grep -v '^#' "$dir/failure-$n.seq" | tail -n +2 |
		tr '\n' ';')"
	cmd=$(awk -v n="$n" '/^FAILURE [0-9]+:/ { sub(":", "", $2); f = $2 }
		f == n && /^  replay: / { sub(/^  replay: +/, ""); print; exit }' "$WORK/out")
	[ -n "$cmd" ] || fail "$name: no replay command printed for failure $n"
	# The printed command is what a user pastes: run it as printed, results kept here.
	rc=0
	${cmd/#mmstorm/$MMSTORM} --results "$WORK/results" --run-id "replay-$name" \
		>"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = 1 ] || { cat "$WORK/out" "$WORK/err"; fail "$name: replay passed (exit $rc)"; }
	say "$name: replay: $(grep -m1 '^replay ' "$WORK/out")"
done

run_mmstorm 0 fuzz --kernel "$fixed" --seeds "$SEEDS" --budget "$BUDGET" \
	--results "$WORK/results" --run-id fixed
grep -q '^fuzz: no failures (case PASS)' "$WORK/out" || fail "bzImage: $(cat "$WORK/out")"
say "bzImage: $(grep -m1 'sequences' "$WORK/out")"
