#!/bin/bash
# gup-pin under QEMU. On the shared debug bzImage (CONFIG_GUP_TEST, debugfs, loop devices)
# the whole matrix runs: gup_test pins, O_DIRECT through a loop device and (swap on a loop
# device) the swap-out scenarios must have run and passed, with mTHP and the zero pages. On
# Debian's 6.1 and 6.12 (no gup_test, no loop module in the initramfs) a subset runs, and
# what cannot run SKIPs with its reason.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
k61=$(deb_kernel 6.1)
k612=$(deb_kernel 6.12)
[ -n "$kernel$k61$k612" ] || skip "no shared/kernels/bzImage and no Debian 6.1/6.12 .deb"

cat > "$WORK/full.ini" <<'INI'
[global]
seed=3
timeout=1200s
vm_mem=2G

[matrix]
workload=gup-pin
mode=matrix

[random]
workload=gup-pin
mode=random
sequences=1
steps=20
INI
cat > "$WORK/subset.ini" <<'INI'
[global]
seed=3
timeout=900s
vm_mem=2G

[matrix]
workload=gup-pin
mode=matrix
mems=anon,thp,thp-pte,hugetlb,shmem,shmem-private
INI

metric() {
	local v
	v=$("$RUNJSON" "$1" get cases 0 repeats 0 metrics "$2" value 2>/dev/null) || v=0
	echo "${v:-0}"
}

# check_run LABEL RUNJSON: every case PASS or SKIP, no failed combination; prints the tally.
check_run() {
	local notes
	"$RUNJSON" "$2" check
	"$RUNJSON" "$2" verdicts | while read -r name verdict; do
		case "$verdict" in
		PASS|SKIP) ;;
		*) fail "$1: case $name is $verdict: $("$RUNJSON" "$2" get cases 0 reason)" ;;
		esac
	done
	notes=$("$RUNJSON" "$2" get cases 0 repeats 0 notes)
	[ "$(metric "$2" combos_failed)" = 0 ] || fail "$1: failed combinations: $notes"
	say "$1: $(metric "$2" combos_run) ran, $(metric "$2" combos_passed) passed," \
	    "$(metric "$2" combos_known_issue) known issue, $(metric "$2" combos_skipped) skipped"
	say "$1 notes: $notes"
}

if [ -n "$kernel" ]; then
	vm_run 0 --run-id b --kernel "$kernel" "$WORK/full.ini"
	r=$(only_run b)
	check_run bzImage "$r"
	notes=$("$RUNJSON" "$r" get cases 0 repeats 0 notes)
	# gup_test ran: its skip reason must not be there, and O_DIRECT went to a loop device.
	case "$notes" in
	*"gup_test"*"not set"*|*"debugfs is not mounted"*) fail "bzImage: gup_test did not run" ;;
	esac
	case "$notes" in
	*"odirect: loop device"*) ;;
	*) fail "bzImage: O_DIRECT did not use a loop device: $notes" ;;
	esac
	# Swap on a loop device in the guest: pin-swap, swap-fork and swap-pin-fork ran (pagemap
	# swap entries checked), and the new memory kinds were not skipped wholesale.
	case "$notes" in
	*"swap: 64 MiB on /dev/loop"*) ;;
	*) fail "bzImage: no swap was set up in the guest: $notes" ;;
	esac
	case "$notes" in
	*"no swap"*|*"MADV_PAGEOUT did not swap"*|*"mTHP needs"*|*"did not map the"*"zero page"*)
		fail "bzImage: a new memory kind or swap SKIPped: $notes" ;;
	esac
	[ "$(metric "$r" combos_run)" -gt 500 ] || fail "bzImage: too few combinations ran"
else
	skip "no ../shared/kernels/bzImage: the gup_test matrix needs a kernel with CONFIG_GUP_TEST"
fi
# The Debian kernels run gup-pin through quick.ini in vm_quick; the full matrix here is the
# bzImage's (gup_test), which keeps this test within CI's time.
