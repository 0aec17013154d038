#!/bin/bash
# Fuzzes the suite parser through the real CLI: `mmstorm run --check-only` on >= 10000 broken
# suite files must exit 0 or 2, never crash or trip a sanitizer, and every rejection must say
# "FILE:LINE: ..." or "FILE: ..." on stderr.
#
# Environment: MMSTORM (the binary), MMSTORM_BUILD_DIR (gen_suites is in tests/ there).
# Optional: FUZZ_SUITES_N (files, default 10000), FUZZ_SUITES_SEED (default 1),
# FUZZ_SUITES_JOBS (parallel runs, default: CPUs), FUZZ_SUITES_KEEP=1 (keep the files).
set -u

: "${MMSTORM:?set MMSTORM to the mmstorm binary}"
: "${MMSTORM_BUILD_DIR:?set MMSTORM_BUILD_DIR to the build directory}"
gen=$MMSTORM_BUILD_DIR/tests/gen_suites
n=${FUZZ_SUITES_N:-10000}
seed=${FUZZ_SUITES_SEED:-1}
jobs=${FUZZ_SUITES_JOBS:-$(nproc 2>/dev/null || echo 2)}

if [[ ! -x $MMSTORM ]]; then
	echo "fuzz_suites: SKIP: $MMSTORM is not an executable" >&2
	exit 4
fi
if [[ ! -x $gen ]]; then
	echo "fuzz_suites: SKIP: $gen is not built" >&2
	exit 4
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_suites.XXXXXX") || exit 1
if [[ ${FUZZ_SUITES_KEEP:-0} != 1 ]]; then
	trap 'rm -rf "$dir"' EXIT
fi
mkdir "$dir/in" "$dir/log" || exit 1

# Sanitizer runtimes must report with a recognisable text, and exit with a code we notice.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:exitcode=201:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=202}

"$gen" "$dir/in" "$n" "$seed" || { echo "fuzz_suites: gen_suites failed" >&2; exit 1; }

# One line per file: "ACC f", "REJ f", or "BAD f reason" (a crash or a malformed message).
check_one() {
	local f=$1 err rc first rest
	err=$(timeout 20 "$MMSTORM" run --check-only "$f" 2>&1 >/dev/null)
	rc=$?
	first=${err%%$'\n'*}
	if [[ $err =~ AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime\ error: ]]; then
		printf 'BAD %s sanitizer report (exit %d)\n' "$f" "$rc"
	elif ((rc == 124)); then
		printf 'BAD %s timed out\n' "$f"
	elif ((rc == 0)); then
		printf 'ACC %s\n' "$f"
	elif ((rc != 2)); then
		printf 'BAD %s exit %d\n' "$f" "$rc"
	elif [[ $first != "$f:"* ]]; then
		printf 'BAD %s message does not start with the file name\n' "$f"
	else
		rest=${first#"$f:"}
		if [[ $rest =~ ^[0-9]+:\  || $rest == " "?* ]]; then
			printf 'REJ %s\n' "$f"
		else
			printf 'BAD %s message has no LINE: or ": " after the file name\n' "$f"
		fi
	fi
	# Keep the full output of anything wrong for the summary below.
	if ((rc != 0 && rc != 2)) || [[ $err == *Sanitizer* || $err == *"runtime error:"* ]]; then
		printf '%s\n' "$err" >"$MMSTORM_FUZZ_LOG/$(basename "$f").err"
	fi
}
export -f check_one
export MMSTORM MMSTORM_FUZZ_LOG="$dir/log"

# shellcheck disable=SC2016 # $f expands in the inner bash
find "$dir/in" -name '*.ini' -print0 | sort -z |
	xargs -0 -P "$jobs" -n 50 bash -c 'for f; do check_one "$f"; done' _ >"$dir/results"

total=$(wc -l <"$dir/results")
acc=$(grep -c '^ACC ' "$dir/results")
rej=$(grep -c '^REJ ' "$dir/results")
bad=$(grep -c '^BAD ' "$dir/results")
crashes=$(grep -cE '^BAD .* (sanitizer report|timed out|exit [0-9]+)' "$dir/results")

if ((bad)); then
	grep '^BAD ' "$dir/results" | head -20 >&2
	for f in "$dir"/log/*.err; do
		[[ -e $f ]] || continue
		echo "--- $f" >&2
		head -30 "$f" >&2
		break
	done
	if [[ ${FUZZ_SUITES_KEEP:-0} != 1 ]]; then
		echo "fuzz_suites: rerun with FUZZ_SUITES_KEEP=1 to keep the inputs" >&2
	fi
fi
echo "fuzz_suites: $total files, $rej rejected, $acc accepted, $crashes crashes"
if ((total < n)); then
	echo "fuzz_suites: only $total of $n files were checked" >&2
	exit 1
fi
((bad == 0))
