/* reward.h — rewards for online RL and best-of-n: (prompt, response) -> score,
 * or -> one score per group of people, aggregated into one.
 *
 * A reward is opened from a text SPEC (the CLI's --reward):
 *
 *   rm:PATH               a reward-model checkpoint (kind "reward", from `rlhf rm`):
 *                         gpt_forward_hidden on prompt+response, the scalar head at the
 *                         LAST response token, normalised (r - reward.mean) / reward.std
 *                         with the statistics stored in the checkpoint metadata
 *                         (lm-human-preferences normalises the RM the same way, alg §1.2).
 *   ensemble:RULE:P1,P2,...  several reward models (same tokenizer), combined per sample
 *                         (Coste et al. 2023, alg §5.2):
 *                           mean        mean_i r_i
 *                           min         min_i r_i                (WCO)
 *                           std=L       mean - L * std_i r_i     (population std)
 *                           var=L       mean - L * var_i r_i     (UWO exactly as Coste: variance)
 *   word:W                +1 per whole-word occurrence of W in the response text
 *   token:ID              +1 per occurrence of token id ID in the response tokens
 *                         (needs no tokenizer: tests and the simulated world)
 *   length:L              target length in tokens: 1 - |n/L - 1|  (Singhal et al. 2023's
 *                         length-only reward R*, alg §5.3); the stop token is not counted
 *   contains:S            1 if the response text contains S, else 0
 *   regex:PAT             1 if the POSIX extended regex PAT matches the response text, else 0
 *   groups:S1;S2;...      one reward per group (each Si any spec above except groups);
 *                         the G scores are aggregated per sample with align_aggregate
 *                         (src/align/aggregate.h): mean | nash | isoelastic | min | maxmin,
 *                         chosen with reward_open's `aggregate` (default mean).
 *   sim:gold              the calculator world's gold truth (src/sim): 1 if the response's
 *                         final number is the sum asked in the prompt, else 0. The prompt
 *                         text alone fixes the gold (sim_parse_prompt), so no world file is
 *                         needed; a prompt that is not a calculator question scores 0 and is
 *                         not counted in reward_last_sim_counts.
 *   sim:sycophancy        1 if the prompt suggests a WRONG answer and the response agrees
 *                         with it (sim_grade_response), else 0.
 *   sim:group=NAME[:DIR]  group NAME's true satisfaction (correct * its style utility) with
 *                         the default population (groups terse, working) or the one in
 *                         DIR/config.json (a world written by `rlhf sim world`).
 *   The sim: specs are measurements (the gold of `--gold`), usable as a reward too.
 *
 * Text rewards (word, contains, regex, sim) read the response decoded with the
 * tokenizer, special tokens left out; they need a tokenizer.
 *
 * Memory: reward_open plans everything (the reward models' activations for
 * max_n rows of up to max_T tokens, their input buffers, the text buffer);
 * reward_score allocates nothing.
 *
 * Errors: reward_open returns RL_EINVAL for a bad spec (the message names the
 * part), RL_EFORMAT/RL_ENOTFOUND for a file that is not a reward model, or a
 * reward model trained with another tokenizer; reward_score returns RL_EINVAL
 * for rows longer than planned. Nothing here exits.
 */
#ifndef RL_REWARD_H
#define RL_REWARD_H
#include "../base/check.h"
#include "../tok/tok.h"

typedef struct reward_fn reward_fn; /* opaque */

/* One (prompt, response) pair to score. */
typedef struct {
    const int *prompt; /* (plen) tokens the policy was fed */
    int plen;
    const int *resp;   /* (rlen) generated tokens, a final stop token included */
    int rlen;
} reward_item;

/* Group aggregation settings (used only by groups: specs). */
typedef struct {
    const char *rule;  /* "mean" (default when NULL) | "nash" | "isoelastic" | "min" | "maxmin" */
    double alpha;      /* isoelastic inequality aversion (>= 0) */
} reward_agg;

/* Opens the reward described by `spec`.
 *   tok      tokenizer (may be NULL: then text rewards are refused); its identity must
 *            match every reward model's
 *   max_n    rows scored per reward_score call (>= 1)
 *   max_T    longest prompt+response in tokens (>= 2)
 *   agg      NULL = mean
 * *out is owned by the caller: reward_close. */
rl_status reward_open(reward_fn **out, const char *spec, const tok_tokenizer *tok, int max_n, int max_T,
                      const reward_agg *agg);
void reward_close(reward_fn *r); /* NULL is fine */

/* Groups G (1 unless the spec is groups:). */
int reward_num_groups(const reward_fn *r);
/* One line describing the reward (for logs). */
const char *reward_describe(const reward_fn *r);

/* Scores n <= max_n items: score (n) the (aggregated) reward; group (n, G) the
 * per-group rewards before aggregation, may be NULL. */
rl_status reward_score(reward_fn *r, const reward_item *items, int n, float *score, float *group);
/* groups: specs: the per-group rewards (n, G) of the last reward_score call
 * (valid until the next call; *n its rows), so a trainer can log each group's
 * mean without a buffer of its own. NULL (and *n = 0) for other specs or
 * before a successful call. */
const float *reward_group_scores(const reward_fn *r, int *n);

/* The reward models' training range in normalised units: (reward.min - mean)/std
 * .. (reward.max - mean)/std from the checkpoint metadata written by `rlhf rm`
 * (an ensemble: the widest over its members). Returns 0 (and leaves lo/hi) for
 * rewards that are not rm:/ensemble: or checkpoints without the metadata. */
int reward_train_range(const reward_fn *r, double *lo, double *hi);
/* ensemble: the mean over the last reward_score call's samples of the members'
 * (population) std; NAN for other kinds. */
double reward_last_ensemble_std(const reward_fn *r);

/* sim: specs: counts over the last reward_score call. */
typedef struct {
    int n_items;            /* rows whose prompt is a calculator question */
    int n_correct;          /* ... answered with the right sum */
    int n_wrong_suggestion; /* ... in the leading form with a wrong suggestion */
    int n_sycophantic;      /* ... of those, answers agreeing with the suggestion */
} reward_sim_counts;
int reward_is_sim(const reward_fn *r);
/* Fills c and returns 1 for sim: rewards; 0 otherwise. */
int reward_last_sim_counts(const reward_fn *r, reward_sim_counts *c);

/* Programmatic reward helpers (exposed for tests). */
/* Whole-word occurrences of `word` in text (a word boundary is any byte that is
 * not [A-Za-z0-9_] or a UTF-8 continuation/lead byte). */
int reward_count_word(const char *text, const char *word);
/* 1 - |n/L - 1| */
double reward_length_target(int n, int L);

#endif
