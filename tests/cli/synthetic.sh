#!/bin/sh
# synthetic.sh — the synthetic preference task of issue 4, end to end through the CLI.
# Rule: annotators prefer the response that names the word in the prompt
# (tests/data/gen_synthetic.py). A model smaller than `tiny` (L2 NH2 C64, BPE
# with 400 ids trained here) is fine-tuned on demonstrations that are
# indifferent to the rule, then:
#   rm   reaches >= 95 % held-out pairwise accuracy;
#   dpo  and kto move the policy's held-out preference for the rule's answer
#        from ~50 % to >= 90 % (accuracy of log pi(chosen) > log pi(rejected)
#        and the preference probability mean sigma(log pi(chosen) - log pi(rejected))),
#        with the sampled KL to the reference finite and logged.
# Timings (2 shared cores, heavy load): about 10-20 s per stage.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
S="--threads 1 --quiet"
last() { grep "\"$2\"" "$1" | tail -n 1 | sed -E "s/.*\"$2\":([^,}]*).*/\1/"; }
first() { grep "\"$2\"" "$1" | head -n 1 | sed -E "s/.*\"$2\":([^,}]*).*/\1/"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "null" && a + 0 >= b + 0) }'; }
between() { awk -v a="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(a != "null" && a + 0 >= lo + 0 && a + 0 <= hi + 0) }'; }

expect_exit 0 $PY "${RLHF_ROOT:-.}/tests/data/gen_synthetic.py" "$TMP" 1000 1500 600 4
expect_exit 0 "$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 400 --out "$TMP/tok.bin" --quiet
M="--tokenizer $TMP/tok.bin --seq 32"

# SFT from a fresh L2 NH2 C64 model; the validation loss must fall
expect_exit 0 "$RLHF" sft $M --data "$TMP/demos.jsonl" --out "$TMP/sft.ckpt" --layers 2 --heads 2 --channels 64 \
  --steps 500 --batch 16 --lr 3e-3 --eval-every 100 --log "$TMP/sft.jsonl" $S
v0=$(first "$TMP/sft.jsonl" val_loss); v1=$(last "$TMP/sft.jsonl" val_loss)
expect_true "sft val loss falls ($v0 -> $v1)" awk -v a="$v0" -v b="$v1" 'BEGIN { exit !(b < a && b < 0.4) }'

# reward model: >= 95 % held-out accuracy, calibration and normalisation logged
expect_exit 0 "$RLHF" rm $M --model "$TMP/sft.ckpt" --records "$TMP/pairs.jsonl" --out "$TMP/rm.ckpt" \
  --steps 400 --batch 16 --lr 1e-3 --log "$TMP/rm.jsonl" $S
acc=$(last "$TMP/rm.jsonl" val_accuracy); ece=$(last "$TMP/rm.jsonl" val_ece)
expect_true "rm held-out accuracy $acc >= 0.95" ge "$acc" 0.95
expect_true "rm ECE $ece in [0, 0.2]" between "$ece" 0 0.2
expect_true "rm logs reward_std" ge "$(last "$TMP/rm.jsonl" reward_std)" 0.001
# the reward model scores the rule's answer higher on new prompts
printf '%s\n' '{"prompt":"say tiger #1","response":"i say tiger."}' '{"prompt":"say tiger #1","response":"i say lemon."}' \
  '{"prompt":[{"role":"user","content":"tell me piano #2"}],"response":"i say piano."}' '{"prompt":"tell me piano #2","response":"i say stone."}' > "$TMP/q.jsonl"
expect_exit 0 sh -c "'$RLHF' score --rm '$TMP/rm.ckpt' --tokenizer '$TMP/tok.bin' --threads 1 < '$TMP/q.jsonl' > '$TMP/scores.jsonl'"
expect_true "score prints 4 lines" test "$(wc -l < "$TMP/scores.jsonl")" -eq 4
s1=$(sed -n 1p "$TMP/scores.jsonl" | sed -E 's/.*"score":([^,}]*).*/\1/'); s2=$(sed -n 2p "$TMP/scores.jsonl" | sed -E 's/.*"score":([^,}]*).*/\1/')
s3=$(sed -n 3p "$TMP/scores.jsonl" | sed -E 's/.*"score":([^,}]*).*/\1/'); s4=$(sed -n 4p "$TMP/scores.jsonl" | sed -E 's/.*"score":([^,}]*).*/\1/')
expect_true "rule answer scores higher ($s1 > $s2, $s3 > $s4)" awk -v a="$s1" -v b="$s2" -v c="$s3" -v d="$s4" 'BEGIN { exit !(a > b && c > d) }'

# DPO: held-out preference ~50 % -> >= 90 %, KL finite and logged
expect_exit 0 "$RLHF" dpo $M --model "$TMP/sft.ckpt" --records "$TMP/pairs.jsonl" --out "$TMP/dpo.ckpt" \
  --steps 400 --batch 8 --lr 5e-4 --eval-every 200 --kl-tokens 12 --log "$TMP/dpo.jsonl" $S
p0=$(first "$TMP/dpo.jsonl" val_pref_prob); p1=$(last "$TMP/dpo.jsonl" val_pref_prob)
a0=$(first "$TMP/dpo.jsonl" val_pref_accuracy); a1=$(last "$TMP/dpo.jsonl" val_pref_accuracy)
kl=$(last "$TMP/dpo.jsonl" val_kl_sampled)
expect_true "dpo starts indifferent (prob $p0, acc $a0)" between "$p0" 0.35 0.65
expect_true "dpo ends >= 0.9 (prob $p1, acc $a1)" sh -c "awk -v a=$p1 -v b=$a1 'BEGIN { exit !(a >= 0.9 && b >= 0.9) }'"
expect_true "dpo sampled KL finite ($kl)" between "$kl" -1 1000
expect_true "dpo logs both log-probs" grep -q '"logp_chosen".*"logp_rejected"' "$TMP/dpo.jsonl"

# KTO on the same judgements as thumbs (chosen desirable, rejected undesirable)
expect_exit 0 "$RLHF" kto $M --model "$TMP/sft.ckpt" --records "$TMP/pairs.jsonl" --out "$TMP/kto.ckpt" \
  --steps 500 --batch 8 --lr 5e-4 --beta 0.3 --eval-every 250 --kl-tokens 12 --log "$TMP/kto.jsonl" $S
p0=$(first "$TMP/kto.jsonl" val_pref_prob); p1=$(last "$TMP/kto.jsonl" val_pref_prob)
a1=$(last "$TMP/kto.jsonl" val_pref_accuracy); kl=$(last "$TMP/kto.jsonl" val_kl_sampled)
expect_true "kto starts indifferent (prob $p0)" between "$p0" 0.35 0.65
expect_true "kto ends >= 0.9 (prob $p1, acc $a1)" sh -c "awk -v a=$p1 -v b=$a1 'BEGIN { exit !(a >= 0.9 && b >= 0.9) }'"
expect_true "kto sampled KL finite ($kl)" between "$kl" -1 1000
expect_true "kto logs z0" grep -q '"kl_z0"' "$TMP/kto.jsonl"
finish
