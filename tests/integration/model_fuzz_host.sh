#!/bin/bash
# mmstorm fuzz on the running kernel for about 20 s: no sequence fails (the host kernel is the
# reference here), sequences, op counts and transitions were counted, the corpus was written,
# a corpus sequence replays clean, and a malformed sequence is a usage error.
. "$(dirname "$0")/lib/common.bash"
need_root
# hugetlb file windows raise the 2 MiB pool through the journal: it must be back afterwards.
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
hp0=$(cat "$hp" 2>/dev/null || echo none)
run_mmstorm 0 fuzz --host --seeds 11,12 --budget 20s --results "$WORK/results" --run-id f
[ "$(cat "$hp" 2>/dev/null || echo none)" = "$hp0" ] || fail "nr_hugepages $hp0 -> $(cat "$hp")"
grep -q '^fuzz: no failures (case PASS)' "$WORK/out" || { cat "$WORK/out"; fail "failures"; }
dir=$WORK/results/f/fuzz
stats=$dir/stats.json
[ -f "$stats" ] || fail "no $stats"
# num KEY: the first integer value of "KEY" in stats.json
num() { sed -n "s/^ *\"$1\": \([0-9]*\),\?$/\1/p" "$stats" | sed -n 1p; }
# opn OP: how often OP ran (op_counts; injected_failures has the same keys)
opn() { sed -n '/"op_counts"/,/}/p' "$stats" | sed -n "s/^ *\"$1\": \([0-9]*\),\?$/\1/p"; }
seqs=$(num sequences)
trans=$(num transitions)
say "$seqs sequences, $trans transitions"
[ "${seqs:-0}" -ge 20 ] || fail "only ${seqs:-0} sequences in 20 s"
[ "${trans:-0}" -ge 20 ] || fail "only ${trans:-0} distinct transitions"
for op in write fork mremap mprotect munmap dontneed; do
	[ "$(opn "$op")" -gt 0 ] || fail "no $op op ran"
done
if grep -q '"uffd": true' "$stats"; then
	[ "$(opn uffd-reg)" -gt 0 ] && [ "$(opn uffd-wp)" -gt 0 ] || fail "uffd on, no uffd op ran"
fi
# The shared-file window: its ops ran, and with uffd MINOR on (6.18 has it for shmem),
# UFFDIO_CONTINUE ran and its results matched the model.
if grep -q '"file_shmem": true' "$stats"; then
	for op in file-write file-fill file-zap file-punch; do
		[ "$(opn "$op")" -gt 0 ] || fail "file windows on, no $op op ran"
	done
fi
if grep -q '"minor": true' "$stats"; then
	[ "$(opn uffd-minor)" -gt 0 ] && [ "$(opn continue)" -gt 0 ] ||
		fail "uffd-minor on, no uffd-minor or continue ran"
	say "$(opn continue) continue ops, $(num minor_faults) minor faults"
fi
# FOLL_PIN pins (io_uring fixed buffers), writes and read-back through the pin ran.
if grep -q '"pin_uring": true' "$stats"; then
	[ "$(opn pin-uring)" -gt 0 ] && [ "$(opn unpin)" -gt 0 ] && [ "$(opn pin-write)" -gt 0 ] ||
		fail "pin-uring on, no pin-uring, pin-write or unpin ran"
fi
# THP windows: collapse ran, and the THP counters moved (system-wide, so at least ours).
if grep -q '"thp": true' "$stats"; then
	[ "$(opn collapse)" -gt 0 ] || fail "THP on, no collapse ran"
	[ "$(num thp_split_pmd)" -gt 0 ] || fail "THP on, no PMD split counted"
fi
# A glob, not `ls | head`: with pipefail, ls dies of SIGPIPE once the corpus outgrows a pipe write.
corpus=("$dir"/corpus/*.seq)
first=${corpus[0]}
[ -f "$first" ] || first=
[ -n "$first" ] || fail "empty corpus"
run_mmstorm 0 fuzz --host --replay "$first" --results "$WORK/results" --run-id r
grep -q "^replay $first: pass" "$WORK/out" || { cat "$WORK/out"; fail "replay did not pass"; }
printf 'window 8 4\nwrite p0 0+1\nscribble p0 1+1\n' > "$WORK/bad.seq"
run_mmstorm 2 fuzz --host --replay "$WORK/bad.seq" --results "$WORK/results" --run-id b
grep -q "line 3: unknown op 'scribble'" "$WORK/err" || fail "no parse error: $(cat "$WORK/err")"
say "ok"
