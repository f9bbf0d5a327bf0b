/* sampler.c — see sampler.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sampler.h"
#include "../base/rng.h"

void sampler_opts_default(sampler_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_tokens = 256;
    o->temperature = 1.0f;
    o->top_k = 0;
    o->top_p = 1.0f;
    for (int i = 0; i < 4; i++) o->stop_tokens[i] = -1;
    o->seed = 1;
}

void sampler_result_free(sampler_result *r) {
    free(r->tokens); free(r->logp); free(r->len); free(r->stopped);
    memset(r, 0, sizeof *r);
}

typedef struct { float p; int id; } cand;
static int cand_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->p, y = ((const cand *)b)->p;
    if (x != y) return x > y ? -1 : 1;
    return ((const cand *)a)->id - ((const cand *)b)->id; /* ties: lower id first, deterministic */
}

/* Picks the next token from one row of logits (V). scratch: V cands. */
static int pick(const float *logits, int V, const sampler_opts *o, rl_rng *rng, cand *c) {
    if (o->temperature <= 0.0f) {
        int best = 0;
        for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        return best;
    }
    float mx = logits[0];
    for (int v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++) {
        c[v].p = expf((logits[v] - mx) / o->temperature);
        c[v].id = v;
        sum += c[v].p;
    }
    int n = V;
    int k = o->top_k > 0 && o->top_k < V ? o->top_k : 0;
    if (k || o->top_p < 1.0f) {
        qsort(c, V, sizeof *c, cand_desc);
        if (k) n = k;
        if (o->top_p < 1.0f) {
            double tot = 0;
            for (int i = 0; i < n; i++) tot += c[i].p;
            double acc = 0;
            int keep = n;
            for (int i = 0; i < n; i++) {
                acc += c[i].p;
                if (acc >= o->top_p * tot) { keep = i + 1; break; }
            }
            n = keep;
        }
        sum = 0;
        for (int i = 0; i < n; i++) sum += c[i].p;
    }
    double u = rl_rng_uniform_d(rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id;
}

rl_status sampler_generate(gpt_model *m, const int *const *prompts, const int *plen, int n, const sampler_opts *o,
                           sampler_result *res, sampler_stream_fn cb, void *ctx) {
    memset(res, 0, sizeof *res);
    int V = m->cfg.V, maxT = m->cfg.maxT;
    if (n < 1) return rl_fail(RL_EINVAL, "sampler: no rows");
    if (o->max_tokens < 1) return rl_fail(RL_EINVAL, "sampler: max_tokens must be >= 1");
    if (o->temperature < 0 || o->top_p <= 0 || o->top_p > 1 || o->top_k < 0)
        return rl_fail(RL_EINVAL, "sampler: temperature >= 0, 0 < top_p <= 1, top_k >= 0 required");
    int maxp = 0;
    for (int r = 0; r < n; r++) {
        if (plen[r] < 1) return rl_fail(RL_EINVAL, "sampler: prompt %d is empty (start it with a BOS/separator token)", r);
        if (plen[r] >= maxT) return rl_fail(RL_EINVAL, "sampler: prompt %d has %d tokens; the context is %d", r, plen[r], maxT);
        for (int i = 0; i < plen[r]; i++)
            if (prompts[r][i] < 0 || prompts[r][i] >= V) return rl_fail(RL_EINVAL, "sampler: prompt %d token %d outside [0,%d)", r, prompts[r][i], V);
        if (plen[r] > maxp) maxp = plen[r];
    }
    RL_TRY(gpt_cache_plan(m, n));
    res->n = n;
    res->cap = o->max_tokens;
    res->tokens = calloc((size_t)n * o->max_tokens, sizeof(int));
    res->logp = calloc((size_t)n * o->max_tokens, sizeof(float));
    res->len = calloc(n, sizeof(int));
    res->stopped = calloc(n, sizeof(int));
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    float *lse = malloc(sizeof(float) * n), *lp = malloc(sizeof(float) * n);
    int *cur = malloc(sizeof(int) * n), *next = malloc(sizeof(int) * n), *done = calloc(n, sizeof(int));
    cand *scratch = malloc(sizeof(cand) * V);
    rl_rng *rngs = malloc(sizeof(rl_rng) * n);
    if (!res->tokens || !res->logp || !res->len || !res->stopped || !logits || !lse || !lp || !cur || !next || !done ||
        !scratch || !rngs) {
        free(logits); free(lse); free(lp); free(cur); free(next); free(done); free(scratch); free(rngs);
        sampler_result_free(res);
        return rl_fail(RL_ENOMEM, "sampler: out of memory for %d rows", n);
    }
    for (int r = 0; r < n; r++) { rl_rng_seed_stream(&rngs[r], o->seed, (uint64_t)r); cur[r] = prompts[r][0]; }
    int active = n;
    for (int pos = 0; pos < maxT && active > 0; pos++) {
        gpt_cache_step(m, cur, n, pos, logits);
        /* which rows sample at this position: their prompt ends here or earlier */
        for (int r = 0; r < n; r++) {
            next[r] = -1;
            if (done[r]) { next[r] = cur[r]; continue; }
            if (pos + 1 < plen[r]) { next[r] = prompts[r][pos + 1]; continue; }
            next[r] = pick(logits + (size_t)r * V, V, o, &rngs[r], scratch);
        }
        /* log-probs of the chosen tokens with the training op */
        m->ops->logsoftmax_forward(lse, lp, logits, next, n, V);
        for (int r = 0; r < n; r++) {
            if (done[r] || pos + 1 < plen[r]) continue;
            int i = res->len[r]++;
            res->tokens[(size_t)r * res->cap + i] = next[r];
            res->logp[(size_t)r * res->cap + i] = lp[r];
            if (cb) cb(ctx, r, next[r]);
            int stop = 0;
            for (int s = 0; s < 4; s++) if (o->stop_tokens[s] >= 0 && next[r] == o->stop_tokens[s]) stop = 1;
            if (stop) res->stopped[r] = 1;
            if (stop || res->len[r] == res->cap || pos + 2 > maxT) { done[r] = 1; active--; }
        }
        int *t = cur; cur = next; next = t;
    }
    free(logits); free(lse); free(lp); free(cur); free(next); free(done); free(scratch); free(rngs);
    return RL_OK;
}
