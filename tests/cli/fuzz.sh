#!/bin/sh
# Bounded libFuzzer runs (ASan + UBSan) of the safetensors parser, of the
# binfile + seal loaders and of the checkpoint loader + GPT-2 importers, RLHF_FUZZ_SECONDS each (default 20), from a seed
# corpus made here. Skips cleanly (0 failed) when clang with libFuzzer is
# missing, and in the asan tier (these builds are sanitized already).
. "$(dirname "$0")/lib.sh"
SECS=${RLHF_FUZZ_SECONDS:-20}
CC_FUZZ=${RLHF_FUZZ_CC:-clang}
ROOT=${RLHF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${RLHF_BUILD:-$ROOT/build}
if [ "${RLHF_TIER_TAG:-}" = asan ]; then echo "skip: fuzzing runs in the plain cli tier"; finish; exit $?; fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$TMP/probe.c"
if ! command -v "$CC_FUZZ" >/dev/null 2>&1 || ! "$CC_FUZZ" -fsanitize=fuzzer "$TMP/probe.c" -o "$TMP/probe" >/dev/null 2>&1; then
  echo "skip: clang with libFuzzer not available (apt-get install clang)"; finish; exit $?
fi
CF="-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
F="$TMP/fz"; mkdir -p "$F"
expect_true "build fuzz_safetensors" "$CC_FUZZ" $CF -o "$F/fuzz_safetensors" "$ROOT/tests/fuzz/fuzz_safetensors.c" \
  "$ROOT/src/model/safetensors.c" "$ROOT/src/base/binfile.c" "$ROOT/src/base/check.c" -ljansson -lz
expect_true "build fuzz_seal" "$CC_FUZZ" $CF -o "$F/fuzz_seal" "$ROOT/tests/fuzz/fuzz_seal.c" \
  "$ROOT/src/base/seal.c" "$ROOT/src/base/binfile.c" "$ROOT/src/base/check.c" -lsodium -lz -lpthread
FB="-fopenmp"; [ -n "$(printf '#include <cblas.h>\n' | "$CC_FUZZ" -E - 2>/dev/null)" ] && FB="-DRL_HAVE_OPENBLAS -fopenmp"
expect_true "build fuzz_checkpoint" "$CC_FUZZ" $CF $FB -w -o "$F/fuzz_checkpoint" "$ROOT/tests/fuzz/fuzz_checkpoint.c" \
  "$ROOT/src/model/checkpoint.c" "$ROOT/src/model/ckpt_secure.c" "$ROOT/src/model/interop.c" "$ROOT/src/model/safetensors.c" \
  "$ROOT/src/model/gpt.c" "$ROOT/src/model/gpt_decode.c" "$ROOT/src/kernels/cpu_ref.c" "$ROOT/src/kernels/cpu_fast.c" "$ROOT/src/optim/adamw.c" \
  "$ROOT/src/base/rng.c" "$ROOT/src/base/log.c" "$ROOT/src/base/seal.c" "$ROOT/src/base/binfile.c" "$ROOT/src/base/check.c" \
  -ljansson -lsodium -lz -lpthread -lm $( [ "$FB" != -fopenmp ] && echo -lopenblas)

# seed corpora
mkdir -p "$F/st" "$F/seal" "$F/st_run" "$F/seal_run" "$F/ck" "$F/ck_run"
${PY:-/usr/bin/python3} "$ROOT/tests/fuzz/seed_checkpoint.py" "$F/ck"
"$B/tools/st_tool" write "$F/st/written.st"
printf '\002\000\000\000\000\000\000\000{}' > "$F/st/empty.st"
printf '\107\000\000\000\000\000\000\000{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"__metadata__":{}}\000\074\000\300' > "$F/st/f16.st"
export RLHF_FUZZ_KEYS="$F/keys"
"$RLHF" keys generate --out "$RLHF_FUZZ_KEYS" --encryption-key >/dev/null
"$B/tools/mkbinfile" "$F/seal/plain" 200 1
"$RLHF" file sign --in "$F/seal/plain" --key "$RLHF_FUZZ_KEYS/sign.key" --out "$F/seal/signed" >/dev/null
"$RLHF" file encrypt --in "$F/seal/signed" --out "$F/seal/signed.enc" --key-file "$RLHF_FUZZ_KEYS/enc.key" 2>/dev/null
"$RLHF" file encrypt --in "$F/seal/plain" --out "$F/seal/plain.enc" --key-file "$RLHF_FUZZ_KEYS/enc.key" 2>/dev/null
RLHF_FZ_PW=x "$RLHF" file encrypt --in "$F/seal/signed" --out "$F/seal/pw.enc" --passphrase-env RLHF_FZ_PW --kdf-ops 1 --kdf-mem-mib 1 2>/dev/null

run() { # target corpus seeds
  "$F/$1" -artifact_prefix="$B/fuzz-$1-" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=${MAXLEN:-4096} -print_final_stats=1 "$F/$2" "$F/$3" >"$F/$1.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$F/$1.log")
  echo "$1: ${SECS}s, ${execs:-?} inputs, corpus $(ls "$F/$2" | wc -l) files, exit $rc"
  if [ $rc -eq 0 ]; then ok; else bad "$1 found a crash (input saved as $B/fuzz-$1-*)"; tail -n 40 "$F/$1.log"; fi
}
[ -x "$F/fuzz_safetensors" ] && run fuzz_safetensors st_run st
[ -x "$F/fuzz_seal" ] && run fuzz_seal seal_run seal
[ -x "$F/fuzz_checkpoint" ] && MAXLEN=8192 run fuzz_checkpoint ck_run ck
finish
