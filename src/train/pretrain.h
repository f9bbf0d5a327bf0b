/* pretrain.h — the pretraining loop behind `rlhf pretrain` (a trainer: fails
 * fast with CHECK on bad input, returns an exit code).
 *
 * Data: token shards from `rlhf data prepare` (src/data/shard.h). Each
 * optimizer step takes `accum` micro-batches of (B, T) windows, averages their
 * gradients, clips the global norm, and applies AdamW with warm-up + cosine.
 * Checkpoints (src/model/checkpoint.h) carry the AdamW moments, the step, the
 * RNG and the data-loader position, so `--resume` continues bit-identically
 * (same flags required; checked).
 */
#ifndef RL_PRETRAIN_H
#define RL_PRETRAIN_H

typedef struct {
    const char *data_dir;
    const char *config;       /* tiny | small | gpt2 */
    int layers, heads, channels; /* > 0 overrides the named config */
    int context;              /* maxT (rows of wpe); 0 = seq */
    long long steps;          /* total optimizer steps (a resumed run counts from its checkpoint) */
    long long stop_after;     /* > 0: stop (with a checkpoint) after this many steps in this run; the schedule still spans `steps` */
    int batch, seq, accum;
    double lr, min_lr_frac, weight_decay, beta1, beta2, eps, grad_clip;
    long long warmup;
    int decay_embeddings;
    const char *out;          /* checkpoint path */
    const char *resume;       /* checkpoint to resume from, or NULL */
    long long eval_every;     /* 0 = only at the end */
    int eval_batches;
    long long ckpt_every;     /* 0 = only at the end */
    const char *log_path;     /* JSONL metrics or NULL */
    unsigned long long seed;
    const char *kernels;      /* "fast" | "ref" */
    int quiet;
} pretrain_opts;

/* Runs the loop. Returns 0 when done, 130 after Ctrl-C (SIGINT; a final
 * checkpoint is written first), 1 on failure (message on stderr). */
int pretrain_run(const pretrain_opts *o);

#endif
