#!/bin/sh
# feedback.sh — `rlhf feedback import|export|stats`: exit codes, messages,
# counts on the real data, round trips through files, nothing partial written.
. "$(dirname "$0")/lib.sh"
D=${RLHF_SHARED:-../shared}/data
OA=$D/oasst_en_100_trees.jsonl
HH=$D/hh_rlhf_harmless_base_test.jsonl.gz

# usage errors: exit 2
expect_exit 2 "$RLHF" feedback import --out "$TMP/x.jsonl"
expect_out "input"
expect_exit 2 "$RLHF" feedback import --input "$OA" --out "$TMP/x.jsonl" --format csv
expect_out "format"
expect_exit 2 "$RLHF" feedback export --input "$OA" --out "$TMP/x" --format parquet
expect_exit 2 "$RLHF" feedback stats --input "$OA" --top -1
expect_exit 0 "$RLHF" feedback import --help
expect_out "skip-bad"
expect_exit 2 "$RLHF" feedback
expect_out "feedback import"

# real OASST: counts by kind and the OASST accounting
expect_exit 0 "$RLHF" feedback import --input "$OA" --out "$TMP/oa.jsonl"
expect_out "demo +670$"
expect_out "thumbs +430$"
expect_out "ranking +207$"
expect_out "pairs +732 "
expect_out "dropped 22 synthetic"
expect_out "455 assistant messages with votes \(25 tied"
expect_out "oasst:crowd"
expect_exit 0 "$RLHF" feedback stats --input "$TMP/oa.jsonl"
expect_out "records 1307"
expect_out "oasst:unknown +670 "
expect_out "oasst:crowd +637 "

# real HH (gzip read directly): import, export to HH = the original bytes
expect_exit 0 "$RLHF" feedback import --format hh --input "$HH" --out "$TMP/hh.jsonl"
expect_out "pair +2312$"
expect_out "hh:unknown"
expect_exit 0 "$RLHF" feedback export --input "$TMP/hh.jsonl" --format hh --out "$TMP/hh_back.jsonl"
expect_out "wrote 2312 HH pairs"
expect_true "HH re-export is byte-identical to the original" sh -c "gzip -dc '$HH' | cmp -s - '$TMP/hh_back.jsonl'"
# canonical export of canonical records is the same file
expect_exit 0 "$RLHF" feedback export --input "$TMP/oa.jsonl" --out "$TMP/oa2.jsonl"
expect_true "canonical re-export is byte-identical" cmp -s "$TMP/oa.jsonl" "$TMP/oa2.jsonl"
# several inputs at once, and to stdout
expect_exit 0 "$RLHF" feedback import --input "$OA" "$HH" --out "$TMP/all.jsonl"
expect_out "all inputs"
expect_out "total +3619$"
"$RLHF" feedback import --input "$OA" --out - 2>/dev/null | wc -l >"$TMP/n"
expect_true "--out - writes 1307 records to stdout" [ "$(cat "$TMP/n")" -eq 1307 ]

# groups and annotators in stats
cat >"$TMP/g.jsonl" <<'J'
{"prompt": "P", "chosen": "a", "rejected": "b", "annotator": "u1", "groups": {"group": "g1", "age": "18-24"}}
{"prompt": "P", "chosen": "a", "rejected": "c", "annotator": "u2", "groups": {"group": "g1"}}
{"prompt": "Q", "completion": "d", "label": true, "annotator": "u3", "groups": {"group": "g2"}}
J
expect_exit 0 "$RLHF" feedback stats --input "$TMP/g.jsonl"
expect_out "group=g1 +2 +2 "
expect_out "age=18-24 +1 +1 "
expect_out "distinct prompts 2"

# malformed input: file:line and what was expected; nothing written; skip-bad
printf '%s\n' '{"prompt": "ok", "response": "fine"}' '{"prompt": "p", "chosen": "x"}' '' '{"prompt": "ok2", "response": "fine"}' >"$TMP/bad.jsonl"
echo "keep me" >"$TMP/out.jsonl"
expect_exit 1 "$RLHF" feedback import --input "$TMP/bad.jsonl" --out "$TMP/out.jsonl"
expect_out "bad.jsonl:2: a pair needs both 'chosen' and 'rejected'"
expect_out "skip-bad"
expect_true "a failed import leaves the old output alone" grep -q "keep me" "$TMP/out.jsonl"
expect_exit 0 "$RLHF" feedback import --input "$TMP/bad.jsonl" --out "$TMP/out.jsonl" --skip-bad
expect_out "skipped 1 malformed line"
expect_out "bad.jsonl:2:"
expect_out "demo +2$"
expect_true "skip-bad keeps the good lines" [ "$(wc -l <"$TMP/out.jsonl")" -eq 2 ]
expect_exit 1 "$RLHF" feedback import --format oasst --input "$TMP/bad.jsonl" --out "$TMP/o.jsonl"
expect_out "bad.jsonl:1: expected an OpenAssistant tree"
expect_exit 1 "$RLHF" feedback import --input "$TMP/nope.jsonl" --out "$TMP/o.jsonl"
expect_out "cannot open .*nope.jsonl"
head -c 5000 "$HH" >"$TMP/trunc.gz"
expect_exit 1 "$RLHF" feedback import --input "$TMP/trunc.gz" --out "$TMP/o.jsonl" --skip-bad
expect_out "truncated or damaged"
expect_exit 1 "$RLHF" feedback stats --input "$TMP/bad.jsonl"
expect_out "bad.jsonl:2:"
expect_exit 1 "$RLHF" feedback export --input "$TMP/bad.jsonl" --out "$TMP/o.jsonl"

# HH export of things HH cannot say: counted as skipped
cat >"$TMP/mixed.jsonl" <<'J'
{"kind": "pair", "annotator": "b", "prompt": "Q", "responses": ["A", "B"], "choice": "tie"}
{"kind": "pair", "annotator": "b", "prompt": "Q", "responses": ["A", "B"], "choice": "b"}
J
expect_exit 0 "$RLHF" feedback export --input "$TMP/mixed.jsonl" --format hh --out "$TMP/m.jsonl"
expect_out "wrote 1 HH pairs.*skipped 1 pairs"
expect_true "winner first in HH" grep -q '"chosen": "\\n\\nHuman: Q\\n\\nAssistant: B"' "$TMP/m.jsonl"
finish
