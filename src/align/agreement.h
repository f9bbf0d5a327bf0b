/* agreement.h — inter-annotator agreement and annotator reliability:
 * Krippendorff's α (nominal, ordinal, interval, ratio; missing values),
 * Cohen's κ (two raters, optional linear/quadratic weights), Fleiss' κ,
 * per-group α, and Dawid–Skene EM for categorical labels.
 *
 * Arrays only: a reliability matrix x (ncoders, nunits) with NAN for "this
 * coder did not rate this unit", or (item, annotator, label) triples for
 * Dawid–Skene. Formulas and the worked examples the tests reproduce:
 * docs/align.md. */
#ifndef RL_ALIGN_AGREEMENT_H
#define RL_ALIGN_AGREEMENT_H
#include "../base/check.h"

typedef enum {
    ALIGN_NOMINAL = 0,  /* δ²(c,k) = [c ≠ k] */
    ALIGN_ORDINAL,      /* δ²(c,k) = (Σ_{g=c..k} n_g − (n_c + n_k)/2)², ranks of the sorted values */
    ALIGN_INTERVAL,     /* δ²(c,k) = (c − k)² */
    ALIGN_RATIO         /* δ²(c,k) = ((c − k)/(c + k))², values >= 0 */
} align_metric;

/* Parses "nominal" | "ordinal" | "interval" | "ratio"; -1 if unknown. */
int align_metric_parse(const char *s);

typedef struct {
    double alpha;   /* 1 − D_o/D_e */
    double d_obs;   /* observed disagreement D_o = (1/n) Σ o_ck δ²_ck */
    double d_exp;   /* expected disagreement D_e = (1/(n(n−1))) Σ n_c n_k δ²_ck */
    double n_pairable; /* n = Σ_c n_c: values in units with >= 2 values */
    int n_values;   /* distinct values seen in pairable units */
    int n_units;    /* units with >= 2 values */
} align_alpha_result;

/* Krippendorff's α by the coincidence-matrix method (Krippendorff 2011):
 * o_ck = Σ_u (number of ordered pairs (c,k) of values from different coders in
 * unit u) / (m_u − 1), over units with m_u >= 2 values; n_c = Σ_k o_ck.
 * x: (ncoders, nunits) row-major, NAN = missing; values are compared exactly
 * (nominal codes, ordinal ranks or numbers).
 * RL_EINVAL if no unit has two values, or every pairable value is the same
 * (D_e = 0: α is undefined), or (ratio) a value is negative.
 * out->alpha is NAN on error. */
rl_status align_krippendorff_alpha(int ncoders, int nunits, const double *x /*(ncoders,nunits)*/,
                                   align_metric metric, align_alpha_result *out);

/* α computed over the coders of each group separately (e.g. demographic
 * groups of annotators). coder_group: (ncoders) in 0..ngroups-1 (or < 0 to
 * leave a coder out). alpha_out: (ngroups), NAN where α is undefined for that
 * group (fewer than two coders on any unit, or no variation). Also returns the
 * pooled α over all coders in *alpha_all (NAN if undefined; may be NULL). */
rl_status align_alpha_by_group(int ncoders, int nunits, const double *x /*(ncoders,nunits)*/, align_metric metric,
                               const int *coder_group /*(ncoders)*/, int ngroups,
                               double *alpha_out /*(ngroups)*/, double *alpha_all);

/* Raw pairwise percent agreement: over units with >= 2 values, the fraction
 * of pairs of values (from different coders) that are equal, each unit's pairs
 * weighted by 1/(m_u − 1) as in α's coincidences. The number RLHF papers quote
 * as "inter-annotator agreement". RL_EINVAL if no unit has two values. */
rl_status align_percent_agreement(int ncoders, int nunits, const double *x, double *agree_out);

typedef enum { ALIGN_KAPPA_UNWEIGHTED = 0, ALIGN_KAPPA_LINEAR, ALIGN_KAPPA_QUADRATIC } align_kappa_weights;

/* Cohen's κ for two raters over n items with K categories: a[i], b[i] in
 * 0..K-1, a negative code = missing (the item is skipped).
 * κ = (p_o − p_e)/(1 − p_e) unweighted; weighted κ_w = 1 − Σ v_ij o_ij / Σ v_ij e_ij
 * with disagreement weights v_ij = |i−j|/(K−1) (linear) or ((i−j)/(K−1))²
 * (quadratic), o = observed joint proportions, e = product of the marginals.
 * RL_EINVAL if no item has both ratings or p_e = 1 (κ undefined). */
rl_status align_cohen_kappa(int n, const int *a /*(n)*/, const int *b /*(n)*/, int K,
                            align_kappa_weights weights, double *kappa_out);

/* Fleiss' κ: counts[i*K + j] = number of raters who put item i in category j;
 * every item must have the same number m >= 2 of ratings.
 * P_i = (Σ_j n_ij² − m)/(m(m−1)), P̄ = mean P_i, p_j = Σ_i n_ij/(N m),
 * P̄_e = Σ p_j², κ = (P̄ − P̄_e)/(1 − P̄_e). RL_EINVAL on unequal m or P̄_e = 1. */
rl_status align_fleiss_kappa(int N, int K, const int *counts /*(N,K)*/, double *kappa_out);

/* ---- Dawid–Skene ----------------------------------------------------------- */

typedef struct {
    int max_iter;      /* EM iterations; default 100 (crowd-kit's default) */
    double tol;        /* stop when the log-likelihood gains less than tol per observation; default 1e-7 */
    double smoothing;  /* Dirichlet pseudo-count added to every confusion cell and prior; default 0.01 */
} align_ds_opts;

align_ds_opts align_ds_defaults(void);

typedef struct {
    int n_items, n_annot, K;
    double *prior;       /* (K) class priors p_c */
    double *confusion;   /* (n_annot, K, K): confusion[(a*K + c)*K + k] = P(annotator a says k | true class c);
                            rows over k sum to 1 */
    double *posterior;   /* (n_items, K) P(true class | labels) */
    int *label;          /* (n_items) argmax of the posterior (ties: lowest class) */
    double *reliability; /* (n_annot) expected accuracy Σ_c p_c e_a[c][c]; usable as a per-annotator weight.
                            Annotators with no labels get the prior's expected accuracy under a uniform
                            confusion, 1/K. */
    int iterations;
    int converged;
    double loglik;       /* log P(labels) under the final parameters (before the last E-step's update) */
} align_ds_result;

/* Dawid–Skene (1979) EM. Observations are n_obs triples (item[o], annot[o],
 * label[o]) with item in 0..n_items-1, annot in 0..n_annot-1, label in 0..K-1.
 * An annotator may label an item more than once (each label counts).
 * init_posterior: (n_items, K) to start from (the M-step runs first), or NULL
 * for the majority-vote start: each item's label fractions.
 * Items with no labels keep the prior as posterior.
 * Iteration: M-step  p_c ∝ s + Σ_i T_ic;  e_a[c][k] ∝ s + Σ_{o: annot a, label k} T_{item(o),c}
 *            E-step  log T_ic = log p_c + Σ_{o: item i} log e_{annot(o)}[c][label(o)] − log Z_i
 * (s = opts.smoothing). On success out owns its arrays (align_ds_free).
 * RL_EINVAL on a code out of range, RL_ENOMEM. */
rl_status align_dawid_skene(int n_obs, const int *item /*(n_obs)*/, const int *annot /*(n_obs)*/, const int *label /*(n_obs)*/,
                            int n_items, int n_annot, int K, const double *init_posterior /*(n_items,K) or NULL*/,
                            const align_ds_opts *opts, align_ds_result *out);
void align_ds_free(align_ds_result *r);

/* Majority vote per item (ties: lowest class; items without labels: -1).
 * label_out: (n_items). */
rl_status align_majority_vote(int n_obs, const int *item, const int *label, int n_items, int K, int *label_out /*(n_items)*/);

#endif
