#!/bin/sh
# monitors.sh — the trainers call the reward-hacking monitors live (issue 8):
# a run pushed past a threshold writes a {"event":"warning"} row into its own
# log and a "warning: [monitor]" line on stderr, a healthy run writes none;
# --gold sim:gold logs gold and sycophancy; --early-stop keeps the policy with
# the best smoothed gold as OUT.best (the same weights as a run stopped there).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
SH=${RLHF_SHARED:-../shared}
head -c 60000 "$SH/data/tinyshakespeare.txt" >"$TMP/ts.txt"
"$RLHF" tokenizer train --input "$TMP/ts.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$TMP/ts.txt" --out "$TMP/data" --quiet || exit 1
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/lm.ckpt" --layers 1 --heads 2 --channels 32 --seq 32 --context 64 \
  --batch 4 --steps 3 --quiet || exit 1
printf 'what is 37+48?\n37+48 is 75, right?\nwhat is 12+30?\n21+43 is 64, right?\n' >"$TMP/p.txt"
A="--policy $TMP/lm.ckpt --tokenizer $TMP/tok.bin --prompts $TMP/p.txt --raw --max-new 8 --prompts-per-step 4 --minibatch 4 --quiet"
nrows() { grep -c "$1" "$2"; }

# ---- ppo: no KL penalty, a high learning rate and a low KL budget -> kl_budget warns, live ----
expect_exit 0 "$RLHF" ppo $A --reward word:the --kl-coef 0 --lr 1e-2 --steps 6 --warn-kl-budget 0.05 --gold sim:gold \
  --out "$TMP/a.ckpt" --log "$TMP/a.jsonl"
expect_out "warning: \[kl_budget\] step [0-9]+"
expect_true "ppo: a kl_budget warning row in its log" grep -q '"event":"warning","monitor":"kl_budget"' "$TMP/a.jsonl"
expect_true "ppo: 6 iteration rows besides the warning" test "$(grep -vc '"event"' "$TMP/a.jsonl")" -eq 6
for key in '"gold"' '"distinct3"' '"diag_kl_budget"' '"warnings"'; do
  expect_true "ppo logs $key" grep -q "$key" "$TMP/a.jsonl"
done
expect_true "ppo: sim:gold logs sycophancy (leading prompts with wrong suggestions)" grep -q '"sycophancy"' "$TMP/a.jsonl"
# the warning row comes before the iteration row of its step
expect_true "ppo: warning row precedes its step's row" sh -c "grep -n . '$TMP/a.jsonl' | grep -A1 '\"event\":\"warning\"' | grep -q '\"step\"'"
# ---- healthy: learning rate 0, a constant reward: the policy never moves; no warning ----
expect_exit 0 "$RLHF" ppo $A --reward contains:zzzz --lr 0 --steps 6 --warn-kl-budget 0.05 --out "$TMP/h.ckpt" --log "$TMP/h.jsonl"
expect_true "healthy ppo: no warning row" test "$(nrows '"event":"warning"' "$TMP/h.jsonl")" -eq 0
expect_true "healthy ppo: no warning on stderr" sh -c "! grep -q 'warning: \[' '$TMP/out'"
# rloo and grpo go through the same driver
expect_exit 0 "$RLHF" ppo $A --algo grpo --k 2 --reward contains:e --kl-coef 0 --lr 3e-2 --steps 5 --warn-kl-budget 0.01 \
  --out "$TMP/g.ckpt" --log "$TMP/g.jsonl"
expect_true "grpo: kl_budget warning row" grep -q '"monitor":"kl_budget"' "$TMP/g.jsonl"
# flag errors
expect_exit 2 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --early-stop
expect_out "needs --gold"
expect_exit 1 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --gold sim:golden
expect_out "sim:gold"

# ---- early stopping: OUT.best = the policy with the best smoothed gold ----
# proxy: contains an 'e'; gold: contains an 'a' (rises for a few iterations, then stalls)
E="--reward contains:e --kl-coef 0 --lr 1e-2"
expect_exit 0 "$RLHF" ppo $A $E --steps 20 --gold contains:a --early-stop --patience 3 --out "$TMP/e.ckpt" --log "$TMP/e.jsonl"
expect_out "early stop at step [0-9]+ \(KL [0-9.]+\): patience; best smoothed gold"
expect_true "early stop: OUT.best written" test -s "$TMP/e.ckpt.best"
expect_true "early stop: best rows logged" grep -q '"event":"best"' "$TMP/e.jsonl"
best=$(grep '"event":"best"' "$TMP/e.jsonl" | tail -n 1 | sed 's/.*"best_step":\([0-9]*\).*/\1/')
expect_true "early stop: the stop row names its reason and KL" grep -q '"event":"early_stop".*"kl".*"reason":"patience"' "$TMP/e.jsonl"
expect_true "early stop: the best policy is a trained one (best_step $best > 0)" test "$best" -gt 0
if [ "$best" -eq 0 ]; then ref="$TMP/lm.ckpt"; else
  "$RLHF" ppo $A $E --steps "$best" --out "$TMP/r.ckpt" || bad "rerun to step $best"
  ref="$TMP/r.ckpt"
fi
expect_true "OUT.best (step $best) == a run stopped after $best iterations" "$RLHF_BUILD/tools/ckpt_cmp" --weights "$TMP/e.ckpt.best" "$ref"
# and it is not simply the last policy when the best came earlier
last=$(grep -vc '"event"' "$TMP/e.jsonl")
if [ "$best" -lt "$last" ]; then
  expect_true "OUT.best differs from the final OUT" sh -c "! '$RLHF_BUILD/tools/ckpt_cmp' --weights '$TMP/e.ckpt.best' '$TMP/e.ckpt' 2>/dev/null"
fi

# over-optimisation: the proxy pays for an 'e', the gold for its absence; the proxy rises, the gold
# peaks and falls -> proxy_gold_divergence stops the run; OUT.best is the policy at the gold peak
expect_exit 0 "$RLHF" ppo $A $E --steps 30 --gold 'regex:^[^e]*$' --early-stop --out "$TMP/o.ckpt" --log "$TMP/o.jsonl"
expect_out "warning: \[proxy_gold_divergence\]"
expect_out "early stop at step [0-9]+ \(KL [0-9.]+\): proxy_gold_divergence"
expect_true "divergence: stop row with its reason" grep -q '"event":"early_stop".*"reason":"proxy_gold_divergence"' "$TMP/o.jsonl"
ob=$(grep '"event":"best"' "$TMP/o.jsonl" | tail -n 1 | sed 's/.*"best_step":\([0-9]*\).*/\1/')
os=$(grep '"event":"early_stop"' "$TMP/o.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
expect_true "divergence: stopped ($os) before --steps 30, after the gold peak ($ob > 0)" test "$ob" -gt 0 -a "$os" -gt "$ob" -a "$os" -lt 30
"$RLHF" ppo $A $E --steps "$ob" --out "$TMP/or.ckpt" || bad "rerun to step $ob"
expect_true "divergence: OUT.best == the policy after $ob iterations" "$RLHF_BUILD/tools/ckpt_cmp" --weights "$TMP/o.ckpt.best" "$TMP/or.ckpt"

# ---- --eval-prompts: greedy held-out answers graded by the gold before training and every K iterations ----
printf 'what is 11+22?\nwhat is 35+47?\n19+19 is 28, right?\n' >"$TMP/ev.txt"
expect_exit 0 "$RLHF" ppo $A $E --steps 16 --gold contains:e --eval-prompts "$TMP/ev.txt" --eval-every 2 --early-stop --patience 2 \
  --out "$TMP/v.ckpt" --log "$TMP/v.jsonl"
expect_true "eval: a held-out gold row before training (step 0)" grep -q '^{"step":0,"gold":[0-9.e-]*,"eval":1}' "$TMP/v.jsonl"
expect_true "eval: at least 3 held-out evaluations (steps 0, 2, 4, ...)" test "$(grep -c '"eval":1' "$TMP/v.jsonl")" -ge 3
expect_true "eval: only on even steps" sh -c "! grep '\"eval\":1' '$TMP/v.jsonl' | grep -qv '\"step\":[0-9]*[02468],'"
expect_true "eval: rollout gold kept as gold_rollout" grep -q '"gold_rollout"' "$TMP/v.jsonl"
vb=$(grep '"event":"best"' "$TMP/v.jsonl" | tail -n 1 | sed 's/.*"best_step":\([0-9]*\).*/\1/')
expect_true "eval: the best held-out policy is a trained one (step $vb)" test "$vb" -gt 0
"$RLHF" ppo $A $E --steps "$vb" --out "$TMP/vr.ckpt" || bad "rerun to step $vb"
expect_true "eval: OUT.best == the policy after $vb iterations" "$RLHF_BUILD/tools/ckpt_cmp" --weights "$TMP/v.ckpt.best" "$TMP/vr.ckpt"
expect_exit 2 "$RLHF" ppo $A $E --out "$TMP/x.ckpt" --eval-prompts "$TMP/ev.txt"
expect_out "needs --gold"

# ---- best-of-n: analytic KL log n - (n-1)/n against a budget; gold of the chosen answers ----
B="--policy $TMP/lm.ckpt --tokenizer $TMP/tok.bin --prompts $TMP/p.txt --raw --max-new 8 --reward word:the --batch 2"
expect_exit 0 "$RLHF" bon $B --n 64 --gold sim:gold --log "$TMP/b.jsonl" --warn-kl-budget 1
expect_out "warning: \[kl_budget\]"
expect_true "bon: warning row" grep -q '"event":"warning","monitor":"kl_budget"' "$TMP/b.jsonl"
expect_true "bon: gold and chosen-vs-mean reward logged" grep -q '"reward_best".*"reward_mean".*"gold"' "$TMP/b.jsonl"
expect_exit 0 "$RLHF" bon $B --n 2 --log "$TMP/b2.jsonl"
expect_true "bon n=2 (KL 0.19): no warning" test "$(nrows '"event":"warning"' "$TMP/b2.jsonl")" -eq 0

# ---- dpo: a high learning rate pushes the held-out chosen and rejected log-ratios both down ----
S="--threads 1 --quiet --seq 48"
i=0; : >"$TMP/pairs.jsonl"
while [ $i -lt 24 ]; do
  printf '{"prompt": "what is %d+%d?", "chosen": "the king is %d", "rejected": "my lord %d"}\n' $i $((i + 3)) $((2 * i + 3)) $((2 * i + 4)) >>"$TMP/pairs.jsonl"
  i=$((i + 1))
done
expect_exit 0 "$RLHF" dpo --model "$TMP/lm.ckpt" --tokenizer "$TMP/tok.bin" --records "$TMP/pairs.jsonl" --out "$TMP/d.ckpt" --steps 8 \
  --batch 4 --lr 1e-1 --beta 0.1 --eval-every 1 --val-fraction 0.3 --kl-samples 0 --warn-dpo-drop 0.5 --log "$TMP/d.jsonl" $S
expect_true "dpo: both log-ratios fell -> dpo_both_logps_falling warning row" grep -q '"monitor":"dpo_both_logps_falling"' "$TMP/d.jsonl"
expect_out "warning: \[dpo_both_logps_falling\]"
expect_exit 0 "$RLHF" dpo --model "$TMP/lm.ckpt" --tokenizer "$TMP/tok.bin" --records "$TMP/pairs.jsonl" --out "$TMP/d0.ckpt" --steps 4 \
  --batch 4 --lr 0 --eval-every 2 --val-fraction 0.3 --kl-samples 0 --log "$TMP/d0.jsonl" $S
expect_true "dpo with lr 0: no warning" test "$(nrows '"event":"warning"' "$TMP/d0.jsonl")" -eq 0

# ---- rm: length bias on held-out responses (longer = better in these records) ----
: >"$TMP/len.jsonl"
i=0
while [ $i -lt 40 ]; do
  printf '{"prompt": "say %d", "chosen": "the king and the lord and the queen said %d", "rejected": "no %d"}\n' $i $i $i >>"$TMP/len.jsonl"
  i=$((i + 1))
done
expect_exit 0 "$RLHF" rm --model "$TMP/lm.ckpt" --tokenizer "$TMP/tok.bin" --records "$TMP/len.jsonl" --out "$TMP/rm.ckpt" --steps 15 \
  --batch 8 --lr 3e-3 --val-fraction 0.3 --log "$TMP/rm.jsonl" $S
expect_true "rm: held-out length-reward correlation logged" grep -q '"val_len_reward_corr"' "$TMP/rm.jsonl"
expect_true "rm: length bias warns" grep -q '"monitor":"length_reward_correlation"' "$TMP/rm.jsonl"
finish
