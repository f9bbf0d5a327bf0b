/* aggregate.c — see aggregate.h. Everything is computed in double. */
#include "aggregate.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int align_rule_parse(const char *s) {
    if (!strcmp(s, "mean") || !strcmp(s, "utilitarian")) return ALIGN_AGG_MEAN;
    if (!strcmp(s, "nash")) return ALIGN_AGG_NASH;
    if (!strcmp(s, "isoelastic") || !strcmp(s, "atkinson")) return ALIGN_AGG_ISOELASTIC;
    if (!strcmp(s, "min")) return ALIGN_AGG_MIN;
    if (!strcmp(s, "maxmin")) return ALIGN_AGG_MAXMIN;
    return -1;
}

const char *align_rule_name(align_rule r) {
    switch (r) {
    case ALIGN_AGG_MEAN: return "mean";
    case ALIGN_AGG_NASH: return "nash";
    case ALIGN_AGG_ISOELASTIC: return "isoelastic";
    case ALIGN_AGG_MIN: return "min";
    case ALIGN_AGG_MAXMIN: return "maxmin";
    }
    return "?";
}

/* Atkinson EDE of s (G) with weights p, α > 0, α finite, every s >= eps > 0.
 * With t = 1 − α and x = log s:  log EDE = (1/t) log Σ_g p_g e^{t x_g}.
 * Shifting by x* = the x that maximises t·x keeps every exponent <= 0, and
 * writing Σ p e^{t(x−x*)} = 1 + Σ p expm1(t(x−x*)) (Σp = 1) keeps full
 * precision as t → 0 (α → 1), where a plain log-sum-exp divided by t loses it.
 * grad_g = p_g e^{−α (x_g − log EDE)}. */
static double atkinson(int G, const double *p, const double *s, double alpha, double *grad) {
    double t = 1.0 - alpha, L;
    if (t == 0) {
        L = 0;
        for (int g = 0; g < G; g++) L += p[g] * log(s[g]);
    } else {
        int gs = 0;
        for (int g = 1; g < G; g++) if (t * log(s[g]) > t * log(s[gs])) gs = g;
        double xs = log(s[gs]), acc = 0;
        for (int g = 0; g < G; g++) acc += p[g] * expm1(t * (log(s[g]) - xs));
        L = xs + log1p(acc) / t;
    }
    for (int g = 0; g < G; g++) grad[g] = p[g] * exp(-alpha * (log(s[g]) - L));
    return exp(L);
}

rl_status align_aggregate(align_rule rule, const align_agg_params *prm, int N, int G,
                          const float *u, float *out, float *grad, int *chosen_group) {
    if (chosen_group) *chosen_group = -1;
    if (N < 0 || G < 1) return rl_fail(RL_EINVAL, "aggregate: need G >= 1 groups and N >= 0 samples");
    if ((int)rule < ALIGN_AGG_MEAN || rule > ALIGN_AGG_MAXMIN) return rl_fail(RL_EINVAL, "aggregate: unknown rule %d", (int)rule);
    align_agg_params P = {0};
    if (prm) P = *prm;
    double eps = P.eps > 0 ? P.eps : 1e-3;
    if (rule == ALIGN_AGG_ISOELASTIC && !(P.alpha >= 0)) return rl_fail(RL_EINVAL, "aggregate: isoelastic alpha must be >= 0 (got %g)", P.alpha);
    double *p = malloc((size_t)G * 4 * sizeof *p);
    if (!p) return rl_fail(RL_ENOMEM, "aggregate: out of memory");
    double *s = p + G, *sc = p + 2 * G, *gr = p + 3 * G;
    double ps = 0;
    for (int g = 0; g < G; g++) {
        p[g] = P.weights ? P.weights[g] : 1.0;
        if (!(p[g] >= 0) || !isfinite(p[g])) {
            double bad = p[g];
            free(p);
            return rl_fail(RL_EINVAL, "aggregate: weight of group %d is %g (must be >= 0)", g, bad);
        }
        ps += p[g];
    }
    if (!(ps > 0)) { free(p); return rl_fail(RL_EINVAL, "aggregate: group weights sum to 0"); }
    for (int g = 0; g < G; g++) p[g] /= ps;
    for (size_t j = 0; j < (size_t)N * G; j++)
        if (!isfinite(u[j])) { free(p); return rl_fail(RL_EINVAL, "aggregate: utility of sample %zu group %zu is not finite", j / G, j % G); }

    int gstar = -1;
    if (rule == ALIGN_AGG_MAXMIN) {
        /* The group worst off on average over this batch. */
        double best = INFINITY;
        for (int g = 0; g < G; g++) {
            double m = 0;
            for (int n = 0; n < N; n++) m += u[(size_t)n * G + g] - (P.disagreement ? P.disagreement[g] : 0.0);
            m = N > 0 ? m / N : 0;
            if (m < best) { best = m; gstar = g; }
        }
        if (chosen_group) *chosen_group = gstar;
    }
    int iso_inf = rule == ALIGN_AGG_ISOELASTIC && isinf(P.alpha);
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < G; g++) s[g] = (double)u[(size_t)n * G + g] - (P.disagreement ? P.disagreement[g] : 0.0);
        double o = 0;
        if (rule == ALIGN_AGG_MEAN || (rule == ALIGN_AGG_ISOELASTIC && P.alpha == 0)) {
            /* α = 0 is exactly the weighted mean, for any sign of s. */
            for (int g = 0; g < G; g++) { o += p[g] * s[g]; gr[g] = p[g]; }
        } else if (rule == ALIGN_AGG_NASH) {
            for (int g = 0; g < G; g++) {
                if (s[g] >= eps) { o += p[g] * log(s[g]); gr[g] = p[g] / s[g]; }
                else { o += p[g] * (log(eps) + (s[g] - eps) / eps); gr[g] = p[g] / eps; }
            }
        } else if (rule == ALIGN_AGG_MIN || iso_inf) {
            int a = 0;
            for (int g = 1; g < G; g++) if (s[g] < s[a]) a = g;
            o = s[a];
            for (int g = 0; g < G; g++) gr[g] = g == a;
        } else if (rule == ALIGN_AGG_ISOELASTIC) {
            for (int g = 0; g < G; g++) sc[g] = s[g] >= eps ? s[g] : eps;
            o = atkinson(G, p, sc, P.alpha, gr);
            for (int g = 0; g < G; g++) if (s[g] < eps) o += gr[g] * (s[g] - eps);
        } else { /* maxmin */
            o = s[gstar];
            for (int g = 0; g < G; g++) gr[g] = g == gstar;
        }
        out[n] = (float)o;
        if (grad) for (int g = 0; g < G; g++) grad[(size_t)n * G + g] = (float)gr[g];
    }
    free(p);
    return RL_OK;
}

rl_status align_group_outcomes(int N, int G, const float *r, const float *r_ref,
                               double *mean_out, double *win_out, align_outcome_summary *sum) {
    if (N < 1 || G < 1) return rl_fail(RL_EINVAL, "group outcomes: need N >= 1 samples and G >= 1 groups");
    double *m = calloc((size_t)G * 2, sizeof *m);
    if (!m) return rl_fail(RL_ENOMEM, "group outcomes: out of memory");
    double *w = m + G;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            double x = r[(size_t)n * G + g];
            m[g] += x;
            if (r_ref) {
                double y = r_ref[(size_t)n * G + g];
                w[g] += x > y ? 1.0 : (x == y ? 0.5 : 0.0);
            }
        }
    int best = 0, worst = 0, wbest = 0, wworst = 0;
    for (int g = 0; g < G; g++) {
        m[g] /= N;
        w[g] = r_ref ? w[g] / N : NAN;
        if (m[g] > m[best]) best = g;
        if (m[g] < m[worst]) worst = g;
        if (r_ref && w[g] > w[wbest]) wbest = g;
        if (r_ref && w[g] < w[wworst]) wworst = g;
    }
    if (mean_out) memcpy(mean_out, m, (size_t)G * sizeof *m);
    if (win_out) memcpy(win_out, w, (size_t)G * sizeof *w);
    if (sum) {
        sum->gap_mean = m[best] - m[worst];
        sum->gap_win = r_ref ? w[wbest] - w[wworst] : NAN;
        sum->best = best;
        sum->worst = worst;
        sum->worst_win = r_ref ? wworst : -1;
        sum->win_ratio = r_ref && w[wbest] > 0 ? w[wworst] / w[wbest] : NAN;
        double mw = 0, d = 0;
        for (int g = 0; g < G; g++) mw += w[g] / G;
        for (int g = 0; g < G; g++) for (int h = 0; h < G; h++) d += fabs(w[g] - w[h]);
        sum->win_gini = r_ref && mw > 0 ? d / (2.0 * G * G * mw) : NAN;
    }
    free(m);
    return RL_OK;
}
