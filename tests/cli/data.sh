#!/bin/sh
# tests/cli/data.sh — `rlhf data prepare|info`: flags, exit codes, outputs.
. "$(dirname "$0")/lib.sh"
SH=${RLHF_SHARED:-../shared}/data
head -c 100000 "$SH/tinyshakespeare.txt" > "$TMP/a.txt"
tail -c 50000 "$SH/tinyshakespeare.txt" > "$TMP/b.txt"
"$RLHF" tokenizer train --input "$TMP/a.txt" --vocab-size 600 --out "$TMP/t.tok" --quiet

expect_exit 2 "$RLHF" data prepare --tokenizer "$TMP/t.tok" --input "$TMP/a.txt" --out "$TMP/d" --val-fraction 0.9
expect_out "val-fraction"
expect_exit 2 "$RLHF" data prepare --tokenizer "$TMP/t.tok" --input "$TMP/a.txt" --out "$TMP/d" --shard-tokens 10
expect_exit 2 "$RLHF" data prepare --tokenizer "$TMP/t.tok" --out "$TMP/d"
expect_exit 2 "$RLHF" data info

expect_exit 0 "$RLHF" data prepare --tokenizer "$TMP/t.tok" --input "$TMP/a.txt" "$TMP/b.txt" --out "$TMP/d" --val-fraction 0.2 --shard-tokens 5000
expect_out "train tokens in [0-9]+ shard"
expect_exit 0 "$RLHF" data info --dir "$TMP/d"
expect_out "^vocab_size: 600$"
expect_out "^token_bytes: 2$"
id=$("$RLHF" tokenizer info --tokenizer "$TMP/t.tok" | sed -n 's/^identity: //p')
expect_out "^tokenizer_identity: $id$"
train=$(sed -n 's/^train_tokens: //p' "$TMP/out")
shards=$(sed -n 's/^train_shards: //p' "$TMP/out")
expect_true "shard count matches --shard-tokens" [ "$shards" -eq $(( (train + 4999) / 5000 )) ]
expect_true "shard files exist" [ -f "$TMP/d/train_000000.bin" ] && [ -f "$TMP/d/val_000000.bin" ] && [ -f "$TMP/d/manifest.bin" ]
expect_true "train tokens > 0" [ "$train" -gt 1000 ]

expect_exit 1 "$RLHF" data prepare --tokenizer "$TMP/nope.tok" --input "$TMP/a.txt" --out "$TMP/d2"
expect_out "nope.tok"
expect_exit 1 "$RLHF" data prepare --tokenizer "$TMP/t.tok" --input "$TMP/nope.txt" --out "$TMP/d2"
expect_out "nope.txt"
expect_true "no manifest after a failed prepare" [ ! -e "$TMP/d2/manifest.bin" ]
expect_exit 1 "$RLHF" data prepare --tokenizer "$TMP/a.txt" --input "$TMP/a.txt" --out "$TMP/d2"
expect_out "not an rlhf.c binary file"
expect_exit 1 "$RLHF" data info --dir "$TMP"
expect_out "data prepare"
cp "$TMP/t.tok" "$TMP/d/manifest.bin"
expect_exit 1 "$RLHF" data info --dir "$TMP/d"
expect_out "not a token-data manifest"
finish
