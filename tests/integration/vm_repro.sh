#!/bin/bash
# `mmstorm repro` against the kernels that bring one reported bug back: for every
# bzImage-revert-<name> next to the shared debug bzImage, the catalog entry whose bug.revert
# is <name> must be REPRODUCED there and NOT REPRODUCED on the fixed bzImage. Revert kernels
# are found, not listed: a new one without a catalog entry fails this test.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no shared/kernels/bzImage"
mapfile -t reverts < <(ls "$(dirname "$kernel")"/bzImage-revert-* 2>/dev/null | grep -v '\.config$' || true)
[ "${#reverts[@]}" -gt 0 ] || skip "no bzImage-revert-* kernels next to $kernel"

"$MMSTORM" repro --list --json > "$WORK/list.json"
# entry_for NAME: the section whose bug.revert is NAME
entry_for() {
	local i=0 rev
	while name=$("$RUNJSON" "$WORK/list.json" get "$i" name 2>/dev/null); do
		rev=$("$RUNJSON" "$WORK/list.json" get "$i" revert 2>/dev/null || true)
		[ "$rev" = "$1" ] && { echo "$name"; return 0; }
		i=$((i + 1))
	done
	return 1
}

args=(--kernel "$kernel")
bugs=()
declare -A want
for r in "${reverts[@]}"; do
	name=${r##*/bzImage-revert-}
	bug=$(entry_for "$name") || fail "no catalog entry has bug.revert=$name (configs/bugs.ini)"
	say "$(basename "$r") validates $bug"
	args+=(--kernel "$r")
	bugs+=("$bug")
	want[$bug]=$(basename "$r")
done

# Exit 1: a bug reproduced, which is the point here.
run_mmstorm 1 repro --results "$WORK/results" --run-id v "${args[@]}" "${bugs[@]}"
cat "$WORK/out"
for bug in "${bugs[@]}"; do
	grep -Eq "^$bug +${want[$bug]} +REPRODUCED " "$WORK/out" ||
		fail "$bug is not REPRODUCED on ${want[$bug]}"
	grep -Eq "^$bug +bzImage +NOT REPRODUCED " "$WORK/out" ||
		fail "$bug is not NOT REPRODUCED on the fixed bzImage"
done
say "${#bugs[@]} revert kernel(s): each bug reproduced there and not on the fixed kernel"
