#!/bin/sh
# bench/run.sh — `make bench`: every benchmark, each against its peer in the same
# run (PyTorch, js-tiktoken, sha512sum/openssl, 1 vs 2 MPI ranks). Not a test:
# numbers depend on the machine and on what else runs on it; run on a quiet one.
#   sh bench/run.sh [name...]     names: train tokenizer seal ppo mpi_scaling serve_load
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
names=${*:-"tokenizer train seal ppo mpi_scaling"}
for n in $names; do
  echo "=== bench/$n.sh ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
  sh "$ROOT/bench/$n.sh" || echo "bench/$n.sh failed (exit $?)"
done
