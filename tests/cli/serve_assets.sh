#!/bin/sh
# The pages compiled into the binary (src/serve/web_assets.c) match
# src/serve/web/: regenerating gives the committed file byte for byte.
. "$(dirname "$0")/lib.sh"
ROOT=${RLHF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
expect_exit 0 sh "$ROOT/scripts/embed_web.sh" "$TMP/web_assets.c"
expect_true "src/serve/web_assets.c is up to date (run scripts/embed_web.sh)" cmp -s "$TMP/web_assets.c" "$ROOT/src/serve/web_assets.c"
# Every page references only same-origin scripts and styles; no inline script, no CDN.
for f in "$ROOT"/src/serve/web/*.html; do
  expect_true "$(basename "$f"): no inline script" sh -c "! grep -Eq '<script>|<script [^>]*>[^<]|[[:space:]]on[a-z]+=' '$f'"
  expect_true "$(basename "$f"): nothing from the network" sh -c "! grep -Eq 'https?://' '$f'"
done
expect_true "app.js never uses innerHTML/outerHTML/insertAdjacentHTML/document.write" \
  sh -c "! grep -Eq 'innerHTML|outerHTML|insertAdjacentHTML|document\.write' '$ROOT/src/serve/web/app.js'"
finish
