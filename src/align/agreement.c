/* agreement.c — see agreement.h. */
#include "agreement.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int align_metric_parse(const char *s) {
    if (!strcmp(s, "nominal")) return ALIGN_NOMINAL;
    if (!strcmp(s, "ordinal")) return ALIGN_ORDINAL;
    if (!strcmp(s, "interval")) return ALIGN_INTERVAL;
    if (!strcmp(s, "ratio")) return ALIGN_RATIO;
    return -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int find_value(const double *vals, int V, double x) {
    int lo = 0, hi = V - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (vals[mid] < x) lo = mid + 1;
        else if (vals[mid] > x) hi = mid - 1;
        else return mid;
    }
    return -1;
}

/* δ²(c,k) between value indices; cum[v] = n_0 + ... + n_v (ordinal only). */
static double delta2(align_metric m, const double *vals, const double *nc, const double *cum, int c, int k) {
    if (c == k) return 0.0;
    switch (m) {
    case ALIGN_NOMINAL: return 1.0;
    case ALIGN_INTERVAL: { double d = vals[c] - vals[k]; return d * d; }
    case ALIGN_RATIO: { double s = vals[c] + vals[k]; double d = s > 0 ? (vals[c] - vals[k]) / s : 0.0; return d * d; }
    case ALIGN_ORDINAL: {
        int lo = c < k ? c : k, hi = c < k ? k : c;
        double between = cum[hi] - (lo > 0 ? cum[lo - 1] : 0.0); /* Σ_{g=lo..hi} n_g */
        double d = between - (nc[lo] + nc[hi]) / 2.0;
        return d * d;
    }
    }
    return 0.0;
}

/* Core of α over a subset of coders (use[r] != 0). */
static rl_status alpha_subset(int ncoders, int nunits, const double *x, align_metric metric,
                              const unsigned char *use, align_alpha_result *out) {
    memset(out, 0, sizeof *out);
    out->alpha = NAN;
    if (metric < ALIGN_NOMINAL || metric > ALIGN_RATIO) return rl_fail(RL_EINVAL, "krippendorff alpha: unknown metric %d", (int)metric);
    size_t total = 0;
    int units = 0;
    for (int u = 0; u < nunits; u++) {
        int m = 0;
        for (int r = 0; r < ncoders; r++) if ((!use || use[r]) && !isnan(x[(size_t)r * nunits + u])) m++;
        if (m >= 2) { total += (size_t)m; units++; }
    }
    if (units == 0) return rl_fail(RL_EINVAL, "krippendorff alpha: no unit has values from two coders (nothing is pairable)");
    double *vals = malloc(total * sizeof *vals);
    int *idx = malloc((size_t)ncoders * sizeof *idx);
    if (!vals || !idx) { free(vals); free(idx); return rl_fail(RL_ENOMEM, "krippendorff alpha: out of memory"); }
    size_t t = 0;
    for (int u = 0; u < nunits; u++) {
        int m = 0;
        for (int r = 0; r < ncoders; r++) if ((!use || use[r]) && !isnan(x[(size_t)r * nunits + u])) m++;
        if (m < 2) continue;
        for (int r = 0; r < ncoders; r++) {
            double v = x[(size_t)r * nunits + u];
            if ((!use || use[r]) && !isnan(v)) {
                if (metric == ALIGN_RATIO && v < 0) { free(vals); free(idx); return rl_fail(RL_EINVAL, "krippendorff alpha: ratio metric needs values >= 0 (got %g)", v); }
                vals[t++] = v;
            }
        }
    }
    qsort(vals, total, sizeof *vals, cmp_double);
    /* n_c: value counts in pairable units (the coincidence matrix's margins). */
    int V = 0;
    double *nc = calloc(total, sizeof *nc), *cum = calloc(total, sizeof *cum);
    if (!nc || !cum) { free(vals); free(idx); free(nc); free(cum); return rl_fail(RL_ENOMEM, "krippendorff alpha: out of memory"); }
    for (size_t i = 0; i < total; i++) {
        if (V == 0 || vals[i] != vals[V - 1]) vals[V++] = vals[i];
        nc[V - 1] += 1;
    }
    for (int v = 0; v < V; v++) cum[v] = nc[v] + (v > 0 ? cum[v - 1] : 0.0);
    double n = (double)total;
    /* Observed: Σ_ck o_ck δ²_ck = Σ_u (1/(m_u−1)) Σ_{i≠j in u} δ²(v_i, v_j). */
    double obs = 0;
    for (int u = 0; u < nunits; u++) {
        int m = 0;
        for (int r = 0; r < ncoders; r++) {
            double v = x[(size_t)r * nunits + u];
            if ((!use || use[r]) && !isnan(v)) idx[m++] = find_value(vals, V, v);
        }
        if (m < 2) continue;
        double s = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
                if (i != j) s += delta2(metric, vals, nc, cum, idx[i], idx[j]);
        obs += s / (m - 1);
    }
    /* Expected: Σ_ck n_c n_k δ²_ck. Closed forms for nominal and interval keep this
     * O(V) when ratings are continuous (V ~ n); ordinal/ratio loop over pairs. */
    double ex = 0;
    if (metric == ALIGN_NOMINAL) {
        double s2 = 0;
        for (int v = 0; v < V; v++) s2 += nc[v] * nc[v];
        ex = n * n - s2;
    } else if (metric == ALIGN_INTERVAL) {
        /* Σ n_c n_k (c−k)² = 2 (n Σ n_c c² − (Σ n_c c)²) = 2 n Σ n_c (c − mean)²; centred for accuracy. */
        double mean = 0;
        for (int v = 0; v < V; v++) mean += nc[v] * vals[v];
        mean /= n;
        double ss = 0;
        for (int v = 0; v < V; v++) ss += nc[v] * (vals[v] - mean) * (vals[v] - mean);
        ex = 2 * n * ss;
    } else {
        for (int c = 0; c < V; c++)
            for (int k = 0; k < V; k++)
                if (c != k) ex += nc[c] * nc[k] * delta2(metric, vals, nc, cum, c, k);
    }
    out->n_pairable = n;
    out->n_values = V;
    out->n_units = units;
    out->d_obs = obs / n;
    out->d_exp = n > 1 ? ex / (n * (n - 1)) : 0;
    free(vals); free(idx); free(nc); free(cum);
    if (!(ex > 0)) return rl_fail(RL_EINVAL, "krippendorff alpha: every pairable value is the same (no variation), so alpha is undefined");
    out->alpha = 1.0 - (n - 1) * obs / ex;
    return RL_OK;
}

rl_status align_krippendorff_alpha(int ncoders, int nunits, const double *x, align_metric metric, align_alpha_result *out) {
    if (ncoders < 2 || nunits < 1) {
        memset(out, 0, sizeof *out);
        out->alpha = NAN;
        return rl_fail(RL_EINVAL, "krippendorff alpha: need >= 2 coders and >= 1 unit (got %d, %d)", ncoders, nunits);
    }
    return alpha_subset(ncoders, nunits, x, metric, NULL, out);
}

rl_status align_alpha_by_group(int ncoders, int nunits, const double *x, align_metric metric,
                               const int *coder_group, int ngroups, double *alpha_out, double *alpha_all) {
    if (ngroups < 1) return rl_fail(RL_EINVAL, "alpha by group: need >= 1 group");
    unsigned char *use = malloc((size_t)ncoders + 1);
    if (!use) return rl_fail(RL_ENOMEM, "alpha by group: out of memory");
    align_alpha_result r;
    for (int g = 0; g < ngroups; g++) {
        for (int c = 0; c < ncoders; c++) use[c] = coder_group[c] == g;
        alpha_out[g] = alpha_subset(ncoders, nunits, x, metric, use, &r) == RL_OK ? r.alpha : NAN;
    }
    if (alpha_all) {
        for (int c = 0; c < ncoders; c++) use[c] = coder_group[c] >= 0 && coder_group[c] < ngroups;
        *alpha_all = alpha_subset(ncoders, nunits, x, metric, use, &r) == RL_OK ? r.alpha : NAN;
    }
    free(use);
    rl_fail(RL_OK, "%s", "");
    return RL_OK;
}

rl_status align_percent_agreement(int ncoders, int nunits, const double *x, double *agree_out) {
    double num = 0, den = 0;
    double *v = malloc((size_t)(ncoders > 0 ? ncoders : 1) * sizeof *v);
    if (!v) return rl_fail(RL_ENOMEM, "percent agreement: out of memory");
    for (int u = 0; u < nunits; u++) {
        int m = 0;
        for (int r = 0; r < ncoders; r++) if (!isnan(x[(size_t)r * nunits + u])) v[m++] = x[(size_t)r * nunits + u];
        if (m < 2) continue;
        double same = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
                if (i != j && v[i] == v[j]) same += 1;
        num += same / (m - 1);
        den += m; /* m(m−1) ordered pairs, each weighted 1/(m−1) */
    }
    free(v);
    if (den == 0) return rl_fail(RL_EINVAL, "percent agreement: no unit has values from two coders");
    *agree_out = num / den;
    return RL_OK;
}

rl_status align_cohen_kappa(int n, const int *a, const int *b, int K, align_kappa_weights weights, double *kappa_out) {
    *kappa_out = NAN;
    if (K < 2) return rl_fail(RL_EINVAL, "cohen kappa: need K >= 2 categories");
    double *o = calloc((size_t)K * K, sizeof *o), *ra = calloc((size_t)K, sizeof *ra), *rb = calloc((size_t)K, sizeof *rb);
    if (!o || !ra || !rb) { free(o); free(ra); free(rb); return rl_fail(RL_ENOMEM, "cohen kappa: out of memory"); }
    double m = 0;
    rl_status st = RL_OK;
    for (int i = 0; i < n; i++) {
        if (a[i] < 0 || b[i] < 0) continue;
        if (a[i] >= K || b[i] >= K) { st = rl_fail(RL_EINVAL, "cohen kappa: item %d has category %d (valid 0..%d)", i, a[i] >= K ? a[i] : b[i], K - 1); break; }
        o[a[i] * K + b[i]] += 1; ra[a[i]] += 1; rb[b[i]] += 1; m += 1;
    }
    if (st == RL_OK && m == 0) st = rl_fail(RL_EINVAL, "cohen kappa: no item has both ratings");
    if (st == RL_OK) {
        double num = 0, den = 0;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                double v;
                if (weights == ALIGN_KAPPA_LINEAR) v = fabs((double)(i - j)) / (K - 1);
                else if (weights == ALIGN_KAPPA_QUADRATIC) v = (double)(i - j) * (i - j) / ((double)(K - 1) * (K - 1));
                else v = i != j;
                num += v * o[i * K + j] / m;
                den += v * (ra[i] / m) * (rb[j] / m);
            }
        if (!(den > 0)) st = rl_fail(RL_EINVAL, "cohen kappa: chance disagreement is 0 (both raters used one category), kappa is undefined");
        else *kappa_out = 1.0 - num / den;
    }
    free(o); free(ra); free(rb);
    return st;
}

rl_status align_fleiss_kappa(int N, int K, const int *counts, double *kappa_out) {
    *kappa_out = NAN;
    if (N < 1 || K < 2) return rl_fail(RL_EINVAL, "fleiss kappa: need N >= 1 items and K >= 2 categories");
    double *p = calloc((size_t)K, sizeof *p);
    if (!p) return rl_fail(RL_ENOMEM, "fleiss kappa: out of memory");
    long m0 = -1;
    double Pbar = 0;
    for (int i = 0; i < N; i++) {
        long m = 0, s2 = 0;
        for (int j = 0; j < K; j++) {
            int c = counts[(size_t)i * K + j];
            if (c < 0) { free(p); return rl_fail(RL_EINVAL, "fleiss kappa: negative count at item %d category %d", i, j); }
            m += c; s2 += (long)c * c; p[j] += c;
        }
        if (m0 < 0) m0 = m;
        if (m != m0) { free(p); return rl_fail(RL_EINVAL, "fleiss kappa: item %d has %ld ratings but item 0 has %ld; every item needs the same number (use Krippendorff's alpha for missing ratings)", i, m, m0); }
        if (m < 2) { free(p); return rl_fail(RL_EINVAL, "fleiss kappa: items need >= 2 ratings (got %ld)", m); }
        Pbar += (double)(s2 - m) / ((double)m * (m - 1));
    }
    Pbar /= N;
    double Pe = 0;
    for (int j = 0; j < K; j++) { double pj = p[j] / ((double)N * m0); Pe += pj * pj; }
    free(p);
    if (!(Pe < 1)) return rl_fail(RL_EINVAL, "fleiss kappa: every rating is the same category, kappa is undefined");
    *kappa_out = (Pbar - Pe) / (1 - Pe);
    return RL_OK;
}

/* ---- Dawid–Skene ------------------------------------------------------------ */

align_ds_opts align_ds_defaults(void) {
    align_ds_opts o = {100, 1e-7, 0.01};
    return o;
}

void align_ds_free(align_ds_result *r) {
    if (!r) return;
    free(r->prior); free(r->confusion); free(r->posterior); free(r->label); free(r->reliability);
    memset(r, 0, sizeof *r);
}

rl_status align_majority_vote(int n_obs, const int *item, const int *label, int n_items, int K, int *label_out) {
    int *cnt = calloc((size_t)n_items * K, sizeof *cnt);
    if (!cnt) return rl_fail(RL_ENOMEM, "majority vote: out of memory");
    for (int o = 0; o < n_obs; o++) {
        if (item[o] < 0 || item[o] >= n_items || label[o] < 0 || label[o] >= K) {
            free(cnt);
            return rl_fail(RL_EINVAL, "majority vote: observation %d has item %d label %d (valid items 0..%d, labels 0..%d)", o, item[o], label[o], n_items - 1, K - 1);
        }
        cnt[(size_t)item[o] * K + label[o]]++;
    }
    for (int i = 0; i < n_items; i++) {
        int best = -1, bc = 0;
        for (int k = 0; k < K; k++) if (cnt[(size_t)i * K + k] > bc) { bc = cnt[(size_t)i * K + k]; best = k; }
        label_out[i] = best;
    }
    free(cnt);
    return RL_OK;
}

rl_status align_dawid_skene(int n_obs, const int *item, const int *annot, const int *label,
                            int n_items, int n_annot, int K, const double *init_posterior,
                            const align_ds_opts *opts_in, align_ds_result *out) {
    memset(out, 0, sizeof *out);
    align_ds_opts opts = opts_in ? *opts_in : align_ds_defaults();
    if (n_items < 1 || n_annot < 1 || K < 2) return rl_fail(RL_EINVAL, "dawid-skene: need items >= 1, annotators >= 1, K >= 2");
    if (opts.max_iter < 1 || !(opts.smoothing >= 0) || !(opts.tol >= 0)) return rl_fail(RL_EINVAL, "dawid-skene: bad options (max_iter >= 1, smoothing >= 0, tol >= 0)");
    for (int o = 0; o < n_obs; o++)
        if (item[o] < 0 || item[o] >= n_items || annot[o] < 0 || annot[o] >= n_annot || label[o] < 0 || label[o] >= K)
            return rl_fail(RL_EINVAL, "dawid-skene: observation %d = (item %d, annotator %d, label %d) is out of range (items < %d, annotators < %d, labels < %d)",
                           o, item[o], annot[o], label[o], n_items, n_annot, K);
    out->n_items = n_items; out->n_annot = n_annot; out->K = K;
    out->prior = calloc((size_t)K, sizeof(double));
    out->confusion = calloc((size_t)n_annot * K * K, sizeof(double));
    out->posterior = calloc((size_t)n_items * K, sizeof(double));
    out->label = calloc((size_t)n_items, sizeof(int));
    out->reliability = calloc((size_t)n_annot, sizeof(double));
    double *logT = calloc((size_t)n_items * K, sizeof(double));
    double *loge = calloc((size_t)n_annot * K * K, sizeof(double));
    int *nlab = calloc((size_t)n_items, sizeof(int));
    if (!out->prior || !out->confusion || !out->posterior || !out->label || !out->reliability || !logT || !loge || !nlab) {
        free(logT); free(loge); free(nlab); align_ds_free(out);
        return rl_fail(RL_ENOMEM, "dawid-skene: out of memory");
    }
    double *T = out->posterior, *e = out->confusion, *p = out->prior;
    for (int o = 0; o < n_obs; o++) nlab[item[o]]++;
    if (init_posterior) {
        memcpy(T, init_posterior, (size_t)n_items * K * sizeof(double));
    } else {
        /* Majority-vote start: the fraction of each item's labels in each class. */
        for (int o = 0; o < n_obs; o++) T[(size_t)item[o] * K + label[o]] += 1.0 / nlab[item[o]];
        for (int i = 0; i < n_items; i++) if (!nlab[i]) for (int k = 0; k < K; k++) T[(size_t)i * K + k] = 1.0 / K;
    }
    double prev = -INFINITY, ll = 0;
    int it;
    for (it = 1; it <= opts.max_iter; it++) {
        /* M-step */
        double ps = 0;
        for (int c = 0; c < K; c++) p[c] = opts.smoothing;
        for (int i = 0; i < n_items; i++) for (int c = 0; c < K; c++) p[c] += T[(size_t)i * K + c];
        for (int c = 0; c < K; c++) ps += p[c];
        for (int c = 0; c < K; c++) p[c] /= ps;
        for (size_t j = 0; j < (size_t)n_annot * K * K; j++) e[j] = opts.smoothing;
        for (int o = 0; o < n_obs; o++) {
            const double *Ti = T + (size_t)item[o] * K;
            double *ea = e + (size_t)annot[o] * K * K;
            for (int c = 0; c < K; c++) ea[c * K + label[o]] += Ti[c];
        }
        for (int a = 0; a < n_annot; a++)
            for (int c = 0; c < K; c++) {
                double *row = e + ((size_t)a * K + c) * K, s = 0;
                for (int k = 0; k < K; k++) s += row[k];
                for (int k = 0; k < K; k++) {
                    /* An annotator with no evidence for class c (and no smoothing) says
                     * nothing about it: uniform row. The 1e-300 floor keeps log finite. */
                    row[k] = s > 0 ? row[k] / s : 1.0 / K;
                    loge[((size_t)a * K + c) * K + k] = log(row[k] > 1e-300 ? row[k] : 1e-300);
                }
            }
        /* E-step in log space */
        for (int i = 0; i < n_items; i++) for (int c = 0; c < K; c++) logT[(size_t)i * K + c] = log(p[c] > 1e-300 ? p[c] : 1e-300);
        for (int o = 0; o < n_obs; o++) {
            double *lt = logT + (size_t)item[o] * K;
            const double *le = loge + (size_t)annot[o] * K * K;
            for (int c = 0; c < K; c++) lt[c] += le[c * K + label[o]];
        }
        ll = 0;
        for (int i = 0; i < n_items; i++) {
            double *lt = logT + (size_t)i * K, mx = -INFINITY, s = 0;
            for (int c = 0; c < K; c++) if (lt[c] > mx) mx = lt[c];
            for (int c = 0; c < K; c++) s += exp(lt[c] - mx);
            double lz = mx + log(s);
            if (nlab[i]) ll += lz; /* items without labels contribute log 1 */
            for (int c = 0; c < K; c++) T[(size_t)i * K + c] = exp(lt[c] - lz);
        }
        if (it > 1 && fabs(ll - prev) <= opts.tol * (n_obs > 0 ? n_obs : 1)) { out->converged = 1; break; }
        prev = ll;
    }
    out->iterations = it > opts.max_iter ? opts.max_iter : it;
    out->loglik = ll;
    for (int i = 0; i < n_items; i++) {
        int best = 0;
        for (int c = 1; c < K; c++) if (T[(size_t)i * K + c] > T[(size_t)i * K + best]) best = c;
        out->label[i] = best;
    }
    for (int a = 0; a < n_annot; a++) {
        double r = 0;
        for (int c = 0; c < K; c++) r += p[c] * e[((size_t)a * K + c) * K + c];
        out->reliability[a] = r;
    }
    free(logT); free(loge); free(nlab);
    return RL_OK;
}
