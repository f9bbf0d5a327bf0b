#!/bin/sh
# align_population_gpt.sh — the simulated-population experiment of
# tests/unit/test_align_population.c, with real GPT reward models trained by
# `rlhf rm` instead of the linear feature model (docs/align.md §7).
# Not part of `make test` (a few minutes on 2 cores).
#
#   sh scripts/align_population_gpt.sh [BUILD_DIR] [WORK_DIR]
#
# Population: group terse (strength 0.9) and group working (strength 0.8),
# 48 and 12 annotators (80/20), 50/50 in the population; everyone checks the
# sums and every candidate is correct, so only style is judged. The two
# groups' feedback is drawn separately (the sim's --strength is one value
# for all groups) and the working group's annotator ids renamed, then merged.
# Reward models (fresh L2 H2 C64 transformers, 2 epochs):
#   raw      one RM on all feedback
#   raked    one RM with record weights 0.5/0.8 (terse) and 0.5/0.2 (working):
#            post-stratification to 50/50, the one-attribute case of raking
#   cluster0/1  one RM per group discovered by `rlhf align mixture` (EM over
#            annotators, linear BT features), via --out-records and rm --group
# Evaluation on 200 held-out items × 3 styles (all correct): the minority's
# win rate on disagreement pairs, and best-of-3 selection per item under the
# rules (single RMs; group RMs aggregated by mean 80/20, mean 50/50, and the
# per-sample minimum — the maximin of the public MaxMin-RLHF code), with each
# group's win rate against the reference policy (styles 40/30/30) by its true
# preference order.
set -eu
B=${1:-build}
D=${2:-$(mktemp -d)}
R="$B/rlhf"
mkdir -p "$D"
echo "work dir: $D"
"$R" sim world --out "$D/w" --n-train 2000 --n-heldout 200 --checking-rate 1 >/dev/null 2>&1
common="--world $D/w --kinds 1,0,0 --candidates 1,0,0,0,0 --checking-rate 1"
"$R" sim feedback $common --out "$D/t.jsonl" --pool-shares 1,0 --strength 0.9 --annotators 48 --judgements 3200 --seed 1 >/dev/null 2>&1
"$R" sim feedback $common --out "$D/wk.jsonl" --pool-shares 0,1 --strength 0.8 --annotators 12 --judgements 800 --seed 2 >/dev/null 2>&1
sed 's/"annotator":"sim:/"annotator":"simw:/' "$D/wk.jsonl" | cat "$D/t.jsonl" - > "$D/fb.jsonl"
sed -e '/"group":"terse"/s/"source":"sim"/"source":"sim","weight":0.625/' \
    -e '/"group":"working"/s/"source":"sim"/"source":"sim","weight":2.5/' "$D/fb.jsonl" > "$D/fbw.jsonl"
"$R" tokenizer train --input "$D/w/sft.jsonl" --vocab-size 300 --out "$D/tok.bin" --quiet
"$R" align mixture --records "$D/fb.jsonl" --k 2 --seeds 5 --out "$D/assign.csv" --out-records "$D/fbc.jsonl" > "$D/mixture.txt" 2>&1
grep -E "stability|best-matching|cluster [01]:" "$D/mixture.txt"
M="--tokenizer $D/tok.bin --layers 2 --heads 2 --channels 64 --seq 64 --epochs 2 --batch 16 --lr 1e-3 --seed 1 --quiet"
t0=$(date +%s)
"$R" rm $M --records "$D/fb.jsonl" --out "$D/raw.ckpt"
"$R" rm $M --records "$D/fbw.jsonl" --out "$D/raked.ckpt"
"$R" rm $M --records "$D/fbc.jsonl" --group cluster=0 --out "$D/cluster0.ckpt"
"$R" rm $M --records "$D/fbc.jsonl" --group cluster=1 --out "$D/cluster1.ckpt"
echo "4 reward models trained in $(( $(date +%s) - t0 )) s"
"$B/tools/sim_styles" "$D/w" 200 7 > "$D/styles.jsonl"
for m in raw raked cluster0 cluster1; do
  "$R" score --rm "$D/$m.ckpt" --tokenizer "$D/tok.bin" --input "$D/styles.jsonl" |
    sed -n 's/.*"item":\([0-9]*\),"style":"\([a-z]*\)".*"score":\([-0-9.e+]*\).*/\1 \2 \3/p' > "$D/$m.scores"
done
# which cluster is the terse group: majority of its annotators' true groups
tc=$(tail -n +2 "$D/assign.csv" | awk -F, '{ t = ($1 ~ /^simw:/) ? "working" : "terse"; n[$2 " " t]++ }
  END { print (n["0 terse"] + n["1 working"] >= n["1 terse"] + n["0 working"]) ? 0 : 1 }')
wc=$((1 - tc))
echo "cluster $tc = terse group, cluster $wc = working group"
awk -v TC="$D/cluster$tc.scores" -v WC="$D/cluster$wc.scores" -v RAW="$D/raw.scores" -v RK="$D/raked.scores" '
function sig(x) { return 1 / (1 + exp(-x)) }
function load(f, a,   l, p) { while ((getline l < f) > 0) { split(l, p, " "); a[p[1], p[2]] = p[3]; n = p[1] + 1 } }
# rank of a style for each group (0 = best); win of style s vs the reference 40/30/30 by group g
function win(g, s,   t, w) { w = 0; for (t = 0; t < 3; t++) w += ref[t] * (rk[g, s] < rk[g, t] ? 1 : rk[g, s] == rk[g, t] ? 0.5 : 0); return w }
BEGIN {
  st[0] = "terse"; st[1] = "sentence"; st[2] = "working"; ref[0] = .4; ref[1] = .3; ref[2] = .3
  rk["T", 0] = 0; rk["T", 1] = 1; rk["T", 2] = 2; rk["W", 0] = 2; rk["W", 1] = 1; rk["W", 2] = 0
  load(RAW, raw); load(RK, rkd); load(TC, zt); load(WC, zw)
  # minority win rate of the single RMs on disagreement pairs (every pair of two styles)
  split("raw raked", names, " ")
  for (q = 1; q <= 2; q++) { soft = hard = m = 0
    for (i = 0; i < n; i++) for (x = 0; x < 3; x++) for (y = x + 1; y < 3; y++) {
      d = (q == 1) ? raw[i, st[y]] - raw[i, st[x]] : rkd[i, st[y]] - rkd[i, st[x]]
      soft += sig(d); hard += d > 0 ? 1 : d == 0 ? .5 : 0; m++ }
    printf "single RM %-6s minority (working) win rate on disagreement pairs: soft %.3f hard %.3f\n", names[q], soft / m, hard / m }
  # group RMs centred on the reference; disagreement point below the worst candidate
  for (i = 0; i < n; i++) for (s = 0; s < 3; s++) { mt += ref[s] * zt[i, st[s]] / n; mw += ref[s] * zw[i, st[s]] / n }
  dt = dw = 1e9
  for (i = 0; i < n; i++) for (s = 0; s < 3; s++) { zt[i, st[s]] -= mt; zw[i, st[s]] -= mw
    if (zt[i, st[s]] < dt) dt = zt[i, st[s]]; if (zw[i, st[s]] < dw) dw = zw[i, st[s]] }
  dt -= .25; dw -= .25
  nr = split("raw|raked|mean 80/20|mean 50/50|min (per sample)", rule, "|")
  printf "\nbest-of-3 (one answer per style) per held-out item; win rate vs the reference by true preference\n"
  printf "%-18s  picks terse/sentence/working  | terse win | working win | worst\n", "rule"
  for (r = 1; r <= nr; r++) { wt = ww = 0; c[0] = c[1] = c[2] = 0
    for (i = 0; i < n; i++) { best = -1
      for (s = 0; s < 3; s++) { a = zt[i, st[s]]; b = zw[i, st[s]]
        v = (r == 1) ? raw[i, st[s]] : (r == 2) ? rkd[i, st[s]] : (r == 3) ? .8 * a + .2 * b : (r == 4) ? .5 * a + .5 * b : ((a - dt < b - dw) ? a - dt : b - dw)
        if (best < 0 || v > bv) { best = s; bv = v } }
      c[best]++; wt += win("T", best); ww += win("W", best) }
    printf "%-18s  %.2f/%.2f/%.2f               |   %.3f   |    %.3f    | %.3f\n", rule[r], c[0] / n, c[1] / n, c[2] / n, wt / n, ww / n, (wt < ww ? wt : ww) / n }
}'
