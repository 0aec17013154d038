# Shared by the vm_*.sh tests: where the kernels and the guest agent are, and run helpers.
# Debian kernels come from $MMSTORM_KERNEL_DIR (default /var/cache/mmstorm/kernels), as
# linux-image-*-unsigned_*.deb files (CI puts them there with apt-get download).
. "$(dirname "$0")/lib/common.bash"

KERNEL_DIR=${MMSTORM_KERNEL_DIR:-/var/cache/mmstorm/kernels}
AGENT=${MMSTORM_AGENT:-$(dirname "$MMSTORM")/mmstorm-static}

need_vm() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
	[ -x "$AGENT" ] || skip "no static agent at $AGENT (sanitizer builds make none)"
	export MMSTORM_AGENT=$AGENT
}

# deb_kernel SERIES: newest linux-image-SERIES.*-unsigned .deb in KERNEL_DIR, or nothing.
deb_kernel() {
	local f
	f=$(ls "$KERNEL_DIR"/linux-image-"$1".*-unsigned_*.deb 2>/dev/null | sort -V | tail -n 1)
	[ -n "$f" ] && echo "$f"
	return 0
}

# any_kernel: a kernel to boot for the behaviour tests (crash, hang, ...), or SKIP.
any_kernel() {
	local k
	k=$(deb_kernel 6.12)
	[ -n "$k" ] || k=$(deb_kernel 6.1)
	[ -n "$k" ] || k=$(shared_bzimage)
	[ -n "$k" ] || skip "no kernel: no linux-image .deb in $KERNEL_DIR, no shared bzImage"
	echo "$k"
}

shared_bzimage() {
	local p
	for p in "$MMSTORM_SOURCE_DIR/../shared/kernels/bzImage" /work/shared/kernels/bzImage; do
		[ -f "$p" ] && { echo "$p"; return 0; }
	done
	return 0
}

# vm_run EXPECTED_EXIT ARGS...: mmstorm vm with results under $WORK/results, output kept.
vm_run() {
	local want=$1; shift
	run_mmstorm "$want" vm --results "$WORK/results" "$@"
}

# run.json of the only kernel of run ID.
only_run() {
	local f
	f=$(ls "$WORK"/results/"$1"/*/run.json)
	[ "$(echo "$f" | wc -l)" = 1 ] || fail "expected one run.json under results/$1: $f"
	echo "$f"
}

# Every case of run.json $1 PASSed, its "nothing lost" invariants were checked (at least 8:
# in a guest PageTables and MemFree are judged too) and none failed, and it injected at least
# one fault, unless its name matches the regex $2 (controls and background load that need not
# inject). The number of cases is left in INJ_CASES.
check_inject_cases() {
	local r=$1 controls=${2:-'^$'} name verdict checked bad faults i=0

	while read -r name verdict; do
		[ "$verdict" = PASS ] ||
			fail "case $name is $verdict: $("$RUNJSON" "$r" get cases "$i" reason)"
		checked=$("$RUNJSON" "$r" get cases "$i" repeats 0 inject invariants checked)
		bad=$("$RUNJSON" "$r" get cases "$i" repeats 0 inject invariants failed)
		[ "$checked" -ge 8 ] && [ "$bad" = 0 ] ||
			fail "$name: invariants $checked checked, $bad bad"
		faults=$("$RUNJSON" "$r" get cases "$i" repeats 0 metrics injected_faults value)
		[ "$faults" -ge 1 ] || [[ "$name" =~ $controls ]] || fail "$name: no fault injected"
		say "$name: PASS, $faults faults injected, $checked invariant checks"
		i=$((i + 1))
	done < <("$RUNJSON" "$r" verdicts)
	INJ_CASES=$i
}
