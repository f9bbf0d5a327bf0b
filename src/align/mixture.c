/* mixture.c — see mixture.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mixture.h"
#include "../base/rng.h"

align_mix_opts align_mix_defaults(void) {
    align_mix_opts o = {2, 50, 5, 1};
    return o;
}

void align_mix_result_free(align_mix_result *r) {
    if (!r) return;
    free(r->assign); free(r->size); free(r->cluster_ll);
    memset(r, 0, sizeof *r);
}

/* Per-annotator comparison lists and weights, shared by every restart. */
typedef struct {
    const align_mix_model *m;
    int n_cmp, n_annot, K;
    const int *annot;
    double *w;        /* (n_cmp) */
    int *off, *cmp;   /* CSR: comparisons of annotator h are cmp[off[h] .. off[h+1]) */
    double *wsum;     /* (n_annot) Σ w of the annotator's comparisons */
    int n_active;     /* annotators with at least one comparison of positive weight */
    double *ll;       /* (K, n_cmp) */
    double *score;    /* (n_annot, K) Σ w ll */
    double *fw;       /* (n_cmp) fit weights */
} mix_ctx;

static rl_status ctx_init(mix_ctx *x, const align_mix_model *m, const int *annot, const double *w, int n_annot, int K) {
    memset(x, 0, sizeof *x);
    if (!m || !m->fit || !m->loglik || !m->reset) return rl_fail(RL_EINVAL, "mixture: model has no fit/loglik/reset");
    if (m->n_cmp < 1) return rl_fail(RL_EINVAL, "mixture: no comparisons (pairs or rankings with distinct ranks) to cluster");
    if (n_annot < 1) return rl_fail(RL_EINVAL, "mixture: no annotators");
    if (K < 1 || K > m->K) return rl_fail(RL_EINVAL, "mixture: K = %d must be in 1..%d", K, m->K);
    int n = m->n_cmp;
    for (int c = 0; c < n; c++) {
        if (annot[c] < 0 || annot[c] >= n_annot)
            return rl_fail(RL_EINVAL, "mixture: comparison %d has annotator %d, outside 0..%d", c, annot[c], n_annot - 1);
        if (w && (!isfinite(w[c]) || w[c] < 0)) return rl_fail(RL_EINVAL, "mixture: comparison %d has weight %g (need finite, >= 0)", c, w[c]);
    }
    x->m = m; x->n_cmp = n; x->n_annot = n_annot; x->K = K; x->annot = annot;
    x->w = rl_xmalloc(sizeof(double) * (size_t)n);
    for (int c = 0; c < n; c++) x->w[c] = w ? w[c] : 1.0;
    x->off = rl_xcalloc((size_t)n_annot + 1, sizeof(int));
    x->cmp = rl_xmalloc(sizeof(int) * (size_t)n);
    x->wsum = rl_xcalloc((size_t)n_annot, sizeof(double));
    for (int c = 0; c < n; c++) { x->off[annot[c] + 1]++; x->wsum[annot[c]] += x->w[c]; }
    for (int h = 0; h < n_annot; h++) x->off[h + 1] += x->off[h];
    int *fill = rl_xmalloc(sizeof(int) * (size_t)n_annot);
    memcpy(fill, x->off, sizeof(int) * (size_t)n_annot);
    for (int c = 0; c < n; c++) x->cmp[fill[annot[c]]++] = c;
    free(fill);
    for (int h = 0; h < n_annot; h++) x->n_active += x->wsum[h] > 0;
    if (x->n_active < K)
        return rl_fail(RL_EINVAL, "mixture: K = %d clusters but only %d annotator(s) have comparisons with positive weight", K, x->n_active);
    x->ll = rl_xmalloc(sizeof(double) * (size_t)K * n);
    x->score = rl_xmalloc(sizeof(double) * (size_t)n_annot * K);
    x->fw = rl_xmalloc(sizeof(double) * (size_t)n);
    return RL_OK;
}

static void ctx_free(mix_ctx *x) {
    free(x->w); free(x->off); free(x->cmp); free(x->wsum); free(x->ll); free(x->score); free(x->fw);
    memset(x, 0, sizeof *x);
}

/* score[h*K + k] = Σ_{c ∈ D_h} w_c ll_k(c) for models k < nk. */
static void ctx_scores(mix_ctx *x, int nk) {
    for (int k = 0; k < nk; k++) x->m->loglik(x->m->ctx, k, x->ll + (size_t)k * x->n_cmp);
    for (int h = 0; h < x->n_annot; h++)
        for (int k = 0; k < nk; k++) {
            const double *l = x->ll + (size_t)k * x->n_cmp;
            double s = 0;
            for (int i = x->off[h]; i < x->off[h + 1]; i++) s += x->w[x->cmp[i]] * l[x->cmp[i]];
            x->score[(size_t)h * x->K + k] = s;
        }
}

/* Fits model k on the annotators with sel[h] == k (sel NULL: only annotator `one`). */
static rl_status fit_on(mix_ctx *x, int k, const int *sel, int one) {
    for (int c = 0; c < x->n_cmp; c++) {
        int h = x->annot[c];
        x->fw[c] = (sel ? sel[h] == k : h == one) ? x->w[c] : 0.0;
    }
    return x->m->fit(x->m->ctx, k, x->fw);
}

/* k-means++ over annotators: model 0 on a uniform annotator, then each next
 * model on an annotator drawn ∝ (mean NLL under the best model so far)². */
static rl_status init_models(mix_ctx *x, rl_rng *rng) {
    int *seeds = rl_xmalloc(sizeof(int) * (size_t)x->K);
    double *p = rl_xmalloc(sizeof(double) * (size_t)x->n_annot);
    rl_status st = RL_OK;
    for (int k = 0; k < x->K && st == RL_OK; k++) {
        int pick = -1;
        if (k == 0) {
            int r = (int)rl_rng_below(rng, (uint32_t)x->n_active);
            for (int h = 0; h < x->n_annot; h++)
                if (x->wsum[h] > 0 && r-- == 0) { pick = h; break; }
        } else {
            ctx_scores(x, k);
            double tot = 0;
            for (int h = 0; h < x->n_annot; h++) {
                p[h] = 0;
                if (x->wsum[h] <= 0) continue;
                int used = 0;
                for (int j = 0; j < k; j++) used |= seeds[j] == h;
                if (used) continue;
                double best = -INFINITY;
                for (int j = 0; j < k; j++) {
                    double s = x->score[(size_t)h * x->K + j] / x->wsum[h];
                    if (s > best) best = s;
                }
                p[h] = best * best + 1e-12; /* best <= 0: its square is the squared mean NLL */
                tot += p[h];
            }
            double u = rl_rng_uniform_d(rng) * tot;
            for (int h = 0; h < x->n_annot; h++) {
                if (p[h] <= 0) continue;
                pick = h;
                if ((u -= p[h]) < 0) break;
            }
        }
        seeds[k] = pick;
        st = fit_on(x, k, NULL, pick);
    }
    free(seeds); free(p);
    return st;
}

/* Hard E-step from the current scores; re-seeds empty clusters. Returns the
 * number of re-seeds. */
static int estep(mix_ctx *x, int *assign, int *size) {
    int K = x->K, reseeded = 0;
    memset(size, 0, sizeof(int) * (size_t)K);
    for (int h = 0; h < x->n_annot; h++) {
        if (x->wsum[h] <= 0) { assign[h] = -1; continue; }
        const double *s = x->score + (size_t)h * K;
        int best = 0;
        for (int k = 1; k < K; k++) if (s[k] > s[best]) best = k;
        assign[h] = best;
        size[best]++;
    }
    for (int k = 0; k < K; k++) {
        if (size[k]) continue;
        /* the annotator worst explained by its own cluster, from a cluster that keeps one */
        int worst = -1;
        double wv = INFINITY;
        for (int h = 0; h < x->n_annot; h++) {
            if (assign[h] < 0 || size[assign[h]] < 2) continue;
            double v = x->score[(size_t)h * K + assign[h]] / x->wsum[h];
            if (v < wv) { wv = v; worst = h; }
        }
        if (worst < 0) break; /* cannot happen: n_active >= K */
        size[assign[worst]]--;
        assign[worst] = k;
        size[k] = 1;
        reseeded++;
    }
    return reseeded;
}

static void cluster_totals(mix_ctx *x, const int *assign, double *cll, double *total, double *wtot) {
    memset(cll, 0, sizeof(double) * (size_t)x->K);
    *wtot = 0;
    for (int h = 0; h < x->n_annot; h++) {
        if (assign[h] < 0) continue;
        cll[assign[h]] += x->score[(size_t)h * x->K + assign[h]];
        *wtot += x->wsum[h];
    }
    *total = 0;
    for (int k = 0; k < x->K; k++) *total += cll[k];
}

rl_status align_mixture_refit(const align_mix_model *m, const int *annot, const double *w, int n_annot,
                              int K, const int *assign) {
    if (K < 1 || K > m->K) return rl_fail(RL_EINVAL, "mixture: K = %d must be in 1..%d", K, m->K);
    double *fw = rl_xmalloc(sizeof(double) * (size_t)(m->n_cmp > 0 ? m->n_cmp : 1));
    rl_status st = RL_OK;
    for (int k = 0; k < K && st == RL_OK; k++) {
        for (int c = 0; c < m->n_cmp; c++) {
            int h = annot[c];
            fw[c] = (h >= 0 && h < n_annot && assign[h] == k) ? (w ? w[c] : 1.0) : 0.0;
        }
        st = m->fit(m->ctx, k, fw);
    }
    free(fw);
    return st;
}

rl_status align_mixture_fit(const align_mix_model *m, const int *annot, const double *w,
                            int n_annot, const align_mix_opts *o, align_mix_result *res) {
    memset(res, 0, sizeof *res);
    align_mix_opts d = o ? *o : align_mix_defaults();
    if (d.max_iter < 1) d.max_iter = 1;
    if (d.restarts < 1) d.restarts = 1;
    mix_ctx x;
    rl_status st = ctx_init(&x, m, annot, w, n_annot, d.K);
    if (st != RL_OK) { ctx_free(&x); return st; }
    int K = d.K;
    res->n_annot = n_annot; res->K = K;
    res->assign = rl_xmalloc(sizeof(int) * (size_t)n_annot);
    res->size = rl_xcalloc((size_t)K, sizeof(int));
    res->cluster_ll = rl_xcalloc((size_t)K, sizeof(double));
    res->loglik = -INFINITY;
    int *assign = rl_xmalloc(sizeof(int) * (size_t)n_annot), *prev = rl_xmalloc(sizeof(int) * (size_t)n_annot);
    int *size = rl_xmalloc(sizeof(int) * (size_t)K);
    double *cll = rl_xmalloc(sizeof(double) * (size_t)K);
    rl_rng rng;
    rl_rng_seed(&rng, d.seed);
    for (int r = 0; r < d.restarts && st == RL_OK; r++) {
        for (int k = 0; k < K; k++) m->reset(m->ctx, k);
        if ((st = init_models(&x, &rng)) != RL_OK) break;
        for (int h = 0; h < n_annot; h++) prev[h] = -2;
        int it = 0, conv = 0;
        for (; it < d.max_iter; it++) {
            ctx_scores(&x, K);
            res->reseeded += estep(&x, assign, size);
            if (!memcmp(assign, prev, sizeof(int) * (size_t)n_annot)) { conv = 1; break; }
            memcpy(prev, assign, sizeof(int) * (size_t)n_annot);
            for (int k = 0; k < K && st == RL_OK; k++) st = fit_on(&x, k, assign, -1);
            if (st != RL_OK) break;
        }
        if (st != RL_OK) break;
        /* the log-likelihood of the final assignment under the final models */
        ctx_scores(&x, K);
        double tot, wtot;
        cluster_totals(&x, assign, cll, &tot, &wtot);
        if (tot > res->loglik) {
            res->loglik = tot; res->weight = wtot;
            res->iterations = conv ? it : d.max_iter;
            res->converged = conv; res->restart = r;
            memcpy(res->assign, assign, sizeof(int) * (size_t)n_annot);
            memcpy(res->size, size, sizeof(int) * (size_t)K);
            memcpy(res->cluster_ll, cll, sizeof(double) * (size_t)K);
        }
    }
    if (st == RL_OK && d.restarts > 1) st = align_mixture_refit(m, annot, x.w, n_annot, K, res->assign);
    free(assign); free(prev); free(size); free(cll);
    ctx_free(&x);
    return st;
}

/* ---- clustering comparisons ------------------------------------------------- */

static double comb2(double v) { return v * (v - 1) / 2; }

double align_adjusted_rand(int n, const int *a, int ka, const int *b, int kb) {
    if (ka < 1 || kb < 1) return NAN;
    double *t = rl_xcalloc((size_t)ka * kb, sizeof(double));
    double *ra = rl_xcalloc((size_t)ka, sizeof(double)), *cb = rl_xcalloc((size_t)kb, sizeof(double));
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (a[i] < 0 || b[i] < 0 || a[i] >= ka || b[i] >= kb) continue;
        t[(size_t)a[i] * kb + b[i]]++; ra[a[i]]++; cb[b[i]]++; m++;
    }
    double idx = 0, sa = 0, sb = 0;
    for (int i = 0; i < ka * kb; i++) idx += comb2(t[i]);
    for (int i = 0; i < ka; i++) sa += comb2(ra[i]);
    for (int j = 0; j < kb; j++) sb += comb2(cb[j]);
    free(t); free(ra); free(cb);
    if (m < 2) return NAN;
    double expect = sa * sb / comb2(m), mx = 0.5 * (sa + sb);
    if (mx == expect) return 1.0; /* both trivial (one cluster each, or all singletons): identical partitions */
    return (idx - expect) / (mx - expect);
}

static void permute_best(int k, const double *t, int *perm, int pos, int *used, double cur, double *best, int *best_perm) {
    if (pos == k) {
        if (cur > *best) { *best = cur; memcpy(best_perm, perm, sizeof(int) * (size_t)k); }
        return;
    }
    for (int i = 0; i < k; i++) {
        if (used[i]) continue;
        used[i] = 1; perm[pos] = i;
        permute_best(k, t, perm, pos + 1, used, cur + t[(size_t)i * k + pos], best, best_perm);
        used[i] = 0;
    }
}

double align_match_agreement(int n, const int *a, int ka, const int *b, int kb, int *map_out) {
    if (ka < 1 || kb < 1) return NAN;
    int k = ka > kb ? ka : kb;
    double *t = rl_xcalloc((size_t)k * k, sizeof(double)); /* t[i*k + j]: a = i, b = j */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (a[i] < 0 || b[i] < 0 || a[i] >= ka || b[i] >= kb) continue;
        t[(size_t)a[i] * k + b[i]]++; m++;
    }
    int *perm = rl_xmalloc(sizeof(int) * (size_t)k), *bp = rl_xmalloc(sizeof(int) * (size_t)k);
    double best = -1;
    if (k <= 8) {
        int *used = rl_xcalloc((size_t)k, sizeof(int));
        permute_best(k, t, perm, 0, used, 0, &best, bp);
        free(used);
    } else { /* greedy: repeatedly take the largest remaining cell */
        int *ua = rl_xcalloc((size_t)k, sizeof(int)), *ub = rl_xcalloc((size_t)k, sizeof(int));
        best = 0;
        for (int step = 0; step < k; step++) {
            int bi = -1, bj = -1;
            for (int i = 0; i < k; i++) for (int j = 0; j < k; j++)
                if (!ua[i] && !ub[j] && (bi < 0 || t[(size_t)i * k + j] > t[(size_t)bi * k + bj])) { bi = i; bj = j; }
            ua[bi] = ub[bj] = 1; bp[bj] = bi; best += t[(size_t)bi * k + bj];
        }
        free(ua); free(ub);
    }
    if (map_out) for (int j = 0; j < kb; j++) map_out[j] = bp[j] < ka ? bp[j] : -1;
    free(t); free(perm); free(bp);
    return m ? best / m : NAN;
}

rl_status align_mixture_seeds(const align_mix_model *m, const int *annot, const double *w, int n_annot,
                              const align_mix_opts *o, int n_seeds, align_mix_result *res, align_mix_stability *stab) {
    if (n_seeds < 1) return rl_fail(RL_EINVAL, "mixture: need at least one seed");
    align_mix_opts d = o ? *o : align_mix_defaults();
    for (int s = 0; s < n_seeds; s++) memset(&res[s], 0, sizeof res[s]);
    int best = 0;
    for (int s = 0; s < n_seeds; s++) {
        align_mix_opts ds = d;
        ds.seed = d.seed + (uint64_t)s;
        RL_TRY(align_mixture_fit(m, annot, w, n_annot, &ds, &res[s]));
        if (res[s].loglik > res[best].loglik) best = s;
    }
    if (n_seeds > 1) RL_TRY(align_mixture_refit(m, annot, w, n_annot, d.K, res[best].assign));
    if (stab) {
        stab->n_seeds = n_seeds; stab->best = best;
        double sa = 0, mina = 1, sg = 0, ming = 1;
        int np = 0;
        for (int s = 0; s < n_seeds; s++) {
            for (int t = s + 1; t < n_seeds; t++) {
                double ari = align_adjusted_rand(n_annot, res[s].assign, d.K, res[t].assign, d.K);
                sa += ari; np++;
                if (ari < mina) mina = ari;
            }
            double g = align_match_agreement(n_annot, res[best].assign, d.K, res[s].assign, d.K, NULL);
            sg += g;
            if (g < ming) ming = g;
        }
        stab->ari_mean = np ? sa / np : 1.0;
        stab->ari_min = np ? mina : 1.0;
        stab->agree_mean = sg / n_seeds;
        stab->agree_min = ming;
    }
    return RL_OK;
}
