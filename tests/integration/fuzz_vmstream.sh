#!/bin/bash
# 10,000 garbled guest event streams through the host's stream parser; in the asan preset
# the generator is built with AddressSanitizer and UBSan, so any memory error fails it.
. "$(dirname "$0")/lib/common.bash"
gen="$MMSTORM_BUILD_DIR/tests/gen_streams"
[ -x "$gen" ] || gen="$MMSTORM_BUILD_DIR/gen_streams"
[ -x "$gen" ] || fail "gen_streams not built"
mkdir -p "$WORK/failed"
"$gen" 10000 "${MMSTORM_FUZZ_SEED:-1}" "$WORK/failed"
