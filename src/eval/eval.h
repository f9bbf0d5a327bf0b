/* eval.h — `rlhf eval`: a policy against a reference policy on the same
 * prompts, per group of people (issue 7 item 6).
 *
 * Both policies answer the same N prompts (sampled here, or read from JSONL
 * files of {"prompt","response"} lines, the format of `rlhf sim eval
 * --responses`); a reward (src/train/reward.h spec) scores every answer. A
 * `groups:S1;S2;...` spec gives G rewards per answer, any other spec G = 1.
 * The report, from align_group_outcomes (src/align/aggregate.h):
 *
 *   per group g   mean reward of the policy and of the reference,
 *                 win rate  mean_n ([r_ng > ref_ng] + ½[r_ng = ref_ng])
 *   gaps          best − worst group on the mean reward and on the win rate
 *   per rule      (G > 1) mean, nash, isoelastic(α), min: the rule's value
 *                 averaged over the answers, for the policy and the reference,
 *                 and the win rate of the policy's aggregated reward
 *
 * Rows are paired: answer n of the policy against answer n of the reference,
 * and both must be to the same prompt. Answers are scored as text: the
 * prompt rendered as a user turn with the generation prompt, then the
 * response encoded as plain text followed by <|end|> — the same for sampled
 * and given answers, so saving the answers and re-scoring gives the same
 * numbers. Sampled text is repaired to valid UTF-8 (U+FFFD for a character
 * a byte-level token split) before it is scored or saved.
 *
 * Disagreement point of the aggregates (nash and isoelastic need positive
 * shifted utilities s = u − d): d_g = min_g − range_g, where min_g and
 * range_g are the lowest reward and the max − min of group g over all 2N
 * answers (range 0: d_g = min_g − 1). Every s then lies in [range, 2·range],
 * so the rules compare the answers and never hit the guard.
 *
 * Library regime: statuses with rl_fail messages, nothing exits.
 */
#ifndef RL_EVAL_H
#define RL_EVAL_H
#include <stdint.h>
#include <stdio.h>
#include "../base/check.h"
#include "../align/aggregate.h"

/* N answers: prompt[i] and response[i] (owned strings). */
typedef struct {
    int n;
    char **prompt;
    char **response;
} eval_answers;

/* Reads {"prompt","response"} (or "completion") JSONL lines. RL_EFORMAT with
 * file:line on a bad line, RL_ENOTFOUND; an empty file is RL_EFORMAT. */
rl_status eval_answers_load(const char *path, eval_answers *a);
/* Writes them back in the same format (atomically). */
rl_status eval_answers_write(const char *path, const eval_answers *a);
void eval_answers_free(eval_answers *a);

/* Prompts: a JSONL line with a "prompt" string, or a plain text line (as
 * `rlhf ppo --prompts`). At most max (0 = all). *out: n owned strings
 * (free each, then the array). */
rl_status eval_prompts_load(const char *path, int max, char ***out, int *n);

typedef struct {
    const char *model;      /* checkpoint (kind lm) */
    const char *tokenizer;  /* its tokenizer */
    int k;                  /* answers per prompt (>= 1) */
    float temperature;      /* 0 = greedy */
    int max_new;            /* tokens per answer */
    int batch;              /* prompts decoded together */
    uint64_t seed;
} eval_gen_opts;

/* Answers n prompts through the chat template, k per prompt (rows prompt-major:
 * row i*k + j is answer j to prompt i), stopping at <|end|>. */
rl_status eval_generate(const eval_gen_opts *o, char *const *prompts, int n, eval_answers *out);

typedef struct {
    const char *reward_spec;    /* reward.h spec */
    const char *tokenizer;      /* path */
    double alpha;               /* isoelastic α (>= 0) */
    const double *group_weights;/* (G) population shares, NULL = uniform */
    int n_group_weights;        /* entries in group_weights (must equal G when given) */
    const char *group_names;    /* "a,b,..." or NULL: derived from the spec */
} eval_opts;

#define EVAL_NRULES 4
typedef struct {
    int N, G;
    char **names;               /* (G) */
    float *r, *r_ref;           /* (N, G) per-group rewards of the policy / reference answers */
    double *mean, *mean_ref, *win; /* (G) */
    align_outcome_summary sum;
    double *disagreement;       /* (G) d_g used by the rules */
    align_rule rule[EVAL_NRULES];
    double rule_policy[EVAL_NRULES], rule_ref[EVAL_NRULES], rule_win[EVAL_NRULES];
    double alpha;
    char describe[256];         /* reward_describe */
} eval_result;

/* Scores both answer sets and fills out (eval_result_free). RL_EINVAL when the
 * sets differ in length or a row's prompts differ, a bad spec or weights. */
rl_status eval_compare(const eval_opts *o, const eval_answers *pol, const eval_answers *ref, eval_result *out);
void eval_result_free(eval_result *r);

/* The report as a table for people. */
void eval_print(FILE *f, const eval_result *r);
/* The report as one JSON object (malloc'd; NULL on out of memory):
 * {"n","groups":[{"name","mean","mean_ref","win"}],"gap_mean","gap_win","best","worst",
 *  "worst_win","win_gini","rules":[{"rule","policy","reference","win"}],"disagreement":[..]} */
char *eval_result_json(const eval_result *r);

#endif
