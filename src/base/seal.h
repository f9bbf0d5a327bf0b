/* seal.h — keys, signatures and encryption at rest for any rlhf.c binary file.
 *
 * Signing (Ed25519ph, libsodium's multi-part crypto_sign_*): a signed file is
 * an ordinary rlhf.c file (binfile.h) whose header says trailer_bytes = 128
 * and whose payload is followed by a 128-byte signature trailer:
 *
 *   [64-byte header, trailer_bytes=128][payload][trailer]
 *   trailer: 0 "RLHFSIG1" | 8 u32 version=1 | 12 u32 trailer_bytes=128 |
 *            16 u32 alg=1 (Ed25519ph) | 20 u32 0 | 24 32 signer public key |
 *            56 64 signature | 120 "RLHFSEND"
 *   signed message = "rlhf.c signature v1\0" (20 bytes) || payload || header (64) || trailer[0..56)
 *
 * The payload comes first in the message so that a writer can sign while it
 * streams, before the header (payload size, CRC) is known. The header and the
 * trailer's first 56 bytes (which name the key) are covered, so no field of
 * the file can change without breaking the signature. rl_file_map accepts a
 * signed file as it is (it checks sizes and CRCs, not signatures), so signing
 * never breaks a loader; loaders that must trust a file call rl_seal_load.
 *
 * Encryption (XChaCha20-Poly1305 secretstream): an encrypted file is an
 * rlhf.c file of kind "RLHFENC1" whose payload is a 96-byte encryption header
 * (KDF, Argon2id parameters and salt, secretstream header, key check) and the
 * plaintext file in 1 MiB chunks, each 17 bytes longer, the last one tagged
 * FINAL. The encryption header is the additional data of the first chunk.
 * Sign first, then encrypt: the signature then covers the plaintext file,
 * which is what a loader ends up trusting (docs/formats-secure.md).
 *
 * Secrets (secret keys, symmetric keys, passphrases) come from files that only
 * their owner can read (0600; anything readable or writable by group/others is
 * refused) or from environment variables, never from the command line; they
 * are wiped after use and never printed.
 *
 * All functions return an rl_status and leave a message naming the file and
 * the reason in rl_error(); RL_EAUTH means a signature, key or passphrase was
 * rejected. Call nothing here before rl_seal_init() has returned RL_OK (every
 * function below calls it for you; it is idempotent and thread-safe).
 */
#ifndef RL_SEAL_H
#define RL_SEAL_H
#include <stddef.h>
#include <stdint.h>
#include "binfile.h"
#include "check.h"

#define RL_SEAL_TRAILER_BYTES 128
#define RL_SEAL_ENC_MAGIC "RLHFENC1"
#define RL_SEAL_ENC_VERSION 1
#define RL_SEAL_ENC_HEADER_BYTES 96
#define RL_SEAL_CHUNK_BYTES (1u << 20)

/* Environment variables read when no flag says otherwise (docs/security.md). */
#define RL_SEAL_ENV_VERIFY_KEY "RLHF_VERIFY_KEY"   /* path of a sign.pub: signatures required */
#define RL_SEAL_ENV_KEY_FILE   "RLHF_KEY_FILE"     /* path of a 0600 symmetric key file */
#define RL_SEAL_ENV_PASSPHRASE "RLHF_PASSPHRASE"   /* the passphrase itself */

/* sodium_init once; RL_EINTERNAL if libsodium cannot start. */
rl_status rl_seal_init(void);

/* ---- keys ----------------------------------------------------------------- */

typedef struct {
    uint8_t pk[32];
    char id[17];          /* hex of the first 8 bytes of BLAKE2b-256(pk): a short fingerprint */
} rl_keys_pub;

typedef struct {
    uint8_t sk[64];       /* libsodium Ed25519 secret key (seed || pk); wipe with rl_keys_wipe */
    rl_keys_pub pub;
} rl_keys_secret;

/* Writes DIR/sign.key (0600, secret), DIR/sign.pub and, if `with_enc_key`,
 * DIR/enc.key (0600, 32 random bytes as text). Creates DIR (0700) if missing.
 * Refuses (RL_EINVAL) to overwrite any existing key file unless `force`.
 * The new key's fingerprint is written to `id_out` (17 bytes) if not NULL. */
rl_status rl_keys_generate(const char *dir, int with_enc_key, int force, char id_out[17]);
/* Loads a secret signing key file; refuses (RL_EAUTH) a file that group or
 * others can read or write, and a file whose seed and public key disagree. */
rl_status rl_keys_load_secret(rl_keys_secret *key, const char *path);
/* Loads a public key file (any permissions). */
rl_status rl_keys_load_public(rl_keys_pub *pub, const char *path);
/* Loads a 32-byte symmetric key: the text format of enc.key, or exactly 32
 * raw bytes. Permissions checked as for secret keys. */
rl_status rl_keys_load_symmetric(uint8_t key[32], const char *path);
/* Reads a whole secret file (a passphrase file) into a sodium_malloc'd,
 * NUL-terminated buffer, permissions checked, one trailing newline dropped.
 * Free with rl_keys_free_secret_text. At most 4096 bytes. */
rl_status rl_keys_read_secret_text(char **text, size_t *n, const char *path);
void rl_keys_free_secret_text(char *text);
/* Fingerprint of a public key (hex of BLAKE2b-256(pk)[0..8)). */
void rl_keys_fingerprint(char id[17], const uint8_t pk[32]);
/* Zeroes memory the compiler may not optimise away. */
void rl_keys_wipe(void *p, size_t n);

/* ---- signing -------------------------------------------------------------- */

/* A binfile writer (same contract as rl_writer_*, binfile.h) that, given a
 * key, signs while it streams: the payload is hashed as it is written, and
 * commit writes the header and the signature trailer before the atomic
 * rename. With key == NULL it writes an unsigned file exactly like rl_writer.
 * The key is copied (and wiped on commit/abort). */
typedef struct rl_seal_writer rl_seal_writer;
rl_status rl_seal_writer_open(rl_seal_writer **w, const char *path, const char magic[8], uint32_t version,
                              uint32_t flags, const rl_keys_secret *key);
rl_status rl_seal_writer_write(rl_seal_writer *w, const void *data, size_t n);
uint64_t rl_seal_writer_tell(const rl_seal_writer *w);
/* Header, trailer, fsync, rename. Frees w, also on failure. */
rl_status rl_seal_writer_commit(rl_seal_writer *w);
void rl_seal_writer_abort(rl_seal_writer *w);

/* rl_seal_writer_write with a void* context, to plug a seal writer into a
 * callback sink such as ckpt_sink {write, ctx}. */
rl_status rl_seal_writer_sink(void *w, const void *data, size_t n);

/* Signs the rlhf.c file `in` into `out` (may be the same path; atomic). An
 * existing signature is replaced. The file's CRCs are checked first. */
rl_status rl_seal_sign_file(const char *in, const char *out, const rl_keys_secret *key);

/* What a file's signature trailer says (not yet verified). */
typedef struct {
    int is_signed;        /* header announces a signature trailer */
    rl_keys_pub signer;   /* the key the trailer names (valid if is_signed) */
} rl_seal_sig_info;

/* Verifies the signature of the file at `path` against `pub`, streaming it
 * (1 MiB buffer; the file is never held in memory). RL_EAUTH: unsigned,
 * signed by another key, or the signature does not match (tampered);
 * RL_EFORMAT: truncated, not an rlhf.c file, bad trailer. `info` (optional)
 * gets what the trailer says. */
rl_status rl_seal_verify_file(const char *path, const rl_keys_pub *pub, rl_seal_sig_info *info);
/* The same over a whole-file image already in memory (mapped or decrypted). */
rl_status rl_seal_verify_image(const void *img, size_t size, const char *path, const rl_keys_pub *pub,
                               rl_seal_sig_info *info);

/* ---- encryption ----------------------------------------------------------- */

enum { RL_SEAL_KDF_NONE = 0, RL_SEAL_KDF_ARGON2ID = 1 };

/* A decryption/encryption secret: a raw key or a passphrase. */
typedef struct {
    int kdf;                   /* RL_SEAL_KDF_NONE: key; RL_SEAL_KDF_ARGON2ID: passphrase */
    uint8_t key[32];
    char *passphrase;          /* sodium_malloc'd, owned */
    size_t passphrase_len;
    uint64_t opslimit;         /* Argon2id cost used when encrypting (decryption uses the file's) */
    uint64_t memlimit;         /* bytes */
} rl_seal_secret;

/* Default Argon2id cost: 3 passes over 256 MiB (libsodium's "moderate"). */
#define RL_SEAL_DEFAULT_OPSLIMIT 3ull
#define RL_SEAL_DEFAULT_MEMLIMIT (256ull << 20)

rl_status rl_seal_secret_from_key_file(rl_seal_secret *s, const char *path);
/* Passphrase from the environment variable `var` (its value is copied; the
 * variable is left alone). RL_ENOTFOUND if unset or empty. */
rl_status rl_seal_secret_from_env(rl_seal_secret *s, const char *var);
rl_status rl_seal_secret_from_passphrase_file(rl_seal_secret *s, const char *path);
/* Passphrase given directly (library callers and tests). */
rl_status rl_seal_secret_from_passphrase(rl_seal_secret *s, const char *pw, size_t n);
void rl_seal_secret_free(rl_seal_secret *s);

/* Encrypts any file `in` into an RLHFENC1 file `out` (atomic). */
rl_status rl_seal_encrypt_file(const char *in, const char *out, const rl_seal_secret *s);
/* Decrypts `in` into `out` (atomic, created 0600). RL_EAUTH: wrong key or
 * passphrase, or the file was modified; RL_EFORMAT: truncated, corrupt,
 * not an encrypted file. Nothing is left at `out` on failure. */
rl_status rl_seal_decrypt_file(const char *in, const char *out, const rl_seal_secret *s);
/* Decrypts `in` into fresh anonymous memory (munmap(*img, *size) or
 * rl_seal_free_image frees it; excluded from core dumps). *img is NULL when
 * the plaintext is empty. */
rl_status rl_seal_decrypt_to_memory(const char *in, const rl_seal_secret *s, uint8_t **img, size_t *size);
void rl_seal_free_image(uint8_t *img, size_t size);

/* What an encrypted file's header says (no key needed). */
typedef struct {
    int kdf;
    uint32_t chunk_bytes;
    uint64_t plaintext_bytes;
    uint64_t opslimit, memlimit;
} rl_seal_enc_info;
/* 1 if `path` is an rlhf.c encrypted file (fills `info` if not NULL), 0 if
 * not (or unreadable). */
int rl_seal_is_encrypted(const char *path, rl_seal_enc_info *info);

/* ---- loading policy ------------------------------------------------------- */

/* What a loader requires and holds: built once per command from its flags
 * (--verify-key, --key-file, --passphrase-env), falling back to the
 * environment (RLHF_VERIFY_KEY, RLHF_KEY_FILE, RLHF_PASSPHRASE). */
typedef struct {
    int verify;                /* 1: every file loaded must carry a valid signature by `pub` */
    rl_keys_pub pub;
    int can_decrypt;           /* 1: `secret` holds a key or passphrase */
    rl_seal_secret secret;
} rl_seal_policy;

/* Any argument may be NULL or "" (then the environment is consulted). A
 * configured key that cannot be loaded is an error, never a silent
 * downgrade to "no verification". */
rl_status rl_seal_policy_init(rl_seal_policy *p, const char *verify_key_path, const char *key_file,
                              const char *passphrase_env);
void rl_seal_policy_free(rl_seal_policy *p);

/* Loads `path` as rl_file_map does (magic, versions, sizes, CRCs; `what`
 * names the kind in messages), after decrypting it into memory if it is an
 * encrypted file (needs p->can_decrypt), and verifying its signature if
 * p->verify (an unsigned file is then refused). p may be NULL (= plain
 * rl_file_map). Free with rl_file_unmap (the image is mmap'd either way).
 * `sig` (optional) reports whether it was signed and by whom. */
/* Flag-table entries for commands that load protected files, so every
 * command spells them the same way (flags.h must be included):
 *   static const char *vk, *kf, *pe;
 *   rl_flag flags[] = { ..., RL_SEAL_LOAD_FLAGS(vk, kf, pe) };
 *   rl_seal_policy p; CHECK_OK(rl_seal_policy_init(&p, vk, kf, pe), "...");
 * and for commands that write files that may be signed:
 *   static const char *sk; rl_flag flags[] = { ..., RL_SEAL_SIGN_FLAG(sk) };
 *   rl_keys_secret key; if (*sk) CHECK_OK(rl_keys_load_secret(&key, sk), "..."); */
#define RL_SEAL_LOAD_FLAGS(verify_key, key_file, passphrase_env) \
    {"verify-key", RL_FLAG_STRING, &(verify_key), "", 0, 0, NULL, \
     "trusted public key (sign.pub): refuse files it did not sign; default $RLHF_VERIFY_KEY"}, \
    {"key-file", RL_FLAG_STRING, &(key_file), "", 0, 0, NULL, \
     "key file (0600) to decrypt encrypted files; default $RLHF_KEY_FILE"}, \
    {"passphrase-env", RL_FLAG_STRING, &(passphrase_env), "", 0, 0, NULL, \
     "NAME of an environment variable holding the passphrase of encrypted files; default $RLHF_PASSPHRASE"}
#define RL_SEAL_SIGN_FLAG(sign_key) \
    {"sign-key", RL_FLAG_STRING, &(sign_key), "", 0, 0, NULL, "secret key (sign.key, 0600) to sign the files written"}

rl_status rl_seal_load(rl_mapped_file *m, const char *path, const char magic[8], uint32_t min_version,
                       uint32_t max_version, const char *what, const rl_seal_policy *p, rl_seal_sig_info *sig);

#endif
