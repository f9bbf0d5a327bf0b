#!/bin/sh
# make demo: the whole loop on the calculator world (docs/demo.md).
#   DEMO_OUT=dir   where everything goes (default demo-out)
#   DEMO_ARGS=...  extra flags for `rlhf demo`, e.g. DEMO_ARGS=--quick
set -e
RLHF=${RLHF:-./build/rlhf}
OUT=${DEMO_OUT:-demo-out}
# shellcheck disable=SC2086
exec "$RLHF" demo --out "$OUT" ${DEMO_ARGS:-}
