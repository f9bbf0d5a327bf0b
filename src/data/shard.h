/* shard.h — token shards: a directory of versioned token files plus a manifest,
 * written by `rlhf data prepare` and streamed by trainers as (B, T+1) windows.
 *
 *   DIR/manifest.bin        "RLHFDMAN" v1: vocab size, token width, tokenizer
 *                           identity, and the shards of each split in order
 *   DIR/train_000000.bin    "RLHFSHRD" v1: uint16 ids when vocab <= 65536, else uint32
 *   DIR/val_000000.bin      ...
 * Layouts: docs/formats-tok.md.
 *
 * Each split is read as one token stream: the shards of that split, in order.
 * Every input file contributes one document per split (the last val_fraction of
 * its bytes, cut at a line start, go to val); each document starts with the
 * separator token "<|endoftext|>" if the tokenizer has it, else "<|bos|>".
 */
#ifndef RL_SHARD_H
#define RL_SHARD_H
#include <stdint.h>
#include "../base/check.h"
#include "../tok/tok.h"

#define DATA_MANIFEST_MAGIC "RLHFDMAN"
#define DATA_SHARD_MAGIC "RLHFSHRD"

typedef struct {
    double val_fraction;      /* [0, 0.5]: share of each input's bytes that goes to val */
    long long shard_tokens;   /* max tokens per shard file (>= 1024) */
    size_t chunk_bytes;       /* encode input in chunks of about this many bytes at safe
                               * boundaries (0 = 4 MiB); result does not depend on it */
    int verbose;              /* progress on stderr */
} data_prepare_opts;

typedef struct {
    long long train_tokens, val_tokens;
    int train_shards, val_shards;
} data_prepare_stats;

/* Tokenizes `ninputs` files with `t` into directory `dir` (created if missing;
 * one level). Shards are written atomically and the manifest last, so a failed
 * run never leaves a manifest pointing at missing or partial shards.
 * `stats` may be NULL. RL_ENOTFOUND / RL_EIO / RL_EINVAL with a message. */
rl_status data_prepare(const tok_tokenizer *t, const char *const *inputs, int ninputs, const char *dir,
                       const data_prepare_opts *opts, data_prepare_stats *stats);

/* Summary of a prepared directory (reads only the manifest). */
typedef struct {
    int vocab_size;
    int token_bytes;          /* 2 or 4 */
    char identity[65];        /* tokenizer identity (tok_identity) */
    long long train_tokens, val_tokens;
    int train_shards, val_shards;
} data_info;
rl_status data_read_info(const char *dir, data_info *info);

/* ---- streaming loader ------------------------------------------------------ */

typedef struct data_loader data_loader;

/* split: "train" or "val". Yields (B, T+1) windows; rank/world give disjoint
 * windows per rank (rank r takes windows r, r+world, ... of the epoch's order);
 * seed shuffles window order per epoch deterministically (same order on every
 * rank; seed 0 = the natural order, what evaluation wants).
 *
 * Window k holds tokens [k*T, k*T + T] of the split's stream (neighbours share
 * one token, so every token is a target once). An epoch has
 * floor(windows / (B*world)) batches for every rank; the few windows left over
 * are skipped that epoch (with a shuffle, different ones each epoch).
 * Maps every shard of the split (validated: CRC, vocab, identity).
 * RL_EINVAL if the split has fewer than B*world*T + 1 tokens. */
rl_status data_loader_open(data_loader **out, const char *dir, const char *split, int B, int T, int rank, int world, uint64_t seed);
/* Fills tokens (B, T+1), row-major. Wraps to a new epoch at the end. Never fails
 * once open (returns RL_OK); no allocation except the permutation per epoch. */
rl_status data_loader_next(data_loader *l, int *tokens /* (B, T+1) */);
/* Back to epoch 0, batch 0. */
void data_loader_reset(data_loader *l);
int data_loader_vocab_size(const data_loader *l);
long long data_loader_tokens(const data_loader *l);   /* tokens in this split */
long long data_loader_batches_per_epoch(const data_loader *l);
/* Tokenizer identity the shards were made with (64 hex + NUL). */
void data_loader_identity(const data_loader *l, char out[65]);
/* Position for bit-identical resume: st = {epoch, batch, seed, windows}. */
void data_loader_state(const data_loader *l, uint64_t st[4]);
/* Restores a position from data_loader_state. RL_EINVAL if it was taken with a
 * different seed or different data (window count), or is out of range. */
rl_status data_loader_set_state(data_loader *l, const uint64_t st[4]);
void data_loader_close(data_loader *l);   /* NULL is fine */

#endif
