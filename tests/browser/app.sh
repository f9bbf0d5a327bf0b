#!/bin/sh
# Browser tier: Debian's chromium (headless) driven by npm's playwright-core
# logs in with a token, chats with the dummy generator (streamed), gives a
# thumbs up and a thumbs down with a comment, makes an A/B choice and a
# ranking, opens the operator view (screenshots of each view go to
# build/artifacts/); then the rows are checked in SQLite and in
# `rlhf feedback export`, with the right annotator.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/../cli/_serve_lib.sh"
ROOT=${RLHF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
HERE="$ROOT/tests/browser"
if [ ! -x /usr/bin/chromium ]; then echo "chromium missing: apt-get install -y chromium (scripts/deps.sh)"; echo "0 passed, 1 failed"; exit 1; fi
if [ ! -d "$HERE/node_modules/playwright-core" ]; then echo "playwright-core missing: run scripts/deps.sh (npm install in tests/browser)"; echo "0 passed, 1 failed"; exit 1; fi
ART="$ROOT/build/artifacts"
mkdir -p "$ART"
rm -f "$ART"/chat.png "$ART"/compare.png "$ART"/rank.png "$ART"/operator.png "$ART"/profile.png "$ART"/failure.png

DB="$TMP/browser.db"
expect_exit 0 "$RLHF" annotators add --db "$DB" --name browser-tester --group browser-group --operator
TOKEN=$(grep '^rlhf1' "$TMP/out")
"$RLHF" annotators add --db "$DB" --name someone-else >/dev/null 2>&1
expect_exit 0 "$RLHF" annotators question --db "$DB" --key region --text "Where do you live?" --choices "EU|US|elsewhere"
# A small metrics log, as a training run writes it, for the operator page's run plot.
awk 'BEGIN { for (i = 0; i < 200; i++) printf "{\"step\":%d,\"loss\":%.4f,\"reward\":%.4f,\"kl\":%.4f}\n", i, 3 * exp(-i / 60) + 0.3, 1 - exp(-i / 80), 0.02 * i / 200 }' > "$TMP/ppo_demo.jsonl"
start_server "$DB" --model dummy:a --model dummy:b --model dummy:c --dummy-delay-ms 60 --runs "$TMP/ppo_demo.jsonl"
expect_true "server started" [ -n "$PORT" ]

RLHF_URL="$U" RLHF_TOKEN="$TOKEN" RLHF_ARTIFACTS="$ART" timeout 180 node "$HERE/app.mjs" > "$TMP/node.out" 2>&1
NODE_RC=$?
cat "$TMP/node.out"
line=$(tail -n 1 "$TMP/node.out")
p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
PASS=$((PASS + ${p:-0})); FAIL=$((FAIL + ${f:-1}))
expect_true "browser script exit 0" [ "$NODE_RC" -eq 0 ]
stop_server
expect_true "server exits 0 on SIGTERM ($SRC)" [ "$SRC" = 0 ]

# ---- the rows in SQLite ---------------------------------------------------------
expect_sql "SELECT count(*) FROM judgements" 4
expect_sql "SELECT group_concat(DISTINCT a.name) FROM judgements j JOIN annotators a ON a.id = j.annotator_id" browser-tester
expect_sql "SELECT thumb || '|' || comment FROM judgements WHERE kind='thumbs' ORDER BY id" "1|
-1|too vague <b>really</b>"
expect_sql "SELECT choice FROM judgements WHERE kind='pair'" A
expect_sql "SELECT ranking FROM judgements WHERE kind='ranking'" "[1,0,2]"
expect_sql "SELECT count(*) FROM judgement_items i JOIN judgements j ON j.id = i.judgement_id WHERE j.kind='ranking'" 3
# The thumbs-up judges the answer to the XSS prompt, stored verbatim.
expect_sql "SELECT instr(g.response, '<img src=x onerror=\"window.__xss=1\">') > 0 FROM judgements j JOIN judgement_items i ON i.judgement_id = j.id JOIN generations g ON g.id = i.generation_id WHERE j.kind='thumbs' AND j.thumb = 1" 1
expect_sql "SELECT stopped FROM generations ORDER BY id LIMIT 1 OFFSET 2" 1
expect_sql "SELECT key || '=' || value FROM profile_answers" "region=EU"
expect_sql "PRAGMA integrity_check" ok

# ---- the export ------------------------------------------------------------------
expect_exit 0 "$RLHF" feedback export --db "$DB" --format jsonl --out "$TMP/export.jsonl"
expect_true "4 exported lines" [ "$(wc -l < "$TMP/export.jsonl")" -eq 4 ]
expect_true "every line by browser-tester with its group" node -e '
  const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const kinds = l.map((o) => o.kind).join(",");
  const ok = l.every((o) => o.annotator === "browser-tester" && o.groups.group === "browser-group" && o.groups.region === "EU")
    && kinds === "thumbs,thumbs,pair,ranking" && l[0].thumb === "up" && l[1].thumb === "down"
    && l[1].comment === "too vague <b>really</b>" && l[2].choice === "a" && l[3].ranks.join() === "1,0,2"
    && l[3].responses.length === 3 && l[2].prompt[0].text === "Which is better?" && l.every((o) => o.v === 1);
  process.exit(ok ? 0 : 1);' "$TMP/export.jsonl"
for v in chat compare rank operator profile; do
  expect_true "screenshot $v.png" [ -s "$ART/$v.png" ]
done
finish
