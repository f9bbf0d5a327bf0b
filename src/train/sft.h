/* sft.h — supervised fine-tuning on demonstrations (`rlhf sft`).
 *
 * Data: feedback records (src/data/feedback.h) → demonstrations (fb_to_demos:
 * demo records, plus judged winners with --winners). Each is rendered with the
 * chat template and tokenized with its train mask (src/train/common.h): the
 * loss is the cross-entropy on the assistant response tokens and the "<|end|>"
 * closing them only — prompt tokens and padding have weight 0 in gpt_forward's
 * loss weights. A record's weight multiplies its tokens' weights, so the loss is
 *   L = sum_{b,t} w_b m_bt (-log p(x_{b,t+1} | x_{b,<=t})) / sum_{b,t} w_b m_bt
 * (a token-level mean, as TRL's assistant-only loss). Sequences are padded, not
 * packed (no cross-document attention).
 *
 * Validation: a deterministic held-out fraction of prompts (fb_is_heldout), its
 * token-mean loss logged as val_loss. Checkpoints are atomic and carry
 * metadata kind=lm, trainer=sft, base=<the starting checkpoint>. Ctrl-C
 * finishes the step, writes the checkpoint and returns 130.
 */
#ifndef RL_SFT_H
#define RL_SFT_H
#include "common.h"

typedef struct {
    trn_model_src model;       /* starting checkpoint or fresh config */
    const char *tokenizer;
    const char *data;          /* feedback file, any import format (or NULL) */
    const char *format;        /* format of `data`: auto | jsonl | hh | oasst */
    const char *records;       /* canonical records JSONL (or NULL) */
    int skip_bad;
    int winners;               /* also train on judged winners */
    int all_turns;             /* train on every assistant turn of the prompt too */
    const char *out;
    long long steps;           /* 0 = from epochs */
    double epochs;
    int batch, accum, seq;
    double lr, min_lr_frac, weight_decay, grad_clip;
    long long warmup;          /* -1 = 5% of the steps (at most 100) */
    double val_fraction;
    long long eval_every, ckpt_every;
    const char *log_path;
    unsigned long long seed;
    const char *kernels;
    int quiet;
} sft_opts;

/* Returns 0 when done, 130 after Ctrl-C (checkpoint written), exits 1 (CHECK) on failure. */
int sft_run(const sft_opts *o);

#endif
