/* objectives.c — RLHF losses as pure functions on arrays (see objectives.h for
 * the contract, formulas and sources). Plain loops; logits-level kernels are
 * parallel over rows with OpenMP when it is available. */
#include "objectives.h"
#include <math.h>
#include <stddef.h>

/* ---- scalar helpers ------------------------------------------------------- */

double obj_softplus(double x) {
    /* log(1+e^x) = max(x,0) + log1p(e^{-|x|}): no overflow, full precision. */
    return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

double obj_log_sigmoid(double x) { return -obj_softplus(-x); }

double obj_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

double obj_log1mexp(double x) {
    /* Mächler, "Accurately computing log(1 - exp(-|a|))", 2012. */
    return x > -M_LN2 ? log(-expm1(x)) : log1p(-exp(x));
}

static inline double wt(const float *w, long i) { return w ? (double)w[i] : 1.0; }

/* Softmax normaliser of one logits row: m = max_v z_v and s = sum_v e^{z_v - m},
 * so p_v = e^{z_v - m} / s and logsumexp = m + log s. The exponentials are
 * float (expf: the argument z - m <= 0 is exact to float rounding, and p is
 * stored as float anyway); the sum is double because V can be 50k. */
static inline double row_norm(const float *z, int V, float *m_out) {
    float m = z[0];
    for (int v = 1; v < V; v++) if (z[v] > m) m = z[v];
    double s = 0.0;
    for (int v = 0; v < V; v++) s += expf(z[v] - m);
    *m_out = m;
    return s;
}

static inline double row_lse(const float *z, int V) {
    float m;
    double s = row_norm(z, V, &m);
    return (double)m + log(s);
}

/* Row sums of the logits kernels: each row adds into the partial sum of its
 * chunk (OBJ_CHUNKS contiguous ranges of rows), the chunks are then summed in
 * order, so the loss does not depend on how OpenMP splits the rows. The outer
 * loop runs over chunks, so one thread owns each partial sum. */
#define OBJ_CHUNKS 64
#define CHUNK_BEGIN(c, n) ((long)(((long long)(n) * (c)) / OBJ_CHUNKS))

/* ======================================================================== */
/* 1. Token level                                                            */
/* ======================================================================== */

double obj_token_xent(const float *logits, const int32_t *targets, const float *weights,
                      int B, int T, int V, int Vp, float dloss, float *dlogits, float *losses) {
    long BT = (long)B * T;
    double W = 0.0;
    int bad = 0;
    for (long i = 0; i < BT; i++) {
        int32_t y = targets[i];
        if (y < 0) continue;
        if (y >= V) { bad = 1; continue; }
        W += wt(weights, i);
    }
    /* Fixed chunks summed in order: the result does not depend on the thread count. */
    double part[OBJ_CHUNKS] = {0};
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (int ch = 0; ch < OBJ_CHUNKS; ch++)
    for (long i = CHUNK_BEGIN(ch, BT); i < CHUNK_BEGIN(ch + 1, BT); i++) {
        int32_t y = targets[i];
        double w = (y >= 0 && y < V) ? wt(weights, i) : 0.0;
        if (losses) losses[i] = 0.0f;
        if (w == 0.0) continue;
        const float *z = logits + i * Vp;
        float m;
        double sum = row_norm(z, V, &m);
        double nll = (double)m + log(sum) - z[y];
        if (losses) losses[i] = (float)nll;
        part[ch] += w * nll;
        if (dlogits && W > 0) {
            /* d nll / dz_v = softmax_v - [v == y] */
            double c = dloss * w / W;
            float cs = (float)(c / sum);
            float *dz = dlogits + i * Vp;
            for (int v = 0; v < V; v++) dz[v] += cs * expf(z[v] - m);
            dz[y] -= (float)c;
        }
    }
    if (bad) return NAN;
    double total = 0.0;
    for (int c = 0; c < OBJ_CHUNKS; c++) total += part[c];
    return W > 0 ? total / W : 0.0;
}

void obj_token_logprobs(const float *logits, const int32_t *targets,
                        int B, int T, int V, int Vp, float *logp) {
    long BT = (long)B * T;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (long i = 0; i < BT; i++) {
        int32_t y = targets[i];
        if (y < 0) { logp[i] = 0.0f; continue; }
        if (y >= V) { logp[i] = NAN; continue; }
        const float *z = logits + i * Vp;
        logp[i] = (float)((double)z[y] - row_lse(z, V));
    }
}

void obj_token_logprobs_backward(const float *logits, const int32_t *targets, const float *dlogp,
                                 int B, int T, int V, int Vp, float *dlogits) {
    long BT = (long)B * T;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (long i = 0; i < BT; i++) {
        int32_t y = targets[i];
        double g = dlogp[i];
        if (y < 0 || y >= V || g == 0.0) continue;
        const float *z = logits + i * Vp;
        float *dz = dlogits + i * Vp;
        float m;
        double sum = row_norm(z, V, &m);
        float gs = (float)(g / sum);
        /* d log p_y / dz_v = [v == y] - softmax_v */
        for (int v = 0; v < V; v++) dz[v] -= gs * expf(z[v] - m);
        dz[y] += (float)g;
    }
}

void obj_seq_logprobs(const float *logp, const float *mask, int B, int T,
                      float *seq_logp, float *seq_len) {
    for (int b = 0; b < B; b++) {
        double s = 0.0, n = 0.0;
        for (int t = 0; t < T; t++) {
            long i = (long)b * T + t;
            double m = wt(mask, i);
            if (m == 0.0) continue;
            s += m * logp[i];
            n += m;
        }
        seq_logp[b] = (float)s;
        if (seq_len) seq_len[b] = (float)n;
    }
}

void obj_seq_logprobs_backward(const float *dseq, const float *mask, int B, int T, float *dlogp) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            long i = (long)b * T + t;
            dlogp[i] = (float)(wt(mask, i) * dseq[b]);
        }
}

double obj_entropy(const float *logits, const float *mask, int B, int T, int V, int Vp,
                   float dloss, float *dlogits, float *ent) {
    long BT = (long)B * T;
    double M = 0.0;
    for (long i = 0; i < BT; i++) M += wt(mask, i);
    double part[OBJ_CHUNKS] = {0};
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (int ch = 0; ch < OBJ_CHUNKS; ch++)
    for (long i = CHUNK_BEGIN(ch, BT); i < CHUNK_BEGIN(ch + 1, BT); i++) {
        double m = wt(mask, i);
        if (m == 0.0) { if (ent) ent[i] = 0.0f; continue; }
        const float *z = logits + i * Vp;
        float mx;
        double sum = row_norm(z, V, &mx), logsum = log(sum);
        /* H = -sum_v p_v log p_v with log p_v = (z_v - mx) - log sum:
         *   H = log sum - sum_v p_v (z_v - mx) */
        double ez = 0.0;
        for (int v = 0; v < V; v++) { float d = z[v] - mx; ez += expf(d) * (double)d; }
        double H = logsum - ez / sum;
        if (ent) ent[i] = (float)H;
        part[ch] += m * H;
        if (dlogits && M > 0) {
            double c = dloss * m / M;
            float *dz = dlogits + i * Vp;
            for (int v = 0; v < V; v++) {
                float d = z[v] - mx;
                double lp = (double)d - logsum;
                dz[v] += (float)(-c * (expf(d) / sum) * (lp + H));
            }
        }
    }
    double total = 0.0;
    for (int c = 0; c < OBJ_CHUNKS; c++) total += part[c];
    return M > 0 ? total / M : 0.0;
}

/* ======================================================================== */
/* 2. Reward-model losses                                                    */
/* ======================================================================== */

double obj_bt_loss(const float *r_chosen, const float *r_rejected, const float *margin,
                   const float *weight, int N, double center_coef,
                   float *d_chosen, float *d_rejected) {
    double W = 0.0;
    for (int i = 0; i < N; i++) W += wt(weight, i);
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        double w = wt(weight, i);
        double x = (double)r_chosen[i] - r_rejected[i] - (margin ? margin[i] : 0.0f);
        double s = (double)r_chosen[i] + r_rejected[i];
        double li = obj_softplus(-x) + center_coef * s * s;
        double gx = -obj_sigmoid(-x);           /* d softplus(-x)/dx */
        double gs = 2.0 * center_coef * s;      /* d c s^2 / ds */
        if (W > 0 && w != 0.0) {
            total += w * li;
            if (d_chosen) d_chosen[i] = (float)(w / W * (gx + gs));
            if (d_rejected) d_rejected[i] = (float)(w / W * (-gx + gs));
        } else {
            if (d_chosen) d_chosen[i] = 0.0f;
            if (d_rejected) d_rejected[i] = 0.0f;
        }
    }
    return W > 0 ? total / W : 0.0;
}

/* log-sum-exp of three numbers and their softmax weights. */
static double lse3(double a, double b, double c, double q[3]) {
    double m = a > b ? a : b;
    if (c > m) m = c;
    double ea = exp(a - m), eb = exp(b - m), ec = exp(c - m), s = ea + eb + ec;
    q[0] = ea / s; q[1] = eb / s; q[2] = ec / s;
    return m + log(s);
}

double obj_davidson_loss(const float *r_a, const float *r_b, const int8_t *label,
                         const float *weight, int N, double nu,
                         float *d_a, float *d_b, double *d_log_nu) {
    double W = 0.0;
    for (int i = 0; i < N; i++) W += wt(weight, i);
    double lognu = log(nu), total = 0.0, glognu = 0.0;
    for (int i = 0; i < N; i++) {
        double w = wt(weight, i);
        double d = (double)r_a[i] - r_b[i], q[3], li, gd, gn;
        /* Dividing numerator and Z by e^{r_a}, e^{r_b} or e^{(r_a+r_b)/2}: */
        if (label[i] > 0) {        /* -log P(a) = lse(0, -d, lognu - d/2) */
            li = lse3(0.0, -d, lognu - 0.5 * d, q);
            gd = -q[1] - 0.5 * q[2];
            gn = q[2];
        } else if (label[i] < 0) { /* -log P(b) = lse(d, 0, lognu + d/2) */
            li = lse3(d, 0.0, lognu + 0.5 * d, q);
            gd = q[0] + 0.5 * q[2];
            gn = q[2];
        } else {                   /* -log P(tie) = lse(d/2, -d/2, lognu) - lognu */
            li = lse3(0.5 * d, -0.5 * d, lognu, q) - lognu;
            gd = 0.5 * (q[0] - q[1]);
            gn = q[2] - 1.0;
        }
        double c = (W > 0) ? w / W : 0.0;
        if (c != 0.0) total += w * li;
        if (d_a) d_a[i] = (float)(c * gd);
        if (d_b) d_b[i] = (float)(-c * gd);
        glognu += c * gn;
    }
    if (d_log_nu) *d_log_nu = glognu;
    return W > 0 ? total / W : 0.0;
}

double obj_rank_pairs_loss(const float *rewards, const int32_t *rank, const float *weight,
                           int P, int K, float *d_rewards) {
    /* First pass: the total weight of prompts that have at least one pair. */
    double W = 0.0;
    for (int p = 0; p < P; p++) {
        const int32_t *rk = rank + (long)p * K;
        int npairs = 0;
        for (int i = 0; i < K && !npairs; i++)
            for (int j = 0; j < K; j++)
                if (rk[i] >= 0 && rk[j] >= 0 && rk[i] < rk[j]) { npairs = 1; break; }
        if (npairs) W += wt(weight, p);
    }
    double total = 0.0;
    for (int p = 0; p < P; p++) {
        const float *r = rewards + (long)p * K;
        const int32_t *rk = rank + (long)p * K;
        float *dr = d_rewards ? d_rewards + (long)p * K : NULL;
        if (dr) for (int i = 0; i < K; i++) dr[i] = 0.0f;
        int npairs = 0;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                if (rk[i] >= 0 && rk[j] >= 0 && rk[i] < rk[j]) npairs++;
        double w = wt(weight, p);
        if (!npairs || W <= 0 || w == 0.0) continue;
        double lp = 0.0, c = w / W / npairs;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                if (!(rk[i] >= 0 && rk[j] >= 0 && rk[i] < rk[j])) continue;
                double x = (double)r[i] - r[j];
                lp += obj_softplus(-x);
                if (dr) {
                    double g = -obj_sigmoid(-x) * c;
                    dr[i] += (float)g;
                    dr[j] -= (float)g;
                }
            }
        total += w * lp / npairs;
    }
    return W > 0 ? total / W : 0.0;
}

double obj_plackett_luce_loss(const float *rewards, const int32_t *rank, const float *weight,
                              int P, int K, int top, float *d_rewards) {
    /* An item i gives a term when it is present, within `top`, and its risk set
     * {j present: rank_j >= rank_i} holds someone besides i. */
#define PL_TERM(rk, i, cnt) ((rk)[i] >= 0 && (top <= 0 || (rk)[i] < top) && (cnt) > 1)
    double W = 0.0;
    for (int p = 0; p < P; p++) {
        const int32_t *rk = rank + (long)p * K;
        int nterms = 0;
        for (int i = 0; i < K; i++) {
            int cnt = 0;
            for (int j = 0; j < K; j++) if (rk[i] >= 0 && rk[j] >= rk[i]) cnt++;
            if (PL_TERM(rk, i, cnt)) nterms++;
        }
        if (nterms) W += wt(weight, p);
    }
    double total = 0.0;
    for (int p = 0; p < P; p++) {
        const float *r = rewards + (long)p * K;
        const int32_t *rk = rank + (long)p * K;
        float *dr = d_rewards ? d_rewards + (long)p * K : NULL;
        if (dr) for (int i = 0; i < K; i++) dr[i] = 0.0f;
        double w = wt(weight, p);
        int nterms = 0;
        for (int i = 0; i < K; i++) {
            int cnt = 0;
            for (int j = 0; j < K; j++) if (rk[i] >= 0 && rk[j] >= rk[i]) cnt++;
            if (PL_TERM(rk, i, cnt)) nterms++;
        }
        if (!nterms || W <= 0 || w == 0.0) continue;
        double c = w / W / nterms, lp = 0.0;
        for (int i = 0; i < K; i++) {
            int cnt = 0;
            double m = -INFINITY;
            for (int j = 0; j < K; j++)
                if (rk[i] >= 0 && rk[j] >= rk[i]) { cnt++; if (r[j] > m) m = r[j]; }
            if (!PL_TERM(rk, i, cnt)) continue;
            double s = 0.0;
            for (int j = 0; j < K; j++) if (rk[j] >= rk[i]) s += exp((double)r[j] - m);
            double lse = m + log(s);
            lp += lse - r[i];
            if (dr) {
                dr[i] -= (float)c;
                for (int j = 0; j < K; j++)
                    if (rk[j] >= rk[i]) dr[j] += (float)(c * exp((double)r[j] - lse));
            }
        }
        total += w * lp / nterms;
    }
#undef PL_TERM
    return W > 0 ? total / W : 0.0;
}

double obj_thumbs_loss(const float *reward, const float *label, const float *weight,
                       int N, double bias, float *d_reward, double *d_bias) {
    double W = 0.0;
    for (int i = 0; i < N; i++) W += wt(weight, i);
    double total = 0.0, gb = 0.0;
    for (int i = 0; i < N; i++) {
        double w = wt(weight, i), y = label[i], x = (double)reward[i] - bias;
        /* -y log σ(x) - (1-y) log σ(-x) = y softplus(-x) + (1-y) softplus(x); d/dx = σ(x) - y */
        double li = y * obj_softplus(-x) + (1.0 - y) * obj_softplus(x);
        double c = W > 0 ? w / W : 0.0;
        double g = c * (obj_sigmoid(x) - y);
        if (c != 0.0) total += w * li;
        if (d_reward) d_reward[i] = (float)g;
        gb -= g;
    }
    if (d_bias) *d_bias = gb;
    return W > 0 ? total / W : 0.0;
}

double obj_pair_accuracy(const float *r_chosen, const float *r_rejected, const float *weight, int N) {
    double W = 0.0, a = 0.0;
    for (int i = 0; i < N; i++) {
        double w = wt(weight, i);
        W += w;
        if (r_chosen[i] > r_rejected[i]) a += w;
        else if (r_chosen[i] == r_rejected[i]) a += 0.5 * w;
    }
    return W > 0 ? a / W : 0.0;
}

/* Shared binning for both ECEs: adds (prob, label, weight) to the bins. */
static void ece_add(double *sp, double *sl, double *sw, int nbins, double p, double y, double w) {
    int b = (int)(p * nbins);
    if (b < 0) b = 0;
    if (b >= nbins) b = nbins - 1;
    sp[b] += w * p; sl[b] += w * y; sw[b] += w;
}

static double ece_finish(const double *sp, const double *sl, const double *sw, int nbins,
                         float *bin_prob, float *bin_label, float *bin_weight) {
    double W = 0.0, e = 0.0;
    for (int b = 0; b < nbins; b++) W += sw[b];
    for (int b = 0; b < nbins; b++) {
        double mp = sw[b] > 0 ? sp[b] / sw[b] : 0.0, ml = sw[b] > 0 ? sl[b] / sw[b] : 0.0;
        if (W > 0) e += sw[b] / W * fabs(ml - mp);
        if (bin_prob) bin_prob[b] = (float)mp;
        if (bin_label) bin_label[b] = (float)ml;
        if (bin_weight) bin_weight[b] = (float)sw[b];
    }
    return e;
}

#define OBJ_ECE_MAXBINS 1024

double obj_ece(const float *prob, const float *label, const float *weight, int N, int nbins,
               float *bin_prob, float *bin_label, float *bin_weight) {
    double sp[OBJ_ECE_MAXBINS] = {0}, sl[OBJ_ECE_MAXBINS] = {0}, sw[OBJ_ECE_MAXBINS] = {0};
    if (nbins < 1) return NAN;
    if (nbins > OBJ_ECE_MAXBINS) nbins = OBJ_ECE_MAXBINS;
    for (int i = 0; i < N; i++) ece_add(sp, sl, sw, nbins, prob[i], label[i], wt(weight, i));
    return ece_finish(sp, sl, sw, nbins, bin_prob, bin_label, bin_weight);
}

double obj_pair_ece(const float *r_chosen, const float *r_rejected, const float *weight, int N,
                    int nbins, float *bin_prob, float *bin_label, float *bin_weight) {
    double sp[OBJ_ECE_MAXBINS] = {0}, sl[OBJ_ECE_MAXBINS] = {0}, sw[OBJ_ECE_MAXBINS] = {0};
    if (nbins < 1) return NAN;
    if (nbins > OBJ_ECE_MAXBINS) nbins = OBJ_ECE_MAXBINS;
    for (int i = 0; i < N; i++) {
        double p = obj_sigmoid((double)r_chosen[i] - r_rejected[i]);
        double conf = p >= 0.5 ? p : 1.0 - p;
        double correct = p > 0.5 ? 1.0 : (p == 0.5 ? 0.5 : 0.0);
        /* confidence lives in [0.5, 1]: map it onto [0, 1] for the bin index */
        int b = (int)((conf - 0.5) * 2.0 * nbins);
        if (b >= nbins) b = nbins - 1;
        double w = wt(weight, i);
        sp[b] += w * conf; sl[b] += w * correct; sw[b] += w;
    }
    return ece_finish(sp, sl, sw, nbins, bin_prob, bin_label, bin_weight);
}

/* ======================================================================== */
/* 3. Direct preference losses                                               */
/* ======================================================================== */

static void pref_stats_init(obj_pref_stats *st) {
    if (!st) return;
    st->loss = st->reward_chosen = st->reward_rejected = st->margin = st->accuracy = 0.0;
    st->logp_chosen = st->logp_rejected = st->nll = 0.0;
}

/* Accumulates one pair's rewards into the weighted means; call pref_stats_end after. */
static void pref_stats_add(obj_pref_stats *st, double w, double rc, double rr, double lc, double lr) {
    if (!st) return;
    st->reward_chosen += w * rc;
    st->reward_rejected += w * rr;
    st->margin += w * (rc - rr);
    st->accuracy += w * (rc > rr ? 1.0 : 0.0);
    st->logp_chosen += w * lc;
    st->logp_rejected += w * lr;
}

static void pref_stats_end(obj_pref_stats *st, double W, double loss) {
    if (!st) return;
    double s = W > 0 ? 1.0 / W : 0.0;
    st->reward_chosen *= s; st->reward_rejected *= s; st->margin *= s;
    st->accuracy *= s; st->logp_chosen *= s; st->logp_rejected *= s;
    st->loss = loss;
}

static double batch_weight(const float *w, int N) {
    double W = 0.0;
    for (int i = 0; i < N; i++) W += wt(w, i);
    return W;
}

double obj_dpo_loss(const obj_pref_batch *b, obj_dpo_type type, double beta, double eps,
                    int ipo_per_token, float *d_chosen, float *d_rejected, obj_pref_stats *st) {
    int N = b->N;
    double W = batch_weight(b->weight, N), total = 0.0;
    pref_stats_init(st);
    int norm = (type == OBJ_DPO_IPO && ipo_per_token);
    for (int i = 0; i < N; i++) {
        double w = wt(b->weight, i);
        double sw = norm ? 1.0 / b->len_chosen[i] : 1.0, sl = norm ? 1.0 / b->len_rejected[i] : 1.0;
        double lr_w = ((double)b->pol_chosen[i] - b->ref_chosen[i]) * sw;
        double lr_l = ((double)b->pol_rejected[i] - b->ref_rejected[i]) * sl;
        double h = lr_w - lr_l, x = beta * h, li, gh;
        switch (type) {
        case OBJ_DPO_ROBUST:
            li = ((1.0 - eps) * obj_softplus(-x) - eps * obj_softplus(x)) / (1.0 - 2.0 * eps);
            gh = beta * (-(1.0 - eps) * obj_sigmoid(-x) - eps * obj_sigmoid(x)) / (1.0 - 2.0 * eps);
            break;
        case OBJ_DPO_IPO: {
            double e = h - 1.0 / (2.0 * beta);
            li = e * e;
            gh = 2.0 * e;
            break;
        }
        case OBJ_DPO_SIGMOID:
        default:
            li = (1.0 - eps) * obj_softplus(-x) + eps * obj_softplus(x);
            gh = beta * (-(1.0 - eps) * obj_sigmoid(-x) + eps * obj_sigmoid(x));
            break;
        }
        double c = W > 0 ? w / W : 0.0;
        if (c != 0.0) total += w * li;
        if (d_chosen) d_chosen[i] = (float)(c * gh * sw);
        if (d_rejected) d_rejected[i] = (float)(-c * gh * sl);
        pref_stats_add(st, w, beta * lr_w, beta * lr_l, b->pol_chosen[i], b->pol_rejected[i]);
    }
    double L = W > 0 ? total / W : 0.0;
    pref_stats_end(st, W, L);
    return L;
}

double obj_kto_kl_estimate(const float *pol_mismatched, const float *ref_mismatched, int M) {
    if (M <= 0) return 0.0;
    double s = 0.0;
    for (int i = 0; i < M; i++) s += (double)pol_mismatched[i] - ref_mismatched[i];
    s /= M;
    return s > 0 ? s : 0.0;
}

double obj_kto_loss(const float *pol, const float *ref, const uint8_t *desirable,
                    const float *weight, int N, double beta, double z0,
                    double lambda_d, double lambda_u, float *d_pol, obj_pref_stats *st) {
    double W = batch_weight(weight, N), total = 0.0;
    double Wd = 0.0, Wu = 0.0, rd = 0.0, ru = 0.0, ld = 0.0, lu = 0.0, acc = 0.0;
    for (int i = 0; i < N; i++) {
        double w = wt(weight, i), r = (double)pol[i] - ref[i], li, g;
        if (desirable[i]) {
            double x = beta * (r - z0), s = obj_sigmoid(x);
            li = lambda_d * (1.0 - s);
            g = -lambda_d * beta * s * obj_sigmoid(-x);
            Wd += w; rd += w * beta * r; ld += w * pol[i];
            acc += w * (x > 0 ? 1.0 : 0.0);
        } else {
            double x = beta * (z0 - r), s = obj_sigmoid(x);
            li = lambda_u * (1.0 - s);
            g = lambda_u * beta * s * obj_sigmoid(-x);
            Wu += w; ru += w * beta * r; lu += w * pol[i];
            acc += w * (x > 0 ? 1.0 : 0.0);
        }
        double c = W > 0 ? w / W : 0.0;
        if (c != 0.0) total += w * li;
        if (d_pol) d_pol[i] = (float)(c * g);
    }
    double L = W > 0 ? total / W : 0.0;
    if (st) {
        pref_stats_init(st);
        st->loss = L;
        st->reward_chosen = Wd > 0 ? rd / Wd : 0.0;
        st->reward_rejected = Wu > 0 ? ru / Wu : 0.0;
        st->margin = st->reward_chosen - st->reward_rejected;
        st->accuracy = W > 0 ? acc / W : 0.0;
        st->logp_chosen = Wd > 0 ? ld / Wd : 0.0;
        st->logp_rejected = Wu > 0 ? lu / Wu : 0.0;
    }
    return L;
}

double obj_orpo_loss(const obj_pref_batch *b, double lambda,
                     float *d_chosen, float *d_rejected, obj_pref_stats *st) {
    int N = b->N;
    double W = batch_weight(b->weight, N), Wlen = 0.0, nll = 0.0, orsum = 0.0;
    for (int i = 0; i < N; i++) Wlen += wt(b->weight, i) * b->len_chosen[i];
    pref_stats_init(st);
    for (int i = 0; i < N; i++) {
        double w = wt(b->weight, i);
        double aw = (double)b->pol_chosen[i] / b->len_chosen[i];
        double al = (double)b->pol_rejected[i] / b->len_rejected[i];
        /* a is a mean log-prob, <= 0; at 0 the odds are infinite. The clamp has
         * zero gradient, as torch.clamp does. */
        int cw = aw > -1e-6, cl = al > -1e-6;
        if (cw) aw = -1e-6;
        if (cl) al = -1e-6;
        double z = (aw - obj_log1mexp(aw)) - (al - obj_log1mexp(al));
        double c = W > 0 ? w / W : 0.0;
        if (c != 0.0) { orsum += w * obj_log_sigmoid(z); }
        if (Wlen > 0 && w != 0.0) nll += w * -(double)b->pol_chosen[i];
        /* d log odds / da = 1/(1 - e^a) = -1/expm1(a) */
        double gz = -lambda * c * obj_sigmoid(-z);
        double gaw = cw ? 0.0 : gz * (-1.0 / expm1(aw));
        double gal = cl ? 0.0 : -gz * (-1.0 / expm1(al));
        double gnll = Wlen > 0 ? -w / Wlen : 0.0;
        if (d_chosen) d_chosen[i] = (float)(gnll + gaw / b->len_chosen[i]);
        if (d_rejected) d_rejected[i] = (float)(gal / b->len_rejected[i]);
        pref_stats_add(st, w, lambda * aw, lambda * al, b->pol_chosen[i], b->pol_rejected[i]);
    }
    double NLL = Wlen > 0 ? nll / Wlen : 0.0;
    double L = NLL - lambda * (W > 0 ? orsum / W : 0.0);
    pref_stats_end(st, W, L);
    if (st) st->nll = NLL;
    return L;
}

double obj_simpo_loss(const obj_pref_batch *b, double beta, double gamma,
                      float *d_chosen, float *d_rejected, obj_pref_stats *st) {
    int N = b->N;
    double W = batch_weight(b->weight, N), total = 0.0;
    pref_stats_init(st);
    for (int i = 0; i < N; i++) {
        double w = wt(b->weight, i);
        double rw = beta * b->pol_chosen[i] / b->len_chosen[i];
        double rl = beta * b->pol_rejected[i] / b->len_rejected[i];
        double z = rw - rl - gamma;
        double c = W > 0 ? w / W : 0.0;
        if (c != 0.0) total += w * obj_softplus(-z);
        double gz = -c * obj_sigmoid(-z);
        if (d_chosen) d_chosen[i] = (float)(gz * beta / b->len_chosen[i]);
        if (d_rejected) d_rejected[i] = (float)(-gz * beta / b->len_rejected[i]);
        pref_stats_add(st, w, rw, rl, b->pol_chosen[i], b->pol_rejected[i]);
    }
    double L = W > 0 ? total / W : 0.0;
    pref_stats_end(st, W, L);
    return L;
}

/* ======================================================================== */
/* 4. Online RL                                                              */
/* ======================================================================== */

void obj_kl_per_token(const float *logp, const float *ref_logp, int n, obj_kl_type type,
                      float *kl, float *dkl) {
    for (int i = 0; i < n; i++) {
        double x = (double)logp[i] - ref_logp[i], k, g;
        switch (type) {
        case OBJ_KL_K2: k = 0.5 * x * x; g = x; break;
        case OBJ_KL_K3: {
            /* e^{-x} - 1 + x = expm1(-x) + x: expm1 keeps precision near x = 0 */
            double e = expm1(-x);
            k = e + x; g = -e;
            break;
        }
        case OBJ_KL_K1:
        default: k = x; g = 1.0; break;
        }
        if (kl) kl[i] = (float)k;
        if (dkl) dkl[i] = (float)g;
    }
}

void obj_shape_rewards(const float *score, const float *kl, const float *mask,
                       int B, int T, double beta, double score_clip, float *rewards) {
    for (int b = 0; b < B; b++) {
        int last = -1;
        for (int t = 0; t < T; t++) {
            long i = (long)b * T + t;
            double m = wt(mask, i);
            rewards[i] = m != 0.0 ? (float)(-beta * kl[i] * m) : 0.0f;
            if (m != 0.0) last = t;
        }
        if (last >= 0) {
            double s = score[b];
            if (score_clip > 0) s = s > score_clip ? score_clip : (s < -score_clip ? -score_clip : s);
            rewards[(long)b * T + last] += (float)s;
        }
    }
}

void obj_clip_values(float *x, int n, double c) {
    for (int i = 0; i < n; i++) {
        if (x[i] > c) x[i] = (float)c;
        else if (x[i] < -c) x[i] = (float)-c;
    }
}

void obj_gae(const float *rewards, const float *values, const float *mask, int B, int T,
             double gamma, double lam, float *adv, float *returns) {
    for (int b = 0; b < B; b++) {
        double next_v = 0.0, next_a = 0.0;  /* after the last response token: terminal */
        for (int t = T - 1; t >= 0; t--) {
            long i = (long)b * T + t;
            if (wt(mask, i) == 0.0) { adv[i] = 0.0f; returns[i] = 0.0f; continue; }
            double delta = rewards[i] + gamma * next_v - values[i];
            double a = delta + gamma * lam * next_a;
            adv[i] = (float)a;
            returns[i] = (float)(a + values[i]);
            next_v = values[i];
            next_a = a;
        }
    }
}

double obj_whiten(const float *x, const float *mask, int n, int shift_mean, float *out) {
    double M = 0.0, s = 0.0;
    for (int i = 0; i < n; i++) { double m = wt(mask, i); M += m; s += m * x[i]; }
    double mean = M > 0 ? s / M : 0.0, v = 0.0;
    for (int i = 0; i < n; i++) { double d = x[i] - mean; v += wt(mask, i) * d * d; }
    /* masked variance with Bessel's correction, as TRL's masked_var(unbiased=True) */
    double var = M > 1 ? v / M * (M / (M - 1.0)) : 0.0;
    double inv = M > 1 ? 1.0 / sqrt(var + 1e-8) : 1.0;
    for (int i = 0; i < n; i++) {
        if (wt(mask, i) == 0.0) { out[i] = 0.0f; continue; }
        double y = (x[i] - mean) * inv;
        if (!shift_mean) y += mean;
        out[i] = (float)y;
    }
    return sqrt(var);
}

/* The shared PPO-clip kernel; adv_row != 0 means one advantage per row. */
static double clip_policy_loss(const float *logp, const float *old_logp, const float *ref_logp,
                               const float *adv, int adv_row, const float *mask, int B, int T,
                               double eps_low, double eps_high, double beta, obj_agg agg,
                               float *dlogp, obj_pg_stats *st) {
    double pg = 0.0, klsum = 0.0, M = 0.0, clipped = 0.0, akl = 0.0, rsum = 0.0, Mall = 0.0;
    for (long i = 0; i < (long)B * T; i++) Mall += wt(mask, i);
    for (int b = 0; b < B; b++) {
        /* aggregation coefficient of this row: loss = sum_bt cb * m_bt * l_bt (see obj_agg) */
        double Mb = 0.0, cb;
        for (int t = 0; t < T; t++) Mb += wt(mask, (long)b * T + t);
        if (agg == OBJ_AGG_TOKEN) {
            cb = Mall > 0 ? 1.0 / Mall : 0.0;
        } else if (agg == OBJ_AGG_SEQ) {
            cb = Mb > 0 ? 1.0 / (Mb * B) : 0.0;
        } else {
            cb = 1.0 / ((double)B * T);
        }
        for (int t = 0; t < T; t++) {
            long i = (long)b * T + t;
            double m = wt(mask, i);
            if (m == 0.0) { if (dlogp) dlogp[i] = 0.0f; continue; }
            double A = adv_row ? adv[b] : adv[i];
            double dlp = (double)logp[i] - old_logp[i];
            double rho = exp(dlp);
            double rc = rho < 1.0 - eps_low ? 1.0 - eps_low : (rho > 1.0 + eps_high ? 1.0 + eps_high : rho);
            double l1 = -A * rho, l2 = -A * rc;
            double l = l1 >= l2 ? l1 : l2;
            /* d(-Aρ)/dlogp = -Aρ on the unclipped branch; the clipped branch is flat */
            double g = l1 >= l2 ? -A * rho : 0.0;
            double k = 0.0;
            if (ref_logp && beta != 0.0) {
                double x = (double)logp[i] - ref_logp[i], e = expm1(-x);
                k = e + x;              /* k3 */
                g += beta * (-e);       /* d k3 / d logp = 1 - e^{-x} */
            }
            double c = cb * m;
            pg += c * l;
            klsum += c * k;
            if (dlogp) dlogp[i] = (float)(c * g);
            M += m;
            clipped += m * (l2 > l1 ? 1.0 : 0.0);
            akl += m * 0.5 * dlp * dlp;
            rsum += m * rho;
        }
    }
    double L = pg + beta * klsum;
    if (st) {
        st->loss = L;
        st->pg_loss = pg;
        st->kl = klsum;
        st->clipfrac = M > 0 ? clipped / M : 0.0;
        st->approx_kl = M > 0 ? akl / M : 0.0;
        st->ratio_mean = M > 0 ? rsum / M : 0.0;
    }
    return L;
}

double obj_ppo_policy_loss(const float *logp, const float *old_logp, const float *ref_logp,
                           const float *adv, const float *mask, int B, int T,
                           double eps_low, double eps_high, double beta, obj_agg agg,
                           float *dlogp, obj_pg_stats *st) {
    return clip_policy_loss(logp, old_logp, ref_logp, adv, 0, mask, B, T, eps_low, eps_high,
                            beta, agg, dlogp, st);
}

double obj_grpo_loss(const float *logp, const float *old_logp, const float *ref_logp,
                     const float *adv, const float *mask, int B, int T,
                     double eps_low, double eps_high, double beta, obj_agg agg,
                     float *dlogp, obj_pg_stats *st) {
    return clip_policy_loss(logp, old_logp, ref_logp, adv, 1, mask, B, T, eps_low, eps_high,
                            beta, agg, dlogp, st);
}

double obj_explained_variance(const float *values, const float *returns, const float *mask, int n) {
    double M = 0.0, sr = 0.0, sd = 0.0;
    for (int i = 0; i < n; i++) {
        double m = wt(mask, i);
        M += m; sr += m * returns[i]; sd += m * ((double)returns[i] - values[i]);
    }
    if (M <= 0) return NAN;
    double mr = sr / M, md = sd / M, vr = 0.0, vd = 0.0;
    for (int i = 0; i < n; i++) {
        double m = wt(mask, i), a = returns[i] - mr, d = ((double)returns[i] - values[i]) - md;
        vr += m * a * a; vd += m * d * d;
    }
    if (vr <= 0) return NAN;
    return 1.0 - vd / vr;
}

double obj_value_loss(const float *values, const float *old_values, const float *returns,
                      const float *mask, int n, double clip, float *dvalues, obj_vf_stats *st) {
    double M = 0.0;
    for (int i = 0; i < n; i++) M += wt(mask, i);
    double total = 0.0, clipped = 0.0;
    for (int i = 0; i < n; i++) {
        double m = wt(mask, i);
        if (m == 0.0 || M <= 0) { if (dvalues) dvalues[i] = 0.0f; continue; }
        double V = values[i], R = returns[i], l1 = (V - R) * (V - R), l = l1, g = 2.0 * (V - R);
        if (clip > 0) {
            double lo = old_values[i] - clip, hi = old_values[i] + clip;
            double Vc = V < lo ? lo : (V > hi ? hi : V);
            double l2 = (Vc - R) * (Vc - R);
            if (l2 > l1) { l = l2; g = 0.0; clipped += m; }  /* l2 > l1 only when V is outside the band */
        }
        total += m * 0.5 * l;
        if (dvalues) dvalues[i] = (float)(m / M * 0.5 * g);
    }
    double L = M > 0 ? total / M : 0.0;
    if (st) {
        st->loss = L;
        st->clipfrac = M > 0 ? clipped / M : 0.0;
        st->explained_var = obj_explained_variance(values, returns, mask, n);
    }
    return L;
}

void obj_rloo_advantages(const float *rewards, int P, int K, float *adv) {
    for (int p = 0; p < P; p++) {
        const float *r = rewards + (long)p * K;
        double s = 0.0;
        for (int i = 0; i < K; i++) s += r[i];
        for (int i = 0; i < K; i++)
            adv[(long)p * K + i] = (float)(r[i] - (s - r[i]) / (K - 1));
    }
}

void obj_grpo_advantages(const float *rewards, int P, int G, int scale_std, double eps, float *adv) {
    for (int p = 0; p < P; p++) {
        const float *r = rewards + (long)p * G;
        double s = 0.0;
        for (int i = 0; i < G; i++) s += r[i];
        double mean = s / G, v = 0.0;
        for (int i = 0; i < G; i++) v += ((double)r[i] - mean) * ((double)r[i] - mean);
        double sd = G > 1 ? sqrt(v / (G - 1)) : 0.0;
        for (int i = 0; i < G; i++) {
            double a = r[i] - mean;
            if (scale_std) a /= (sd + eps);
            adv[(long)p * G + i] = (float)a;
        }
    }
}

double obj_kl_ctl_update(obj_kl_ctl *c, double kl, double n_steps) {
    if (!c->adaptive) return c->beta;
    double e = kl / c->target - 1.0;
    if (e > 0.2) e = 0.2;
    if (e < -0.2) e = -0.2;
    c->beta *= 1.0 + e * n_steps / c->horizon;
    return c->beta;
}

double obj_bon_kl(int n) {
    if (n < 1) return NAN;
    return log((double)n) - (double)(n - 1) / n;
}
