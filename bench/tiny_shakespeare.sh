#!/bin/sh
# bench/tiny_shakespeare.sh — pretrain the `tiny` config on tinyshakespeare for
# a few minutes and compare its validation loss with the unigram baseline;
# print a few samples. Usage: sh bench/tiny_shakespeare.sh [SECONDS] [OUTDIR]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RLHF=${RLHF:-$ROOT/build/rlhf}
SHARED=${RLHF_SHARED:-$ROOT/../shared}
SECS=${1:-180}
OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
"$RLHF" tokenizer train --input "$SHARED/data/tinyshakespeare.txt" --vocab-size 2048 --out "$OUT/tok.bin" --quiet
"$RLHF" data prepare --tokenizer "$OUT/tok.bin" --input "$SHARED/data/tinyshakespeare.txt" --out "$OUT/data" --quiet
"$ROOT/build/tools/unigram_baseline" "$OUT/data"
# Ctrl-C (SIGINT) after SECS seconds: the trainer writes its checkpoint and stops.
timeout -s INT "$SECS" "$RLHF" pretrain --data "$OUT/data" --config tiny --steps ${STEPS:-3000} --batch 8 --seq 256 --lr 2e-3 \
    --eval-every 100 --eval-batches 10 --out "$OUT/tiny.ckpt" --log "$OUT/tiny.jsonl" --threads ${THREADS:-2}
grep val_loss "$OUT/tiny.jsonl" | tail -n 3
for s in 1 2 3; do
  echo "--- sample $s (temperature 0.8, top-k 40)"
  "$RLHF" sample --model "$OUT/tiny.ckpt" --tokenizer "$OUT/tok.bin" --prompt "ROMEO:" --max-tokens 80 --temperature 0.8 --top-k 40 --seed $s --quiet
done
