#!/bin/sh
# scripts/rl_e2e.sh — end-to-end online RL on a small pretrained model with a
# programmatic reward (+1 per occurrence of the word "the"), the full-size
# version of the engine tests in tests/unit/test_ppo.c.
#
#   sh scripts/rl_e2e.sh [OUT_DIR]        (RLHF=build/rlhf, RLHF_SHARED=../shared)
#   STEPS=80 LAYERS=2 CHANNELS=64 PRETRAIN_STEPS=150 ... override the sizes;
#   KL_TARGET=4 KL_COEF=1 (initial β) HORIZON=40 (episodes) the KL controller;
#   PPO_FLAGS, RLOO_FLAGS, GRPO_FLAGS extra `rlhf ppo` flags of one run (later flags win)
#   (STEPS=40 LAYERS=4 HEADS=4 CHANNELS=256 is the `tiny` config, several times
#   slower; with it RLOO needs RLOO_FLAGS="--lr 1e-4": at 3e-4 its updates drift
#   the policy away from the reference without raising the reward, docs/rl.md)
#   RUNS="ppo grpo" runs a subset
#
# Runs: PPO with the adaptive KL controller (target KL_TARGET nats), RLOO and
# GRPO (k = 4) with the same controller, and PPO with the KL coefficient at 0.
# Prints, per run: mean reward at the first iteration and over the last 5, the
# measured KL (old policy vs reference, nats per response) over the last 5, and
# whether it lies within ±50% of the target. A few minutes on 2 busy cores.
set -eu
RLHF=${RLHF:-build/rlhf}
SH=${RLHF_SHARED:-../shared}
OUT=${1:-rl-e2e-out}
STEPS=${STEPS:-80}
LAYERS=${LAYERS:-2}
HEADS=${HEADS:-2}
CHANNELS=${CHANNELS:-64}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-150}
KL_TARGET=${KL_TARGET:-4}
KL_COEF=${KL_COEF:-1}
HORIZON=${HORIZON:-40}
LR=${LR:-3e-4}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
if [ ! -s "$OUT/lm.ckpt" ]; then
  head -c 200000 "$SH/data/tinyshakespeare.txt" >"$OUT/ts.txt"
  "$RLHF" tokenizer train --input "$OUT/ts.txt" --vocab-size 300 --out "$OUT/tok.bin" --quiet
  "$RLHF" data prepare --tokenizer "$OUT/tok.bin" --input "$OUT/ts.txt" --out "$OUT/data" --quiet
  "$RLHF" pretrain --data "$OUT/data" --out "$OUT/lm.ckpt" --layers "$LAYERS" --heads "$HEADS" --channels "$CHANNELS" \
    --seq 64 --context 128 --batch 16 --steps "$PRETRAIN_STEPS" --lr 3e-3 --quiet
fi
printf 'the king\nwhat say you\n{"prompt": "good lord"}\nshall we\nmy lord, the\nI pray you\nwhere is\nO, that\n' >"$OUT/prompts.txt"
COMMON="--policy $OUT/lm.ckpt --tokenizer $OUT/tok.bin --reward word:the --prompts $OUT/prompts.txt --raw --max-new 24
  --steps $STEPS --lr $LR --value-lr $LR --quiet"
KL="--kl-coef $KL_COEF --kl-target $KL_TARGET --kl-horizon $HORIZON"
run() { # name, flags...
  name=$1; shift
  t0=$(date +%s)
  rm -f "$OUT/$name.jsonl" "$OUT/$name.ckpt" "$OUT/$name.ckpt.value"
  "$RLHF" ppo $COMMON "$@" --out "$OUT/$name.ckpt" --log "$OUT/$name.jsonl"
  t1=$(date +%s)
  awk -v name="$name" -v target="$KL_TARGET" -v secs=$((t1 - t0)) -v n="$STEPS" '
    function val(key,   m) { if (match($0, "\"" key "\":[-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m + 0 } return 0 }
    { r = val("reward_mean"); k = val("kl"); if (NR == 1) r0 = r; if (NR > n - 5) { rs += r; ks += k; c++ } beta = val("kl_coef") }
    END { rl = rs / c; kl = ks / c; band = (kl > 0.5 * target && kl < 1.5 * target) ? "yes" : "no";
          printf "%-10s reward %6.2f -> %6.2f   KL(last 5) %7.2f   beta %.3f   in ±50%% of %g: %s   (%d s)\n", name, r0, rl, kl, beta, target, band, secs }
  ' "$OUT/$name.jsonl"
}
echo "rl_e2e: model L$LAYERS C$CHANNELS, $STEPS iterations each, reward +1 per 'the' in 24 tokens, KL target $KL_TARGET nats"
for r in ${RUNS:-ppo rloo grpo ppo-kl0}; do
  case $r in
    ppo) run ppo --algo ppo --prompts-per-step 16 $KL ${PPO_FLAGS:-} ;;
    rloo) run rloo --algo rloo --k 4 --prompts-per-step 4 $KL ${RLOO_FLAGS:-} ;;
    grpo) run grpo --algo grpo --k 4 --prompts-per-step 4 --epochs 2 $KL ${GRPO_FLAGS:-} ;;
    ppo-kl0) run ppo-kl0 --algo ppo --prompts-per-step 16 --kl-coef 0 ;;
    *) echo "unknown run $r (ppo rloo grpo ppo-kl0)"; exit 2 ;;
  esac
done
