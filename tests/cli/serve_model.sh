#!/bin/sh
# `rlhf serve --model a.ckpt --model b.ckpt --tokenizer tok.bin`: a real GPT
# checkpoint (trained here, tiny) generates over HTTP. The streamed token
# events concatenate to the stored answer, which is exactly what
# `rlhf sample` gives for the same rendered chat prompt, seed and parameters;
# model identity and seed are stored; compare uses both checkpoints without
# naming them; a reward checkpoint and a missing tokenizer are refused; the
# checkpoint security policy applies to --model.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_serve_lib.sh"
SH=${RLHF_SHARED:-../shared}
unset RLHF_VERIFY_KEY RLHF_KEY_FILE RLHF_PASSPHRASE RLHF_SIGN_KEY
head -c 60000 "$SH/data/tinyshakespeare.txt" > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 280 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$TMP/text.txt" --out "$TMP/data" --quiet || { echo "setup failed"; exit 1; }
SMALL="--layers 1 --heads 2 --channels 32 --seq 64 --batch 2 --steps 2 --threads 1 --quiet"
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/a.ckpt" $SMALL || { echo "setup failed"; exit 1; }
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/b.ckpt" --seed 2 $SMALL || { echo "setup failed"; exit 1; }
echo '{"prompt": "say a word", "chosen": "hello there", "rejected": "how"}' > "$TMP/pairs.jsonl"
"$RLHF" rm --tokenizer "$TMP/tok.bin" --model "$TMP/a.ckpt" --records "$TMP/pairs.jsonl" --out "$TMP/rm.ckpt" --steps 1 \
  --val-fraction 0 --seq 32 --threads 1 --quiet || { echo "setup failed"; exit 1; }
"$RLHF" keys generate --out "$TMP/k" >/dev/null 2>&1 || { echo "setup failed"; exit 1; }
DB="$TMP/f.db"
T="--tokenizer $TMP/tok.bin"

# ---- refusals ----
expect_exit 2 "$RLHF" serve --db "$DB" --model "$TMP/a.ckpt" --port 0
expect_out "needs --tokenizer"
expect_exit 1 "$RLHF" serve --db "$DB" --model "$TMP/rm.ckpt" $T --port 0
expect_out "'reward' checkpoint: it scores text and cannot generate"
expect_true "a refused model creates no database" [ ! -e "$DB" ]
expect_exit 1 "$RLHF" serve --db "$DB" --model "$TMP/missing.ckpt" $T --port 0
# the checkpoint policy: an unsigned checkpoint under a verify key is refused
expect_exit 1 "$RLHF" serve --db "$DB" --model "$TMP/a.ckpt" $T --port 0 --verify-key "$TMP/k/sign.pub"
expect_out "not signed"
# a tokenizer that is not the model's
printf 'completely different text for another vocabulary\n' > "$TMP/other.txt"
"$RLHF" tokenizer train --input "$TMP/other.txt" --vocab-size 270 --out "$TMP/tok2.bin" --quiet
expect_exit 1 "$RLHF" serve --db "$DB" --model "$TMP/a.ckpt" --tokenizer "$TMP/tok2.bin" --port 0
expect_out "tokenizer"

# ---- serving two checkpoints ----
"$RLHF" annotators add --db "$DB" --name ann >"$TMP/tok.txt" 2>/dev/null
TOK=$(grep '^rlhf1' "$TMP/tok.txt")
start_server "$DB" --model "$TMP/a.ckpt" --model "$TMP/b.ckpt" $T
expect_true "server started" [ -n "$PORT" ]
expect_true "log names the checkpoint" grep -q "a.ckpt#" "$TMP/server.log"
login "$TOK"; expect_code 200 "login"
api POST /api/generate '{"prompt":"ROMEO:","model":0,"params":{"seed":7,"max_tokens":12,"temperature":0.8,"top_k":50}}'
expect_code 200 "generate"
cp "$TMP/body" "$TMP/stream"
expect_body '^event: start'
expect_body '"generator":"gpt"'
expect_body '^event: token'
expect_body '"dummy":false'
GEN=$(sed -n 's/^data: {"id":\([0-9]*\).*/\1/p' "$TMP/stream")
expect_true "generation id ($GEN)" [ -n "$GEN" ]
expect_sql "SELECT seed FROM generations WHERE id=$GEN" 7
expect_sql "SELECT json_extract(params, '\$.top_k') || ' ' || json_extract(params, '\$.max_tokens') FROM generations WHERE id=$GEN" "50 12"
expect_sql "SELECT m.identity LIKE '%/a.ckpt#%' FROM generations g JOIN models m ON m.id = g.model_id WHERE g.id=$GEN" 1
# the token events, concatenated, are the stored answer
ARR="[$(sed -n 's/^data: \({"text":.*}\)$/\1/p' "$TMP/stream" | paste -sd, - | sed "s/'/''/g")]"
expect_true "some token events" [ "$ARR" != "[]" ]
expect_sql "SELECT (SELECT group_concat(json_extract(value, '\$.text'), '') FROM json_each('$ARR')) = response FROM generations WHERE id=$GEN" 1
expect_sql "SELECT length(response) > 0 FROM generations WHERE id=$GEN" 1
# ... and they are the tokens `rlhf sample` draws (byte tokens of a tiny model
# are often not UTF-8: the server stores them repaired, so repair sample's too) for the rendered chat prompt
"$RLHF" sample --model "$TMP/a.ckpt" $T --prompt '<|bos|><|user|>ROMEO:<|end|><|assistant|>' --no-bos \
  --seed 7 --max-tokens 12 --temperature 0.8 --top-k 50 --threads 1 --quiet 2>/dev/null | "${RLHF_BUILD:-build}/tools/utf8_sanitize" > "$TMP/sampled.txt"
sql "SELECT response FROM generations WHERE id=$GEN" > "$TMP/stored.txt"
expect_true "served answer = rlhf sample's answer" cmp -s "$TMP/sampled.txt" "$TMP/stored.txt"
# same seed, same answer; the other checkpoint answers differently (other weights)
api POST /api/generate '{"prompt":"ROMEO:","model":0,"params":{"seed":7,"max_tokens":12,"temperature":0.8,"top_k":50}}'
GEN2=$(sed -n 's/^data: {"id":\([0-9]*\).*/\1/p' "$TMP/body")
expect_sql "SELECT (SELECT response FROM generations WHERE id=$GEN) = (SELECT response FROM generations WHERE id=$GEN2)" 1
api POST /api/generate '{"prompt":"ROMEO:","model":1,"params":{"seed":7,"max_tokens":12,"temperature":0.8}}'
GEN3=$(sed -n 's/^data: {"id":\([0-9]*\).*/\1/p' "$TMP/body")
expect_sql "SELECT m.identity LIKE '%/b.ckpt#%' FROM generations g JOIN models m ON m.id = g.model_id WHERE g.id=$GEN3" 1
# a conversation longer than the context still answers (kept: its end)
LONG=$(head -c 3000 "$TMP/text.txt" | tr -d '"\\\n\r\t')
api POST /api/generate "{\"prompt\":\"$LONG\",\"params\":{\"max_tokens\":5}}"
expect_code 200 "long prompt"
expect_body '^event: done'
# compare: both checkpoints answer, neither is named
api POST /api/compare '{"prompt":"JULIET:","k":2,"params":{"max_tokens":8}}'
expect_code 200 "compare"
expect_true "compare hides model identity" sh -c "! grep -qE 'ckpt|\"model\"|identity|gpt' '$TMP/body'"
# The answers are random bytes of a tiny model and may hold '}' or ',': take the
# item ids as the first two "id": keys after "items" (a quote inside an answer is
# escaped as \", so an answer cannot forge one).
sed -n 's/.*"items":\[//p' "$TMP/body" | grep -o '"id":[0-9]*' | sed 's/"id"://' > "$TMP/ids"
GA=$(sed -n 1p "$TMP/ids")
GB=$(sed -n 2p "$TMP/ids")
expect_true "two generations ($GA, $GB)" sh -c "[ -n \"$GA\" ] && [ -n \"$GB\" ]"
expect_sql "SELECT count(DISTINCT model_id) FROM generations WHERE id IN ($GA,$GB)" 2
expect_sql "SELECT count(*) FROM models WHERE identity LIKE '%.ckpt#%'" 2
stop_server
expect_true "clean shutdown" [ "$SRC" -eq 0 ]

# ---- Stop mid-answer: a bigger model with a 1024-token context (one cheap
# training step) answers 1000 greedy tokens in seconds (its greedy answer never
# hits <|end|>), far longer than the stop takes; the sampler is cancelled and
# the partial answer stored with stopped=1 (only a stop sets it). 16 layers:
# the server decodes with half-precision weights, twice as fast as fp32, and 8
# layers sometimes finished the 1000 tokens before the stop on a busy machine.
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/big.ckpt" --layers 16 --heads 4 --channels 256 --context 1024 --seq 8 \
  --batch 1 --steps 1 --threads 1 --quiet || { echo "setup failed"; exit 1; }
start_server "$DB" --model "$TMP/big.ckpt" $T
login "$TOK"
curl -s -N -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" \
  -d '{"prompt":"hi","params":{"max_tokens":1000,"temperature":0}}' "$U/api/generate" > "$TMP/stream" &
CPID=$!
i=0; while ! grep -qs '^event: token' "$TMP/stream" && [ $i -lt 200 ]; do sleep 0.02; i=$((i + 1)); done
SID=$(sed -n 's/.*"stream":"\([0-9a-f]*\)".*/\1/p' "$TMP/stream")
api POST /api/stop "{\"stream\":\"$SID\"}"; expect_code 200 "stop"
wait $CPID
expect_true "stream ended with stopped=true" grep -q '"stopped":true' "$TMP/stream"
expect_sql "SELECT stopped FROM generations ORDER BY id DESC LIMIT 1" 1
N=$(sql "SELECT length(response) FROM generations ORDER BY id DESC LIMIT 1")
expect_true "the answer was cut early ($N of up to 1000 tokens)" [ "${N:-0}" -gt 0 -a "${N:-0}" -lt 900 ]
stop_server
expect_true "clean shutdown" [ "$SRC" -eq 0 ]
finish
