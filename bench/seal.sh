#!/bin/sh
# bench/seal.sh [MB] — throughput (MB/s) of signing, verification, encryption
# and decryption of an rlhf.c file of MB (default 500, about a gpt2-124M
# checkpoint with AdamW state) random bytes, with the rlhf CLI; and, measured
# in the same run on the same file as peers: cat (read from page cache),
# sha512sum (Ed25519ph hashes with SHA-512) and openssl chacha20 (the stream
# cipher under XChaCha20-Poly1305). Timings are wall clock on whatever else
# the machine is doing: on a shared machine, repeat and read them as rough.
# Needs about 5x MB of free space in ${BENCH_DIR:-/tmp}.
set -eu
MB=${1:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${RLHF_BUILD:-$ROOT/build}
RLHF=$B/rlhf
D=$(mktemp -d "${BENCH_DIR:-/tmp}/rlhf_bench_seal_XXXXXX")
trap 'rm -rf "$D"' EXIT
now() { date +%s.%N; }
rate() { awk -v t0="$1" -v t1="$2" -v mb="$MB" 'BEGIN { t = t1 - t0; printf "%8.2f s  %8.1f MB/s", t, mb / t }'; }
row() { # label, command...
  label=$1; shift
  t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
  printf '%-34s %s\n' "$label" "$(rate "$t0" "$t1")"
}
echo "rlhf.c seal benchmark: $MB MB payload, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$B/tools/mkbinfile" "$D/f.bin" $((MB * 1000000)) 1
"$RLHF" keys generate --out "$D/k" --encryption-key >/dev/null
cat "$D/f.bin" >/dev/null   # warm the page cache
row "peer: cat (page cache read)"       cat "$D/f.bin"
row "peer: sha512sum"                   sha512sum "$D/f.bin"
row "peer: openssl chacha20 encrypt"    openssl enc -chacha20 -K "$(printf '%064d' 0)" -iv "$(printf '%032d' 0)" -in "$D/f.bin" -out "$D/ossl.enc"
rm -f "$D/ossl.enc"
row "rlhf file sign (stream+rename)"    "$RLHF" file sign --in "$D/f.bin" --key "$D/k/sign.key" --out "$D/s.bin"
row "rlhf file verify"                  "$RLHF" file verify --in "$D/s.bin" --pub "$D/k/sign.pub"
row "rlhf file encrypt (key file)"      "$RLHF" file encrypt --in "$D/s.bin" --out "$D/s.enc" --key-file "$D/k/enc.key"
row "rlhf file decrypt (to file)"       "$RLHF" file decrypt --in "$D/s.enc" --out "$D/s.dec" --key-file "$D/k/enc.key"
cmp "$D/s.bin" "$D/s.dec"
printf 'bench-passphrase' > "$D/pw"; chmod 600 "$D/pw"
t0=$(now); "$RLHF" file encrypt --in "$D/k/sign.pub" --out "$D/pw.enc" --passphrase-file "$D/pw" 2>/dev/null; t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%-34s %8.2f s  (fixed cost per file, not per MB)\n", "Argon2id ops=3 mem=256MiB (KDF)", b - a }'
