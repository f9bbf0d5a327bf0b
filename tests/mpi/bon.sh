#!/bin/sh
# Best-of-n under mpirun: prompt blocks are spread over the ranks and rank 0
# prints them in order, so 2 and 3 ranks give exactly the answers (stdout and
# the SFT set) of one process.
. "$(dirname "$0")/../cli/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
SH=${RLHF_SHARED:-../shared}
head -c 60000 "$SH/data/tinyshakespeare.txt" > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 280 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$TMP/text.txt" --out "$TMP/data" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" pretrain --data "$TMP/data" --out "$TMP/p.ckpt" --layers 1 --heads 2 --channels 32 --seq 32 --batch 4 --steps 30 \
  --threads 1 --quiet || { echo "setup failed"; exit 1; }
printf 'ROMEO\nJULIET\nNURSE\nKING\nQUEEN\nFRIAR\nHAMLET\n' > "$TMP/prompts.txt"
A="--policy $TMP/p.ckpt --tokenizer $TMP/tok.bin --reward word:the --prompts $TMP/prompts.txt --n 4 --max-new 12 --batch 2 --threads 1 --raw --quiet"
# shellcheck disable=SC2086
expect_exit 0 "$RLHF" bon $A --sft-out "$TMP/one.sft"
cp "$TMP/out" "$TMP/one.out"
expect_true "one process answers every prompt" [ "$(wc -l < "$TMP/one.out")" -eq 7 ]
for np in 2 3; do
  # shellcheck disable=SC2086
  expect_exit 0 timeout 120 mpirun -np $np "$RLHF" bon $A --sft-out "$TMP/mpi$np.sft"
  grep '^{' "$TMP/out" > "$TMP/mpi$np.out"
  expect_true "$np ranks: the same answers in the same order" cmp -s "$TMP/one.out" "$TMP/mpi$np.out"
  expect_true "$np ranks: the same SFT set" cmp -s "$TMP/one.sft" "$TMP/mpi$np.sft"
done
# the comparison can fail: another seed gives other answers
# shellcheck disable=SC2086
expect_exit 0 "$RLHF" bon $A --seed 7
expect_true "another seed differs" sh -c "! cmp -s '$TMP/one.out' '$TMP/out'"
finish
