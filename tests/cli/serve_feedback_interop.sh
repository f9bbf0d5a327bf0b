#!/bin/sh
# The app's export is the record library's canonical JSONL: `rlhf feedback
# import` (src/data, branch feedback) reads it and writes it back byte for
# byte. Runs only in a build that has `feedback import` (after the merge).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_serve_lib.sh"
if ! "$RLHF" feedback import --help >/dev/null 2>&1; then
  echo "skipped: this build has no 'rlhf feedback import' yet"
  finish; exit $?
fi
DB="$TMP/i.db"
TOK=$("$RLHF" annotators add --db "$DB" --name "ann<1>" --group red-team 2>/dev/null)
"$RLHF" annotators question --db "$DB" --key region --text "Region" --choices "EU|US"
start_server "$DB" --model dummy:a --model dummy:b --dummy-delay-ms 0
login "$TOK"; expect_code 200 "login"
api POST /api/profile '{"consent":true,"answers":{"region":"EU"}}'; expect_code 200 "profile"
api POST /api/generate '{"messages":[{"role":"system","content":"be nice"},{"role":"user","content":"hi \" <x>"},{"role":"assistant","content":"hello"},{"role":"user","content":"more \u00e9"}]}'
G=$(sed -n 's/^data: {"id":\([0-9]*\).*/\1/p' "$TMP/body")
api POST /api/thumbs "{\"generation\":$G,\"thumb\":-1,\"comment\":\"meh\"}"; expect_code 201 "thumbs"
api POST /api/compare '{"prompt":"p","k":3}'; expect_code 200 "compare"
IDS=$(grep -o '"id":[0-9]*' "$TMP/body" | cut -d: -f2 | paste -sd, -)
A=$(echo "$IDS" | cut -d, -f1); B=$(echo "$IDS" | cut -d, -f2)
api POST /api/pair "{\"generations\":[$A,$B],\"choice\":\"B\"}"; expect_code 201 "pair"
api POST /api/pair "{\"generations\":[$A,$B],\"choice\":\"both_bad\",\"comment\":\"both wrong\"}"; expect_code 201 "pair both bad"
api POST /api/ranking "{\"generations\":[$IDS],\"order\":[1,2,0]}"; expect_code 201 "ranking"
api POST /api/rating "{\"generation\":$A,\"rating\":3.5,\"scale\":[1,5]}"; expect_code 201 "rating"
stop_server
expect_exit 0 "$RLHF" feedback export --db "$DB" --format jsonl --out "$TMP/app.jsonl"
expect_exit 0 "$RLHF" feedback import --input "$TMP/app.jsonl" --format jsonl --out "$TMP/records.jsonl"
expect_true "canonical round trip is byte-identical" cmp -s "$TMP/app.jsonl" "$TMP/records.jsonl"
finish
