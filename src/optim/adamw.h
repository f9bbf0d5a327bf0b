/* adamw.h — AdamW (decoupled weight decay), warm-up + cosine learning-rate
 * schedule, global-norm gradient clipping, gradient accumulation.
 *
 * Parameters and gradients are flat float arrays (the GPT keeps them in one
 * block each); groups say which ranges get weight decay. The moments m, v are
 * allocated once in optim_adamw_init.
 *
 * One optimizer step with gradient accumulation over k micro-batches:
 *     gpt_zero_grad(model);
 *     for i in 1..k: gpt_forward(...); gpt_backward(model);     (grads add up)
 *     norm = optim_clip_grad_norm(grads, n, 1.0f / k, max_norm); (mean, then clip)
 *     optim_adamw_step(&opt, params, grads, optim_lr(&sched, step));
 */
#ifndef RL_OPTIM_ADAMW_H
#define RL_OPTIM_ADAMW_H
#include <stddef.h>
#include <stdint.h>
#include "../base/check.h"

typedef struct {
    size_t offset, size; /* range of the flat parameter array */
    int decay;           /* 1 = apply weight decay to this range */
} optim_group;

#define OPTIM_MAX_GROUPS 64
typedef struct {
    float beta1, beta2, eps, weight_decay;
    size_t n;           /* parameters */
    float *m, *v;       /* (n) first and second moments, owned */
    long long t;        /* steps taken (bias correction uses t) */
    int ngroups;
    optim_group groups[OPTIM_MAX_GROUPS];
} optim_adamw;

/* Allocates the moments (zeroed). groups may be NULL (then one group, decayed).
 * Defaults used by the CLI: beta1 0.9, beta2 0.95, eps 1e-8, weight_decay 0.1.
 * RL_EINVAL for groups that do not tile [0, n) or too many; RL_ENOMEM. */
rl_status optim_adamw_init(optim_adamw *o, size_t n, const optim_group *groups, int ngroups,
                           float beta1, float beta2, float eps, float weight_decay);
void optim_adamw_free(optim_adamw *o);
/* One AdamW step in PyTorch's order: p *= 1 - lr*wd (decayed groups only), then
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). params, grads (n). */
void optim_adamw_step(optim_adamw *o, float *params, const float *grads, float lr);

/* Multiplies grads (n) by `scale` (1/k for k accumulated micro-batches), then
 * if max_norm > 0 and the global L2 norm exceeds it, rescales them to max_norm.
 * Returns the norm after `scale`, before clipping (for logging). */
float optim_clip_grad_norm(float *grads, size_t n, float scale, float max_norm);

typedef struct {
    float lr;            /* peak learning rate */
    long long warmup;    /* steps of linear warm-up from lr/warmup to lr */
    long long total;     /* total steps; cosine decays to lr*min_frac at step total-1 */
    float min_frac;      /* floor of the decay as a fraction of lr (e.g. 0.1) */
} optim_schedule;

/* Learning rate at 0-based `step`: (step+1)/warmup * lr during warm-up, then
 * cosine from lr down to lr*min_frac over the remaining steps (constant after). */
float optim_lr(const optim_schedule *s, long long step);

#endif
