/* checkpoint.h — GPT checkpoints: config, tokenizer identity, weights and,
 * optionally, the AdamW state and the training state (step, RNG, data-loader
 * position) needed to resume bit-identically.
 *
 * File kind "RLHFGPT\0", version 2, written with src/base/binfile.h (atomic,
 * CRC-checked). Payload layout (little-endian) in docs/formats-model.md.
 * Version 2 adds a key/value metadata section (ckpt_meta: what the model is,
 * "kind" = lm | reward | value, and e.g. a reward model's normalisation);
 * version 1 files still load, with empty metadata (an LM).
 *
 * Writing is streamed through a ckpt_sink (a write callback) so a later layer
 * (signing, encryption) can wrap the byte stream; ckpt_save uses the atomic
 * rl_writer as its sink.
 */
#ifndef RL_CHECKPOINT_H
#define RL_CHECKPOINT_H
#include <stdint.h>
#include "gpt.h"
#include "../optim/adamw.h"
#include "../base/rng.h"

#define CKPT_MAGIC "RLHFGPT\0"
#define CKPT_VERSION 2u

/* Key/value metadata stored with the weights. Keys are 1..31 bytes, values
 * 0..255 bytes (NUL-terminated here; no NUL inside). Keys in use
 * (docs/formats-model.md):
 *   "kind"           "lm" | "reward" | "value" (absent = "lm")
 *   "reward.mean", "reward.std"   reward on reference samples (normalisation)
 *   "reward.min", "reward.max"    range of rewards seen in training
 *   "reward.loss"    the loss it was trained with ("bt", "bt+thumbs", ...)
 *   "group"          annotator group of a per-group reward model
 *   "trainer", "base", "tokenizer" ... free-form provenance */
#define CKPT_META_MAX 32
typedef struct {
    int n;
    char key[CKPT_META_MAX][32];
    char val[CKPT_META_MAX][256];
} ckpt_meta;

/* Value of `key`, or NULL if absent (m may be NULL). Points into m. */
const char *ckpt_meta_get(const ckpt_meta *m, const char *key);
/* Sets key to val (replacing an existing value). RL_EINVAL if the key is
 * empty or >= 32 bytes, the value >= 256 bytes, or the table is full. */
rl_status ckpt_meta_set(ckpt_meta *m, const char *key, const char *val);
/* Formats a double with %.9g and sets it. */
rl_status ckpt_meta_set_f(ckpt_meta *m, const char *key, double val);
/* Parses a numeric value: 1 and *out on success, 0 if absent or not a number. */
int ckpt_meta_get_f(const ckpt_meta *m, const char *key, double *out);
/* "kind" of a checkpoint's metadata ("lm" when absent). */
const char *ckpt_meta_kind(const ckpt_meta *m);

typedef struct {
    long long step;          /* optimizer steps done */
    rl_rng rng;              /* trainer's RNG */
    uint64_t loader[4];      /* data loader position (data_loader_state) */
    uint64_t extra[4];       /* reserved for the caller (0 if unused) */
} ckpt_train_state;

typedef struct {
    gpt_config cfg;
    char tok_id[65];         /* tokenizer identity (64 hex chars) or "" */
    int has_optim;           /* AdamW moments stored */
    int has_train;           /* ckpt_train_state stored */
    long long adam_t;        /* AdamW step count (bias correction) */
    ckpt_train_state train;  /* valid when has_train */
    uint64_t num_params;
    uint32_t version;        /* file format version read (1 or 2) */
    ckpt_meta meta;          /* empty for version-1 files */
} ckpt_info;

/* The byte stream a checkpoint is written to. */
typedef struct {
    rl_status (*write)(void *ctx, const void *data, size_t n);
    void *ctx;
} ckpt_sink;

/* Writes the payload (no file header) to `sink`. tok_id NULL or "" = unknown
 * tokenizer; opt and train may be NULL (weights only). */
rl_status ckpt_write(ckpt_sink *sink, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                     const ckpt_train_state *train);
/* Same with metadata (meta NULL = none). */
rl_status ckpt_write_meta(ckpt_sink *sink, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                          const ckpt_train_state *train, const ckpt_meta *meta);
/* Atomic file: "<path>.tmp.<pid>" then rename. The old file survives any failure. */
rl_status ckpt_save(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                    const ckpt_train_state *train);
/* Same with metadata (meta NULL = none). RL_EINVAL for an invalid meta table. */
rl_status ckpt_save_meta(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                         const ckpt_train_state *train, const ckpt_meta *meta);

/* Reads the header and metadata (maps and validates the whole file). */
rl_status ckpt_peek(const char *path, ckpt_info *info);
/* Loads a checkpoint: gpt_init(m, cfg from the file, max_B, max_T (<= maxT; 0 = the
 * file's maxT), ops, 0) then copies the weights. If opt != NULL and the file has
 * AdamW state, optim_adamw_init(opt, ..., hyper-parameters given) is done here and
 * the moments and step count restored (if the file has none, opt is initialised
 * fresh). info (may be NULL) receives the metadata. On error m (and opt) are
 * left freed/zeroed. */
rl_status ckpt_load(const char *path, gpt_model *m, int max_B, int max_T, const ops_table *ops,
                    optim_adamw *opt, float beta1, float beta2, float eps, float weight_decay,
                    int decay_embeddings, ckpt_info *info);

#endif
