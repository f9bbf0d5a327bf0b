/* feedback.c — records, sets and expansions (see feedback.h). Import and
 * export live in feedback_io.c. */
#include "feedback.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- names -------------------------------------------------------------- */

static const char *kind_names[FB_NKINDS] = {"demo", "thumbs", "pair", "ranking", "rating"};
static const char *choice_names[4] = {"a", "b", "tie", "both_bad"};

const char *fb_kind_name(fb_kind k) { return (unsigned)k < FB_NKINDS ? kind_names[k] : "?"; }
int fb_kind_parse(const char *s, fb_kind *k) {
    for (int i = 0; s && i < FB_NKINDS; i++) if (!strcmp(s, kind_names[i])) { *k = (fb_kind)i; return 0; }
    return -1;
}
const char *fb_choice_name(fb_choice c) { return (unsigned)c < 4 ? choice_names[c] : "?"; }
int fb_choice_parse(const char *s, fb_choice *c) {
    for (int i = 0; s && i < 4; i++) if (!strcmp(s, choice_names[i])) { *c = (fb_choice)i; return 0; }
    return -1;
}

fb_record fb_record_init(fb_kind kind) {
    fb_record r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.time_ms = FB_TIME_UNKNOWN;
    r.weight = 1.0;
    r.choice = FB_CHOICE_A;
    return r;
}

/* ---- validation ----------------------------------------------------------- */

/* Years 1..9999, the range the ISO-8601 text form can write. */
#define FB_TIME_MIN (-62135596800000LL)
#define FB_TIME_MAX (253402300799999LL)

static rl_status check_kvs(const fb_kv *kv, int32_t n, const char *what) {
    if (n < 0 || (n > 0 && !kv)) return rl_fail(RL_EINVAL, "%s: bad count %d", what, (int)n);
    for (int32_t i = 0; i < n; i++) {
        if (!kv[i].key || !kv[i].key[0]) return rl_fail(RL_EINVAL, "%s: key %d is empty", what, (int)i);
        if (!kv[i].value) return rl_fail(RL_EINVAL, "%s: '%s' has no value", what, kv[i].key);
        for (int32_t j = 0; j < i; j++)
            if (!strcmp(kv[i].key, kv[j].key)) return rl_fail(RL_EINVAL, "%s: key '%s' appears twice", what, kv[i].key);
    }
    return RL_OK;
}

rl_status fb_record_validate(const fb_record *r) {
    if (!r) return rl_fail(RL_EINVAL, "record is NULL");
    if ((unsigned)r->kind >= FB_NKINDS) return rl_fail(RL_EINVAL, "kind %d is not a record kind", (int)r->kind);
    if (!r->annotator || !r->annotator[0])
        return rl_fail(RL_EINVAL, "annotator is missing: every record must say who judged (invent a stable id such as \"<source>:unknown\" if the source has none)");
    if (!r->source || !r->source[0]) return rl_fail(RL_EINVAL, "source is missing");
    RL_TRY(check_kvs(r->groups, r->n_groups, "groups"));
    RL_TRY(check_kvs(r->meta, r->n_meta, "meta"));
    if (!isfinite(r->weight) || r->weight < 0) return rl_fail(RL_EINVAL, "weight %g must be finite and >= 0", r->weight);
    if (r->time_ms != FB_TIME_UNKNOWN && (r->time_ms < FB_TIME_MIN || r->time_ms > FB_TIME_MAX))
        return rl_fail(RL_EINVAL, "time %lld ms is outside years 1..9999", (long long)r->time_ms);
    if (r->n_prompt < 1 || !r->prompt) return rl_fail(RL_EINVAL, "prompt is empty: a record needs at least one user turn");
    for (int32_t i = 0; i < r->n_prompt; i++) {
        if (!r->prompt[i].text) return rl_fail(RL_EINVAL, "prompt turn %d has no text", (int)i);
        if ((unsigned)r->prompt[i].role > CHAT_ROLE_SYSTEM) return rl_fail(RL_EINVAL, "prompt turn %d has a bad role", (int)i);
    }
    if (r->prompt[r->n_prompt - 1].role != CHAT_ROLE_USER)
        return rl_fail(RL_EINVAL, "the prompt's last turn is a %s turn; it must be a user turn (the response answers it)",
                       chat_role_name(r->prompt[r->n_prompt - 1].role));
    int want = r->kind == FB_PAIR ? 2 : r->kind == FB_RANKING ? -1 : 1;
    if (want > 0 && r->n_responses != want)
        return rl_fail(RL_EINVAL, "a %s record has %d response(s), not %d", fb_kind_name(r->kind), want, (int)r->n_responses);
    if (want < 0 && r->n_responses < 2)
        return rl_fail(RL_EINVAL, "a ranking needs at least 2 responses, not %d", (int)r->n_responses);
    if (!r->responses) return rl_fail(RL_EINVAL, "responses missing");
    for (int32_t i = 0; i < r->n_responses; i++)
        if (!r->responses[i]) return rl_fail(RL_EINVAL, "response %d is NULL", (int)i);
    if (r->kind == FB_THUMBS ? (r->thumb != 1 && r->thumb != -1) : r->thumb != 0)
        return rl_fail(RL_EINVAL, "thumb is %d (thumbs records: +1 or -1; other kinds: 0)", r->thumb);
    if (r->kind == FB_PAIR ? (unsigned)r->choice > FB_CHOICE_BOTH_BAD : r->choice != FB_CHOICE_A)
        return rl_fail(RL_EINVAL, "choice %d is not valid for a %s record", (int)r->choice, fb_kind_name(r->kind));
    if (r->kind == FB_RANKING) {
        if (!r->ranks) return rl_fail(RL_EINVAL, "a ranking needs ranks");
        for (int32_t i = 0; i < r->n_responses; i++)
            if (r->ranks[i] < 0) return rl_fail(RL_EINVAL, "rank %d of response %d is negative", (int)r->ranks[i], (int)i);
    } else if (r->ranks) {
        return rl_fail(RL_EINVAL, "ranks given for a %s record", fb_kind_name(r->kind));
    }
    if (r->kind == FB_RATING) {
        if (!isfinite(r->scale_lo) || !isfinite(r->scale_hi) || !(r->scale_lo < r->scale_hi))
            return rl_fail(RL_EINVAL, "rating scale [%g, %g] must be finite with lo < hi", r->scale_lo, r->scale_hi);
        if (!isfinite(r->rating) || r->rating < r->scale_lo || r->rating > r->scale_hi)
            return rl_fail(RL_EINVAL, "rating %g is outside its scale [%g, %g]", r->rating, r->scale_lo, r->scale_hi);
    } else if (r->rating != 0 || r->scale_lo != 0 || r->scale_hi != 0) {
        return rl_fail(RL_EINVAL, "rating given for a %s record", fb_kind_name(r->kind));
    }
    return RL_OK;
}

/* ---- equality --------------------------------------------------------------- */

static int str_eq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return !strcmp(a, b);
}

static int kvs_eq(const fb_kv *a, int32_t na, const fb_kv *b, int32_t nb) {
    if (na != nb) return 0;
    for (int32_t i = 0; i < na; i++)
        if (!str_eq(a[i].key, b[i].key) || !str_eq(a[i].value, b[i].value)) return 0;
    return 1;
}

int fb_record_equal(const fb_record *a, const fb_record *b, char *why, size_t n) {
    const char *f = NULL;
    if (a->kind != b->kind) f = "kind";
    else if (!str_eq(a->id, b->id)) f = "id";
    else if (!str_eq(a->source, b->source)) f = "source";
    else if (!str_eq(a->annotator, b->annotator)) f = "annotator";
    else if (!kvs_eq(a->groups, a->n_groups, b->groups, b->n_groups)) f = "groups";
    else if (a->time_ms != b->time_ms) f = "time";
    else if (a->weight != b->weight) f = "weight";
    else if (a->n_prompt != b->n_prompt) f = "prompt (turn count)";
    else if (a->n_responses != b->n_responses) f = "responses (count)";
    else if (a->thumb != b->thumb) f = "thumb";
    else if (a->choice != b->choice) f = "choice";
    else if (a->rating != b->rating || a->scale_lo != b->scale_lo || a->scale_hi != b->scale_hi) f = "rating";
    else if (!str_eq(a->comment, b->comment)) f = "comment";
    else if (!kvs_eq(a->meta, a->n_meta, b->meta, b->n_meta)) f = "meta";
    else if (!a->ranks != !b->ranks) f = "ranks";
    if (!f) {
        for (int32_t i = 0; i < a->n_prompt && !f; i++)
            if (a->prompt[i].role != b->prompt[i].role || !str_eq(a->prompt[i].text, b->prompt[i].text)) f = "prompt (turn)";
        for (int32_t i = 0; i < a->n_responses && !f; i++)
            if (!str_eq(a->responses[i], b->responses[i])) f = "responses";
        for (int32_t i = 0; a->ranks && i < a->n_responses && !f; i++)
            if (a->ranks[i] != b->ranks[i]) f = "ranks";
    }
    if (f && why && n) snprintf(why, n, "%s", f);
    return f == NULL;
}

/* ---- the pool --------------------------------------------------------------- */

/* A list of blocks; each allocation is bump-allocated from the newest block,
 * so earlier pointers never move. Blocks grow up to 1 MiB; a larger request
 * gets a block of its own. */
typedef struct fb_block {
    struct fb_block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
} fb_block;

struct fb_pool {
    fb_block *head;
    size_t next_cap;
};

static void *pool_alloc(fb_set *s, size_t n) {
    if (!s->pool) {
        s->pool = calloc(1, sizeof *s->pool);
        if (!s->pool) return NULL;
        s->pool->next_cap = 64 * 1024;
    }
    fb_pool *p = s->pool;
    n = (n + 15) & ~(size_t)15;
    if (!n) n = 16;
    if (!p->head || p->head->cap - p->head->used < n) {
        size_t cap = p->next_cap;
        if (cap < n) cap = n;
        fb_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = p->head;
        b->cap = cap;
        b->used = 0;
        p->head = b;
        if (p->next_cap < (1u << 20)) p->next_cap *= 2;
    }
    void *r = p->head->data + p->head->used;
    p->head->used += n;
    return r;
}

const char *fb_set_strdup(fb_set *s, const char *str) {
    if (!str) return NULL;
    size_t n = strlen(str) + 1;
    char *d = pool_alloc(s, n);
    if (d) memcpy(d, str, n);
    return d;
}

void fb_set_init(fb_set *s) { memset(s, 0, sizeof *s); }

void fb_set_free(fb_set *s) {
    if (s->pool) {
        fb_block *b = s->pool->head;
        while (b) { fb_block *nx = b->next; free(b); b = nx; }
        free(s->pool);
    }
    free(s->records);
    memset(s, 0, sizeof *s);
}

void fb_set_truncate(fb_set *s, int64_t n) {
    if (n >= 0 && n < s->n) s->n = n;
}

static const fb_kv *copy_kvs(fb_set *s, const fb_kv *kv, int32_t n, int *oom) {
    if (n == 0) return NULL;
    fb_kv *d = pool_alloc(s, (size_t)n * sizeof *d);
    if (!d) { *oom = 1; return NULL; }
    for (int32_t i = 0; i < n; i++) {
        d[i].key = fb_set_strdup(s, kv[i].key);
        d[i].value = fb_set_strdup(s, kv[i].value);
        if (!d[i].key || !d[i].value) *oom = 1;
    }
    return d;
}

rl_status fb_set_add(fb_set *s, const fb_record *r) {
    RL_TRY(fb_record_validate(r));
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 256;
        fb_record *nr = realloc(s->records, (size_t)cap * sizeof *nr);
        if (!nr) return rl_fail(RL_ENOMEM, "out of memory growing a feedback set to %lld records", (long long)cap);
        s->records = nr;
        s->cap = cap;
    }
    fb_record d = *r;
    int oom = 0;
#define DUP(field) do { if (r->field) { d.field = fb_set_strdup(s, r->field); if (!d.field) oom = 1; } } while (0)
    DUP(id);
    DUP(source);
    DUP(annotator);
    DUP(comment);
#undef DUP
    d.groups = copy_kvs(s, r->groups, r->n_groups, &oom);
    d.meta = copy_kvs(s, r->meta, r->n_meta, &oom);
    chat_turn *t = pool_alloc(s, (size_t)r->n_prompt * sizeof *t);
    if (!t) oom = 1;
    for (int32_t i = 0; t && i < r->n_prompt; i++) {
        t[i].role = r->prompt[i].role;
        t[i].text = fb_set_strdup(s, r->prompt[i].text);
        if (!t[i].text) oom = 1;
    }
    d.prompt = t;
    const char **resp = pool_alloc(s, (size_t)r->n_responses * sizeof *resp);
    if (!resp) oom = 1;
    for (int32_t i = 0; resp && i < r->n_responses; i++) {
        resp[i] = fb_set_strdup(s, r->responses[i]);
        if (!resp[i]) oom = 1;
    }
    d.responses = resp;
    if (r->ranks) {
        int32_t *rk = pool_alloc(s, (size_t)r->n_responses * sizeof *rk);
        if (rk) memcpy(rk, r->ranks, (size_t)r->n_responses * sizeof *rk);
        else oom = 1;
        d.ranks = rk;
    }
    if (oom) return rl_fail(RL_ENOMEM, "out of memory copying a feedback record");
    s->records[s->n++] = d;
    return RL_OK;
}

rl_status fb_set_weight(fb_set *s, int64_t i, double w) {
    if (i < 0 || i >= s->n) return rl_fail(RL_EINVAL, "record %lld out of range (set has %lld)", (long long)i, (long long)s->n);
    if (!isfinite(w) || w < 0) return rl_fail(RL_EINVAL, "weight %g must be finite and >= 0", w);
    s->records[i].weight = w;
    return RL_OK;
}

/* ---- prompt ids ------------------------------------------------------------- */

uint64_t fb_prompt_hash(const chat_turn *t, int32_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (int32_t i = 0; i < n; i++) {
        /* Role byte, then the text and a 0xff separator (never in UTF-8), so
         * ("ab","c") and ("a","bc") hash differently. */
        h ^= (uint64_t)(unsigned)t[i].role + 1; h *= 1099511628211ULL;
        for (const unsigned char *p = (const unsigned char *)t[i].text; *p; p++) { h ^= *p; h *= 1099511628211ULL; }
        h ^= 0xff; h *= 1099511628211ULL;
    }
    return h;
}

static int turns_eq(const fb_record *a, const fb_record *b) {
    if (a->n_prompt != b->n_prompt) return 0;
    for (int32_t i = 0; i < a->n_prompt; i++)
        if (a->prompt[i].role != b->prompt[i].role || strcmp(a->prompt[i].text, b->prompt[i].text)) return 0;
    return 1;
}

rl_status fb_set_prompt_ids(const fb_set *s, int32_t *ids, int32_t *n_prompts) {
    *n_prompts = 0;
    if (s->n == 0) return RL_OK;
    if (s->n > INT32_MAX / 4) return rl_fail(RL_EINVAL, "too many records for prompt ids");
    size_t cap = 16;
    while (cap < (size_t)s->n * 2) cap <<= 1;
    /* Open addressing: slot holds 1 + index of the first record with that prompt. */
    int64_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return rl_fail(RL_ENOMEM, "out of memory for prompt ids");
    int32_t next = 0;
    for (int64_t i = 0; i < s->n; i++) {
        const fb_record *r = &s->records[i];
        size_t h = (size_t)fb_prompt_hash(r->prompt, r->n_prompt) & (cap - 1);
        for (;;) {
            if (!slot[h]) { slot[h] = i + 1; ids[i] = next++; break; }
            int64_t j = slot[h] - 1;
            if (turns_eq(&s->records[j], r)) { ids[i] = ids[j]; break; }
            h = (h + 1) & (cap - 1);
        }
    }
    free(slot);
    *n_prompts = next;
    return RL_OK;
}

int fb_is_heldout(const fb_record *r, double frac, uint64_t seed) {
    uint64_t z = fb_prompt_hash(r->prompt, r->n_prompt) ^ (seed * 0x9E3779B97F4A7C15ULL);
    /* splitmix64 finaliser: FNV's low bits are weak, this spreads them. */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    return u < frac;
}

/* ---- expansions ------------------------------------------------------------- */

/* Growable array of fixed-size elements. */
typedef struct { void *p; int64_t n, cap; size_t elem; } vec;

static void *vec_push(vec *v) {
    if (v->n == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 256;
        void *np = realloc(v->p, (size_t)cap * v->elem);
        if (!np) return NULL;
        v->p = np;
        v->cap = cap;
    }
    return (char *)v->p + (size_t)(v->n++) * v->elem;
}

static rl_status ids_for(const fb_set *s, int32_t **ids) {
    *ids = malloc((size_t)(s->n ? s->n : 1) * sizeof **ids);
    if (!*ids) return rl_fail(RL_ENOMEM, "out of memory");
    int32_t np;
    rl_status st = fb_set_prompt_ids(s, *ids, &np);
    if (st != RL_OK) { free(*ids); *ids = NULL; }
    return st;
}

static rl_status finish(vec *v, void **out, int64_t *n, int32_t *ids, int oom) {
    free(ids);
    if (oom) {
        free(v->p);
        *out = NULL;
        *n = 0;
        return rl_fail(RL_ENOMEM, "out of memory expanding feedback records");
    }
    if (v->n == 0) { free(v->p); v->p = NULL; }
    *out = v->p;
    *n = v->n;
    return RL_OK;
}

rl_status fb_to_pairs(const fb_set *s, fb_pair **out, int64_t *n) {
    int32_t *ids;
    RL_TRY(ids_for(s, &ids));
    vec v = {NULL, 0, 0, sizeof(fb_pair)};
    int oom = 0;
    for (int64_t i = 0; i < s->n && !oom; i++) {
        const fb_record *r = &s->records[i];
        fb_pair base = {i, ids[i], r->prompt, r->n_prompt, NULL, NULL, 0, 0, r->weight, r->annotator};
        if (r->kind == FB_PAIR) {
            fb_pair *p = vec_push(&v);
            if (!p) { oom = 1; break; }
            *p = base;
            int b_wins = r->choice == FB_CHOICE_B;
            p->chosen = r->responses[b_wins ? 1 : 0];
            p->rejected = r->responses[b_wins ? 0 : 1];
            p->tie = r->choice == FB_CHOICE_TIE || r->choice == FB_CHOICE_BOTH_BAD;
            p->both_bad = r->choice == FB_CHOICE_BOTH_BAD;
        } else if (r->kind == FB_RANKING) {
            for (int32_t a = 0; a < r->n_responses && !oom; a++)
                for (int32_t b = a + 1; b < r->n_responses; b++) {
                    fb_pair *p = vec_push(&v);
                    if (!p) { oom = 1; break; }
                    *p = base;
                    int b_wins = r->ranks[b] < r->ranks[a];
                    p->chosen = r->responses[b_wins ? b : a];
                    p->rejected = r->responses[b_wins ? a : b];
                    p->tie = r->ranks[a] == r->ranks[b];
                }
        }
    }
    return finish(&v, (void **)out, n, ids, oom);
}

rl_status fb_to_thumbs(const fb_set *s, unsigned flags, fb_thumb **out, int64_t *n) {
    int32_t *ids;
    RL_TRY(ids_for(s, &ids));
    vec v = {NULL, 0, 0, sizeof(fb_thumb)};
    int oom = 0;
#define PUSH(resp, lab) do { fb_thumb *t = vec_push(&v); if (!t) { oom = 1; break; } \
        fb_thumb tt = {i, ids[i], r->prompt, r->n_prompt, (resp), (lab), r->weight, r->annotator}; *t = tt; } while (0)
    for (int64_t i = 0; i < s->n && !oom; i++) {
        const fb_record *r = &s->records[i];
        if (r->kind == FB_THUMBS) {
            PUSH(r->responses[0], r->thumb > 0);
        } else if (r->kind == FB_PAIR && (flags & FB_THUMBS_FROM_PAIRS)) {
            if (r->choice == FB_CHOICE_A || r->choice == FB_CHOICE_B) {
                int w = r->choice == FB_CHOICE_B;
                PUSH(r->responses[w], 1);
                PUSH(r->responses[1 - w], 0);
            } else if (r->choice == FB_CHOICE_BOTH_BAD) {
                PUSH(r->responses[0], 0);
                PUSH(r->responses[1], 0);
            }
        } else if (r->kind == FB_RATING && (flags & FB_THUMBS_FROM_RATINGS)) {
            double mid = 0.5 * (r->scale_lo + r->scale_hi);
            if (r->rating != mid) PUSH(r->responses[0], r->rating > mid);
        }
    }
#undef PUSH
    return finish(&v, (void **)out, n, ids, oom);
}

rl_status fb_to_demos(const fb_set *s, unsigned flags, fb_demo **out, int64_t *n) {
    int32_t *ids;
    RL_TRY(ids_for(s, &ids));
    vec v = {NULL, 0, 0, sizeof(fb_demo)};
    int oom = 0;
#define PUSH(resp) do { fb_demo *d = vec_push(&v); if (!d) { oom = 1; break; } \
        fb_demo dd = {i, ids[i], r->prompt, r->n_prompt, (resp), r->weight, r->annotator}; *d = dd; } while (0)
    int win = (flags & FB_DEMOS_FROM_WINNERS) != 0;
    for (int64_t i = 0; i < s->n && !oom; i++) {
        const fb_record *r = &s->records[i];
        if (r->kind == FB_DEMO) PUSH(r->responses[0]);
        else if (win && r->kind == FB_THUMBS && r->thumb > 0) PUSH(r->responses[0]);
        else if (win && r->kind == FB_PAIR && (r->choice == FB_CHOICE_A || r->choice == FB_CHOICE_B))
            PUSH(r->responses[r->choice == FB_CHOICE_B]);
        else if (win && r->kind == FB_RANKING) {
            int32_t best = r->ranks[0];
            for (int32_t k = 1; k < r->n_responses; k++) if (r->ranks[k] < best) best = r->ranks[k];
            for (int32_t k = 0; k < r->n_responses && !oom; k++) if (r->ranks[k] == best) PUSH(r->responses[k]);
        }
    }
#undef PUSH
    return finish(&v, (void **)out, n, ids, oom);
}

/* ---- tallies ------------------------------------------------------------------ */

/* A string → int64 map with open addressing; keys are not copied (they
 * point into the set or into caller-owned buffers that outlive the map). */
typedef struct {
    const char **key;
    int64_t *val;
    size_t cap, n;
} strmap;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}

static int strmap_grow(strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    const char **nk = calloc(cap, sizeof *nk);
    int64_t *nv = calloc(cap, sizeof *nv);
    if (!nk || !nv) { free(nk); free(nv); return -1; }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->key[i]) continue;
        size_t h = (size_t)str_hash(m->key[i]) & (cap - 1);
        while (nk[h]) h = (h + 1) & (cap - 1);
        nk[h] = m->key[i];
        nv[h] = m->val[i];
    }
    free(m->key);
    free(m->val);
    m->key = nk;
    m->val = nv;
    m->cap = cap;
    return 0;
}

/* Slot of key, inserting it with value `def` if absent. -1 on OOM. */
static int64_t strmap_slot(strmap *m, const char *key, int64_t def, int *inserted) {
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    size_t h = (size_t)str_hash(key) & (m->cap - 1);
    while (m->key[h]) {
        if (!strcmp(m->key[h], key)) { *inserted = 0; return (int64_t)h; }
        h = (h + 1) & (m->cap - 1);
    }
    m->key[h] = key;
    m->val[h] = def;
    m->n++;
    *inserted = 1;
    return (int64_t)h;
}

static void strmap_free(strmap *m) { free(m->key); free(m->val); memset(m, 0, sizeof *m); }

static int tally_cmp(const void *a, const void *b) {
    const fb_tally_row *x = a, *y = b;
    if (x->records != y->records) return x->records > y->records ? -1 : 1;
    return strcmp(x->key, y->key);
}

rl_status fb_tally(const fb_set *s, fb_tally_by by, fb_tally_row **rows_out, int64_t *n_out) {
    *rows_out = NULL;
    *n_out = 0;
    if ((unsigned)by > FB_TALLY_GROUP) return rl_fail(RL_EINVAL, "unknown tally %d", (int)by);
    /* Keys: record i contributes keys_of(i); group keys are "key=value"
     * strings built once into `tmp` (freed at the end). */
    strmap keys = {0}, seen = {0};
    vec rows = {NULL, 0, 0, sizeof(fb_tally_row)};
    vec tmp = {NULL, 0, 0, sizeof(char *)};
    int oom = 0;
    for (int64_t i = 0; i < s->n && !oom; i++) {
        const fb_record *r = &s->records[i];
        int nk = by == FB_TALLY_GROUP ? r->n_groups : 1;
        for (int g = 0; g < nk && !oom; g++) {
            const char *key;
            if (by == FB_TALLY_KIND) key = fb_kind_name(r->kind);
            else if (by == FB_TALLY_SOURCE) key = r->source;
            else if (by == FB_TALLY_ANNOTATOR) key = r->annotator;
            else {
                size_t len = strlen(r->groups[g].key) + strlen(r->groups[g].value) + 2;
                char *k = malloc(len);
                char **slot = k ? vec_push(&tmp) : NULL;
                if (!slot) { free(k); oom = 1; break; }
                *slot = k;
                snprintf(k, len, "%s=%s", r->groups[g].key, r->groups[g].value);
                key = k;
            }
            int ins;
            int64_t h = strmap_slot(&keys, key, rows.n, &ins);
            if (h < 0) { oom = 1; break; }
            if (ins) {
                fb_tally_row *row = vec_push(&rows);
                if (!row) { oom = 1; break; }
                row->key = key;
                row->records = row->annotators = 0;
                row->weight = 0;
            }
            fb_tally_row *row = (fb_tally_row *)rows.p + keys.val[h];
            row->records++;
            row->weight += r->weight;
            /* Distinct annotators per key: "key\x1f" "annotator" in a set. */
            size_t len = strlen(key) + strlen(r->annotator) + 2;
            char *pk = malloc(len);
            if (!pk) { oom = 1; break; }
            snprintf(pk, len, "%s\x1f%s", key, r->annotator);
            int64_t h2 = strmap_slot(&seen, pk, 0, &ins);
            if (h2 < 0) { free(pk); oom = 1; break; }
            if (ins) {
                char **slot = vec_push(&tmp);
                if (!slot) { free(pk); oom = 1; break; } /* the map is not read again */
                *slot = pk;
                row->annotators++;
            } else {
                free(pk);
            }
        }
    }
    rl_status st = RL_OK;
    if (!oom && rows.n > 0) {
        /* One block: rows, then their key strings. */
        size_t bytes = (size_t)rows.n * sizeof(fb_tally_row);
        for (int64_t i = 0; i < rows.n; i++) bytes += strlen(((fb_tally_row *)rows.p)[i].key) + 1;
        fb_tally_row *out = malloc(bytes);
        if (!out) oom = 1;
        else {
            char *str = (char *)(out + rows.n);
            for (int64_t i = 0; i < rows.n; i++) {
                out[i] = ((fb_tally_row *)rows.p)[i];
                size_t l = strlen(out[i].key) + 1;
                memcpy(str, out[i].key, l);
                out[i].key = str;
                str += l;
            }
            qsort(out, (size_t)rows.n, sizeof *out, tally_cmp);
            *rows_out = out;
            *n_out = rows.n;
        }
    }
    if (oom) st = rl_fail(RL_ENOMEM, "out of memory counting feedback records");
    for (int64_t i = 0; i < tmp.n; i++) free(((char **)tmp.p)[i]);
    free(tmp.p);
    free(rows.p);
    strmap_free(&keys);
    strmap_free(&seen);
    return st;
}
