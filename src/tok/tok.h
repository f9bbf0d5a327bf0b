/* tok.h — byte-level BPE tokenizer (GPT-2 style).
 *
 * A tokenizer maps any byte string to token ids and back, losslessly:
 *   - every one of the 256 bytes is a token, so invalid UTF-8 round-trips;
 *   - text is first cut into pieces by GPT-2's pre-split regex
 *       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *     (matched by hand over UTF-8 with JavaScript's Unicode classes; an invalid
 *     UTF-8 byte counts as one character of the "other" class);
 *   - each piece starts as its bytes, and the applicable merge with the lowest
 *     rank is applied (leftmost first) until none applies;
 *   - special tokens ("<|end|>", ...) are whole tokens whose bytes are their
 *     name; they are only produced from text when the caller allows it.
 *
 * Ids: a trained tokenizer has ids 0..255 = bytes, 256.. = merges in rank
 * order, then the special tokens. An imported GPT-2 tokenizer keeps GPT-2's ids
 * (50,257 incl. <|endoftext|> = 50256) and appends the chat specials.
 *
 * A tokenizer file is a versioned binfile ("RLHFTOK\0"), see docs/formats-tok.md.
 * A loaded tokenizer is read-only except for an internal encode cache that is
 * guarded by a lock (taken with trylock: concurrent encodes never wait, the
 * losers just run without the cache), so it may be shared between threads.
 */
#ifndef RL_TOK_H
#define RL_TOK_H
#include <stddef.h>
#include <stdint.h>
#include "../base/check.h"

typedef struct tok_tokenizer tok_tokenizer;

/* The special tokens every tokenizer of ours reserves (in this id order after
 * the merges; a GPT-2 import has "<|endoftext|>" first, at 50256). */
#define TOK_NCHAT_SPECIALS 4
extern const char *const tok_chat_specials[TOK_NCHAT_SPECIALS]; /* <|bos|> <|user|> <|assistant|> <|end|> */

/* Loads a tokenizer file (validated: magic, version, CRC, and the vocabulary's
 * own consistency). RL_ENOTFOUND / RL_EFORMAT / RL_EIO with a message saying
 * what to do. *out is NULL on error; free with tok_free. */
rl_status tok_load(tok_tokenizer **out, const char *path);
/* Writes `t` to `path` atomically (old file kept on any failure). */
rl_status tok_save(const tok_tokenizer *t, const char *path);
void tok_free(tok_tokenizer *t);   /* NULL is fine */

/* Number of ids, special tokens included. */
int tok_vocab_size(const tok_tokenizer *t);
/* Number of merges (ranks). */
int tok_num_merges(const tok_tokenizer *t);
/* Merge of rank `rank` (0 = first learned): sets *left and *right and returns
 * the id it makes, or -1 if rank is out of range. */
int tok_merge(const tok_tokenizer *t, int rank, int *left, int *right);
/* Id of the special token `name` ("<|end|>"), or -1 if it has none. */
int tok_special(const tok_tokenizer *t, const char *name);
/* 1 if `id` is a special token. */
int tok_is_special(const tok_tokenizer *t, int id);

/* Encodes len bytes of `text` (any bytes, NUL included). Special-token strings
 * in the text are plain text unless allow_special is non-zero, in which case
 * each occurrence (leftmost, longest) becomes its special id.
 * Appends the ids to *ids, which is realloc'd (start with *ids = NULL, *n = 0;
 * the caller frees *ids); *n is the total count. On error (RL_ENOMEM) *ids and
 * *n stay valid for what was appended before. */
rl_status tok_encode(const tok_tokenizer *t, const char *text, size_t len, int allow_special, int **ids, int *n);

/* Bytes of token `id` (not NUL-terminated; a special token's bytes are its
 * name). NULL and *len = 0 for an invalid id. Valid while t lives. */
const unsigned char *tok_token_bytes(const tok_tokenizer *t, int id, int *len);

/* Concatenated bytes of n ids into a new buffer *out (NUL-terminated for
 * convenience, *out_len excludes the NUL; caller frees). RL_EINVAL naming the
 * first id that is out of range. */
rl_status tok_decode(const tok_tokenizer *t, const int *ids, int n, char **out, size_t *out_len);

/* Identity: SHA-256 (64 lower-case hex chars + NUL) of the canonical
 * serialization of vocabulary, merges and specials — the tokenizer file's
 * payload. Two tokenizers that encode identically have the same identity;
 * checkpoints and token shards record it. */
void tok_identity(const tok_tokenizer *t, char out[65]);

/* ---- building tokenizers ------------------------------------------------ */

typedef struct {
    int vocab_size;      /* total ids wanted: 256 + merges + TOK_NCHAT_SPECIALS */
    int min_frequency;   /* stop early when the best pair occurs fewer times (>= 1; default 2) */
    int verbose;         /* progress bar on stderr */
} tok_train_opts;

/* Trains merges on the concatenation of `ntexts` byte buffers (each split
 * separately; nothing crosses a buffer boundary). Deterministic: ties between
 * equally frequent pairs go to the smaller (left id, right id). Pair counts are
 * kept incrementally with a max-heap (lazy deletion), so each merge costs time
 * proportional to the words that contain the pair, not to the corpus.
 * Fewer merges than asked are made if the corpus runs out of pairs (see
 * tok_num_merges). RL_EINVAL if vocab_size < 256 + specials. */
rl_status tok_train(tok_tokenizer **out, const char *const *texts, const size_t *lens, int ntexts,
                    const tok_train_opts *opts);

/* Imports OpenAI's GPT-2 vocabulary: encoder.json (token string -> id, the
 * strings written with GPT-2's byte-to-unicode mapping) and vocab.bpe
 * ("#version" line, then one merge "a b" per line in rank order). The ids are
 * GPT-2's; "<|endoftext|>" stays 50256 and the chat specials are appended.
 * RL_ENOTFOUND / RL_EFORMAT with the file and line at fault. */
rl_status tok_import_gpt2(tok_tokenizer **out, const char *encoder_json, const char *vocab_bpe);

/* ---- pre-split (exposed for tests and tools) ----------------------------- */

/* Length in bytes of the GPT-2 regex match at text[0..len) (len > 0): the
 * next pre-token. Always >= 1. */
size_t tok_pretok_next(const unsigned char *text, size_t len);

#endif
