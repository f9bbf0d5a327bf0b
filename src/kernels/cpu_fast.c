/* cpu_fast.c — fast CPU ops: OpenBLAS sgemm for every matmul (attention's two
 * batched products included), OpenMP across rows / heads for the rest, and
 * fused kernels where they save passes over memory:
 *   - attention: scores, causal softmax and the weighted sum per (b, h) with
 *     sgemm on strided views of qkv (no transposed copies);
 *   - log-softmax + target log-prob in one pass (online max/sum), and its
 *     backward writing the gradient in place over the logits.
 *
 * Threads: one pool only. OpenBLAS runs single-threaded and each OpenMP thread
 * calls sgemm on its own block of rows, so the BLAS threads never compete with
 * (spinning) OpenMP threads for the 2 cores. Results depend on the thread
 * count only through block boundaries of row splits, which do not change the
 * summation order of any output element: runs are reproducible.
 *
 * exp() is a vectorisable polynomial (rel. error ~2e-7, see fast_expf) because
 * libm's expf does not vectorise here and softmax over V dominates otherwise.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef RL_HAVE_OPENBLAS
#include <cblas.h>
#endif
#include "ops.h"
#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define RL_F16C 1
#endif

const ops_table *ops_ref_table(void);

static int g_threads = 1;
static int g_threads_set; /* ops_set_threads was called (explicitly or by the first ops_get) */

#ifndef _OPENMP
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif

/* ---- BLAS ------------------------------------------------------------------ */

#ifdef RL_HAVE_OPENBLAS
#define GEMM(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, Cm, ldc) \
    cblas_sgemm(CblasRowMajor, (ta) ? CblasTrans : CblasNoTrans, (tb) ? CblasTrans : CblasNoTrans, \
                (M), (N), (K), (alpha), (A), (lda), (Bm), (ldb), (beta), (Cm), (ldc))
#else
/* Portable fallback: C(M,N) = alpha op(A) op(B) + beta C, row-major. */
static void gemm_fallback(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *Bm, int ldb, float beta, float *Cm, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int k = 0; k < K; k++)
                s += (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? Bm[(size_t)j * ldb + k] : Bm[(size_t)k * ldb + j]);
            Cm[(size_t)i * ldc + j] = alpha * s + (beta == 0.0f ? 0.0f : beta * Cm[(size_t)i * ldc + j]);
        }
}
#define GEMM(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, Cm, ldc) \
    gemm_fallback((ta), (tb), (M), (N), (K), (alpha), (A), (lda), (Bm), (ldb), (beta), (Cm), (ldc))
#endif

/* Below this many elements a pointwise/row op runs on the calling thread: a
 * parallel region costs a thread wake-up (tens of microseconds with the
 * passive wait policy), more than the work. Decoding one token calls ~10 such
 * ops per layer on vectors of C or 4C floats. */
#define PAR_MIN 32768

/* [lo, hi) of n items for thread `i` of `nt` (contiguous, near-equal blocks). */
static inline void split_range(int n, int i, int nt, int *lo, int *hi) {
    int q = n / nt, r = n % nt;
    *lo = i * q + (i < r ? i : r);
    *hi = *lo + q + (i < r ? 1 : 0);
}

/* ---- vectorisable exp ------------------------------------------------------ */

/* e^x = 2^n e^r with n = round(x / ln2), |r| <= ln2/2, e^r by its degree-7 Taylor
 * polynomial (truncation error < 6e-9 relative) — branch-free, so `omp simd`
 * loops vectorise it. Inputs are clamped to [-87, 88] (result >= 1.6e-38, no
 * denormals or inf), which is harmless for softmax and tanh. */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t u; float f; } s;
    s.u = (uint32_t)((int32_t)n + 127) << 23;
    return p * s.f;
}

/* ---- encoder --------------------------------------------------------------- */

static void encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B, int T, int C) {
    int N = B * T;
#pragma omp parallel for schedule(static) if((size_t)N * C >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *e = wte + (size_t)inp[n] * C, *p = wpe + (size_t)(n % T) * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
}

/* Tokens repeat, so rows of dwte collide: each thread owns a slice of channels
 * instead of a slice of positions. */
static void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T, int C) {
    int N = B * T;
#pragma omp parallel if((size_t)N * C >= PAR_MIN)
    {
        int lo, hi;
        split_range(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C;
            float *de = dwte + (size_t)inp[n] * C, *dp = dwpe + (size_t)(n % T) * C;
            for (int c = lo; c < hi; c++) { de[c] += d[c]; dp[c] += d[c]; }
        }
    }
}

/* ---- layernorm ------------------------------------------------------------- */

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C) {
#pragma omp parallel for schedule(static) if((size_t)N * C >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0, v = 0;
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        float s = 1.0f / sqrtf(v + 1e-5f);
        float *o = out + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

#define LN_MAXC 8192
#define LN_MAXTHREADS 64
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C) {
    if (C > LN_MAXC || g_threads > LN_MAXTHREADS) { ops_ref_table()->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C); return; }
    float *parts_w[LN_MAXTHREADS], *parts_b[LN_MAXTHREADS];
#pragma omp parallel if((size_t)N * C >= PAR_MIN)
    {
        /* per-thread partial sums of dw, db (no allocation: C <= LN_MAXC) */
        float pdw[LN_MAXC], pdb[LN_MAXC];
        memset(pdw, 0, sizeof(float) * C);
        memset(pdb, 0, sizeof(float) * C);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], s = rstd[n], gm = 0, gxm = 0;
#pragma omp simd reduction(+ : gm, gxm)
            for (int c = 0; c < C; c++) {
                float xh = (x[c] - m) * s, g = d[c] * w[c];
                gm += g;
                gxm += g * xh;
                pdw[c] += d[c] * xh;
                pdb[c] += d[c];
            }
            gm /= C;
            gxm /= C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xh = (x[c] - m) * s;
                dx[c] += s * (d[c] * w[c] - gm - xh * gxm);
            }
        }
        /* combine the partials in thread order (not arrival order), so the
         * result is the same on every run */
        parts_w[omp_get_thread_num()] = pdw;
        parts_b[omp_get_thread_num()] = pdb;
#pragma omp barrier
        int nt = omp_get_num_threads();
#pragma omp for schedule(static)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < nt; t++) { dw[c] += parts_w[t][c]; db[c] += parts_b[t][c]; }
    }
}

/* ---- matmul ---------------------------------------------------------------- */

/* Few rows (decoding: one row per sequence): sgemm re-packs all of w on every
 * call, which costs as much as the product itself below ~8 rows (measured:
 * sgemm at 2.5 GFLOP/s for 2 rows vs sgemv at 7-9 for one). So one sgemv per
 * row, each thread taking a block of output channels. Memory-bound, as
 * decoding is. */
#define MM_SMALL_N 8
static void matmul_forward_small(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
#pragma omp parallel
    {
        int lo, hi;
        split_range(OC, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int n = 0; n < N && hi > lo; n++) {
            float *o = out + (size_t)n * OC + lo;
            if (bias) memcpy(o, bias + lo, sizeof(float) * (hi - lo)); else memset(o, 0, sizeof(float) * (hi - lo));
#ifdef RL_HAVE_OPENBLAS
            cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, C, 1.0f, w + (size_t)lo * C, C, inp + (size_t)n * C, 1, 1.0f, o, 1);
#else
            GEMM(0, 1, 1, hi - lo, C, 1.0f, inp + (size_t)n * C, C, w + (size_t)lo * C, C, 1.0f, o, OC);
#endif
        }
    }
}

static void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (N < MM_SMALL_N) { matmul_forward_small(out, inp, w, bias, N, C, OC); return; }
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num(), lo, hi;
        if (N >= 4 * nt) { /* split rows of the batch */
            split_range(N, it, nt, &lo, &hi);
            if (hi > lo) {
                for (int n = lo; n < hi; n++) {
                    float *o = out + (size_t)n * OC;
                    if (bias) memcpy(o, bias, sizeof(float) * OC); else memset(o, 0, sizeof(float) * OC);
                }
                GEMM(0, 1, hi - lo, OC, C, 1.0f, inp + (size_t)lo * C, C, w, C, 1.0f, out + (size_t)lo * OC, OC);
            }
        } else { /* few rows (decoding): split output channels */
            split_range(OC, it, nt, &lo, &hi);
            if (hi > lo) {
                for (int n = 0; n < N; n++) {
                    float *o = out + (size_t)n * OC + lo;
                    if (bias) memcpy(o, bias + lo, sizeof(float) * (hi - lo)); else memset(o, 0, sizeof(float) * (hi - lo));
                }
                GEMM(0, 1, N, hi - lo, C, 1.0f, inp, C, w + (size_t)lo * C, C, 1.0f, out + lo, OC);
            }
        }
    }
}

static void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                            int N, int C, int OC) {
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num(), lo, hi;
        if (dinp) {
            split_range(N, it, nt, &lo, &hi);
            if (hi > lo) GEMM(0, 0, hi - lo, C, OC, 1.0f, dout + (size_t)lo * OC, OC, w, C, 1.0f, dinp + (size_t)lo * C, C);
        }
        split_range(OC, it, nt, &lo, &hi);
        if (hi > lo) {
            GEMM(1, 0, hi - lo, C, N, 1.0f, dout + lo, OC, inp, C, 1.0f, dw + (size_t)lo * C, C);
            if (dbias)
                for (int n = 0; n < N; n++) {
                    const float *d = dout + (size_t)n * OC;
#pragma omp simd
                    for (int o = lo; o < hi; o++) dbias[o] += d[o];
                }
        }
    }
}

/* ---- attention ------------------------------------------------------------- */

/* Per (b, h): S = scale Q K^T by sgemm on strided views of qkv, causal softmax
 * row by row (entries t2 > t set to 0), then O = A V. Rows go in blocks of
 * ATT_BLOCK: a block of rows only needs the keys up to its last row, so the
 * products skip most of the masked upper triangle (with 64-row blocks at
 * T=256, 62.5% of the square is computed instead of 100%; causal needs 50%). */
#define ATT_BLOCK 64
static void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *a = att + ((size_t)b * NH + h) * T * T;
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nr = r1 - r0; /* rows [r0,r1), keys [0,r1) */
                GEMM(0, 1, nr, r1, hs, scale, q + (size_t)r0 * C3, C3, k, C3, 0.0f, a + (size_t)r0 * T, T);
                for (int t = r0; t < r1; t++) {
                    float *r = a + (size_t)t * T, mx = -INFINITY, sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) mx = r[t2] > mx ? r[t2] : mx;
#pragma omp simd reduction(+ : sum)
                    for (int t2 = 0; t2 <= t; t2++) { r[t2] = fast_expf(r[t2] - mx); sum += r[t2]; }
                    float inv = 1.0f / sum;
#pragma omp simd
                    for (int t2 = 0; t2 <= t; t2++) r[t2] *= inv;
                    for (int t2 = t + 1; t2 < T; t2++) r[t2] = 0.0f;
                }
                GEMM(0, 0, nr, hs, r1, 1.0f, a + (size_t)r0 * T, T, v, C3, 0.0f, out + ((size_t)b * T + r0) * C + h * hs, C);
            }
        }
}

static void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + (size_t)b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + ((size_t)b * NH + h) * T * T;
            float *da = datt + ((size_t)b * NH + h) * T * T;
            const float *d = dout + (size_t)b * T * C + h * hs;
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nr = r1 - r0;
                const float *ab = a + (size_t)r0 * T, *db = d + (size_t)r0 * C;
                float *dab = da + (size_t)r0 * T;
                GEMM(0, 1, nr, r1, hs, 1.0f, db, C, v, C3, 0.0f, dab, T);  /* dA = dO V^T */
                GEMM(1, 0, r1, hs, nr, 1.0f, ab, T, db, C, 1.0f, dv, C3);  /* dV += A^T dO */
                for (int t = r0; t < r1; t++) {                             /* dS = scale A (dA - rowdot) */
                    const float *ar = a + (size_t)t * T;
                    float *dr = da + (size_t)t * T, dot = 0;
#pragma omp simd reduction(+ : dot)
                    for (int t2 = 0; t2 <= t; t2++) dot += ar[t2] * dr[t2];
#pragma omp simd
                    for (int t2 = 0; t2 <= t; t2++) dr[t2] = scale * ar[t2] * (dr[t2] - dot);
                    for (int t2 = t + 1; t2 < r1; t2++) dr[t2] = 0.0f;
                }
                GEMM(0, 0, nr, hs, r1, 1.0f, dab, T, k, C3, 1.0f, dq + (size_t)r0 * C3, C3); /* dQ += dS K */
                GEMM(1, 0, r1, hs, nr, 1.0f, dab, T, q + (size_t)r0 * C3, C3, 1.0f, dk, C3); /* dK += dS^T Q */
            }
        }
}

/* ---- row-independent ("exact") forward kernels ------------------------------ */

/* PPO compares the log-probs the sampler recorded with the training forward's,
 * so the decode step (a few rows at one position) and the training forward
 * (B*T rows) must do the same arithmetic for each row. sgemm does not promise
 * that. Measured on OpenBLAS 0.3.21's Haswell/Zen sgemm: C is computed in
 * tiles of u = 12 rows; a call's last, partial tile goes through other kernels
 * (another summation order: ~40% of the outputs of a 1-row call differ from
 * the same row inside a 300-row call, by ~1e-7 relative); and inside a full
 * tile, slots 0-5 and 6-11 sum in two different orders. A row's bits depend
 * only on its slot in a full tile. So the exact matmul gives every row a slot
 * that is a function of its POSITION t: slot = t mod u. In a training
 * forward with T a multiple of u (ops_exact_tile; PPO does not pad to it: the
 * gather below costs less than the padded rows would) the rows are
 * already there (row n = b*T + t, threads split at whole tiles); otherwise,
 * and for the decode step (every row at position pos), rows are gathered into
 * tiles at a slot of their class (slots that sum alike; dummy zero rows
 * elsewhere: the decode step computes 2 rows per sequence on the Zen kernel)
 * and the outputs scattered back. u and the slot classes are measured once
 * (probe_tile), not assumed.
 * sgemm attention also depends on the number of keys in the call (column edge
 * kernels) and on the zero-padded keys of a block (the K loop is unrolled into
 * several sums), which the decode step cannot reproduce: the exact attention is
 * one plain-C row kernel shared by the training forward and the decode step. */

static int g_tile = -1;
static int g_slot_class[32]; /* slot -> the first slot that sums in the same order */
static pthread_once_t g_tile_once = PTHREAD_ONCE_INIT;

/* Smallest u in 1..32 such that a row at slot s of any whole tile of any
 * call (1 or 2 tiles, or inside a ~100-row call) gives the same bits (0 if
 * none: then the exact matmul uses plain loops). Deterministic data, bias
 * preloaded, beta 1: the shape of the real calls. */
static void probe_tile(void) {
    enum { K = 100, OC = 37, MAXR = 128 };
    static float A[MAXR * K], W[OC * K], bias[OC], big[MAXR * OC], small[2 * 32 * OC];
    uint32_t s = 12345;
    for (int i = 0; i < MAXR * K; i++) { s = s * 1664525u + 1013904223u; A[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    for (int i = 0; i < OC * K; i++) { s = s * 1664525u + 1013904223u; W[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    for (int i = 0; i < OC; i++) bias[i] = 0.01f * (float)i;
    g_tile = 0;
    for (int u = 1; u <= 32 && !g_tile; u++) {
        int Mb = u * ((96 + u - 1) / u), ok = 1;
        for (int n = 0; n < Mb; n++) memcpy(big + (size_t)n * OC, bias, sizeof bias);
        GEMM(0, 1, Mb, OC, K, 1.0f, A, K, W, K, 1.0f, big, OC);
        for (int m = u; m <= 2 * u && ok; m += u)
            for (int r0 = 0; r0 + m <= Mb && ok; r0 += m + u) {
                for (int n = 0; n < m; n++) memcpy(small + (size_t)n * OC, bias, sizeof bias);
                GEMM(0, 1, m, OC, K, 1.0f, A + (size_t)r0 * K, K, W, K, 1.0f, small, OC);
                ok = !memcmp(small, big + (size_t)r0 * OC, sizeof(float) * m * OC);
            }
        if (ok) g_tile = u;
    }
    /* slots that sum in the same order: one row at slot s of a one-tile call,
     * the other rows different each time, compared across slots */
    int u = g_tile;
    for (int sl = 0; sl < u; sl++) g_slot_class[sl] = sl;
    for (int sl = 1; sl < u; sl++) {
        for (int n = 0; n < u; n++) memcpy(big + (size_t)n * OC, bias, sizeof bias);
        memcpy(A + (size_t)(MAXR - u) * K, A, sizeof(float) * K); /* the test row, at slot sl of the tile at MAXR-u-sl */
        float *tile = A + (size_t)(MAXR - u - sl) * K;
        memcpy(tile + (size_t)sl * K, A, sizeof(float) * K);
        GEMM(0, 1, u, OC, K, 1.0f, tile, K, W, K, 1.0f, big, OC);
        memcpy(small + (size_t)sl * OC, big + (size_t)sl * OC, sizeof(float) * OC);
        if (sl == 1) { /* slot 0 too */
            for (int n = 0; n < u; n++) memcpy(big + (size_t)n * OC, bias, sizeof bias);
            GEMM(0, 1, u, OC, K, 1.0f, A, K, W, K, 1.0f, big, OC);
            memcpy(small, big, sizeof(float) * OC);
        }
        for (int s0 = 0; s0 < sl; s0++)
            if (g_slot_class[s0] == s0 && !memcmp(small + (size_t)s0 * OC, small + (size_t)sl * OC, sizeof(float) * OC)) {
                g_slot_class[sl] = s0;
                break;
            }
    }
}

static int gemm_tile(void) {
    pthread_once(&g_tile_once, probe_tile);
    return g_tile;
}

int ops_exact_tile(void) {
    int u = gemm_tile();
    return u > 0 ? u : 1;
}

/* whole tiles [0, tiles) of inp/out (tiles*u rows), threads split at tile boundaries */
static void gemm_tiles(float *out, const float *inp, const float *w, const float *bias, int tiles, int u, int C, int OC) {
#pragma omp parallel
    {
        int lo, hi;
        split_range(tiles, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) {
            for (int n = lo * u; n < hi * u; n++) {
                float *o = out + (size_t)n * OC;
                if (bias) memcpy(o, bias, sizeof(float) * OC); else memset(o, 0, sizeof(float) * OC);
            }
            GEMM(0, 1, (hi - lo) * u, OC, C, 1.0f, inp + (size_t)lo * u * C, C, w, C, 1.0f, out + (size_t)lo * u * OC, OC);
        }
    }
}

/* scratch of the gathered path: grows, never shrinks (one caller at a time) */
static pthread_mutex_t g_pad_lock = PTHREAD_MUTEX_INITIALIZER;
static float *g_pad;
static size_t g_pad_cap;

static void matmul_forward_exact(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                                 int T, int pos) {
    int u = gemm_tile();
    if (u == 0) { ops_ref_table()->matmul_forward(out, inp, w, bias, N, C, OC); return; }
    if (T > 0 && T % u == 0) { gemm_tiles(out, inp, w, bias, N / u, u, C, OC); return; } /* N = B*T: whole tiles */
    /* gather: row n (position t = n % T, or pos) goes to the next free slot of
     * its class: the slots that sum like slot t % u (two classes of 6 on the
     * Zen kernel, so a decode step computes 2 rows per sequence, not 12) */
    int cnt[32] = {0}, nslot[32] = {0}, slots[32][32], tiles = 0;
    for (int sl = 0; sl < u; sl++) { int c = g_slot_class[sl]; slots[c][nslot[c]++] = sl; }
    for (int n = 0; n < N; n++) {
        int c = g_slot_class[(T > 0 ? n % T : pos) % u], need_t = cnt[c]++ / nslot[c] + 1;
        if (need_t > tiles) tiles = need_t;
    }
    pthread_mutex_lock(&g_pad_lock);
    size_t need = (size_t)tiles * u * ((size_t)C + OC);
    if (need > g_pad_cap) {
        free(g_pad);
        g_pad = malloc(need * sizeof(float));
        g_pad_cap = g_pad ? need : 0;
        if (!g_pad) { fprintf(stderr, "matmul_forward_exact: out of memory for %zu floats\n", need); abort(); }
    }
    float *gin = g_pad, *gout = g_pad + (size_t)tiles * u * C;
    memset(gin, 0, sizeof(float) * tiles * u * C);
#define SLOT_ROW(n) (c = g_slot_class[(T > 0 ? (n) % T : pos) % u], i = cnt[c]++, (i / nslot[c]) * u + slots[c][i % nslot[c]])
    int c, i;
    memset(cnt, 0, sizeof cnt);
    for (int n = 0; n < N; n++) memcpy(gin + (size_t)SLOT_ROW(n) * C, inp + (size_t)n * C, sizeof(float) * C);
    gemm_tiles(gout, gin, w, bias, tiles, u, C, OC);
    memset(cnt, 0, sizeof cnt);
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, gout + (size_t)SLOT_ROW(n) * OC, sizeof(float) * OC);
#undef SLOT_ROW
    pthread_mutex_unlock(&g_pad_lock);
}

/* One query row t of one head over keys 0..t: scores (a fixed 8-way split of
 * the dot product), softmax (sequential sum), weighted sum of the values (each
 * channel summed in key order). q, o (hs); the key/value of position t2 at
 * k + t2*ld, v + t2*ld; a (t+1) receives the softmax row. Not inlined: the
 * training forward and the decode step run this same machine code. */
__attribute__((noinline)) static void attn_row_exact(float *restrict o, float *restrict a, const float *restrict q,
                                                      const float *restrict k, const float *restrict v, size_t ld,
                                                      int t, int hs, float scale) {
    float mx = -INFINITY, sum = 0;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *kr = k + (size_t)t2 * ld;
        float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= hs; i += 8)
            for (int j = 0; j < 8; j++) p[j] += q[i + j] * kr[i + j];
        for (; i < hs; i++) p[0] += q[i] * kr[i];
        float s = (((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))) * scale;
        a[t2] = s;
        mx = s > mx ? s : mx;
    }
    for (int t2 = 0; t2 <= t; t2++) a[t2] = fast_expf(a[t2] - mx);
    for (int t2 = 0; t2 <= t; t2++) sum += a[t2];
    float inv = 1.0f / sum;
    for (int t2 = 0; t2 <= t; t2++) a[t2] *= inv;
    for (int i = 0; i < hs; i++) o[i] = 0.0f;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *vr = v + (size_t)t2 * ld;
        float at = a[t2];
        for (int i = 0; i < hs; i++) o[i] += at * vr[i];
    }
}

static void attention_forward_exact(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *base = qkv + (size_t)b * T * C3 + h * hs;
            for (int t = 0; t < T; t++) {
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                attn_row_exact(out + ((size_t)b * T + t) * C + h * hs, a, base + (size_t)t * C3, base + C, base + 2 * C,
                               C3, t, hs, scale);
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
            }
        }
}

static void attention_step(float *out, float *att, const float *qkv, const float *kc, const float *vc, int B, int pos,
                           int maxT, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static) if((size_t)B * C * (pos + 1) >= PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            attn_row_exact(out + (size_t)b * C + h * hs, att + ((size_t)b * NH + h) * (pos + 1),
                           qkv + (size_t)b * 3 * C + h * hs, kc + (size_t)b * maxT * C + h * hs,
                           vc + (size_t)b * maxT * C + h * hs, C, pos, hs, scale);
}

/* ---- pointwise ------------------------------------------------------------- */

#define GELU_K 0.7978845608028654f
/* tanh(u) = 1 - 2 / (1 + e^{2u}), with the vectorisable exp. */
static inline float fast_tanhf(float u) { return 1.0f - 2.0f / (1.0f + fast_expf(2.0f * u)); }

static void gelu_forward(float *out, const float *inp, int n) {
#pragma omp parallel for simd schedule(static) if(n >= PAR_MIN)
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, int n) {
#pragma omp parallel for simd schedule(static) if(n >= PAR_MIN)
    for (int i = 0; i < n; i++) {
        float x = inp[i], th = fast_tanhf(GELU_K * (x + 0.044715f * x * x * x));
        float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du) * dout[i];
    }
}

static void residual_forward(float *out, const float *a, const float *b, int n) {
#pragma omp parallel for simd schedule(static) if(n >= PAR_MIN)
    for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void residual_backward(float *da, float *db, const float *dout, int n) {
#pragma omp parallel for simd schedule(static) if(n >= PAR_MIN)
    for (int i = 0; i < n; i++) { da[i] += dout[i]; db[i] += dout[i]; }
}

/* ---- log-softmax + cross-entropy (fused) ----------------------------------- */

static void logsoftmax_forward(float *lse, float *logp, const float *logits, const int *targets, int N, int V) {
#pragma omp parallel for schedule(static) if((size_t)N * V >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
#pragma omp simd reduction(+ : s)
        for (int v = 0; v < V; v++) s += fast_expf(x[v] - mx);
        float l = mx + logf(s);
        lse[n] = l;
        if (targets) logp[n] = targets[n] >= 0 ? x[targets[n]] - l : 0.0f;
    }
}

static void logsoftmax_backward(float *dlogits, const float *logits, const float *lse, const int *targets,
                                const float *dlogp, int N, int V) {
#pragma omp parallel for schedule(static) if((size_t)N * V >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        int y = targets[n];
        if (y < 0) { memset(dx, 0, sizeof(float) * V); continue; }
        float g = dlogp[n], l = lse[n];
#pragma omp simd
        for (int v = 0; v < V; v++) dx[v] = -g * fast_expf(x[v] - l);
        dx[y] += g;
    }
}

/* ---- half-precision weights for decoding ----------------------------------- */

void ops_f32_to_f16_n(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
#ifdef RL_F16C
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) dst[i] = ops_f32_to_f16(src[i]);
}

/* One dot product of a float row with a half row. */
static inline float dot_h(const float *x, const uint16_t *w, int C) {
    int c = 0;
    float s = 0;
#ifdef RL_F16C
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; c + 16 <= C; c += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + c))), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + c + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + c + 8))), a1);
    }
    __m256 a = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    s = _mm_cvtss_f32(h);
#endif
    for (; c < C; c++) s += x[c] * ops_f16_to_f32(w[c]);
    return s;
}

/* Each row of w is read once for all N rows (it stays in L1 across n). */
static void matmul_forward_h(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
        const uint16_t *wr = w + (size_t)o * C;
        float b = bias ? bias[o] : 0.0f;
        for (int n = 0; n < N; n++) out[(size_t)n * OC + o] = dot_h(inp + (size_t)n * C, wr, C) + b;
    }
}

/* Epilogue of one output of matvec_h. */
static inline void mv_store(float *y, float s, int mode) {
    if (mode == OPS_MV_ADD) *y += s;
    else if (mode == OPS_MV_GELU) *y = 0.5f * s * (1.0f + fast_tanhf(GELU_K * (s + 0.044715f * s * s * s)));
    else *y = s;
}

#ifdef RL_F16C
/* Sum of each of four vectors: {sum a, sum b, sum c, sum d}. */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}
#endif

/* Batch-1 decoding is a stream over the weights, so this is written for
 * bandwidth: four weight rows at a time share each load of the input, with two
 * accumulators per row (eight independent FMA chains) and one horizontal sum per
 * four outputs. Four interleaved row streams defeat the hardware prefetcher
 * when the weights come from DRAM (measured: half the bandwidth of one row at a
 * time), so the loop prefetches the next block itself. */
static void matvec_h(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC,
                     int lo, int hi, int mode) {
    int o = lo;
#ifdef RL_F16C
    if (C % 16 == 0)
        for (; o + 4 <= hi; o += 4) {
            const uint16_t *w0 = w + (size_t)o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
                for (int c = 0; c < C; c += 16) {
                    __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
                    if (n == 0) { /* the next block of 4 rows (8C bytes), 128 bytes per step: one stream ahead */
                        _mm_prefetch((const char *)(w0 + 4 * (size_t)C + 4 * c), _MM_HINT_T0);
                        _mm_prefetch((const char *)(w0 + 4 * (size_t)C + 4 * c + 32), _MM_HINT_T0);
                    }
#define RL_MV_ROW(wr, acc0, acc1)                                                                              \
    acc0 = _mm256_fmadd_ps(x0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((wr) + c))), acc0);     \
    acc1 = _mm256_fmadd_ps(x1, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((wr) + c + 8))), acc1);
                    RL_MV_ROW(w0, a0, a1) RL_MV_ROW(w1, b0, b1) RL_MV_ROW(w2, c0, c1) RL_MV_ROW(w3, d0, d1)
#undef RL_MV_ROW
                }
                __m128 sum = hsum4(_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1), _mm256_add_ps(c0, c1), _mm256_add_ps(d0, d1));
                if (bias) sum = _mm_add_ps(sum, _mm_loadu_ps(bias + o));
                float r[4];
                _mm_storeu_ps(r, sum);
                float *y = out + (size_t)n * OC + o;
                for (int j = 0; j < 4; j++) mv_store(y + j, r[j], mode);
            }
        }
#endif
    for (; o < hi; o++)
        for (int n = 0; n < N; n++)
            mv_store(out + (size_t)n * OC + o, dot_h(inp + (size_t)n * C, w + (size_t)o * C, C) + (bias ? bias[o] : 0.0f), mode);
}

void ops_quantize_q8(int8_t *q, float *scale, const float *src, size_t n) {
    for (size_t k = 0; k < n / OPS_Q8_BLOCK; k++) {
        const float *x = src + k * OPS_Q8_BLOCK;
        int8_t *qk = q + k * OPS_Q8_BLOCK;
        float amax = 0;
#pragma omp simd reduction(max : amax)
        for (int i = 0; i < OPS_Q8_BLOCK; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        scale[k] = amax / 127.0f;
#pragma omp simd
        for (int i = 0; i < OPS_Q8_BLOCK; i++) {
            float v = nearbyintf(x[i] * inv); /* |v| <= 127 up to rounding of inv: clamp */
            qk[i] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
        }
    }
}

/* int8 x int8 in blocks of 32 (the AVX2 idiom: |x| (unsigned) times w with x's
 * sign, pairs summed to int16 by maddubs (at most 2*127*127, no overflow),
 * then to int32 by madd); each block's int32 sum (exact in float: < 2^24) is
 * scaled by ws*xs into a float accumulator. Four rows share each input block;
 * prefetch as in matvec_h. */
static void matvec_q8(float *out, const int8_t *xq, const float *xs, const int8_t *w, const float *ws, const float *bias,
                      int N, int C, int OC, int lo, int hi, int mode) {
    int o = lo, nb = C / OPS_Q8_BLOCK;
#ifdef RL_F16C
    const __m256i ones = _mm256_set1_epi16(1);
    for (; o + 4 <= hi; o += 4) {
        const int8_t *w0 = w + (size_t)o * C;
        const float *s0 = ws + (size_t)o * nb;
        for (int n = 0; n < N; n++) {
            const int8_t *x = xq + (size_t)n * C;
            const float *xsn = xs + (size_t)n * nb;
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int k = 0; k < nb; k++) {
                int c = k * OPS_Q8_BLOCK;
                if (n == 0) { /* next block of 4 rows: 4C bytes, 128 per step */
                    _mm_prefetch((const char *)(w0 + 4 * (size_t)C + 4 * c), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w0 + 4 * (size_t)C + 4 * c + 64), _MM_HINT_T0);
                }
                __m256i xb = _mm256_loadu_si256((const __m256i *)(x + c)), ax = _mm256_sign_epi8(xb, xb);
                for (int r = 0; r < 4; r++) {
                    __m256i wb = _mm256_loadu_si256((const __m256i *)(w0 + (size_t)r * C + c));
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(wb, xb)), ones);
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s0[(size_t)r * nb + k] * xsn[k]), acc[r]);
                }
            }
            __m128 sum = hsum4(acc[0], acc[1], acc[2], acc[3]);
            if (bias) sum = _mm_add_ps(sum, _mm_loadu_ps(bias + o));
            float r4[4];
            _mm_storeu_ps(r4, sum);
            float *y = out + (size_t)n * OC + o;
            for (int j = 0; j < 4; j++) mv_store(y + j, r4[j], mode);
        }
    }
#endif
    for (; o < hi; o++)
        for (int n = 0; n < N; n++) {
            const int8_t *x = xq + (size_t)n * C, *wr = w + (size_t)o * C;
            float s = 0;
            for (int k = 0; k < nb; k++) {
                int dot = 0;
                for (int c = k * OPS_Q8_BLOCK; c < (k + 1) * OPS_Q8_BLOCK; c++) dot += x[c] * wr[c];
                s += (float)dot * (ws[(size_t)o * nb + k] * xs[(size_t)n * nb + k]);
            }
            mv_store(out + (size_t)n * OC + o, s + (bias ? bias[o] : 0.0f), mode);
        }
}

/* Online softmax over the cached keys in chunks of 16: the chunk's scores
 * (four keys at a time, so four independent FMA chains instead of one long
 * one), one rescale of the running sum and output per chunk whose maximum
 * exceeds the running one, the chunk's exps in one vector loop, then the
 * weighted values four keys at a time. */
#define ATT_DEC_CHUNK 16
static void attention_decode(float *out, const float *q, const float *k, const float *v, int n, int ld, int hs, float scale) {
    float mx = -INFINITY, sum = 0, sc[ATT_DEC_CHUNK];
    for (int i = 0; i < hs; i++) out[i] = 0;
    for (int t0 = 0; t0 < n; t0 += ATT_DEC_CHUNK) {
        int nc = n - t0 < ATT_DEC_CHUNK ? n - t0 : ATT_DEC_CHUNK, j = 0;
        const float *kc = k + (size_t)t0 * ld, *vc = v + (size_t)t0 * ld;
#ifdef RL_F16C
        if (hs % 8 == 0)
            for (; j + 4 <= nc; j += 4) {
                const float *k0 = kc + (size_t)j * ld, *k1 = k0 + ld, *k2 = k1 + ld, *k3 = k2 + ld;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < hs; i += 8) {
                    __m256 qv = _mm256_loadu_ps(q + i);
                    a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
                    a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
                    a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
                    a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
                }
                _mm_storeu_ps(sc + j, _mm_mul_ps(hsum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
            }
#endif
        for (; j < nc; j++) {
            const float *kt = kc + (size_t)j * ld;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < hs; i++) dot += q[i] * kt[i];
            sc[j] = dot * scale;
        }
        float cmx = sc[0];
        for (j = 1; j < nc; j++) cmx = sc[j] > cmx ? sc[j] : cmx;
        if (cmx > mx) {
            float r = fast_expf(mx - cmx); /* 0 on the first chunk (mx = -inf clamps to e^-87, times 0) */
            sum *= r;
#pragma omp simd
            for (int i = 0; i < hs; i++) out[i] *= r;
            mx = cmx;
        }
        float cs = 0;
#pragma omp simd reduction(+ : cs)
        for (j = 0; j < nc; j++) { sc[j] = fast_expf(sc[j] - mx); cs += sc[j]; }
        sum += cs;
        j = 0;
        for (; j + 4 <= nc; j += 4) {
            const float *v0 = vc + (size_t)j * ld, *v1 = v0 + ld, *v2 = v1 + ld, *v3 = v2 + ld;
            float p0 = sc[j], p1 = sc[j + 1], p2 = sc[j + 2], p3 = sc[j + 3];
#pragma omp simd
            for (int i = 0; i < hs; i++) out[i] += p0 * v0[i] + p1 * v1[i] + p2 * v2[i] + p3 * v3[i];
        }
        for (; j < nc; j++) {
            const float *vt = vc + (size_t)j * ld;
            float p = sc[j];
#pragma omp simd
            for (int i = 0; i < hs; i++) out[i] += p * vt[i];
        }
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int i = 0; i < hs; i++) out[i] *= inv;
}

static const ops_table fast_table = {
    "fast",
    encoder_forward, encoder_backward,
    layernorm_forward, layernorm_backward,
    matmul_forward, matmul_backward,
    attention_forward, attention_backward,
    gelu_forward, gelu_backward,
    residual_forward, residual_backward,
    logsoftmax_forward, logsoftmax_backward,
    matmul_forward_h,
    matvec_h, matvec_q8, attention_decode,
    matmul_forward_exact, attention_forward_exact, attention_step,
};

/* ---- table lookup, threads, BLAS core -------------------------------------- */

void ops_set_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) {
        const char *e = getenv("OMP_NUM_THREADS");
        n = e && atoi(e) > 0 ? atoi(e) : omp_get_num_procs();
    }
    omp_set_num_threads(n);
#else
    n = 1;
#endif
#ifdef RL_HAVE_OPENBLAS
    openblas_set_num_threads(1); /* see the top comment: one pool only */
#endif
    g_threads = n;
    g_threads_set = 1;
}

int ops_threads(void) { return g_threads; }

const ops_table *ops_get(const char *name) {
    if (!g_threads_set) ops_set_threads(0);
    if (!name) return NULL;
    if (!strcmp(name, "ref")) return ops_ref_table();
    if (!strcmp(name, "fast")) return &fast_table;
    return NULL;
}

const char *ops_blas_core(void) {
#ifdef RL_HAVE_OPENBLAS
    return openblas_get_corename();
#else
    return "none";
#endif
}

/* Start-up environment fixes that only work before the libraries initialise
 * (they read their environment in their own constructors, before ours), so
 * the process sets the variables and re-executes itself once (same pid, same
 * argv; glibc passes argc/argv/envp to constructors of the main program):
 *
 * 1. OMP_WAIT_POLICY=passive. libgomp's default makes idle threads spin at
 *    every barrier; on a busy 2-core machine a spinning thread burns the time
 *    slice its partner needs. Measured here under load (~10 on 2 cores):
 *    batch-1 decoding 4 tok/s with spinning vs 51 passive (56 with 1 thread);
 *    tiny training 750 vs 1000 tok/s. Skipped if OMP_WAIT_POLICY or
 *    GOMP_SPINCOUNT is set (the user decides).
 * 2. OPENBLAS_CORETYPE. Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not
 *    recognise recent Intel CPUs and falls back to SSE3-era kernels
 *    (Prescott/Nehalem/Sandybridge), several times slower. On Intel with
 *    AVX-512 we ask for SkylakeX, with AVX2 for Haswell. AMD (Zen) is
 *    recognised and untouched. Skipped if OPENBLAS_CORETYPE is set.
 *
 * RLHF_NO_REEXEC=1 disables both. */
__attribute__((constructor)) static void startup_env_fix(int argc, char **argv, char **envp) {
    (void)argc; (void)envp;
    if (getenv("RLHF_NO_REEXEC") || getenv("RLHF_REEXECED") || !argv || !argv[0]) return;
    int need = 0;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) { setenv("OMP_WAIT_POLICY", "passive", 1); need = 1; }
    const char *want = NULL, *core = NULL;
#ifdef RL_HAVE_OPENBLAS
    __builtin_cpu_init();
    core = openblas_get_corename();
    if (!getenv("OPENBLAS_CORETYPE") && core && __builtin_cpu_is("intel")) {
        static const char *good512[] = {"skylakex", "cooperlake", "sapphirerapids"};
        static const char *good256[] = {"haswell", "skylakex", "cooperlake", "sapphirerapids", "zen"};
        if (__builtin_cpu_supports("avx512f")) {
            want = "SkylakeX";
            for (size_t i = 0; i < sizeof good512 / sizeof *good512; i++) if (!strcasecmp(core, good512[i])) want = NULL;
        } else if (__builtin_cpu_supports("avx2")) {
            want = "Haswell";
            for (size_t i = 0; i < sizeof good256 / sizeof *good256; i++) if (!strcasecmp(core, good256[i])) want = NULL;
        }
        if (want) { setenv("OPENBLAS_CORETYPE", want, 1); need = 1; }
    }
#endif
    if (!need) return;
    setenv("RLHF_REEXECED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on; the settings just do not apply to this process */
    if (want) fprintf(stderr, "warning: OpenBLAS picked the slow '%s' kernels; set OPENBLAS_CORETYPE=%s before running rlhf\n", core, want);
}
