#!/bin/bash
# mmstorm vm stopped on the host: SIGTERM leaves a valid run.json saying "interrupted" and no
# QEMU; kill -9 leaves no QEMU either (parent-death signal) and the results streamed so far.
. "$(dirname "$0")/vm_common.bash"
need_vm
kernel=$(any_kernel)
cat > "$WORK/long.ini" <<'INI'
[global]
name=long
timeout=300s
size=1M
workers=1
children=2

[short]
workload=fork-storm
iterations=1

[long1]
workload=fork-storm
duration=200s

[long2]
workload=fork-storm
duration=200s
INI
qemus() { pgrep -f "qemu-system-x86_64.*$WORK" || true; }
# wait_case ID NAME: until the case has started in the guest (or 300 s)
wait_case() {
	local i
	for i in $(seq 600); do
		grep -qs "\"case\":\"$2\"" "$WORK"/results/"$1"/*/events.jsonl && return 0
		sleep 0.5
	done
	fail "case $2 never started"
}
for how in TERM KILL; do
	id=i$how
	"$MMSTORM" vm --results "$WORK/results" --run-id $id --kernel "$kernel" "$WORK/long.ini" \
		>"$WORK/out.$how" 2>&1 &
	pid=$!
	wait_case $id long1
	[ -n "$(qemus)" ] || fail "no QEMU running"
	kill -$how $pid
	rc=0
	wait $pid || rc=$?
	sleep 1
	[ -z "$(qemus)" ] || fail "QEMU outlived mmstorm after SIG$how: $(qemus)"
	r=$(only_run $id)
	"$RUNJSON" "$r" check
	[ "$("$RUNJSON" "$r" verdict short)" = PASS ] || fail "$how: short"
	if [ $how = TERM ]; then
		[ $rc = 3 ] || fail "exit status $rc after SIGTERM, expected 3"
		[ "$("$RUNJSON" "$r" get status)" = "interrupted: SIGTERM" ] || fail "status"
		[ "$("$RUNJSON" "$r" verdict long1)" = ERROR ] || fail "long1"
	else
		[ "$("$RUNJSON" "$r" get status)" = running ] || fail "status after kill -9"
	fi
	say "SIG$how: no QEMU left, run.json status '$("$RUNJSON" "$r" get status)'"
done
