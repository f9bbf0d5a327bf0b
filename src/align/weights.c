/* weights.c — see weights.h. Sums are in double; n is at most a few million. */
#include "weights.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

double align_kish_ess(int n, const double *w) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) { s += w[i]; s2 += w[i] * w[i]; }
    return s2 > 0 ? s * s / s2 : 0.0;
}

double align_design_effect(int n, const double *w) {
    double e = align_kish_ess(n, w);
    return e > 0 ? (double)n / e : INFINITY;
}

rl_status align_cells(int n, int nvar, const int *codes, const int *ncat, int *cell_out, int *ncells_out) {
    if (nvar < 1) return rl_fail(RL_EINVAL, "align_cells: need at least one attribute");
    double total = 1;
    for (int v = 0; v < nvar; v++) {
        if (ncat[v] < 1) return rl_fail(RL_EINVAL, "align_cells: attribute %d has %d categories", v, ncat[v]);
        total *= ncat[v];
    }
    if (total > 1e7) return rl_fail(RL_EINVAL, "align_cells: %.0f cells is too many; collapse categories", total);
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int v = 0; v < nvar; v++) {
            int k = codes[(size_t)v * n + i];
            if (k < 0 || k >= ncat[v])
                return rl_fail(RL_EINVAL, "align_cells: evaluator %d has code %d for attribute %d (valid 0..%d)", i, k, v, ncat[v] - 1);
            c = c * ncat[v] + k;
        }
        cell_out[i] = c;
    }
    *ncells_out = (int)total;
    return RL_OK;
}

static void normalise_mean1(int n, double *w) {
    double s = 0;
    for (int i = 0; i < n; i++) s += w[i];
    if (s > 0) for (int i = 0; i < n; i++) w[i] *= (double)n / s;
}

rl_status align_poststratify(int n, const int *cell, int ncells, const double *target, const double *base, double *w_out) {
    if (n < 1 || ncells < 1) return rl_fail(RL_EINVAL, "align_poststratify: need n >= 1 and ncells >= 1");
    double tsum = 0;
    for (int h = 0; h < ncells; h++) {
        if (!(target[h] >= 0)) return rl_fail(RL_EINVAL, "align_poststratify: target share of cell %d is %g (must be >= 0)", h, target[h]);
        tsum += target[h];
    }
    if (!(tsum > 0)) return rl_fail(RL_EINVAL, "align_poststratify: target shares sum to 0");
    double *wh = calloc((size_t)ncells, sizeof *wh);
    if (!wh) return rl_fail(RL_ENOMEM, "align_poststratify: out of memory");
    double W = 0;
    for (int i = 0; i < n; i++) {
        double b = base ? base[i] : 1.0;
        if (cell[i] < 0 || cell[i] >= ncells) { free(wh); return rl_fail(RL_EINVAL, "align_poststratify: evaluator %d is in cell %d (valid 0..%d)", i, cell[i], ncells - 1); }
        if (!(b >= 0)) { free(wh); return rl_fail(RL_EINVAL, "align_poststratify: base weight %d is %g", i, b); }
        wh[cell[i]] += b;
        W += b;
    }
    for (int h = 0; h < ncells; h++)
        if (target[h] > 0 && !(wh[h] > 0)) {
            free(wh);
            return rl_fail(RL_EINVAL, "post-stratification cell %d has target share %g but no evaluators (or zero weight); collapse sparse cells", h, target[h] / tsum);
        }
    for (int i = 0; i < n; i++) {
        double b = base ? base[i] : 1.0;
        w_out[i] = b * (target[cell[i]] / tsum) * W / wh[cell[i]];
    }
    free(wh);
    normalise_mean1(n, w_out);
    return RL_OK;
}

align_rake_opts align_rake_defaults(void) {
    align_rake_opts o = {1000, 1e-6, 0.0};
    return o;
}

void align_weighted_shares(int n, const int *code, int ncat, const double *w, double *share) {
    for (int c = 0; c < ncat; c++) share[c] = 0;
    double s = 0;
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (code[i] >= 0 && code[i] < ncat) share[code[i]] += wi;
        s += wi;
    }
    if (s > 0) for (int c = 0; c < ncat; c++) share[c] /= s;
}

/* Trim weights above cap·mean to cap·mean. Trimming lowers the mean, which can
 * lift other weights over the new cap, so repeat until none is over (the
 * excess shrinks geometrically). Returns how many sit at the cap. */
static int trim(int n, double *w, double cap) {
    int at_cap = 0;
    for (int it = 0; it < 1000; it++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += w[i];
        double lim = cap * s / n;
        int over = 0;
        at_cap = 0;
        for (int i = 0; i < n; i++) {
            if (w[i] > lim * (1 + 1e-12)) { w[i] = lim; over++; }
            if (w[i] >= lim * (1 - 1e-9)) at_cap++;
        }
        if (!over) break;
    }
    return at_cap;
}

rl_status align_rake(int n, int nvar, const int *codes, const int *ncat, const double *targets,
                     const double *base, const align_rake_opts *opts_in, double *w_out, align_rake_report *report) {
    align_rake_opts opts = opts_in ? *opts_in : align_rake_defaults();
    if (n < 1 || nvar < 1) return rl_fail(RL_EINVAL, "align_rake: need n >= 1 evaluators and at least one attribute");
    if (opts.max_iter < 1) return rl_fail(RL_EINVAL, "align_rake: max_iter must be >= 1");
    if (!(opts.tol > 0)) return rl_fail(RL_EINVAL, "align_rake: tol must be > 0");
    if (opts.cap != 0 && !(opts.cap > 1)) return rl_fail(RL_EINVAL, "align_rake: cap %g must be > 1 (a multiple of the mean weight) or 0 for none", opts.cap);
    int tot = 0, maxcat = 0;
    for (int v = 0; v < nvar; v++) {
        if (ncat[v] < 1) return rl_fail(RL_EINVAL, "align_rake: attribute %d has %d categories", v, ncat[v]);
        tot += ncat[v];
        if (ncat[v] > maxcat) maxcat = ncat[v];
    }
    double *T = malloc((size_t)tot * sizeof *T);
    double *wsum = malloc((size_t)maxcat * sizeof *wsum);
    int *cnt = malloc((size_t)maxcat * sizeof *cnt);
    if (!T || !wsum || !cnt) { free(T); free(wsum); free(cnt); return rl_fail(RL_ENOMEM, "align_rake: out of memory"); }
    rl_status st = RL_OK;
    /* Validate and normalise targets; every category with a target needs members. */
    for (int v = 0, off = 0; v < nvar && st == RL_OK; off += ncat[v], v++) {
        double s = 0;
        for (int c = 0; c < ncat[v]; c++) {
            double t = targets[off + c];
            if (!(t >= 0)) { st = rl_fail(RL_EINVAL, "align_rake: target share of attribute %d category %d is %g (must be >= 0)", v, c, t); break; }
            s += t;
        }
        if (st != RL_OK) break;
        if (fabs(s - 1) > 1e-3) { st = rl_fail(RL_EINVAL, "align_rake: target shares of attribute %d sum to %.6g, not 1", v, s); break; }
        for (int c = 0; c < ncat[v]; c++) { T[off + c] = targets[off + c] / s; cnt[c] = 0; }
        for (int i = 0; i < n; i++) {
            int k = codes[(size_t)v * n + i];
            if (k < 0 || k >= ncat[v]) { st = rl_fail(RL_EINVAL, "align_rake: evaluator %d has code %d for attribute %d (valid 0..%d)", i, k, v, ncat[v] - 1); break; }
            cnt[k]++;
        }
        if (st != RL_OK) break;
        for (int c = 0; c < ncat[v]; c++)
            if (T[off + c] > 0 && cnt[c] == 0) {
                st = rl_fail(RL_EINVAL, "attribute %d category %d has target share %g but no evaluators; it cannot be raked (collapse it into a neighbour)", v, c, T[off + c]);
                break;
            }
    }
    if (st == RL_OK && base)
        for (int i = 0; i < n; i++)
            if (!(base[i] >= 0)) { st = rl_fail(RL_EINVAL, "align_rake: base weight %d is %g", i, base[i]); break; }
    if (st != RL_OK) { free(T); free(wsum); free(cnt); return st; }

    for (int i = 0; i < n; i++) w_out[i] = base ? base[i] : 1.0;
    normalise_mean1(n, w_out);
    int it = 0, n_capped = 0;
    double err = INFINITY;
    for (it = 1; it <= opts.max_iter; it++) {
        for (int v = 0, off = 0; v < nvar; off += ncat[v], v++) {
            const int *cv = codes + (size_t)v * n;
            double W = 0;
            for (int c = 0; c < ncat[v]; c++) wsum[c] = 0;
            for (int i = 0; i < n; i++) { wsum[cv[i]] += w_out[i]; W += w_out[i]; }
            /* factor_c = T_c / share_c = T_c · W / wsum_c; a category whose weights all
             * went to 0 (target 0) keeps factor 0. */
            for (int c = 0; c < ncat[v]; c++) wsum[c] = wsum[c] > 0 ? T[off + c] * W / wsum[c] : 0.0;
            for (int i = 0; i < n; i++) w_out[i] *= wsum[cv[i]];
        }
        if (opts.cap > 0) n_capped = trim(n, w_out, opts.cap);
        normalise_mean1(n, w_out);
        /* Margin error after the cycle (and the trim). */
        err = 0;
        for (int v = 0, off = 0; v < nvar; off += ncat[v], v++) {
            align_weighted_shares(n, codes + (size_t)v * n, ncat[v], w_out, wsum);
            for (int c = 0; c < ncat[v]; c++) {
                double e = fabs(wsum[c] - T[off + c]);
                if (e > err) err = e;
            }
        }
        if (err <= opts.tol) break;
    }
    if (it > opts.max_iter) it = opts.max_iter;
    if (report) {
        report->iterations = it;
        report->converged = err <= opts.tol;
        report->max_margin_err = err;
        report->n_capped = opts.cap > 0 ? n_capped : 0;
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < n; i++) { if (w_out[i] < lo) lo = w_out[i]; if (w_out[i] > hi) hi = w_out[i]; }
        report->w_min = lo; report->w_max = hi;
        report->ess = align_kish_ess(n, w_out);
        report->deff = align_design_effect(n, w_out);
        report->efficiency = report->ess / n;
    }
    free(T); free(wsum); free(cnt);
    return RL_OK;
}

rl_status align_example_weights(int n_examples, const int *annot, int n_annot, const double *annot_w,
                                const double *rel, double *example_w) {
    double s = 0;
    for (int k = 0; k < n_examples; k++) {
        int a = annot[k];
        if (a < 0 || a >= n_annot) return rl_fail(RL_EINVAL, "example weights: example %d has annotator %d (valid 0..%d)", k, a, n_annot - 1);
        double w = annot_w[a] * (rel ? rel[a] : 1.0);
        if (!(w >= 0) || !isfinite(w)) return rl_fail(RL_EINVAL, "example weights: annotator %d has weight %g", a, w);
        example_w[k] = w;
        s += w;
    }
    if (n_examples > 0 && !(s > 0)) return rl_fail(RL_EINVAL, "example weights: every example has weight 0");
    for (int k = 0; k < n_examples; k++) example_w[k] *= n_examples / s;
    return RL_OK;
}
