#!/bin/sh
# tests/cli/ckpt_secure.sh — signed, verified and encrypted checkpoints through
# the commands that write and load them (pretrain, sample, checkpoint
# inspect/export), and the provenance every checkpoint carries.
. "$(dirname "$0")/lib.sh"
SH=${RLHF_SHARED:-../shared}
head -c 60000 "$SH/data/tinyshakespeare.txt" > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 280 --out "$TMP/tok.bin" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" data prepare --tokenizer "$TMP/tok.bin" --input "$TMP/text.txt" --out "$TMP/data" --quiet || { echo "setup failed"; exit 1; }
"$RLHF" keys generate --out "$TMP/k" --encryption-key >/dev/null 2>&1 || { echo "setup failed"; exit 1; }
"$RLHF" keys generate --out "$TMP/other" >/dev/null 2>&1 || { echo "setup failed"; exit 1; }
unset RLHF_VERIFY_KEY RLHF_KEY_FILE RLHF_PASSPHRASE RLHF_SIGN_KEY
SMALL="--layers 1 --heads 2 --channels 32 --seq 16 --batch 2 --steps 2 --threads 1 --quiet"
SAMPLE="--tokenizer $TMP/tok.bin --prompt ROMEO --max-tokens 4 --temperature 0 --quiet"

# sign -> verify OK through pretrain / sample
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/s.ckpt" --sign-key "$TMP/k/sign.key" $SMALL
expect_exit 0 "$RLHF" sample --model "$TMP/s.ckpt" --verify-key "$TMP/k/sign.pub" $SAMPLE
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/s.ckpt" --verify-key "$TMP/k/sign.pub"
expect_out "signature: +VALID, by trusted key"
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/s.ckpt"
expect_out "NOT verified"
# the environment variable works like the flag
RLHF_VERIFY_KEY="$TMP/k/sign.pub" expect_exit 0 "$RLHF" sample --model "$TMP/s.ckpt" $SAMPLE
# resuming from a signed checkpoint under verification, writing a signed one
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/s2.ckpt" --resume "$TMP/s.ckpt" --verify-key "$TMP/k/sign.pub" \
  --sign-key "$TMP/k/sign.key" --layers 1 --heads 2 --channels 32 --seq 16 --batch 2 --steps 3 --threads 1 --quiet
expect_exit 0 "$RLHF" sample --model "$TMP/s2.ckpt" --verify-key "$TMP/k/sign.pub" $SAMPLE

# unsigned -> refused under a verify key (and fine without one)
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/u.ckpt" $SMALL
expect_exit 0 "$RLHF" sample --model "$TMP/u.ckpt" $SAMPLE
expect_exit 1 "$RLHF" sample --model "$TMP/u.ckpt" --verify-key "$TMP/k/sign.pub" $SAMPLE
expect_out "u.ckpt: file is not signed"
RLHF_VERIFY_KEY="$TMP/k/sign.pub" expect_exit 1 "$RLHF" sample --model "$TMP/u.ckpt" $SAMPLE
expect_out "not signed"
# a verify key also guards --resume
expect_exit 1 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/r.ckpt" --resume "$TMP/u.ckpt" --verify-key "$TMP/k/sign.pub" \
  --layers 1 --heads 2 --channels 32 --seq 16 --batch 2 --steps 3 --threads 1 --quiet
expect_out "not signed"

# wrong key -> refused
expect_exit 1 "$RLHF" sample --model "$TMP/s.ckpt" --verify-key "$TMP/other/sign.pub" $SAMPLE
expect_out "signed by key .*not by the trusted key"

# a flipped byte anywhere (header, a tensor, the metadata, the signature) -> refused, file named
size=$(wc -c < "$TMP/s.ckpt")
for off in 20 100 2000 $((size - 300)) $((size - 100)) $((size - 10)); do
  cp "$TMP/s.ckpt" "$TMP/f.ckpt"
  printf '\001' | dd of="$TMP/f.ckpt" bs=1 seek=$off conv=notrunc 2>/dev/null
  b=$(od -An -tu1 -j $off -N1 "$TMP/s.ckpt" | tr -d ' ')
  # xor the byte with 0x01 so it always changes
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$TMP/f.ckpt" bs=1 seek=$off conv=notrunc 2>/dev/null
  expect_true "byte $off changed" sh -c "! cmp -s '$TMP/s.ckpt' '$TMP/f.ckpt'"
  expect_exit 1 "$RLHF" sample --model "$TMP/f.ckpt" --verify-key "$TMP/k/sign.pub" $SAMPLE
  expect_out "f.ckpt"
done
# a flipped payload byte is refused even without a verify key (CRC), with the file named
cp "$TMP/s.ckpt" "$TMP/g.ckpt"
printf 'X' | dd of="$TMP/g.ckpt" bs=1 seek=2000 conv=notrunc 2>/dev/null
expect_exit 1 "$RLHF" sample --model "$TMP/g.ckpt" $SAMPLE
expect_out "g.ckpt"

# truncated -> refused
head -c $((size - 64)) "$TMP/s.ckpt" > "$TMP/t.ckpt"
expect_exit 1 "$RLHF" sample --model "$TMP/t.ckpt" --verify-key "$TMP/k/sign.pub" $SAMPLE
expect_out "t.ckpt"
head -c 100 "$TMP/s.ckpt" > "$TMP/t2.ckpt"
expect_exit 1 "$RLHF" sample --model "$TMP/t2.ckpt" --verify-key "$TMP/k/sign.pub" $SAMPLE
expect_out "t2.ckpt"

# a bad key configuration is an error, never a silent downgrade
expect_exit 1 "$RLHF" sample --model "$TMP/s.ckpt" --verify-key "$TMP/nope.pub" $SAMPLE
expect_out "nope.pub"
expect_exit 1 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/x.ckpt" --sign-key "$TMP/k/sign.pub" $SMALL
expect_out "sign.pub"
chmod 644 "$TMP/k/sign.key"
expect_exit 1 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/x.ckpt" --sign-key "$TMP/k/sign.key" $SMALL
expect_out "chmod 600"
chmod 600 "$TMP/k/sign.key"
expect_true "nothing written after a refused key" test ! -e "$TMP/x.ckpt"

# encryption: round trip, wrong key / passphrase refused, encrypted + signed
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/e.ckpt" --encrypt --key-file "$TMP/k/enc.key" --sign-key "$TMP/k/sign.key" $SMALL
expect_true "encrypted on disk" sh -c "! grep -q RLHFGPT '$TMP/e.ckpt' && head -c 8 '$TMP/e.ckpt' | grep -q RLHFENC1"
expect_true "no plaintext left behind" sh -c "! ls '$TMP' | grep -q plain"
expect_exit 1 "$RLHF" sample --model "$TMP/e.ckpt" $SAMPLE
expect_out "encrypted; give its key"
expect_exit 0 "$RLHF" sample --model "$TMP/e.ckpt" --key-file "$TMP/k/enc.key" --verify-key "$TMP/k/sign.pub" $SAMPLE
cp "$TMP/out" "$TMP/e.out"
RLHF_KEY_FILE="$TMP/k/enc.key" expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/e.ckpt" --verify-key "$TMP/k/sign.pub"
expect_out "encrypted: +yes"
expect_out "signature: +VALID"
# the same weights decrypted by hand (file decrypt) sample the same text
expect_exit 0 "$RLHF" file decrypt --in "$TMP/e.ckpt" --out "$TMP/e.plain" --key-file "$TMP/k/enc.key"
expect_exit 0 "$RLHF" sample --model "$TMP/e.plain" --verify-key "$TMP/k/sign.pub" $SAMPLE
expect_true "decrypted file samples the same" cmp -s "$TMP/out" "$TMP/e.out"
printf 'rlhf-secretstream-key v1\n%064d\n' 7 > "$TMP/bad.key"; chmod 600 "$TMP/bad.key"
expect_exit 1 "$RLHF" sample --model "$TMP/e.ckpt" --key-file "$TMP/bad.key" $SAMPLE
expect_out "wrong key"
# encrypted with a signature by another key: decrypts, then refused
expect_exit 0 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/e2.ckpt" --encrypt --key-file "$TMP/k/enc.key" --sign-key "$TMP/other/sign.key" $SMALL
expect_exit 1 "$RLHF" sample --model "$TMP/e2.ckpt" --key-file "$TMP/k/enc.key" --verify-key "$TMP/k/sign.pub" $SAMPLE
expect_out "not by the trusted key"
# passphrase (cheap Argon2id is not configurable from pretrain: use file encrypt for the passphrase case)
RLHF_T_PW="correct horse" expect_exit 0 "$RLHF" file encrypt --in "$TMP/s.ckpt" --out "$TMP/p.ckpt" --passphrase-env RLHF_T_PW --kdf-ops 1 --kdf-mem-mib 8
RLHF_T_PW="correct horse" expect_exit 0 "$RLHF" sample --model "$TMP/p.ckpt" --passphrase-env RLHF_T_PW --verify-key "$TMP/k/sign.pub" $SAMPLE
RLHF_T_PW="wrong horse" expect_exit 1 "$RLHF" sample --model "$TMP/p.ckpt" --passphrase-env RLHF_T_PW $SAMPLE
expect_out "wrong passphrase"
# a flipped byte inside the ciphertext -> refused
size=$(wc -c < "$TMP/e.ckpt")
cp "$TMP/e.ckpt" "$TMP/ef.ckpt"
printf 'X' | dd of="$TMP/ef.ckpt" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_exit 1 "$RLHF" sample --model "$TMP/ef.ckpt" --key-file "$TMP/k/enc.key" $SAMPLE
expect_out "ef.ckpt"
expect_exit 1 "$RLHF" pretrain --data "$TMP/data" --out "$TMP/y.ckpt" --encrypt $SMALL
expect_out "--encrypt needs a key"

# provenance: command, git, data hash, parent hash
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/s2.ckpt" --verify-key "$TMP/k/sign.pub"
expect_out "command: +rlhf pretrain --data"
expect_out "code: +rlhf.c [0-9.]+, git ([0-9a-f]{40}|unknown)"
datahash=$(sed -n 's/^  input: *\([0-9a-f]\{64\}\) --data .*/\1/p' "$TMP/out")
expect_true "data directory hashed" test ${#datahash} -eq 64
parent=$(sed -n 's/^  parent: *\([0-9a-f]\{64\}\) .*/\1/p' "$TMP/out")
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/s.ckpt"
own=$(sed -n 's/^sha256: *//p' "$TMP/out")
expect_true "parent hash = SHA-256 of the resumed checkpoint ($parent)" test -n "$parent" -a "$parent" = "$own"
expect_true "parent hash = sha256sum" test "$(sha256sum "$TMP/s.ckpt" | cut -c1-64)" = "$own"
expect_out "parent: +\(none"
# key material never lands in a checkpoint (only key file paths are on the command line)
skhex=$(sed -n 3p "$TMP/k/sign.key"); enchex=$(sed -n 3p "$TMP/k/enc.key")
expect_true "key files have hex lines" test ${#skhex} -eq 64 -a ${#enchex} -eq 64
expect_true "no key material in checkpoints" sh -c "! grep -q -e '$skhex' -e '$enchex' '$TMP/s.ckpt' '$TMP/s2.ckpt' '$TMP/e.plain'"
# sample never writes, inspect prints the tokenizer identity it was trained with
tid=$("$RLHF" tokenizer info --tokenizer "$TMP/tok.bin" 2>/dev/null | sed -n 's/.*identity[^0-9a-f]*\([0-9a-f]\{64\}\).*/\1/p' | head -1)
expect_true "tokenizer identity recorded ($tid)" grep -q "tokenizer: *$tid" "$TMP/out"

# trainers that have no security flags of their own obey the environment (every ckpt_save/ckpt_load does)
printf '{"prompt": "say a word", "response": "ROMEO"}\n{"prompt": "say more", "response": "the king"}\n' > "$TMP/demo.jsonl"
TS="--tokenizer $TMP/tok.bin --data $TMP/demo.jsonl --steps 2 --batch 2 --seq 24 --threads 1 --quiet"
RLHF_SIGN_KEY="$TMP/k/sign.key" expect_exit 0 "$RLHF" sft $TS --layers 1 --heads 2 --channels 32 --out "$TMP/sft1.ckpt"
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/sft1.ckpt" --verify-key "$TMP/k/sign.pub"
expect_out "signature: +VALID"
expect_out "command: +rlhf sft"
RLHF_VERIFY_KEY="$TMP/k/sign.pub" expect_exit 0 "$RLHF" sft $TS --model "$TMP/sft1.ckpt" --out "$TMP/sft2.ckpt"
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/sft2.ckpt"
expect_out "signature: +none"
expect_out "parent: +[0-9a-f]{64} .*sft1.ckpt"
RLHF_VERIFY_KEY="$TMP/k/sign.pub" expect_exit 1 "$RLHF" sft $TS --model "$TMP/sft2.ckpt" --out "$TMP/sft3.ckpt"
expect_out "sft2.ckpt: file is not signed"
expect_true "refused run wrote nothing" test ! -e "$TMP/sft3.ckpt"
# The trainers take the same flags: sft/rm/dpo/kto/ppo sign what they write and
# verify what they read; score/bon verify.
printf '{"prompt":"ROMEO","response":"good night"}\n{"prompt":"JULIET","response":"a rose"}\n{"prompt":"ROMEO","response":"sweet sorrow"}\n' > "$TMP/demo.jsonl"
printf '{"prompt":"ROMEO","chosen":"good night","rejected":"xx"}\n{"prompt":"JULIET","chosen":"a rose","rejected":"yy"}\n{"prompt":"NURSE","chosen":"madam","rejected":"zz"}\n' > "$TMP/pairs.jsonl"
TR="--tokenizer $TMP/tok.bin --seq 16 --batch 2 --steps 1 --threads 1 --val-fraction 0 --quiet"
expect_exit 0 "$RLHF" sft --model "$TMP/s.ckpt" --data "$TMP/demo.jsonl" --out "$TMP/sft.ckpt" $TR --verify-key "$TMP/k/sign.pub" --sign-key "$TMP/k/sign.key"
expect_exit 0 "$RLHF" file verify --in "$TMP/sft.ckpt" --pub "$TMP/k/sign.pub"
expect_exit 1 "$RLHF" sft --model "$TMP/u.ckpt" --data "$TMP/demo.jsonl" --out "$TMP/x.ckpt" $TR --verify-key "$TMP/k/sign.pub"
expect_out "not signed"
expect_exit 0 "$RLHF" rm --model "$TMP/sft.ckpt" --records "$TMP/pairs.jsonl" --out "$TMP/rm.ckpt" $TR --verify-key "$TMP/k/sign.pub" --sign-key "$TMP/k/sign.key"
expect_exit 0 "$RLHF" file verify --in "$TMP/rm.ckpt" --pub "$TMP/k/sign.pub"
echo '{"prompt":"ROMEO","response":"good night"}' > "$TMP/score.jsonl"
expect_exit 0 "$RLHF" score --rm "$TMP/rm.ckpt" --tokenizer "$TMP/tok.bin" --input "$TMP/score.jsonl" --verify-key "$TMP/k/sign.pub"
expect_exit 1 "$RLHF" score --rm "$TMP/rm.ckpt" --tokenizer "$TMP/tok.bin" --input "$TMP/score.jsonl" --verify-key "$TMP/other/sign.pub"
expect_exit 0 "$RLHF" dpo --model "$TMP/sft.ckpt" --records "$TMP/pairs.jsonl" --out "$TMP/dpo.ckpt" $TR --kl-samples 0 --sign-key "$TMP/k/sign.key"
expect_exit 0 "$RLHF" file verify --in "$TMP/dpo.ckpt" --pub "$TMP/k/sign.pub"
printf 'ROMEO\nJULIET\n' > "$TMP/prompts.txt"
expect_exit 0 "$RLHF" ppo --policy "$TMP/sft.ckpt" --tokenizer "$TMP/tok.bin" --reward word:the --prompts "$TMP/prompts.txt" \
  --out "$TMP/ppo.ckpt" --steps 1 --max-new 4 --threads 1 --quiet --verify-key "$TMP/k/sign.pub" --sign-key "$TMP/k/sign.key"
expect_exit 0 "$RLHF" file verify --in "$TMP/ppo.ckpt" --pub "$TMP/k/sign.pub"
expect_exit 1 "$RLHF" bon --policy "$TMP/u.ckpt" --tokenizer "$TMP/tok.bin" --reward word:the --prompts "$TMP/prompts.txt" --n 2 \
  --max-new 4 --threads 1 --quiet --verify-key "$TMP/k/sign.pub"
expect_out "not signed"

finish
