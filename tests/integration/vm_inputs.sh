#!/bin/bash
# Kernel inputs and preconditions: a kernel build directory boots and its .config is
# recorded; a file that is no kernel, a dynamic agent and a missing QEMU are refused early.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(any_kernel)
cat > "$WORK/one.ini" <<'INI'
[global]
name=one
[one]
workload=fork-storm
iterations=1
size=1M
workers=1
children=2
INI
# A build directory made from whatever kernel we have: the image where kbuild puts it.
mkdir -p "$WORK/linux/arch/x86/boot"
case "$kernel" in
*.deb)
	dpkg-deb -x "$kernel" "$WORK/deb"
	cp "$WORK"/deb/boot/vmlinuz-* "$WORK/linux/arch/x86/boot/bzImage"
	cp "$WORK"/deb/boot/config-* "$WORK/linux/.config"
	rm -rf "$WORK/deb" ;;
*)
	cp "$kernel" "$WORK/linux/arch/x86/boot/bzImage"
	cp "$kernel.config" "$WORK/linux/.config" ;;
esac
vm_run 0 --run-id d --accel tcg --kernel "$WORK/linux" "$WORK/one.ini"
r="$WORK/results/d/linux/run.json"
"$RUNJSON" "$r" check
[ "$("$RUNJSON" "$r" get env kernel_input kind)" = builddir ] || fail "kind"
[ "$("$RUNJSON" "$r" get env kernel_input config_source)" = builddir ] || fail "config source"
[ "$("$RUNJSON" "$r" get env accel)" = tcg ] || fail "accel"
[ "$("$RUNJSON" "$r" get kernel config CONFIG_COMPACTION)" = y ] || fail "config not recorded"
cmp -s "$WORK/linux/.config" "$WORK/results/d/linux/kernel-linux.config" || fail "config copy"
say "build directory: booted, config recorded"

echo "not a kernel" > "$WORK/junk"
vm_run 2 --run-id j --kernel "$WORK/junk" "$WORK/one.ini"
grep -q 'neither a bzImage' "$WORK/err" || fail "junk: $(cat "$WORK/err")"
vm_run 3 --run-id a --agent "$(command -v bash)" --kernel "$kernel" "$WORK/one.ini"
grep -q 'dynamically linked' "$WORK/err" || fail "dynamic agent: $(cat "$WORK/err")"
vm_run 3 --run-id n --qemu /nonexistent/qemu --kernel "$kernel" "$WORK/one.ini"
grep -q 'not found' "$WORK/err" || fail "missing qemu: $(cat "$WORK/err")"
vm_run 2 --kernel "$kernel" --accel sometimes "$WORK/one.ini"
say "bad inputs refused with exit 2/3"

# A guest that can never start a case (no init: the kernel panics at boot) is tried twice
# from the same point, then given up with an infrastructure error, not booted forever.
vm_run 3 --run-id p --accel tcg --append rdinit=/nonexistent --kernel "$kernel" "$WORK/one.ini"
grep -q 'died before starting a case at case 0' "$WORK/err" || fail "no-init: $(cat "$WORK/err")"
r=$(only_run p)
"$RUNJSON" "$r" check
"$RUNJSON" "$r" get status | grep -q '^error: ' || fail "status: $("$RUNJSON" "$r" get status)"
[ "$(grep -c 'Kernel panic' "$WORK"/results/p/*/console-*.log)" = 2 ] || fail "not two boots"
say "unbootable guest: given up after two boots, exit 3"
