#!/bin/sh
# rlhf sim feedback --audit-rate/--audit-weight (spot-check auditing, docs/sim.md):
# flags, the audited records in the file, and the point of it: a reward model
# trained on the fooled pool's pairs with 10% audited (weight 10) prefers the
# correct answer on gold-labelled pairs far more often than one trained
# without audits (measured: 0.65 -> 0.93 with 3000 judgements, seed 1).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
PY=/usr/bin/python3

# every prompt leading, every suggestion wrong: answers are either right ("85, not 75") or agree with the user ("75, yes")
"$RLHF" sim world --out "$TMP/w" --leading-rate 1 --wrong-suggestion-rate 1 --n-train 2000 --n-heldout 50 2>/dev/null || { echo "setup failed"; exit 1; }
"$RLHF" tokenizer train --input "$TMP/w/sft.jsonl" --vocab-size 280 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
C="--world $TMP/w --kinds 1,0,0 --candidates 0.5,0,0.5,0,0 --judgements 2000 --seed 2"

expect_exit 0 "$RLHF" sim feedback --help
expect_out "audit-weight"
expect_exit 2 "$RLHF" sim feedback $C --out "$TMP/x.jsonl" --audit-rate 1.5
expect_exit 2 "$RLHF" sim feedback $C --out "$TMP/x.jsonl" --audit-weight -1
expect_true "nothing written by refused runs" test ! -e "$TMP/x.jsonl"

expect_exit 0 "$RLHF" sim feedback $C --out "$TMP/plain.jsonl"
expect_exit 0 "$RLHF" sim feedback $C --out "$TMP/audit.jsonl" --audit-rate 0.1 --audit-weight 10
expect_out "audited [0-9]+ \([0-9.]+%\) by fully informed auditors, weight 10"
expect_true "audited records: id, role and weight; the rest unchanged" $PY - "$TMP/plain.jsonl" "$TMP/audit.jsonl" <<'EOF'
import json, sys
a = open(sys.argv[1]).read().splitlines(); b = open(sys.argv[2]).read().splitlines()
assert len(a) == len(b) == 2000
n = 0
for x, y in zip(a, b):
    r = json.loads(y)
    if r["annotator"].startswith("sim:auditor-"):
        n += 1
        assert r["weight"] == 10 and r["meta"] == {"role": "auditor"}, r
        assert json.loads(x)["responses"] == r["responses"]
    else:
        assert x == y and "weight" not in r
assert 120 <= n <= 280, n   # 10% of 2000 (sd 13.4)
EOF
expect_exit 0 "$RLHF" feedback stats --input "$TMP/audit.jsonl"

# gold-labelled pairs: fully informed, noiseless judges on other prompts
"$RLHF" sim feedback --world "$TMP/w" --kinds 1,0,0 --candidates 0.5,0,0.5,0,0 --judgements 300 --seed 77 \
  --checking-rate 1 --noise 0 --out "$TMP/gold.jsonl" 2>/dev/null
$PY - "$TMP/gold.jsonl" "$TMP/flat.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[2], "w")
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["choice"] in ("a", "b"):
        for x in r["responses"]: out.write(json.dumps({"prompt": r["prompt"], "response": x, "choice": r["choice"]}) + "\n")
EOF
RM="--tokenizer $TMP/tok.bin --layers 1 --heads 2 --channels 32 --context 64 --seq 64 --epochs 2 --lr 1e-3 --seed 2 --quiet"
expect_exit 0 "$RLHF" rm $RM --records "$TMP/plain.jsonl" --out "$TMP/rm_plain.ckpt"
expect_exit 0 "$RLHF" rm $RM --records "$TMP/audit.jsonl" --out "$TMP/rm_audit.ckpt"
for k in plain audit; do
  "$RLHF" score --rm "$TMP/rm_$k.ckpt" --tokenizer "$TMP/tok.bin" --input "$TMP/flat.jsonl" >"$TMP/s_$k.jsonl" 2>/dev/null
done
expect_true "the audited RM prefers correct answers more often" $PY - "$TMP/s_plain.jsonl" "$TMP/s_audit.jsonl" <<'EOF'
import json, sys
def acc(path):
    rows = [json.loads(l) for l in open(path)]
    pairs = list(zip(rows[0::2], rows[1::2]))
    assert len(pairs) > 150
    return sum((a["score"] > b["score"]) == (a["choice"] == "a") for a, b in pairs) / len(pairs)
p, q = acc(sys.argv[1]), acc(sys.argv[2])
print("gold-pair accuracy: plain %.3f, audited %.3f" % (p, q))
assert q > p + 0.1 and q > 0.8, (p, q)
EOF
finish
