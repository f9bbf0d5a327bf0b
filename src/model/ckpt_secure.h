/* ckpt_secure.h — what every checkpoint write and load goes through:
 * signing, signature verification, decryption (and optional encryption at
 * rest), and the provenance recorded in every checkpoint.
 *
 * One process-wide setting, made once at start (before any thread) by the
 * CLI from the flags --sign-key, --verify-key, --key-file, --passphrase-env,
 * --encrypt, or, when a command never calls ckpt_secure_configure, lazily
 * from the environment on the first checkpoint load or save:
 *   RLHF_SIGN_KEY    path of a sign.key (0600): sign every checkpoint written
 *   RLHF_VERIFY_KEY  path of a sign.pub: every checkpoint loaded must carry a
 *                    valid signature by it (unsigned/tampered/truncated/other
 *                    signer: refused, message names the file and the reason)
 *   RLHF_KEY_FILE / RLHF_PASSPHRASE   decrypt encrypted checkpoints
 * So every ckpt_peek / ckpt_load / ckpt_save_meta in the code base (every
 * trainer, whoever wrote it) obeys the policy without knowing about it.
 * A configured key that cannot be loaded is an error, never a silent
 * downgrade. Secrets are only ever file paths or environment variable names.
 *
 * Provenance: when ckpt_prov_begin has been called (cli/main.c does it for
 * every command), every checkpoint saved gets these metadata keys
 * (checkpoint.h ckpt_meta; existing keys of the caller are kept):
 *   prov.cmd, prov.cmd.1   the command line ("rlhf sft --model a.ckpt ..."),
 *                          in 255-byte pieces, "..." when cut at 510 bytes
 *   prov.git               git commit of the code that wrote it (+"-dirty")
 *   prov.version           rlhf.c version
 *   prov.time              UTC time of the save (ISO 8601)
 *   prov.parent            "<sha256> <path>" of the checkpoint it started
 *                          from (flag --resume, --model, --policy, --init,
 *                          --base or --sft, first present)
 *   prov.data.N            "<sha256> --flag <path>" of every other flag
 *                          value that names an existing file or directory
 *                          (data, records, tokenizer, reference models ...),
 *                          at most 8; a directory's hash is the SHA-256 of
 *                          "<name>\0<sha256 of file>\n" over its regular
 *                          files sorted by name (not recursive).
 * Hashes are SHA-256 (libsodium), streamed, computed once at the first save.
 */
#ifndef RL_CKPT_SECURE_H
#define RL_CKPT_SECURE_H
#include "checkpoint.h"
#include "../base/binfile.h"
#include "../base/seal.h"

#define CKPT_ENV_SIGN_KEY "RLHF_SIGN_KEY"

/* Sets the process-wide policy. Empty/NULL arguments fall back to the
 * environment (above). encrypt = 1: every checkpoint written is also
 * encrypted with the configured key file / passphrase (RL_EINVAL if none).
 * May be called again (replaces the previous setting). */
rl_status ckpt_secure_configure(const char *sign_key, const char *verify_key, const char *key_file,
                                const char *passphrase_env, int encrypt);
/* Forgets the setting and wipes the keys (next use re-reads the environment). */
void ckpt_secure_reset(void);
/* 1 if checkpoints written now are signed; `id` (17 bytes, may be NULL) gets the key's fingerprint. */
int ckpt_secure_signing(char id[17]);

/* Maps a checkpoint under the policy: decrypts an encrypted file into memory
 * (needs a key), verifies the signature if a verify key is set, checks
 * magic/version/CRC. Free with rl_file_unmap. `sig` (may be NULL) says
 * whether the file is signed and by whom (verified only under a verify key). */
rl_status ckpt_secure_map(rl_mapped_file *f, const char *path, rl_seal_sig_info *sig);
/* Writes a checkpoint under the policy (what ckpt_save_meta does): adds the
 * provenance to a copy of `meta`, streams the payload through a seal writer
 * (signed if a sign key is set; atomic), then encrypts if asked. */
rl_status ckpt_secure_save(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                           const ckpt_train_state *train, const ckpt_meta *meta);

/* ---- provenance ------------------------------------------------------------ */

/* Records the command line: `words` the command ("sft"), argv[0..argc) its
 * flags, `version` the rlhf.c version. Files are hashed later, at the first
 * save. */
void ckpt_prov_begin(const char *words, int argc, char **argv, const char *version);
/* Adds the provenance keys to `meta` (no-op before ckpt_prov_begin). Keys
 * that do not fit (32 keys at most) are dropped with a warning. */
rl_status ckpt_prov_apply(ckpt_meta *meta);
/* Forgets the recorded command (tests). */
void ckpt_prov_reset(void);

/* SHA-256 of a file (streamed, 1 MiB buffer) or of a directory (see above),
 * as 64 hex characters + NUL. */
rl_status ckpt_sha256_path(const char *path, char hex[65]);

#endif
