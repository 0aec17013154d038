#!/bin/bash
# pfnmap under QEMU: /dev/mem and PCI BAR pfnmaps PASS on the shared debug kernel, and on the
# same kernel with e9f180d7cfde reverted (split pfnmaps lose their PAT tracking) they FAIL with
# the leaked memtype ranges named.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(shared_bzimage)
[ -n "$kernel" ] || skip "no shared/kernels/bzImage"
revert=$(dirname "$kernel")/bzImage-revert-e9f180d7cfde-untrack-pfn-clear

# One case per source; the leak check is required, so a kernel without the list SKIPs, never
# passes unchecked.
cat > "$WORK/pfnmap.ini" <<'INI'
[global]
timeout=300s
iterations=2
vm_mem=1G
require_memtype_list=1

[devmem]
workload=pfnmap
source=devmem

[vga]
workload=pfnmap
source=bar
bar=vga

[ivshmem-wc]
workload=pfnmap
source=bar
bar=ivshmem
wc=1
INI
cases="devmem vga ivshmem-wc"

# case_index RUNJSON NAME
case_index() {
	local i=0 name
	while read -r name _; do
		[ "$name" = "$2" ] && { echo "$i"; return 0; }
		i=$((i + 1))
	done < <("$RUNJSON" "$1" verdicts)
	fail "no case $2 in $1"
}

# list_sizes RUNJSON INDEX: the note with the memtype list's size before and after the case.
list_sizes() {
	"$RUNJSON" "$1" get cases "$2" repeats 0 notes | grep -o 'pat_memtype_list: [^"]*' ||
		fail "no memtype list note for case $2"
}

vm_run 0 --run-id fixed --kernel "$kernel" "$WORK/pfnmap.ini"
r=$(only_run fixed)
"$RUNJSON" "$r" check
for c in $cases; do
	i=$(case_index "$r" "$c")
	v=$("$RUNJSON" "$r" get cases "$i" verdict)
	[ "$v" = PASS ] || fail "$(basename "$kernel"): case $c is $v, expected PASS: $("$RUNJSON" \
		"$r" get cases "$i" reason)"
	checks=$("$RUNJSON" "$r" get cases "$i" repeats 0 checks run)
	[ "$checks" -gt 100 ] || fail "case $c ran only $checks checks"
	say "$(basename "$kernel"): $c PASS ($checks checks; $(list_sizes "$r" "$i"))"
done

[ -f "$revert" ] || { say "no $revert: the leak half is not tested"; exit 0; }
vm_run 1 --run-id revert --kernel "$revert" "$WORK/pfnmap.ini"
r=$(only_run revert)
"$RUNJSON" "$r" check
for c in $cases; do
	i=$(case_index "$r" "$c")
	v=$("$RUNJSON" "$r" get cases "$i" verdict)
	reason=$("$RUNJSON" "$r" get cases "$i" reason)
	[ "$v" = FAIL ] || fail "revert kernel: case $c is $v, expected FAIL: $reason"
	case "$reason" in
	*"PAT memtype list"*"entries leaked"*"+[mem 0x"*) ;;
	*) fail "revert kernel: case $c failed without naming leaked memtype ranges: $reason" ;;
	esac
	say "revert: $c FAIL: ${reason#*first: }"
	say "revert: $c $(list_sizes "$r" "$i")"
done
