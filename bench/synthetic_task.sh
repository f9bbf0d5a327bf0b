#!/bin/sh
# bench/synthetic_task.sh — the synthetic preference task of issue 4 with the
# settings of tests/cli/synthetic.sh, keeping every log and printing a summary
# (held-out RM accuracy/ECE, DPO/KTO preference before -> after, sampled KL)
# and the time of each stage. Use it to check other seeds than the test's.
#   sh bench/synthetic_task.sh OUTDIR [SEED] [N_PAIRS]
set -eu
OUT=${1:?usage: synthetic_task.sh OUTDIR [SEED] [N_PAIRS]}
SEED=${2:-4} NP=${3:-1500}
RLHF=${RLHF:-./build/rlhf}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
S="--threads ${THREADS:-1} --quiet"
now() { date +%s.%N; }
t() { n=$1; shift; t0=$(now); "$@"; awk -v n="$n" -v a="$t0" -v b="$(now)" 'BEGIN { printf "%-6s %6.1f s\n", n, b - a }' >> "$OUT/times.txt"; }
: > "$OUT/times.txt"
/usr/bin/python3 "$ROOT/tests/data/gen_synthetic.py" "$OUT" 1000 "$NP" 600 "$SEED"
"$RLHF" tokenizer train --input "$OUT/text.txt" --vocab-size 400 --out "$OUT/tok.bin" --quiet
M="--tokenizer $OUT/tok.bin --seq 32"
t sft "$RLHF" sft $M --data "$OUT/demos.jsonl" --out "$OUT/sft.ckpt" --layers 2 --heads 2 --channels 64 \
  --steps 500 --batch 16 --lr 3e-3 --eval-every 100 --log "$OUT/sft.jsonl" $S
t rm "$RLHF" rm $M --model "$OUT/sft.ckpt" --records "$OUT/pairs.jsonl" --out "$OUT/rm.ckpt" --steps 600 --batch 16 --lr 1e-3 --log "$OUT/rm.jsonl" $S
t dpo "$RLHF" dpo $M --model "$OUT/sft.ckpt" --records "$OUT/pairs.jsonl" --out "$OUT/dpo.ckpt" --steps 400 --batch 8 --lr 5e-4 --eval-every 200 --kl-tokens 12 --log "$OUT/dpo.jsonl" $S
t kto "$RLHF" kto $M --model "$OUT/sft.ckpt" --records "$OUT/pairs.jsonl" --out "$OUT/kto.ckpt" --steps 700 --batch 8 --lr 5e-4 --beta 0.3 --eval-every 350 --kl-tokens 12 --log "$OUT/kto.jsonl" $S
v() { grep "\"$2\"" "$OUT/$1.jsonl" | sed -n "$3" | sed -E "s/.*\"$2\":([^,}]*).*/\1/"; }
{
  echo "seed $SEED, $NP pairs: sft val loss $(v sft val_loss 1p) -> $(v sft val_loss '$p')"
  echo "rm  held-out accuracy $(v rm val_accuracy '$p') on $(v rm val_pairs '$p') pairs, ECE $(v rm val_ece '$p')"
  for a in dpo kto; do
    echo "$a preference prob $(v $a val_pref_prob 1p) -> $(v $a val_pref_prob '$p'), accuracy $(v $a val_pref_accuracy 1p) -> $(v $a val_pref_accuracy '$p'), sampled KL $(v $a val_kl_sampled '$p'), log-ratio chosen $(v $a val_logratio_chosen '$p') rejected $(v $a val_logratio_rejected '$p')"
  done
  cat "$OUT/times.txt"
} | tee "$OUT/summary.txt"
