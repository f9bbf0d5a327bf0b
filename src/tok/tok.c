/* tok.c — tokenizer object: build/validate, load/save, encode, decode. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "tok_internal.h"
#include "../base/binfile.h"

const char *const tok_chat_specials[TOK_NCHAT_SPECIALS] = {"<|bos|>", "<|user|>", "<|assistant|>", "<|end|>"};

#define MEMPTY UINT64_MAX

/* ---- hashing and the byte-string map ------------------------------------ */

uint64_t tok_hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8; n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h ? h : 1;
}

void tok_bmap_init(tok_bmap *m) { memset(m, 0, sizeof *m); }

void tok_bmap_free(tok_bmap *m) {
    free(m->h); free(m->koff); free(m->klen); free(m->val); free(m->kbuf);
    memset(m, 0, sizeof *m);
}

long tok_bmap_find(const tok_bmap *m, const void *key, size_t n) {
    if (!m->cap) return -1;
    uint64_t h = tok_hash_bytes(key, n);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (m->h[i] == 0) return -1;
        if (m->h[i] == h && m->klen[i] == n && !memcmp(m->kbuf + m->koff[i], key, n)) return (long)i;
    }
}

static int bmap_grow(tok_bmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    uint64_t *h = calloc(ncap, sizeof *h);
    uint32_t *ko = malloc(ncap * sizeof *ko), *kl = malloc(ncap * sizeof *kl);
    int *val = malloc(ncap * sizeof *val);
    if (!h || !ko || !kl || !val) { free(h); free(ko); free(kl); free(val); return -1; }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->h[i]) continue;
        size_t j = m->h[i] & (ncap - 1);
        while (h[j]) j = (j + 1) & (ncap - 1);
        h[j] = m->h[i]; ko[j] = m->koff[i]; kl[j] = m->klen[i]; val[j] = m->val[i];
    }
    free(m->h); free(m->koff); free(m->klen); free(m->val);
    m->h = h; m->koff = ko; m->klen = kl; m->val = val; m->cap = ncap;
    return 0;
}

long tok_bmap_insert(tok_bmap *m, const void *key, size_t n, int v, int *inserted) {
    if (inserted) *inserted = 0;
    long f = tok_bmap_find(m, key, n);
    if (f >= 0) return f;
    if ((m->count + 1) * 2 > m->cap && bmap_grow(m) != 0) return -1;
    if (m->klen_total + n > m->kcap) {
        size_t nk = m->kcap ? m->kcap : 4096;
        while (nk < m->klen_total + n) nk *= 2;
        if (nk > UINT32_MAX) return -1;
        unsigned char *kb = realloc(m->kbuf, nk);
        if (!kb) return -1;
        m->kbuf = kb; m->kcap = nk;
    }
    memcpy(m->kbuf + m->klen_total, key, n);
    uint64_t h = tok_hash_bytes(key, n);
    size_t i = h & (m->cap - 1);
    while (m->h[i]) i = (i + 1) & (m->cap - 1);
    m->h[i] = h; m->koff[i] = (uint32_t)m->klen_total; m->klen[i] = (uint32_t)n; m->val[i] = v;
    m->klen_total += n;
    m->count++;
    if (inserted) *inserted = 1;
    return (long)i;
}

/* ---- building ------------------------------------------------------------ */

static size_t merge_slot(const tok_tokenizer *t, uint64_t key) {
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t mask = t->mcap - 1;
    size_t i = (size_t)(h >> 20) & mask;
    while (t->mkey[i] != MEMPTY && t->mkey[i] != key) i = (i + 1) & mask;
    return i;
}

/* Rank of merging (a, b), or -1. */
static inline long merge_rank(const tok_tokenizer *t, uint32_t a, uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b;
    size_t i = merge_slot(t, key);
    return t->mkey[i] == key ? (long)t->mrank[i] : -1;
}

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }

rl_status tok_build(tok_tokenizer **out, int V, const uint32_t byte_id[256], const uint32_t *tok_len,
                    const unsigned char *tok_bytes, int M, const uint32_t *merges, int S,
                    const uint32_t *special_ids, const char *what) {
    *out = NULL;
    if (V < 256 || V > (1 << 30) || M < 0 || S < 0 || 256 + M + S != V)
        return rl_fail(RL_EFORMAT, "%s: inconsistent sizes (vocab %d, merges %d, specials %d; vocab must be 256 + merges + specials)", what, V, M, S);
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return rl_fail(RL_ENOMEM, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->V = V; t->M = M; t->S = S;
    memcpy(t->byte_id, byte_id, sizeof t->byte_id);
    size_t total = 0;
    for (int i = 0; i < V; i++) total += tok_len[i];
    t->tok_off = malloc((size_t)(V + 1) * sizeof *t->tok_off);
    t->tok_bytes = malloc(total ? total : 1);
    t->merges = malloc((size_t)(M ? M : 1) * 3 * sizeof *t->merges);
    t->special_ids = malloc((size_t)(S ? S : 1) * sizeof *t->special_ids);
    t->is_special = calloc((size_t)V, 1);
    unsigned char *role = calloc((size_t)V, 1); /* 1 byte, 2 merge result, 3 special */
    t->mcap = 16;
    while (t->mcap < (size_t)M * 2 + 16) t->mcap *= 2;
    t->mkey = malloc(t->mcap * sizeof *t->mkey);
    t->mrank = malloc(t->mcap * sizeof *t->mrank);
    rl_status s = RL_OK;
    if (!t->tok_off || !t->tok_bytes || !t->merges || !t->special_ids || !t->is_special || !role || !t->mkey || !t->mrank || total > UINT32_MAX) {
        s = rl_fail(RL_ENOMEM, "out of memory building a %d-token vocabulary", V);
        goto done;
    }
    memset(t->mkey, 0xff, t->mcap * sizeof *t->mkey);
    t->tok_off[0] = 0;
    for (int i = 0; i < V; i++) t->tok_off[i + 1] = t->tok_off[i] + tok_len[i];
    memcpy(t->tok_bytes, tok_bytes, total);
    for (int b = 0; b < 256; b++) {
        uint32_t id = byte_id[b];
        if (id >= (uint32_t)V || role[id] || tok_len[id] != 1 || t->tok_bytes[t->tok_off[id]] != b) {
            s = rl_fail(RL_EFORMAT, "%s: byte 0x%02x has no valid one-byte token (id %u)", what, b, id);
            goto done;
        }
        role[id] = 1;
    }
    for (int r = 0; r < M; r++) {
        uint32_t a = merges[3 * r], b = merges[3 * r + 1], c = merges[3 * r + 2];
        if (a >= (uint32_t)V || b >= (uint32_t)V || c >= (uint32_t)V || !role[a] || role[a] == 3 || !role[b] || role[b] == 3 || role[c]) {
            s = rl_fail(RL_EFORMAT, "%s: merge %d (%u + %u -> %u) uses a token that is not a byte or an earlier merge, or makes a token twice", what, r, a, b, c);
            goto done;
        }
        if (tok_len[c] != tok_len[a] + tok_len[b] ||
            memcmp(t->tok_bytes + t->tok_off[c], t->tok_bytes + t->tok_off[a], tok_len[a]) ||
            memcmp(t->tok_bytes + t->tok_off[c] + tok_len[a], t->tok_bytes + t->tok_off[b], tok_len[b])) {
            s = rl_fail(RL_EFORMAT, "%s: merge %d: the bytes of token %u are not those of %u and %u joined", what, r, c, a, b);
            goto done;
        }
        role[c] = 2;
        uint64_t key = (uint64_t)a << 32 | b;
        size_t slot = merge_slot(t, key);
        if (t->mkey[slot] == key) { s = rl_fail(RL_EFORMAT, "%s: merge %d (%u + %u) is listed twice", what, r, a, b); goto done; }
        t->mkey[slot] = key;
        t->mrank[slot] = (uint32_t)r;
        t->merges[3 * r] = a; t->merges[3 * r + 1] = b; t->merges[3 * r + 2] = c;
    }
    for (int i = 0; i < S; i++) {
        uint32_t id = special_ids[i];
        if (id >= (uint32_t)V || role[id] || tok_len[id] == 0) {
            s = rl_fail(RL_EFORMAT, "%s: special token %d (id %u) is out of range, empty, or also a byte/merge token", what, i, id);
            goto done;
        }
        role[id] = 3;
        t->special_ids[i] = (int)id;
        t->is_special[id] = 1;
    }
    /* 256 + M + S == V and every role was set at most once, so all ids are covered. */

    /* canonical payload: the file format (docs/formats-tok.md) */
    size_t plen = 16 + 4 * 256 + 4 * (size_t)V + ((total + 3) & ~(size_t)3) + 12 * (size_t)M + 4 * (size_t)S;
    t->payload = calloc(plen, 1);
    if (!t->payload) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    unsigned char *p = t->payload;
    put32(p, (uint32_t)V); put32(p + 4, (uint32_t)M); put32(p + 8, (uint32_t)S); put32(p + 12, TOK_PRETOK_GPT2); p += 16;
    for (int b = 0; b < 256; b++, p += 4) put32(p, byte_id[b]);
    for (int i = 0; i < V; i++, p += 4) put32(p, tok_len[i]);
    memcpy(p, t->tok_bytes, total); p += (total + 3) & ~(size_t)3;
    for (int i = 0; i < 3 * M; i++, p += 4) put32(p, t->merges[i]);
    for (int i = 0; i < S; i++, p += 4) put32(p, (uint32_t)t->special_ids[i]);
    t->payload_len = plen;
    if (sodium_init() < 0) { s = rl_fail(RL_EINTERNAL, "libsodium failed to initialise"); goto done; }
    unsigned char dig[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(dig, t->payload, plen);
    for (int i = 0; i < 32; i++) sprintf(t->identity + 2 * i, "%02x", dig[i]);
done:
    free(role);
    if (s != RL_OK) { tok_free(t); return s; }
    *out = t;
    return RL_OK;
}

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    free(t->tok_off); free(t->tok_bytes); free(t->merges); free(t->special_ids); free(t->is_special);
    free(t->mkey); free(t->mrank); free(t->payload);
    free(t->cache.tab); free(t->cache.kbuf); free(t->cache.ibuf);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* ---- files ----------------------------------------------------------------- */

rl_status tok_load(tok_tokenizer **out, const char *path) {
    *out = NULL;
    rl_mapped_file m;
    RL_TRY(rl_file_map(&m, path, TOK_MAGIC, TOK_VERSION, TOK_VERSION, "tokenizer"));
    rl_cursor c = rl_cursor_make(m.payload, m.info.payload_bytes);
    uint32_t V = rl_cursor_u32(&c), M = rl_cursor_u32(&c), S = rl_cursor_u32(&c), pre = rl_cursor_u32(&c);
    rl_status s = RL_OK;
    uint32_t byte_id[256], *tok_len = NULL, *merges = NULL, *specials = NULL;
    if (c.bad || V < 256 || V > (1u << 30) || M > V || S > V || pre != TOK_PRETOK_GPT2) {
        s = rl_fail(RL_EFORMAT, "%s: tokenizer header is invalid (vocab %u, merges %u, specials %u, pre-split %u); re-create the tokenizer", path, V, M, S, pre);
        goto out;
    }
    for (int b = 0; b < 256; b++) byte_id[b] = rl_cursor_u32(&c);
    tok_len = malloc(V * sizeof *tok_len);
    merges = malloc((M ? M : 1) * 3 * sizeof *merges);
    specials = malloc((S ? S : 1) * sizeof *specials);
    if (!tok_len || !merges || !specials) { s = rl_fail(RL_ENOMEM, "out of memory loading %s", path); goto out; }
    uint64_t total = 0;
    for (uint32_t i = 0; i < V; i++) { tok_len[i] = rl_cursor_u32(&c); total += tok_len[i]; }
    const unsigned char *bytes = c.bad || total > c.left ? NULL : rl_cursor_take(&c, (size_t)total);
    if (bytes) rl_cursor_take(&c, (size_t)(((total + 3) & ~3ull) - total));
    for (uint32_t i = 0; i < 3 * M; i++) merges[i] = rl_cursor_u32(&c);
    for (uint32_t i = 0; i < S; i++) specials[i] = rl_cursor_u32(&c);
    if (!bytes || c.bad || c.left != 0) {
        s = rl_fail(RL_EFORMAT, "%s: tokenizer payload has the wrong size for vocab %u / merges %u; re-create the tokenizer", path, V, M);
        goto out;
    }
    s = tok_build(out, (int)V, byte_id, tok_len, bytes, (int)M, merges, (int)S, specials, path);
out:
    free(tok_len); free(merges); free(specials);
    rl_file_unmap(&m);
    return s;
}

rl_status tok_save(const tok_tokenizer *t, const char *path) {
    rl_writer *w;
    RL_TRY(rl_writer_open(&w, path, TOK_MAGIC, TOK_VERSION, 0));
    rl_status s = rl_writer_write(w, t->payload, t->payload_len);
    if (s != RL_OK) { rl_writer_abort(w); return s; }
    return rl_writer_commit(w);
}

/* ---- queries --------------------------------------------------------------- */

int tok_vocab_size(const tok_tokenizer *t) { return t->V; }
int tok_num_merges(const tok_tokenizer *t) { return t->M; }
void tok_identity(const tok_tokenizer *t, char out[65]) { memcpy(out, t->identity, 65); }
int tok_merge(const tok_tokenizer *t, int rank, int *left, int *right) {
    if (rank < 0 || rank >= t->M) return -1;
    *left = (int)t->merges[3 * rank];
    *right = (int)t->merges[3 * rank + 1];
    return (int)t->merges[3 * rank + 2];
}
int tok_is_special(const tok_tokenizer *t, int id) { return id >= 0 && id < t->V && t->is_special[id]; }

int tok_special(const tok_tokenizer *t, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < t->S; i++) {
        int id = t->special_ids[i];
        if (t->tok_off[id + 1] - t->tok_off[id] == n && !memcmp(t->tok_bytes + t->tok_off[id], name, n)) return id;
    }
    return -1;
}

const unsigned char *tok_token_bytes(const tok_tokenizer *t, int id, int *len) {
    if (id < 0 || id >= t->V) { *len = 0; return NULL; }
    *len = (int)(t->tok_off[id + 1] - t->tok_off[id]);
    return t->tok_bytes + t->tok_off[id];
}

rl_status tok_decode(const tok_tokenizer *t, const int *ids, int n, char **out, size_t *out_len) {
    *out = NULL; *out_len = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->V)
            return rl_fail(RL_EINVAL, "token id %d (at position %d) is outside this tokenizer's vocabulary [0, %d)", ids[i], i, t->V);
        total += t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
    }
    char *buf = malloc(total + 1);
    if (!buf) return rl_fail(RL_ENOMEM, "out of memory decoding %d tokens", n);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        uint32_t a = t->tok_off[ids[i]], b = t->tok_off[ids[i] + 1];
        memcpy(buf + o, t->tok_bytes + a, b - a);
        o += b - a;
    }
    buf[o] = 0;
    *out = buf; *out_len = o;
    return RL_OK;
}

/* ---- encode ---------------------------------------------------------------- */

/* Scratch for BPE of one piece: a linked list of symbols and a min-heap of
 * candidate merges keyed (rank, position), with lazy deletion. */
typedef struct {
    uint32_t *id;        /* (cap) symbol ids */
    int *next, *prev;    /* (cap) linked list, -1 = none */
    uint64_t *heap;      /* (3*cap) rank << 32 | position: n-1 initial pairs + 2 per merge */
    size_t cap;
} bpe_scratch;

static int scratch_fit(bpe_scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t c = s->cap ? s->cap : 64;
    while (c < n) c *= 2;
    free(s->id); free(s->next); free(s->prev); free(s->heap);
    s->id = malloc(c * sizeof *s->id); s->next = malloc(c * sizeof *s->next);
    s->prev = malloc(c * sizeof *s->prev); s->heap = malloc(3 * c * sizeof *s->heap);
    s->cap = (s->id && s->next && s->prev && s->heap) ? c : 0;
    return s->cap ? 0 : -1;
}

static void scratch_free(bpe_scratch *s) { free(s->id); free(s->next); free(s->prev); free(s->heap); memset(s, 0, sizeof *s); }

static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        size_t m = (l + 1 < *n && h[l + 1] < h[l]) ? l + 1 : l;
        if (h[m] >= v) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = v;
    return top;
}

/* BPE of piece p[0..n) (n >= 1): writes ids to out (room for n), returns count.
 * Repeatedly applies the lowest-rank merge, leftmost first: the same result as
 * GPT-2's "merge every occurrence of the best pair" loop, because a merge can
 * only enable merges of higher rank than itself. */
static int bpe_piece(const tok_tokenizer *t, const unsigned char *p, int n, int *out, bpe_scratch *s) {
    uint32_t *id = s->id;
    int *next = s->next, *prev = s->prev;
    uint64_t *heap = s->heap;
    size_t hn = 0;
    for (int i = 0; i < n; i++) { id[i] = t->byte_id[p[i]]; next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    for (int i = 0; i + 1 < n; i++) {
        long r = merge_rank(t, id[i], id[i + 1]);
        if (r >= 0) heap_push(heap, &hn, (uint64_t)r << 32 | (uint32_t)i);
    }
    while (hn) {
        uint64_t e = heap_pop(heap, &hn);
        uint32_t r = (uint32_t)(e >> 32);
        int i = (int)(uint32_t)e, j = next[i];
        /* stale if i was absorbed (prev/next rewired) or its pair changed */
        if (id[i] == UINT32_MAX || j < 0 || t->merges[3 * r] != id[i] || t->merges[3 * r + 1] != id[j]) continue;
        id[i] = t->merges[3 * r + 2];
        id[j] = UINT32_MAX;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        if (prev[i] >= 0) {
            long r2 = merge_rank(t, id[prev[i]], id[i]);
            if (r2 >= 0) heap_push(heap, &hn, (uint64_t)r2 << 32 | (uint32_t)prev[i]);
        }
        if (next[i] >= 0) {
            long r2 = merge_rank(t, id[i], id[next[i]]);
            if (r2 >= 0) heap_push(heap, &hn, (uint64_t)r2 << 32 | (uint32_t)i);
        }
    }
    int k = 0;
    for (int i = 0; i >= 0; i = next[i]) out[k++] = (int)id[i];
    return k;
}

#define CACHE_CAP (1u << 17)
#define CACHE_MAX_PIECE 128
#define CACHE_MAX_KBYTES (8u << 20)

static void cache_clear(tok_cache *c) {
    if (c->tab) memset(c->tab, 0, c->cap * sizeof *c->tab);
    c->count = 0; c->klen = 0; c->ilen = 0;
}

static const tok_cache_ent *cache_find(const tok_cache *c, const unsigned char *p, size_t n, uint64_t h) {
    size_t mask = c->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const tok_cache_ent *e = &c->tab[i];
        if (!e->klen) return NULL;
        if (e->h == h && e->klen == n && !memcmp(c->kbuf + e->koff, p, n)) return e;
    }
}

static void cache_put(tok_cache *c, const unsigned char *p, size_t n, uint64_t h, const int *ids, int k) {
    if (c->count + 1 > c->cap / 2 || c->klen + n > CACHE_MAX_KBYTES || c->ilen + (size_t)k > CACHE_MAX_KBYTES) cache_clear(c);
    if (!c->kbuf) {
        c->kcap = CACHE_MAX_KBYTES; c->icap = CACHE_MAX_KBYTES;
        c->kbuf = malloc(c->kcap); c->ibuf = malloc(c->icap * sizeof *c->ibuf);
        if (!c->kbuf || !c->ibuf) { free(c->kbuf); free(c->ibuf); c->kbuf = NULL; c->ibuf = NULL; return; }
    }
    size_t mask = c->cap - 1, i = h & mask;
    while (c->tab[i].klen) i = (i + 1) & mask;
    tok_cache_ent *e = &c->tab[i];
    memcpy(c->kbuf + c->klen, p, n);
    memcpy(c->ibuf + c->ilen, ids, (size_t)k * sizeof *ids);
    e->h = h; e->koff = (uint32_t)c->klen; e->klen = (uint32_t)n; e->ioff = (uint32_t)c->ilen; e->n = (uint32_t)k;
    c->klen += n; c->ilen += (size_t)k; c->count++;
}

/* Encodes text without special tokens into out (room for len ids); returns count or -1 (ENOMEM). */
static long encode_ordinary(const tok_tokenizer *t, tok_cache *cache, bpe_scratch *s, const unsigned char *p, size_t len, int *out) {
    long k = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t n = tok_pretok_next(p + pos, len - pos);
        const unsigned char *q = p + pos;
        pos += n;
        if (n == 1) { out[k++] = (int)t->byte_id[q[0]]; continue; }
        uint64_t h = 0;
        if (cache && n <= CACHE_MAX_PIECE) {
            h = tok_hash_bytes(q, n);
            const tok_cache_ent *e = cache_find(cache, q, n, h);
            if (e) { memcpy(out + k, cache->ibuf + e->ioff, e->n * sizeof *out); k += e->n; continue; }
        }
        if (n > (size_t)INT32_MAX / 2 || scratch_fit(s, n) != 0) return -1;
        int m = bpe_piece(t, q, (int)n, out + k, s);
        if (cache && n <= CACHE_MAX_PIECE) cache_put(cache, q, n, h, out + k, m);
        k += m;
    }
    return k;
}

rl_status tok_encode(const tok_tokenizer *t, const char *text, size_t len, int allow_special, int **ids, int *n) {
    const unsigned char *p = (const unsigned char *)text;
    if ((size_t)*n + len + 1 > (size_t)INT32_MAX) return rl_fail(RL_EINVAL, "text of %zu bytes is too long to encode in one call", len);
    int *buf = realloc(*ids, ((size_t)*n + len + 1) * sizeof *buf);
    if (!buf) return rl_fail(RL_ENOMEM, "out of memory encoding %zu bytes", len);
    *ids = buf;
    tok_tokenizer *mt = (tok_tokenizer *)t; /* the cache is the only mutable part, under the lock */
    tok_cache *cache = NULL;
    if (pthread_mutex_trylock(&mt->lock) == 0) {
        cache = &mt->cache;
        if (!cache->tab) {
            cache->tab = calloc(CACHE_CAP, sizeof *cache->tab);
            cache->cap = cache->tab ? CACHE_CAP : 0;
        }
        if (!cache->tab) { pthread_mutex_unlock(&mt->lock); cache = NULL; }
    }
    bpe_scratch s = {0};
    long k = *n;
    size_t pos = 0;
    rl_status st = RL_OK;
    /* next occurrence of each special at or after pos (len = none); searched
     * again only once pos passes it, so the scan stays linear */
    size_t *sp_next = NULL;
    if (allow_special && t->S > 0) {
        sp_next = malloc((size_t)t->S * sizeof *sp_next);
        if (!sp_next) st = rl_fail(RL_ENOMEM, "out of memory");
        else for (int i = 0; i < t->S; i++) sp_next[i] = SIZE_MAX;
    }
    while (st == RL_OK && pos < len) {
        size_t seg_end = len, sp_len = 0;
        int sp_id = -1;
        for (int i = 0; sp_next && i < t->S; i++) {
            int id = t->special_ids[i];
            size_t sl = t->tok_off[id + 1] - t->tok_off[id];
            if (sp_next[i] == SIZE_MAX || (sp_next[i] < len && sp_next[i] < pos)) {
                const unsigned char *f = memmem(p + pos, len - pos, t->tok_bytes + t->tok_off[id], sl);
                sp_next[i] = f ? (size_t)(f - p) : len;
            }
            if (sp_next[i] < len && (sp_next[i] < seg_end || (sp_next[i] == seg_end && sl > sp_len))) {
                seg_end = sp_next[i]; sp_len = sl; sp_id = id;
            }
        }
        long m = encode_ordinary(t, cache, &s, p + pos, seg_end - pos, buf + k);
        if (m < 0) { st = rl_fail(RL_ENOMEM, "out of memory encoding a %zu-byte piece", seg_end - pos); break; }
        k += m;
        pos = seg_end;
        if (sp_id >= 0) { buf[k++] = sp_id; pos += sp_len; }
    }
    free(sp_next);
    if (cache) pthread_mutex_unlock(&mt->lock);
    scratch_free(&s);
    *n = (int)k;
    int *shrunk = realloc(buf, ((size_t)k + 1) * sizeof *buf);
    if (shrunk) *ids = shrunk;
    return st;
}
