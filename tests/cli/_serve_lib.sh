# tests/cli/_serve_lib.sh — helpers for the `rlhf serve` tests (sourced after lib.sh).
#   start_server DB [flags...]   starts `rlhf serve` on a random port; sets SPID, PORT, U
#   stop_server                  SIGTERM + wait; sets SRC (its exit code)
#   api METHOD PATH [JSON]       curl with the session cookie and CSRF token; sets CODE, body in $TMP/body
command -v curl >/dev/null 2>&1 || { echo "curl is missing (apt-get install curl)"; echo "0 passed, 1 failed"; exit 1; }
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 is missing (apt-get install sqlite3)"; echo "0 passed, 1 failed"; exit 1; }
SPID=""
JAR="$TMP/jar"
CSRF=""
start_server() {
  db=$1; shift
  rm -f "$TMP/port"
  "$RLHF" serve --db "$db" --port 0 --port-file "$TMP/port" "$@" 2>>"$TMP/server.log" &
  SPID=$!
  i=0
  while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  PORT=$(cat "$TMP/port" 2>/dev/null)
  U="http://127.0.0.1:$PORT"
}
stop_server() {
  [ -n "$SPID" ] || return 0
  kill -TERM "$SPID" 2>/dev/null
  wait "$SPID"
  SRC=$?
  SPID=""
}
kill_server_now() {
  [ -n "$SPID" ] || return 0
  kill -KILL "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  SPID=""
}
trap 'if [ -n "$SPID" ]; then kill -KILL "$SPID" 2>/dev/null; fi; rm -rf "$TMP"' EXIT
# login TOKEN: new cookie jar, sets CSRF.
login() {
  rm -f "$JAR"
  CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -c "$JAR" -H 'Content-Type: application/json' \
    -H "Origin: $U" -d "{\"token\":\"$1\"}" "$U/api/login")
  CSRF=$(sed -n 's/.*"csrf":"\([0-9a-f]*\)".*/\1/p' "$TMP/body")
}
api() {
  m=$1; p=$2
  if [ "$m" = GET ]; then
    CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" "$U$p")
  else
    CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -b "$JAR" -H 'Content-Type: application/json' \
      -H "Origin: $U" -H "X-CSRF-Token: $CSRF" --data-binary "$3" "$U$p")
  fi
}
expect_code() { # want description
  if [ "$CODE" = "$1" ]; then ok; else bad "$2: HTTP $CODE (want $1): $(head -c 300 "$TMP/body")"; fi
}
expect_body() { # grep -E pattern
  if grep -Eq -- "$1" "$TMP/body"; then ok; else bad "body lacks /$1/: $(head -c 300 "$TMP/body")"; fi
}
sql() { sqlite3 -batch -noheader "$DB" "$1"; }
expect_sql() { # query want
  got=$(sql "$1")
  if [ "$got" = "$2" ]; then ok; else bad "sql '$1' = '$got' (want '$2')"; fi
}
