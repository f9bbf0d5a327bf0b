/* dist_check — exercises src/dist under 1 or N processes and checks the
 * collectives against values every rank can compute alone. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include "../../src/dist/dist.h"

int main(int argc, char **argv) {
    CHECK_OK(dist_init(&argc, &argv), "dist_init");
    int r = dist_rank(), w = dist_world(), pass = 0, fail = 0;
#define T(c) do { if (c) pass++; else { fail++; fprintf(stderr, "rank %d: failed %s\n", r, #c); } } while (0)
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
    double counts[2] = {pass, fail};
    CHECK_OK(dist_allreduce_sum_f64(counts, 2), "counts");
    if (r == 0) printf("%d passed, %d failed\n", (int)counts[0], (int)counts[1]);
    dist_finalize();
    return counts[1] == 0 ? 0 : 1;
}
