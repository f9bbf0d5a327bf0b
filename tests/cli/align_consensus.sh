#!/bin/sh
# rlhf align consensus on the real Polis conversation (Bowling Green, 2 opinion
# groups). The per-group counts the C code prints are recounted here with awk
# straight from participants-votes.csv (an independent count), and the top 5
# by group-informed consensus must have majority agreement in BOTH groups:
# agrees > 50% of the votes cast in that group (passes count as votes cast).
. "$(dirname "$0")/lib.sh"
D="${RLHF_SHARED:-../shared}/data/polis_bowling_green"
V="$D/participants-votes.csv"
C="$D/comments.csv"
if [ ! -f "$V" ] || [ ! -f "$C" ]; then
  bad "Polis data not found under $D (set RLHF_SHARED)"; finish; exit 1
fi

expect_exit 0 "$RLHF" align consensus --votes "$V" --comments "$C" --top 5 --moderated-only --format tsv
cp "$TMP/out" "$TMP/tsv"
expect_true "5 consensus rows" test "$(grep -c '^consensus	' "$TMP/tsv")" -eq 5
expect_true "5 raw rows" test "$(grep -c '^raw	' "$TMP/tsv")" -eq 5

# Independent recount: for comment id $1, print "a0 v0 a1 v1" (group 0 and 1
# agrees and votes cast) from the raw vote matrix.
recount() {
  awk -F, -v id="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) { if ($i == id) col = i; if ($i == "group-id") gc = i } next }
    { g = $gc; x = $col
      if (g == "" || x == "") next
      v[g]++; if (x == 1) a[g]++ }
    END { printf "%d %d %d %d\n", a[0], v[0], a[1], v[1] }' "$V"
}

# TSV columns: section rank id score a0 d0 p0 a1 d1 p1 a_all d_all p_all text
grep '^consensus	' "$TMP/tsv" | cut -f2-10 | tr '\t' ' ' > "$TMP/top"
prev=2
while read -r rank id score a0 d0 p0 a1 d1 p1; do
  mine="$a0 $((a0 + d0 + p0)) $a1 $((a1 + d1 + p1))"
  ref=$(recount "$id")
  expect_true "comment $id: C counts ($mine) = awk recount ($ref)" test "$mine" = "$ref"
  set -- $ref
  expect_true "comment $id (rank $rank): majority agrees in group 0 ($1/$2)" test $(( 2 * $1 )) -gt "$2"
  expect_true "comment $id (rank $rank): majority agrees in group 1 ($3/$4)" test $(( 2 * $3 )) -gt "$4"
  # score = Π_g (agrees_g + 1)/(votes_g + 2), recomputed
  ok_score=$(awk -v s="$score" -v p="$prev" -v a0="$1" -v v0="$2" -v a1="$3" -v v1="$4" \
    'BEGIN { q = (a0 + 1) / (v0 + 2) * (a1 + 1) / (v1 + 2); d = q - s; if (d < 0) d = -d; print (d < 1e-5 && s <= p + 1e-12) ? 1 : 0 }')
  expect_true "comment $id: score $score = product of smoothed agree rates, non-increasing" test "$ok_score" = 1
  prev=$score
done < "$TMP/top"

# The raw agree-count ranking is not a consensus ranking on this data: at
# least one of its top 5 lacks a majority in some group (why the rule matters).
split=0
for id in $(grep '^raw	' "$TMP/tsv" | cut -f3); do
  set -- $(recount "$id")
  if [ $(( 2 * $1 )) -le "$2" ] || [ $(( 2 * $3 )) -le "$4" ]; then split=$((split + 1)); fi
done
expect_true "some raw top-5 statement is divisive ($split found)" test "$split" -ge 1

# The table format and the other rules run.
expect_exit 0 "$RLHF" align consensus --votes "$V" --comments "$C" --top 3 --moderated-only
expect_out "top 3 by group-informed consensus"
expect_out "top 3 by raw agree count"
expect_exit 0 "$RLHF" align consensus --votes "$V" --comments "$C" --top 3 --rule min
expect_exit 0 "$RLHF" align consensus --votes "$V" --rule mean --top 2

# Usage errors (2) and bad input (1, with the file and line).
expect_exit 2 "$RLHF" align consensus --comments "$C"
expect_exit 2 "$RLHF" align consensus --votes "$V" --moderated-only
expect_exit 2 "$RLHF" align consensus --votes "$V" --rule bogus
expect_exit 2 "$RLHF" align consensus --votes "$V" --top 0
expect_exit 1 "$RLHF" align consensus --votes "$TMP/nope.csv"
expect_out "cannot open"
printf 'participant,group-id,0,1\n0,0,1,-1\n1,1,2,1\n' > "$TMP/badvote.csv"
expect_exit 1 "$RLHF" align consensus --votes "$TMP/badvote.csv"
expect_out "badvote.csv:3: vote '2' on comment 0"
printf 'participant,group-id,0\n0,0,"1\n' > "$TMP/badq.csv"
expect_exit 1 "$RLHF" align consensus --votes "$TMP/badq.csv"
expect_out "badq.csv:2:5: quoted field is never closed"
printf 'participant,0,1\n0,1,1\n' > "$TMP/nogroup.csv"
expect_exit 1 "$RLHF" align consensus --votes "$TMP/nogroup.csv"
expect_out "no group-id column"
finish
