#!/bin/sh
# rlhf keys generate / file sign|verify|encrypt|decrypt|inspect: exit codes,
# messages, permissions, and that secrets never show in output.
. "$(dirname "$0")/lib.sh"
MK="${RLHF_BUILD:-build}/tools/mkbinfile"
K="$TMP/keys"; K2="$TMP/keys2"
unset RLHF_VERIFY_KEY RLHF_KEY_FILE RLHF_PASSPHRASE

expect_exit 0 "$RLHF" keys generate --out "$K" --encryption-key
expect_out "fingerprint [0-9a-f]{16}"
expect_true "sign.key is 0600" [ "$(stat -c %a "$K/sign.key")" = 600 ]
expect_true "enc.key is 0600" [ "$(stat -c %a "$K/enc.key")" = 600 ]
expect_exit 1 "$RLHF" keys generate --out "$K"
expect_out "already exists.*--force"
expect_exit 0 "$RLHF" keys generate --out "$K2"
expect_exit 0 "$RLHF" keys generate --out "$K2" --force

"$MK" "$TMP/f.bin" 5000 1
cp "$TMP/f.bin" "$TMP/plain.bin"
expect_exit 0 "$RLHF" file inspect --in "$TMP/f.bin"
expect_out "kind: +RLHFTEST"
expect_out "signed: +no"
expect_exit 0 "$RLHF" file sign --in "$TMP/f.bin" --key "$K/sign.key"
expect_exit 0 "$RLHF" file verify --in "$TMP/f.bin" --pub "$K/sign.pub"
expect_out "signature valid"
expect_exit 0 env RLHF_VERIFY_KEY="$K/sign.pub" "$RLHF" file verify --in "$TMP/f.bin"
expect_exit 2 "$RLHF" file verify --in "$TMP/f.bin"
expect_out "no public key"
expect_exit 0 "$RLHF" file inspect --in "$TMP/f.bin" --pub "$K/sign.pub"
expect_out "trailer_bytes: +128"
expect_out "signature: +valid"
# wrong key, unsigned, tampered, truncated
expect_exit 1 "$RLHF" file verify --in "$TMP/f.bin" --pub "$K2/sign.pub"
expect_out "signed by key .* not by the trusted key"
expect_exit 1 "$RLHF" file verify --in "$TMP/plain.bin" --pub "$K/sign.pub"
expect_out "not signed"
cp "$TMP/f.bin" "$TMP/t.bin"
printf 'X' | dd of="$TMP/t.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null
expect_exit 1 "$RLHF" file verify --in "$TMP/t.bin" --pub "$K/sign.pub"
expect_out "t.bin: signature does not match"
expect_exit 1 "$RLHF" file inspect --in "$TMP/t.bin" --pub "$K/sign.pub"
expect_out "INVALID"
head -c 3000 "$TMP/f.bin" > "$TMP/t.bin"
expect_exit 1 "$RLHF" file verify --in "$TMP/t.bin" --pub "$K/sign.pub"
expect_out "truncated"
# signing to another file leaves the input alone
before=$(cksum < "$TMP/plain.bin")
expect_exit 0 "$RLHF" file sign --in "$TMP/plain.bin" --key "$K2/sign.key" --out "$TMP/s2.bin"
expect_true "input unchanged" [ "$(cksum < "$TMP/plain.bin")" = "$before" ]
expect_exit 0 "$RLHF" file verify --in "$TMP/s2.bin" --pub "$K2/sign.pub"
# a secret key others can read is refused
chmod 644 "$K/sign.key"
expect_exit 1 "$RLHF" file sign --in "$TMP/plain.bin" --key "$K/sign.key" --out "$TMP/s3.bin"
expect_out "chmod 600"
chmod 600 "$K/sign.key"
expect_exit 1 "$RLHF" file verify --in "$TMP/f.bin" --pub "$K/sign.key"
expect_out "SECRET key"

# encryption with a key file: round trip, decrypted file 0600
expect_exit 0 "$RLHF" file encrypt --in "$TMP/f.bin" --out "$TMP/f.enc" --key-file "$K/enc.key"
expect_exit 0 "$RLHF" file inspect --in "$TMP/f.enc"
expect_out "encrypted: +yes.*key file"
expect_out "signed: +unknown"
expect_exit 0 "$RLHF" file inspect --in "$TMP/f.enc" --key-file "$K/enc.key" --pub "$K/sign.pub"
expect_out "kind: +RLHFTEST"
expect_out "signature: +valid"
expect_exit 1 "$RLHF" file inspect --in "$TMP/f.enc" --key-file "$K/enc.key" --pub "$K2/sign.pub"
expect_out "signature: +INVALID.*signed by key"
expect_exit 0 "$RLHF" file decrypt --in "$TMP/f.enc" --out "$TMP/f.dec" --key-file "$K/enc.key"
expect_true "round trip identical" cmp -s "$TMP/f.bin" "$TMP/f.dec"
expect_true "decrypted file is 0600" [ "$(stat -c %a "$TMP/f.dec")" = 600 ]
expect_exit 0 "$RLHF" file verify --in "$TMP/f.dec" --pub "$K/sign.pub"
expect_exit 0 env RLHF_KEY_FILE="$K/enc.key" "$RLHF" file decrypt --in "$TMP/f.enc" --out "$TMP/f.dec2"
cp "$TMP/f.enc" "$TMP/t.enc"
printf 'X' | dd of="$TMP/t.enc" bs=1 seek=2000 conv=notrunc 2>/dev/null
expect_exit 1 "$RLHF" file decrypt --in "$TMP/t.enc" --out "$TMP/t.dec" --key-file "$K/enc.key"
expect_true "nothing written on failure" [ ! -e "$TMP/t.dec" ]
head -c 4000 "$TMP/f.enc" > "$TMP/t.enc"
expect_exit 1 "$RLHF" file decrypt --in "$TMP/t.enc" --out "$TMP/t.dec" --key-file "$K/enc.key"
expect_out "truncated"

# passphrases: from an environment variable or a 0600 file, never printed
PW='tr0ub4dor&3-secret-words'
export RLHF_TEST_PW="$PW"
expect_exit 0 "$RLHF" file encrypt --in "$TMP/f.bin" --out "$TMP/p.enc" --passphrase-env RLHF_TEST_PW --kdf-ops 1 --kdf-mem-mib 8
expect_true "passphrase not printed" sh -c "! grep -q -- '$PW' '$TMP/out'"
expect_exit 0 "$RLHF" file inspect --in "$TMP/p.enc"
expect_out "Argon2id ops=1 mem=8 MiB"
expect_exit 0 "$RLHF" file decrypt --in "$TMP/p.enc" --out "$TMP/p.dec" --passphrase-env RLHF_TEST_PW
expect_true "passphrase round trip" cmp -s "$TMP/f.bin" "$TMP/p.dec"
export RLHF_TEST_PW="not-$PW"
expect_exit 1 "$RLHF" file decrypt --in "$TMP/p.enc" --out "$TMP/w.dec" --passphrase-env RLHF_TEST_PW
expect_out "wrong passphrase"
expect_true "passphrase not printed on failure" sh -c "! grep -q -- '$PW' '$TMP/out'"
expect_true "nothing written on wrong passphrase" [ ! -e "$TMP/w.dec" ]
printf '%s\n' "$PW" > "$TMP/pw.txt"
chmod 644 "$TMP/pw.txt"
expect_exit 1 "$RLHF" file decrypt --in "$TMP/p.enc" --out "$TMP/w.dec" --passphrase-file "$TMP/pw.txt"
expect_out "chmod 600"
chmod 600 "$TMP/pw.txt"
expect_exit 0 "$RLHF" file decrypt --in "$TMP/p.enc" --out "$TMP/w.dec" --passphrase-file "$TMP/pw.txt"
expect_exit 1 "$RLHF" file decrypt --in "$TMP/p.enc" --out "$TMP/w2.dec" --key-file "$K/enc.key"
expect_out "encrypted with a passphrase"
unset RLHF_TEST_PW
expect_exit 1 "$RLHF" file decrypt --in "$TMP/p.enc" --out "$TMP/w2.dec" --passphrase-env RLHF_TEST_PW
expect_out "not set"

# usage errors: no key, two keys, a secret on the command line is not a flag
expect_exit 2 "$RLHF" file encrypt --in "$TMP/f.bin" --out "$TMP/x.enc"
expect_out "no key"
expect_exit 2 "$RLHF" file encrypt --in "$TMP/f.bin" --out "$TMP/x.enc" --key-file "$K/enc.key" --passphrase-env X
expect_exit 2 "$RLHF" file encrypt --in "$TMP/f.bin" --out "$TMP/x.enc" --passphrase hunter2
expect_exit 2 "$RLHF" file encrypt --in "$TMP/f.bin" --out "$TMP/x.enc" --passphrase-env X --kdf-ops 0
expect_exit 1 "$RLHF" file sign --in "$TMP/f.enc" --key "$K/sign.key" --out "$TMP/x"
expect_out "encrypted; sign the plaintext file first"
expect_exit 1 "$RLHF" file inspect --in "$TMP/nope"
finish
