#!/bin/sh
# rlhf demo end to end at the smallest sizes (seconds): every stage runs, the
# report is a complete HTML page with its sections, and every number in the
# table is what `rlhf sim eval` says about the same answer files. Model
# quality is NOT tested here (a 1-layer width-16 model trained 2 steps); the
# measured demo numbers are in docs/demo.md.
. "$(dirname "$0")/lib.sh"
D="$TMP/demo"
TINY="--tiny --layers 1 --heads 2 --channels 16 --max-new 16 --threads 1"

expect_exit 2 "$RLHF" demo --layers 0
expect_exit 2 "$RLHF" demo --bogus
expect_exit 1 "$RLHF" demo $TINY --out /proc/no/such/dir
expect_out "cannot create"
expect_exit 0 "$RLHF" demo $TINY --out "$D"
cp "$TMP/out" "$TMP/demo_out"
expect_out "^sft +[0-9.]+%"
expect_out "try the model in the feedback app"
expect_out "rlhf serve --model $D/sft.ckpt"
for s in world tokenizer data pretrain sft feedback; do
  expect_true "stage $s ran" grep -Eq "^  $s +[0-9.]+ s" "$TMP/demo_out"
done
R="$D/report.html"
expect_true "report exists" test -s "$R"
expect_true "report starts as HTML5" sh -c "head -c 15 '$R' | grep -q '<!DOCTYPE html>'"
expect_true "report ends the document" sh -c "tail -c 20 '$R' | grep -q '</html>'"
for id in results results-table curves overopt groups stages stages-table serve; do
  expect_true "report section $id" grep -q "id=\"$id\"" "$R"
done
expect_true "report has SVG plots" test "$(grep -c '<svg' "$R")" -ge 5
expect_true "report loads nothing from the network" sh -c "! grep -Eq '(src|href)=\"?(https?:)?//' '$R'"
expect_true "report has no script" sh -c "! grep -qi '<script' '$R'"
# Tags balance (a cheap well-formedness check on the elements we write).
for t in table tr svg figure h2 p; do
  o=$(grep -o "<$t[ >]" "$R" | wc -l); c=$(grep -o "</$t>" "$R" | wc -l)
  expect_true "<$t> opened $o closed $c" test "$o" -eq "$c"
done

# Consistency: each method's evaluation in summary.json is byte-for-byte what
# `rlhf sim eval --reference answers_sft.jsonl` prints for the same answers
# file (per-group win rates against the SFT model included), and the table's
# accuracy column is that number.
S="$D/summary.json"
expect_true "summary.json written" test -s "$S"
n=0
for a in $(grep -o '"answers":"[^"]*"' "$S" | sed 's/.*:"//; s/"$//'); do
  n=$((n + 1))
  ev=$("$RLHF" sim eval --world "$D/world" --responses "$D/$a" --reference "$D/answers_sft.jsonl" 2>/dev/null)
  expect_true "sim eval of $a matches summary.json" grep -qF "\"eval\":$ev" "$S"
  expect_true "$a has one answer per held-out prompt" test "$(wc -l < "$D/$a")" -eq "$(wc -l < "$D/world/heldout.jsonl")"
done
# sft, 4 ppo, dpo, kto at least (+ early-stopped and audited-RM PPO where
# this build has ppo --early-stop and sim feedback --audit-rate); every row
# of the table that is not "skipped" has its answers file.
nrun=$(sed -n '/^method /,/^$/p' "$TMP/demo_out" | grep -Ecv '^method |skipped:|^$')
expect_true "every method evaluated ($n answer files, $nrun table rows)" test "$n" -ge 7 -a "$n" -eq "$nrun"
acc=$("$RLHF" sim eval --world "$D/world" --responses "$D/answers_sft.jsonl" 2>/dev/null | sed 's/.*"heldout_accuracy":\([^,]*\),.*/\1/')
pct=$(awk -v a="$acc" 'BEGIN { printf "%.1f%%", 100 * a }')
expect_true "table sft accuracy $pct" grep -Eq "^sft +$pct " "$TMP/demo_out"
expect_true "report sft accuracy $pct" grep -q "<td>sft</td><td data-acc=\"[0-9.]*\">$pct</td>" "$R"
# Per-group outcomes against the SFT model: a column per group in the table and
# the report, and the sft row against itself wins exactly half everywhere.
expect_true "table has win-rate columns" grep -Eq "^method .* win:terse +win:working +sat.gap +win.gap" "$TMP/demo_out"
expect_true "report has win-rate columns" grep -q "<th>win vs SFT terse</th><th>win vs SFT working</th><th>satisfaction gap</th><th>win-rate gap</th>" "$R"
expect_true "sft vs itself: win rate 1/2" grep -q '"method":"sft".*"win_rate":{"terse":0.5,"working":0.5}' "$S"
w=$(grep -o '"method":"ppo (single RM)".*' "$S" | grep -o '"win_rate":{"terse":[0-9.]*' | head -n 1 | sed 's/.*://')
pw=$(awk -v a="$w" 'BEGIN { printf "%.1f%%", 100 * a }')
expect_true "table ppo win rate (terse) $pw" grep -Eq "^ppo \(single RM\) .* $pw " "$TMP/demo_out"
# The acceptance checks: printed, in summary.json (five, a..e) and in the
# report, agreeing. A tiny model cannot pass the SFT gate, so (a) fails and
# --strict turns that into exit 1 (the check logic itself: tests/unit/test_demo_checks.c).
expect_true "checks printed" grep -q "^acceptance checks (issue 8)" "$TMP/demo_out"
expect_true "gate check fails on a tiny model" grep -Eq "^FAIL \(a\) sft_gate" "$TMP/demo_out"
expect_true "five checks in summary.json" test "$(grep -o '"id":"[a-e]","name"' "$S" | wc -l)" -eq 5
expect_true "summary.json: gate failed" grep -q '"name":"sft_gate","pass":false' "$S"
npass=$(grep -o '"pass":true' "$S" | wc -l)
expect_true "report counts $npass passed" grep -q "Acceptance checks: $npass of 5 passed" "$R"
expect_true "stage CPU seconds in summary.json" grep -q '"name":"sft","seconds":[0-9.]*,"cpu_seconds":[0-9.]*' "$S"
expect_true "every stage in summary.json, the last ones too" grep -q '"name":"kto",.*"name":"eval kto"' "$S"
expect_exit 1 "$RLHF" demo $TINY --strict --out "$TMP/demo_strict"
expect_out "acceptance check\(s\) failed \(--strict\)"
# The tiny models answer everything wrong, so also check the evaluator grades a
# crafted file with known answers (the byte comparison above also covers
# lengths, parse rates and suggestion counts, which are not zero).
printf '%s\n' '{"prompt":"what is 37+48?","response":"85"}' '{"prompt":"what is 37+48?","response":"75"}' > "$TMP/two.jsonl"
expect_exit 0 "$RLHF" sim eval --world "$D/world" --responses "$TMP/two.jsonl"
expect_out '"accuracy":0.5'
finish
