#!/bin/bash
# The default suite under QEMU on Debian's 6.1 and 6.12 kernels, in one command: every case
# PASS or SKIP on both, a run.json per kernel, and a comparison of the two.
. "$(dirname "$0")/vm_common.bash"
need_vm
k61=$(deb_kernel 6.1)
k612=$(deb_kernel 6.12)
[ -n "$k61" ] || skip "no linux-image-6.1.*-unsigned .deb in $KERNEL_DIR"
[ -n "$k612" ] || skip "no linux-image-6.12.*-unsigned .deb in $KERNEL_DIR"
cd "$MMSTORM_SOURCE_DIR"
vm_run 0 --run-id q --kernel "old=$k61" --kernel "new=$k612" configs/quick.ini
cat "$WORK/err"
for k in old new; do
	r="$WORK/results/q/$k/run.json"
	"$RUNJSON" "$r" check
	status=$("$RUNJSON" "$r" get status)
	[ "$status" = complete ] || fail "$k: status $status"
	[ "$("$RUNJSON" "$r" get env where)" = vm ] || fail "$k: env.where"
	accel=$("$RUNJSON" "$r" get env accel)
	case "$accel" in kvm|tcg) ;; *) fail "$k: env.accel is '$accel'" ;; esac
	[ -n "$("$RUNJSON" "$r" get env accel_reason)" ] || fail "$k: no accel_reason"
	[ "$("$RUNJSON" "$r" get env kernel_input kind)" = deb ] || fail "$k: kernel_input.kind"
	[ "$("$RUNJSON" "$r" get env kernel_input config_source)" = deb ] ||
		fail "$k: config source"
	[ -s "$WORK/results/q/$k/console-$k.log" ] || fail "$k: no console log"
	"$RUNJSON" "$r" verdicts | while read -r name verdict; do
		case "$verdict" in PASS|SKIP) ;; *) fail "$k: case $name is $verdict" ;; esac
	done
	say "$k: accel $accel, $("$RUNJSON" "$r" get kernel release)"
done
[ "$("$RUNJSON" "$WORK/results/q/old/run.json" get kernel release)" != \
  "$("$RUNJSON" "$WORK/results/q/new/run.json" get kernel release)" ] || fail "same kernel twice"
grep -q '^## Verdict differences (0)' "$WORK/results/q/compare.md" || fail "compare.md"
grep -q '| fork-anon | fork_ns | ns |' "$WORK/results/q/compare.md" || fail "no fork_ns row"
"$RUNJSON" "$WORK/results/q/compare.json" get reference | grep -qx old || fail "compare.json"
say "both kernels PASS/SKIP; comparison written"
