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

void sampler_ws_free(sampler_ws *w) {
    sampler_result_free(&w->res);
    free(w->logits); free(w->lse); free(w->lp); free(w->cur); free(w->next); free(w->done);
    free(w->scratch); free(w->rngs);
    memset(w, 0, sizeof *w);
}

rl_status sampler_ws_init(sampler_ws *w, gpt_model *m, int max_n, int max_tokens) {
    memset(w, 0, sizeof *w);
    if (max_n < 1 || max_tokens < 1) return rl_fail(RL_EINVAL, "sampler: need >= 1 row and >= 1 token");
    RL_TRY(gpt_cache_plan(m, max_n));
    int V = m->cfg.V;
    w->max_n = max_n;
    w->max_tokens = max_tokens;
    w->V = V;
    w->res.cap = max_tokens;
    w->res.tokens = calloc((size_t)max_n * max_tokens, sizeof(int));
    w->res.logp = calloc((size_t)max_n * max_tokens, sizeof(float));
    w->res.len = calloc(max_n, sizeof(int));
    w->res.stopped = calloc(max_n, sizeof(int));
    w->logits = malloc(sizeof(float) * (size_t)max_n * V);
    w->lse = malloc(sizeof(float) * max_n);
    w->lp = malloc(sizeof(float) * max_n);
    w->cur = malloc(sizeof(int) * max_n);
    w->next = malloc(sizeof(int) * max_n);
    w->done = malloc(sizeof(int) * max_n);
    w->scratch = malloc(sizeof(cand) * V);
    w->rngs = malloc(sizeof(rl_rng) * max_n);
    if (!w->res.tokens || !w->res.logp || !w->res.len || !w->res.stopped || !w->logits || !w->lse || !w->lp ||
        !w->cur || !w->next || !w->done || !w->scratch || !w->rngs) {
        sampler_ws_free(w);
        return rl_fail(RL_ENOMEM, "sampler: out of memory for %d rows", max_n);
    }
    return RL_OK;
}

rl_status sampler_generate_ws(gpt_model *m, sampler_ws *w, const int *const *prompts, const int *plen, int n,
                              const sampler_opts *o, sampler_stream_fn cb, void *ctx) {
    int V = m->cfg.V, maxT = m->cfg.maxT;
    if (n < 1) return rl_fail(RL_EINVAL, "sampler: no rows");
    if (n > w->max_n || V != w->V) return rl_fail(RL_EINVAL, "sampler: %d rows but the workspace holds %d", n, w->max_n);
    if (o->max_tokens < 1 || o->max_tokens > w->max_tokens)
        return rl_fail(RL_EINVAL, "sampler: max_tokens must be in [1, %d]", w->max_tokens);
    if (o->temperature < 0 || o->top_p <= 0 || o->top_p > 1 || o->top_k < 0)
        return rl_fail(RL_EINVAL, "sampler: temperature >= 0, 0 < top_p <= 1, top_k >= 0 required");
    for (int r = 0; r < n; r++) {
        if (plen[r] < 1) return rl_fail(RL_EINVAL, "sampler: prompt %d is empty (start it with a BOS/separator token)", r);
        if (plen[r] >= maxT) return rl_fail(RL_EINVAL, "sampler: prompt %d has %d tokens; the context is %d", r, plen[r], maxT);
        for (int i = 0; i < plen[r]; i++)
            if (prompts[r][i] < 0 || prompts[r][i] >= V) return rl_fail(RL_EINVAL, "sampler: prompt %d token %d outside [0,%d)", r, prompts[r][i], V);
    }
    RL_TRY(gpt_cache_plan(m, n));
    sampler_result *res = &w->res;
    int cap = w->max_tokens;
    res->n = n;
    memset(res->len, 0, sizeof(int) * n);
    memset(res->stopped, 0, sizeof(int) * n);
    memset(w->done, 0, sizeof(int) * n);
    float *logits = w->logits, *lp = w->lp;
    int *cur = w->cur, *next = w->next, *done = w->done;
    cand *scratch = w->scratch;
    rl_rng *rngs = w->rngs;
    for (int r = 0; r < n; r++) { rl_rng_seed_stream(&rngs[r], o->seed, (uint64_t)r); cur[r] = prompts[r][0]; }
    int active = n, cancel = 0;
    for (int pos = 0; pos < maxT && active > 0 && !cancel; pos++) {
        gpt_cache_step(m, cur, n, pos, logits);
        /* which rows sample at this position: their prompt ends here or earlier */
        for (int r = 0; r < n; r++) {
            next[r] = -1;
            if (done[r]) { next[r] = cur[r]; continue; }
            if (pos + 1 < plen[r]) { next[r] = prompts[r][pos + 1]; continue; }
            next[r] = pick(logits + (size_t)r * V, V, o, &rngs[r], scratch);
        }
        /* log-probs of the chosen tokens with the training op */
        m->ops->logsoftmax_forward(w->lse, lp, logits, next, n, V);
        for (int r = 0; r < n; r++) {
            if (done[r] || pos + 1 < plen[r]) continue;
            int i = res->len[r]++;
            res->tokens[(size_t)r * cap + i] = next[r];
            res->logp[(size_t)r * cap + i] = lp[r];
            if (cb && cb(ctx, r, next[r])) cancel = 1;
            int stop = 0;
            for (int s = 0; s < 4; s++) if (o->stop_tokens[s] >= 0 && next[r] == o->stop_tokens[s]) stop = 1;
            if (stop) res->stopped[r] = 1;
            if (stop || res->len[r] == o->max_tokens || pos + 2 > maxT) { done[r] = 1; active--; }
        }
        int *t = cur; cur = next; next = t;
    }
    return RL_OK;
}

rl_status sampler_generate(gpt_model *m, const int *const *prompts, const int *plen, int n, const sampler_opts *o,
                           sampler_result *res, sampler_stream_fn cb, void *ctx) {
    memset(res, 0, sizeof *res);
    if (n < 1) return rl_fail(RL_EINVAL, "sampler: no rows");
    if (o->max_tokens < 1) return rl_fail(RL_EINVAL, "sampler: max_tokens must be >= 1");
    sampler_ws w;
    RL_TRY(sampler_ws_init(&w, m, n, o->max_tokens));
    rl_status st = sampler_generate_ws(m, &w, prompts, plen, n, o, cb, ctx);
    if (st != RL_OK) { sampler_ws_free(&w); return st; }
    *res = w.res; /* hand the result arrays over */
    memset(&w.res, 0, sizeof w.res);
    sampler_ws_free(&w);
    return RL_OK;
}
