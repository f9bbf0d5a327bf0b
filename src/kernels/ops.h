/* ops.h — the table of tensor ops the GPT is built from.
 *
 * Two implementations share this contract:
 *   "ref"  (cpu_ref.c)  plain loops, one thread, the oracle every other version is checked against;
 *   "fast" (cpu_fast.c) OpenBLAS sgemm for the matmuls, OpenMP for the rest, fused kernels
 *                       (attention with its softmax, softmax + cross-entropy).
 * The model code (src/model/gpt.c) only calls through an ops_table, so the same
 * model runs on either and the tests compare them op by op and end to end.
 *
 * Shapes use one vocabulary (llm.c style):
 *   B batch, T time (sequence length), C channels, NH heads (hs = C/NH),
 *   L layers, V vocabulary, N = B*T rows, OC output channels.
 * All tensors are float32, row-major, contiguous.
 *
 * Conventions:
 * - Every *_backward ACCUMULATES (+=) into its gradient outputs; callers zero
 *   them first. This is what makes residual streams, the tied LM head/token
 *   embedding and gradient accumulation work without extra copies.
 * - Pointers never alias unless a comment says they may.
 * - No op allocates memory; scratch space is passed in.
 */
#ifndef RL_OPS_H
#define RL_OPS_H
#include <stddef.h>
#include <stdint.h>

typedef struct ops_table {
    const char *name; /* "ref" or "fast" */

    /* out(B,T,C) = wte[inp[b,t]] + wpe[t].   inp (B,T) token ids in [0,V); wte (V,C); wpe (maxT,C). */
    void (*encoder_forward)(float *out, const int *inp, const float *wte, const float *wpe, int B, int T, int C);
    /* dwte (V,C) += scatter of dout; dwpe (maxT,C) += sum over b of dout.   dout (B,T,C). */
    void (*encoder_backward)(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T, int C);

    /* LayerNorm over the last dim (eps 1e-5, biased variance, as PyTorch).
     * out (N,C); mean, rstd (N) saved for backward; inp (N,C); w, b (C). */
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C);
    /* dinp (N,C), dw, db (C) += ...;   dout (N,C); inp (N,C); w (C); mean, rstd (N). */
    void (*layernorm_backward)(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C);

    /* out (N,OC) = inp (N,C) @ w(OC,C)^T + bias (OC, may be NULL). */
    void (*matmul_forward)(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
    /* dinp (N,C) += dout @ w;  dw (OC,C) += dout^T @ inp;  dbias (OC) += column sums of dout.
     * dinp or dbias may be NULL (not needed). dout (N,OC). */
    void (*matmul_backward)(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                            int N, int C, int OC);

    /* Causal multi-head self-attention core (the projections are matmuls).
     * qkv (B,T,3C): per position [q (C) | k (C) | v (C)], head h uses channels h*hs..(h+1)*hs.
     * out (B,T,C) = softmax(q k^T / sqrt(hs), causal) v;  att (B,NH,T,T) saves the softmax
     * (entries with t2 > t are 0) for the backward. */
    void (*attention_forward)(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
    /* dqkv (B,T,3C) += ...;  datt (B,NH,T,T) is scratch (overwritten, not accumulated);
     * dout (B,T,C); qkv, att from the forward. */
    void (*attention_backward)(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH);

    /* GELU, tanh approximation (PyTorch approximate='tanh').  out, inp (n). */
    void (*gelu_forward)(float *out, const float *inp, int n);
    /* dinp (n) += gelu'(inp) * dout. */
    void (*gelu_backward)(float *dinp, const float *inp, const float *dout, int n);

    /* out (n) = a + b (out may alias a or b). */
    void (*residual_forward)(float *out, const float *a, const float *b, int n);
    /* da (n) += dout; db (n) += dout. */
    void (*residual_backward)(float *da, float *db, const float *dout, int n);

    /* Row-wise log-softmax statistics + log-probabilities of targets, fused.
     * logits (N,V); lse (N) = log sum_v exp(logits[n,v]);  logp (N) = logits[n, targets[n]] - lse[n]
     * for targets[n] >= 0, 0 where targets[n] < 0 (ignored position). targets may be NULL
     * (then only lse is written and logp is untouched). */
    void (*logsoftmax_forward)(float *lse, float *logp, const float *logits, const int *targets, int N, int V);
    /* Backward of the per-position log-probability of the target. The one op that
     * WRITES instead of accumulating (so it can work in place):
     * dlogits (N,V) = dlogp[n] * (onehot(targets[n]) - softmax(logits[n]))  for targets[n] >= 0,
     * rows with targets[n] < 0 are set to 0. dlogits may alias logits (each element is read
     * before it is written), which lets the model reuse the logits buffer for its gradient.
     * Cross-entropy is the special case dlogp = -weight/sum(weight). */
    void (*logsoftmax_backward)(float *dlogits, const float *logits, const float *lse, const int *targets,
                                const float *dlogp, int N, int V);

    /* Decoding with half-precision weights (memory-bound: half the bytes per token).
     * out (N,OC) = inp (N,C) @ w(OC,C)^T + bias (OC, may be NULL); w holds IEEE
     * binary16 values, products and sums in float32. */
    void (*matmul_forward_h)(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC);

    /* The fused half-precision decoding step (gpt_cache_step with gpt_decode_half on)
     * runs all layers inside one parallel region and splits each matmul's output
     * channels across its threads itself, so these two run on the calling thread.
     *
     * One block [lo, hi) of output channels of a half-weight matmul, with its epilogue:
     * for n < N, o in [lo, hi):  y = inp[n,:] . w[o,:] + bias[o] (bias may be NULL), then
     *   mode OPS_MV_SET: out[n,o] = y;  OPS_MV_ADD: out[n,o] += y (the residual add);
     *   mode OPS_MV_GELU: out[n,o] = gelu(y) (as gelu_forward).
     * out (N,OC); inp (N,C); w (OC,C) binary16; float32 products and sums. */
    void (*matvec_h)(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC,
                     int lo, int hi, int mode);
    /* The same with int8 weights AND int8 inputs (gpt_decode_int8), both in blocks
     * of OPS_Q8_BLOCK along C (C must be a multiple of it), as ops_quantize_q8
     * makes them: xq (N,C) int8 with scales xs (N, C/OPS_Q8_BLOCK); w (OC,C) int8
     * with scales ws (OC, C/OPS_Q8_BLOCK). y = sum over blocks k of
     * (integer dot of block k) * ws[o,k] * xs[n,k], + bias. */
    void (*matvec_q8)(float *out, const int8_t *xq, const float *xs, const int8_t *w, const float *ws, const float *bias,
                      int N, int C, int OC, int lo, int hi, int mode);
    /* Attention of one query over a KV cache (one row, one head):
     * out (hs) = sum_t softmax_t(scale * q.k_t) v_t over t = 0..n-1; q (hs);
     * k_t = k + t*ld, v_t = v + t*ld (hs floats each). */
    void (*attention_decode)(float *out, const float *q, const float *k, const float *v, int n, int ld, int hs, float scale);
    /* Row-independent ("exact") forward: each output row is a function of its
     * own input row alone, bitwise, whatever N, the row's place in the call and
     * the thread count. The model uses these in exact mode (gpt_set_exact) for
     * both the training forward and the KV-cache decode step, so the sampler's
     * log-probs equal the training forward's bitwise (PPO's logp_diff is 0).
     * Same shapes and results (to float rounding) as matmul_forward and
     * attention_forward; the fast versions cost a little more.
     * The rows of the exact matmul are positions: row n is position n % T (T > 0,
     * the training forward's (B,T) rows) or `pos` (T == 0, a decode step);
     * the fast version is cheapest with T a multiple of ops_exact_tile(). */
    void (*matmul_forward_exact)(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                                 int T, int pos);
    void (*attention_forward_exact)(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
    /* One decode position: out (B,C) = attention of query row b (qkv (B,3C), q part)
     * over the cached keys/values kc, vc (B, maxT, C) at positions 0..pos;
     * att (B, NH, pos+1) scratch. Bitwise equal to row pos of attention_forward_exact
     * on the same q, k, v. */
    void (*attention_step)(float *out, float *att, const float *qkv, const float *kc, const float *vc, int B, int pos,
                           int maxT, int C, int NH);
} ops_table;

enum { OPS_MV_SET = 0, OPS_MV_ADD = 1, OPS_MV_GELU = 2 };
#define OPS_Q8_BLOCK 32

/* IEEE binary16 <-> float32 (round to nearest even; inf/NaN kept; overflow -> inf). */
uint16_t ops_f32_to_f16(float f);
float ops_f16_to_f32(uint16_t h);
/* Converts n floats to halves (vectorised where the CPU has F16C). */
void ops_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
/* Symmetric int8 quantisation in blocks of OPS_Q8_BLOCK (n a multiple of it):
 * scale[k] = max |src| of block k / 127, q = round(src / scale) in [-127, 127]
 * (all 0 with scale 0 for an all-zero block). Relative error per weight <= 1/254
 * of its block's largest magnitude. */
void ops_quantize_q8(int8_t *q, float *scale, const float *src, size_t n);

/* Row tile of the fast exact matmul (the BLAS sgemm kernel's, measured once;
 * 12 on OpenBLAS's Haswell/Zen kernels; 1 when any T is as good). A training
 * forward whose T is a multiple of it needs no gather in exact mode. */
int ops_exact_tile(void);

/* "ref" or "fast"; NULL for an unknown name. The tables are static: never freed. */
const ops_table *ops_get(const char *name);

/* Threads the fast kernels use (OpenMP and OpenBLAS kept equal so they never
 * oversubscribe the cores). n <= 0 means "all cores" (or OMP_NUM_THREADS). */
void ops_set_threads(int n);
int ops_threads(void);

/* Name of the BLAS core OpenBLAS picked ("Zen", "Haswell", "SkylakeX", ...;
 * "none" without OpenBLAS). See cpu_fast.c for the Intel re-exec fix. */
const char *ops_blas_core(void);

#endif
