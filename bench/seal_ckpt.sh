#!/bin/sh
# bench/seal_ckpt.sh [L C] — what signing, verification and encryption cost
# on a real checkpoint through the code paths every command uses
# (ckpt_secure_save / ckpt_secure_map), default GPT-2 124M (L 12, C 768,
# V 50257, maxT 1024: a 498 MB weights-only checkpoint).
#
# Writes: `rlhf checkpoint import` of an llm.c file of random weights, plain,
# then --sign-key, then --sign-key --encrypt (key file). Loads: `rlhf
# checkpoint inspect --no-hash` (map + decrypt + verify + parse, no model
# allocation), plain, --verify-key, encrypted + --verify-key. Each row is
# MB/s of checkpoint bytes; the overhead rows subtract the plain run
# measured in the same script. Peers in the same run: cat and sha512sum of
# the checkpoint (Ed25519ph hashes with SHA-512). Wall clock on a shared
# machine: rough, repeat. Needs ~4x the checkpoint size in ${BENCH_DIR:-/tmp}
# and /usr/bin/python3 with numpy (only to make the random weights).
set -eu
L=${1:-12}
C=${2:-768}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${RLHF_BUILD:-$ROOT/build}
RLHF=$B/rlhf
D=$(mktemp -d "${BENCH_DIR:-/tmp}/rlhf_bench_ckpt_XXXXXX")
trap 'rm -rf "$D"' EXIT
unset RLHF_VERIFY_KEY RLHF_KEY_FILE RLHF_PASSPHRASE RLHF_SIGN_KEY
now() { date +%s.%N; }
/usr/bin/python3 - "$D/w.bin" "$L" "$C" <<'EOF'
import sys, numpy as np
path, L, C = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
V, T, Vp = 50257, 1024, 50304
n = Vp * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
h = np.zeros(256, dtype="<i4"); h[:8] = [20240326, 3, T, V, L, C // 64, C, Vp]
with open(path, "wb") as f:
    f.write(h.tobytes())
    rng = np.random.default_rng(0)
    left = n
    while left:
        k = min(left, 1 << 24)
        f.write((rng.standard_normal(k, dtype=np.float32) * 0.02).tobytes())
        left -= k
EOF
"$RLHF" keys generate --out "$D/k" --encryption-key >/dev/null
t() { t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'; }
mb() { awk -v n="$(wc -c < "$1")" 'BEGIN { printf "%.1f", n / 1e6 }'; }
row() { awk -v l="$1" -v s="$2" -v m="$3" 'BEGIN { printf "%-44s %7.2f s  %7.1f MB/s\n", l, s, m / s }'; }
over() { awk -v l="$1" -v a="$2" -v b="$3" -v m="$4" 'BEGIN { d = b - a; printf "%-44s %7.2f s  %7.1f MB/s\n", l, d, (d > 0 ? m / d : 0) }'; }
IMP="$RLHF checkpoint import --format llmc --in $D/w.bin"
w0=$(t $IMP --out "$D/p.ckpt")
M=$(mb "$D/p.ckpt")
echo "rlhf.c checkpoint seal benchmark: L=$L C=$C, checkpoint $M MB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$D/p.ckpt" >/dev/null
row "peer: cat (page cache)" "$(t cat "$D/p.ckpt")" "$M"
row "peer: sha512sum" "$(t sha512sum "$D/p.ckpt")" "$M"
w1=$(t $IMP --out "$D/s.ckpt" --sign-key "$D/k/sign.key")
w2=$(t $IMP --out "$D/e.ckpt" --sign-key "$D/k/sign.key" --encrypt --key-file "$D/k/enc.key")
row "write: import, plain" "$w0" "$M"
row "write: import, signed" "$w1" "$M"
row "write: import, signed + encrypted" "$w2" "$M"
over "  overhead of signing" "$w0" "$w1" "$M"
over "  overhead of signing + encryption" "$w0" "$w2" "$M"
INS="$RLHF checkpoint inspect --no-hash"
r0=$(t $INS --model "$D/p.ckpt")
r1=$(t $INS --model "$D/s.ckpt" --verify-key "$D/k/sign.pub")
r2=$(t $INS --model "$D/e.ckpt" --verify-key "$D/k/sign.pub" --key-file "$D/k/enc.key")
$INS --model "$D/e.ckpt" --verify-key "$D/k/sign.pub" --key-file "$D/k/enc.key" 2>/dev/null | grep -q VALID || { echo "encrypted checkpoint did not verify"; exit 1; }
row "load: map + parse, plain" "$r0" "$M"
row "load: + verify signature" "$r1" "$M"
row "load: + decrypt + verify" "$r2" "$M"
over "  overhead of verification" "$r0" "$r1" "$M"
over "  overhead of decryption + verification" "$r0" "$r2" "$M"
