#!/bin/sh
# rlhf align mixture: discovers the simulated annotator groups (terse 80 % /
# working 20 %, everyone checks the sums, every candidate correct, so only
# style is judged) without being told them. The assignments CSV is checked
# with awk against the groups the records carry, and --out-records must tag
# every record with its annotator's cluster, consistently with the CSV.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$RLHF" sim world --out "$TMP/w" --n-train 200 --n-heldout 20 --checking-rate 1
expect_exit 0 "$RLHF" sim feedback --world "$TMP/w" --out "$TMP/fb.jsonl" --annotators 40 --judgements 2400 \
  --kinds 0.8,0.1,0.1 --candidates 1,0,0,0,0 --seed 3

expect_exit 0 "$RLHF" align mixture --records "$TMP/fb.jsonl" --k 2 --seeds 3 --restarts 3 \
  --out "$TMP/a.csv" --out-records "$TMP/fbc.jsonl"
expect_out "K = 2, 3 seed\(s\) x 3 restart\(s\)"
expect_out "stability across seeds: adjusted Rand index mean"
expect_out "known group 'group' \(annotators per cluster\)"
cp "$TMP/out" "$TMP/report"

# annotator -> true group, from the records
sed -n 's/.*"annotator":"\([^"]*\)","groups":{"group":"\([a-z]*\)".*/\1 \2/p' "$TMP/fb.jsonl" | sort -u > "$TMP/truth"
expect_true "every annotator has one group" test "$(wc -l < "$TMP/truth")" -eq "$(cut -d' ' -f1 "$TMP/truth" | sort -u | wc -l)"
expect_true "CSV has a header and one row per annotator" \
  test "$(sed -n 1p "$TMP/a.csv")" = "annotator,cluster" -a "$(($(wc -l < "$TMP/a.csv") - 1))" -eq "$(wc -l < "$TMP/truth")"
# best-matching accuracy of the clusters against the true groups (K = 2: either labelling)
acc=$(tail -n +2 "$TMP/a.csv" | tr ',' ' ' | sort > "$TMP/asg"; join "$TMP/truth" "$TMP/asg" | awk '
  { n++; if (($2 == "terse") == ($3 == 0)) a++ }
  END { b = n - a; if (b > a) a = b; printf "%.3f", a / n }')
echo "  mixture accuracy vs true groups: $acc"
expect_true "clusters recover the groups (>= 0.9, got $acc)" awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }'
# the report's own agreement number is the same
grep -q "best-matching agreement $acc" "$TMP/report"; expect_true "report agrees with awk ($acc)" test $? -eq 0

# --out-records: same records, each with cluster=<its annotator's cluster>
expect_true "all records written" test "$(wc -l < "$TMP/fbc.jsonl")" -eq "$(wc -l < "$TMP/fb.jsonl")"
sed -n 's/.*"annotator":"\([^"]*\)","groups":{[^}]*"cluster":"\([0-9]*\)".*/\1 \2/p' "$TMP/fbc.jsonl" | sort -u > "$TMP/tagged"
tail -n +2 "$TMP/a.csv" | tr ',' ' ' | sort > "$TMP/asg2"
expect_true "record clusters equal the CSV" cmp -s "$TMP/tagged" "$TMP/asg2"
# the tagged records load back, and rm --group's key=value filter sees them
expect_exit 0 "$RLHF" feedback stats --input "$TMP/fbc.jsonl"
expect_out "cluster=0"
expect_out "cluster=1"

# K = 1: everyone in cluster 0
expect_exit 0 "$RLHF" align mixture --records "$TMP/fb.jsonl" --k 1 --seeds 2 --restarts 1 --show 0 --out "$TMP/k1.csv"
expect_true "K=1 puts everyone in cluster 0" test "$(tail -n +2 "$TMP/k1.csv" | cut -d, -f2 | sort -u)" = "0"

# bad input
expect_exit 2 "$RLHF" align mixture
expect_exit 2 "$RLHF" align mixture --records "$TMP/fb.jsonl" --db "$TMP/x.db"
expect_exit 2 "$RLHF" align mixture --records "$TMP/fb.jsonl" --k 0
expect_exit 2 "$RLHF" align mixture --records "$TMP/fb.jsonl" --cluster-key a=b
expect_exit 1 "$RLHF" align mixture --records "$TMP/missing.jsonl"
expect_exit 1 "$RLHF" align mixture --records "$TMP/fb.jsonl" --k 64
expect_out "K = 64 clusters but only 40 annotator"
grep '"kind":"thumbs"' "$TMP/fb.jsonl" > "$TMP/thumbs.jsonl"
expect_exit 1 "$RLHF" align mixture --records "$TMP/thumbs.jsonl"
expect_out "no strict comparison"
printf '{"kind":"pair"}\n' > "$TMP/broken.jsonl"
expect_exit 1 "$RLHF" align mixture --records "$TMP/broken.jsonl" --out "$TMP/none.csv"
expect_true "nothing written on failure" test ! -e "$TMP/none.csv"
finish
