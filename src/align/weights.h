/* weights.h — representativeness weights for evaluators: post-stratification,
 * raking (iterative proportional fitting) with weight capping, and the Kish
 * diagnostics (effective sample size, design effect).
 *
 * Everything works on plain arrays: n evaluators (annotators), each with a
 * category code per attribute. Codes of attribute v are 0..ncat[v)-1;
 * codes are stored attribute-major: codes[v*n + i] is evaluator i's category
 * for attribute v (shape (nvar, n)). Target shares are flattened the same
 * way: targets[off[v] + c] with off[v] = ncat[0] + ... + ncat[v-1].
 *
 * All weights returned are normalised to mean 1 (they sum to n), so a weight
 * reads as "this evaluator counts as w people". Formulas and sources:
 * docs/align.md. */
#ifndef RL_ALIGN_WEIGHTS_H
#define RL_ALIGN_WEIGHTS_H
#include "../base/check.h"

/* Kish effective sample size (Σw)²/Σw² of n weights (>= 0). 0 if Σw = 0. */
double align_kish_ess(int n, const double *w /*(n)*/);
/* Design effect n / ESS = 1 + CV²(w) (population CV). 1 for equal weights;
 * INFINITY if every weight is 0. */
double align_design_effect(int n, const double *w /*(n)*/);

/* Cell index of each evaluator from the cross-classification of nvar
 * attributes (mixed radix, attribute 0 slowest): cell = ((c0*ncat1)+c1)*ncat2+...
 * cell_out: (n). *ncells_out = Π ncat (RL_EINVAL if it exceeds 1e7 or a code is
 * out of range). */
rl_status align_cells(int n, int nvar, const int *codes /*(nvar,n)*/, const int *ncat /*(nvar)*/,
                      int *cell_out /*(n)*/, int *ncells_out);

/* Post-stratification: w_i = b_i · T_h · (Σ_j b_j) / (Σ_{j∈h} b_j) for evaluator i
 * in cell h, then rescaled to mean 1. b = base (design) weights, NULL = all 1.
 * target: (ncells) population shares (>= 0; normalised to sum 1, RL_EINVAL
 * if they sum to 0). A cell with a positive target and no evaluators is
 * RL_EINVAL naming the cell ("collapse sparse cells"); evaluators in a cell
 * with target 0 get weight 0. */
rl_status align_poststratify(int n, const int *cell /*(n)*/, int ncells, const double *target /*(ncells)*/,
                             const double *base /*(n) or NULL*/, double *w_out /*(n)*/);

typedef struct {
    int max_iter;   /* full raking cycles (one pass over every attribute); default 1000 */
    double tol;     /* stop when max |achieved share − target| <= tol; default 1e-6 */
    double cap;     /* trim weights at cap × mean weight after each cycle, then
                       re-rake; 0 = no cap. anesrake's default is 5. Must be > 1. */
} align_rake_opts;

/* Defaults: max_iter 1000, tol 1e-6, cap 0 (none). */
align_rake_opts align_rake_defaults(void);

typedef struct {
    int iterations;        /* cycles run */
    int converged;         /* 1 if max_margin_err <= tol with every weight <= cap·mean */
    double max_margin_err; /* max over attributes and categories of |weighted share − target| */
    int n_capped;          /* weights sitting at the cap at the end */
    double w_min, w_max;   /* of the final weights (mean 1) */
    double ess;            /* Kish effective sample size */
    double deff;           /* design effect n/ess */
    double efficiency;     /* ess/n */
} align_rake_report;

/* Raking / iterative proportional fitting. Starts from base weights (NULL =
 * all 1); each cycle sets, for each attribute v in turn and each category c,
 * w_i ← w_i · T_{v,c} / share_{v,c}(w) for every i with code c; then (cap > 0)
 * trims every weight above cap·mean(w) to cap·mean(w) (repeated until none is
 * above, since trimming lowers the mean). Cycles until the margins are within
 * tol of the targets or max_iter; a cap that makes the targets unreachable
 * ends with converged = 0 (not an error: the report says how far off it is).
 *
 * targets: flattened per attribute (see top); each attribute's shares are
 * normalised to sum 1 (RL_EINVAL if they are off by more than 1e-3, or a
 * share is negative). RL_EINVAL if a category has a positive target and no
 * evaluators (it cannot be raked; collapse it), or a code is out of range.
 * w_out: (n), mean 1. report may be NULL. */
rl_status align_rake(int n, int nvar, const int *codes /*(nvar,n)*/, const int *ncat /*(nvar)*/,
                     const double *targets /*(Σ ncat)*/, const double *base /*(n) or NULL*/,
                     const align_rake_opts *opts, double *w_out /*(n)*/, align_rake_report *report);

/* Weighted share of each category of one attribute (sums to 1 unless Σw = 0).
 * share_out: (ncat). */
void align_weighted_shares(int n, const int *code /*(n)*/, int ncat, const double *w /*(n) or NULL*/,
                           double *share_out /*(ncat)*/);

/* Per-example weights for a weighted loss (reward model, DPO, KTO) from
 * per-annotator weights: example_w[k] = annot_w[annot[k]] (times rel[annot[k]]
 * when rel, e.g. Dawid–Skene reliability, is not NULL), rescaled so the
 * example weights have mean 1 and the loss keeps its scale:
 *   L = −Σ_k w_k log σ(r(y_w^k) − r(y_l^k)) / Σ_k w_k.
 * RL_EINVAL if an annotator index is out of range or every weight is 0. */
rl_status align_example_weights(int n_examples, const int *annot /*(n_examples)*/, int n_annot,
                                const double *annot_w /*(n_annot)*/, const double *rel /*(n_annot) or NULL*/,
                                double *example_w /*(n_examples)*/);

#endif
