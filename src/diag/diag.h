/* diag.h — reward-hacking monitors and over-optimisation fits.
 *
 * A trainer (RM, PPO/RLOO/GRPO, best-of-n, DPO/KTO) fills a diag_step with
 * whatever it measured this step (NAN for the rest) and calls diag_update.
 * Each monitor compares one value with a documented threshold; when the value
 * stays beyond it for `patience` consecutive updates the monitor emits ONE
 * warning {monitor, step, value, threshold, what, why, what to try}: printed
 * with rl_warn and written as a row {"event":"warning",...} to the trainer's
 * JSONL metrics. It re-arms only after the value comes back past the clear
 * level (threshold moved back by `hysteresis`, relative), so a value hovering
 * at the threshold warns once. docs/diagnostics.md explains every monitor.
 *
 *   diag_monitor dm; diag_config dc; diag_config_default(&dc);
 *   diag_init(&dm, &dc, &metrics);                   // metrics may be NULL
 *   diag_set_reference(&dm, &ref);                   // values on reference-policy samples (optional)
 *   for each step: diag_step s; diag_step_clear(&s); s.kl = ...; s.proxy = ...;
 *                  diag_update(&dm, step, &s);
 *
 * No allocation: the monitor is a plain struct with fixed-size history.
 *
 * Over-optimisation fits (Gao, Schulman, Hilton 2022, arXiv 2210.10760):
 * gold reward R against d = sqrt(KL(pi || pi_ref)), with R(0) = 0,
 *   best-of-n  R(d) = d (alpha - beta d)       peak d* = alpha / (2 beta),   R* = alpha^2 / (4 beta)
 *   RL         R(d) = d (alpha - beta ln d)    peak d* = exp(alpha/beta - 1), R* = beta d*
 * Both are linear in (alpha, beta), so least squares is a 2x2 solve.
 */
#ifndef RL_DIAG_H
#define RL_DIAG_H
#include <stdint.h>
#include "../base/check.h"
#include "../base/log.h"

typedef enum {
    DIAG_KL_BUDGET = 0,   /* KL to the reference above a budget */
    DIAG_KL_GROWTH,       /* KL rising fast (least-squares slope over a window) */
    DIAG_PROXY_GOLD,      /* proxy reward up while gold / held-out reward falls from its peak */
    DIAG_OVEROPT_PEAK,    /* d = sqrt(KL) past 80% of the peak predicted by the Gao RL fit */
    DIAG_ENSEMBLE,        /* reward-ensemble disagreement vs its value on reference samples */
    DIAG_LENGTH_TREND,    /* mean length vs reference */
    DIAG_LENGTH_CORR,     /* Pearson(length, reward) over a step's samples */
    DIAG_ENTROPY,         /* per-token entropy collapse vs reference */
    DIAG_DISTINCT,        /* distinct-n (diversity) collapse vs reference */
    DIAG_SYCOPHANCY,      /* rate of agreeing with a wrong user suggestion, rise over reference */
    DIAG_REWARD_RANGE,    /* share of rewards beyond the RM's training range */
    DIAG_DPO_FALLING,     /* DPO/KTO: chosen AND rejected log-probs both falling */
    DIAG_NMONITORS
} diag_id;

/* "kl_budget", "kl_growth", "proxy_gold_divergence", ... (stable names used in logs). */
const char *diag_name(diag_id id);

/* One step's measurements. NAN = not measured (the monitors that need it skip the step). */
typedef struct {
    double kl;              /* mean per-sequence KL(pi || pi_ref), nats */
    double proxy;           /* mean proxy reward (the reward being optimised) */
    double gold;            /* mean gold or held-out reward (e.g. gold accuracy in [0,1]) */
    double ens_std;         /* mean over samples of the reward ensemble's std */
    double length;          /* mean response length (tokens or bytes, consistently) */
    double len_reward_corr; /* Pearson(length, reward) over the step's samples (diag_pearson) */
    double entropy;         /* mean per-token entropy of the policy, nats */
    double distinct;        /* distinct-n of the step's samples (diag_distinct_n) */
    double sycophancy;      /* share of answers agreeing with a wrong suggestion */
    double above_range;     /* share of samples whose reward exceeds the RM's training range (diag_frac_above) */
    double chosen_logp;     /* DPO/KTO: mean log-prob of chosen responses under the policy */
    double rejected_logp;   /* DPO/KTO: mean log-prob of rejected responses */
} diag_step;

/* Sets every field to NAN. */
void diag_step_clear(diag_step *s);

typedef struct {
    double kl_budget;      /* nats; default 6 */
    double kl_growth;      /* nats per update, slope over `window` updates; default 0.1 */
    int window;            /* updates in the KL slope; default 10 */
    double gold_drop;      /* absolute fall of the smoothed gold from its peak; default 0.03 */
    double proxy_rise;     /* ... while the smoothed proxy rose at least this since that peak; default 0 */
    double gold_noise_z;   /* ... and by at least this many estimated standard errors of one gold value; default 4 */
    double ema;            /* smoothing weight of new gold/proxy values; default 0.5 */
    double peak_frac;      /* warn when d > peak_frac * d*; default 0.8 */
    int peak_min_points;   /* (d, gold) points before fitting; default 10 */
    double peak_min_r2;    /* fits explaining less than this are ignored; default 0.7; the predicted
                              gain R* must also exceed gold_noise_z/2 estimated standard errors */
    double ens_ratio;      /* ensemble std / reference; default 2.0 (Coste et al.) */
    double len_ratio;      /* length / reference; default 1.5 */
    double len_corr;       /* Pearson(length, reward); default 0.6 */
    double entropy_ratio;  /* entropy / reference, warn BELOW; default 0.5 */
    double distinct_ratio; /* distinct-n / reference, warn BELOW; default 0.5 */
    double syc_rise;       /* sycophancy - reference; default 0.10 */
    double range_frac;     /* share above the RM's range; default 0.10 */
    double dpo_drop;       /* nats both log-probs fell from their start; default 1.0 */
    int patience;          /* consecutive updates beyond a threshold before warning; default 2 */
    int ref_steps;         /* reference values not set: mean of the first ref_steps updates; default 3 */
    double hysteresis;     /* re-arm when the value is back by this fraction of the threshold; default 0.2 */
    int print;             /* rl_warn the warnings; default 1 */
} diag_config;

void diag_config_default(diag_config *c);

typedef struct {
    diag_id monitor;
    int64_t step;
    double value, threshold;
    const char *what, *why, *try_;  /* static strings */
} diag_warning;

#define DIAG_MAX_WARNINGS 64
#define DIAG_KL_HISTORY 64
#define DIAG_MAX_POINTS 512

typedef struct {
    diag_config cfg;
    rl_metrics *log;            /* not owned; NULL = no JSONL rows */
    diag_step ref;              /* reference values (NAN until set or first seen) */
    int ref_n[12];              /* per diag_step field: updates averaged into ref (-1 = set explicitly) */
    double value[DIAG_NMONITORS]; /* latest value per monitor (NAN if not computed) */
    double threshold[DIAG_NMONITORS]; /* threshold in force (proxy_gold's adapts to gold noise) */
    int over[DIAG_NMONITORS];   /* consecutive updates beyond threshold */
    int armed[DIAG_NMONITORS];  /* 1 = may warn */
    int nfired[DIAG_NMONITORS];
    /* KL history for the slope (ring buffer) */
    double kl_step[DIAG_KL_HISTORY], kl_val[DIAG_KL_HISTORY];
    int kl_n, kl_head;
    /* proxy/gold smoothing */
    double proxy_ema, gold_ema, gold_peak, proxy_at_peak;
    double gold_last, gold_dsq; /* previous gold; EMA of squared successive differences */
    int have_proxy, have_gold, gold_ndiff;
    /* (d, gold - gold0) points for the over-optimisation fit */
    double pt_d[DIAG_MAX_POINTS], pt_r[DIAG_MAX_POINTS];
    int npts;
    double gold0;
    diag_warning warnings[DIAG_MAX_WARNINGS];
    int nwarnings;              /* stored (at most DIAG_MAX_WARNINGS) */
    int nwarnings_total;
} diag_monitor;

/* cfg NULL = defaults. `log` may be NULL. */
void diag_init(diag_monitor *m, const diag_config *cfg, rl_metrics *log);
/* Reference values measured on reference-policy samples (ens_std, length,
 * entropy, distinct, sycophancy, chosen_logp, rejected_logp; NAN fields are
 * ignored). Fields never set are the mean of the first cfg.ref_steps updates
 * that have them (a reference run measured on many samples is better). */
void diag_set_reference(diag_monitor *m, const diag_step *ref);
/* Feeds one step. Returns the number of warnings emitted by this call. */
int diag_update(diag_monitor *m, int64_t step, const diag_step *s);
/* Adds the monitors' current values ("diag_<name>") to an open metrics row
 * (between rl_metrics_begin and rl_metrics_end). */
void diag_metrics_fields(const diag_monitor *m, rl_metrics *row);
/* Whether monitor `id` has warned at least once. */
static inline int diag_fired(const diag_monitor *m, diag_id id) { return m->nfired[id] > 0; }

/* ---- helpers a trainer uses to fill a diag_step -------------------------- */

/* Pearson correlation of x and y (n values); NAN if n < 2 or a variance is 0. */
double diag_pearson(const double *x, const double *y, int n);
/* distinct-n over n texts: unique byte n-grams / total byte n-grams (1 = all
 * different, near 0 = repetitive). `scratch` holds at least the total number
 * of n-grams (sum of len - ngram + 1); returns NAN when it is too small or
 * there is no n-gram. */
double diag_distinct_n(const char *const *texts, int n, int ngram, uint64_t *scratch, size_t scratch_cap);
/* Share of rewards strictly above `hi`. */
double diag_frac_above(const float *rewards, int n, float hi);
/* q-quantile (0..1, linear interpolation) of x; sorts x in place. NAN if n < 1. */
double diag_quantile(double *x, int n, double q);

/* ---- Gao et al. over-optimisation fits ----------------------------------- */

typedef enum { DIAG_GAO_BON = 0, DIAG_GAO_RL = 1 } diag_gao_form;

typedef struct {
    double alpha, beta;
    double d_star;   /* predicted peak; INFINITY when the fit has no peak (beta <= 0) */
    double r_star;   /* predicted gold at the peak */
    double rmse, r2; /* fit quality (r2 around the mean of r) */
    int n;
} diag_gao_fit;

/* Least squares of r = d(alpha - beta d) (BON) or d(alpha - beta ln d) (RL)
 * over n points (d >= 0, r = gold - gold at d=0). RL_EINVAL when n < 2, a d
 * is negative or not finite, or the points cannot fix both parameters. */
rl_status diag_gao_fit_points(diag_gao_form form, const double *d, const double *r, int n, diag_gao_fit *fit);
/* The fitted curve at d. */
double diag_gao_eval(diag_gao_form form, double alpha, double beta, double d);

#endif
