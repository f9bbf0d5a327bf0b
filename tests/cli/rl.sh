#!/bin/sh
# rlhf ppo / rlhf bon: flags, wrong files, a short run of each algorithm,
# bit-identical resume, Ctrl-C, best-of-n output and its SFT set.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
SH=${RLHF_SHARED:-../shared}

# a tokenizer and a very small policy (pretrained for a few steps)
head -c 60000 "$SH/data/tinyshakespeare.txt" >"$TMP/ts.txt"
"$RLHF" tokenizer train --input "$TMP/ts.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$TMP/ts.txt" --out "$TMP/data" --quiet || exit 1
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/lm.ckpt" --layers 1 --heads 2 --channels 32 --seq 32 --context 64 \
  --batch 4 --steps 3 --quiet || exit 1
printf 'the king\nwhat say you\n{"prompt": "good lord"}\n\nshall we\n' >"$TMP/p.txt"
B="--policy $TMP/lm.ckpt --tokenizer $TMP/tok.bin --prompts $TMP/p.txt --raw --max-new 8"
A="$B --prompts-per-step 4 --minibatch 4 --quiet"

# usage errors exit 2
expect_exit 0 "$RLHF" ppo --help
expect_out "kl-target"
expect_exit 2 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --algo sac
expect_exit 2 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --steps 0
expect_exit 2 "$RLHF" ppo $A --out "$TMP/x.ckpt"
expect_exit 2 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --algo rloo --k 1
expect_out "k >= 2"
expect_exit 2 "$RLHF" bon $B --reward word:the --n 0
expect_exit 2 "$RLHF" bon --policy "$TMP/lm.ckpt" --reward word:the --prompts "$TMP/p.txt"

# wrong files exit 1 with a message
expect_exit 1 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --policy "$TMP/none.ckpt"
expect_out "none.ckpt"
expect_exit 1 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --tokenizer "$TMP/p.txt"
expect_exit 1 "$RLHF" ppo $A --reward "rm:$TMP/none.ckpt" --out "$TMP/x.ckpt"
expect_out "none.ckpt"
expect_exit 1 "$RLHF" ppo $A --reward "magic:1" --out "$TMP/x.ckpt"
expect_out "unknown reward kind"
expect_exit 1 "$RLHF" ppo $A --reward "regex:(" --out "$TMP/x.ckpt"
printf 'ok\n{"prompt": 3}\n' >"$TMP/bad.txt"
expect_exit 1 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --prompts "$TMP/bad.txt"
expect_out "bad.txt:2"
expect_exit 1 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --prompts "$TMP/none.txt"
expect_exit 1 "$RLHF" ppo $A --reward word:the --out "$TMP/x.ckpt" --resume
expect_true "no checkpoint left behind by failed runs" test ! -e "$TMP/x.ckpt"

# PPO: 4 iterations straight == 2 + resume 2 (bit-identical checkpoints)
K="--reward word:the --kl-target 1 --kl-horizon 100"
expect_exit 0 "$RLHF" ppo $A $K --out "$TMP/a.ckpt" --steps 4 --log "$TMP/a.jsonl"
expect_true "4 metric rows (monitor event rows aside)" test "$(grep -vc "\"event\"" "$TMP/a.jsonl")" -eq 4
for key in reward_mean reward_std '"kl"' entropy clipfrac approx_kl explained_var resp_len t_gen t_score t_train gen_tok_per_s; do
  expect_true "metric $key" grep -q "$key" "$TMP/a.jsonl"
done
expect_exit 0 "$RLHF" ppo $A $K --out "$TMP/b.ckpt" --steps 2
expect_exit 0 "$RLHF" ppo $A $K --out "$TMP/b.ckpt" --steps 4 --resume
# Training state, not bytes: the provenance metadata (command line, time) differs.
expect_true "resumed policy identical" "$RLHF_BUILD/tools/ckpt_cmp" "$TMP/a.ckpt" "$TMP/b.ckpt"
expect_true "resumed value net identical" "$RLHF_BUILD/tools/ckpt_cmp" "$TMP/a.ckpt.value" "$TMP/b.ckpt.value"
expect_exit 1 "$RLHF" ppo $A $K --out "$TMP/b.ckpt" --steps 6 --resume --seed 9
expect_out "other settings"
# the trained policy is an ordinary checkpoint
expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "the" --max-tokens 5 --quiet

# RLOO, GRPO, shared trunk with entropy bonus, k3
expect_exit 0 "$RLHF" ppo $A --reward word:the --out "$TMP/r.ckpt" --steps 1 --algo rloo --k 2
expect_exit 0 "$RLHF" ppo $A --reward length:5 --out "$TMP/g.ckpt" --steps 1 --algo grpo --k 4 --grpo-loss dr
expect_exit 0 "$RLHF" ppo $A --reward 'regex:^ ?[a-z]' --out "$TMP/s.ckpt" --steps 1 --value shared --ent-coef 0.01 --kl k3
expect_true "shared trunk writes no value file" test ! -e "$TMP/s.ckpt.value"
expect_exit 0 "$RLHF" ppo $A --reward 'groups:word:the;length:6' --aggregate min --out "$TMP/m.ckpt" --steps 1 --algo rloo
# groups: each group's mean reward is logged per iteration; with --aggregate mean
# the logged reward_mean is their average (population weights are uniform)
expect_exit 0 "$RLHF" ppo $A --reward 'groups:word:the;length:6' --aggregate mean --out "$TMP/m2.ckpt" --steps 2 --algo rloo --log "$TMP/m2.jsonl"
expect_true "ppo logs reward_group_0 and _1 every iteration" test "$(grep -c '"reward_group_0":.*"reward_group_1":' "$TMP/m2.jsonl")" -eq 2
expect_true "reward_mean = mean of the group means" sh -c "sed 's/.*\"reward_mean\":\([^,]*\),.*\"reward_group_0\":\([^,]*\),\"reward_group_1\":\([^,}]*\).*/\1 \2 \3/' '$TMP/m2.jsonl' |
  awk '{ d = \$1 - (\$2 + \$3) / 2; if (d < 0) d = -d; if (d > 1e-5) bad = 1 } END { exit bad }'"
expect_exit 0 "$RLHF" ppo $A --reward word:the --out "$TMP/m3.ckpt" --steps 1 --algo rloo --log "$TMP/m3.jsonl"
expect_true "one reward: no group columns" sh -c "! grep -q reward_group_ '$TMP/m3.jsonl'"

# Ctrl-C: the checkpoint is written, the run says so, and it resumes
"$RLHF" ppo $A $K --out "$TMP/c.ckpt" --steps 100000 --log "$TMP/c.jsonl" >"$TMP/c.out" 2>&1 &
pid=$!
i=0
while [ ! -s "$TMP/c.jsonl" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
expect_true "Ctrl-C exits 0 (rc $rc)" test $rc -eq 0
expect_true "Ctrl-C message" grep -q "interrupted" "$TMP/c.out"
expect_true "Ctrl-C checkpoint" test -s "$TMP/c.ckpt"
n=$(wc -l <"$TMP/c.jsonl")
expect_exit 0 "$RLHF" ppo $A $K --out "$TMP/c.ckpt" --steps $((n + 1)) --resume --log "$TMP/c.jsonl"
expect_true "resumed after Ctrl-C: one more row" test "$(wc -l <"$TMP/c.jsonl")" -eq $((n + 1))

# a reward model from `rlhf rm` as the reward, the value network's start, and an ensemble
printf '{"prompt": "the king", "chosen": "the the lord", "rejected": "no"}\n{"prompt": "what say you", "chosen": "the king", "rejected": "nay"}\n{"prompt": "good lord", "chosen": "the end", "rejected": "go"}\n' >"$TMP/pairs.jsonl"
"$RLHF" rm --model "$TMP/lm.ckpt" --tokenizer "$TMP/tok.bin" --records "$TMP/pairs.jsonl" --out "$TMP/rm.ckpt" --steps 2 --seq 32 --batch 2 --quiet >/dev/null 2>&1
expect_true "rm trained" test -s "$TMP/rm.ckpt"
expect_exit 0 "$RLHF" ppo $A --reward "rm:$TMP/rm.ckpt" --value-init "$TMP/rm.ckpt" --out "$TMP/rmp.ckpt" --steps 1 --log "$TMP/rmp.jsonl"
expect_true "scoring time logged" grep -q t_score "$TMP/rmp.jsonl"
expect_exit 0 "$RLHF" bon $B --reward "ensemble:var=0.5:$TMP/rm.ckpt,$TMP/rm.ckpt" --n 2 --quiet
expect_exit 1 "$RLHF" ppo $A --reward "rm:$TMP/lm.ckpt" --out "$TMP/x.ckpt"
expect_out "not a reward model"

# best-of-n
"$RLHF" bon $B --reward word:the --n 4 --sft-out "$TMP/sft.jsonl" --quiet >"$TMP/bon.jsonl" 2>"$TMP/bon.err"
expect_true "bon exit 0" test $? -eq 0
expect_true "bon: one line per prompt" test "$(wc -l <"$TMP/bon.jsonl")" -eq 4
"$RLHF" bon $B --reward 'groups:word:the;length:6' --n 4 >/dev/null 2>"$TMP/bong.err"
expect_true "bon reports each group's mean reward" test "$(grep -c '^  group [01]: mean reward' "$TMP/bong.err")" -eq 2
"$RLHF" bon $B --reward word:the --n 4 >/dev/null 2>"$TMP/bon.err"
expect_true "bon reports the analytic KL log 4 - 3/4" grep -q "0.6363" "$TMP/bon.err"
expect_true "bon: best >= mean on every line" /usr/bin/python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$TMP/bon.jsonl')]
sys.exit(0 if all(r['reward']>=r['mean_reward'] for r in rows) else 1)"
expect_exit 0 "$RLHF" feedback stats --input "$TMP/sft.jsonl"
expect_out "demo"
expect_exit 1 "$RLHF" bon $B --reward word:the --policy "$TMP/p.txt"
finish
