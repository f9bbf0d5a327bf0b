#!/bin/sh
# bench/serve_load.sh [CLIENTS] [SECONDS] [SYNC] — load test of `rlhf serve`
# on loopback: CLIENTS concurrent clients (default 50, one annotator each)
# post judgements (pairs and thumbs, alternating) for SECONDS (default 60)
# over keep-alive connections, without rate limits. Afterwards every
# acknowledged judgement is looked up in the database.
# Prints judgements/s, p50/p99 latency, acknowledged vs stored.
# SYNC = full (default: fsync per commit) or normal.
# Run by hand after `make`: sh bench/serve_load.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
RLHF="$ROOT/$BUILD/rlhf"
CLIENT="$ROOT/$BUILD/tools/serve_client"
N=${1:-50}
SECS=${2:-60}
SYNC=${3:-full}
[ -x "$RLHF" ] && [ -x "$CLIENT" ] || { echo "build first: make"; exit 1; }
TMP=$(mktemp -d)
SPID=""
trap '[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; rm -rf "$TMP"' EXIT
DB="$TMP/load.db"
i=1
while [ $i -le "$N" ]; do "$RLHF" annotators add --db "$DB" --name "load$i" 2>/dev/null; i=$((i + 1)); done > "$TMP/tokens"
"$RLHF" serve --db "$DB" --port 0 --port-file "$TMP/port" --rate 1e6 --burst 1e6 --threads 4 --sync "$SYNC" 2>"$TMP/server.log" &
SPID=$!
i=0; while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
echo "serve_load: $N clients, ${SECS}s, synchronous=$SYNC, $(nproc) cores, $(date -u +%FT%TZ)"
"$CLIENT" "$(cat "$TMP/port")" "$TMP/tokens" "$N" "$SECS" "$TMP/acks" | tee "$TMP/result"
kill -TERM "$SPID"; wait "$SPID" || true; SPID=""
acked=$(wc -l < "$TMP/acks" | tr -d ' ')
sort -u "$TMP/acks" > "$TMP/acks.sorted"
sqlite3 "$DB" "SELECT id FROM judgements" | sort > "$TMP/stored"
stored=$(wc -l < "$TMP/stored" | tr -d ' ')
missing=$(comm -23 "$TMP/acks.sorted" "$TMP/stored" | wc -l | tr -d ' ')
echo "serve_load: acknowledged $acked, stored $stored, acknowledged-but-missing $missing, integrity $(sqlite3 "$DB" 'PRAGMA integrity_check')"
[ "$missing" -eq 0 ]
