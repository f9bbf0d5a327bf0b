#!/bin/sh
# fuzz_feedback.sh — builds the libFuzzer target tests/fuzz/fuzz_feedback.c
# with clang (ASan + UBSan + libFuzzer) and runs it for a bounded time
# (RLHF_FUZZ_SECONDS, default 20) from the seed corpus. Any crash, leak,
# sanitizer report or property violation fails the test; the crashing input
# is kept in /tmp/rlhf-fuzz-feedback-crash-* to reproduce with
#   <binary> <crash file>
# Without clang or libFuzzer the test says SKIP and counts nothing.
. "$(dirname "$0")/lib.sh"
ROOT=${RLHF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SECS=${RLHF_FUZZ_SECONDS:-20}
if ! command -v clang >/dev/null 2>&1; then
  echo "SKIP: clang is not installed (apt-get install clang) - libFuzzer run skipped"
  finish; exit $?
fi
BIN=$TMP/fuzz_feedback
# shellcheck disable=SC2086
if ! clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
     "$ROOT/tests/fuzz/fuzz_feedback.c" "$ROOT/src/data/chat.c" "$ROOT/src/data/feedback.c" "$ROOT/src/data/feedback_io.c" \
     "$ROOT"/src/base/*.c -ljansson -lz -lm -lpthread -o "$BIN" >"$TMP/build.log" 2>&1; then
  if grep -q "fuzzer" "$TMP/build.log" && grep -qi "cannot find\|no such file" "$TMP/build.log"; then
    echo "SKIP: clang has no libFuzzer runtime"; sed 's/^/    /' "$TMP/build.log" | head -5
    finish; exit $?
  fi
  bad "fuzz target does not build"; sed 's/^/    /' "$TMP/build.log" | head -20
  finish; exit $?
fi
ok
mkdir -p "$TMP/corpus"
cp "$ROOT"/tests/fuzz/corpus_feedback/* "$TMP/corpus/"
# One worker, bounded time and memory; -timeout catches hangs on one input.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$BIN" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 \
  -max_len=4096 -artifact_prefix="$TMP/crash-" -print_final_stats=1 "$TMP/corpus" >"$TMP/fuzz.log" 2>&1
rc=$?
runs=$(grep -E '^stat::number_of_executed_units' "$TMP/fuzz.log" | awk '{print $2}')
echo "libFuzzer: ${runs:-?} inputs in ${SECS}s, exit $rc"
if [ "$rc" -eq 0 ] && [ "${runs:-0}" -gt 100 ]; then ok; else
  bad "fuzzer found a problem (exit $rc)"; grep -v '^#' "$TMP/fuzz.log" | head -40
  for f in "$TMP"/crash-*; do [ -f "$f" ] && cp "$f" "/tmp/rlhf-fuzz-feedback-$(basename "$f")" && echo "  kept /tmp/rlhf-fuzz-feedback-$(basename "$f")"; done
fi
finish
