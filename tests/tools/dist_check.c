/* dist_check — exercises src/dist under 1 or N processes and checks the
 * collectives and the data-parallel helper (dp.h) against values every rank
 * can compute alone. Prints "N passed, N failed" (summed over ranks) on rank 0. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/dist/dist.h"
#include "../../src/dist/dp.h"
#include "../../src/base/rng.h"

/* gradient of "rank r" for parameter i: a deterministic function every rank can evaluate */
#define T(c) do { if (c) pass++; else { fail++; fprintf(stderr, "rank %d: failed %s (line %d)\n", r, #c, __LINE__); } } while (0)
static float grad_of(int r, size_t i) { return (float)sin(0.001 * (double)i * (r + 1)) * (r % 2 ? 0.5f : 2.0f) + 0.01f * r; }

/* dp step, plain and ZeRO-1, against one AdamW step on the mean gradient
 * computed here alone; np parameters. */
static void run_dp(size_t np, int *pass_, int *fail_) {
    int r = dist_rank(), w = dist_world(), pass = 0, fail = 0;
    /* data-parallel step: plain and ZeRO-1 against one AdamW step on the mean
     * gradient computed here alone. n spans 3 norm blocks plus a bit. */
    float *p0 = calloc(np, sizeof(float)), *pz = calloc(np, sizeof(float)), *pe = calloc(np, sizeof(float));
    float *g0 = calloc(np, sizeof(float)), *gz = calloc(np, sizeof(float)), *ge = calloc(np, sizeof(float));
    rl_rng rng;
    rl_rng_seed(&rng, 100 + (uint64_t)r); /* every rank starts from different weights ... */
    for (size_t i = 0; i < np; i++) p0[i] = pz[i] = rl_rng_normal(&rng);
    rl_rng_seed(&rng, 100);               /* ... rank 0's are what everyone must end up with */
    for (size_t i = 0; i < np; i++) pe[i] = rl_rng_normal(&rng);
    optim_group groups[2] = {{0, np / 3, 0}, {np / 3, np - np / 3, 1}};
    dist_dp dp0, dpz;
    dist_dp_opts o0 = {0, 5000, 0}, oz = {1, 0, 0};  /* small buckets on the plain one */
    CHECK_OK(dist_dp_init(&dp0, p0, g0, np, &o0), "dp");
    CHECK_OK(dist_dp_init(&dpz, pz, gz, np, &oz), "dp zero");
    T(memcmp(p0, pe, np * sizeof(float)) == 0);  /* rank 0's weights were broadcast */
    CHECK_OK(dist_dp_adamw_init(&dp0, groups, 2, 0.9f, 0.95f, 1e-8f, 0.1f), "adamw");
    CHECK_OK(dist_dp_adamw_init(&dpz, groups, 2, 0.9f, 0.95f, 1e-8f, 0.1f), "adamw zero");
    optim_adamw oe;
    CHECK_OK(optim_adamw_init(&oe, np, groups, 2, 0.9f, 0.95f, 1e-8f, 0.1f), "adamw ref");
    float n0 = 0, nz = 0;
    double maxd = 0;
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < np; i++) {
            g0[i] = gz[i] = grad_of(r, i) * (float)(step + 1);
            /* fp32 sum in rank order, then * 1/W: what the all-reduce computes
             * (for W > 2 MPI may add in another order; the bound below allows it) */
            float s = 0;
            for (int q = 0; q < w; q++) s += grad_of(q, i) * (float)(step + 1);
            ge[i] = s * (1.0f / (float)w);
        }
        CHECK_OK(dist_dp_step(&dp0, 0.5f, 1.0f, 1e-3f, &n0), "dp step");
        CHECK_OK(dist_dp_step(&dpz, 0.5f, 1.0f, 1e-3f, &nz), "dp step zero");
        optim_clip_grad_norm(ge, np, 0.5f, 1.0f);
        optim_adamw_step(&oe, pe, ge, 1e-3f);
    }
    for (size_t i = 0; i < np; i++) maxd = fmax(maxd, fabs((double)p0[i] - pe[i]));
    T(n0 > 1.0f && n0 == nz);                          /* clipping was active, same norm */
    T(memcmp(p0, pz, np * sizeof(float)) == 0 || w > 2); /* ZeRO-1 == plain bit for bit (W = 2) */
    if (maxd >= 1e-6) fprintf(stderr, "rank %d: max param diff vs one process %.3g\n", r, maxd);
    T(maxd < (w <= 2 ? 1e-6 : 1e-4));                  /* == one process on the mean gradient */
    T(dist_dp_check_params(&dp0) == RL_OK && dist_dp_check_params(&dpz) == RL_OK);
    /* the checkpoint view of the ZeRO moments equals the plain optimizer's */
    const optim_adamw *f0 = NULL, *fz = NULL;
    CHECK_OK(dist_dp_adamw_for_save(&dp0, &f0), "save view");
    CHECK_OK(dist_dp_adamw_for_save(&dpz, &fz), "save view zero");
    if (r == 0) T(f0 && fz && fz->t == 3 && (w > 2 || (!memcmp(f0->m, fz->m, np * sizeof(float)) && !memcmp(f0->v, fz->v, np * sizeof(float)))));
    else T(!f0 && !fz);
    /* a diverged rank is caught and named */
    if (r == w - 1) p0[123] += 1e-3f;
    rl_status cs = dist_dp_check_params(&dp0);
    char want_msg[64];
    snprintf(want_msg, sizeof want_msg, "rank %d checksum", w - 1);
    T(w == 1 ? cs == RL_OK : (cs == RL_EINTERNAL && strstr(rl_error(), want_msg) != NULL));
    dist_dp_free(&dp0); dist_dp_free(&dpz); optim_adamw_free(&oe);
    free(p0); free(pz); free(pe); free(g0); free(gz); free(ge);

    *pass_ += pass;
    *fail_ += fail;
}

int main(int argc, char **argv) {
    CHECK_OK(dist_init(&argc, &argv), "dist_init");
    int r = dist_rank(), w = dist_world(), pass = 0, fail = 0;
    float f[3] = {(float)r, 1.0f, (float)(r * r)};
    CHECK_OK(dist_allreduce_sum_f32(f, 3), "allreduce");
    float want0 = 0, want2 = 0;
    for (int i = 0; i < w; i++) { want0 += (float)i; want2 += (float)(i * i); }
    T(f[0] == want0 && f[1] == (float)w && f[2] == want2);
    float m[2] = {(float)r, 2.0f};
    CHECK_OK(dist_allreduce_mean_f32(m, 2), "mean");
    T(fabsf(m[0] - want0 / (float)w) < 1e-6f && m[1] == 2.0f);
    double d[2] = {(double)r + 0.5, (double)r};
    CHECK_OK(dist_allreduce_sum_f64(d, 1), "sum f64");
    CHECK_OK(dist_allreduce_max_f64(d + 1, 1), "max f64");
    T(fabs(d[0] - (want0 + 0.5 * w)) < 1e-12 && d[1] == (double)(w - 1));
    int v = r == 0 ? 12345 : -1;
    CHECK_OK(dist_bcast(&v, sizeof v, 0), "bcast");
    T(v == 12345);
    CHECK_OK(dist_barrier(), "barrier");
    /* every rank reports; the world size is what the launcher asked for */
    const char *want_w = getenv("DIST_CHECK_WORLD");
    if (want_w) T(w == atoi(want_w));

    /* v-collectives over an uneven layout: rank q owns [displs[q], displs[q] + q + 3) */
    size_t counts[64], displs[64], n = 0;
    CHECK(w <= 64, "dist_check handles up to 64 ranks");
    for (int q = 0; q < w; q++) { displs[q] = n; counts[q] = (size_t)q + 3; n += counts[q]; }
    float *buf = calloc(n, sizeof(float)), *got = calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) buf[i] = (float)(r * 1000) + (float)i;
    CHECK_OK(dist_reduce_scatter_sum_f32(buf, counts, displs), "reduce-scatter");
    int ok = 1;
    for (size_t i = displs[r]; i < displs[r] + counts[r]; i++) ok &= buf[i] == 1000.0f * want0 + (float)w * (float)i;
    T(ok);
    for (size_t i = 0; i < n; i++) buf[i] = -1.0f;
    for (size_t i = displs[r]; i < displs[r] + counts[r]; i++) buf[i] = (float)(r + 1);
    CHECK_OK(dist_allgatherv_f32(buf, counts, displs), "allgatherv");
    ok = 1;
    for (int q = 0; q < w; q++)
        for (size_t i = displs[q]; i < displs[q] + counts[q]; i++) ok &= buf[i] == (float)(q + 1);
    T(ok);
    CHECK_OK(dist_gatherv_f32(buf + displs[r], got, counts, displs, 0), "gatherv");
    if (r == 0) T(memcmp(got, buf, n * sizeof(float)) == 0); else pass++;
    free(buf); free(got);

    /* global statistics with a different number of items per rank: rank q has q+1 values q+1 */
    float xs[64];
    for (int i = 0; i <= r; i++) xs[i] = (float)(r + 1);
    double mu, sd, s1 = 0, s2 = 0, cnt = 0;
    CHECK_OK(dist_global_mean_std(xs, (size_t)r + 1, &mu, &sd), "mean/std");
    for (int q = 0; q < w; q++) { s1 += (double)(q + 1) * (q + 1); cnt += q + 1; }
    double emu = s1 / cnt;
    for (int q = 0; q < w; q++) s2 += (q + 1) * ((q + 1) - emu) * ((q + 1) - emu);
    T(fabs(mu - emu) < 1e-12 && fabs(sd - sqrt(s2 / cnt)) < 1e-12);
    T(fabs(dist_global_mean((double)(r + 1) * (r + 1), r + 1) - emu) < 1e-12 && fabs(dist_mean(r) - want0 / w) < 1e-12);
    T(dist_seed_for_rank(7, 0) == 7 && dist_seed_for_rank(7, 1) != 7 && dist_seed_for_rank(7, 1) != dist_seed_for_rank(7, 2));

    /* data-parallel step over 3 blocks and a bit, and over less than one block
     * (then rank 1.. have empty ZeRO shards) */
    run_dp(3 * DIST_DP_BLOCK + 123, &pass, &fail);
    run_dp(1000, &pass, &fail);

    double tally[2] = {pass, fail};
    CHECK_OK(dist_allreduce_sum_f64(tally, 2), "counts");
    if (r == 0) printf("%d passed, %d failed\n", (int)tally[0], (int)tally[1]);
    dist_finalize();
    return tally[1] == 0 ? 0 : 1;
}
