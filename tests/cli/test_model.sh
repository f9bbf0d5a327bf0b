#!/bin/sh
# tests/cli/test_model.sh — rlhf pretrain / sample end to end on a very small
# model: flags and exit codes, logs, checkpoint resume through the CLI (same
# losses bit for bit), Ctrl-C writes a checkpoint, sampling determinism.
. "$(dirname "$0")/lib.sh"
SH=${RLHF_SHARED:-../shared}
head -c 150000 "$SH/data/tinyshakespeare.txt" > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$TMP/text.txt" --out "$TMP/data" --quiet || { echo "setup failed"; exit 1; }
SMALL="--layers 1 --heads 2 --channels 32 --seq 32 --batch 4 --threads 1 --quiet"

# flags
expect_exit 0 "$RLHF" pretrain --help
expect_out "--resume"
expect_exit 2 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/x.ckpt" --steps -1
expect_exit 2 "$RLHF" pretrain --out "$TMP/x.ckpt"
expect_exit 2 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/x.ckpt" --config huge
expect_exit 1 "$RLHF" pretrain --data "$TMP/nope" --out "$TMP/x.ckpt" $SMALL
expect_out "rlhf data prepare"

# a straight run of 8 steps, with val loss and a JSONL log
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/a.ckpt" --steps 8 --eval-every 4 --log "$TMP/a.jsonl" $SMALL
expect_true "checkpoint written" test -s "$TMP/a.ckpt"
expect_true "8 step rows" test "$(grep -c '"loss"' "$TMP/a.jsonl")" -eq 8
expect_true "2 val rows" test "$(grep -c '"val_loss"' "$TMP/a.jsonl")" -eq 2
first=$(grep '"loss"' "$TMP/a.jsonl" | head -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(grep '"loss"' "$TMP/a.jsonl" | tail -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
expect_true "loss decreases ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'

# 4 steps of the same 8-step schedule, then resume to 8: identical losses
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/b.ckpt" --steps 8 --stop-after 4 --eval-every 4 --log "$TMP/b.jsonl" $SMALL
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/b.ckpt" --steps 8 --eval-every 4 --log "$TMP/b.jsonl" --resume "$TMP/b.ckpt" $SMALL
grep '"loss"' "$TMP/a.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/' > "$TMP/la"
grep '"loss"' "$TMP/b.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/' > "$TMP/lb"
expect_true "resumed losses equal the straight run's" cmp -s "$TMP/la" "$TMP/lb"
# the files differ in their provenance (command line, time): compare the weights
"$RLHF" checkpoint export --format llmc --model "$TMP/a.ckpt" --out "$TMP/a.llmc" 2>/dev/null
"$RLHF" checkpoint export --format llmc --model "$TMP/b.ckpt" --out "$TMP/b.llmc" 2>/dev/null
expect_true "resumed final weights equal" cmp -s "$TMP/a.llmc" "$TMP/b.llmc"
expect_true "weights were exported" test -s "$TMP/a.llmc"
# resume with another batch size is refused
expect_exit 1 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/c.ckpt" --steps 9 --resume "$TMP/b.ckpt" --layers 1 --heads 2 --channels 32 --seq 32 --batch 2 --threads 1 --quiet
expect_out "same --batch"

# Ctrl-C: a final checkpoint, exit 130
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/int.ckpt" --steps 1000000 $SMALL >"$TMP/int.out" 2>&1 &
pid=$!
i=0
while [ ! -s "$TMP/int.out" ] && [ $i -lt 20 ]; do sleep 0.2; i=$((i + 1)); done
sleep 1
kill -INT $pid
wait $pid
rc=$?
expect_true "SIGINT exit 130 (got $rc)" test "$rc" -eq 130
expect_true "checkpoint after SIGINT" test -s "$TMP/int.ckpt"

# sampling
expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 20 --temperature 0 --quiet
cp "$TMP/out" "$TMP/g1"
expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 20 --temperature 0 --quiet --seed 9
expect_true "greedy is deterministic" cmp -s "$TMP/out" "$TMP/g1"
# --precision (default half): every precision decodes; half and int8 give the
# same tokens on 1 and 2 threads (the fused step does not depend on the split)
expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 5 --precision fp32
expect_out "fp32 weights"
for p in half int8; do
  expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 20 --temperature 0 --json --precision $p --threads 1
  expect_out "$p weights"
  grep '"tokens"' "$TMP/out" > "$TMP/p1"
  expect_true "$p: one JSON sample" test "$(wc -l < "$TMP/p1")" -eq 1
  expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 20 --temperature 0 --json --precision $p --threads 2 --quiet
  expect_true "$p: same greedy tokens on 1 and 2 threads" cmp -s "$TMP/out" "$TMP/p1"
done
expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 3 --half
expect_out "half weights"
expect_exit 2 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --precision int4
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/c48.ckpt" --steps 1 --layers 1 --heads 2 --channels 48 --seq 8 --batch 1 --threads 1 --quiet
expect_exit 1 "$RLHF" sample --model "$TMP/c48.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --precision int8
expect_out "multiple of 32"
expect_exit 0 "$RLHF" sample --model "$TMP/int.ckpt" --tokenizer "$TMP/tok.bin" --prompt "KING" --max-tokens 8 --n 3 --json --quiet
expect_true "3 JSON samples" test "$(grep -c '"logprobs":\[-' "$TMP/out")" -eq 3
printf 'KING:\n\nROMEO:\nFirst Citizen:\n' > "$TMP/prompts.txt"
expect_exit 0 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt-file "$TMP/prompts.txt" --n 2 --max-tokens 5 --json --quiet
expect_true "3 prompts x 2 samples" test "$(grep -c '"logprobs"' "$TMP/out")" -eq 6
expect_out '"prompt":2,"sample":1'
expect_exit 1 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --prompt-file "$TMP/none.txt"
expect_exit 2 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok.bin" --top-p 2
expect_exit 1 "$RLHF" sample --model "$TMP/missing.ckpt" --tokenizer "$TMP/tok.bin"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 280 --out "$TMP/tok2.bin" --quiet
expect_exit 1 "$RLHF" sample --model "$TMP/a.ckpt" --tokenizer "$TMP/tok2.bin"
expect_out "tokenizer"
expect_exit 1 "$RLHF" sample --model "$TMP/tok.bin" --tokenizer "$TMP/tok.bin"
expect_out "checkpoint"
finish
