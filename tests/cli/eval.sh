#!/bin/sh
# eval.sh — `rlhf eval`: per-group mean reward, win rate against the reference,
# best-worst gaps and the aggregate rules, on hand-checked answer files and on
# answers sampled from tiny checkpoints (saved answers re-scored give the
# same numbers); bad input exits non-zero with a message.
. "$(dirname "$0")/lib.sh"
printf 'hello there how are you\nsay the word please\nthe cat sat\n' > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet
T="--tokenizer $TMP/tok.bin"
# Two groups; ties count one half:
printf '{"prompt":"p1","response":"the cat"}\n{"prompt":"p2","response":"hello"}\n{"prompt":"p3","response":"the the"}\n' > "$TMP/pol.jsonl"
printf '{"prompt":"p1","response":"cat"}\n{"prompt":"p2","response":"hello there"}\n{"prompt":"p3","response":"the"}\n' > "$TMP/ref.jsonl"
# group the: policy 1,0,2 (mean 1), reference 0,0,1 (mean 1/3); wins 1, 1/2, 1 -> 5/6.
# group hello = contains:hello: policy 0,1,0 (1/3), reference 0,1,0 (1/3); all ties -> 1/2.
G="groups:word:the;contains:hello"
expect_exit 0 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --group-names the,hello
expect_out "^the +1\.0000 +0\.3333 +83\.3%"
expect_out "^hello +0\.3333 +0\.3333 +50\.0%"
expect_out "gap best - worst: mean reward 0\.6667 \(best the, worst hello\), win rate 33\.3 points \(worst hello\)"
expect_out "^mean "
expect_out "^nash "
expect_out "^isoelastic\(1\) "
expect_out "^min "
expect_exit 0 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --group-names the,hello --json
expect_out '"groups":\[\{"name":"the","mean":1\.0,"mean_ref":0\.3333333333,"win":0\.8333333333\},\{"name":"hello","mean":0\.3333333333,"mean_ref":0\.3333333333,"win":0\.5\}\]'
expect_out '"gap_mean":0\.6666666667,"gap_win":0\.3333333333,"best":"the","worst":"hello","worst_win":"hello"'
# disagreement points: the: lowest 0, range 2 -> -2; hello: lowest 0, range 1 -> -1.
expect_out '"disagreement":\[-2\.0,-1\.0\]'
# mean rule: mean of (u_the + 2 + u_hello + 1)/2 over answers: policy (1 + 1/3)/2 + 1.5, reference (1/3 + 1/3)/2 + 1.5
expect_out '\{"rule":"mean","policy":2\.166666667,"reference":1\.833333333,"win":0\.8333333333\}'
# min rule on s = u - d per answer: policy p1 (3, 1) -> 1, p2 (2, 2) -> 2, p3 (4, 1) -> 1, mean 4/3;
# reference p1 (2, 1) -> 1, p2 (2, 2) -> 2, p3 (3, 1) -> 1 = 4/3; every answer ties -> 1/2.
expect_out '\{"rule":"min","policy":1\.333333333,"reference":1\.333333333,"win":0\.5\}'
# one group: no rules
expect_exit 0 "$RLHF" eval $T --reward word:the --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --json
expect_out '"rules":\[\]'
# the aggregates use population weights when given
expect_exit 0 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --group-weights 1,0 --json
expect_out '\{"rule":"mean","policy":3\.0,"reference":2\.333333333,"win":0\.8333333333\}'

# ---- sampled answers from tiny checkpoints ----
printf '{"prompt": "say the word", "response": "the word"}\n{"prompt": "hello", "response": "hello there"}\n' > "$TMP/sft.jsonl"
S="--threads 1 --quiet --layers 1 --heads 1 --channels 16 --seq 48 --val-fraction 0"
expect_exit 0 "$RLHF" sft $T --data "$TMP/sft.jsonl" --out "$TMP/a.ckpt" --steps 2 $S
expect_exit 0 "$RLHF" sft $T --data "$TMP/sft.jsonl" --out "$TMP/b.ckpt" --steps 2 --seed 7 $S
printf 'say the word\nhello\n{"prompt": "the cat"}\n' > "$TMP/prompts.txt"
E="eval $T --reward $G --prompts $TMP/prompts.txt --max-new 8 --threads 1"
expect_exit 0 "$RLHF" $E --policy "$TMP/a.ckpt" --reference "$TMP/b.ckpt" --temperature 1 --n 2 --json \
  --save-responses "$TMP/sa.jsonl" --save-reference-responses "$TMP/sb.jsonl"
cp "$TMP/out" "$TMP/sampled.json"
expect_true "6 answers (3 prompts x 2)" test "$(wc -l < "$TMP/sa.jsonl")" -eq 6
expect_exit 0 "$RLHF" eval $T --reward "$G" --responses "$TMP/sa.jsonl" --reference-responses "$TMP/sb.jsonl" --json
expect_true "re-scoring the saved answers gives the same report" cmp -s "$TMP/out" "$TMP/sampled.json"
# a policy against itself (greedy: the same answers) wins half of everything
expect_exit 0 "$RLHF" $E --policy "$TMP/a.ckpt" --reference "$TMP/a.ckpt" --json
expect_out '"win":0\.5\},\{"name":"contains:hello"[^}]*"win":0\.5\}'
expect_out '"gap_win":0\.0'
# mixing: sampled policy against given reference answers
expect_exit 0 "$RLHF" $E --policy "$TMP/a.ckpt" --reference-responses "$TMP/sb.jsonl" --n 2
expect_out "^word:the "

# ---- errors ----
expect_exit 2 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl"
expect_out "--reference"
expect_exit 2 "$RLHF" eval $T --reward "$G" --policy "$TMP/a.ckpt" --reference "$TMP/b.ckpt"
expect_out "needs --prompts"
expect_exit 2 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --group-weights 1,x
printf '{"prompt":"p1","response":"cat"}\n{"prompt":"other","response":"x"}\n{"prompt":"p3","response":"the"}\n' > "$TMP/ref2.jsonl"
expect_exit 1 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref2.jsonl"
expect_out "answer 2 is to \"p2\" for the policy but \"other\" for the reference"
head -n 2 "$TMP/ref.jsonl" > "$TMP/ref3.jsonl"
expect_exit 1 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref3.jsonl"
expect_out "3 answers and the reference 2"
expect_exit 1 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --group-weights 1,1,1
expect_out "3 group weights for 2 groups"
expect_exit 1 "$RLHF" eval $T --reward "$G" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl" --group-names a
expect_out "--group-names needs 2"
printf '{"prompt":"p1"}\n' > "$TMP/bad.jsonl"
expect_exit 1 "$RLHF" eval $T --reward "$G" --responses "$TMP/bad.jsonl" --reference-responses "$TMP/ref.jsonl"
expect_out "bad.jsonl:1: needs string fields"
expect_exit 1 "$RLHF" eval $T --reward "bogus:1" --responses "$TMP/pol.jsonl" --reference-responses "$TMP/ref.jsonl"
expect_out "unknown reward kind"
finish
