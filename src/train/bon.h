/* bon.h — best-of-n sampling and rejection-sampling fine-tuning data.
 *
 * For every prompt: sample n responses from the policy (one batched KV-cache
 * decode for `batch` prompts x n rows), score them with a reward
 * (src/train/reward.h), keep the highest. The chosen answers go to stdout as
 * JSONL and, optionally, to an SFT set: canonical feedback JSONL of "demo"
 * records (docs/formats-feedback.md) that `rlhf sft` trains on — rejection
 * sampling fine-tuning (Touvron et al. 2023, Llama 2 §3.2.3).
 *
 * The KL of the best-of-n policy to the base policy is, analytically,
 * log n - (n-1)/n (Stiennon 2020; Gao 2022; alg §5.1): bon_run reports it.
 */
#ifndef RL_BON_H
#define RL_BON_H
#include <stdint.h>

typedef struct {
    const char *policy_path, *tokenizer_path, *reward_spec, *prompts_path;
    const char *sft_out;     /* NULL: no SFT set */
    const char *aggregate;   /* group rule for groups: rewards (NULL = mean) */
    double alpha;
    double temperature;
    int n, max_new, batch, chat, quiet;
    uint64_t seed;
    /* live monitors (src/train/monitor.h): one update per block of `batch` prompts */
    const char *log_path;    /* metrics JSONL, one row per block (NULL: off) */
    const char *gold_spec;   /* gold / held-out reward of the chosen answers (NULL: none) */
    double warn_kl_budget;   /* 0 = the default (6 nats) */
} bon_opts;

/* Index of the largest of s[0..n) (the first on ties; NaN never wins unless all are NaN). */
int bon_argmax(const float *s, int n);

/* Runs best-of-n over every prompt. Fails fast (CHECK) with a message on bad
 * files; returns 0. */
int bon_run(const bon_opts *o);

#endif
