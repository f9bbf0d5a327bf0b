#!/bin/sh
# Browser tier: the report of `rlhf demo` (a --tiny run, seconds) opened in
# Debian's chromium (headless, playwright-core): no page or console errors,
# nothing fetched, the results/checks/per-group/stages tables and the SVG
# plots present and rendered, the checks shown as summary.json says. A
# full-page screenshot goes to $OUT/demo_report.png when OUT is set, else to
# BUILD/artifacts/demo_report.png (next to the feedback app's screenshots).
. "$(dirname "$0")/../cli/lib.sh"
ROOT=${RLHF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
HERE="$ROOT/tests/browser"
if [ ! -x /usr/bin/chromium ]; then echo "chromium missing: apt-get install -y chromium (scripts/deps.sh)"; echo "0 passed, 1 failed"; exit 1; fi
if [ ! -d "$HERE/node_modules/playwright-core" ]; then echo "playwright-core missing: run scripts/deps.sh (npm install in tests/browser)"; echo "0 passed, 1 failed"; exit 1; fi
ART=${OUT:-${RLHF_BUILD:-$ROOT/build}/artifacts}
mkdir -p "$ART"
rm -f "$ART/demo_report.png"

D="$TMP/demo"
expect_exit 0 "$RLHF" demo --tiny --layers 1 --heads 2 --channels 16 --max-new 16 --threads 1 --out "$D"
expect_true "report.html written" test -s "$D/report.html"
expect_true "summary.json written" test -s "$D/summary.json"

RLHF_REPORT="$D/report.html" RLHF_SUMMARY="$D/summary.json" RLHF_SHOT="$ART/demo_report.png" \
  timeout 120 node "$HERE/demo_report.mjs" > "$TMP/node.out" 2>&1
NODE_RC=$?
cat "$TMP/node.out"
line=$(tail -n 1 "$TMP/node.out")
p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
PASS=$((PASS + ${p:-0})); FAIL=$((FAIL + ${f:-1}))
expect_true "browser script exit 0" [ "$NODE_RC" -eq 0 ]
expect_true "screenshot $ART/demo_report.png" [ -s "$ART/demo_report.png" ]
finish
