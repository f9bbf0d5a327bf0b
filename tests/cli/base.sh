#!/bin/sh
# The rlhf command itself: help, version, unknown commands and flags, exit codes.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$RLHF" --help
expect_out "usage: rlhf <command>"
expect_out "version"
expect_exit 2 "$RLHF"
expect_exit 0 "$RLHF" --version
expect_out "^rlhf [0-9]+\.[0-9]+\.[0-9]+"
expect_exit 2 "$RLHF" no-such-command
expect_out "unknown command 'no-such-command'"
expect_exit 0 "$RLHF" version --help
expect_out "usage: rlhf version"
expect_exit 2 "$RLHF" version --no-such-flag
expect_out "unknown flag --no-such-flag"
expect_exit 0 "$RLHF" version
expect_out "features:"
# Every command's --help works and is generated from its flag table.
"$RLHF" --help | sed -n 's/^  \([a-z][a-z0-9 -]*[a-z0-9]\)  .*/\1/p' | sed 's/ *$//' > "$TMP/cmds"
n=0
while read -r cmd; do
  [ -n "$cmd" ] || continue
  n=$((n + 1))
  # shellcheck disable=SC2086
  expect_exit 0 "$RLHF" $cmd --help
  expect_out "usage: rlhf $cmd"
  # shellcheck disable=SC2086
  expect_exit 2 "$RLHF" $cmd --definitely-not-a-flag
done < "$TMP/cmds"
expect_true "found the command list ($n commands)" [ "$n" -ge 1 ]
finish
