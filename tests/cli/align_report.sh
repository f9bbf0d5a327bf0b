#!/bin/sh
# rlhf align report: evaluator counts against target margins, raking weights,
# Kish ESS. The weighted margins are recomputed with awk from the weights the
# command writes, so the check does not trust the command's own table.
. "$(dirname "$0")/lib.sh"

# 1000 evaluators, over-sampled young and "North, East" (a quoted category).
awk 'BEGIN {
  srand(11); print "id,age,gender,region"
  for (i = 1; i <= 1000; i++) {
    r = rand(); age = r < 0.6 ? "18-34" : (r < 0.85 ? "35-54" : "55+")
    g = rand() < (age == "18-34" ? 0.7 : 0.45) ? "m" : "f"
    reg = rand() < 0.7 ? "\"North, East\"" : "South"
    printf "e%d,%s,%s,%s\n", i, age, g, reg
  }
}' > "$TMP/data.csv"
cat > "$TMP/margins.csv" <<'EOF'
attribute,category,share
age,18-34,0.30
age,35-54,0.35
age,55+,0.35
gender,m,0.49
gender,f,0.51
region,"North, East",0.5
region,South,0.5
EOF

expect_exit 0 "$RLHF" align report --data "$TMP/data.csv"
expect_out "evaluators: 1000"
expect_out "attribute age \(3 categories, no target\)"

expect_exit 0 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/margins.csv" --out "$TMP/w.csv"
cp "$TMP/out" "$TMP/report"
expect_out "raking: converged after [0-9]+ cycles"
expect_out "Kish effective sample size [0-9.]+ of 1000"
expect_out "North, East"
expect_true "weights file has 1001 lines" test "$(wc -l < "$TMP/w.csv")" -eq 1001

# Independent check of the weighted margins from data.csv + w.csv.
# (mawk has no CSV mode: the quoted "North, East" splits into $4 = "\"North".)
awk -F, '
  FNR == 1 { next }
  FILENAME ~ /w.csv$/ { w[$1] = $2; next }
  FILENAME ~ /data.csv$/ { age[$2] += w[$1]; gen[$3] += w[$1]; reg[$4] += w[$1]; tot += w[$1]; n++; ess2 += w[$1] * w[$1] }
  END {
    bad = 0
    t["18-34"] = .30; t["35-54"] = .35; t["55+"] = .35
    for (k in t) if ((age[k] / tot - t[k]) ^ 2 > 1e-10) { bad++; print "age " k " " age[k] / tot }
    if ((gen["m"] / tot - .49) ^ 2 > 1e-10) bad++
    if ((reg["\"North"] / tot - .5) ^ 2 > 1e-10) { bad++; print "region " reg["\"North"] / tot }
    if ((tot / n - 1) ^ 2 > 1e-10) bad++
    printf "%s %.1f\n", bad ? "BAD" : "OK", tot * tot / ess2
  }' "$TMP/w.csv" "$TMP/data.csv" > "$TMP/check" 2>&1
expect_true "weighted margins hit the targets (awk: $(cat "$TMP/check"))" grep -q '^OK' "$TMP/check"
ess=$(awk '{print $2}' "$TMP/check")
expect_true "printed ESS matches awk's (Σw)²/Σw² = $ess" grep -q "Kish effective sample size $ess of 1000" "$TMP/report"

# A binding cap: 55+ is 15% of the sample but 60% of the target -> weights ~4x
# the others; a cap of 1.5x the mean cannot reach it. Warn, still write weights.
cat > "$TMP/m2.csv" <<'EOF'
attribute,category,share
age,18-34,0.1
age,35-54,0.3
age,55+,0.6
EOF
expect_exit 0 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/m2.csv" --cap 1.5 --max-iter 200
expect_out "NOT converged"
expect_out "cap: 1.5 x mean weight, [1-9][0-9]* weights at the cap"
expect_out "off target"

# Errors: usage (2), bad input (1) with a message that says what to do.
expect_exit 2 "$RLHF" align report --target "$TMP/margins.csv"
expect_exit 2 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/margins.csv" --cap 0.5
expect_exit 2 "$RLHF" align report --data "$TMP/data.csv" --out "$TMP/x.csv"
printf 'attribute,category,share\nage,18-34,0.5\nage,35-54,0.5\n' > "$TMP/m3.csv"
expect_exit 1 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/m3.csv"
expect_out "no share for category '55\+'"
printf 'attribute,category,share\nage,18-34,0.3\nage,35-54,0.3\nage,55+,0.3\nage,75+,0.1\n' > "$TMP/m4.csv"
expect_exit 1 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/m4.csv"
expect_out "m4.csv:5: age = '75\+' has target share 0.1 but no evaluator"
printf 'attribute,category,share\nage,18-34,0.3\nage,35-54,0.3\nage,55+,0.3\n' > "$TMP/m5.csv"
expect_exit 1 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/m5.csv"
expect_out "sum to 0.9"
printf 'attribute,category,share\nincome,low,1\n' > "$TMP/m6.csv"
expect_exit 1 "$RLHF" align report --data "$TMP/data.csv" --target "$TMP/m6.csv"
expect_out "attribute 'income' is not a column"
printf 'id,age,weight\na,1,2\nb,2,-1\n' > "$TMP/badw.csv"
expect_exit 1 "$RLHF" align report --data "$TMP/badw.csv"
expect_out "badw.csv:3: weight '-1'"
expect_true "no weights file left behind by failed runs" test ! -e "$TMP/x.csv"
finish
