/* rm.h — reward models (`rlhf rm`) and scoring with them (`rlhf score`).
 *
 * A reward model is the transformer plus its scalar head (gpt_scalar_forward)
 * read at the LAST token of "<prompt><|assistant|>response<|end|>", i.e. the
 * "<|end|>" that closes the response (alg §1.1: the SFT model with the
 * unembedding removed plus a scalar head; the reward is read at the end token
 * as in lm-human-preferences / TRL).
 *
 * Training units, one per feedback record (src/data/feedback.h):
 *   pair     A vs B: Bradley–Terry -log σ(r_w - r_l) (obj_bt_loss), or, when the
 *            data has ties and --ties davidson (default), the Davidson model for
 *            every pair (obj_davidson_loss: a tie pulls the two rewards together);
 *            "both bad" counts as a tie; --ties skip drops ties.
 *   ranking  K responses: all C(K,2) pairs of the prompt in ONE batch with the
 *            1/C(K,2) weighting of InstructGPT Eq. 1 (obj_rank_pairs_loss; tied
 *            ranks skipped). The K responses are K forward rows, not C(K,2) pairs.
 *   thumbs   binary logistic loss on the reward, P(up) = σ(r) (obj_thumbs_loss,
 *            threshold 0); ratings become thumbs around the scale's midpoint.
 * The step loss is the weighted mean over the batch's units:
 *   L = sum_u w_u l_u / sum_u w_u,  w_u = record weight (x --thumbs-weight for thumbs).
 *
 * Held-out evaluation (a deterministic fraction of prompts, fb_is_heldout):
 * pairwise accuracy over every strict pair (pairs + ranking pairs), the
 * confidence ECE of σ(r_w - r_l) (obj_pair_ece, 10 bins), thumbs accuracy.
 * Normalisation: after training the reward's mean/std/min/max over reference
 * samples (the training responses, at most --norm-samples of them) go into
 * the checkpoint metadata (reward.mean, reward.std, reward.min, reward.max) with
 * kind=reward; docs/formats-model.md lists the keys.
 */
#ifndef RL_RM_H
#define RL_RM_H
#include "common.h"

typedef struct {
    trn_model_src model;
    const char *tokenizer;
    const char *records;       /* feedback file */
    const char *format;        /* auto | jsonl | hh | oasst */
    int skip_bad;
    const char *group;         /* "key=value": only records of annotators in this group, or NULL */
    const char *annotator_weights; /* id,weight CSV: record weight x its annotator's (NULL: none) */
    double missing_weight;     /* weight of annotators missing from that file (< 0: error) */
    const char *ties;          /* davidson | skip */
    double tie_nu;             /* Davidson ν */
    double thumbs_weight;      /* multiplier of thumbs units (0 = ignore thumbs) */
    double center_coef;        /* BT centring coefficient (TRL 0.01; 0 = off) */
    const char *out;
    long long steps;           /* 0 = from epochs */
    double epochs;
    int batch;                 /* units (prompts) per step */
    int micro;                 /* max rows (responses) per forward pass */
    int seq;
    double lr, min_lr_frac, weight_decay, grad_clip;
    double warn_len_corr;  /* monitor: held-out Pearson(length, reward) threshold (0 = default 0.6) */
    long long warmup;
    double val_fraction;
    long long eval_every, ckpt_every;
    int norm_samples;
    const char *log_path;
    unsigned long long seed;
    const char *kernels;
    int quiet;
} rm_opts;

/* Returns 0 when done, 130 after Ctrl-C (checkpoint written), exits 1 (CHECK) on failure. */
int rm_run(const rm_opts *o);

/* ---- scoring (library regime: statuses, no exit) ---------------------------- */

typedef struct {
    gpt_model m;
    tok_tokenizer *tok;
    ckpt_meta meta;
    double mean, std;          /* normalisation from the metadata (0, 1 if absent) */
    int max_B, max_T;
    trn_seqs seqs;             /* scratch for one batch */
    int *inputs, *pos;         /* (max_B * max_T), (max_B) */
} rm_scorer;

/* Opens a reward model for scoring up to max_B responses per call. RL_EINVAL
 * (with a message) if the checkpoint is not kind=reward or does not match the
 * tokenizer; file errors as ckpt_load / tok_load. */
rl_status rm_scorer_open(rm_scorer *s, const char *ckpt, const char *tokenizer, int max_B, const ops_table *ops);
void rm_scorer_close(rm_scorer *s);
/* Scores n <= max_B (prompt, response) pairs: raw[i] = the head's output,
 * norm[i] = (raw - mean) / std (either output may be NULL). Over-long inputs
 * are truncated like training sequences (the prompt's start goes first). */
rl_status rm_score(rm_scorer *s, const chat_turn *const *turns, const int *nturns, const char *const *responses,
                   int n, float *raw, float *norm);

#endif
