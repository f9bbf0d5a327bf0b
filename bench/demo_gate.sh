#!/bin/sh
# bench/demo_gate.sh — is the calculator world learnable by our C model on 2
# cores in the demo's time? For each configuration: build a world, optionally
# pretrain for PRE seconds, SFT for SFT seconds (constant lr after warm-up,
# checkpoints every 100 steps, each copied with its wall time), then answer the
# held-out prompts greedily with every checkpoint and grade them with
# `rlhf sim eval`. Prints (and writes to $OUT/gate.tsv):
#   config  phase_seconds  step  heldout_accuracy
# Each configuration runs pinned to its own 2 cores (taskset), in parallel, so
# on a machine with >= 2*N free cores every one sees an uncontended 2-core box.
#   sh bench/demo_gate.sh OUTDIR [SFT_SECONDS] [PRE_SECONDS]
set -u
OUT=${1:?usage: demo_gate.sh OUTDIR [SFT_SECONDS] [PRE_SECONDS]}
SFT=${2:-240}
PRE=${3:-60}
R=${RLHF:-./build/rlhf}
TOOL=${DEMO_TOOL:-./build/tools/demo_tool}
mkdir -p "$OUT"
# name | cores | world flags | pretrain seconds | sft flags
CONFIGS="A|0,1|--a-max 99 --b-max 99|0|--lr 3e-3 --batch 64
B|2,3|--a-max 99 --b-max 99|$PRE|--lr 3e-3 --batch 64
C|4,5|--a-max 49 --b-max 49|0|--lr 3e-3 --batch 64
D|6,7|--a-max 99 --b-max 99|0|--lr 1e-3 --batch 32
E|8,9|--a-max 99 --b-max 99|0|--lr 3e-3 --batch 128
F|10,11|--a-max 99 --b-max 99 --style-mix 0.5,0.5,0|0|--lr 3e-3 --batch 64"

run_cfg() { # name cores worldflags pre sftflags
  n=$1; c=$2; D="$OUT/$n"; mkdir -p "$D"
  T="taskset -c $c"
  [ "$(nproc)" -ge 12 ] || T=""   # too few cores to pin: timings are then shared
  $R sim world --out "$D/world" --n-train 20000 --n-heldout 200 $3 2>>"$D/log"
  $TOOL render "$D/world/sft.jsonl" "$D/pre.txt" >>"$D/log"
  $R tokenizer train --input "$D/pre.txt" --vocab-size 260 --out "$D/tok.bin" --quiet 2>>"$D/log"
  start=""
  if [ "$4" -gt 0 ]; then
    $R data prepare --tokenizer "$D/tok.bin" --input "$D/pre.txt" --out "$D/data" --quiet 2>>"$D/log"
    timeout -s INT "$4" $T $R pretrain --data "$D/data" --out "$D/pre.ckpt" --layers 2 --heads 4 --channels 128 --context 128 \
      --seq 128 --batch 16 --steps 1000000 --warmup 50 --lr 3e-3 --threads 2 --quiet --log "$D/pre.jsonl" 2>>"$D/log"
    start="--model $D/pre.ckpt"
  else
    start="--layers 2 --heads 4 --channels 128 --context 128"
  fi
  t0=$(date +%s)
  $T $R sft $start --tokenizer "$D/tok.bin" --data "$D/world/sft.jsonl" --out "$D/sft.ckpt" --steps 1000000 --warmup 50 \
    --min-lr-frac 1 --seq 72 --ckpt-every 100 --threads 2 --quiet --log "$D/sft.jsonl" $5 2>>"$D/log" &
  pid=$!
  last=""
  while kill -0 $pid 2>/dev/null; do
    el=$(( $(date +%s) - t0 ))
    if [ "$el" -ge "$SFT" ]; then kill -INT $pid; wait $pid; break; fi
    if [ -f "$D/sft.ckpt" ]; then
      m=$(stat -c %Y.%s "$D/sft.ckpt")
      if [ "$m" != "$last" ]; then
        last=$m
        st=$(tail -n 1 "$D/sft.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
        cp "$D/sft.ckpt" "$D/ck_${el}_$st.ckpt"
      fi
    fi
    sleep 1
  done
  st=$(tail -n 1 "$D/sft.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
  cp "$D/sft.ckpt" "$D/ck_${SFT}_$st.ckpt" 2>/dev/null
  for ck in "$D"/ck_*.ckpt; do
    b=$(basename "$ck" .ckpt | sed 's/ck_//'); el=${b%_*}; step=${b#*_}
    $T $TOOL answer "$ck" "$D/tok.bin" "$D/world/heldout.jsonl" "$D/ans_$el.jsonl" >/dev/null 2>>"$D/log" || continue
    acc=$($R sim eval --world "$D/world" --responses "$D/ans_$el.jsonl" 2>/dev/null | sed 's/.*"heldout_accuracy":\([^,]*\),.*/\1/')
    printf '%s\t%s\t%s\t%s\n' "$n" "$((el + $4))" "$step" "$acc"
  done | sort -t"$(printf '\t')" -k2 -n > "$D/gate.tsv"
}

echo "$CONFIGS" | {
  while IFS='|' read -r n c w p s; do run_cfg "$n" "$c" "$w" "$p" "$s" & done
  wait
}
printf 'config\tseconds\tsft_step\theldout_accuracy\n' > "$OUT/gate.tsv"
cat "$OUT"/*/gate.tsv >> "$OUT/gate.tsv"
cat "$OUT/gate.tsv"
for n in A B C D E F; do tail -n 1 "$OUT/$n/sft.jsonl" 2>/dev/null | sed "s/^/$n last: /"; done
