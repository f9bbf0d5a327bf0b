#!/bin/sh
# tests/run_tier.sh TIER BUILD_DIR — runs one test tier (or "all") and prints
# the sum as "N passed, N failed" on the last line; exits 1 if anything failed.
#
# A tier is a folder of test programs; each prints its own "N passed, N failed"
# line and exits non-zero on failure:
#   unit     BUILD/tests/test_*            (C, from tests/unit/test_*.c)
#   cli      tests/cli/*.sh                (the rlhf binary: flags, exit codes, files)
#   ref      tests/ref/*.py                (PyTorch / numpy references, Debian's python3)
#   js       tests/js/*.sh                 (JavaScript reference implementations, node)
#   browser  tests/browser/*.sh            (headless chromium + playwright-core)
#   mpi      tests/mpi/*.sh                (mpirun -np 2)
#   sanitize unit + cli against a sanitizer build
set -u
tier=${1:-all}
BUILD=${2:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export RLHF="$ROOT/$BUILD/rlhf" RLHF_BUILD="$ROOT/$BUILD" RLHF_ROOT="$ROOT"
export RLHF_SHARED="${RLHF_SHARED:-$ROOT/../shared}"
PY=${PY:-/usr/bin/python3}
total_pass=0 total_fail=0
failed_list=""

run_one() { # name, command...
  name=$1; shift
  log=$(mktemp)
  t0=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  t1=$(date +%s)
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | sed -E 's/^[A-Za-z]+: //')
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  else
    p=0; f=1
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  if [ "$f" -ne 0 ]; then
    echo "FAIL $name (exit $rc, $((t1 - t0))s): ${line:-no summary line}"
    sed 's/^/    /' "$log" | tail -n 40
    failed_list="$failed_list $name"
  else
    echo "ok   $name: $line ($((t1 - t0))s)"
  fi
  rm -f "$log"
}

run_dir() { # tier
  case $1 in
    unit)
      for t in "$ROOT/$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        case $t in *.d|*.o) continue;; esac
        run_one "unit/$(basename "$t")" "$t"
      done ;;
    cli|js|browser|mpi)
      for t in "$ROOT"/tests/$1/*.sh; do
        [ -f "$t" ] || continue
        case $(basename "$t") in lib.sh|_*) continue;; esac  # helpers sourced by the tests
        run_one "$1/$(basename "$t")" sh "$t"
      done ;;
    ref)
      if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
        echo "FAIL ref: $PY cannot import torch and numpy; run 'make deps'"
        total_fail=$((total_fail + 1)); return
      fi
      for t in "$ROOT"/tests/ref/test_*.py; do
        [ -f "$t" ] || continue
        run_one "ref/$(basename "$t")" "$PY" "$t"
      done ;;
  esac
}

case $tier in
  all) for t in unit cli ref js browser mpi; do run_dir $t; done ;;
  sanitize) run_dir unit; run_dir cli ;;
  *) run_dir "$tier" ;;
esac

echo "tier ${RLHF_TIER_TAG:-$tier}:"
[ -n "$failed_list" ] && echo "failed:$failed_list"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
