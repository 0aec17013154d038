#!/bin/bash
# The shared debug kernel (a bzImage with its .config beside it): the default suite runs and
# the kernel config is recorded from the file next to the image.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no shared/kernels/bzImage"
cd "$MMSTORM_SOURCE_DIR"
vm_run 0 --run-id b --kernel "$kernel" configs/quick.ini
cat "$WORK/out" "$WORK/err"
r=$(only_run b)
"$RUNJSON" "$r" check
[ "$("$RUNJSON" "$r" get status)" = complete ] || fail "status"
[ "$("$RUNJSON" "$r" get env kernel_input kind)" = bzimage ] || fail "kernel_input.kind"
"$RUNJSON" "$r" verdicts | while read -r name verdict; do
	case "$verdict" in PASS|SKIP) ;; *) fail "case $name is $verdict" ;; esac
done
# The debug kernel has /proc/config.gz, and the host has its .config: either way recorded.
[ "$("$RUNJSON" "$r" get kernel config CONFIG_PAGE_TABLE_CHECK)" = y ] || fail "kernel config"
say "$("$RUNJSON" "$r" get kernel release): all PASS/SKIP"
