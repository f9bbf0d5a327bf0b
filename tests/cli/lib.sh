# tests/cli/lib.sh — helpers for shell tests of the rlhf binary. Source it:
#   . "$(dirname "$0")/lib.sh"
#   expect_exit 2 "$RLHF" pretrain --steps -1
#   finish
# $RLHF is set by tests/run_tier.sh; $TMP is a fresh directory removed at exit.
set -u
: "${RLHF:=build/rlhf}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PASS=0
FAIL=0
ok()   { PASS=$((PASS + 1)); }
bad()  { FAIL=$((FAIL + 1)); echo "  FAIL: $*"; }
# expect_exit CODE cmd... : runs cmd (stdout+stderr to $TMP/out), checks the exit code.
expect_exit() {
  want=$1; shift
  "$@" >"$TMP/out" 2>&1
  got=$?
  if [ "$got" -eq "$want" ]; then ok; else bad "exit $got (want $want): $*"; sed 's/^/    /' "$TMP/out" | head -n 10; fi
}
# expect_out PATTERN : the last command's output matches the grep -E pattern.
expect_out() {
  if grep -Eq -- "$1" "$TMP/out"; then ok; else bad "output lacks /$1/"; sed 's/^/    /' "$TMP/out" | head -n 10; fi
}
expect_true() { # description, cmd...
  d=$1; shift
  if "$@"; then ok; else bad "$d"; fi
}
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
