/* cpu_ref.c — plain-loop reference ops: one thread, no tricks, sums in double.
 * This is the oracle: the fast ops and PyTorch are compared against it. Read
 * ops.h for the shapes and the accumulate (+=) convention. */
#include <math.h>
#include <string.h>
#include "ops.h"

static void encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *e = wte + (size_t)inp[b * T + t] * C, *p = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        }
}

static void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *de = dwte + (size_t)inp[b * T + t] * C, *dp = dwpe + (size_t)t * C;
            for (int c = 0; c < C; c++) { de[c] += d[c]; dp[c] += d[c]; }
        }
}

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        double s = 1.0 / sqrt(v + 1e-5);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (float)((x[c] - m) * s * w[c] + b[c]);
        mean[n] = (float)m;
        rstd[n] = (float)s;
    }
}

/* With xhat = (x - mean) * rstd and y = w * xhat + b:
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dout * w. */
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        double m = mean[n], s = rstd[n], gm = 0, gxm = 0;
        for (int c = 0; c < C; c++) {
            double xh = (x[c] - m) * s, g = (double)d[c] * w[c];
            gm += g;
            gxm += g * xh;
            dw[c] += (float)(d[c] * xh);
            db[c] += d[c];
        }
        gm /= C;
        gxm /= C;
        for (int c = 0; c < C; c++) {
            double xh = (x[c] - m) * s, g = (double)d[c] * w[c];
            dx[c] += (float)(s * (g - gm - xh * gxm));
        }
    }
}

static void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            const float *x = inp + (size_t)n * C, *wr = w + (size_t)o * C;
            for (int c = 0; c < C; c++) s += (double)x[c] * wr[c];
            out[(size_t)n * OC + o] = (float)s;
        }
}

static void matmul_forward_exact(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                                 int T, int pos) {
    (void)T; (void)pos;
    matmul_forward(out, inp, w, bias, N, C, OC);
}

static void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                            int N, int C, int OC) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
                dinp[(size_t)n * C + c] += (float)s;
            }
    for (int o = 0; o < OC; o++) {
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
            dw[(size_t)o * C + c] += (float)s;
        }
        if (dbias) {
            double s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += (float)s;
        }
    }
}

/* One query row t of one head: q, o (hs); key/value of position t2 at k + t2*ld,
 * v + t2*ld; a (t+1) receives the softmax row. Shared by the training forward
 * and the decode step (attention_step), so both give the same bits. */
static void attn_row(float *o, float *a, const float *q, const float *k, const float *v, size_t ld, int t, int hs,
                     double scale) {
    double mx = -INFINITY;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *kr = k + (size_t)t2 * ld;
        double s = 0;
        for (int i = 0; i < hs; i++) s += (double)q[i] * kr[i];
        s *= scale;
        a[t2] = (float)s;
        if (s > mx) mx = s;
    }
    double sum = 0;
    for (int t2 = 0; t2 <= t; t2++) sum += exp(a[t2] - mx);
    for (int t2 = 0; t2 <= t; t2++) a[t2] = (float)(exp(a[t2] - mx) / sum);
    for (int i = 0; i < hs; i++) {
        double s = 0;
        for (int t2 = 0; t2 <= t; t2++) s += (double)a[t2] * v[(size_t)t2 * ld + i];
        o[i] = (float)s;
    }
}

static void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *base = qkv + (size_t)b * T * 3 * C + h * hs;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                attn_row(out + ((size_t)b * T + t) * C + h * hs, a, base + (size_t)t * 3 * C, base + C, base + 2 * C,
                         3 * (size_t)C, t, hs, scale);
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
            }
}

static void attention_step(float *out, float *att, const float *qkv, const float *kc, const float *vc, int B, int pos,
                           int maxT, int C, int NH) {
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            attn_row(out + (size_t)b * C + h * hs, att + ((size_t)b * NH + h) * (pos + 1), qkv + (size_t)b * 3 * C + h * hs,
                     kc + (size_t)b * maxT * C + h * hs, vc + (size_t)b * maxT * C + h * hs, C, pos, hs, scale);
}

static void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH) {
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float *da = datt + (((size_t)b * NH + h) * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * C + h * hs;
                /* out = sum_t2 a[t2] v[t2]: da[t2] = d . v[t2], dv[t2] += a[t2] d */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                    float *dv = dqkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                    double s = 0;
                    for (int i = 0; i < hs; i++) { s += (double)d[i] * v[i]; dv[i] += a[t2] * d[i]; }
                    da[t2] = (float)s;
                }
                /* softmax backward: dpre[t2] = a[t2] (da[t2] - sum_j a[j] da[j]) */
                double dot = 0;
                for (int t2 = 0; t2 <= t; t2++) dot += (double)a[t2] * da[t2];
                const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                float *dq = dqkv + ((size_t)b * T + t) * 3 * C + h * hs;
                for (int t2 = 0; t2 <= t; t2++) {
                    double dpre = a[t2] * (da[t2] - dot) * scale;
                    const float *k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    float *dk = dqkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    for (int i = 0; i < hs; i++) { dq[i] += (float)(dpre * k[i]); dk[i] += (float)(dpre * q[i]); }
                }
            }
}

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
static void gelu_forward(float *out, const float *inp, int n) {
    for (int i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + tanh(GELU_K * (x + 0.044715 * x * x * x))));
    }
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, int n) {
    for (int i = 0; i < n; i++) {
        double x = inp[i], u = GELU_K * (x + 0.044715 * x * x * x), th = tanh(u);
        double du = GELU_K * (1.0 + 3.0 * 0.044715 * x * x);
        double g = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
        dinp[i] += (float)(g * dout[i]);
    }
}

static void residual_forward(float *out, const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void residual_backward(float *da, float *db, const float *dout, int n) {
    for (int i = 0; i < n; i++) { da[i] += dout[i]; db[i] += dout[i]; }
}

static void logsoftmax_forward(float *lse, float *logp, const float *logits, const int *targets, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) if (x[v] > mx) mx = x[v];
        for (int v = 0; v < V; v++) s += exp(x[v] - mx);
        double l = mx + log(s);
        lse[n] = (float)l;
        if (targets) logp[n] = targets[n] >= 0 ? (float)(x[targets[n]] - l) : 0.0f;
    }
}

static void logsoftmax_backward(float *dlogits, const float *logits, const float *lse, const int *targets,
                                const float *dlogp, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        int y = targets[n];
        if (y < 0) { for (int v = 0; v < V; v++) dx[v] = 0.0f; continue; }
        double g = dlogp[n], l = lse[n];
        for (int v = 0; v < V; v++) dx[v] = (float)(g * ((v == y ? 1.0 : 0.0) - exp(x[v] - l)));
    }
}

uint16_t ops_f32_to_f16(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t x = v.u, sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    int exp = (int)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0)); /* inf / NaN */
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);                            /* overflow -> inf */
    if (e <= 0) {                                                              /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into the exponent: still right */
    return (uint16_t)(sign | h);
}

float ops_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
    if (exp == 0) {
        if (!mant) x = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) x = sign | 0x7f800000u | (mant << 13);
    else x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    union { uint32_t u; float f; } v = {x};
    return v.f;
}

static void matmul_forward_h(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * ops_f16_to_f32(w[(size_t)o * C + c]);
            out[(size_t)n * OC + o] = (float)s;
        }
}

static void matvec_h(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC,
                     int lo, int hi, int mode) {
    for (int n = 0; n < N; n++)
        for (int o = lo; o < hi; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * ops_f16_to_f32(w[(size_t)o * C + c]);
            float *y = out + (size_t)n * OC + o;
            if (mode == OPS_MV_ADD) *y += (float)s;
            else if (mode == OPS_MV_GELU) gelu_forward(y, &(float){(float)s}, 1);
            else *y = (float)s;
        }
}

static void matvec_q8(float *out, const int8_t *xq, const float *xs, const int8_t *w, const float *ws, const float *bias,
                      int N, int C, int OC, int lo, int hi, int mode) {
    int nb = C / OPS_Q8_BLOCK;
    for (int n = 0; n < N; n++)
        for (int o = lo; o < hi; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int k = 0; k < nb; k++) {
                long dot = 0;
                for (int c = k * OPS_Q8_BLOCK; c < (k + 1) * OPS_Q8_BLOCK; c++) dot += (long)xq[(size_t)n * C + c] * w[(size_t)o * C + c];
                s += (double)dot * ws[(size_t)o * nb + k] * xs[(size_t)n * nb + k];
            }
            float *y = out + (size_t)n * OC + o;
            if (mode == OPS_MV_ADD) *y += (float)s;
            else if (mode == OPS_MV_GELU) gelu_forward(y, &(float){(float)s}, 1);
            else *y = (float)s;
        }
}

static void attention_decode(float *out, const float *q, const float *k, const float *v, int n, int ld, int hs, float scale) {
    double mx = -INFINITY, sum = 0;
    for (int t = 0; t < n; t++) {
        double d = 0;
        for (int i = 0; i < hs; i++) d += (double)q[i] * k[(size_t)t * ld + i];
        if (d * scale > mx) mx = d * scale;
    }
    for (int i = 0; i < hs; i++) out[i] = 0;
    for (int t = 0; t < n; t++) {
        double d = 0;
        for (int i = 0; i < hs; i++) d += (double)q[i] * k[(size_t)t * ld + i];
        sum += exp(d * scale - mx);
    }
    for (int t = 0; t < n; t++) {
        double d = 0;
        for (int i = 0; i < hs; i++) d += (double)q[i] * k[(size_t)t * ld + i];
        double p = exp(d * scale - mx) / sum;
        for (int i = 0; i < hs; i++) out[i] += (float)(p * v[(size_t)t * ld + i]);
    }
}

static const ops_table ref_table = {
    "ref",
    encoder_forward, encoder_backward,
    layernorm_forward, layernorm_backward,
    matmul_forward, matmul_backward,
    attention_forward, attention_backward,
    gelu_forward, gelu_backward,
    residual_forward, residual_backward,
    logsoftmax_forward, logsoftmax_backward,
    matmul_forward_h,
    matvec_h, matvec_q8, attention_decode,
    matmul_forward_exact, attention_forward, attention_step, /* the plain loops are row-independent already */
};

const ops_table *ops_ref_table(void) { return &ref_table; }
