/* linbt.h — a fast linear Bradley–Terry reward model on hashed text features
 * of the responses, K of them side by side: the reward-model family the EM
 * mixture (mixture.h) runs on, and small per-group reward models for tests.
 *
 *   φ(y)   counts of the byte n-grams (ngram_min..ngram_max) of the response y,
 *          hashed (FNV-1a) into 2^buckets_log2 buckets, L2-normalised; with
 *          fold_digits every digit is read as '0' first, so "85" and "37"
 *          share features: the model sees the shape of an answer (style,
 *          length, words), not its numbers.
 *   r_k(y) = θ_k · φ(y)           (no prompt features: a preference over
 *                                  responses, the same under every prompt)
 *   fit    min_θ  Σ_c w_c softplus(−θ·x_c) / Σ_c w_c + (λ/2)|θ|²,
 *          x_c = φ(chosen_c) − φ(rejected_c)
 *          by L-BFGS (memory 8, Armijo backtracking), warm-started; convex,
 *          so the optimum does not depend on the start.
 *
 * Only the buckets that occur in the added comparisons are parameters
 * (they are renumbered densely when the first fit runs), so θ is small even
 * with a large hash space; a response scored later uses only those buckets.
 *
 * Use: init, add comparisons (align_linbt_add or align_linbt_from_feedback),
 * then fit / score, or hand align_linbt_model() to the EM mixture. */
#ifndef RL_ALIGN_LINBT_H
#define RL_ALIGN_LINBT_H
#include <stdint.h>
#include "../base/check.h"
#include "../data/feedback.h"
#include "mixture.h"

typedef struct {
    int buckets_log2;      /* hash space 2^b, 8..24; default 18 */
    int ngram_min, ngram_max; /* byte n-grams, 1..8; default 1..3 */
    int fold_digits;       /* 1 (default): digits read as '0' */
    double l2;             /* λ, > 0; default 1e-3 */
    int max_iter;          /* L-BFGS iterations per fit; default 200 */
    double tol;            /* stop when max_i |∂f/∂θ_i| <= tol; default 1e-8 */
    int max_bytes;         /* features from the first max_bytes bytes of a response; 0 = all (default).
                              Memory is about 3·(ngram_max−ngram_min+1)·bytes·8 B per comparison. */
} align_linbt_opts;

align_linbt_opts align_linbt_defaults(void);

typedef struct {
    align_linbt_opts o;
    int K;                 /* models */
    int n_cmp, cap;
    int64_t nnz, nnz_cap;
    int64_t *off;          /* (n_cmp + 1) CSR row starts */
    int32_t *idx;          /* (nnz) bucket, then (after finalise) dense feature index */
    float *val;            /* (nnz) x_c = φ(chosen) − φ(rejected) */
    int F;                 /* dense features (after finalise; 0 before) */
    int32_t *dense;        /* (2^buckets_log2) bucket → dense index or -1 (after finalise) */
    double *theta;         /* (K, F) */
    double *scratch;       /* L-BFGS and margin buffers, allocated once at finalise */
} align_linbt;

/* RL_EINVAL on K < 1 or options out of range. */
rl_status align_linbt_init(align_linbt *m, int K, const align_linbt_opts *o);
void align_linbt_free(align_linbt *m);

/* Adds one comparison: `chosen` was preferred to `rejected`. RL_EINVAL after
 * the first fit (the feature set is frozen then). Returns its index in *c
 * (may be NULL). */
rl_status align_linbt_add(align_linbt *m, const char *chosen, const char *rejected, int *c);

/* Fits model k on comparison weights w (m->n_cmp, >= 0; all zero → θ_k = 0). */
rl_status align_linbt_fit(align_linbt *m, int k, const double *w);
/* ll (n_cmp): log σ(θ_k · x_c). */
void align_linbt_loglik(align_linbt *m, int k, double *ll);
/* r_k(response) (0 before the first fit). */
double align_linbt_score(const align_linbt *m, int k, const char *response);
/* The EM mixture's view of the K models (valid while m lives). */
align_mix_model align_linbt_model(align_linbt *m);

/* ---- from feedback records ------------------------------------------------- */

/* Comparisons taken from a record set: every strict pair of fb_to_pairs
 * (pair records, and all pairs of distinct ranks of rankings); ties and
 * "both bad" carry no preference and are skipped (counted). Annotators are
 * numbered in order of their id (strcmp). */
typedef struct {
    int n_cmp;
    int *annot;             /* (n_cmp) annotator index */
    double *w;              /* (n_cmp) the record's weight */
    int64_t *record;        /* (n_cmp) source record in the set */
    int n_annot;
    const char **annot_id;  /* (n_annot) ids, sorted; point into the set */
    int64_t *annot_first;   /* (n_annot) first record of each annotator in the set (its groups) */
    int64_t n_ties;         /* tie / both-bad pairs skipped */
} align_fb_cmps;

/* Adds every strict comparison of s to m (which must have none yet) and
 * fills out (free with align_fb_cmps_free). RL_EINVAL when s has no strict
 * comparison. */
rl_status align_linbt_from_feedback(align_linbt *m, const fb_set *s, align_fb_cmps *out);
void align_fb_cmps_free(align_fb_cmps *c);

#endif
