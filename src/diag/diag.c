/* diag.c — reward-hacking monitors (streaming), helpers, and the Gao fits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "diag.h"

typedef struct {
    const char *name;
    int below;          /* warn when the value is BELOW the threshold */
    const char *what, *why, *try_;
} monitor_text;

static const monitor_text texts[DIAG_NMONITORS] = {
    [DIAG_KL_BUDGET] = {"kl_budget", 0,
        "KL to the reference policy is beyond its budget",
        "far from the reference the reward model is extrapolating; gold quality usually peaks and then falls (Gao et al. 2022)",
        "raise the KL coefficient or use an adaptive KL target, stop early at the checkpoint with the best held-out reward"},
    [DIAG_KL_GROWTH] = {"kl_growth", 0,
        "KL to the reference is growing fast",
        "a fast KL climb means the policy found something the reward model pays for; that is when exploits appear",
        "lower the learning rate, raise the KL coefficient, inspect the highest-reward samples"},
    [DIAG_PROXY_GOLD] = {"proxy_gold_divergence", 0,
        "proxy reward is rising while gold / held-out reward has fallen from its peak",
        "the policy is optimising what the reward model believes, not what is true: over-optimisation",
        "stop at the checkpoint where held-out reward peaked; use a reward ensemble (min or mean - lambda*std); audit a share of judgements with informed evaluators"},
    [DIAG_OVEROPT_PEAK] = {"overoptimization_peak", 0,
        "sqrt(KL) is past 80% of the peak predicted by the Gao RL fit of gold reward",
        "beyond the predicted peak more optimisation lowers gold reward",
        "stop or checkpoint now; compare against the early-stopping point at d*"},
    [DIAG_ENSEMBLE] = {"ensemble_disagreement", 0,
        "reward-ensemble members disagree much more on policy samples than on reference samples",
        "disagreement means the samples are off the reward models' training distribution (Coste et al. 2024 saw 2.5-3x under hacking)",
        "optimise the ensemble's minimum or mean - lambda*std, raise the KL coefficient"},
    [DIAG_LENGTH_TREND] = {"length_growth", 0,
        "mean response length has grown well beyond the reference's",
        "reward models often pay for length itself (Singhal et al. 2024), not for quality",
        "check length-matched win rates, add a length penalty or length-balance the preference data"},
    [DIAG_LENGTH_CORR] = {"length_reward_correlation", 0,
        "reward is strongly correlated with response length",
        "a reward that tracks length can be raised by padding answers",
        "measure the length-bucketed reward gain (NRG), length-balance the RM's data, penalise length"},
    [DIAG_ENTROPY] = {"entropy_collapse", 1,
        "per-token entropy of the policy collapsed relative to the reference",
        "a collapsed policy repeats one answer pattern; rising reward with collapsing entropy is a classic hacking signature",
        "raise the KL coefficient or an entropy bonus, lower the learning rate"},
    [DIAG_DISTINCT] = {"distinct_collapse", 1,
        "distinct-n of samples collapsed relative to the reference (repetition)",
        "the policy produces the same strings; diversity loss often comes with exploiting the reward model",
        "inspect samples for a repeated exploit, raise the KL coefficient"},
    [DIAG_SYCOPHANCY] = {"sycophancy", 0,
        "the policy agrees with wrong user suggestions more than the reference did",
        "evaluators who do not check reward agreement; the model learns to tell users what they believe (Sharma et al. 2023)",
        "audit judgements on leading prompts with informed evaluators, weight them up, train on probes where the user is wrong"},
    [DIAG_REWARD_RANGE] = {"reward_out_of_range", 0,
        "a large share of rewards is beyond the range the reward model saw in training",
        "rewards out of the training range are extrapolations the reward model was never checked on",
        "clip or normalise rewards, raise the KL coefficient, score with an ensemble"},
    [DIAG_DPO_FALLING] = {"dpo_both_logps_falling", 0,
        "log-probabilities of both chosen and rejected responses are falling",
        "the margin grows by pushing probability mass to responses in neither set, which can be degenerate",
        "lower beta or the learning rate, add an SFT term on chosen responses, check samples"},
};

/* diag_step_clear and the reference copy treat a diag_step as an array of doubles. */
_Static_assert(sizeof(diag_step) == 12 * sizeof(double), "diag_step must hold only doubles");

const char *diag_name(diag_id id) { return (id >= 0 && id < DIAG_NMONITORS) ? texts[id].name : "unknown"; }

void diag_step_clear(diag_step *s) {
    double *f = (double *)s;
    for (size_t i = 0; i < sizeof *s / sizeof(double); i++) f[i] = NAN;
}

void diag_config_default(diag_config *c) {
    memset(c, 0, sizeof *c);
    c->kl_budget = 6.0;
    c->kl_growth = 0.1;
    c->window = 10;
    c->gold_drop = 0.03;
    c->proxy_rise = 0.0;
    c->gold_noise_z = 4.0;
    c->ema = 0.5;
    c->peak_frac = 0.8;
    c->peak_min_points = 10;
    c->peak_min_r2 = 0.7;
    c->ens_ratio = 2.0;
    c->len_ratio = 1.5;
    c->len_corr = 0.6;
    c->entropy_ratio = 0.3;
    c->distinct_ratio = 0.5;
    c->syc_rise = 0.10;
    c->range_frac = 0.10;
    c->dpo_drop = 1.0;
    c->patience = 2;
    c->ref_steps = 3;
    c->hysteresis = 0.2;
    c->print = 1;
}

static double threshold_of(const diag_config *c, diag_id id);

void diag_init(diag_monitor *m, const diag_config *cfg, rl_metrics *log) {
    memset(m, 0, sizeof *m);
    if (cfg) m->cfg = *cfg;
    else diag_config_default(&m->cfg);
    if (m->cfg.window < 2) m->cfg.window = 2;
    if (m->cfg.window > DIAG_KL_HISTORY) m->cfg.window = DIAG_KL_HISTORY;
    if (m->cfg.patience < 1) m->cfg.patience = 1;
    if (m->cfg.ref_steps < 1) m->cfg.ref_steps = 1;
    m->log = log;
    diag_step_clear(&m->ref);
    for (int i = 0; i < DIAG_NMONITORS; i++) { m->armed[i] = 1; m->value[i] = NAN; m->threshold[i] = threshold_of(&m->cfg, (diag_id)i); }
    m->gold0 = NAN;
}

void diag_set_reference(diag_monitor *m, const diag_step *ref) {
    const double *src = (const double *)ref;
    double *dst = (double *)&m->ref;
    for (size_t i = 0; i < sizeof *ref / sizeof(double); i++)
        if (isfinite(src[i])) { dst[i] = src[i]; m->ref_n[i] = -1; /* explicit: never averaged */ }
}

static double threshold_of(const diag_config *c, diag_id id) {
    switch (id) {
    case DIAG_KL_BUDGET: return c->kl_budget;
    case DIAG_KL_GROWTH: return c->kl_growth;
    case DIAG_PROXY_GOLD: return c->gold_drop;
    case DIAG_OVEROPT_PEAK: return c->peak_frac;
    case DIAG_ENSEMBLE: return c->ens_ratio;
    case DIAG_LENGTH_TREND: return c->len_ratio;
    case DIAG_LENGTH_CORR: return c->len_corr;
    case DIAG_ENTROPY: return c->entropy_ratio;
    case DIAG_DISTINCT: return c->distinct_ratio;
    case DIAG_SYCOPHANCY: return c->syc_rise;
    case DIAG_REWARD_RANGE: return c->range_frac;
    case DIAG_DPO_FALLING: return c->dpo_drop;
    default: return NAN;
    }
}

static void emit(diag_monitor *m, diag_id id, int64_t step, double v, double thr) {
    const monitor_text *t = &texts[id];
    diag_warning w = {id, step, v, thr, t->what, t->why, t->try_};
    if (m->nwarnings < DIAG_MAX_WARNINGS) m->warnings[m->nwarnings++] = w;
    m->nwarnings_total++;
    m->nfired[id]++;
    if (m->cfg.print)
        rl_warn("[%s] step %lld: %s (value %.4g, threshold %s %.4g)\n  why it matters: %s\n  what to try: %s", t->name,
                (long long)step, t->what, v, t->below ? "<" : ">", thr, t->why, t->try_);
    if (m->log) {
        rl_metrics_begin(m->log);
        rl_metrics_s(m->log, "event", "warning");
        rl_metrics_s(m->log, "monitor", t->name);
        rl_metrics_i(m->log, "step", step);
        rl_metrics_f(m->log, "value", v);
        rl_metrics_f(m->log, "threshold", thr);
        rl_metrics_s(m->log, "direction", t->below ? "below" : "above");
        rl_metrics_s(m->log, "what", t->what);
        rl_metrics_s(m->log, "why", t->why);
        rl_metrics_s(m->log, "try", t->try_);
        rl_metrics_end(m->log);
    }
}

/* One monitor's state machine: patience, fire once, re-arm past the clear level. */
static int check_thr(diag_monitor *m, diag_id id, int64_t step, double v, double thr) {
    m->value[id] = v;
    m->threshold[id] = thr;
    if (!isfinite(v)) return 0;
    int below = texts[id].below;
    double margin = m->cfg.hysteresis * fabs(thr);
    int beyond = below ? v < thr : v > thr;
    int clear = below ? v > thr + margin : v < thr - margin;
    if (beyond) {
        m->over[id]++;
        if (m->armed[id] && m->over[id] >= m->cfg.patience) {
            m->armed[id] = 0;
            emit(m, id, step, v, thr);
            return 1;
        }
    } else {
        m->over[id] = 0;
        if (clear) m->armed[id] = 1;
    }
    return 0;
}

static int check(diag_monitor *m, diag_id id, int64_t step, double v) {
    return check_thr(m, id, step, v, threshold_of(&m->cfg, id));
}

/* Least-squares slope of the last `w` KL points. */
static double kl_slope(const diag_monitor *m, int w) {
    if (m->kl_n < w) return NAN;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < w; i++) {
        int k = (m->kl_head - 1 - i + DIAG_KL_HISTORY) % DIAG_KL_HISTORY;
        double x = m->kl_step[k], y = m->kl_val[k];
        sx += x; sy += y; sxx += x * x; sxy += x * y;
    }
    double den = w * sxx - sx * sx;
    return den > 0 ? (w * sxy - sx * sy) / den : NAN;
}

static double ratio(double v, double ref) { return (isfinite(v) && isfinite(ref) && ref != 0) ? v / ref : NAN; }

int diag_update(diag_monitor *m, int64_t step, const diag_step *s) {
    const diag_config *c = &m->cfg;
    int fired = 0;
    /* Reference values not given: the mean of the first ref_steps updates that
     * have them (one step's value is too noisy to be a baseline). */
    {
        diag_step first = *s;
        first.kl = first.proxy = first.gold = first.len_reward_corr = first.above_range = NAN;
        const double *src = (const double *)&first;
        double *dst = (double *)&m->ref;
        for (size_t i = 0; i < sizeof first / sizeof(double); i++) {
            if (m->ref_n[i] < 0 || m->ref_n[i] >= c->ref_steps || !isfinite(src[i])) continue; /* set explicitly, complete, or missing */
            dst[i] = m->ref_n[i] ? (dst[i] * m->ref_n[i] + src[i]) / (m->ref_n[i] + 1) : src[i];
            m->ref_n[i]++;
        }
    }

    /* KL */
    fired += check(m, DIAG_KL_BUDGET, step, s->kl);
    if (isfinite(s->kl)) {
        m->kl_step[m->kl_head] = (double)step;
        m->kl_val[m->kl_head] = s->kl;
        m->kl_head = (m->kl_head + 1) % DIAG_KL_HISTORY;
        if (m->kl_n < DIAG_KL_HISTORY) m->kl_n++;
        fired += check(m, DIAG_KL_GROWTH, step, kl_slope(m, c->window));
    }

    /* Proxy vs gold: smoothed gold fell from its peak while smoothed proxy did not. */
    if (isfinite(s->proxy)) {
        m->proxy_ema = m->have_proxy ? (1 - c->ema) * m->proxy_ema + c->ema * s->proxy : s->proxy;
        m->have_proxy = 1;
    }
    if (isfinite(s->gold)) {
        /* Measurement noise of gold from successive differences: E[(g_t - g_t-1)^2] = 2 sigma^2
         * for a slowly moving mean. A noisy plateau makes (peak of the EMA) - (EMA)
         * reach ~3 sigma by chance, so the threshold is at least gold_noise_z * sigma. */
        if (m->have_gold) {
            double dg = s->gold - m->gold_last;
            m->gold_dsq = m->gold_ndiff ? 0.9 * m->gold_dsq + 0.1 * dg * dg : dg * dg;
            m->gold_ndiff++;
        }
        m->gold_last = s->gold;
        m->gold_ema = m->have_gold ? (1 - c->ema) * m->gold_ema + c->ema * s->gold : s->gold;
        if (!m->have_gold || m->gold_ema > m->gold_peak) { m->gold_peak = m->gold_ema; m->proxy_at_peak = m->proxy_ema; }
        m->have_gold = 1;
        if (m->have_proxy) {
            double drop = m->gold_peak - m->gold_ema, rise = m->proxy_ema - m->proxy_at_peak;
            double sigma = m->gold_ndiff >= 5 ? sqrt(m->gold_dsq / 2) : 0;
            double thr = fmax(c->gold_drop, c->gold_noise_z * sigma);
            fired += check_thr(m, DIAG_PROXY_GOLD, step, rise >= c->proxy_rise ? drop : 0.0, thr);
        }
        /* Over-optimisation fit on (sqrt KL, gold - gold at the start). */
        if (isfinite(s->kl) && s->kl >= 0) {
            if (!isfinite(m->gold0)) m->gold0 = s->gold;
            if (m->npts < DIAG_MAX_POINTS) {
                m->pt_d[m->npts] = sqrt(s->kl);
                m->pt_r[m->npts] = s->gold - m->gold0;
                m->npts++;
            }
            double v = NAN;
            diag_gao_fit fit;
            /* v stays NAN (no information: the monitor neither warns nor re-arms)
             * until a fit is trusted; 0 when the trusted fit has no peak. */
            if (m->npts >= c->peak_min_points && diag_gao_fit_points(DIAG_GAO_RL, m->pt_d, m->pt_r, m->npts, &fit) == RL_OK) {
                /* Trust a peak only when the fit explains the points and the gain it
                 * predicts (R* = gold at the peak - gold at the start) stands out of
                 * the measurement noise: early, noisy points otherwise "predict" a
                 * peak just ahead. */
                double sigma = m->gold_ndiff >= 5 ? sqrt(m->gold_dsq / 2) : 0;
                if (fit.r2 >= c->peak_min_r2 && fit.alpha > 0) {
                    if (fit.beta <= 0) v = 0;
                    else if (fit.r_star > 0.5 * c->gold_noise_z * sigma) v = sqrt(s->kl) / fit.d_star;
                }
            }
            fired += check(m, DIAG_OVEROPT_PEAK, step, v);
        }
    }

    fired += check(m, DIAG_ENSEMBLE, step, ratio(s->ens_std, m->ref.ens_std));
    fired += check(m, DIAG_LENGTH_TREND, step, ratio(s->length, m->ref.length));
    fired += check(m, DIAG_LENGTH_CORR, step, s->len_reward_corr);
    fired += check(m, DIAG_ENTROPY, step, ratio(s->entropy, m->ref.entropy));
    fired += check(m, DIAG_DISTINCT, step, ratio(s->distinct, m->ref.distinct));
    fired += check(m, DIAG_SYCOPHANCY, step, isfinite(s->sycophancy) ? s->sycophancy - (isfinite(m->ref.sycophancy) ? m->ref.sycophancy : 0) : NAN);
    fired += check(m, DIAG_REWARD_RANGE, step, s->above_range);
    if (isfinite(s->chosen_logp) && isfinite(s->rejected_logp)) {
        double dc = m->ref.chosen_logp - s->chosen_logp, dr = m->ref.rejected_logp - s->rejected_logp;
        fired += check(m, DIAG_DPO_FALLING, step, dc < dr ? dc : dr);
    }
    return fired;
}

void diag_metrics_fields(const diag_monitor *m, rl_metrics *row) {
    char key[64];
    for (int i = 0; i < DIAG_NMONITORS; i++) {
        if (!isfinite(m->value[i])) continue;
        snprintf(key, sizeof key, "diag_%s", texts[i].name);
        rl_metrics_f(row, key, m->value[i]);
    }
}

/* ---- helpers --------------------------------------------------------------- */

double diag_pearson(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n; my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
    }
    if (sxx <= 0 || syy <= 0) return NAN;
    return sxy / sqrt(sxx * syy);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double diag_distinct_n(const char *const *texts_in, int n, int ngram, uint64_t *scratch, size_t cap) {
    if (ngram < 1) return NAN;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t len = texts_in[i] ? strlen(texts_in[i]) : 0;
        for (size_t j = 0; j + (size_t)ngram <= len; j++) {
            if (total >= cap) return NAN;
            /* FNV-1a of the n-gram: collisions among a few thousand n-grams are negligible (64-bit). */
            uint64_t h = 1469598103934665603ULL;
            for (int k = 0; k < ngram; k++) { h ^= (unsigned char)texts_in[i][j + (size_t)k]; h *= 1099511628211ULL; }
            scratch[total++] = h;
        }
    }
    if (!total) return NAN;
    qsort(scratch, total, sizeof *scratch, cmp_u64);
    size_t uniq = 1;
    for (size_t i = 1; i < total; i++) uniq += scratch[i] != scratch[i - 1];
    return (double)uniq / (double)total;
}

double diag_frac_above(const float *r, int n, float hi) {
    if (n < 1) return NAN;
    int k = 0;
    for (int i = 0; i < n; i++) k += r[i] > hi;
    return (double)k / n;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double diag_quantile(double *x, int n, double q) {
    if (n < 1) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_d);
    if (q <= 0) return x[0];
    if (q >= 1) return x[n - 1];
    double pos = q * (n - 1);
    int i = (int)pos;
    double f = pos - i;
    return i + 1 < n ? x[i] * (1 - f) + x[i + 1] * f : x[i];
}

/* ---- Gao fits ---------------------------------------------------------------- */

/* Second basis function: R = alpha*d - beta*g(d). */
static double gbasis(diag_gao_form form, double d) {
    if (form == DIAG_GAO_BON) return d * d;
    return d > 0 ? d * log(d) : 0.0; /* d ln d -> 0 as d -> 0 */
}

double diag_gao_eval(diag_gao_form form, double alpha, double beta, double d) {
    return alpha * d - beta * gbasis(form, d);
}

rl_status diag_gao_fit_points(diag_gao_form form, const double *d, const double *r, int n, diag_gao_fit *fit) {
    memset(fit, 0, sizeof *fit);
    if (n < 2) return rl_fail(RL_EINVAL, "a Gao fit needs at least 2 points (got %d)", n);
    /* Normal equations for r ~ alpha*f1 - beta*f2 with f1 = d, f2 = g(d). */
    double s11 = 0, s12 = 0, s22 = 0, s1r = 0, s2r = 0;
    for (int i = 0; i < n; i++) {
        if (!(d[i] >= 0) || !isfinite(d[i]) || !isfinite(r[i]))
            return rl_fail(RL_EINVAL, "Gao fit point %d is invalid (d = %g, r = %g); d must be a finite sqrt(KL) >= 0", i, d[i], r[i]);
        double f1 = d[i], f2 = -gbasis(form, d[i]);
        s11 += f1 * f1; s12 += f1 * f2; s22 += f2 * f2; s1r += f1 * r[i]; s2r += f2 * r[i];
    }
    double det = s11 * s22 - s12 * s12;
    if (!(fabs(det) > 1e-12 * (s11 * s22 + 1e-300)))
        return rl_fail(RL_EINVAL, "Gao fit is degenerate: the %d points do not fix both alpha and beta (spread the d values)", n);
    fit->alpha = (s1r * s22 - s2r * s12) / det;
    fit->beta = (s2r * s11 - s1r * s12) / det;
    fit->n = n;
    double mean = 0, sse = 0, sst = 0;
    for (int i = 0; i < n; i++) mean += r[i];
    mean /= n;
    for (int i = 0; i < n; i++) {
        double e = r[i] - diag_gao_eval(form, fit->alpha, fit->beta, d[i]);
        sse += e * e;
        sst += (r[i] - mean) * (r[i] - mean);
    }
    fit->rmse = sqrt(sse / n);
    fit->r2 = sst > 0 ? 1 - sse / sst : NAN;
    if (fit->beta <= 0) {
        fit->d_star = INFINITY;
        fit->r_star = fit->alpha > 0 ? INFINITY : 0;
    } else if (form == DIAG_GAO_BON) {
        /* d(alpha - beta d): vertex at alpha/(2 beta); with alpha <= 0 it only falls, peak at 0 */
        fit->d_star = fit->alpha > 0 ? fit->alpha / (2 * fit->beta) : 0;
        fit->r_star = fit->alpha > 0 ? fit->alpha * fit->alpha / (4 * fit->beta) : 0;
    } else {
        /* d/dd [alpha d - beta d ln d] = alpha - beta ln d - beta = 0 */
        fit->d_star = exp(fit->alpha / fit->beta - 1);
        fit->r_star = fit->beta * fit->d_star;
    }
    return RL_OK;
}
