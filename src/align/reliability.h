/* reliability.h — annotator weights from feedback records: Dawid–Skene
 * reliability on pairwise choices, and applying per-annotator weights (from
 * `rlhf align report --out` or `rlhf align reliability --out`) to records so
 * that the reward-model, DPO and KTO losses weight each example by its
 * annotator (docs/align.md §"Weights in training").
 *
 * Pair choices as a labelling task. Every strict comparison (a pair record
 * judged A or B, or a pair of a ranking with distinct ranks; ties and "both
 * bad" carry no direction and are left out) is an observation of an ITEM —
 * the prompt with the unordered pair of responses — by its annotator. The
 * label is 0 when the response that sorts first (strcmp) won, 1 otherwise,
 * so the same comparison seen in A/B or B/A order is the same item with the
 * same label. Dawid–Skene (agreement.h) with K = 2 then estimates each
 * annotator's confusion matrix and reliability (expected accuracy
 * Σ_c p_c e_a[c][c]) against the latent "true" choice.
 *
 * What it can and cannot see: DS measures agreement with the latent
 * consensus, so it needs items judged by several annotators, and it finds
 * careless or adversarial annotators (near 0.5 or below); when MOST
 * annotators share a mistake (the simulated world's no-carry belief), the
 * consensus is the mistake and the few careful ones look unreliable.
 */
#ifndef RL_ALIGN_RELIABILITY_H
#define RL_ALIGN_RELIABILITY_H
#include "../base/check.h"
#include "../data/feedback.h"
#include "agreement.h"
#include "tables.h"

typedef enum {
    ALIGN_RELW_ACCURACY = 0, /* w_a = reliability r_a (expected accuracy, 0..1) */
    ALIGN_RELW_LOGODDS = 1   /* w_a = log(r/(1−r)) with r clamped to [0.5, 0.99]: the optimal vote
                                weight of an independent binary annotator (Nitzan & Paroush 1982);
                                0 for one no better than chance */
} align_relw;

/* "accuracy" | "logodds"; -1 if unknown. */
int align_relw_parse(const char *s);

typedef struct {
    int n_annot;          /* distinct annotators in the set (every record kind) */
    const char **annot;   /* (n_annot) ids, pointing into the fb_set (valid while it lives), sorted */
    int *n_labels;        /* (n_annot) strict comparisons each gave */
    double *reliability;  /* (n_annot) DS expected accuracy; NAN below min_labels */
    double *weight;       /* (n_annot) weight, mean 1 over the estimated annotators; 1 below min_labels */
    int n_estimated;      /* annotators with >= min_labels comparisons */
    int n_items, n_obs;   /* distinct comparisons, observations */
    int n_multi;          /* items judged by >= 2 observations (what DS learns from) */
    int iterations, converged;
    double agree_majority; /* share of items whose DS label equals the majority vote */
} align_reliability;

/* Runs Dawid–Skene over the strict comparisons of s (ds: NULL = defaults)
 * and turns reliability into weights by `how`; annotators with fewer than
 * min_labels (>= 1) comparisons keep weight 1 and reliability NAN.
 * RL_EINVAL when there is no strict comparison or no annotator reaches
 * min_labels, or when every estimated weight is 0. On success *out owns its
 * arrays (align_reliability_free). */
rl_status align_pair_reliability(const fb_set *s, const align_ds_opts *ds, align_relw how, int min_labels,
                                 align_reliability *out);
void align_reliability_free(align_reliability *r);

/* What align_apply_annotator_weights did. */
typedef struct {
    int64_t n_records;
    int n_annot;               /* distinct annotators in the records */
    int n_annot_missing;       /* of them, not in the weights file */
    int64_t n_records_missing; /* records by those annotators */
    int n_unused;              /* ids in the file that no record has */
    double ess;                /* Kish effective sample size of the final record weights */
    double w_min, w_max;       /* of the final record weights */
} align_apply_report;

/* Multiplies every record's weight by its annotator's weight from w, the
 * product rescaled (align_example_weights) so the example weights have mean
 * 1: record k gets weight_k · a(k) / mean_j a(j) — the weighted losses
 * Σ w l / Σ w are unchanged by that constant. An annotator missing from w
 * takes missing_weight when it is >= 0, else the call fails with RL_EINVAL
 * naming the first missing annotator and how many there are (nothing is
 * changed). RL_EINVAL also when every weight would be 0. rep may be NULL. */
rl_status align_apply_annotator_weights(fb_set *s, const align_id_weights *w, double missing_weight, align_apply_report *rep);

#endif
