#!/bin/sh
# Crash safety of `rlhf serve`: kill -9 the server in the middle of a burst of
# writes from 20 concurrent clients, restart it, and check that every
# judgement the clients saw acknowledged (HTTP 201) is in the database and
# that SQLite's integrity check passes. Then a second burst against the
# restarted server, stopped with SIGTERM this time: same checks.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_serve_lib.sh"
CLIENT="$RLHF_BUILD/tools/serve_client"
[ -x "$CLIENT" ] || CLIENT="$(dirname "$RLHF")/tools/serve_client"
expect_true "serve_client built" [ -x "$CLIENT" ]

DB="$TMP/crash.db"
for i in $(seq 1 20); do "$RLHF" annotators add --db "$DB" --name "user$i" 2>/dev/null; done > "$TMP/tokens"
expect_true "20 tokens" [ "$(wc -l < "$TMP/tokens")" -eq 20 ]

check_acks() { # label
  n_ack=$(wc -l < "$TMP/acks" | tr -d ' ')
  sort -u "$TMP/acks" > "$TMP/acks.sorted"
  sql "SELECT id FROM judgements" | sort > "$TMP/stored"
  missing=$(comm -23 "$TMP/acks.sorted" "$TMP/stored" | wc -l | tr -d ' ')
  echo "  $1: $n_ack acknowledged, $(wc -l < "$TMP/stored" | tr -d ' ') stored, $missing acknowledged but missing"
  expect_true "$1: some judgements were acknowledged ($n_ack)" [ "$n_ack" -gt 50 ]
  expect_true "$1: every acknowledged judgement is stored ($missing missing)" [ "$missing" -eq 0 ]
  # Acks are distinct new rows (unique client keys per run), not replays of old ones.
  expect_true "$1: acknowledged ids are distinct" [ "$(wc -l < "$TMP/acks.sorted")" -eq "$n_ack" ]
  expect_sql "PRAGMA integrity_check" ok
  # Links intact: every stored judgement has its generations.
  expect_sql "SELECT count(*) FROM judgements j WHERE NOT EXISTS (SELECT 1 FROM judgement_items i WHERE i.judgement_id = j.id)" 0
}

# Burst 1: kill -9 after ~1.5 s of a 4 s burst.
: > "$TMP/acks"
start_server "$DB" --rate 1e6 --burst 1e6 --threads 4
"$CLIENT" "$PORT" "$TMP/tokens" 20 4 "$TMP/acks" > "$TMP/load1" &
LPID=$!
sleep 1.5
kill_server_now
wait $LPID
cat "$TMP/load1"
expect_true "clients saw the server die" grep -q '"connection_errors":[1-9]' "$TMP/load1"
start_server "$DB" --rate 1e6 --burst 1e6
expect_true "restarted after kill -9" [ -n "$PORT" ]
check_acks "after kill -9"

# Burst 2: SIGTERM mid-burst (graceful), same guarantees.
: > "$TMP/acks"
"$CLIENT" "$PORT" "$TMP/tokens" 20 3 "$TMP/acks" > "$TMP/load2" &
LPID=$!
sleep 1
stop_server
wait $LPID
expect_true "graceful stop exit 0 ($SRC)" [ "$SRC" = 0 ]
check_acks "after SIGTERM"
finish
