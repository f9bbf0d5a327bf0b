#!/bin/sh
# `rlhf serve` over real sockets on 127.0.0.1 (random port), driven by curl:
# logins, sessions, CSRF/Origin/Host checks, strict JSON, size limits, rate
# limits, injection and XSS strings in every field, streaming and stop,
# operator-only views, export, graceful shutdown, schema refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_serve_lib.sh"

DB="$TMP/f.db"
EVIL_SQL="x'); DROP TABLE judgements; --"
EVIL_XSS='<script>alert(1)</script><img src=x onerror=alert(2)>'

# ---- annotators ---------------------------------------------------------------
expect_exit 0 "$RLHF" annotators add --db "$DB" --name alice --group red-team --group eu --operator
expect_out '^rlhf1\.1\.'
TOK_OP=$(grep '^rlhf1' "$TMP/out")
expect_exit 0 "$RLHF" annotators add --db "$DB" --name "$EVIL_XSS" --group g2
TOK_A=$(grep '^rlhf1' "$TMP/out")
expect_exit 0 "$RLHF" annotators add --db "$DB" --name bob
TOK_B=$(grep '^rlhf1' "$TMP/out")
expect_exit 2 "$RLHF" annotators add --db "$DB" --name alice
expect_out "already exists"
expect_exit 2 "$RLHF" annotators add --db "$DB" --name carol --group "$EVIL_SQL"
expect_exit 0 "$RLHF" annotators list --db "$DB"
expect_out "alice	operator	eu,red-team"
expect_out "bob	annotator"
expect_sql "SELECT count(*) FROM annotators" 3
# Only hashes are stored: no token appears in the database file.
expect_true "token secret not in the database" sh -c "! grep -qF '$(echo "$TOK_A" | cut -d. -f3)' '$DB'"
expect_exit 0 "$RLHF" annotators question --db "$DB" --key region --text "Where do you live?" --choices "EU|US|other"

start_server "$DB" --model dummy:a --model dummy:b --dummy-delay-ms 0
expect_true "server started" [ -n "$PORT" ]

# ---- static pages: compiled in, no traversal ----------------------------------------
CODE=$(curl -s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' "$U/")
expect_code 200 "login page"
expect_true "CSP header" grep -qi "content-security-policy: default-src 'none'; script-src 'self'" "$TMP/hdr"
expect_true "nosniff" grep -qi "x-content-type-options: nosniff" "$TMP/hdr"
for p in /chat /compare /rank /operator /profile /static/app.js /static/style.css; do
  CODE=$(curl -s -o /dev/null -w '%{http_code}' "$U$p"); expect_code 200 "GET $p"
done
for p in /static/../../etc/passwd /static/..%2f..%2fetc%2fpasswd /static/%2e%2e/server.c /static/web_assets.c /../Makefile /static/ /etc/passwd; do
  CODE=$(curl -s --path-as-is -o "$TMP/body" -w '%{http_code}' "$U$p"); expect_code 404 "GET $p"
done
expect_true "no file content leaked" sh -c "! grep -q 'root:' '$TMP/body'"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$U/chat"); expect_code 405 "DELETE page"

# ---- authentication ---------------------------------------------------------------------
api GET /api/me; expect_code 401 "me without session"
rm -f "$JAR"; CSRF=""
api POST /api/thumbs '{"generation":1,"thumb":1}'; expect_code 401 "write without session"
login "rlhf1.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; expect_code 401 "forged token"
login "$EVIL_SQL"; expect_code 401 "SQL injection as token"
login ""; expect_code 401 "empty token without open mode"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"token":' "$U/api/login")
expect_code 400 "truncated JSON"; expect_body "invalid JSON"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"token":"x","admin":true}' "$U/api/login")
expect_code 400 "unknown field"; expect_body "unknown field 'admin'"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '["x"]' "$U/api/login")
expect_code 400 "array body"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"token":"a","token":"b"}' "$U/api/login")
expect_code 400 "duplicate keys"
CODE=$(curl -s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' -c "$JAR" -H 'Content-Type: application/json' -d "{\"token\":\"$TOK_A\"}" "$U/api/login")
expect_code 200 "login"
expect_true "cookie HttpOnly + SameSite=Strict" grep -qi "set-cookie: rlhf_session=[0-9a-f]*; Path=/; HttpOnly; SameSite=Strict" "$TMP/hdr"
CSRF=$(sed -n 's/.*"csrf":"\([0-9a-f]*\)".*/\1/p' "$TMP/body")
api GET /api/me; expect_code 200 "me"; expect_body '"role":"annotator"'; expect_body '"dummy":true'

# ---- same-origin / CSRF -----------------------------------------------------------------------
J='{"prompt":"hello"}'
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -d "$J" "$U/api/compare")
expect_code 403 "no CSRF token"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $(echo "$CSRF" | tr 0-9a-f 1-9a-f0)" -d "$J" "$U/api/compare")
expect_code 403 "wrong CSRF token"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" -H "Origin: http://evil.example" -d "$J" "$U/api/compare")
expect_code 403 "foreign Origin"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" -H "Sec-Fetch-Site: cross-site" -d "$J" "$U/api/compare")
expect_code 403 "Sec-Fetch-Site cross-site"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: text/plain' -H "X-CSRF-Token: $CSRF" -d "$J" "$U/api/compare")
expect_code 415 "form content type"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H "Host: evil.example:$PORT" "$U/api/me")
expect_code 421 "DNS-rebinding Host"
SES=$(awk '$6 == "rlhf_session" {print $7}' "$JAR")
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Cookie: rlhf_session=$SES" -H "Host: localhost:$PORT" "$U/api/me")
expect_code 200 "localhost Host"

# ---- generation: streaming, escaping, storage ------------------------------------------------------
api POST /api/generate "{\"messages\":[{\"role\":\"user\",\"content\":\"$EVIL_XSS \\\" $EVIL_SQL\"}],\"params\":{\"seed\":7,\"max_tokens\":200}}"
expect_code 200 "generate"
expect_body '^event: start'
expect_body '^event: token'
expect_body '^event: done'
expect_body '"dummy":true'
GEN1=$(sed -n 's/^data: {"id":\([0-9]*\).*/\1/p' "$TMP/body")
expect_true "generation id ($GEN1)" [ -n "$GEN1" ]
expect_sql "SELECT count(*) FROM generations WHERE id=$GEN1 AND instr(response, '$EVIL_XSS') > 0 AND seed=7" 1
expect_sql "SELECT json_extract(conversation, '\$[0].content') = '$EVIL_XSS \" x''); DROP TABLE judgements; --' FROM generations WHERE id=$GEN1" 1
expect_sql "SELECT json_extract(params, '\$.max_tokens') FROM generations WHERE id=$GEN1" 200
# Same seed, same prompt: same answer (the dummy is deterministic).
api POST /api/generate "{\"messages\":[{\"role\":\"user\",\"content\":\"$EVIL_XSS \\\" $EVIL_SQL\"}],\"params\":{\"seed\":7,\"max_tokens\":200}}"
GEN1B=$(sed -n 's/^data: {"id":\([0-9]*\).*/\1/p' "$TMP/body")
expect_sql "SELECT (SELECT response FROM generations WHERE id=$GEN1) = (SELECT response FROM generations WHERE id=$GEN1B)" 1
api POST /api/generate '{"messages":[{"role":"assistant","content":"hi"}]}'; expect_code 400 "last turn not user"; expect_body "last message"
api POST /api/generate '{"messages":[{"role":"root","content":"hi"}]}'; expect_code 400 "bad role"
api POST /api/generate '{"prompt":"hi","params":{"temperature":99}}'; expect_code 400 "temperature range"
api POST /api/generate '{"prompt":"hi","params":{"evil":1}}'; expect_code 400 "unknown param"
api POST /api/generate '{"prompt":"hi","model":5}'; expect_code 400 "model index"
api POST /api/generate '{"prompt":"a\u0000b"}'; expect_code 400 "NUL in prompt"

# ---- judgements: validation, injection strings stored verbatim ------------------------------------
api POST /api/thumbs "{\"generation\":$GEN1,\"thumb\":1,\"comment\":\"$EVIL_XSS\"}"; expect_code 201 "thumbs up"
api POST /api/thumbs "{\"generation\":$GEN1,\"thumb\":-1,\"comment\":\"$EVIL_SQL\",\"client_key\":\"$EVIL_SQL\"}"; expect_code 201 "thumbs down"
J1=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' "$TMP/body")
api POST /api/thumbs "{\"generation\":$GEN1,\"thumb\":-1,\"comment\":\"$EVIL_SQL\",\"client_key\":\"$EVIL_SQL\"}"; expect_code 201 "retry, same client_key"
expect_body "\"id\":$J1}"
api POST /api/thumbs "{\"generation\":$GEN1,\"thumb\":0}"; expect_code 400 "thumb 0"
api POST /api/thumbs "{\"generation\":$GEN1,\"thumb\":\"up\"}"; expect_code 400 "thumb as string"
api POST /api/thumbs '{"generation":999999,"thumb":1}'; expect_code 400 "unknown generation"; expect_body "does not exist"
api POST /api/thumbs "{\"generation\":\"$EVIL_SQL\",\"thumb\":1}"; expect_code 400 "injection as generation id"
api POST /api/thumbs "{\"generation\":$GEN1,\"thumb\":1,\"comment\":7}"; expect_code 400 "comment as number"
api POST /api/thumbs "{\"generation\":$GEN1}"; expect_code 400 "missing thumb"; expect_body "missing field 'thumb'"
api POST /api/thumbs '{"generation":1,"thumb":1' ; expect_code 400 "bad JSON"
api POST /api/thumbs '' ; expect_code 400 "empty body"
api POST /api/compare "{\"prompt\":\"$EVIL_SQL\",\"k\":2}"; expect_code 200 "compare"
expect_body '"label":"A"'
expect_true "compare hides model identity" sh -c "! grep -qE 'dummy:|\"model\"|identity' '$TMP/body'"
GA=$(sed -n 's/.*"items":\[{"id":\([0-9]*\).*/\1/p' "$TMP/body")
GB=$(sed -n 's/.*"items":\[{"id":[0-9]*,[^}]*},{"id":\([0-9]*\).*/\1/p' "$TMP/body")
expect_true "two generations ($GA, $GB)" sh -c "[ -n \"$GA\" ] && [ -n \"$GB\" ]"
expect_sql "SELECT count(DISTINCT model_id) FROM generations WHERE id IN ($GA,$GB)" 2
api POST /api/pair "{\"generations\":[$GA,$GB],\"choice\":\"B\",\"comment\":\"$EVIL_XSS\"}"; expect_code 201 "pair"
api POST /api/pair "{\"generations\":[$GA,$GB],\"choice\":\"$EVIL_SQL\"}"; expect_code 400 "bad choice"
api POST /api/pair "{\"generations\":[$GA,$GA],\"choice\":\"A\"}"; expect_code 400 "same generation twice"
api POST /api/pair "{\"generations\":[$GA],\"choice\":\"A\"}"; expect_code 400 "one generation"
api POST /api/compare '{"prompt":"rank these","k":3}'; expect_code 200 "compare k=3"
IDS=$(grep -o '"id":[0-9]*' "$TMP/body" | cut -d: -f2 | paste -sd, -)
api POST /api/ranking "{\"generations\":[$IDS],\"order\":[2,0,1],\"comment\":\"ok\"}"; expect_code 201 "ranking"
api POST /api/ranking "{\"generations\":[$IDS],\"order\":[0,0,1]}"; expect_code 400 "ranking not a permutation"
api POST /api/ranking "{\"generations\":[$IDS],\"order\":[0,1]}"; expect_code 400 "ranking too short"
api POST /api/rating "{\"generation\":$GA,\"rating\":5,\"scale\":[1,7]}"; expect_code 201 "rating"
api POST /api/rating "{\"generation\":$GA,\"rating\":9,\"scale\":[1,7]}"; expect_code 400 "rating out of scale"
api POST /api/nope '{}'; expect_code 404 "unknown endpoint"
expect_sql "SELECT count(*) FROM judgements" 5
expect_sql "SELECT count(*) FROM judgements WHERE comment = '$(echo "$EVIL_SQL" | sed "s/'/''/g")'" 1
expect_sql "SELECT count(*) FROM judgements WHERE comment = '$EVIL_XSS'" 2
expect_sql "SELECT count(*) FROM judgements WHERE client_key = '$(echo "$EVIL_SQL" | sed "s/'/''/g")'" 1
expect_sql "SELECT ranking FROM judgements WHERE kind='ranking'" "[2,0,1]"
expect_sql "SELECT count(*) FROM judgement_items" $((2 + 2 + 3 + 1))
expect_sql "SELECT count(DISTINCT annotator_id) FROM judgements" 1

# ---- request size limits ---------------------------------------------------------------------------
head -c 70000 /dev/zero | tr '\0' 'a' > "$TMP/big"
printf '{"generation":%s,"thumb":1,"comment":"' "$GEN1" > "$TMP/bigjson"; cat "$TMP/big" >> "$TMP/bigjson"; printf '"}' >> "$TMP/bigjson"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" --data-binary @"$TMP/bigjson" "$U/api/thumbs")
expect_code 413 "oversize body"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/bigjson" "$U/api/thumbs")
expect_code 413 "oversize chunked body"
printf '{"generation":%s,"thumb":1,"comment":"%s"}' "$GEN1" "$(head -c 5000 "$TMP/big")" > "$TMP/longc"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" --data-binary @"$TMP/longc" "$U/api/thumbs")
expect_code 400 "comment over 4000 bytes"
expect_sql "SELECT count(*) FROM judgements" 5

# ---- roles and the operator view -----------------------------------------------------------------------
api GET /api/stats; expect_code 403 "stats as annotator"
api GET "/api/chart.svg?by=kind"; expect_code 403 "chart as annotator"
login "$TOK_OP"; expect_code 200 "operator login"
api GET /api/stats; expect_code 200 "stats"; expect_body '"total":5'
api GET "/api/chart.svg?by=annotator"; expect_code 200 "annotator chart"
expect_body '&lt;script&gt;alert\(1\)&lt;/script&gt;'
expect_true "no raw script tag in the SVG" sh -c "! grep -q '<script' '$TMP/body'"
api GET "/api/chart.svg?by=%3Cscript%3E%27"; expect_code 400 "bad chart"
api GET /api/profile; expect_code 200 "profile"; expect_body '"key":"region"'
api POST /api/profile '{"consent":false,"answers":{"region":"EU"}}'; expect_code 200 "profile without consent"
expect_sql "SELECT count(*) FROM profile_answers" 0
api POST /api/profile '{"consent":true,"answers":{"region":"Mars"}}'; expect_code 400 "answer not a choice"
api POST /api/profile '{"consent":true,"answers":{"region":"EU"}}'; expect_code 200 "profile with consent"
expect_sql "SELECT value FROM profile_answers" EU

# ---- stop a running stream ---------------------------------------------------------------------------------
stop_server
expect_true "clean exit on SIGTERM ($SRC)" [ "$SRC" = 0 ]
start_server "$DB" --dummy-delay-ms 150 --rate 1 --burst 3
login "$TOK_B"
curl -s -N -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" -d '{"prompt":"a long answer please","params":{"max_tokens":100}}' "$U/api/generate" > "$TMP/stream" &
CPID=$!
i=0; while ! grep -qs '"stream"' "$TMP/stream" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
SID=$(sed -n 's/.*"stream":"\([0-9a-f]*\)".*/\1/p' "$TMP/stream")
sleep 0.4
api POST /api/stop "{\"stream\":\"$SID\"}"; expect_code 200 "stop"
wait $CPID
expect_true "stream ended with stopped=true" grep -q '"stopped":true' "$TMP/stream"
expect_sql "SELECT stopped FROM generations ORDER BY id DESC LIMIT 1" 1
api POST /api/stop '{"stream":"0123456789abcdef0123456789abcdef"}'; expect_code 404 "stop unknown stream"

# ---- rate limit (burst 3, 1/s): the 4th quick write is refused ------------------------------------------------
G=$(sql "SELECT max(id) FROM generations")
api POST /api/thumbs "{\"generation\":$G,\"thumb\":1}"; C1=$CODE
api POST /api/thumbs "{\"generation\":$G,\"thumb\":1}"; C2=$CODE
api POST /api/thumbs "{\"generation\":$G,\"thumb\":1}"; C3=$CODE
expect_true "429 after the burst ($C1 $C2 $C3 $CODE)" [ "$CODE" = 429 ]
expect_body "too many requests"

# ---- graceful shutdown mid-stream: the partial answer is stored --------------------------------------------------
sleep 1.2
N0=$(sql "SELECT count(*) FROM generations")
curl -s -N -b "$JAR" -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" -d '{"prompt":"stream while stopping","params":{"max_tokens":100}}' "$U/api/generate" > "$TMP/stream2" &
CPID=$!
i=0; while ! grep -qs 'event: token' "$TMP/stream2" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
stop_server
wait $CPID
expect_true "server exits 0 after SIGTERM" [ "$SRC" = 0 ]
expect_true "client got done before the close" grep -q '"stopped":true' "$TMP/stream2"
expect_sql "SELECT count(*) FROM generations" $((N0 + 1))
expect_sql "SELECT stopped FROM generations ORDER BY id DESC LIMIT 1" 1

# ---- open mode -----------------------------------------------------------------------------------------------------
for i in $(seq 0 99); do echo "{\"step\":$i,\"loss\":$(( 100 - i )).5,\"kl\":0.0$i,\"note\":\"x\"}"; done > "$TMP/run<b>.jsonl"
start_server "$DB" --open-mode --runs "$TMP/run<b>.jsonl"
login ""; expect_code 200 "open mode login"; expect_body '"name":"local"'; expect_body '"role":"operator"'
# training-run plots: addressed by index, keys discovered, labels escaped
api GET /api/runs; expect_code 200 "runs"; expect_body '"keys":\["loss","kl"\]'; expect_body '"name":"run<b>.jsonl"'
api GET "/api/run.svg?run=0&key=loss"; expect_code 200 "run chart"; expect_body '<polyline'; expect_body 'run&lt;b&gt;.jsonl: loss'
expect_true "100 points plotted" [ "$(grep -o '[0-9.]*,[0-9.]* ' "$TMP/body" | wc -l)" -eq 100 ]
api GET "/api/run.svg?run=1&key=loss"; expect_code 400 "run index out of range"
api GET "/api/run.svg?run=..%2F..%2Fetc%2Fpasswd&key=loss"; expect_code 400 "run as a path"
api GET "/api/run.svg?run=0&key=%3Cscript%3E"; expect_code 200 "unknown key"; expect_body 'no values'; expect_body '&lt;script&gt;'
# login attempts are rate limited per address (20/s, burst 100)
URLS=$(for i in $(seq 1 200); do printf '%s ' "$U/api/login"; done)
# shellcheck disable=SC2086
curl -s -w '\nCODE:%{http_code}\n' -H 'Content-Type: application/json' -d '{"token":"rlhf1.1.x"}' $URLS > "$TMP/codes"
n429=$(grep -c '^CODE:429$' "$TMP/codes")
n401=$(grep -c '^CODE:401$' "$TMP/codes")
expect_true "login attempts rate limited ($n401 invalid, $n429 too many)" sh -c "[ $n429 -ge 1 ] && [ $n401 -ge 100 ]"
stop_server
expect_true "open-mode server exits 0 ($SRC)" [ "$SRC" = 0 ]

# ---- export -----------------------------------------------------------------------------------------------------------
expect_exit 0 "$RLHF" feedback export --db "$DB" --format jsonl --out "$TMP/e.jsonl"
# 5 from above + 2 thumbs of the rate-limit check
expect_out "7 lines written"
expect_true "7 JSONL lines" [ "$(wc -l < "$TMP/e.jsonl")" -eq 7 ]
expect_true "annotator name exported verbatim" grep -qF '"annotator":"<script>alert(1)</script><img src=x onerror=alert(2)>"' "$TMP/e.jsonl"
expect_true "groups exported" grep -qF '"groups":{"group":"g2"}' "$TMP/e.jsonl"
expect_true "every line parses" node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n");for(const x of l){const o=JSON.parse(x);if(o.v!==1||!o.kind||!o.annotator||!Array.isArray(o.responses)||!Array.isArray(o.prompt))process.exit(1)}' "$TMP/e.jsonl"
expect_true "ranking exported as ranks" grep -q '"kind":"ranking".*"ranks":\[1,2,0\]' "$TMP/e.jsonl"
expect_true "pair choice b, thumbs up/down" sh -c "grep -q '\"choice\":\"b\"' '$TMP/e.jsonl' && grep -q '\"thumb\":\"down\"' '$TMP/e.jsonl'"
expect_exit 0 "$RLHF" feedback export --db "$DB" --format hh --out "$TMP/e.hh"
expect_out "skipped"
expect_true "HH lines: 1 pair + 3 from the ranking" [ "$(wc -l < "$TMP/e.hh")" -eq 4 ]
expect_true "HH has chosen/rejected" grep -q '"chosen":"\\n\\nHuman: ' "$TMP/e.hh"
expect_exit 2 "$RLHF" feedback export --db "$DB" --format csv --out "$TMP/x"

# ---- a database from a newer rlhf is refused, untouched ---------------------------------------------------------------
cp "$DB" "$TMP/new.db"
sqlite3 "$TMP/new.db" "UPDATE schema_version SET version = 99"
expect_exit 1 "$RLHF" annotators list --db "$TMP/new.db"
expect_out "newer than this rlhf understands"
expect_exit 1 "$RLHF" serve --db "$TMP/new.db" --port 0
expect_true "still version 99" [ "$(sqlite3 "$TMP/new.db" 'SELECT version FROM schema_version')" = 99 ]
expect_exit 2 "$RLHF" serve --db "$DB" --model /nonexistent.ckpt --port 0
expect_out "needs --tokenizer"
expect_sql "PRAGMA integrity_check" ok
finish
