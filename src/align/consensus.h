/* consensus.h — group-informed consensus over agree/disagree/pass votes
 * (Polis), and the raw-count ranking it is compared with.
 *
 * Votes are a (P, S) matrix of signed chars: participant p's vote on
 * statement s is 1 (agree), -1 (disagree), 0 (pass) or ALIGN_VOTE_NONE (did
 * not see it). group[p] is p's opinion group in 0..G-1, or < 0 for
 * "unclustered" (such votes count toward the raw totals, not toward any group).
 *
 * Per group g and statement s: A = agrees, D = disagrees, S_ = passes,
 * V = A + D + S_ (every vote cast, passes included, as Polis's "S"/seen count).
 * Smoothed agree probability  q_gs = (A + 1) / (V + 2)  (a Beta(1,1) prior).
 * Rules (score_s, higher = more consensus):
 *   product  Π_g q_gs   — Polis's "group-aware consensus" (polismath
 *                         conversation.clj, :group-aware-consensus)
 *   min      min_g q_gs — the worst-off group's agreement (maximin)
 *   mean     (1/G) Σ_g q_gs — utilitarian over groups, each group counted once
 */
#ifndef RL_ALIGN_CONSENSUS_H
#define RL_ALIGN_CONSENSUS_H
#include "../base/check.h"

#define ALIGN_VOTE_NONE ((signed char)-128)

typedef enum { ALIGN_CONS_PRODUCT = 0, ALIGN_CONS_MIN, ALIGN_CONS_MEAN } align_cons_rule;

/* "product" | "min" | "mean"; -1 if unknown. */
int align_cons_rule_parse(const char *s);

typedef struct {
    int n_statements, n_groups;
    int *agree, *disagree, *pass;   /* (G, S) per-group counts */
    int *agree_all, *disagree_all, *pass_all; /* (S) over every participant, unclustered included */
    int *group_size;                /* (G) participants per group */
    double *q;                      /* (G, S) smoothed agree probability (A+1)/(V+2) */
    double *score;                  /* (S) consensus score under the rule; -INFINITY if excluded */
    int *rank;                      /* (n_ranked) statement indices, best consensus first */
    int *rank_raw;                  /* (n_ranked) statement indices by raw agree count, most first */
    int n_ranked;                   /* statements included (see `include`) */
} align_consensus;

/* Counts the votes and ranks statements. include: (S) nonzero = rank this
 * statement (e.g. moderated in), NULL = all. Ties are broken by total agrees
 * (more first), then by statement index (lower first); the raw ranking breaks
 * ties by fewer disagrees, then index. RL_EINVAL if a vote or group is out of
 * range; out owns its arrays (align_consensus_free). */
rl_status align_consensus_rank(int P, int S, const signed char *votes /*(P,S)*/, const int *group /*(P)*/, int G,
                               align_cons_rule rule, const unsigned char *include /*(S) or NULL*/,
                               align_consensus *out);
void align_consensus_free(align_consensus *c);

#endif
