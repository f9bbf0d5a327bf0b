/* tok_internal.h — shared by the files of src/tok (not a public header). */
#ifndef RL_TOK_INTERNAL_H
#define RL_TOK_INTERNAL_H
#include <pthread.h>
#include <stdint.h>
#include <stddef.h>
#include "tok.h"

#define TOK_MAGIC "RLHFTOK\0"
#define TOK_VERSION 1u
#define TOK_PRETOK_GPT2 1u   /* the only pre-split so far */

/* Cache of encoded pre-tokens: piece bytes -> ids. Cleared when full. */
typedef struct {
    uint64_t h;
    uint32_t koff, klen;  /* key bytes in kbuf */
    uint32_t ioff, n;     /* ids in ibuf */
} tok_cache_ent;

typedef struct {
    tok_cache_ent *tab;   /* cap entries; klen == 0 means empty */
    size_t cap, count;
    unsigned char *kbuf; size_t klen, kcap;
    int *ibuf; size_t ilen, icap;
} tok_cache;

struct tok_tokenizer {
    int V;                     /* ids, specials included */
    int M;                     /* merges */
    int S;                     /* specials */
    uint32_t byte_id[256];     /* id of the one-byte token b */
    uint32_t *tok_off;         /* (V+1) offsets into tok_bytes */
    unsigned char *tok_bytes;  /* all token bytes, concatenated */
    uint32_t *merges;          /* (M, 3): left, right, result; rank = row */
    int *special_ids;          /* (S) */
    unsigned char *is_special; /* (V) */
    /* merge lookup: open addressing, key = left << 32 | right, EMPTY = all ones */
    uint64_t *mkey;            /* (mcap) */
    uint32_t *mrank;           /* (mcap) */
    size_t mcap;
    unsigned char *payload;    /* canonical serialization (file payload) */
    size_t payload_len;
    char identity[65];
    pthread_mutex_t lock;      /* guards cache */
    tok_cache cache;
};

/* Builds a tokenizer from its parts (copied) and validates it: every byte has a
 * one-byte token, every merge result's bytes are its parts' bytes joined, each
 * merge uses only bytes or earlier results, each id is exactly one of byte /
 * merge result / special. `what` names the source in error messages. */
rl_status tok_build(tok_tokenizer **out, int V, const uint32_t byte_id[256], const uint32_t *tok_len,
                    const unsigned char *tok_bytes, int M, const uint32_t *merges, int S,
                    const uint32_t *special_ids, const char *what);

/* 64-bit hash of a byte string. */
uint64_t tok_hash_bytes(const void *p, size_t n);

/* A growable map from byte strings to ints. */
typedef struct {
    uint64_t *h;     /* (cap) hash, 0 = empty slot (hashes are forced non-zero) */
    uint32_t *koff;  /* (cap) */
    uint32_t *klen;  /* (cap) */
    int *val;        /* (cap) */
    size_t cap, count;
    unsigned char *kbuf; size_t klen_total, kcap;
} tok_bmap;

void tok_bmap_init(tok_bmap *m);
void tok_bmap_free(tok_bmap *m);
/* Slot of key, or -1. */
long tok_bmap_find(const tok_bmap *m, const void *key, size_t n);
/* Inserts key with val if absent; returns the slot (existing or new), -1 on ENOMEM. */
long tok_bmap_insert(tok_bmap *m, const void *key, size_t n, int val, int *inserted);

#endif
