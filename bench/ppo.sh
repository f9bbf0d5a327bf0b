#!/bin/sh
# bench/ppo.sh — wall time of one PPO iteration split into generation, scoring
# and training, and generation tokens/s at the rollout batch size.
#
#   sh bench/ppo.sh [WORK_DIR]
#   env: RLHF (build/rlhf), RLHF_SHARED (../shared), CONFIG (tiny), PROMPTS_PER_STEP (16),
#        MAX_NEW (64), MINIBATCH (8), EPOCHS (4), ITERS (3), THREADS (0 = all cores),
#        REWARD (word:the; e.g. rm:PATH for a reward model so scoring costs a forward),
#        ALGO (ppo)
#
# A policy of the named config is pretrained for a few steps first (the weights
# do not matter for timing, the shapes do). The first iteration is reported
# separately (it includes first-touch page faults); the summary is the mean of
# the others. Times on a shared machine are noisy: run it on an idle one.
set -eu
RLHF=${RLHF:-build/rlhf}
SH=${RLHF_SHARED:-../shared}
W=${1:-bench-ppo-out}
CONFIG=${CONFIG:-tiny}
PPS=${PROMPTS_PER_STEP:-16}
MAX_NEW=${MAX_NEW:-64}
MB=${MINIBATCH:-8}
EPOCHS=${EPOCHS:-4}
ITERS=${ITERS:-3}
THREADS=${THREADS:-0}
REWARD=${REWARD:-word:the}
ALGO=${ALGO:-ppo}
mkdir -p "$W"
if [ ! -s "$W/lm-$CONFIG.ckpt" ]; then
  head -c 300000 "$SH/data/tinyshakespeare.txt" >"$W/ts.txt"
  "$RLHF" tokenizer train --input "$W/ts.txt" --vocab-size 512 --out "$W/tok.bin" --quiet
  "$RLHF" data prepare --tokenizer "$W/tok.bin" --input "$W/ts.txt" --out "$W/data" --quiet
  "$RLHF" pretrain --data "$W/data" --out "$W/lm-$CONFIG.ckpt" --config "$CONFIG" --seq 128 --context 256 --batch 8 \
    --steps 5 --quiet --threads "$THREADS"
fi
i=0
: >"$W/prompts.txt"
while [ $i -lt 64 ]; do
  printf 'prompt %d: the king said\nwhat say you, %d\n' $i $i >>"$W/prompts.txt"
  i=$((i + 1))
done
rm -f "$W/ppo.jsonl"
"$RLHF" ppo --policy "$W/lm-$CONFIG.ckpt" --tokenizer "$W/tok.bin" --reward "$REWARD" --prompts "$W/prompts.txt" --raw \
  --algo "$ALGO" --prompts-per-step "$PPS" --max-new "$MAX_NEW" --minibatch "$MB" --epochs "$EPOCHS" --steps "$ITERS" \
  --out "$W/ppo.ckpt" --log "$W/ppo.jsonl" --threads "$THREADS" --quiet
echo "bench/ppo: config $CONFIG, algo $ALGO, $PPS rollouts x up to $MAX_NEW tokens, minibatch $MB, $EPOCHS epochs, threads $THREADS ($(nproc) cores)"
awk '
  function val(key,   m) { if (match($0, "\"" key "\":[-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m + 0 } return 0 }
  { g = val("t_gen"); s = val("t_score"); t = val("t_train"); tps = val("gen_tok_per_s"); len = val("resp_len")
    printf "  iter %d: generation %.3f s (%.0f tok/s, mean response %.1f tokens), scoring %.3f s, training %.3f s, total %.3f s\n", NR, g, tps, len, s, t, g + s + t
    if (NR > 1) { G += g; S += s; T += t; TPS += tps; n++ } }
  END { if (n == 0) exit
        tot = (G + S + T) / n
        printf "mean of iters 2..%d: %.3f s per iteration = generation %.3f s (%.0f%%) + scoring %.3f s (%.0f%%) + training %.3f s (%.0f%%); generation %.0f tokens/s\n",
               NR, tot, G / n, 100 * G / n / tot, S / n, 100 * S / n / tot, T / n, 100 * T / n / tot, TPS / n }
' "$W/ppo.jsonl"
