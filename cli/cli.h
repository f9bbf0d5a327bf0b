/* cli.h — declarations of every command function listed in commands.def. */
#ifndef RL_CLI_H
#define RL_CLI_H
#include "../src/base/seal.h" /* RL_SEAL_LOAD_FLAGS, used by CLI_CKPT_LOAD_FLAGS */

#define X(words, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef X

/* `feedback export --db`: the SQLite side of cmd_feedback_export (cli/serve.c). */
int cmd_feedback_export_db(int argc, char **argv);

/* Version string ("0.1.0"). */
extern const char *rl_version;
/* Optional features built in, e.g. "openmp openblas sqlite ..." */
const char *rl_build_features(void);

/* Checkpoint security flags, spelled the same by every command (cli/checkpoint.c):
 *   static const char *sk, *vk, *kf, *pe; static int enc;
 *   rl_flag flags[] = { ..., CLI_CKPT_WRITE_FLAGS(sk, enc), CLI_CKPT_LOAD_FLAGS(vk, kf, pe) };
 *   ... parse ...; if (cli_ckpt_security("sft", sk, vk, kf, pe, enc)) return 1;
 * Commands that only load checkpoints pass sk = NULL, enc = 0. Without any
 * flag the environment applies (src/model/ckpt_secure.h). */
#define CLI_CKPT_WRITE_FLAGS(sign_key, encrypt) \
    {"sign-key", RL_FLAG_STRING, &(sign_key), "", 0, 0, NULL, \
     "secret key (sign.key, 0600) to sign every checkpoint written; default $RLHF_SIGN_KEY"}, \
    {"encrypt", RL_FLAG_BOOL, &(encrypt), "0", 0, 0, NULL, \
     "also encrypt every checkpoint written (with --key-file / --passphrase-env)"}
#define CLI_CKPT_LOAD_FLAGS(verify_key, key_file, passphrase_env) RL_SEAL_LOAD_FLAGS(verify_key, key_file, passphrase_env)
/* Installs the process-wide checkpoint policy; prints "rlhf <cmd>: <why>" and returns 1 on error, else 0. */
int cli_ckpt_security(const char *cmd, const char *sign_key, const char *verify_key, const char *key_file,
                      const char *passphrase_env, int encrypt);

#endif
