#!/bin/sh
# bench/train.sh — training tokens/s of `rlhf pretrain` vs an equivalent PyTorch
# script (bench/train_torch.py: same config, batch, T=256, 2 threads, fp32) in
# the same run, plus sampling tokens/s at batch 1 and 16. Not a test: numbers
# depend on the machine and on whatever else runs on it (report them as such).
#
#   sh bench/train.sh                      # tiny small gpt2
#   CONFIGS="tiny" STEPS=6 sh bench/train.sh
#
# Columns: median tokens/s over the steps after the first two (both sides),
# ratio rlhf/torch, achieved GFLOP/s = 6 * params * tokens/s, peak RSS (MiB).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RLHF=${RLHF:-$ROOT/build/rlhf}
PY=${PY:-/usr/bin/python3}
SHARED=${RLHF_SHARED:-$ROOT/../shared}
CONFIGS=${CONFIGS:-"tiny small gpt2"}
STEPS=${STEPS:-6}
THREADS=${THREADS:-2}
VOCAB=${VOCAB:-4096}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$RLHF" tokenizer train --input "$SHARED/data/tinyshakespeare.txt" --vocab-size "$VOCAB" --out "$TMP/tok.bin" --quiet
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$SHARED/data/tinyshakespeare.txt" --out "$TMP/data" --quiet
V=$("$RLHF" data info --dir "$TMP/data" | sed -n 's/^vocab_size: //p')

# PyTorch's OpenBLAS needs the same help as ours on Intel CPUs that Debian's
# OpenBLAS 0.3.21 does not recognise (rlhf re-execs itself; see cpu_fast.c).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q GenuineIntel /proc/cpuinfo; then
  if grep -qw avx512f /proc/cpuinfo; then TORCH_CORE=SkylakeX; else TORCH_CORE=Haswell; fi
else
  TORCH_CORE=${OPENBLAS_CORETYPE:-}
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rlhf: $("$RLHF" version | head -1); rlhf BLAS core $(OPENBLAS_VERBOSE=2 "$RLHF" version 2>&1 | sed -n 's/^Core: //p' | tail -1), torch OPENBLAS_CORETYPE=${TORCH_CORE:-auto}; torch $("$PY" -c 'import torch; print(torch.__version__)')"
printf "%-6s %3s %10s %12s %12s %7s %9s %9s %9s\n" config B params rlhf_tok/s torch_tok/s ratio GFLOP/s rlhf_MiB torch_MiB
for cfg in $CONFIGS; do
  B=8; [ "$cfg" = gpt2 ] && B=4
  /usr/bin/time -f "%M" -o "$TMP/rss_c" "$RLHF" pretrain --data "$TMP/data" --config "$cfg" --steps "$STEPS" --batch $B --seq 256 \
      --threads "$THREADS" --out "$TMP/$cfg.ckpt" --log "$TMP/$cfg.jsonl" --eval-batches 1 --quiet
  c_tps=$(grep '"tokens_per_s"' "$TMP/$cfg.jsonl" | tail -n +3 | sed 's/.*"tokens_per_s":\([0-9.e+]*\).*/\1/' | median)
  OPENBLAS_CORETYPE=$TORCH_CORE /usr/bin/time -f "%M" -o "$TMP/rss_t" "$PY" "$ROOT/bench/train_torch.py" --config "$cfg" --batch $B --seq 256 --vocab "$V" \
      --steps "$STEPS" --threads "$THREADS" > "$TMP/torch.out"
  t_tps=$(sed 's/.*tokens_per_s \([0-9.]*\).*/\1/' "$TMP/torch.out")
  params=$(sed 's/params \([0-9]*\).*/\1/' "$TMP/torch.out")
  awk -v cfg="$cfg" -v b=$B -v n="$params" -v c="$c_tps" -v t="$t_tps" -v rc="$(cat "$TMP/rss_c")" -v rt="$(cat "$TMP/rss_t")" \
      'BEGIN { printf "%-6s %3d %9.2fM %12.0f %12.0f %6.2fx %9.1f %9.0f %9.0f\n", cfg, b, n/1e6, c, t, c/t, 6*n*c/1e9, rc/1024, rt/1024 }'
done

# sampling from the last trained checkpoint of `small` (or whichever ran last)
ck=""
for cfg in $CONFIGS; do [ "$cfg" = small ] && ck="$TMP/small.ckpt"; done
[ -z "$ck" ] && for cfg in $CONFIGS; do ck="$TMP/$cfg.ckpt"; done
# --precision: fp32 (the exact path PPO uses), half (the default of rlhf sample
# and serve), int8 (blocks of 32). rlhf times the decoding only (not the loading).
for n in 1 16; do
  for prec in fp32 half int8; do
    "$RLHF" sample --model "$ck" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 200 --no-stop --n $n --precision $prec \
        --threads "$THREADS" --temperature 1 > /dev/null 2> "$TMP/sample.err"
    echo "sampling ($(basename "$ck" .ckpt), $prec weights), batch $n: $(grep -o '[0-9]* tokens/s' "$TMP/sample.err")"
  done
done
for cfg in $CONFIGS; do
  [ "$cfg" = gpt2 ] || continue
  for prec in fp32 half int8; do
    "$RLHF" sample --model "$TMP/gpt2.ckpt" --tokenizer "$TMP/tok.bin" --prompt "ROMEO:" --max-tokens 100 --no-stop --precision $prec \
        --threads "$THREADS" --temperature 1 > /dev/null 2> "$TMP/sample.err"
    echo "sampling (gpt2, $prec weights), batch 1: $(grep -o '[0-9]* tokens/s' "$TMP/sample.err")"
  done
done
