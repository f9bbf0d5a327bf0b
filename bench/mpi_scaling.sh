#!/bin/sh
# bench/mpi_scaling.sh — tokens/s of `rlhf pretrain` on this machine:
#   1 process x 1 thread, 1 process x 2 threads, 2 MPI ranks x 1 thread
#   (and 2 ranks with ZeRO-1), the same global batch each time.
# Reports the median tokens/s over the steps after the first 3 (warm-up), the
# ratios against 1 process x 2 threads (the peer on the same cores), and the
# share of the 2-rank step spent in gradient/parameter collectives (which
# includes waiting for the slower rank), and tools/dist_bench: the collectives
# alone on as many floats as the model has parameters.
#
#   sh bench/mpi_scaling.sh [BUILD]     env: CONFIG (tiny) B (global batch, 8)
#                                             T (64) STEPS (20) NP (2)
# Timings on a shared machine are noisy: run it when the machine is quiet,
# and repeat.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RLHF="$ROOT/$BUILD/rlhf"
SH=${RLHF_SHARED:-$ROOT/../shared}
CONFIG=${CONFIG:-tiny} B=${B:-8} T=${T:-64} STEPS=${STEPS:-20} NP=${NP:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
head -c 400000 "$SH/data/tinyshakespeare.txt" > "$W/text.txt"
"$RLHF" tokenizer train --input "$W/text.txt" --vocab-size 512 --out "$W/tok.bin" --quiet || exit 1
"$RLHF" data prepare --tokenizer "$W/tok.bin" --input "$W/text.txt" --out "$W/data" --quiet || exit 1
[ $((B % NP)) -eq 0 ] || { echo "B=$B must divide by NP=$NP"; exit 2; }
COMMON="--data $W/data --config $CONFIG --seq $T --steps $STEPS --eval-batches 1 --quiet"

# median tokens/s after the first 3 steps of a JSONL log
med() { grep '"tokens_per_s"' "$1" | tail -n +4 | sed 's/.*"tokens_per_s":\([0-9.e+-]*\).*/\1/' | sort -g |
        awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# share of the run's time in collectives (last row's comm_s / time)
comm() { tail -n 2 "$1" | grep '"comm_s"' | sed 's/.*"time":\([0-9.e+-]*\),"comm_s":\([0-9.e+-]*\).*/\2 \1/' | awk '{ if ($2 > 0) printf "%.1f%%", 100 * $1 / $2; else print "?" }'; }

"$RLHF" pretrain $COMMON --batch "$B" --threads 1 --out "$W/a.ckpt" --log "$W/a.jsonl" || exit 1
# parameters of the model (= floats all-reduced per step), from the checkpoint's size
NPARAM=$(( ($(stat -c %s "$W/a.ckpt") - 64) / 12 ))  # weights + 2 AdamW moments, 4 bytes each (header ~negligible)
"$RLHF" pretrain $COMMON --batch "$B" --threads "$NP" --out "$W/b.ckpt" --log "$W/b.jsonl" || exit 1
mpirun -np "$NP" "$RLHF" pretrain $COMMON --batch $((B / NP)) --threads 1 --out "$W/c.ckpt" --log "$W/c.jsonl" || exit 1
mpirun -np "$NP" "$RLHF" pretrain $COMMON --batch $((B / NP)) --threads 1 --zero --out "$W/d.ckpt" --log "$W/d.jsonl" || exit 1
a=$(med "$W/a.jsonl") b=$(med "$W/b.jsonl") c=$(med "$W/c.jsonl") d=$(med "$W/d.jsonl")
echo "mpi_scaling: config $CONFIG, global batch $B x seq $T, $STEPS steps, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "  %-34s %10.0f tok/s  x%.2f\n" "1 process x 1 thread" "$a" "$(echo "$a / $b" | bc -l)"
printf "  %-34s %10.0f tok/s  x1.00\n" "1 process x $NP threads" "$b"
printf "  %-34s %10.0f tok/s  x%.2f  (collectives %s of the run)\n" "$NP ranks x 1 thread" "$c" "$(echo "$c / $b" | bc -l)" "$(comm "$W/c.jsonl")"
mpirun -np "$NP" "$ROOT/$BUILD/tools/dist_bench" "$NPARAM" 10 | sed 's/^/  /'
printf "  %-34s %10.0f tok/s  x%.2f  (collectives %s of the run)\n" "$NP ranks x 1 thread, ZeRO-1" "$d" "$(echo "$d / $b" | bc -l)" "$(comm "$W/d.jsonl")"
