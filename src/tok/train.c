/* train.c — BPE training with incremental pair counts.
 *
 * 1. Pre-split every text with the GPT-2 regex and count the distinct pieces
 *    ("words"); each word is a list of symbol ids, initially its bytes.
 * 2. Count every adjacent pair, weighted by word frequency, and remember for
 *    each pair the words it occurs in. A max-heap orders pairs by (count desc,
 *    left id asc, right id asc); entries are not updated in place: a popped
 *    entry whose count is stale is pushed back with the current count.
 * 3. Each merge visits only the words listed for the winning pair, subtracts
 *    their old pairs, merges, adds their new pairs; pairs that gained count
 *    (those containing the new token) are pushed again.
 * The cost of a merge is proportional to the words that contain the pair, so
 * 4,096 merges on 1 MB take well under a second (bench/tokenizer.sh). */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"
#include "../base/log.h"

typedef struct {
    int64_t count;
    uint32_t a, b;                    /* the pair */
    int pushed_at;                    /* merge step at which it was last re-pushed (dedupe) */
    int *where; int nwhere, cwhere;   /* words containing the pair (may hold stale / repeated entries) */
} pair_info;

typedef struct {
    uint64_t *key;      /* (cap) a << 32 | b, EMPTY = all ones */
    int *idx;           /* (cap) index into info */
    size_t cap, n;
    pair_info *info;    /* (n) */
    size_t icap;
} pair_table;

#define PEMPTY UINT64_MAX

static size_t pt_slot(const pair_table *pt, uint64_t key) {
    size_t mask = pt->cap - 1, i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & mask;
    while (pt->key[i] != PEMPTY && pt->key[i] != key) i = (i + 1) & mask;
    return i;
}

static int pt_grow(pair_table *pt) {
    size_t ncap = pt->cap ? pt->cap * 2 : 1 << 16;
    uint64_t *k = malloc(ncap * sizeof *k);
    int *ix = malloc(ncap * sizeof *ix);
    if (!k || !ix) { free(k); free(ix); return -1; }
    memset(k, 0xff, ncap * sizeof *k);
    pair_table nt = {k, ix, ncap, 0, NULL, 0};
    for (size_t i = 0; i < pt->cap; i++) {
        if (pt->key[i] == PEMPTY) continue;
        size_t j = pt_slot(&nt, pt->key[i]);
        k[j] = pt->key[i]; ix[j] = pt->idx[i];
    }
    free(pt->key); free(pt->idx);
    pt->key = k; pt->idx = ix; pt->cap = ncap;
    return 0;
}

/* Index of pair (a, b), created with count 0 if new; -1 on ENOMEM. */
static int pt_get(pair_table *pt, uint32_t a, uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b;
    size_t s = pt_slot(pt, key);
    if (pt->key[s] == key) return pt->idx[s];
    if ((pt->n + 1) * 2 > pt->cap) {
        if (pt_grow(pt) != 0) return -1;
        s = pt_slot(pt, key);
    }
    if (pt->n == pt->icap) {
        size_t nc = pt->icap ? pt->icap * 2 : 1 << 15;
        pair_info *ni = realloc(pt->info, nc * sizeof *ni);
        if (!ni) return -1;
        pt->info = ni; pt->icap = nc;
    }
    memset(&pt->info[pt->n], 0, sizeof pt->info[pt->n]);
    pt->info[pt->n].a = a;
    pt->info[pt->n].b = b;
    pt->info[pt->n].pushed_at = -1;
    pt->key[s] = key;
    pt->idx[s] = (int)pt->n;
    return (int)pt->n++;
}

static int add_where(pair_info *pi, int w) {
    if (pi->nwhere && pi->where[pi->nwhere - 1] == w) return 0;
    if (pi->nwhere == pi->cwhere) {
        int nc = pi->cwhere ? pi->cwhere * 2 : 4;
        int *nw = realloc(pi->where, (size_t)nc * sizeof *nw);
        if (!nw) return -1;
        pi->where = nw; pi->cwhere = nc;
    }
    pi->where[pi->nwhere++] = w;
    return 0;
}

/* max-heap of (count, a, b) */
typedef struct { int64_t count; uint32_t a, b; } hent;
typedef struct { hent *e; size_t n, cap; } pheap;

static int hent_before(const hent *x, const hent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static int ph_push(pheap *h, int64_t count, uint32_t a, uint32_t b) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 1 << 16;
        hent *ne = realloc(h->e, nc * sizeof *ne);
        if (!ne) return -1;
        h->e = ne; h->cap = nc;
    }
    hent v = {count, a, b};
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hent_before(&v, &h->e[p])) break;
        h->e[i] = h->e[p];
        i = p;
    }
    h->e[i] = v;
    return 0;
}

static hent ph_pop(pheap *h) {
    hent top = h->e[0], v = h->e[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n) break;
        size_t m = (l + 1 < h->n && hent_before(&h->e[l + 1], &h->e[l])) ? l + 1 : l;
        if (!hent_before(&h->e[m], &v)) break;
        h->e[i] = h->e[m];
        i = m;
    }
    if (h->n) h->e[i] = v;
    return top;
}

rl_status tok_train(tok_tokenizer **out, const char *const *texts, const size_t *lens, int ntexts, const tok_train_opts *opts) {
    *out = NULL;
    int S = TOK_NCHAT_SPECIALS;
    if (opts->vocab_size < 256 + S)
        return rl_fail(RL_EINVAL, "vocab size %d is too small: it must hold the 256 bytes and %d special tokens (at least %d)", opts->vocab_size, S, 256 + S);
    int want = opts->vocab_size - 256 - S;
    int64_t min_freq = opts->min_frequency > 0 ? opts->min_frequency : 1;
    rl_status st = RL_OK;

    /* 1. distinct pieces and their counts */
    tok_bmap words;
    tok_bmap_init(&words);
    int64_t *freq = NULL; size_t nw = 0, cw = 0;
    for (int d = 0; d < ntexts && st == RL_OK; d++) {
        const unsigned char *p = (const unsigned char *)texts[d];
        size_t pos = 0;
        while (pos < lens[d]) {
            size_t n = tok_pretok_next(p + pos, lens[d] - pos);
            int ins;
            long slot = tok_bmap_insert(&words, p + pos, n, (int)nw, &ins);
            pos += n;
            if (slot < 0) { st = rl_fail(RL_ENOMEM, "out of memory counting words"); break; }
            if (ins) {
                if (nw == cw) {
                    cw = cw ? cw * 2 : 4096;
                    int64_t *nf = realloc(freq, cw * sizeof *nf);
                    if (!nf) { st = rl_fail(RL_ENOMEM, "out of memory counting words"); break; }
                    freq = nf;
                }
                freq[nw++] = 0;
            }
            freq[words.val[slot]]++;
        }
    }
    /* symbols of each word, in the order the words were first seen (deterministic) */
    uint32_t *wstart = NULL, *wlen = NULL, *sym = NULL;
    int *stamp = NULL;
    pair_table pt = {0};
    pheap heap = {0};
    uint32_t *merges = NULL, *tok_len = NULL, *new_pairs = NULL;
    unsigned char *tbytes = NULL;
    int M = 0;
    if (st != RL_OK) goto done;
    wstart = malloc((nw + 1) * sizeof *wstart);
    wlen = malloc((nw + 1) * sizeof *wlen);
    stamp = malloc((nw + 1) * sizeof *stamp);
    sym = malloc((words.klen_total + 1) * sizeof *sym);
    merges = malloc(((size_t)want + 1) * 3 * sizeof *merges);
    if (!wstart || !wlen || !stamp || !sym || !merges) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < words.cap; i++) {
        if (!words.h[i]) continue;
        int w = words.val[i];
        wstart[w] = words.koff[i];  /* keys were appended in first-seen order, so offsets are too */
        wlen[w] = words.klen[i];
        for (uint32_t j = 0; j < words.klen[i]; j++) sym[words.koff[i] + j] = words.kbuf[words.koff[i] + j];
        stamp[w] = -1;
    }

    /* 2. initial pair counts */
    if (pt_grow(&pt) != 0) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    for (size_t w = 0; w < nw && st == RL_OK; w++) {
        uint32_t *s = sym + wstart[w];
        for (uint32_t j = 0; j + 1 < wlen[w]; j++) {
            int pi = pt_get(&pt, s[j], s[j + 1]);
            if (pi < 0 || add_where(&pt.info[pi], (int)w) != 0) { st = rl_fail(RL_ENOMEM, "out of memory counting pairs"); break; }
            pt.info[pi].count += freq[w];
        }
    }
    for (size_t i = 0; i < pt.cap && st == RL_OK; i++) {
        if (pt.key[i] == PEMPTY) continue;
        if (ph_push(&heap, pt.info[pt.idx[i]].count, (uint32_t)(pt.key[i] >> 32), (uint32_t)pt.key[i]) != 0)
            st = rl_fail(RL_ENOMEM, "out of memory");
    }
    size_t cap_np = 1024, n_np = 0;
    new_pairs = malloc(cap_np * sizeof *new_pairs);
    if (!new_pairs) st = rl_fail(RL_ENOMEM, "out of memory");

    /* 3. merges */
    rl_progress prog;
    if (opts->verbose) rl_progress_start(&prog, "bpe merges", want);
    while (st == RL_OK && M < want && heap.n) {
        hent top = ph_pop(&heap);
        uint64_t key = (uint64_t)top.a << 32 | top.b;
        size_t slot = pt_slot(&pt, key);
        int pi = pt.idx[slot];
        int64_t cur = pt.info[pi].count;
        if (cur != top.count) {
            if (cur > 0 && ph_push(&heap, cur, top.a, top.b) != 0) st = rl_fail(RL_ENOMEM, "out of memory");
            continue;
        }
        if (cur < min_freq) break;
        uint32_t a = top.a, b = top.b, c = 256u + (uint32_t)M;
        merges[3 * M] = a; merges[3 * M + 1] = b; merges[3 * M + 2] = c;
        /* the where-list of (a, b) is never appended to during this merge
         * (new pairs all contain c), but pt.info may move: copy it out */
        int *where = pt.info[pi].where, nwhere = pt.info[pi].nwhere;
        pt.info[pi].where = NULL; pt.info[pi].nwhere = pt.info[pi].cwhere = 0;
        n_np = 0;
        for (int k = 0; k < nwhere && st == RL_OK; k++) {
            int w = where[k];
            if (stamp[w] == M) continue;
            stamp[w] = M;
            uint32_t *s = sym + wstart[w], L = wlen[w];
            int has = 0;
            for (uint32_t j = 0; j + 1 < L; j++) if (s[j] == a && s[j + 1] == b) { has = 1; break; }
            if (!has) continue;
            int64_t f = freq[w];
            for (uint32_t j = 0; j + 1 < L; j++) pt.info[pt_get(&pt, s[j], s[j + 1])].count -= f; /* all exist */
            uint32_t o = 0;
            for (uint32_t j = 0; j < L;) {
                if (j + 1 < L && s[j] == a && s[j + 1] == b) { s[o++] = c; j += 2; }
                else s[o++] = s[j++];
            }
            wlen[w] = L = o;
            for (uint32_t j = 0; j + 1 < L; j++) {
                int q = pt_get(&pt, s[j], s[j + 1]);
                if (q < 0) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
                pt.info[q].count += f;
                if (s[j] == c || s[j + 1] == c) {
                    if (add_where(&pt.info[q], w) != 0) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
                    if (n_np == cap_np) {
                        uint32_t *nn = realloc(new_pairs, 2 * cap_np * sizeof *nn);
                        if (!nn) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
                        new_pairs = nn; cap_np *= 2;
                    }
                    new_pairs[n_np++] = (uint32_t)q;
                }
            }
        }
        free(where);
        pt.info[pi].count = 0;
        /* push each gained pair once, with its final count */
        for (size_t k = 0; k < n_np && st == RL_OK; k++) {
            pair_info *q = &pt.info[new_pairs[k]];
            if (q->pushed_at == M || q->count <= 0) continue;
            q->pushed_at = M;
            if (ph_push(&heap, q->count, q->a, q->b) != 0) st = rl_fail(RL_ENOMEM, "out of memory");
        }
        M++;
        if (opts->verbose) rl_progress_update(&prog, M, "%zu words", nw);
    }
    if (opts->verbose) rl_progress_end(&prog);
    if (st != RL_OK) goto done;

    /* 4. the vocabulary: bytes, merge results, specials */
    int V = 256 + M + S;
    tok_len = malloc((size_t)V * sizeof *tok_len);
    size_t total = 256;
    if (!tok_len) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    for (int i = 0; i < 256; i++) tok_len[i] = 1;
    for (int r = 0; r < M; r++) { tok_len[256 + r] = tok_len[merges[3 * r]] + tok_len[merges[3 * r + 1]]; total += tok_len[256 + r]; }
    for (int i = 0; i < S; i++) { tok_len[256 + M + i] = (uint32_t)strlen(tok_chat_specials[i]); total += tok_len[256 + M + i]; }
    tbytes = malloc(total);
    uint32_t *off = malloc(((size_t)V + 1) * sizeof *off);
    if (!tbytes || !off) { free(off); st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    off[0] = 0;
    for (int i = 0; i < V; i++) off[i + 1] = off[i] + tok_len[i];
    for (int i = 0; i < 256; i++) tbytes[i] = (unsigned char)i;
    for (int r = 0; r < M; r++) {
        uint32_t x = merges[3 * r], y = merges[3 * r + 1];
        memcpy(tbytes + off[256 + r], tbytes + off[x], tok_len[x]);
        memcpy(tbytes + off[256 + r] + tok_len[x], tbytes + off[y], tok_len[y]);
    }
    uint32_t byte_id[256], specials[TOK_NCHAT_SPECIALS];
    for (int i = 0; i < 256; i++) byte_id[i] = (uint32_t)i;
    for (int i = 0; i < S; i++) { specials[i] = (uint32_t)(256 + M + i); memcpy(tbytes + off[256 + M + i], tok_chat_specials[i], tok_len[256 + M + i]); }
    free(off);
    st = tok_build(out, V, byte_id, tok_len, tbytes, M, merges, S, specials, "trained tokenizer");
done:
    tok_bmap_free(&words);
    free(freq); free(wstart); free(wlen); free(stamp); free(sym); free(merges); free(tok_len); free(tbytes); free(new_pairs);
    for (size_t i = 0; i < pt.n; i++) free(pt.info[i].where);
    free(pt.key); free(pt.idx); free(pt.info); free(heap.e);
    return st;
}
