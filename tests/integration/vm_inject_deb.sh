#!/bin/bash
# The injectors that need no debugfs (memcg, sigkill, rlimit, hugetlb-exhaust, pressure) on a
# stock Debian kernel under QEMU: each injects at least one fault, every case PASSes, and the
# "nothing lost" invariants are checked and hold (rlimit and pressure are controls that need
# not inject). Newest Debian 6.12 kernel, else 6.1.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(deb_kernel 6.12)
[ -n "$kernel" ] || kernel=$(deb_kernel 6.1)
[ -n "$kernel" ] || skip "no Debian linux-image .deb in $KERNEL_DIR"

cat > "$WORK/inject.ini" <<'INI'
[global]
name=inject-deb
seed=1
timeout=120s
duration=2s
workers=1
children=2
size=2M
vm_mem=1G

[fork-memcg-oom]
workload=fork-storm
inject=memcg
size=32M
children=4
action=write-all
memcg_max=80M

[fork-sigkill-case]
workload=fork-storm
inject=sigkill
sigkill_target=case
sigkill_delay=700ms

[fork-hugetlb-exhaust]
workload=fork-storm
inject=hugetlb-exhaust
region=hugetlb
size=8M
touch_pages=2

[fork-rlimit-as]
workload=fork-storm
inject=rlimit
rl_resource=as
rl_limit=2G

[fork-pressure-memcg]
workload=fork-storm
inject=pressure,memcg
press_tool=builtin
press_bytes=32M
memcg_max=96M

INI

vm_run 0 --run-id fd --kernel "$kernel" "$WORK/inject.ini"
cat "$WORK/out"
r=$(only_run fd)
"$RUNJSON" "$r" check
# The address-space limit is a control that only has to hold; pressure is background load.
check_inject_cases "$r" '^(fork-rlimit-as|fork-pressure-memcg)$'
[ "$INJ_CASES" = 5 ] || fail "$INJ_CASES cases reported, 5 expected"
