#!/bin/sh
# tests/mpi/trainers.sh — `rlhf rm`, `dpo`, `kto`, `sft` data-parallel under mpirun -np 2:
#  - rm and dpo: 2 ranks x batch B follow 1 process x batch 2B for 10 steps
#    (loss per step and held-out numbers within TOL); a 1 x B control, which
#    sees other data, must not;
#  - rank 0 alone prints and logs;
#  - checkpoints written under MPI load in a single process (score, train on);
#  - SIGUSR1 to mpirun stops an rm run cleanly: exit 130, a loadable checkpoint;
#  - kto and sft run under MPI (2 ranks) and leave a loadable checkpoint;
#  - ppo (and grpo, rloo) with 2 ranks completes; its logged global reward mean
#    and KL equal the row-weighted mean of the ranks' local sums (--dist-debug
#    prints them), the ranks' rollouts differ (own seeds), rank 0's first
#    rollout is the one-process run's (rank 0 keeps --seed).
#
# TOL: the runs compute the same gradient with a different fp32 summation
# order (per-rank forwards over B rows, then a sum over ranks, vs one forward
# over 2B rows; held-out forwards batched differently). Measured on this
# machine: rm at most 6e-9 on losses of ~0.4-0.7, dpo at most 9e-8 on losses
# of ~0.4-0.7 over 10 steps (fp32 ulp there: 6e-8); TOL = 1e-5 leaves room for
# other BLAS builds and is far below what a data bug gives (the 1 x B control
# differs by ~1e-2 or more).
. "$(dirname "$0")/../cli/lib.sh"
command -v mpirun >/dev/null 2>&1 || { bad "mpirun not found; run 'make deps'"; finish; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
TOL=1e-5
MPI="timeout 60 mpirun -np 2"

# ---- tiny data: 36 preference pairs, a ranking, thumbs, a demonstration ----
printf 'alpha beta gamma delta red blue green is good no say\n' > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
for a in alpha beta gamma delta eps zeta eta theta iota kappa lambda mu; do
  for b in red blue green; do
    echo "{\"prompt\": \"say $a $b\", \"chosen\": \"$a $b is good\", \"rejected\": \"no $b\"}"
  done
done > "$TMP/prefs.jsonl"
cp "$TMP/prefs.jsonl" "$TMP/mix.jsonl"
cat >> "$TMP/mix.jsonl" <<'J'
{"prompt": "how are you", "responses": ["fine", "bad", "ok thanks"], "ranking": [2, 0, 1]}
{"prompt": "please", "completion": "say please", "label": true}
{"prompt": "please", "completion": "no", "label": false}
{"prompt": "say beta", "completion": "beta is good", "label": true}
{"prompt": "say gamma", "completion": "no", "label": false}
{"prompt": "say a word", "response": "alpha is good"}
J
S="--threads 1 --layers 1 --heads 2 --channels 32 --seq 48 --tokenizer $TMP/tok.bin"

field() { grep "\"$2\"" "$1" | sed "s/.*\"$2\":\([0-9.e+-]*\).*/\1/"; }
# maxdiff FILE_A FILE_B: largest |a-b| over paired lines (1e9 if the line counts differ)
maxdiff() {
  if [ "$(wc -l < "$1")" -ne "$(wc -l < "$2")" ] || [ ! -s "$1" ]; then echo 1e9; return; fi
  paste "$1" "$2" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g\n", m + 0 }'
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
gt100() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > 100 * b) }'; }
# same NAME ONE TWO FIELD...: each field of log ONE equals log TWO's within TOL
same() {
  n=$1 a=$2 b=$3; shift 3
  for f in "$@"; do
    field "$a" "$f" > "$TMP/fa"; field "$b" "$f" > "$TMP/fb"
    d=$(maxdiff "$TMP/fa" "$TMP/fb"); echo "  $n: max |$f diff| = $d (tol $TOL, $(wc -l < "$TMP/fa") values)"
    expect_true "$n: $f within $TOL (got $d)" le "$d" "$TOL"
  done
}

# ---- rm: 1 x 8 vs 2 x 4 units per step ----
R="--records $TMP/prefs.jsonl --steps 10 --micro-batch 8 --val-fraction 0.2 --eval-every 5 --lr 1e-3"
expect_exit 0 "$RLHF" rm $S $R --batch 8 --out "$TMP/rm1.ckpt" --log "$TMP/rm1.jsonl" --quiet
expect_exit 0 $MPI "$RLHF" rm $S $R --batch 4 --out "$TMP/rm2.ckpt" --log "$TMP/rm2.jsonl"
expect_out "data parallel: 2 ranks x --batch 4"
expect_true "rm: rank 0 alone prints the header" test "$(grep -c '^rm: ' "$TMP/out")" -eq 1
expect_true "rm: rank 0 alone logs: 10 step rows" test "$(grep -c '"loss"' "$TMP/rm2.jsonl")" -eq 10
same "rm 2x4 vs 1x8" "$TMP/rm1.jsonl" "$TMP/rm2.jsonl" loss val_bt_loss val_ece reward_mean reward_std
expect_exit 0 "$RLHF" rm $S $R --batch 4 --out "$TMP/rmh.ckpt" --log "$TMP/rmh.jsonl" --quiet
field "$TMP/rm1.jsonl" loss > "$TMP/fa"; field "$TMP/rmh.jsonl" loss > "$TMP/fb"; dh=$(maxdiff "$TMP/fa" "$TMP/fb")
expect_true "rm control 1 x 4 differs from 1 x 8 by more than 100 x $TOL (got $dh)" gt100 "$dh" "$TOL"
# the MPI checkpoint loads in one process: score with it, train on from it
echo '{"prompt": "say alpha red", "response": "alpha red is good"}' > "$TMP/score.jsonl"
expect_exit 0 "$RLHF" score --rm "$TMP/rm2.ckpt" --tokenizer "$TMP/tok.bin" --input "$TMP/score.jsonl" --threads 1
expect_out '"score"'
expect_exit 0 "$RLHF" rm $S --records "$TMP/prefs.jsonl" --model "$TMP/rm2.ckpt" --steps 1 --out "$TMP/rm3.ckpt" --quiet

# ---- dpo: 1 x 4 vs 2 x 2 pairs per micro-batch, accumulation 2 ----
D="--records $TMP/prefs.jsonl --steps 10 --accum 2 --val-fraction 0.2 --eval-every 5 --lr 1e-3 --kl-samples 4 --kl-tokens 8"
expect_exit 0 "$RLHF" dpo $S $D --batch 4 --out "$TMP/d1.ckpt" --log "$TMP/d1.jsonl" --quiet
expect_exit 0 $MPI "$RLHF" dpo $S $D --batch 2 --out "$TMP/d2.ckpt" --log "$TMP/d2.jsonl"
expect_out "data parallel: 2 ranks x --batch 2"
expect_true "dpo: rank 0 alone prints the header" test "$(grep -c '^dpo: ' "$TMP/out")" -eq 1
expect_true "dpo: rank 0 alone logs: 10 step rows" test "$(grep -c '"loss"' "$TMP/d2.jsonl")" -eq 10
# (val_reward_accuracy is left out: at step 0 policy = reference, the log-ratios
#  are rounding noise and their comparison flips with the summation order)
same "dpo 2x2 vs 1x4" "$TMP/d1.jsonl" "$TMP/d2.jsonl" loss margin accuracy grad_norm val_pref_prob val_logratio_chosen val_kl_sampled
expect_exit 0 "$RLHF" dpo $S $D --batch 2 --out "$TMP/dh.ckpt" --log "$TMP/dh.jsonl" --quiet
field "$TMP/d1.jsonl" loss > "$TMP/fa"; field "$TMP/dh.jsonl" loss > "$TMP/fb"; dh=$(maxdiff "$TMP/fa" "$TMP/fb")
expect_true "dpo control 1 x 2 differs from 1 x 4 by more than 100 x $TOL (got $dh)" gt100 "$dh" "$TOL"
expect_exit 0 "$RLHF" sft $S --data "$TMP/mix.jsonl" --model "$TMP/d2.ckpt" --steps 1 --out "$TMP/d3.ckpt" --quiet

# ---- clean stop: mpirun forwards SIGUSR1; the ranks agree and rank 0 writes ----
rm -f "$TMP/u.ckpt"
mpirun -np 2 "$RLHF" rm $S --records "$TMP/prefs.jsonl" --batch 4 --steps 1000000 --out "$TMP/u.ckpt" --log "$TMP/u.jsonl" --quiet >"$TMP/out" 2>&1 &
mp=$!
i=0; while [ "$(grep -c '"loss"' "$TMP/u.jsonl" 2>/dev/null || echo 0)" -lt 3 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -USR1 $mp
wait $mp
rc=$?
expect_true "rm: SIGUSR1 to mpirun: exit 130 (got $rc)" test "$rc" -eq 130
expect_exit 0 "$RLHF" score --rm "$TMP/u.ckpt" --tokenizer "$TMP/tok.bin" --input "$TMP/score.jsonl" --threads 1

# ---- kto and sft run data-parallel and write loadable checkpoints ----
expect_exit 0 $MPI "$RLHF" kto $S --records "$TMP/mix.jsonl" --steps 4 --batch 2 --val-fraction 0.2 --kl-samples 2 --kl-tokens 4 \
  --out "$TMP/k2.ckpt" --log "$TMP/k2.jsonl" --quiet
expect_true "kto: 4 step rows" test "$(grep -c '"loss"' "$TMP/k2.jsonl")" -eq 4
expect_exit 0 $MPI "$RLHF" sft $S --data "$TMP/mix.jsonl" --winners --steps 4 --batch 2 --val-fraction 0.2 \
  --out "$TMP/s2.ckpt" --log "$TMP/s2.jsonl" --quiet
expect_true "sft: 4 step rows and a val loss" test "$(grep -c '"loss"' "$TMP/s2.jsonl")" -eq 4 -a "$(grep -c '"val_loss"' "$TMP/s2.jsonl")" -eq 1
expect_exit 0 "$RLHF" sample --model "$TMP/s2.ckpt" --tokenizer "$TMP/tok.bin" --prompt "say" --max-tokens 4 --threads 1

# ---- ppo: rollouts on every rank, global statistics ----
printf 'say alpha\nsay beta\nsay gamma\nsay delta\nsay red\nsay blue\nsay green\nsay mu\n' > "$TMP/prompts.txt"
PP="--policy $TMP/s2.ckpt --tokenizer $TMP/tok.bin --reward regex:[aeiou] --prompts $TMP/prompts.txt --prompts-per-step 2 --k 2 --max-new 6 --minibatch 2 --threads 1"
expect_exit 0 $MPI "$RLHF" ppo $PP --steps 3 --out "$TMP/p2.ckpt" --log "$TMP/p2.jsonl" --dist-debug
expect_out "data parallel: 2 ranks x 2 prompts"
# (-o: rank 0's progress bar, which ends in \r, may share a line with rank 1's output)
grep -o 'dist-debug: rank [0-9]* step [0-9]* rows [0-9]* reward_sum [-0-9.e+]* kl_sum [-0-9.e+]*' "$TMP/out" > "$TMP/dbg"
expect_true "ppo: 3 steps x 2 ranks of local sums" test "$(wc -l < "$TMP/dbg")" -eq 6
expect_true "ppo: rank 0 alone logs: 3 rows" test "$(grep -c '"reward_mean"' "$TMP/p2.jsonl")" -eq 3
# global = (sum over ranks of local sums) / (sum of local rows), per step
awk '{ for (i = 1; i <= NF; i++) { if ($i == "step") s = $(i+1); if ($i == "rows") n[s] += $(i+1);
        if ($i == "reward_sum") r[s] += $(i+1); if ($i == "kl_sum") k[s] += $(i+1) } }
     END { for (s in n) printf "%d %.9g %.9g\n", s + 1, r[s] / n[s], k[s] / n[s] }' "$TMP/dbg" | sort -n > "$TMP/want"
sed 's/.*"step":\([0-9]*\),"reward_mean":\([^,]*\),.*"kl":\([^,]*\),.*/\1 \2 \3/' "$TMP/p2.jsonl" > "$TMP/got"
echo "  ppo global (step reward_mean kl) logged vs from the ranks' sums:"; paste "$TMP/got" "$TMP/want" | sed 's/^/    /'
d=$(paste "$TMP/got" "$TMP/want" | awk '{ for (i = 2; i <= 3; i++) { e = $i - $(i+3); if (e < 0) e = -e; if (e > m) m = e } } END { printf "%.3g\n", m + 0 }')
expect_true "ppo: logged reward mean and KL = row-weighted mean of the ranks' (max diff $d <= 1e-8)" le "$d" 1e-8
expect_true "ppo: steps match" test "$(cut -d' ' -f1 "$TMP/got" | tr '\n' ' ')" = "$(cut -d' ' -f1 "$TMP/want" | tr '\n' ' ')"
expect_true "ppo: the ranks' rollouts differ (own seeds)" \
  test "$(grep 'rank 0 step 1 ' "$TMP/dbg" | sed 's/.*kl_sum //')" != "$(grep 'rank 1 step 1 ' "$TMP/dbg" | sed 's/.*kl_sum //')"
# one process, same flags: its first rollout is rank 0's (same prompts, same seed)
expect_exit 0 "$RLHF" ppo $PP --steps 1 --out "$TMP/p1.ckpt" --log "$TMP/p1.jsonl" --quiet
r1=$(sed -n 's/.*"reward_mean":\([^,]*\),.*/\1/p' "$TMP/p1.jsonl")
r0=$(grep 'rank 0 step 0 ' "$TMP/dbg" | awk '{ for (i = 1; i <= NF; i++) if ($i == "reward_sum") printf "%.9g", $(i+1) / 4 }')
expect_true "ppo: rank 0's first rollout = the one-process run's (reward mean $r0 vs $r1)" awk -v a="$r0" -v b="$r1" 'BEGIN { d = a - b; exit !(d < 1e-9 && d > -1e-9) }'
expect_exit 0 "$RLHF" sample --model "$TMP/p2.ckpt" --tokenizer "$TMP/tok.bin" --prompt "say" --max-tokens 4 --threads 1
expect_exit 0 $MPI "$RLHF" ppo $PP --algo grpo --steps 2 --out "$TMP/g2.ckpt" --log "$TMP/g2.jsonl" --quiet
expect_true "grpo: 2 rows" test "$(grep -c '"reward_mean"' "$TMP/g2.jsonl")" -eq 2
expect_exit 0 $MPI "$RLHF" ppo $PP --algo rloo --value separate --steps 2 --out "$TMP/o2.ckpt" --quiet
finish
