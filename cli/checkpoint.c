/* checkpoint.c — `rlhf checkpoint inspect|import|export` and the shared
 * checkpoint-security flag helper (cli.h). Logic: src/model/ckpt_secure.h,
 * src/model/interop.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/base/seal.h"
#include "../src/model/checkpoint.h"
#include "../src/model/ckpt_secure.h"
#include "../src/model/interop.h"
#include "../src/tok/tok.h"

int cli_ckpt_security(const char *cmd, const char *sign_key, const char *verify_key, const char *key_file,
                      const char *passphrase_env, int encrypt) {
    if (ckpt_secure_configure(sign_key, verify_key, key_file, passphrase_env, encrypt) != RL_OK) {
        fprintf(stderr, "rlhf %s: %s\n", cmd, rl_error());
        return 1;
    }
    return 0;
}

static int fail(const char *cmd) {
    fprintf(stderr, "rlhf %s: %s\n", cmd, rl_error());
    return 1;
}

#define PARSE(name, summary, flags)                                                       \
    do {                                                                                  \
        int rc_ = rl_flags_parse(name, summary, flags, RL_NFLAGS(flags), argc, argv);     \
        if (rc_ != RL_FLAGS_OK) return rc_ == RL_FLAGS_HELP ? 0 : 2;                      \
    } while (0)

int cmd_checkpoint_inspect(int argc, char **argv) {
    static const char *model, *vk, *kf, *pe;
    static int no_hash;
    static rl_flag flags[] = {
        {"model", RL_FLAG_STRING, &model, NULL, 0, 0, NULL, "checkpoint to describe"},
        CLI_CKPT_LOAD_FLAGS(vk, kf, pe),
        {"no-hash", RL_FLAG_BOOL, &no_hash, "0", 0, 0, NULL, "skip the file's SHA-256 (large files)"},
    };
    PARSE("checkpoint inspect", "Print a checkpoint's config, tokenizer identity, parameter count, training provenance "
          "and signature status (verified with --verify-key / $RLHF_VERIFY_KEY).", flags);
    if (cli_ckpt_security("checkpoint inspect", NULL, vk, kf, pe, 0)) return 1;
    rl_seal_enc_info ei;
    int encrypted = rl_seal_is_encrypted(model, &ei);
    rl_mapped_file f;
    rl_seal_sig_info sig;
    if (ckpt_secure_map(&f, model, &sig) != RL_OK) return fail("checkpoint inspect");
    ckpt_info info;
    rl_status st = ckpt_peek_mapped(&f, model, &info);
    rl_file_unmap(&f);
    if (st != RL_OK) return fail("checkpoint inspect");
    struct stat sb;
    printf("file:          %s (%lld bytes)\n", model, stat(model, &sb) == 0 ? (long long)sb.st_size : -1LL);
    char hex[65];
    if (!no_hash && ckpt_sha256_path(model, hex) == RL_OK) printf("sha256:        %s\n", hex);
    printf("format:        rlhf.c checkpoint version %u\n", info.version);
    if (encrypted)
        printf("encrypted:     yes (XChaCha20-Poly1305, %s); decrypted in memory\n", ei.kdf == RL_SEAL_KDF_ARGON2ID ? "passphrase/Argon2id" : "key file");
    else printf("encrypted:     no\n");
    const char *v = vk && *vk ? vk : getenv(RL_SEAL_ENV_VERIFY_KEY);
    if (!sig.is_signed) printf("signature:     none (unsigned)\n");
    else if (v && *v) printf("signature:     VALID, by trusted key %s\n", sig.signer.id);
    else printf("signature:     signed by key %s, NOT verified (give --verify-key or $%s)\n", sig.signer.id, RL_SEAL_ENV_VERIFY_KEY);
    const gpt_config *c = &info.cfg;
    printf("config:        L=%d NH=%d C=%d V=%d maxT=%d\n", c->L, c->NH, c->C, c->V, c->maxT);
    printf("parameters:    %llu (%.1f M)\n", (unsigned long long)info.num_params, info.num_params / 1e6);
    printf("tokenizer:     %s\n", info.tok_id[0] ? info.tok_id : "(not recorded)");
    printf("kind:          %s\n", ckpt_meta_kind(&info.meta));
    if (info.has_train) printf("training:      step %lld%s\n", info.train.step, info.has_optim ? ", with AdamW state (resumable)" : "");
    else printf("training:      weights only%s\n", info.has_optim ? " + AdamW state" : "");
    const ckpt_meta *mt = &info.meta;
    const char *cmd = ckpt_meta_get(mt, "prov.cmd");
    printf("provenance:\n");
    if (!cmd && !ckpt_meta_get(mt, "prov.git")) printf("  (none recorded)\n");
    if (cmd) printf("  command:     %s%s\n", cmd, ckpt_meta_get(mt, "prov.cmd.1") ? ckpt_meta_get(mt, "prov.cmd.1") : "");
    if (ckpt_meta_get(mt, "prov.git")) printf("  code:        rlhf.c %s, git %s\n", ckpt_meta_get(mt, "prov.version") ? ckpt_meta_get(mt, "prov.version") : "?", ckpt_meta_get(mt, "prov.git"));
    if (ckpt_meta_get(mt, "prov.time")) printf("  written:     %s\n", ckpt_meta_get(mt, "prov.time"));
    printf("  parent:      %s\n", ckpt_meta_get(mt, "prov.parent") ? ckpt_meta_get(mt, "prov.parent") : "(none: trained from scratch or imported)");
    for (int i = 0; i < mt->n; i++)
        if (!strncmp(mt->key[i], "prov.data.", 10)) printf("  input:       %s\n", mt->val[i]);
    int other = 0;
    for (int i = 0; i < mt->n; i++) {
        if (!strncmp(mt->key[i], "prov.", 5) || !strcmp(mt->key[i], "kind")) continue;
        if (!other++) printf("metadata:\n");
        printf("  %-20s %s\n", mt->key[i], mt->val[i]);
    }
    return 0;
}

int cmd_checkpoint_import(int argc, char **argv) {
    static const char *format, *in, *out, *tokp, *sk, *vk, *kf, *pe;
    static int heads, enc;
    static rl_flag flags[] = {
        {"format", RL_FLAG_ENUM, &format, NULL, 0, 0, "safetensors|llmc", "safetensors (Hugging Face GPT-2 names) or llmc (llm.c's gpt2_124M.bin)"},
        {"in", RL_FLAG_STRING, &in, NULL, 0, 0, NULL, "weights file to import"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "checkpoint to write"},
        {"tokenizer", RL_FLAG_STRING, &tokp, "", 0, 0, NULL, "tokenizer the weights go with (e.g. from 'rlhf tokenizer import-gpt2'): recorded, vocabulary checked"},
        {"heads", RL_FLAG_INT, &heads, "0", 0, 65536, NULL, "attention heads (safetensors only; 0 = the file's n_head metadata, else channels/64)"},
        CLI_CKPT_WRITE_FLAGS(sk, enc),
        CLI_CKPT_LOAD_FLAGS(vk, kf, pe),
    };
    PARSE("checkpoint import", "Import GPT-2-shaped weights (Hugging Face safetensors or llm.c) as an rlhf.c checkpoint "
          "(signed with --sign-key; provenance recorded).", flags);
    if (cli_ckpt_security("checkpoint import", sk, vk, kf, pe, enc)) return 1;
    char tid[65] = "";
    int tv = 0;
    if (*tokp) {
        tok_tokenizer *t = NULL;
        if (tok_load(&t, tokp) != RL_OK) return fail("checkpoint import");
        tok_identity(t, tid);
        tv = tok_vocab_size(t);
        tok_free(t);
    }
    gpt_model m;
    rl_status s = !strcmp(format, "llmc") ? gptio_import_llmc(&m, in, 1, 1, NULL) : gptio_import_safetensors(&m, in, heads, 1, 1, NULL);
    if (s != RL_OK) return fail("checkpoint import");
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "lm");
    ckpt_meta_set(&meta, "import.format", format);
    if (*tokp && m.cfg.V > tv) {
        fprintf(stderr, "rlhf checkpoint import: %s has a vocabulary of %d but the tokenizer %s has only %d ids; pass the tokenizer "
                "the weights were trained with\n", in, m.cfg.V, tokp, tv);
        gpt_free(&m);
        return 1;
    }
    if (*tokp && m.cfg.V < tv) {
        /* e.g. GPT-2's 50,257 ids + the chat specials 'tokenizer import-gpt2' appends */
        int oldV = m.cfg.V;
        if (gptio_resize_vocab(&m, tv, 1, 1) != RL_OK) { gpt_free(&m); return fail("checkpoint import"); }
        ckpt_meta_set_f(&meta, "import.vocab", oldV);
        rl_info("the tokenizer has %d ids beyond the weights' %d (special tokens): their embeddings start at the mean embedding",
                tv - oldV, oldV);
    }
    if (!*tokp) rl_warn("no --tokenizer: the checkpoint records no tokenizer identity (rlhf sample will trust whatever tokenizer you give)");
    s = ckpt_save_meta(out, &m, tid, NULL, NULL, &meta);
    if (s == RL_OK) rl_info("imported %s (L=%d NH=%d C=%d V=%d maxT=%d, %.1f M parameters) -> %s", in, m.cfg.L, m.cfg.NH,
                            m.cfg.C, m.cfg.V, m.cfg.maxT, m.num_params / 1e6, out);
    gpt_free(&m);
    return s == RL_OK ? 0 : fail("checkpoint import");
}

int cmd_checkpoint_export(int argc, char **argv) {
    static const char *format, *model, *out, *vk, *kf, *pe;
    static int vocab;
    static rl_flag flags[] = {
        {"format", RL_FLAG_ENUM, &format, NULL, 0, 0, "safetensors|llmc", "safetensors (Hugging Face GPT-2 names) or llmc (llm.c version 3)"},
        {"model", RL_FLAG_STRING, &model, NULL, 0, 0, NULL, "checkpoint to export"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "file to write (atomically)"},
        {"vocab", RL_FLAG_INT, &vocab, "0", 0, 1 << 24, NULL, "keep only the first N token rows (e.g. 50257 to drop the chat specials added to GPT-2); 0 = all"},
        CLI_CKPT_LOAD_FLAGS(vk, kf, pe),
    };
    PARSE("checkpoint export", "Export a checkpoint's weights for other tools: Hugging Face safetensors (GPT-2 layout) "
          "or llm.c's model file. The export is neither signed nor encrypted (other tools cannot check either).", flags);
    if (cli_ckpt_security("checkpoint export", NULL, vk, kf, pe, 0)) return 1;
    gpt_model m;
    ckpt_info info;
    if (ckpt_load(model, &m, 1, 1, NULL, NULL, 0, 0, 0, 0, 0, &info) != RL_OK) return fail("checkpoint export");
    rl_status s = RL_OK;
    if (vocab > m.cfg.V) s = rl_fail(RL_EINVAL, "--vocab %d is larger than the model's vocabulary %d", vocab, m.cfg.V);
    else if (vocab > 0 && vocab < m.cfg.V) s = gptio_resize_vocab(&m, vocab, 1, 1);
    /* a cut vocabulary no longer matches the tokenizer the checkpoint names */
    if (s == RL_OK) s = !strcmp(format, "llmc") ? gptio_export_llmc(&m, out) : gptio_export_safetensors(&m, out, vocab > 0 && vocab < info.cfg.V ? NULL : info.tok_id);
    if (s == RL_OK) rl_info("exported %s -> %s (%s)", model, out, format);
    if (s == RL_OK && strcmp(ckpt_meta_kind(&info.meta), "lm") && !strcmp(format, "llmc"))
        rl_warn("%s is a %s model; llm.c files have no scalar head, so it was not exported", model, ckpt_meta_kind(&info.meta));
    gpt_free(&m);
    return s == RL_OK ? 0 : fail("checkpoint export");
}
