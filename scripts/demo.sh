#!/bin/sh
# make demo: the whole pipeline on the default data. Stages join as their issues land;
# a stage whose command is not built yet is reported and skipped.
set -e
RLHF=${RLHF:-./build/rlhf}
OUT=${DEMO_OUT:-demo-out}
mkdir -p "$OUT"
has() { "$RLHF" --help | grep -q "^  $1 "; }
echo "rlhf demo: writing to $OUT/"
if ! has "sim world"; then
  echo "demo: the simulated world (issue 8) is not built yet; nothing to run."
  exit 0
fi
