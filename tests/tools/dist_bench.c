/* dist_bench — time of the data-parallel gradient collectives alone:
 *   mpirun -np 2 build/tools/dist_bench [n_floats] [iters]
 * Barrier, then `iters` x dist_dp_sync_grads on n floats (plain all-reduce and
 * ZeRO-1's reduce-scatter + the parameter all-gather), median per call on
 * rank 0. Used by bench/mpi_scaling.sh to separate transfer time from the
 * waiting for a slower rank that the training log's comm_s also contains. */
#include <stdio.h>
#include <stdlib.h>
#include "../../src/base/log.h"
#include "../../src/dist/dp.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    CHECK_OK(dist_init(&argc, &argv), "dist_init");
    size_t n = argc > 1 ? (size_t)atoll(argv[1]) : (size_t)3 << 20;
    int iters = argc > 2 ? atoi(argv[2]) : 10;
    CHECK(n > 0 && iters > 0 && iters <= 1000, "usage: dist_bench [n_floats] [iters <= 1000]");
    float *p = rl_xcalloc(n, sizeof(float)), *g = rl_xcalloc(n, sizeof(float));
    double t[2][1000];
    for (int zero = 0; zero < 2; zero++) {
        dist_dp dp;
        dist_dp_opts o = {zero, 0, 0};
        CHECK_OK(dist_dp_init(&dp, p, g, n, &o), "dp");
        CHECK_OK(dist_dp_adamw_init(&dp, NULL, 1, 0.9f, 0.95f, 1e-8f, 0.0f), "adamw");
        for (int i = 0; i < iters; i++) {
            for (size_t k = 0; k < n; k += 4096) g[k] = (float)i;
            CHECK_OK(dist_barrier(), "barrier");
            double t0 = rl_now();
            CHECK_OK(dist_dp_sync_grads(&dp), "sync");
            if (zero) CHECK_OK(dist_allgatherv_f32(p, dp.counts, dp.displs), "allgather");
            t[zero][i] = rl_now() - t0;
        }
        qsort(t[zero], (size_t)iters, sizeof(double), cmp_d);
        dist_dp_free(&dp);
    }
    if (dist_is_root())
        printf("dist_bench: %d ranks, %zu floats (%.1f MB): all-reduce %.2f ms, ZeRO-1 reduce-scatter + all-gather %.2f ms (median of %d)\n",
               dist_world(), n, n * 4.0 / 1e6, 1e3 * t[0][iters / 2], 1e3 * t[1][iters / 2], iters);
    free(p); free(g);
    dist_finalize();
    return 0;
}
