# Shared by the integration tests: paths, KTAP-ish messages, skip/fail helpers.
# Exit status 4 is a SKIP (kselftest's KSFT_SKIP); CTest maps it with SKIP_RETURN_CODE.
set -euo pipefail
: "${MMSTORM:?path of the mmstorm binary}"
: "${MMSTORM_SOURCE_DIR:?source tree}"
RUNJSON=${RUNJSON:-$(dirname "$MMSTORM")/tests/runjson}
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/mmstorm-$TEST_NAME.XXXXXX")
export MMSTORM_STATE_DIR="$WORK/state"
# A failing test keeps its work dir (results, logs) for the post-mortem.
cleanup() {
	local rc=$?
	if [ "$rc" = 0 ] || [ "$rc" = 4 ]; then rm -rf "$WORK"; else echo "# kept $WORK" >&2; fi
}
trap cleanup EXIT

say() { printf '# %s: %s\n' "$TEST_NAME" "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; exit 4; }
fail() { printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || skip "needs root (knobs, /dev/kmsg)"; }

# run_mmstorm EXPECTED_EXIT ARGS...: runs mmstorm, keeps stdout/stderr in $WORK/out, err
run_mmstorm() {
	local want=$1; shift
	local rc=0
	"$MMSTORM" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	if [ "$rc" != "$want" ]; then
		echo "--- stdout"; cat "$WORK/out"; echo "--- stderr"; cat "$WORK/err"
		fail "mmstorm $* exited $rc, expected $want"
	fi
}
