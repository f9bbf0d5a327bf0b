#!/bin/sh
# docs/flags.md is generated from the flag tables; it must match the binary.
. "$(dirname "$0")/lib.sh"
sh "$RLHF_ROOT/scripts/gen_flags_doc.sh" "$RLHF" > "$TMP/flags.md"
if diff -u "$RLHF_ROOT/docs/flags.md" "$TMP/flags.md" > "$TMP/diff"; then ok; else
  bad "docs/flags.md is stale: run 'sh scripts/gen_flags_doc.sh > docs/flags.md'"; head -n 20 "$TMP/diff"; fi
finish
