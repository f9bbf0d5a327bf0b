/* aggregate.h — social-welfare rules that turn G group utilities into one
 * reward per sample, plus the gradient weights a trainer needs, and the
 * per-group outcome summary every evaluation reports.
 *
 * Shapes: N samples (responses), G groups. u[n*G + g] is group g's utility
 * (reward-model score) for sample n. Every rule works on the shifted utility
 * s_ng = u_ng − d_g, where d (G) is the disagreement point (e.g. the reference
 * policy's mean reward for that group; NULL = 0). Population weights p_g
 * (G, NULL = uniform) are normalised to sum 1.
 *
 *   rule          out_n                                          grad_ng = ∂out_n/∂u_ng
 *   mean          Σ_g p_g s_ng                                    p_g
 *   nash          Σ_g p_g log s_ng  (guarded, below)              p_g / s_ng
 *   isoelastic    Atkinson equally-distributed equivalent:        p_g (s_ng / out_n)^(−α)
 *                 (Σ_g p_g s_ng^(1−α))^(1/(1−α)),  α ≠ 1
 *                 exp(Σ_g p_g log s_ng),             α = 1
 *                 α = 0: the weighted mean; α → ∞: min_g s_ng
 *   min           min_g s_ng  (per sample)                        1 on the argmin group (lowest index on ties)
 *   maxmin        s_{n,g*}, g* = argmin_g (1/N) Σ_n s_ng          1 on column g*
 *                 (the group worst off over the batch; its index is returned)
 *
 * Guard (nash, isoelastic): these need s > 0. Below eps (params.eps, default
 * 1e-3) nash continues log linearly: log eps + (s − eps)/eps, so the value
 * stays finite and increasing and the gradient is p_g/eps (a group at or below
 * its disagreement point gets the largest push). isoelastic evaluates the EDE
 * at max(s, eps) and adds the first-order term Σ_{g: s<eps} grad_g (s_g − eps);
 * its gradient weights there are those at the guard point. Elsewhere both are
 * exact. Formulas and sources: docs/align.md.
 */
#ifndef RL_ALIGN_AGGREGATE_H
#define RL_ALIGN_AGGREGATE_H
#include "../base/check.h"

typedef enum {
    ALIGN_AGG_MEAN = 0,
    ALIGN_AGG_NASH,
    ALIGN_AGG_ISOELASTIC,
    ALIGN_AGG_MIN,
    ALIGN_AGG_MAXMIN
} align_rule;

/* "mean" | "nash" | "isoelastic" | "min" | "maxmin" (also "utilitarian",
 * "atkinson"); -1 if unknown. */
int align_rule_parse(const char *s);
const char *align_rule_name(align_rule r);

typedef struct {
    const double *weights;      /* (G) population shares p_g; NULL = 1/G each */
    const double *disagreement; /* (G) d_g; NULL = 0 */
    double alpha;               /* isoelastic inequality aversion, >= 0 (INFINITY = min) */
    double eps;                 /* guard for s <= 0 (nash, isoelastic); 0 means the default 1e-3 */
} align_agg_params;

/* Aggregates u (N,G) into out (N). grad (N,G) gets ∂out_n/∂u_ng (may be NULL).
 * chosen_group (may be NULL): for maxmin the worst-off group g*, for the other
 * rules -1. RL_EINVAL on a bad rule, negative/zero-sum weights, α < 0, or a
 * non-finite utility. */
rl_status align_aggregate(align_rule rule, const align_agg_params *params, int N, int G,
                          const float *u /*(N,G)*/, float *out /*(N)*/, float *grad /*(N,G) or NULL*/,
                          int *chosen_group);

/* Per-group outcomes of a policy against a reference on the same N prompts.
 * r: (N,G) group g's reward for the policy's response to prompt n;
 * r_ref: (N,G) for the reference's response (NULL: win rates are NAN).
 * mean_out[g] = mean_n r_ng; win_out[g] = mean_n ([r_ng > ref_ng] + ½[r_ng = ref_ng]).
 * gap_mean = max_g mean − min_g mean; gap_win likewise on win rates;
 * best/worst = groups with the highest/lowest mean reward; win_ratio and
 * win_gini summarise how unequal the win rates are (algorithms.md §3.3).
 * Any output pointer may be NULL. */
typedef struct {
    double gap_mean, gap_win;
    int best, worst;          /* by mean reward */
    int worst_win;            /* group with the lowest win rate (-1 without a reference) */
    double win_ratio;         /* min_g win / max_g win (NAN without a reference or if max is 0) */
    double win_gini;          /* Gini coefficient of the win rates, Σ_g Σ_h |w_g − w_h| / (2 G² mean w) */
} align_outcome_summary;

rl_status align_group_outcomes(int N, int G, const float *r /*(N,G)*/, const float *r_ref /*(N,G) or NULL*/,
                               double *mean_out /*(G)*/, double *win_out /*(G)*/, align_outcome_summary *sum);

#endif
