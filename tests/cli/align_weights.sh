#!/bin/sh
# align_weights.sh — annotator weights flow into the trainers
# (`rlhf rm|dpo|kto --annotator-weights`), bad weight files are refused, and
# `rlhf align reliability` writes Dawid-Skene weights the trainers accept.
# The flip test: annotator ann1 says alpha > beta three times, ann2 says
# beta > alpha once. Unweighted, the reward model prefers alpha (BT optimum
# P = 3/4); with ann1 at 0.1 and ann2 at 3 the weighted optimum is
# P(alpha > beta) = 0.3/3.3, so it must prefer beta.
. "$(dirname "$0")/lib.sh"
printf 'hello there how are you\nsay the word alpha beta please\n' > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet
P='"prompt": [{"role": "user", "text": "pick one"}], "responses": ["alpha", "beta"]'
for i in 1 2 3; do echo "{\"v\": 1, \"kind\": \"pair\", \"source\": \"t\", \"annotator\": \"ann1\", $P, \"choice\": \"a\"}"; done > "$TMP/w.jsonl"
echo "{\"v\": 1, \"kind\": \"pair\", \"source\": \"t\", \"annotator\": \"ann2\", $P, \"choice\": \"b\"}" >> "$TMP/w.jsonl"
printf 'id,weight\nann1,0.1\nann2,3\n' > "$TMP/wt.csv"
S="--threads 1 --layers 1 --heads 1 --channels 16 --seq 48 --val-fraction 0 --steps 40 --batch 4 --lr 1e-2 --tokenizer $TMP/tok.bin"
printf '{"prompt":"pick one","response":"alpha"}\n{"prompt":"pick one","response":"beta"}\n' > "$TMP/q.jsonl"
# prints "alpha" or "beta": the response the reward model scores higher
prefers() {
  "$RLHF" score --rm "$1" --tokenizer "$TMP/tok.bin" --input "$TMP/q.jsonl" --threads 1 |
    sed 's/.*"response":"\([a-z]*\)","score":\([-0-9.e]*\).*/\2 \1/' | sort -g | tail -n 1 | cut -d' ' -f2
}
expect_exit 0 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/rm0.ckpt" --quiet
expect_true "unweighted RM prefers the majority's alpha" test "$(prefers "$TMP/rm0.ckpt")" = alpha
expect_exit 0 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/rm1.ckpt" --annotator-weights "$TMP/wt.csv"
expect_out "Kish effective sample size 1.2 of 4 records"
expect_true "weighted RM prefers ann2's beta" test "$(prefers "$TMP/rm1.ckpt")" = beta
# DPO and KTO take the same flag (their losses weight pairs/thumbs by the record weight)
for w in none "$TMP/wt.csv"; do
  aw=""; [ "$w" != none ] && aw="--annotator-weights $w"
  expect_exit 0 "$RLHF" dpo $S --records "$TMP/w.jsonl" --out "$TMP/d.ckpt" --steps 1 --kl-samples 0 --quiet $aw
done
expect_exit 0 "$RLHF" kto $S --records "$TMP/w.jsonl" --out "$TMP/k.ckpt" --steps 1 --kl-samples 0 --annotator-weights "$TMP/wt.csv"
expect_out "annotator weights .*Kish effective sample size"

# ---- bad weight files: exit 1, a message naming the file and line ----
printf 'id,weight\nann1,0.1\n' > "$TMP/miss.csv"
expect_exit 1 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/miss.csv"
expect_out "annotator 'ann2' has no weight .*--missing-weight"
expect_true "no checkpoint after a refused weights file" test ! -e "$TMP/x.ckpt"
expect_exit 0 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/miss.csv" --missing-weight 1 --quiet
printf 'id,weight\nann1,-2\nann2,1\n' > "$TMP/neg.csv"
expect_exit 1 "$RLHF" dpo $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/neg.csv"
expect_out "neg.csv:2: weight '-2' is not a finite number >= 0"
printf 'id,weight\nann1,1\nann1,2\nann2,1\n' > "$TMP/dup.csv"
expect_exit 1 "$RLHF" kto $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/dup.csv"
expect_out "dup.csv:3: id 'ann1' appears twice"
printf 'who,w\nann1,1\n' > "$TMP/hdr.csv"
expect_exit 1 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/hdr.csv"
expect_out "needs columns 'id' and 'weight'"
printf 'id,weight\nann1,0\nann2,0\n' > "$TMP/zero.csv"
expect_exit 1 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/zero.csv"
expect_out "every record would get weight 0"
expect_exit 1 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/none.csv"
expect_out "cannot open .*none.csv"
expect_exit 2 "$RLHF" rm $S --records "$TMP/w.jsonl" --out "$TMP/x.ckpt" --annotator-weights "$TMP/wt.csv" --missing-weight -3

# ---- align reliability: Dawid-Skene weights in the same format ----
# 30 comparisons judged by 3 careful annotators (always right) and 1 who always
# picks the other answer; the contrarian must get the lowest weight.
: > "$TMP/ds.jsonl"
for i in $(seq 1 30); do
  for a in c1 c2 c3 bad; do
    ch=a; [ "$a" = bad ] && ch=b
    echo "{\"v\": 1, \"kind\": \"pair\", \"source\": \"t\", \"annotator\": \"$a\", \"prompt\": [{\"role\": \"user\", \"text\": \"q$i\"}], \"responses\": [\"right $i\", \"wrong $i\"], \"choice\": \"$ch\"}" >> "$TMP/ds.jsonl"
  done
done
expect_exit 0 "$RLHF" align reliability --records "$TMP/ds.jsonl" --out "$TMP/rel.csv"
expect_out "120 strict comparisons of 30 items \(30 judged more than once\) by 4 annotators"
expect_true "header" sh -c "head -n 1 '$TMP/rel.csv' | grep -qx 'id,weight'"
expect_true "4 weights" test "$(wc -l < "$TMP/rel.csv")" -eq 5
lowest=$(tail -n +2 "$TMP/rel.csv" | sort -t, -k2 -g | head -n 1 | cut -d, -f1)
expect_true "the contrarian has the lowest weight ($lowest)" test "$lowest" = bad
expect_true "weights have mean 1" awk -F, 'NR > 1 { s += $2; n++ } END { exit !(n == 4 && s / n > 0.999 && s / n < 1.001) }' "$TMP/rel.csv"
expect_exit 0 "$RLHF" rm $S --records "$TMP/ds.jsonl" --out "$TMP/rmds.ckpt" --steps 2 --annotator-weights "$TMP/rel.csv" --quiet
expect_exit 2 "$RLHF" align reliability --out "$TMP/rel.csv"
expect_exit 2 "$RLHF" align reliability --records "$TMP/ds.jsonl" --weight votes
expect_exit 1 "$RLHF" align reliability --records "$TMP/q.jsonl"
expect_out "no strict comparison"
finish
