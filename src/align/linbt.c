/* linbt.c — see linbt.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "linbt.h"

#define LBFGS_M 8

align_linbt_opts align_linbt_defaults(void) {
    align_linbt_opts o = {18, 1, 3, 1, 1e-3, 200, 1e-8, 0};
    return o;
}

rl_status align_linbt_init(align_linbt *m, int K, const align_linbt_opts *o) {
    memset(m, 0, sizeof *m);
    m->o = o ? *o : align_linbt_defaults();
    const align_linbt_opts *p = &m->o;
    if (K < 1 || K > 1024) return rl_fail(RL_EINVAL, "linbt: K = %d models must be in 1..1024", K);
    if (p->buckets_log2 < 8 || p->buckets_log2 > 24) return rl_fail(RL_EINVAL, "linbt: buckets_log2 %d must be in 8..24", p->buckets_log2);
    if (p->ngram_min < 1 || p->ngram_max > 8 || p->ngram_min > p->ngram_max)
        return rl_fail(RL_EINVAL, "linbt: n-gram range %d..%d must lie in 1..8", p->ngram_min, p->ngram_max);
    if (!(p->l2 > 0) || !isfinite(p->l2)) return rl_fail(RL_EINVAL, "linbt: l2 %g must be > 0", p->l2);
    if (p->max_iter < 1) return rl_fail(RL_EINVAL, "linbt: max_iter %d must be >= 1", p->max_iter);
    if (p->max_bytes < 0) return rl_fail(RL_EINVAL, "linbt: max_bytes %d must be >= 0", p->max_bytes);
    m->K = K;
    m->off = rl_xcalloc(1, sizeof(int64_t));
    return RL_OK;
}

void align_linbt_free(align_linbt *m) {
    if (!m) return;
    free(m->off); free(m->idx); free(m->val); free(m->dense); free(m->theta); free(m->scratch);
    memset(m, 0, sizeof *m);
}

typedef struct { uint32_t b; float v; } feat;

static int feat_cmp(const void *a, const void *b) {
    uint32_t x = ((const feat *)a)->b, y = ((const feat *)b)->b;
    return x < y ? -1 : x > y;
}

/* φ(text) as sorted (bucket, value) with unique buckets, L2-normalised.
 * *out is malloc'd; returns the count. */
static int features(const align_linbt_opts *o, const char *text, feat **out) {
    size_t len = strlen(text);
    if (o->max_bytes > 0 && len > (size_t)o->max_bytes) len = (size_t)o->max_bytes;
    int nmax = o->ngram_max - o->ngram_min + 1;
    size_t cap = len * (size_t)nmax + 1;
    feat *f = rl_xmalloc(sizeof(feat) * cap);
    int n = 0;
    uint32_t mask = (1u << o->buckets_log2) - 1;
    for (size_t i = 0; i < len; i++)
        for (int g = o->ngram_min; g <= o->ngram_max && i + (size_t)g <= len; g++) {
            uint64_t h = 1469598103934665603ull ^ (uint64_t)g;
            for (int j = 0; j < g; j++) {
                unsigned char ch = (unsigned char)text[i + (size_t)j];
                if (o->fold_digits && ch >= '0' && ch <= '9') ch = '0';
                h = (h ^ ch) * 1099511628211ull;
            }
            f[n].b = (uint32_t)(h ^ (h >> 32)) & mask;
            f[n++].v = 1.0f;
        }
    qsort(f, (size_t)n, sizeof(feat), feat_cmp);
    int u = 0;
    for (int i = 0; i < n; i++) {
        if (u && f[u - 1].b == f[i].b) f[u - 1].v += 1.0f;
        else f[u++] = f[i];
    }
    double ss = 0;
    for (int i = 0; i < u; i++) ss += (double)f[i].v * f[i].v;
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int i = 0; i < u; i++) f[i].v *= inv;
    *out = f;
    return u;
}

rl_status align_linbt_add(align_linbt *m, const char *chosen, const char *rejected, int *c) {
    if (m->F) return rl_fail(RL_EINVAL, "linbt: comparisons cannot be added after the first fit");
    if (!chosen || !rejected) return rl_fail(RL_EINVAL, "linbt: a comparison needs two responses");
    feat *a, *b;
    int na = features(&m->o, chosen, &a), nb = features(&m->o, rejected, &b);
    if (m->n_cmp + 1 > m->cap) {
        m->cap = m->cap ? m->cap * 2 : 1024;
        m->off = realloc(m->off, sizeof(int64_t) * ((size_t)m->cap + 1));
        if (!m->off) { free(a); free(b); return rl_fail(RL_ENOMEM, "linbt: out of memory"); }
    }
    if (m->nnz + na + nb > m->nnz_cap) {
        int64_t nc = m->nnz_cap ? m->nnz_cap * 2 : 65536;
        while (nc < m->nnz + na + nb) nc *= 2;
        int32_t *ni = realloc(m->idx, sizeof(int32_t) * (size_t)nc);
        if (ni) m->idx = ni;
        float *nv = realloc(m->val, sizeof(float) * (size_t)nc);
        if (nv) m->val = nv;
        if (!ni || !nv) { free(a); free(b); return rl_fail(RL_ENOMEM, "linbt: out of memory"); }
        m->nnz_cap = nc;
    }
    /* merge the two sorted lists into x = φ(chosen) − φ(rejected) */
    int i = 0, j = 0;
    int64_t z = m->nnz;
    while (i < na || j < nb) {
        uint32_t bk;
        float v;
        if (j >= nb || (i < na && a[i].b < b[j].b)) { bk = a[i].b; v = a[i++].v; }
        else if (i >= na || b[j].b < a[i].b) { bk = b[j].b; v = -b[j++].v; }
        else { bk = a[i].b; v = a[i++].v - b[j++].v; }
        if (v != 0.0f) { m->idx[z] = (int32_t)bk; m->val[z++] = v; }
    }
    free(a); free(b);
    m->nnz = z;
    if (c) *c = m->n_cmp;
    m->off[++m->n_cmp] = z;
    return RL_OK;
}

/* Freezes the feature set: dense numbering of the buckets used, θ and scratch. */
static rl_status finalise(align_linbt *m) {
    if (m->F) return RL_OK;
    size_t nb = (size_t)1 << m->o.buckets_log2;
    m->dense = rl_xmalloc(sizeof(int32_t) * nb);
    for (size_t i = 0; i < nb; i++) m->dense[i] = -1;
    int F = 0;
    for (int64_t z = 0; z < m->nnz; z++)
        if (m->dense[m->idx[z]] < 0) m->dense[m->idx[z]] = F++;
    for (int64_t z = 0; z < m->nnz; z++) m->idx[z] = m->dense[m->idx[z]];
    if (F == 0) F = 1; /* every comparison had identical responses: one dummy feature */
    m->F = F;
    m->theta = rl_xcalloc((size_t)m->K * F, sizeof(double));
    /* g, gn, d, xn (F each), s, y (M·F each), margins (n_cmp) */
    m->scratch = rl_xmalloc(sizeof(double) * ((size_t)(4 + 2 * LBFGS_M) * F + (size_t)m->n_cmp + 1));
    return RL_OK;
}

static void margins(const align_linbt *m, const double *th, double *mg) {
    for (int c = 0; c < m->n_cmp; c++) {
        double s = 0;
        for (int64_t z = m->off[c]; z < m->off[c + 1]; z++) s += th[m->idx[z]] * m->val[z];
        mg[c] = s;
    }
}

/* softplus(−t) = log(1 + e^{−t}) = −log σ(t), stable for either sign. */
static double nls(double t) { return t > 0 ? log1p(exp(-t)) : -t + log1p(exp(t)); }

/* f(θ) and ∇f for the weighted, L2-regularised BT objective. */
static double objective(const align_linbt *m, const double *w, double W, const double *th, double *g, double *mg) {
    int F = m->F;
    double f = 0;
    for (int i = 0; i < F; i++) { g[i] = m->o.l2 * th[i]; f += 0.5 * m->o.l2 * th[i] * th[i]; }
    if (W <= 0) return f;
    for (int c = 0; c < m->n_cmp; c++) {
        if (w[c] <= 0) continue; /* only weighted comparisons: a fit on one annotator's data stays cheap */
        double mc = 0;
        for (int64_t z = m->off[c]; z < m->off[c + 1]; z++) mc += th[m->idx[z]] * m->val[z];
        mg[c] = mc;
        double wc = w[c] / W;
        f += wc * nls(mg[c]);
        double s = -wc / (1.0 + exp(mg[c])); /* d/dt softplus(−t) = −σ(−t) */
        for (int64_t z = m->off[c]; z < m->off[c + 1]; z++) g[m->idx[z]] += s * m->val[z];
    }
    return f;
}

rl_status align_linbt_fit(align_linbt *m, int k, const double *w) {
    if (k < 0 || k >= m->K) return rl_fail(RL_EINVAL, "linbt: model %d outside 0..%d", k, m->K - 1);
    RL_TRY(finalise(m));
    int F = m->F;
    double W = 0;
    for (int c = 0; c < m->n_cmp; c++) {
        if (!isfinite(w[c]) || w[c] < 0) return rl_fail(RL_EINVAL, "linbt: comparison %d has weight %g", c, w[c]);
        W += w[c];
    }
    double *th = m->theta + (size_t)k * F;
    if (W <= 0) { memset(th, 0, sizeof(double) * (size_t)F); return RL_OK; }
    double *g = m->scratch, *gn = g + F, *d = gn + F, *xn = d + F;
    double *S = xn + F, *Y = S + (size_t)LBFGS_M * F, *mg = Y + (size_t)LBFGS_M * F;
    double rho[LBFGS_M], al[LBFGS_M];
    int hist = 0, head = 0; /* ring buffer of (s, y) pairs */
    double f = objective(m, w, W, th, g, mg);
    for (int it = 0; it < m->o.max_iter; it++) {
        double gmax = 0;
        for (int i = 0; i < F; i++) if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
        if (gmax <= m->o.tol) break;
        /* two-loop recursion: d = −H g */
        for (int i = 0; i < F; i++) d[i] = -g[i];
        for (int q = 0; q < hist; q++) {
            int j = (head - 1 - q + LBFGS_M) % LBFGS_M;
            double a = 0;
            for (int i = 0; i < F; i++) a += S[(size_t)j * F + i] * d[i];
            al[j] = rho[j] * a;
            for (int i = 0; i < F; i++) d[i] -= al[j] * Y[(size_t)j * F + i];
        }
        double gamma = 1.0 / (m->o.l2 + 0.25); /* before any history: the inverse of a Hessian bound */
        if (hist) {
            int j = (head - 1 + LBFGS_M) % LBFGS_M;
            double sy = 0, yy = 0;
            for (int i = 0; i < F; i++) { sy += S[(size_t)j * F + i] * Y[(size_t)j * F + i]; yy += Y[(size_t)j * F + i] * Y[(size_t)j * F + i]; }
            gamma = sy / yy;
        }
        for (int i = 0; i < F; i++) d[i] *= gamma;
        for (int q = hist - 1; q >= 0; q--) {
            int j = (head - 1 - q + LBFGS_M) % LBFGS_M;
            double b = 0;
            for (int i = 0; i < F; i++) b += Y[(size_t)j * F + i] * d[i];
            b *= rho[j];
            for (int i = 0; i < F; i++) d[i] += S[(size_t)j * F + i] * (al[j] - b);
        }
        double dg = 0;
        for (int i = 0; i < F; i++) dg += d[i] * g[i];
        if (dg >= 0) { /* not a descent direction (should not happen): restart from steepest descent */
            for (int i = 0; i < F; i++) d[i] = -g[i] * gamma;
            dg = 0;
            for (int i = 0; i < F; i++) dg += d[i] * g[i];
            hist = 0;
        }
        double step = 1, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 40; ls++) {
            for (int i = 0; i < F; i++) xn[i] = th[i] + step * d[i];
            fn = objective(m, w, W, xn, gn, mg);
            if (fn <= f + 1e-4 * step * dg) { ok = 1; break; }
            step *= 0.5;
        }
        if (!ok) break; /* no decrease at machine precision: at the optimum */
        double sy = 0;
        for (int i = 0; i < F; i++) {
            S[(size_t)head * F + i] = xn[i] - th[i];
            Y[(size_t)head * F + i] = gn[i] - g[i];
            sy += S[(size_t)head * F + i] * Y[(size_t)head * F + i];
        }
        if (sy > 1e-20) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % LBFGS_M;
            if (hist < LBFGS_M) hist++;
        }
        memcpy(th, xn, sizeof(double) * (size_t)F);
        memcpy(g, gn, sizeof(double) * (size_t)F);
        double df = f - fn;
        f = fn;
        if (df <= 1e-15 * (1 + fabs(f))) break;
    }
    return RL_OK;
}

void align_linbt_loglik(align_linbt *m, int k, double *ll) {
    if (!m->F) { for (int c = 0; c < m->n_cmp; c++) ll[c] = -log(2.0); return; }
    margins(m, m->theta + (size_t)k * m->F, ll);
    for (int c = 0; c < m->n_cmp; c++) ll[c] = -nls(ll[c]);
}

double align_linbt_score(const align_linbt *m, int k, const char *response) {
    if (!m->F || k < 0 || k >= m->K) return 0;
    feat *f;
    int n = features(&m->o, response ? response : "", &f);
    const double *th = m->theta + (size_t)k * m->F;
    double s = 0;
    for (int i = 0; i < n; i++) {
        int32_t d = m->dense[f[i].b];
        if (d >= 0) s += th[d] * f[i].v;
    }
    free(f);
    return s;
}

static rl_status v_fit(void *ctx, int k, const double *w) { return align_linbt_fit(ctx, k, w); }
static void v_loglik(void *ctx, int k, double *ll) { align_linbt_loglik(ctx, k, ll); }
static void v_reset(void *ctx, int k) {
    align_linbt *m = ctx;
    if (m->F) memset(m->theta + (size_t)k * m->F, 0, sizeof(double) * (size_t)m->F);
}

align_mix_model align_linbt_model(align_linbt *m) {
    align_mix_model v = {m, m->K, m->n_cmp, v_fit, v_loglik, v_reset};
    return v;
}

/* ---- from feedback records ------------------------------------------------- */

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void align_fb_cmps_free(align_fb_cmps *c) {
    if (!c) return;
    free(c->annot); free(c->w); free(c->record); free(c->annot_id); free(c->annot_first);
    memset(c, 0, sizeof *c);
}

rl_status align_linbt_from_feedback(align_linbt *m, const fb_set *s, align_fb_cmps *out) {
    memset(out, 0, sizeof *out);
    if (m->n_cmp) return rl_fail(RL_EINVAL, "linbt: the model already has comparisons");
    fb_pair *p = NULL;
    int64_t np = 0;
    RL_TRY(fb_to_pairs(s, &p, &np));
    /* annotator ids: sorted unique */
    const char **ids = rl_xmalloc(sizeof(char *) * (size_t)(s->n + 1));
    for (int64_t i = 0; i < s->n; i++) ids[i] = s->records[i].annotator;
    qsort(ids, (size_t)s->n, sizeof(char *), str_cmp);
    int na = 0;
    for (int64_t i = 0; i < s->n; i++) if (!na || strcmp(ids[na - 1], ids[i])) ids[na++] = ids[i];
    out->annot_id = ids;
    out->n_annot = na;
    out->annot_first = rl_xmalloc(sizeof(int64_t) * (size_t)(na + 1));
    for (int h = 0; h < na; h++) out->annot_first[h] = -1;
    for (int64_t i = 0; i < s->n; i++) {
        const char *key = s->records[i].annotator;
        const char **f = bsearch(&key, ids, (size_t)na, sizeof(char *), str_cmp);
        int h = (int)(f - ids);
        if (out->annot_first[h] < 0) out->annot_first[h] = i;
    }
    out->annot = rl_xmalloc(sizeof(int) * (size_t)(np + 1));
    out->w = rl_xmalloc(sizeof(double) * (size_t)(np + 1));
    out->record = rl_xmalloc(sizeof(int64_t) * (size_t)(np + 1));
    rl_status st = RL_OK;
    for (int64_t i = 0; i < np && st == RL_OK; i++) {
        if (p[i].tie) { out->n_ties++; continue; }
        const char *key = p[i].annotator;
        const char **f = bsearch(&key, ids, (size_t)na, sizeof(char *), str_cmp);
        int c;
        st = align_linbt_add(m, p[i].chosen, p[i].rejected, &c);
        if (st != RL_OK) break;
        out->annot[c] = (int)(f - ids);
        out->w[c] = p[i].weight;
        out->record[c] = p[i].record;
        out->n_cmp = c + 1;
    }
    free(p);
    if (st == RL_OK && out->n_cmp == 0)
        st = rl_fail(RL_EINVAL, "no strict comparison in the records (pairs with a choice, or rankings with distinct ranks)");
    if (st != RL_OK) align_fb_cmps_free(out);
    return st;
}
