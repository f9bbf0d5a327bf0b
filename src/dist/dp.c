/* dp.c — see dp.h. */
#include "dp.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../base/log.h"

rl_status dist_dp_init(dist_dp *dp, float *params, float *grads, size_t n, const dist_dp_opts *o) {
    memset(dp, 0, sizeof *dp);
    dp->rank = dist_rank();
    dp->world = dist_world();
    dp->zero = o && o->zero && dp->world > 1;
    dp->n = n;
    dp->params = params;
    dp->grads = grads;
    dp->bucket = o && o->bucket_floats ? o->bucket_floats : (size_t)4 << 20;
    dp->check_every = o ? o->check_every : 0;
    dp->nblocks = (n + DIST_DP_BLOCK - 1) / DIST_DP_BLOCK;
    dp->counts = calloc((size_t)dp->world, sizeof(size_t));
    dp->displs = calloc((size_t)dp->world, sizeof(size_t));
    dp->block_ss = calloc(dp->nblocks ? dp->nblocks : 1, sizeof(double));
    dp->sums = calloc((size_t)dp->world, sizeof(uint64_t));
    if (!dp->counts || !dp->displs || !dp->block_ss || !dp->sums) { dist_dp_free(dp); return rl_fail(RL_ENOMEM, "dist_dp_init"); }
    /* Shard r = blocks [nb*r/W, nb*(r+1)/W): contiguous, in rank order, on
     * block boundaries (so the per-block norm sums are the same with and
     * without ZeRO). A rank may get an empty shard when nb < W. */
    for (int r = 0; r < dp->world; r++) {
        size_t b0 = dp->nblocks * (size_t)r / (size_t)dp->world, b1 = dp->nblocks * (size_t)(r + 1) / (size_t)dp->world;
        size_t lo = b0 * DIST_DP_BLOCK, hi = b1 * DIST_DP_BLOCK;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        dp->displs[r] = lo;
        dp->counts[r] = hi - lo;
    }
    dp->lo = dp->zero ? dp->displs[dp->rank] : 0;
    dp->hi = dp->zero ? dp->displs[dp->rank] + dp->counts[dp->rank] : n;
    /* the blocks this rank sums for the norm (an empty shard has none) */
    dp->blk_lo = dp->zero ? dp->nblocks * (size_t)dp->rank / (size_t)dp->world : 0;
    dp->blk_hi = dp->zero ? dp->nblocks * (size_t)(dp->rank + 1) / (size_t)dp->world : dp->nblocks;
    /* every rank starts from rank 0's weights, whatever it initialised */
    rl_status s = dist_bcast(params, n * sizeof(float), 0);
    if (s != RL_OK) dist_dp_free(dp);
    return s;
}

rl_status dist_dp_init_gpt(dist_dp *dp, gpt_model *m, const dist_dp_opts *o) {
    return dist_dp_init(dp, m->params, m->grads, m->num_params, o);
}

/* groups (tiling [0, n)) clipped to [lo, hi) and shifted to start at 0. */
static int shard_groups(const dist_dp *dp, const optim_group *groups, int ngroups, optim_group *out) {
    optim_group one = {0, dp->n, 1};
    if (!groups) { groups = &one; ngroups = 1; }
    int k = 0;
    for (int i = 0; i < ngroups; i++) {
        size_t a = groups[i].offset, b = a + groups[i].size;
        if (a < dp->lo) a = dp->lo;
        if (b > dp->hi) b = dp->hi;
        if (a >= b) continue;
        out[k++] = (optim_group){a - dp->lo, b - a, groups[i].decay};
    }
    return k;
}

rl_status dist_dp_adamw_init(dist_dp *dp, const optim_group *groups, int ngroups, float beta1, float beta2, float eps,
                             float weight_decay) {
    if (dp->has_opt) { optim_adamw_free(&dp->opt); dp->has_opt = 0; }
    if (!dp->zero) {
        RL_TRY(optim_adamw_init(&dp->opt, dp->n, groups, ngroups, beta1, beta2, eps, weight_decay));
    } else {
        if (groups && (ngroups < 1 || ngroups > OPTIM_MAX_GROUPS)) return rl_fail(RL_EINVAL, "%d parameter groups (1..%d)", ngroups, OPTIM_MAX_GROUPS);
        optim_group g[OPTIM_MAX_GROUPS];
        int k = shard_groups(dp, groups, ngroups, g);
        /* an empty shard still gets a valid (empty) optimizer */
        RL_TRY(optim_adamw_init(&dp->opt, dp->hi - dp->lo, k ? g : NULL, k ? k : 1, beta1, beta2, eps, weight_decay));
    }
    dp->has_opt = 1;
    return RL_OK;
}

rl_status dist_dp_adamw_adopt(dist_dp *dp, optim_adamw *full) {
    if (full->n != dp->n) {
        optim_adamw_free(full);
        return rl_fail(RL_EINVAL, "optimizer for %zu parameters, model has %zu", full->n, dp->n);
    }
    if (dp->has_opt) { optim_adamw_free(&dp->opt); dp->has_opt = 0; }
    if (!dp->zero) {
        dp->opt = *full;
        memset(full, 0, sizeof *full);
        dp->has_opt = 1;
        return RL_OK;
    }
    rl_status s = dist_dp_adamw_init(dp, full->groups, full->ngroups, full->beta1, full->beta2, full->eps, full->weight_decay);
    if (s == RL_OK) {
        size_t k = dp->hi - dp->lo;
        memcpy(dp->opt.m, full->m + dp->lo, k * sizeof(float));
        memcpy(dp->opt.v, full->v + dp->lo, k * sizeof(float));
        dp->opt.t = full->t;
    }
    optim_adamw_free(full);
    return s;
}

rl_status dist_dp_sync_grads(dist_dp *dp) {
    if (dp->world == 1) return RL_OK;
    double t0 = rl_now();
    float inv = 1.0f / (float)dp->world;
    if (!dp->zero) {
        for (size_t off = 0; off < dp->n; off += dp->bucket) {
            size_t k = dp->n - off < dp->bucket ? dp->n - off : dp->bucket;
            RL_TRY(dist_allreduce_sum_f32(dp->grads + off, k));
            float *g = dp->grads + off;
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < k; i++) g[i] *= inv;
        }
    } else {
        RL_TRY(dist_reduce_scatter_sum_f32(dp->grads, dp->counts, dp->displs));
        float *g = dp->grads;
        size_t lo = dp->lo, hi = dp->hi;
#pragma omp parallel for simd schedule(static)
        for (size_t i = lo; i < hi; i++) g[i] *= inv;
    }
    dp->comm_s += rl_now() - t0;
    return RL_OK;
}

rl_status dist_dp_clip_grad_norm(dist_dp *dp, float scale, float max_norm, float *norm_out) {
    if (dp->world == 1) {
        float nrm = optim_clip_grad_norm(dp->grads, dp->n, scale, max_norm);
        if (norm_out) *norm_out = nrm;
        return RL_OK;
    }
    /* Fixed blocks of DIST_DP_BLOCK floats, each summed sequentially in
     * double, then the block sums added in block order: the same number on
     * every rank, with or without ZeRO (where a rank sums only its blocks and
     * the others' arrive through an all-reduce of exact zeros + one value). */
    float *g = dp->grads;
    size_t n = dp->n, b0 = dp->blk_lo, b1 = dp->blk_hi;
    double *ss = dp->block_ss;
    memset(ss, 0, dp->nblocks * sizeof(double));
    long long nb0 = (long long)b0, nb1 = (long long)b1;
#pragma omp parallel for schedule(static)
    for (long long b = nb0; b < nb1; b++) {
        size_t lo = (size_t)b * DIST_DP_BLOCK, hi = lo + DIST_DP_BLOCK < n ? lo + DIST_DP_BLOCK : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) {
            g[i] *= scale;
            s += (double)g[i] * g[i];
        }
        ss[b] = s;
    }
    if (dp->zero) {
        double t0 = rl_now();
        RL_TRY(dist_allreduce_sum_f64(ss, dp->nblocks));
        dp->comm_s += rl_now() - t0;
    }
    double tot = 0;
    for (size_t b = 0; b < dp->nblocks; b++) tot += ss[b];
    float nrm = (float)sqrt(tot);
    if (max_norm > 0 && nrm > max_norm) {
        float c = max_norm / (nrm + 1e-6f);
        size_t lo = dp->lo, hi = dp->hi;
#pragma omp parallel for simd schedule(static)
        for (size_t i = lo; i < hi; i++) g[i] *= c;
    }
    if (norm_out) *norm_out = nrm;
    return RL_OK;
}

rl_status dist_dp_adamw_step(dist_dp *dp, float lr) {
    if (!dp->has_opt) return rl_fail(RL_EINVAL, "dist_dp_adamw_step before dist_dp_adamw_init/adopt");
    if (!dp->zero) {
        optim_adamw_step(&dp->opt, dp->params, dp->grads, lr);
        return RL_OK;
    }
    optim_adamw_step(&dp->opt, dp->params + dp->lo, dp->grads + dp->lo, lr);
    double t0 = rl_now();
    RL_TRY(dist_allgatherv_f32(dp->params, dp->counts, dp->displs));
    dp->comm_s += rl_now() - t0;
    return RL_OK;
}

void dist_dp_adamw_release(dist_dp *dp) {
    if (dp->has_full) optim_adamw_free(&dp->full);
    dp->has_full = 0;
}

rl_status dist_dp_step(dist_dp *dp, float scale, float max_norm, float lr, float *norm) {
    RL_TRY(dist_dp_sync_grads(dp));
    RL_TRY(dist_dp_clip_grad_norm(dp, scale, max_norm, norm));
    RL_TRY(dist_dp_adamw_step(dp, lr));
    dp->steps++;
    if (dp->check_every > 0 && dp->steps % dp->check_every == 0) RL_TRY(dist_dp_check_params(dp));
    return RL_OK;
}

uint64_t dist_checksum_f32(const float *x, size_t n) {
    /* sum over i of mix(bits_i, i): parallel (integer sums are exact and
     * order-free) yet sensitive to every bit and to position */
    uint64_t h = 0;
    const uint32_t *u = (const uint32_t *)(const void *)x;
#pragma omp parallel for reduction(+ : h) schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint64_t z = ((uint64_t)u[i] << 32 | (uint32_t)i) + 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        h += z ^ (z >> 31);
    }
    return h ^ (uint64_t)n;
}

rl_status dist_dp_check_params(dist_dp *dp) {
    if (dp->world == 1) return RL_OK;
    uint64_t mine = dist_checksum_f32(dp->params, dp->n);
    uint64_t *a = dp->sums;
    rl_status s = dist_allgather_u64(mine, a);
    for (int r = 1; s == RL_OK && r < dp->world; r++)
        if (a[r] != a[0])
            s = rl_fail(RL_EINTERNAL, "parameters differ across ranks after step %lld: rank %d checksum %016llx != rank 0 %016llx (the optimizer steps diverged: non-deterministic kernel, different data shapes, or a bug)",
                        dp->steps, r, (unsigned long long)a[r], (unsigned long long)a[0]);
    return s;
}

rl_status dist_dp_adamw_for_save(dist_dp *dp, const optim_adamw **out) {
    *out = NULL;
    if (!dp->has_opt) return rl_fail(RL_EINVAL, "dist_dp_adamw_for_save without an optimizer");
    if (!dp->zero) {
        if (dp->rank == 0) *out = &dp->opt;
        return RL_OK;
    }
    /* rank 0 gathers the shards' moments into a whole optimizer (on rank 0
     * only, until dist_dp_adamw_release) */
    if (dp->rank == 0 && !dp->has_full) {
        RL_TRY(optim_adamw_init(&dp->full, dp->n, NULL, 1, dp->opt.beta1, dp->opt.beta2, dp->opt.eps, dp->opt.weight_decay));
        dp->has_full = 1;
    }
    RL_TRY(dist_gatherv_f32(dp->opt.m, dp->rank == 0 ? dp->full.m : NULL, dp->counts, dp->displs, 0));
    RL_TRY(dist_gatherv_f32(dp->opt.v, dp->rank == 0 ? dp->full.v : NULL, dp->counts, dp->displs, 0));
    if (dp->rank == 0) {
        /* a checkpoint stores t, m and v; the groups are re-derived from
         * the model when it is loaded (ckpt_load), so one group is fine here */
        dp->full.t = dp->opt.t;
        *out = &dp->full;
    }
    return RL_OK;
}

void dist_dp_free(dist_dp *dp) {
    if (dp->has_opt) optim_adamw_free(&dp->opt);
    if (dp->has_full) optim_adamw_free(&dp->full);
    free(dp->counts); free(dp->displs); free(dp->block_ss); free(dp->sums);
    memset(dp, 0, sizeof *dp);
}

/* ---- metrics ------------------------------------------------------------------ */

double dist_mean(double x) {
    (void)dist_allreduce_mean_f64(&x, 1); /* MPI errors abort the job (MPI's default handler) */
    return x;
}

double dist_global_mean(double local_sum, double local_count) {
    double b[2] = {local_sum, local_count};
    (void)dist_allreduce_sum_f64(b, 2);
    return b[1] > 0 ? b[0] / b[1] : 0.0;
}

rl_status dist_global_mean_std(const float *x, size_t n, double *mean, double *std) {
    double b[2] = {0, (double)n};
    for (size_t i = 0; i < n; i++) b[0] += x[i];
    RL_TRY(dist_allreduce_sum_f64(b, 2));
    double mu = b[1] > 0 ? b[0] / b[1] : 0.0, ss = 0;
    for (size_t i = 0; i < n; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu);
    RL_TRY(dist_allreduce_sum_f64(&ss, 1));
    *mean = mu;
    *std = b[1] > 0 ? sqrt(ss / b[1]) : 0.0;
    return RL_OK;
}
