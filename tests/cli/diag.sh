#!/bin/sh
# tests/cli/diag.sh — rlhf diag fit: recovers a known Gao curve from a metrics log.
. "$(dirname "$0")/lib.sh"

# gold = 0.5 + d(1 - 0.5 ln d), d = sqrt(kl): alpha 1, beta 0.5, peak d* = e (KL = e^2 = 7.389).
awk 'BEGIN { print "{\"step\":0,\"kl\":0,\"gold\":0.5}";
             for (t = 1; t < 60; t++) { d = 0.1 * t; printf "{\"step\":%d,\"kl\":%.12f,\"gold\":%.12f}\n", t, d * d, 0.5 + d * (1 - 0.5 * log(d)) }
             print "{\"step\":99,\"loss\":1.5}" }' > "$TMP/m.jsonl"
expect_exit 0 "$RLHF" diag fit --metrics "$TMP/m.jsonl"
expect_out '"alpha":1\.0*[,0-9e-]'
expect_out '"beta":0\.50*[,0-9]'
expect_out '"d_star":2\.71828'
expect_out '"kl_star":7\.3890'
expect_out '"n":60,'
# Best-of-n form on points of d(1 - 0.25 d): peak d* = 2.
awk 'BEGIN { for (t = 0; t < 40; t++) { d = 0.1 * t; printf "{\"kl\":%.12f,\"gold\":%.12f}\n", d * d, d * (1 - 0.25 * d) } }' > "$TMP/b.jsonl"
expect_exit 0 "$RLHF" diag fit --metrics "$TMP/b.jsonl" --form bon
expect_out '"d_star":2[,.]'
expect_exit 2 "$RLHF" diag fit
expect_exit 2 "$RLHF" diag fit --metrics "$TMP/m.jsonl" --form quadratic
expect_exit 1 "$RLHF" diag fit --metrics "$TMP/missing.jsonl"
printf '{"loss":1}\n' > "$TMP/none.jsonl"
expect_exit 1 "$RLHF" diag fit --metrics "$TMP/none.jsonl"
expect_out "at least 2 points"
printf '{"kl":1,"gold":1}\nnot json\n' > "$TMP/bad.jsonl"
expect_exit 1 "$RLHF" diag fit --metrics "$TMP/bad.jsonl"
expect_out "bad.jsonl:2:"
finish
