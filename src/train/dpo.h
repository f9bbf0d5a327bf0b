/* dpo.h — direct preference optimisation against a frozen reference:
 * `rlhf dpo` (DPO, cDPO, rDPO, IPO; ORPO and SimPO need no reference) and
 * `rlhf kto` (KTO on thumbs). Losses are src/train/objectives.h; this file
 * chains them into the model.
 *
 * Sequence log-probs: log π(y|x) = sum over the response tokens (and the
 * closing "<|end|>") of log p(token | prefix), from gpt_forward's logp with the
 * prompt and padding masked (src/train/common.h). The reference model's
 * log-probs of every training and held-out sequence are computed ONCE before
 * training (the starting checkpoint, or --ref) and kept in arrays; the
 * reference model itself is kept only to measure the sampled KL.
 *
 * DPO batches: B pairs = 2B rows (chosen, then rejected) per forward; the
 * gradient of the loss w.r.t. the two sequence log-probs goes back through
 * obj_seq_logprobs_backward and gpt_backward_end(dlogp).
 * KTO batches: B labelled (x, y) rows; the reference point z0 is estimated per
 * micro-batch from mismatched pairs (x_i, y_{π(i)}) (a fixed derangement of the
 * training set, so their reference log-probs are precomputed too), clamped at
 * 0 and detached (obj_kto_kl_estimate), as in the KTO paper / HALOs.
 *
 * Logged per step: loss, implicit rewards of chosen/desirable and
 * rejected/undesirable, their margin and accuracy, BOTH policy log-probs
 * (a falling chosen log-prob is normal for DPO and visible here), lr, grad norm
 * (KTO: also z0). Held-out, every --eval-every steps and at the end:
 *   val_pref_accuracy    fraction of held-out pairs with log π(y_w|x) > log π(y_l|x):
 *                        the policy's own preference for the chosen answer
 *   val_pref_prob        mean σ(log π(y_w|x) - log π(y_l|x)): the probability the
 *                        policy picks the chosen answer when choosing between the two
 *                        (0.5 = indifferent; unlike the accuracy, a tiny systematic
 *                        bias does not already count as a full win)
 *   val_reward_accuracy  the same with implicit rewards log π/π_ref
 *   val_logratio_chosen / _rejected   mean log π(y|x) - log π_ref(y|x) over the
 *                        held-out chosen / rejected responses (sequence level, nats)
 *   val_kl_sampled       KL(π || π_ref) estimated on responses SAMPLED from π for
 *                        held-out prompts: mean over samples of
 *                        sum_t [log π(y_t|..) - log π_ref(y_t|..)] (k1, per sequence)
 */
#ifndef RL_DPO_H
#define RL_DPO_H
#include "common.h"

typedef struct {
    int kto;                   /* 0 = rlhf dpo, 1 = rlhf kto */
    trn_model_src model;
    const char *ref;           /* reference checkpoint (NULL = the starting model) */
    const char *tokenizer;
    const char *records, *format;
    int skip_bad;
    const char *annotator_weights; /* id,weight CSV: record weight x its annotator's (NULL: none) */
    double missing_weight;     /* weight of annotators missing from that file (< 0: error) */
    const char *loss;          /* dpo: dpo | cdpo | rdpo | ipo | orpo | simpo */
    double beta, label_smoothing, simpo_gamma;
    int ipo_per_token;
    double lambda_d, lambda_u; /* kto */
    int from_pairs;            /* kto: also thumbs from strict pairs */
    const char *out;
    long long steps;
    double epochs;
    int batch, accum, seq;
    double lr, min_lr_frac, weight_decay, grad_clip;
    long long warmup;
    double val_fraction;
    long long eval_every, ckpt_every;
    int kl_samples, kl_tokens; /* sampled-KL evaluation: prompts and max new tokens (0 = off) */
    const char *log_path;
    double warn_dpo_drop;      /* monitor: nats both held-out log-ratios fell (0 = default 1.0) */
    double warn_kl_budget;     /* monitor: sampled KL budget (0 = default 6) */
    unsigned long long seed;
    const char *kernels;
    int quiet;
} dpo_opts;

/* Returns 0 when done, 130 after Ctrl-C (checkpoint written), exits 1 (CHECK) on failure. */
int dpo_run(const dpo_opts *o);

#endif
