#!/bin/sh
# bench/real_data_rm.sh — reward models on the real data (issue 4): OASST pairs
# and the HH-RLHF harmless-base test pairs, with a held-out split by prompt.
# Pipeline (timed per stage): import -> BPE tokenizer (trained on the two raw
# files) -> SFT from a fresh model on the training demonstrations and judged
# winners -> reward model per data set -> held-out pairwise accuracy and ECE.
#
#   sh bench/real_data_rm.sh OUTDIR            (env knobs below)
#
# Knobs: RLHF (binary), SHARED (data dir), THREADS, LAYERS HEADS CHANNELS, SEQ,
# VOCAB, SFT_STEPS, RM_EPOCHS, LR_SFT, LR_RM. Results: OUTDIR/summary.txt,
# the JSONL logs of every stage, and the checkpoints.
set -eu
OUT=${1:?usage: real_data_rm.sh OUTDIR}
RLHF=${RLHF:-./build/rlhf}
SHARED=${SHARED:-${RLHF_SHARED:-../shared}}
D=$SHARED/data
THREADS=${THREADS:-0}
LAYERS=${LAYERS:-4} HEADS=${HEADS:-4} CHANNELS=${CHANNELS:-128} SEQ=${SEQ:-256} VOCAB=${VOCAB:-4096}
SFT_STEPS=${SFT_STEPS:-300} RM_EPOCHS=${RM_EPOCHS:-2} LR_SFT=${LR_SFT:-1e-3} LR_RM=${LR_RM:-1e-4}
mkdir -p "$OUT"
S="--threads $THREADS --seq $SEQ"
now() { date +%s.%N; }
stage() { # name, command...
  n=$1; shift
  t0=$(now)
  "$@" > "$OUT/$n.out" 2>&1 || { echo "stage $n failed:"; tail -n 20 "$OUT/$n.out"; exit 1; }
  t1=$(now)
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-14s %7.1f s\n", n, b - a }' | tee -a "$OUT/times.txt"
}
: > "$OUT/times.txt"
stage import_oasst "$RLHF" feedback import --format oasst --input "$D/oasst_en_100_trees.jsonl" --out "$OUT/oa.jsonl"
stage import_hh "$RLHF" feedback import --format hh --input "$D/hh_rlhf_harmless_base_test.jsonl.gz" --out "$OUT/hh.jsonl"
gzip -dc "$D/hh_rlhf_harmless_base_test.jsonl.gz" > "$OUT/hh_raw.txt"
stage tokenizer "$RLHF" tokenizer train --input "$D/oasst_en_100_trees.jsonl" "$OUT/hh_raw.txt" --vocab-size "$VOCAB" --out "$OUT/tok.bin"
cat "$OUT/oa.jsonl" "$OUT/hh.jsonl" > "$OUT/all.jsonl"
# SFT on OASST demonstrations + judged winners of both sets (the held-out
# prompts, same --val-fraction and --seed as the reward models, are excluded)
stage sft "$RLHF" sft --tokenizer "$OUT/tok.bin" --records "$OUT/all.jsonl" --winners --out "$OUT/sft.ckpt" \
  --layers "$LAYERS" --heads "$HEADS" --channels "$CHANNELS" --context "$SEQ" --steps "$SFT_STEPS" --batch 16 \
  --lr "$LR_SFT" --eval-every 100 --log "$OUT/sft.jsonl" $S
for set in oa hh; do
  stage rm_$set "$RLHF" rm --model "$OUT/sft.ckpt" --tokenizer "$OUT/tok.bin" --records "$OUT/$set.jsonl" \
    --out "$OUT/rm_$set.ckpt" --epochs "$RM_EPOCHS" --batch 16 --micro-batch 16 --lr "$LR_RM" \
    --log "$OUT/rm_$set.jsonl" $S
done
{
  echo "model: L$LAYERS NH$HEADS C$CHANNELS, context $SEQ, BPE vocab $VOCAB; SFT $SFT_STEPS steps x 16, RM $RM_EPOCHS epochs x 16 judgements"
  grep "val_loss" "$OUT/sft.jsonl" | tail -n 1
  for set in oa hh; do echo "$set: $(grep '"val_accuracy"' "$OUT/rm_$set.jsonl" | tail -n 1)"; grep "rm data" "$OUT/rm_$set.out" || true; done
  cat "$OUT/times.txt"
} | tee "$OUT/summary.txt"
