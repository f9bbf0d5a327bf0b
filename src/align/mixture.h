/* mixture.h — unknown groups: an EM mixture of K reward models over
 * annotators (MaxMin-RLHF, Chakraborty et al. 2024, Algorithm 2), and the
 * clustering comparisons used to say how stable the discovered groups are.
 *
 * Data: n_cmp comparisons (one chosen, one rejected response each), each made
 * by one annotator annot[c] in 0..n_annot-1, with a weight w[c] >= 0 (the
 * record weight; NULL = 1). Every annotator h is assigned to ONE cluster u(h)
 * (hard EM, as in the paper and both public implementations):
 *
 *   E-step   u(h) = argmax_k Σ_{c ∈ D_h} w_c log σ(r_k(chosen_c) − r_k(rejected_c))
 *   M-step   refit r_k on the comparisons of the annotators with u(h) = k
 *
 * repeated until no assignment changes (or max_iter). The reward models are
 * abstract (align_mix_model below): the EM core only asks "refit model k on
 * these comparison weights" and "log-likelihood of each comparison under
 * model k". align_linbt (linbt.h) is the implementation shipped: a linear
 * Bradley–Terry model on hashed byte n-grams of the responses.
 *
 * Initialisation (per restart), k-means++ over annotators: model 0 is fit on
 * the comparisons of one annotator drawn uniformly; each next model on an
 * annotator drawn with probability ∝ (its mean negative log-likelihood per
 * comparison under the best model so far)², so seeds land on annotators the
 * existing models explain badly. An empty cluster after an E-step is
 * re-seeded with the annotator worst explained by its own cluster (taken
 * from a cluster with >= 2 annotators) and counted in `reseeded`.
 * Of `restarts` runs per seed the one with the highest total log-likelihood
 * is kept; the models are refit on its assignment at the end, so the caller
 * can score responses with them. Formulas and choices: docs/align.md §6.
 */
#ifndef RL_ALIGN_MIXTURE_H
#define RL_ALIGN_MIXTURE_H
#include <stdint.h>
#include "../base/check.h"

/* A family of K reward models over a fixed set of n_cmp comparisons. */
typedef struct {
    void *ctx;
    int K;       /* models available (>= the K asked of align_mixture_fit) */
    int n_cmp;
    /* Refits model k on the comparisons with weight w[c] > 0 (w: (n_cmp)),
     * maximising Σ_c w_c log σ(Δ_c) − (regulariser); starts from the model's
     * current parameters (warm start). */
    rl_status (*fit)(void *ctx, int k, const double *w);
    /* ll[c] = log σ(r_k(chosen_c) − r_k(rejected_c)) (<= 0), ll: (n_cmp). */
    void (*loglik)(void *ctx, int k, double *ll);
    /* Resets model k to its initial parameters (before a restart). */
    void (*reset)(void *ctx, int k);
} align_mix_model;

typedef struct {
    int K;           /* clusters, 1..model K */
    int max_iter;    /* EM iterations per restart; default 50 */
    int restarts;    /* k-means++ restarts per call, best log-likelihood kept; default 5 */
    uint64_t seed;
} align_mix_opts;

align_mix_opts align_mix_defaults(void); /* K 2, max_iter 50, restarts 5, seed 1 */

typedef struct {
    int n_annot, K;
    int *assign;      /* (n_annot) cluster of each annotator; -1 for one with no comparison. Owned. */
    int *size;        /* (K) annotators per cluster. Owned. */
    double *cluster_ll; /* (K) Σ of w_c log σ(Δ_c) of each cluster's comparisons. Owned. */
    double loglik;    /* total weighted log-likelihood Σ_k cluster_ll[k] */
    double weight;    /* total weight of the comparisons (loglik / weight = mean per comparison) */
    int iterations;   /* EM iterations of the kept restart */
    int converged;    /* 1 if its assignments stopped changing before max_iter */
    int reseeded;     /* empty clusters re-seeded (all restarts) */
    int restart;      /* which restart was kept */
} align_mix_result;

/* Runs the EM mixture. annot (n_cmp) in 0..n_annot-1; w (n_cmp) >= 0 or NULL.
 * RL_EINVAL if K < 1 or K > m->K, K exceeds the annotators that have a
 * comparison, an annotator index is out of range, a weight is negative or
 * not finite, or there is no comparison; the model's own errors are passed
 * on. res is filled (free with align_mix_result_free, also after an error). */
rl_status align_mixture_fit(const align_mix_model *m, const int *annot /*(n_cmp)*/, const double *w /*(n_cmp) or NULL*/,
                            int n_annot, const align_mix_opts *o, align_mix_result *res);
void align_mix_result_free(align_mix_result *r);

/* ---- comparing two clusterings of the same n items ------------------------ */

/* Adjusted Rand index (Hubert & Arabie 1985) of labelings a (values 0..ka-1)
 * and b (0..kb-1); items with a negative label in either are left out.
 * 1 = identical up to relabelling, ~0 = chance. Two labelings that each put
 * everything in one cluster give 1. NAN if fewer than 2 items remain. */
double align_adjusted_rand(int n, const int *a, int ka, const int *b, int kb);

/* Best-matching agreement: the largest fraction of items (negative labels
 * left out) whose labels agree after relabelling b by a one-to-one map onto
 * a's labels (exhaustive over permutations for k <= 8, greedy beyond).
 * map_out (kb, may be NULL): b's label j corresponds to a's label map_out[j]
 * (-1 when unmatched). NAN if no item remains. */
double align_match_agreement(int n, const int *a, int ka, const int *b, int kb, int *map_out);

/* ---- several seeds --------------------------------------------------------- */

typedef struct {
    int n_seeds;
    int best;             /* seed index with the highest log-likelihood */
    double ari_mean, ari_min;     /* over all pairs of seeds */
    double agree_mean, agree_min; /* best-matching agreement of every seed with the best one */
} align_mix_stability;

/* Runs align_mixture_fit with seeds o->seed, o->seed+1, ..., n_seeds of them
 * (each with o->restarts restarts); res: (n_seeds) results (free each).
 * The models end fitted to the BEST seed's assignment. stab may be NULL. */
rl_status align_mixture_seeds(const align_mix_model *m, const int *annot, const double *w, int n_annot,
                              const align_mix_opts *o, int n_seeds, align_mix_result *res /*(n_seeds)*/,
                              align_mix_stability *stab);

/* Refits every model k < K on the comparisons of the annotators assigned to it
 * (one M-step); used after choosing among runs. */
rl_status align_mixture_refit(const align_mix_model *m, const int *annot, const double *w, int n_annot,
                              int K, const int *assign);

#endif
