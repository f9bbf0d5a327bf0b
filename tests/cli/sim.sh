#!/bin/sh
# tests/cli/sim.sh — rlhf sim world|feedback|eval: exit codes and files.
. "$(dirname "$0")/lib.sh"

W="$TMP/world"
expect_exit 0 "$RLHF" sim world --help
expect_out "n-heldout"
expect_exit 2 "$RLHF" sim world                      # --out is required
expect_exit 2 "$RLHF" sim world --out "$W" --n-train -1
expect_exit 2 "$RLHF" sim world --out "$W" --style-mix 0.5,0.5
expect_exit 2 "$RLHF" sim world --out "$W" --style-mix 0.5,0.4,0.3   # does not sum to 1
expect_exit 2 "$RLHF" sim world --out "$W" --pool-shares 0.8,0.2 --pop-shares 0.5
expect_exit 2 "$RLHF" sim world --out "$W" --a-min 50 --a-max 10
expect_true "no world after a usage error" test ! -e "$W/config.json"

expect_exit 0 "$RLHF" sim world --out "$W" --n-train 300 --n-heldout 50 --seed 7
for f in config.json sft.jsonl train_prompts.jsonl heldout.jsonl; do
  expect_true "$f written" test -s "$W/$f"
done
expect_true "300 demonstrations" test "$(wc -l < "$W/sft.jsonl")" -eq 300
expect_true "50 held-out prompts" test "$(wc -l < "$W/heldout.jsonl")" -eq 50
expect_true "demonstrations have prompt and response" grep -q '^{"prompt":"[^"]*","response":"[^"]*"}$' "$W/sft.jsonl"
expect_true "held-out prompts have gold answers" grep -q '"gold":[0-9]' "$W/heldout.jsonl"
expect_true "config names its format" grep -q '"format": "rlhf-sim-world"' "$W/config.json"

# Same seed, same world; another seed, another world.
expect_exit 0 "$RLHF" sim world --out "$TMP/w2" --n-train 300 --n-heldout 50 --seed 7
expect_true "deterministic" cmp -s "$W/sft.jsonl" "$TMP/w2/sft.jsonl"
expect_exit 0 "$RLHF" sim world --out "$TMP/w3" --n-train 300 --n-heldout 50 --seed 8
expect_true "seed matters" sh -c "! cmp -s '$W/sft.jsonl' '$TMP/w3/sft.jsonl'"

# Feedback.
expect_exit 2 "$RLHF" sim feedback --world "$W"      # --out is required
expect_exit 2 "$RLHF" sim feedback --world "$W" --out "$TMP/fb.jsonl" --annotators 0
expect_exit 2 "$RLHF" sim feedback --world "$W" --out "$TMP/fb.jsonl" --checking-rate 1.5
expect_exit 2 "$RLHF" sim feedback --world "$W" --out "$TMP/fb.jsonl" --kinds 0.5,0.5,0.5
expect_exit 1 "$RLHF" sim feedback --world "$TMP/nope" --out "$TMP/fb.jsonl"
expect_out "config.json"
expect_exit 0 "$RLHF" sim feedback --world "$W" --out "$TMP/fb.jsonl" --annotators 20 --judgements 400 --checking-rate 0.5
expect_true "400 records" test "$(wc -l < "$TMP/fb.jsonl")" -eq 400
expect_true "pair records" grep -q '"kind":"pair","prompt":"[^"]*","responses":\["[^"]*","[^"]*"\],"choice":"\(a\|b\|tie\|both_bad\)","annotator":"sim:[0-9]*","groups":{"group":"\(terse\|working\)"},"source":"sim"' "$TMP/fb.jsonl"
expect_true "thumbs records" grep -q '"kind":"thumbs",.*"responses":\["[^"]*"\],"thumb":"\(up\|down\)",' "$TMP/fb.jsonl"
expect_true "ranking records" grep -q '"kind":"ranking",.*"ranks":\[[0-3],[0-3],[0-3],[0-3]\]' "$TMP/fb.jsonl"
expect_exit 0 "$RLHF" feedback stats --input "$TMP/fb.jsonl"   # canonical records: the trainers read them as they are
# A failed run leaves the old file alone.
cp "$TMP/fb.jsonl" "$TMP/fb.bak"
expect_exit 2 "$RLHF" sim feedback --world "$W" --out "$TMP/fb.jsonl" --candidates 1,1,1,1,1
expect_true "old feedback kept" cmp -s "$TMP/fb.jsonl" "$TMP/fb.bak"

# Feedback on model samples (here: the SFT demonstrations stand in for samples).
expect_exit 0 "$RLHF" sim feedback --world "$W" --out "$TMP/fbs.jsonl" --samples "$W/sft.jsonl" --judgements 100
expect_true "100 records on samples" test "$(wc -l < "$TMP/fbs.jsonl")" -eq 100
printf '{"prompt":"hello","response":"hi"}\n' > "$TMP/badsamples.jsonl"
expect_exit 1 "$RLHF" sim feedback --world "$W" --out "$TMP/fbs.jsonl" --samples "$TMP/badsamples.jsonl"
expect_out "badsamples.jsonl:1:"

# Eval: the world's own held-out prompts answered by the gold answer score 1.
sed 's/^{"prompt":\("[^"]*"\),"gold":\([0-9]*\).*/{"prompt":\1,"response":"\2"}/' "$W/heldout.jsonl" > "$TMP/gold.jsonl"
expect_exit 0 "$RLHF" sim eval --world "$W" --responses "$TMP/gold.jsonl" --out "$TMP/summary.json"
expect_out '"accuracy":1[,.]'
expect_out '"heldout_accuracy":1[,.]'
expect_out '"sycophancy":0[,.]'
expect_true "summary file" grep -q '"n":50' "$TMP/summary.json"
# The SFT demonstrations are ~97% right (3% errors by default).
expect_exit 0 "$RLHF" sim eval --world "$W" --responses "$W/sft.jsonl"
expect_out '"accuracy":0\.9[0-9]*'
printf '{"prompt":"hello","response":"hi"}\n' > "$TMP/bad.jsonl"
expect_exit 1 "$RLHF" sim eval --world "$W" --responses "$TMP/bad.jsonl"
expect_out "bad.jsonl:1:"
expect_exit 1 "$RLHF" sim eval --world "$W" --responses "$TMP/missing.jsonl"
expect_exit 2 "$RLHF" sim eval --world "$W"

# --reference: per-group win rates against a reference's answers to the same
# prompts. Groups terse (terse 1 > sentence .6 > working .2) and working (the
# reverse). Line 1: terse "85" vs sentence -> terse wins, working loses;
# line 2: working vs a wrong answer -> both win. Win rates 1 and 1/2.
printf '%s\n' '{"prompt":"what is 37+48?","response":"85"}' '{"prompt":"what is 37+48?","response":"7+8=15, carry 1, 3+4+1=8, so 85."}' > "$TMP/pol.jsonl"
printf '%s\n' '{"prompt":"what is 37+48?","response":"37 + 48 = 85."}' '{"prompt":"what is 37+48?","response":"75"}' > "$TMP/ref.jsonl"
expect_exit 0 "$RLHF" sim eval --world "$W" --responses "$TMP/pol.jsonl" --reference "$TMP/ref.jsonl"
expect_out '"vs_reference":\{"satisfaction_ref":\{"terse":0\.3,"working":0\.3\},"win_rate":\{"terse":1\.0,"working":0\.5\},"gap_satisfaction":0\.0,"gap_win":0\.5,"worst_win":"working"\}'
# without --reference the object is unchanged (no vs_reference), and with it
# everything before vs_reference is the same text
"$RLHF" sim eval --world "$W" --responses "$TMP/pol.jsonl" 2>/dev/null > "$TMP/plain.json"
"$RLHF" sim eval --world "$W" --responses "$TMP/pol.jsonl" --reference "$TMP/ref.jsonl" 2>/dev/null > "$TMP/withref.json"
expect_true "no vs_reference without --reference" sh -c "! grep -q vs_reference '$TMP/plain.json'"
expect_true "same summary before vs_reference" test "$(sed 's/}$//' "$TMP/plain.json")" = "$(sed 's/,"vs_reference".*//' "$TMP/withref.json")"
# a policy against itself: every group wins half
expect_exit 0 "$RLHF" sim eval --world "$W" --responses "$TMP/pol.jsonl" --reference "$TMP/pol.jsonl"
expect_out '"win_rate":\{"terse":0\.5,"working":0\.5\}'
head -n 1 "$TMP/ref.jsonl" > "$TMP/ref1.jsonl"
expect_exit 1 "$RLHF" sim eval --world "$W" --responses "$TMP/pol.jsonl" --reference "$TMP/ref1.jsonl"
expect_out "has 2 responses and the reference .* 1"
printf '%s\n' '{"prompt":"what is 37+48?","response":"85"}' '{"prompt":"what is 11+12?","response":"23"}' > "$TMP/ref2.jsonl"
expect_exit 1 "$RLHF" sim eval --world "$W" --responses "$TMP/pol.jsonl" --reference "$TMP/ref2.jsonl"
expect_out "response 2 answers"
finish
