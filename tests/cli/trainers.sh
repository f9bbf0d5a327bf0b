#!/bin/sh
# trainers.sh — `rlhf sft|rm|score|dpo|kto`: usage errors exit 2, bad files
# exit 1 with a message, checkpoint kinds are checked, every record kind the
# reward model takes (pairs, rankings, thumbs, ratings, ties) trains, Ctrl-C
# leaves a loadable checkpoint, a failed run leaves the old output intact.
# Tiny models (L1 NH1 C16): each command runs in about a second.
. "$(dirname "$0")/lib.sh"
S="--threads 1 --quiet --layers 1 --heads 1 --channels 16 --seq 48"
printf 'hello there how are you\nsay the word please\n' > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet
T="--tokenizer $TMP/tok.bin"
cat > "$TMP/mixed.jsonl" <<'J'
{"prompt": "say a word", "response": "hello"}
{"prompt": "say a word", "chosen": "hello there", "rejected": "how"}
{"prompt": "say the word", "chosen": "the word", "rejected": "are you"}
{"prompt": "how are you", "responses": ["fine", "bad", "ok thanks"], "ranking": [2, 0, 1]}
{"prompt": "please", "completion": "say please", "label": true}
{"prompt": "please", "completion": "no", "label": false}
{"v": 1, "kind": "pair", "source": "t", "annotator": "ann1", "groups": {"team": "red"}, "prompt": [{"role": "user", "text": "tie?"}], "responses": ["a", "b"], "choice": "tie"}
{"v": 1, "kind": "rating", "source": "t", "annotator": "ann2", "prompt": [{"role": "user", "text": "rate"}], "responses": ["good one"], "rating": 5, "scale": [1, 5]}
J

# ---- usage errors: exit 2 ----
expect_exit 2 "$RLHF" sft $T --out "$TMP/x.ckpt"
expect_out "give --data FILE or --records FILE"
expect_exit 2 "$RLHF" sft $T --data "$TMP/mixed.jsonl"
expect_out "out"
expect_exit 2 "$RLHF" sft $T --data "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --lr -1
expect_exit 2 "$RLHF" rm $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --ties maybe
expect_exit 2 "$RLHF" rm $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --group red
expect_out "key=value"
expect_exit 2 "$RLHF" rm $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --micro-batch 1
expect_exit 2 "$RLHF" dpo $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --loss sigmoidal
expect_exit 2 "$RLHF" dpo $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --label-smoothing 0.7
expect_exit 2 "$RLHF" kto $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --batch 1
expect_exit 2 "$RLHF" kto $T --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" --lambda-d -1
expect_exit 2 "$RLHF" score --tokenizer "$TMP/tok.bin"
expect_out "rm"

# ---- wrong files: exit 1 with a message ----
expect_exit 1 "$RLHF" sft $T --data "$TMP/nope.jsonl" --out "$TMP/x.ckpt" $S
expect_out "nope.jsonl"
expect_exit 1 "$RLHF" sft --tokenizer "$TMP/text.txt" --data "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" $S
expect_out "tokenizer"
expect_exit 1 "$RLHF" sft $T --model "$TMP/text.txt" --data "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" $S
expect_out "checkpoint"
printf '{"prompt": "x", "response": "y"}\n{"prompt": 3}\n' > "$TMP/bad.jsonl"
expect_exit 1 "$RLHF" sft $T --data "$TMP/bad.jsonl" --out "$TMP/x.ckpt" $S
expect_out "bad.jsonl:2"
expect_exit 0 "$RLHF" sft $T --data "$TMP/bad.jsonl" --skip-bad --out "$TMP/x.ckpt" --steps 1 $S
expect_exit 1 "$RLHF" rm $T --records "$TMP/bad.jsonl" --skip-bad --out "$TMP/x.ckpt" $S
expect_out "no training judgements"
printf '{"prompt": "x", "completion": "y", "label": true}\n' > "$TMP/thumb1.jsonl"
expect_exit 1 "$RLHF" dpo $T --records "$TMP/thumb1.jsonl" --out "$TMP/x.ckpt" $S
expect_out "no strict preference pairs"

# ---- the pipeline on every record kind; metadata kinds are checked ----
expect_exit 0 "$RLHF" sft $T --data "$TMP/mixed.jsonl" --winners --out "$TMP/sft.ckpt" --steps 3 --val-fraction 0 --log "$TMP/sft.jsonl" $S
expect_true "sft logs loss" grep -q '"loss"' "$TMP/sft.jsonl"
expect_exit 0 "$RLHF" rm $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/rm.ckpt" --steps 3 --batch 8 --val-fraction 0 --log "$TMP/rm.jsonl" $S
expect_true "rm metadata: kind reward" grep -aq "reward" "$TMP/rm.ckpt"
expect_true "rm metadata: Davidson (ties) + rankings + thumbs" grep -aq "davidson+rank+thumbs" "$TMP/rm.ckpt"
expect_true "rm logs reward statistics" grep -q '"reward_std"' "$TMP/rm.jsonl"
"$RLHF" rm $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/rm2.ckpt" --steps 1 --val-fraction 0 $S --no-quiet > "$TMP/out" 2>&1
expect_out "3 pairs, 1 rankings, 3 thumbs"
expect_exit 0 "$RLHF" rm $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/rm3.ckpt" --steps 1 --group team=red --val-fraction 0 $S --no-quiet
expect_out "1 pairs, 0 rankings, 0 thumbs .* 7 records outside --group"
expect_true "rm metadata: group" grep -aq "team=red" "$TMP/rm3.ckpt"
expect_exit 1 "$RLHF" rm $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/rm3.ckpt" --steps 1 --ties skip --group team=blue --val-fraction 0 $S
expect_out "no training judgements"
# an LM checkpoint is not a reward model, a reward model is not a policy
echo '{"prompt": "say a word", "response": "hello"}' > "$TMP/q.jsonl"
expect_exit 1 "$RLHF" score --rm "$TMP/sft.ckpt" $T --input "$TMP/q.jsonl"
expect_out "'lm' checkpoint, not a reward model"
expect_exit 1 "$RLHF" sft $T --model "$TMP/rm.ckpt" --data "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" $S
expect_out "'reward' checkpoint"
expect_exit 1 "$RLHF" dpo $T --model "$TMP/rm.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/x.ckpt" $S
expect_out "'reward' checkpoint"
# scoring: a file, stdin, malformed lines
expect_exit 0 "$RLHF" score --rm "$TMP/rm.ckpt" $T --input "$TMP/q.jsonl" --threads 1
expect_out '"score":[-0-9.e]+,"score_norm":'
expect_exit 0 sh -c "'$RLHF' score --rm '$TMP/rm.ckpt' $T --threads 1 < '$TMP/q.jsonl'"
expect_out '"prompt":"say a word"'
printf '{"prompt": "a", "response": "b"}\n{"prompt": "a"}\n' > "$TMP/q2.jsonl"
expect_exit 1 "$RLHF" score --rm "$TMP/rm.ckpt" $T --input "$TMP/q2.jsonl"
expect_out "q2.jsonl:2: needs a string \"response\""
printf 'completely different words here\nzebra quartz\n' > "$TMP/text2.txt"
"$RLHF" tokenizer train --input "$TMP/text2.txt" --vocab-size 300 --out "$TMP/tok2.bin" --quiet
expect_exit 1 "$RLHF" score --rm "$TMP/rm.ckpt" --tokenizer "$TMP/tok2.bin" --input "$TMP/q.jsonl"
expect_out "vocabulary"
# DPO family and KTO on the same records
for loss in dpo ipo rdpo orpo simpo; do
  expect_exit 0 "$RLHF" dpo $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/dpo.ckpt" --loss $loss --steps 2 --batch 2 --val-fraction 0 --log "$TMP/dpo_$loss.jsonl" $S
done
expect_exit 1 "$RLHF" dpo $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/dpo.ckpt" --loss cdpo --steps 2 $S
expect_out "label-smoothing"
expect_exit 0 "$RLHF" dpo $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/dpo.ckpt" --loss cdpo --label-smoothing 0.1 --steps 2 --batch 2 --val-fraction 0 $S
expect_true "dpo logs chosen and rejected log-probs" grep -q '"logp_chosen".*"logp_rejected"' "$TMP/dpo_dpo.jsonl"
expect_exit 0 "$RLHF" kto $T --model "$TMP/sft.ckpt" --records "$TMP/mixed.jsonl" --out "$TMP/kto.ckpt" --steps 2 --batch 2 --val-fraction 0 --log "$TMP/kto.jsonl" $S
expect_true "kto logs z0" grep -q '"kl_z0"' "$TMP/kto.jsonl"
sed -n 2,3p "$TMP/mixed.jsonl" > "$TMP/pairs.jsonl"
expect_exit 1 "$RLHF" kto $T --model "$TMP/sft.ckpt" --records "$TMP/pairs.jsonl" --no-from-pairs --out "$TMP/kto.ckpt" --steps 2 --batch 2 --val-fraction 0 --threads 1 --seq 48
expect_out "thumbs"
expect_true "dpo output is an lm checkpoint usable by sft" "$RLHF" sft $T --model "$TMP/dpo.ckpt" --data "$TMP/mixed.jsonl" --out "$TMP/sft2.ckpt" --steps 1 --val-fraction 0 --threads 1 --quiet

# ---- a failed run keeps the old output; Ctrl-C writes a loadable checkpoint ----
cp "$TMP/sft.ckpt" "$TMP/keep.ckpt"
expect_exit 1 "$RLHF" sft $T --data "$TMP/bad.jsonl" --out "$TMP/keep.ckpt" $S
expect_true "old checkpoint intact" cmp -s "$TMP/sft.ckpt" "$TMP/keep.ckpt"
"$RLHF" sft $T --data "$TMP/mixed.jsonl" --out "$TMP/int.ckpt" --steps 100000000 --val-fraction 0 --log "$TMP/int.jsonl" $S &
pid=$!
i=0
while [ $i -lt 300 ] && ! grep -q '"step":3,' "$TMP/int.jsonl" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
expect_true "Ctrl-C exits 130 (got $rc)" test "$rc" -eq 130
expect_true "Ctrl-C checkpoint loads" "$RLHF" sft $T --model "$TMP/int.ckpt" --data "$TMP/mixed.jsonl" --out "$TMP/int2.ckpt" --steps 1 --val-fraction 0 --threads 1 --quiet
finish
