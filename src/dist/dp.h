/* dp.h — data-parallel training on top of dist.h: gradient averaging,
 * clipping with the global norm, the AdamW step (optionally ZeRO-1: moments
 * sharded across ranks) and a cross-rank parameter check.
 *
 * Every rank holds the whole model and runs forward/backward on its own slice
 * of the batch (data_loader_open(..., dist_rank(), dist_world(), seed)). A
 * step then is
 *
 *     dist_dp dp;                                   once, after the model exists:
 *     CHECK_OK(dist_dp_init_gpt(&dp, &m, &dpo), ...);
 *     CHECK_OK(dist_dp_adamw_init(&dp, groups, ng, b1, b2, eps, wd), ...);
 *                                                   (or dist_dp_adamw_adopt(&dp, &opt) after ckpt_load)
 *     each step:
 *     gpt_zero_grad(&m);
 *     for each micro-batch: gpt_forward(...); gpt_backward(&m);
 *     CHECK_OK(dist_dp_step(&dp, 1.0f / accum, max_norm, lr, &norm), ...);
 *
 * dist_dp_step = dist_dp_sync_grads (mean over ranks) + dist_dp_clip_grad_norm
 * + dist_dp_adamw_step (+ dist_dp_check_params every check_every steps).
 * After it the parameters are bitwise equal on every rank (the update is the
 * same arithmetic on the same averaged gradient); check_every > 0 verifies
 * that with a 64-bit checksum per rank.
 *
 * Equivalence:
 * - One process: exactly optim_clip_grad_norm + optim_adamw_step (no MPI call,
 *   bit-identical to a trainer that never heard of dist).
 * - W ranks x batch B vs one process x batch W*B: the same windows and the same
 *   mean gradient up to fp32 summation order (per-rank matmuls over B rows, then
 *   a sum over ranks, instead of one matmul over W*B rows).
 * - ZeRO-1 vs plain data parallelism (same W): bitwise identical for W = 2 (the
 *   rank sum a+b is exact-commutative, the norm is summed in the same fixed
 *   blocks, the AdamW update is elementwise). For W > 2 the MPI library may
 *   order the W-term sums differently in all-reduce and reduce-scatter.
 *
 * ZeRO-1: rank r keeps AdamW moments only for its contiguous shard [lo, hi)
 * of the flat parameters (whole DIST_DP_BLOCK blocks), so optimizer memory per
 * rank is 2n/W floats instead of 2n (rank 0 holds 2n more while writing a
 * checkpoint; every rank holds the whole optimizer briefly when resuming,
 * see dist_dp_adamw_adopt). Gradients are reduce-scattered (each rank
 * gets the mean of its shard only), each rank updates its shard, then the
 * parameters are all-gathered. Communication per step equals the all-reduce's
 * (reduce-scatter + all-gather is what a ring all-reduce does anyway).
 *
 * Overlap with backward: not done. gpt_backward is one call, and on CPUs the
 * communication thread would compete with the compute threads for the same
 * cores; bench/mpi_scaling.sh measures the share of the step spent in
 * dist_dp collectives (dp.comm_s) so this can be revisited where it matters.
 *
 * Errors: functions return RL_EIO (MPI failure), RL_ENOMEM, RL_EINTERNAL
 * (ranks diverged: names the ranks). All calls except dist_dp_free are
 * collective: every rank must make them in the same order.
 */
#ifndef RL_DIST_DP_H
#define RL_DIST_DP_H
#include <stddef.h>
#include <stdint.h>
#include "dist.h"
#include "../model/gpt.h"
#include "../optim/adamw.h"

/* Floats per gradient-norm block; ZeRO shard boundaries fall on block boundaries. */
#define DIST_DP_BLOCK 16384

typedef struct {
    int zero;                /* 1 = ZeRO-1 (ignored with one rank) */
    size_t bucket_floats;    /* all-reduce bucket size in floats; 0 = 4M floats (16 MiB) */
    long long check_every;   /* > 0: dist_dp_check_params every K steps inside dist_dp_step */
} dist_dp_opts;

typedef struct {
    int rank, world, zero;
    size_t n;                /* parameters */
    float *params;           /* (n) caller's, kept equal on every rank */
    float *grads;            /* (n) caller's; after sync, valid on [lo, hi) (all of it without ZeRO) */
    size_t lo, hi;           /* this rank's shard: [lo, hi) with ZeRO, [0, n) otherwise */
    size_t *counts, *displs; /* (world) shard layout, owned */
    size_t nblocks;
    size_t blk_lo, blk_hi;   /* norm blocks this rank sums: its shard's (ZeRO) or all */
    double *block_ss;        /* (nblocks) per-block sums of squares, owned */
    uint64_t *sums;          /* (world) parameter checksums, owned */
    optim_adamw opt;         /* moments of [lo, hi) (ZeRO) or [0, n) */
    int has_opt;
    optim_adamw full;        /* ZeRO: whole moments gathered on rank 0 for a checkpoint */
    int has_full;
    size_t bucket;
    long long check_every, steps;
    double comm_s;           /* seconds spent in gradient/parameter collectives so far */
} dist_dp;

/* Sets up data parallelism over the flat params/grads (n) of the caller (not
 * copied; must outlive dp) and broadcasts rank 0's parameters to every rank,
 * so all ranks start equal whatever they initialised. RL_ENOMEM. */
rl_status dist_dp_init(dist_dp *dp, float *params, float *grads, size_t n, const dist_dp_opts *o);
/* The same on a GPT's parameter block. */
rl_status dist_dp_init_gpt(dist_dp *dp, gpt_model *m, const dist_dp_opts *o);
/* Fresh AdamW moments (for the shard under ZeRO); groups tile [0, n) as for
 * optim_adamw_init (NULL = one decayed group). */
rl_status dist_dp_adamw_init(dist_dp *dp, const optim_group *groups, int ngroups, float beta1, float beta2, float eps,
                             float weight_decay);
/* Takes over a whole optimizer (e.g. from ckpt_load): keeps it, or under ZeRO
 * copies this rank's shard of the moments and frees `full`. Either way `full`
 * must not be used or freed by the caller afterwards. */
rl_status dist_dp_adamw_adopt(dist_dp *dp, optim_adamw *full);
/* The optimizer this rank steps with (its shard under ZeRO; for t, hyper-parameters). */
static inline const optim_adamw *dist_dp_adamw(const dist_dp *dp) { return &dp->opt; }

/* grads <- mean over ranks (bucketed all-reduce; reduce-scatter under ZeRO). */
rl_status dist_dp_sync_grads(dist_dp *dp);
/* Like optim_clip_grad_norm over the global (averaged) gradient: scale, then
 * clip to max_norm (0 = no clipping); returns the norm after `scale`, the same
 * on every rank. With one rank it is optim_clip_grad_norm itself. */
rl_status dist_dp_clip_grad_norm(dist_dp *dp, float scale, float max_norm, float *norm);
/* AdamW step at learning rate lr; under ZeRO each rank updates its shard and
 * the parameters are all-gathered. */
rl_status dist_dp_adamw_step(dist_dp *dp, float lr);
/* sync + clip + step (+ check every check_every steps). norm may be NULL. */
rl_status dist_dp_step(dist_dp *dp, float scale, float max_norm, float lr, float *norm);
/* Compares a 64-bit checksum of the parameters across ranks; RL_EINTERNAL
 * naming the first rank that differs from rank 0. */
rl_status dist_dp_check_params(dist_dp *dp);
/* 64-bit checksum of n floats (bit patterns, order-sensitive). */
uint64_t dist_checksum_f32(const float *x, size_t n);

/* Whole optimizer state for a checkpoint. Collective. On rank 0 *out is the
 * optimizer (dp's own without ZeRO; under ZeRO the shards gathered into a
 * whole copy, 2n floats on rank 0, that dp owns until dist_dp_adamw_release
 * or dist_dp_free); NULL elsewhere. */
rl_status dist_dp_adamw_for_save(dist_dp *dp, const optim_adamw **out);
/* Frees the gathered copy (call after writing the checkpoint, so rank 0 keeps
 * ZeRO's memory saving between checkpoints). Not collective. */
void dist_dp_adamw_release(dist_dp *dp);
/* Frees what dp owns (the optimizer included). Not collective. */
void dist_dp_free(dist_dp *dp);

/* ---- metrics for trainers --------------------------------------------------- */

/* Mean over ranks of x (each rank's number weighs the same). */
double dist_mean(double x);
/* Global mean from per-rank (sum, count) pairs: sum_r sum / sum_r count (0 if no count).
 * Use it when ranks have different numbers of items (tokens, samples). */
double dist_global_mean(double local_sum, double local_count);
/* Mean and population std over the union of every rank's x (n may differ by
 * rank, 0 included): two passes (mean first, then squared deviations) in
 * double, for advantage / reward normalisation with global statistics. */
rl_status dist_global_mean_std(const float *x, size_t n, double *mean, double *std);

#endif
