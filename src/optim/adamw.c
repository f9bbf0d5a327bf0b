/* adamw.c — see adamw.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "adamw.h"

rl_status optim_adamw_init(optim_adamw *o, size_t n, const optim_group *groups, int ngroups,
                           float beta1, float beta2, float eps, float weight_decay) {
    memset(o, 0, sizeof *o);
    if (!groups) {
        o->ngroups = 1;
        o->groups[0] = (optim_group){0, n, 1};
    } else {
        if (ngroups < 1 || ngroups > OPTIM_MAX_GROUPS) return rl_fail(RL_EINVAL, "%d parameter groups (1..%d)", ngroups, OPTIM_MAX_GROUPS);
        size_t at = 0;
        for (int i = 0; i < ngroups; i++) {
            if (groups[i].offset != at) return rl_fail(RL_EINVAL, "parameter group %d starts at %zu, expected %zu", i, groups[i].offset, at);
            at += groups[i].size;
            o->groups[i] = groups[i];
        }
        if (at != n) return rl_fail(RL_EINVAL, "parameter groups cover %zu of %zu parameters", at, n);
        o->ngroups = ngroups;
    }
    o->n = n;
    o->beta1 = beta1; o->beta2 = beta2; o->eps = eps; o->weight_decay = weight_decay;
    o->m = calloc(n ? n : 1, sizeof(float));
    o->v = calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) { optim_adamw_free(o); return rl_fail(RL_ENOMEM, "cannot allocate AdamW state for %zu parameters", n); }
    return RL_OK;
}

void optim_adamw_free(optim_adamw *o) {
    free(o->m); free(o->v);
    o->m = o->v = NULL;
}

void optim_adamw_step(optim_adamw *o, float *params, const float *grads, float lr) {
    o->t++;
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float bc1 = 1.0f - powf(b1, (float)o->t), bc2 = 1.0f - powf(b2, (float)o->t);
    float step_size = lr / bc1, sqrt_bc2 = sqrtf(bc2);
    float *m = o->m, *v = o->v;
    for (int gi = 0; gi < o->ngroups; gi++) {
        size_t lo = o->groups[gi].offset, hi = lo + o->groups[gi].size;
        float decay = o->groups[gi].decay ? 1.0f - lr * o->weight_decay : 1.0f;
#pragma omp parallel for simd schedule(static)
        for (size_t i = lo; i < hi; i++) {
            float g = grads[i];
            m[i] = b1 * m[i] + (1.0f - b1) * g;
            v[i] = b2 * v[i] + (1.0f - b2) * g * g;
            float p = params[i] * decay;
            params[i] = p - step_size * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
        }
    }
}

float optim_clip_grad_norm(float *grads, size_t n, float scale, float max_norm) {
    /* per-block partial sums added in a fixed order: the norm (and so the run)
     * does not depend on which thread finishes first */
    enum { NB = 64 };
    double part[NB] = {0};
#pragma omp parallel for schedule(static)
    for (int b = 0; b < NB; b++) {
        size_t lo = n * b / NB, hi = n * (b + 1) / NB;
        double s = 0;
        for (size_t i = lo; i < hi; i++) {
            grads[i] *= scale;
            s += (double)grads[i] * grads[i];
        }
        part[b] = s;
    }
    double ss = 0;
    for (int b = 0; b < NB; b++) ss += part[b];
    float norm = (float)sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float c = max_norm / (norm + 1e-6f);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= c;
    }
    return norm;
}

float optim_lr(const optim_schedule *s, long long step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    long long span = s->total - 1 - s->warmup;
    double p = span > 0 ? (double)(step - s->warmup) / (double)span : 1.0;
    if (p > 1) p = 1;
    if (p < 0) p = 0;
    double lo = s->lr * s->min_frac;
    return (float)(lo + 0.5 * (s->lr - lo) * (1.0 + cos(M_PI * p)));
}
