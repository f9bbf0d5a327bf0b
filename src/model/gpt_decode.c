/* gpt_decode.c — the fused low-precision KV-cache step (gpt_cache_step_lowp, see gpt.h)
 * for half-precision and int8 weight snapshots, and the int8 snapshot itself.
 *
 * Why a separate step: decoding one token of `small` is ~12 M multiply-adds
 * spread over 6*4+1 matmuls plus ~40 small ops. Going through the ops table one
 * op at a time opens a parallel region per matmul, and with the passive wait
 * policy rlhf runs under (cpu_fast.c) every region is a futex wake-up of the
 * other thread: tens of microseconds each, about as long as the matmul itself.
 * Here the threads enter one region per step and meet at a barrier that spins
 * for a bounded time (a few microseconds is the usual wait when both threads
 * run) before it sleeps on a futex (when the machine is busy and the partner
 * was descheduled, so spinning would only steal its core).
 *
 * Phases of one layer (each thread t of nt; "|" is a barrier):
 *   ln_t = LN1(x)  ->  qkv[:, its 3C slice]                                  |
 *   for its (row, head) pairs: append k, v to the cache, attend -> atty     |
 *   x[:, its C slice] += atty @ Wproj^T + b                                  |
 *   ln_t = LN2(x)  ->  fchg[:, its 4C slice] = gelu(ln_t @ Wfc^T + b)         |
 *   x[:, its C slice] += fchg @ Wfcproj^T + b                                |
 * then ln_t = LNf(x) -> logits[:, its V slice]. Every thread computes the
 * LayerNorms itself into its own buffer (C floats per row: cheaper than a
 * barrier), and each output element is written by exactly one thread. */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#include "gpt.h"

/* ---- barrier: spin, then sleep --------------------------------------------- */

typedef struct {
    atomic_int count;    /* threads arrived in this generation */
    atomic_int gen;      /* bumped by the last thread to arrive */
    atomic_int sleepers; /* threads in futex_wait (the last arriver wakes them only if > 0) */
    int nt;
    long spin_ns;        /* the most a waiter spins before it sleeps */
} dec_barrier;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* the current spin budget in ns, shared by all decoders of the process (it
 * measures the machine, not the model) */
static atomic_long g_spin_ns = 50000;

static void barrier_wait(dec_barrier *b) {
    int g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == b->nt - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store(&b->gen, g + 1); /* seq_cst: ordered before the sleepers check below */
#ifdef __linux__
        if (atomic_load(&b->sleepers)) syscall(SYS_futex, (int *)&b->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
        return;
    }
    long t0 = 0, budget = atomic_load_explicit(&g_spin_ns, memory_order_relaxed);
    if (budget > b->spin_ns) budget = b->spin_ns;
    for (int i = 1; atomic_load_explicit(&b->gen, memory_order_acquire) == g; i++) {
        cpu_relax();
        if ((i & 63) == 0) {
            long t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > budget) break;
        }
    }
    /* adapt the budget: a wait that ended while spinning doubles it (up to the
     * maximum), one that had to sleep halves it. On a busy machine the partner
     * is often descheduled, spinning would only take its core, and the budget
     * falls to a few microseconds; on a quiet one it stays at the maximum. */
    int spun_ok = atomic_load_explicit(&b->gen, memory_order_acquire) != g;
    long nb = spun_ok ? budget * 2 : budget / 2;
    nb = nb < 1000 ? 1000 : nb;
    nb = nb > b->spin_ns ? b->spin_ns : nb;
    if (nb != budget) atomic_store_explicit(&g_spin_ns, nb, memory_order_relaxed);
    if (spun_ok) return;
#ifdef __linux__
    /* sleepers is raised before gen is re-read (both seq_cst), so either the
     * last arriver sees it and wakes us, or we see the new gen and return */
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->gen) == g) syscall(SYS_futex, (int *)&b->gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
    atomic_fetch_sub(&b->sleepers, 1);
#else
    while (atomic_load_explicit(&b->gen, memory_order_acquire) == g) cpu_relax();
#endif
}

/* [lo, hi) of n output channels for thread it of nt, in whole blocks of 4 (the
 * matvec kernel's row block), so which kernel path computes an output channel
 * does not depend on the thread count: results are the same for any nt. */
static void split4(int n, int it, int nt, int *lo, int *hi) {
    int nb = (n + 3) / 4, q = nb / nt, r = nb % nt;
    int b0 = it * q + (it < r ? it : r), b1 = b0 + q + (it < r ? 1 : 0);
    *lo = b0 * 4 < n ? b0 * 4 : n;
    *hi = b1 * 4 < n ? b1 * 4 : n;
}

/* The most a thread spins at a barrier before it sleeps (RLHF_DECODE_SPIN_US,
 * default 50 us: well above the usual skew between two running threads, well
 * below a scheduler time slice; 0 = always sleep). */
static long spin_ns(void) {
    const char *e = getenv("RLHF_DECODE_SPIN_US");
    long us = e && *e ? atol(e) : 50;
    return (us < 0 ? 0 : us > 100000 ? 100000 : us) * 1000L;
}

/* One snapshot weight, as a float. */
static inline float snap_get(const gpt_model *m, size_t i) {
    return m->half ? ops_f16_to_f32(m->half[i]) : m->q8[i] * m->q8_scale[i / OPS_Q8_BLOCK];
}

/* Output channels [lo, hi) of  out (N,OC) (mode) inp (N,C) @ W^T + bias, where W is
 * the snapshot of the fp32 weight matrix at wf. With int8 weights the input is
 * quantised the same way first (into the calling thread's xq (N,C), xs (N,C/32)),
 * so the products are integer dot products: each thread quantises the whole
 * input itself (N*C values, against its share of N*C*OC products). */
static void mv(const gpt_model *m, int8_t *xq, float *xs, float *out, const float *inp, const float *wf, const float *bias,
               int N, int C, int OC, int lo, int hi, int mode) {
    size_t off = (size_t)(wf - m->params);
    if (m->half) { m->ops->matvec_h(out, inp, m->half + off, bias, N, C, OC, lo, hi, mode); return; }
    ops_quantize_q8(xq, xs, inp, (size_t)N * C);
    m->ops->matvec_q8(out, xq, xs, m->q8 + off, m->q8_scale + off / OPS_Q8_BLOCK, bias, N, C, OC, lo, hi, mode);
}

rl_status gpt_decode_int8(gpt_model *m, int on) {
    if (!on) {
        free(m->q8); free(m->q8_scale);
        m->q8 = NULL; m->q8_scale = NULL;
        return RL_OK;
    }
    if (m->cfg.C % OPS_Q8_BLOCK)
        return rl_fail(RL_EUNSUPPORTED, "int8 decoding needs a width C that is a multiple of %d (this model: %d)", OPS_Q8_BLOCK, m->cfg.C);
    /* every tensor is a whole number of rows of C (or 4C) floats, so the blocks
     * of the flat array never straddle two rows; the last partial block (the
     * scalar head's bias) is never used for decoding and is left out */
    size_t n = m->num_params / OPS_Q8_BLOCK * OPS_Q8_BLOCK;
    if (!m->q8) m->q8 = malloc(n);
    if (!m->q8_scale) m->q8_scale = malloc(n / OPS_Q8_BLOCK * sizeof(float));
    if (!m->q8 || !m->q8_scale) { gpt_decode_int8(m, 0); return rl_fail(RL_ENOMEM, "cannot allocate the int8 weights"); }
    if (m->half) gpt_decode_half(m, 0);
    ops_quantize_q8(m->q8, m->q8_scale, m->params, n);
    return RL_OK;
}

void gpt_cache_step_lowp(gpt_model *m, const int *tokens, int B, int pos, float *logits) {
    CHECK(m->half || m->q8, "gpt_cache_step_lowp without gpt_decode_half or gpt_decode_int8");
    CHECK(m->kcache && B <= m->cache_B, "gpt_cache_step: plan the cache for %d sequences first", B);
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, V = m->cfg.V, maxT = m->cfg.maxT, hs = C / NH;
    CHECK(pos >= 0 && pos < maxT, "position %d outside the context [0,%d)", pos, maxT);
    const ops_table *op = m->ops;
    const gpt_tensors *w = &m->w;
    int nt = ops_threads() < 1 ? 1 : ops_threads();
    /* shared scratch (gpt_cache_plan's dec_mem): x (B,C) | qkv (B,3C) | atty (B,C) | fchg (B,4C) */
    float *x = m->dec_mem, *qkv = x + (size_t)B * C, *atty = qkv + (size_t)B * 3 * C, *fchg = atty + (size_t)B * C;
    /* per thread: ln (B,C) | mean (B) | rstd (B) | xs (B,4C/32) | xq (B,4C) int8 (in B*C floats) */
    size_t per = (size_t)B * C + 2 * (size_t)B + (size_t)B * 4 * C / OPS_Q8_BLOCK + (size_t)B * C, need = per * nt;
    if (m->dec_priv_n < need) {
        free(m->dec_priv);
        m->dec_priv = malloc(need * sizeof(float));
        CHECK(m->dec_priv, "out of memory for the decoding scratch (%zu floats)", need);
        m->dec_priv_n = need;
    }
    /* the snapshot sits at the same offsets as the fp32 parameters; every weight
     * matrix and the embeddings are read from it (the tied wte both ways),
     * LayerNorm parameters and biases from the fp32 ones */
    for (int b = 0; b < B; b++) {
        CHECK(tokens[b] >= 0 && tokens[b] < V, "token id %d outside [0,%d)", tokens[b], V);
        size_t e = (size_t)(w->wte - m->params) + (size_t)tokens[b] * C, p = (size_t)(w->wpe - m->params) + (size_t)pos * C;
        for (int c = 0; c < C; c++) x[(size_t)b * C + c] = snap_get(m, e + c) + snap_get(m, p + c);
    }
    float scale = 1.0f / sqrtf((float)hs);
    dec_barrier bar = {0, 0, 0, nt, spin_ns()};
    float *priv = m->dec_priv;
    size_t cstride = (size_t)m->cache_B * maxT * C;
#pragma omp parallel num_threads(nt) if(nt > 1)
    {
#ifdef _OPENMP
        int it = omp_get_thread_num();
        /* the runtime may give us fewer threads than asked (nested call, limits) */
        if (omp_get_num_threads() != nt) {
#pragma omp single
            bar.nt = omp_get_num_threads();
        }
        int nth = bar.nt;
#else
        int it = 0, nth = 1;
        bar.nt = 1;
#endif
        float *ln = priv + per * it, *mean = ln + (size_t)B * C, *rstd = mean + B, *xs = rstd + B;
        int8_t *xq = (int8_t *)(xs + (size_t)B * 4 * C / OPS_Q8_BLOCK);
        int lo3, hi3, lo1, hi1, lo4, hi4, lov, hiv, loa, hia;
        split4(3 * C, it, nth, &lo3, &hi3);
        split4(C, it, nth, &lo1, &hi1);
        split4(4 * C, it, nth, &lo4, &hi4);
        split4(V, it, nth, &lov, &hiv);
        {   /* (row, head) pairs: plain split, attention has no row blocks */
            int n = B * NH, q = n / nth, r = n % nth;
            loa = it * q + (it < r ? it : r);
            hia = loa + q + (it < r ? 1 : 0);
        }
        for (int l = 0; l < L; l++) {
            op->layernorm_forward(ln, mean, rstd, x, w->ln1w + l * C, w->ln1b + l * C, B, C);
            mv(m, xq, xs, qkv, ln, (w->qkvw + (size_t)l * 3 * C * C), w->qkvb + l * 3 * C, B, C, 3 * C, lo3, hi3, OPS_MV_SET);
            barrier_wait(&bar);
            float *kc = m->kcache + l * cstride, *vc = m->vcache + l * cstride;
            for (int i = loa; i < hia; i++) {
                int b = i / NH, h = i % NH;
                const float *q = qkv + (size_t)b * 3 * C + h * hs;
                float *k = kc + (size_t)b * maxT * C + h * hs, *v = vc + (size_t)b * maxT * C + h * hs;
                memcpy(k + (size_t)pos * C, q + C, hs * sizeof(float));
                memcpy(v + (size_t)pos * C, q + 2 * C, hs * sizeof(float));
                op->attention_decode(atty + (size_t)b * C + h * hs, q, k, v, pos + 1, C, hs, scale);
            }
            barrier_wait(&bar);
            mv(m, xq, xs, x, atty, (w->attprojw + (size_t)l * C * C), w->attprojb + l * C, B, C, C, lo1, hi1, OPS_MV_ADD);
            barrier_wait(&bar);
            op->layernorm_forward(ln, mean, rstd, x, w->ln2w + l * C, w->ln2b + l * C, B, C);
            mv(m, xq, xs, fchg, ln, (w->fcw + (size_t)l * 4 * C * C), w->fcb + l * 4 * C, B, C, 4 * C, lo4, hi4, OPS_MV_GELU);
            barrier_wait(&bar);
            mv(m, xq, xs, x, fchg, (w->fcprojw + (size_t)l * C * 4 * C), w->fcprojb + l * C, B, 4 * C, C, lo1, hi1, OPS_MV_ADD);
            barrier_wait(&bar);
        }
        op->layernorm_forward(ln, mean, rstd, x, w->lnfw, w->lnfb, B, C);
        mv(m, xq, xs, logits, ln, w->wte, NULL, B, C, V, lov, hiv, OPS_MV_SET);
    }
}
