#!/bin/sh
# rlhf study overoptimization: a tiny model whose answers vary in length, a
# proxy that pays for length (length:24) and a gold reward that wants 12
# tokens (length:12), so optimising the proxy first helps gold, then hurts it.
# Checks the best-of-n table (proxy monotone, gold peaks, the fit finds the
# peak), the prefix estimator against `rlhf bon --batch 1`, PPO snapshots
# along a run (`rlhf ppo --snapshots`), the JSON/CSV files, and bad input.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
SH=${RLHF_SHARED:-../shared}
PY=/usr/bin/python3

# Short documents (1-3 words each, <|endoftext|> between them): the model
# learns to stop after a few tokens, so answer lengths vary.
head -c 60000 "$SH/data/tinyshakespeare.txt" >"$TMP/ts.txt"
"$RLHF" tokenizer train --input "$TMP/ts.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
mkdir -p "$TMP/docs"
tr -s ' \n' '\n\n' <"$TMP/ts.txt" | head -400 | awk -v d="$TMP/docs" '
  { w[NR] = $0 } END { i = 1; for (k = 0; k < 64; k++) { n = 1 + k % 3; s = w[i]; for (j = 1; j < n; j++) s = s " " w[i + j];
      f = sprintf("%s/d%02d.txt", d, k); print s > f; close(f); i += n } }'
INPUTS=""
for f in "$TMP"/docs/*.txt; do INPUTS="$INPUTS --input $f"; done
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" $INPUTS --out "$TMP/data" --val-fraction 0 --quiet || { echo "setup failed"; exit 1; }
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/lm.ckpt" --layers 1 --heads 2 --channels 32 --seq 16 --context 64 --batch 8 \
  --steps 200 --lr 3e-3 --quiet >/dev/null 2>&1 || { echo "setup failed"; exit 1; }
for i in 1 2 3 4 5 6 7 8; do printf 'the\nking\nlord\nwhat\n'; done >"$TMP/p.txt"
B="--policy $TMP/lm.ckpt --tokenizer $TMP/tok.bin --prompts $TMP/p.txt --raw --max-new 24"
S="$B --proxy length:24 --gold length:12"

# usage errors exit 2
expect_exit 0 "$RLHF" study overoptimization --help
expect_out "ppo-dir"
expect_exit 2 "$RLHF" study overoptimization $S
expect_exit 2 "$RLHF" study overoptimization $S --out "$TMP/x" --n-list 0
expect_out "n-list"
expect_exit 2 "$RLHF" study overoptimization $S --out "$TMP/x" --n-list 1,two
expect_exit 2 "$RLHF" study overoptimization $S --out "$TMP/x" --n-list ""
expect_out "nothing to study"
expect_exit 2 "$RLHF" study overoptimization $S --out "$TMP/x" --estimator best
expect_exit 2 "$RLHF" ppo $B --reward length:24 --out "$TMP/x.ckpt" --snapshots "$TMP/snaps"
expect_out "save-every"

# bad files and specs exit 1 with a message
expect_exit 1 "$RLHF" study overoptimization $S --out "$TMP/x" --policy "$TMP/none.ckpt"
expect_out "none.ckpt"
expect_exit 1 "$RLHF" study overoptimization $B --proxy magic:1 --gold length:12 --out "$TMP/x"
expect_out "proxy reward"
expect_exit 1 "$RLHF" study overoptimization $B --proxy length:24 --gold "rm:$TMP/none.ckpt" --out "$TMP/x"
expect_out "gold reward"
expect_exit 1 "$RLHF" study overoptimization $S --out "$TMP/x" --prompts "$TMP/none.txt"
expect_exit 1 "$RLHF" study overoptimization $S --out "$TMP/x" --n-list "" --ppo-dir "$TMP/nodir"
expect_out "nodir"
mkdir -p "$TMP/empty"
expect_exit 1 "$RLHF" study overoptimization $S --out "$TMP/x" --n-list "" --ppo-dir "$TMP/empty"
expect_out "no \*.ckpt"
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/other.ckpt" --layers 1 --heads 2 --channels 16 --seq 16 --context 64 --batch 8 \
  --steps 1 --quiet >/dev/null 2>&1
expect_exit 1 "$RLHF" study overoptimization $S --out "$TMP/x" --n-list "" --ppo-checkpoints "$TMP/other.ckpt"
expect_out "not a fine-tune"
expect_true "no study.json left by failed runs" test ! -e "$TMP/x/study.json"

# best-of-n: proxy rises with n, gold peaks in between, the fit finds the peak
expect_exit 0 "$RLHF" study overoptimization $S --out "$TMP/bon" --quiet
expect_out "peak d\*"
expect_true "study.csv: header + 7 rows" test "$(wc -l <"$TMP/bon/study.csv")" -eq 8
expect_true "best-of-n table and fit" $PY - "$TMP/bon/study.json" <<'EOF'
import json, math, sys
j = json.load(open(sys.argv[1]))
for k in ("format", "version", "policy", "proxy", "gold", "prompts", "estimator", "bon", "ppo", "seconds"):
    assert k in j, k
assert j["format"] == "rlhf-study-overoptimization" and j["ppo"] is None and j["prompts"] == 32
rows = j["bon"]["rows"]
assert [r["x"] for r in rows] == [1, 2, 4, 8, 16, 32, 64]
for r in rows:
    assert abs(r["kl"] - (math.log(r["x"]) - (r["x"] - 1) / r["x"])) < 1e-9 and abs(r["d"] - math.sqrt(r["kl"])) < 1e-9
    for k in ("label", "proxy", "gold", "proxy_se", "gold_se", "samples"): assert k in r, k
p = [r["proxy"] for r in rows]; g = [r["gold"] for r in rows]
assert all(b >= a - 1e-9 for a, b in zip(p, p[1:])), p          # proxy never falls
assert p[-1] > p[0] + 0.3, p
top = max(range(len(g)), key=lambda i: g[i])
assert 0 < top < len(g) - 1, g                                     # gold peaks inside the range
assert g[top] > g[0] + 0.03 and g[-1] < g[0] - 0.1, g
f = j["bon"]["fit_gold"]
assert f["ok"] and f["form"] == "bon" and f["beta"] > 0 and f["r2"] > 0.8, f
assert rows[0]["d"] < f["d_star"] < rows[-1]["d"] and abs(f["kl_star"] - f["d_star"] ** 2) < 1e-9, f
assert abs(f["base"] - g[0]) < 1e-9 and abs(f["value_star"] - (f["base"] + f["r_star"])) < 1e-9
fp = j["bon"]["fit_proxy"]
assert fp["ok"] and fp["alpha"] > 0 and fp["beta"] < f["beta"], fp
EOF

# prefix estimator == `rlhf bon --batch 1` (same samples, same choice)
expect_exit 0 "$RLHF" study overoptimization $B --proxy length:24 --gold length:24 --n-list 4 --estimator prefix --out "$TMP/pre" --quiet
"$RLHF" bon $B --reward length:24 --n 4 --batch 1 --quiet >"$TMP/bon4.jsonl"
expect_true "prefix best-of-4 equals rlhf bon --n 4 --batch 1" $PY - "$TMP/pre/study.json" "$TMP/bon4.jsonl" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
b = [json.loads(l)["reward"] for l in open(sys.argv[2])]
row = j["bon"]["rows"][0]
assert row["x"] == 4 and len(b) == 32 and j["estimator"] == "prefix"
assert abs(row["proxy"] - sum(b) / len(b)) < 1e-5, (row["proxy"], sum(b) / len(b))
EOF

# PPO snapshots along a run, then the study over them
expect_exit 0 "$RLHF" ppo $B --reward length:24 --out "$TMP/ppo.ckpt" --steps 8 --save-every 2 --snapshots "$TMP/snaps" \
  --prompts-per-step 8 --minibatch 8 --lr 3e-4 --algo rloo --k 4 --quiet
expect_true "4 snapshots" test "$(ls "$TMP/snaps" | grep -c '^step-00000[2468]\.ckpt$')" -eq 4
expect_exit 0 "$RLHF" study overoptimization $S --n-list "" --ppo-dir "$TMP/snaps" --out "$TMP/ppo" --quiet
expect_out "PPO checkpoints"
expect_true "PPO rows, KL and fit" $PY - "$TMP/ppo/study.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["bon"] is None and j["ppo_samples_per_prompt"] == 4
rows = j["ppo"]["rows"]
assert [r["x"] for r in rows] == [0, 2, 4, 6, 8], [r["x"] for r in rows]
assert rows[0]["label"] == "reference" and rows[0]["kl"] == 0 and rows[0]["d"] == 0
assert all(r["kl"] > 0.05 for r in rows[1:]), [r["kl"] for r in rows]
assert rows[-1]["proxy"] > rows[0]["proxy"] + 0.1, [r["proxy"] for r in rows]
assert all(r["samples"] == 128 for r in rows)
for k in ("fit_gold", "fit_proxy"):
    f = j["ppo"][k]
    assert f["form"] == "rl" and "ok" in f and "base" in f
    assert (f["ok"] and all(x in f for x in ("alpha", "beta", "r2", "d_star", "kl_star"))) or (not f["ok"] and f["error"])
EOF
# the same files listed by hand (in another order) give the same rows
L="$TMP/snaps/step-000008.ckpt,$TMP/snaps/step-000002.ckpt,$TMP/snaps/step-000006.ckpt,$TMP/snaps/step-000004.ckpt"
expect_exit 0 "$RLHF" study overoptimization $S --n-list "" --ppo-checkpoints "$L" --out "$TMP/ppo2" --quiet
expect_true "--ppo-checkpoints sorted by step == --ppo-dir" sh -c "cut -d, -f1,3- '$TMP/ppo/study.csv' >'$TMP/a.csv'; cut -d, -f1,3- '$TMP/ppo2/study.csv' >'$TMP/b.csv'; cmp -s '$TMP/a.csv' '$TMP/b.csv'"
finish
