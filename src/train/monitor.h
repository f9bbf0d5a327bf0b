/* monitor.h — the live reward-hacking monitors (src/diag) as the trainers use
 * them: one diag_monitor writing its warnings into the trainer's own JSONL log
 * and stderr, plus the measurements of a batch of sampled responses that
 * `rlhf ppo|rloo|grpo` and `rlhf bon` share (docs/diagnostics.md, "Live
 * monitors in the trainers").
 *
 *   trn_monitor m;
 *   trn_mon_init(&m, &cfg, &metrics, tok, proxy_reward, gold_spec, max_n, max_T);
 *   per step: diag_step s; diag_step_clear(&s); s.kl = ...;
 *             trn_mon_rollout(&m, items, scores, n, &s);   // length, len-reward corr, distinct-n,
 *                                                            // out-of-range share, ensemble std, gold, sycophancy
 *             diag_update(&m.dm, step, &s);
 *   trn_mon_free(&m);
 *
 * Memory: trn_mon_init plans the text buffers, the n-gram scratch and the gold
 * reward for max_n rows of up to max_T tokens; trn_mon_rollout allocates nothing.
 * Errors: trn_mon_init returns the gold reward's error (bad spec, missing file).
 */
#ifndef RL_TRAIN_MONITOR_H
#define RL_TRAIN_MONITOR_H
#include "reward.h"
#include "../diag/diag.h"

#define TRN_MON_NGRAM 3 /* distinct-n over byte 3-grams */

typedef struct {
    diag_monitor dm;
    reward_fn *proxy;        /* caller's; NULL = no ensemble/range measures */
    reward_fn *gold;         /* owned; NULL without a gold spec */
    const tok_tokenizer *tok;
    int has_range;
    double range_lo, range_hi; /* the proxy RM's normalised training range */
    int max_n;
    size_t text_cap;         /* bytes per decoded response */
    char *text;              /* (max_n, text_cap) */
    const char **texts;      /* (max_n) */
    uint64_t *scratch;       /* (max_n * text_cap) n-gram hashes */
    double *len, *rew;       /* (max_n) */
    float *gold_score;       /* (max_n) the last gold scores */
    double last_gold, last_syc; /* the last rollout's (NAN when not measured) */
} trn_monitor;

/* cfg NULL = defaults. log may be NULL. tok may be NULL (then no distinct-n
 * and no gold). gold_spec NULL/"" = no gold. */
rl_status trn_mon_init(trn_monitor *m, const diag_config *cfg, rl_metrics *log, const tok_tokenizer *tok, reward_fn *proxy,
                       const char *gold_spec, int max_n, int max_T);
void trn_mon_free(trn_monitor *m);

/* Fills s from n (<= max_n) scored responses: length (tokens, the stop token
 * included as the trainers count it), len_reward_corr (Pearson over the n),
 * distinct (byte 3-grams of the decoded texts), above_range (share of scores
 * above the proxy RM's training maximum; only for rm:/ensemble: rewards with
 * the metadata), ens_std (ensemble: rewards, from the proxy's last scoring),
 * gold (mean gold score) and sycophancy (sim: gold only; NAN when no prompt
 * had a wrong suggestion). Fields it cannot measure stay as they are. */
rl_status trn_mon_rollout(trn_monitor *m, const reward_item *items, const float *scores, int n, diag_step *s);

#endif
