/* Unit tests for src/train/objectives.c: hand-computed values, invariants, and
 * finite-difference checks of every analytic gradient. (The PyTorch comparison
 * lives in tests/ref/test_objectives.py.) */
#include "test.h"
#include "../../src/train/objectives.h"
#include "../../src/base/rng.h"
#include <stdint.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

/* ---- finite differences --------------------------------------------------- */

/* A loss of the float array x (closed over by ctx); returns L. */
typedef double (*loss_fn)(void *ctx);

/* Central differences over every x[i]; compares with grad[i]. The perturbed
 * values are rounded to float, so the actual step (xp - xm) is used. Returns
 * the max error relative to max(1, |grad|). */
static double fd_max_err(loss_fn f, void *ctx, float *x, int n, const float *grad, double h) {
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        float x0 = x[i];
        float xp = (float)(x0 + h), xm = (float)(x0 - h);
        x[i] = xp; double lp = f(ctx);
        x[i] = xm; double lm = f(ctx);
        x[i] = x0;
        double fd = (lp - lm) / ((double)xp - xm);
        double scale = fabs(grad[i]) > 1.0 ? fabs(grad[i]) : 1.0;
        double e = fabs(fd - grad[i]) / scale;
        if (e > worst) worst = e;
    }
    return worst;
}

static void randn(rl_rng *r, float *x, int n, double scale) {
    for (int i = 0; i < n; i++) x[i] = (float)(rl_rng_normal(r) * scale);
}

/* ---- scalar helpers ------------------------------------------------------- */

TEST(softplus_stable) {
    EXPECT_NEAR(obj_softplus(0.0), log(2.0), 1e-15);
    EXPECT_NEAR(obj_softplus(1000.0), 1000.0, 1e-12);        /* naive log(1+e^x) overflows */
    EXPECT(obj_softplus(-1000.0) >= 0.0 && obj_softplus(-1000.0) < 1e-300);
    EXPECT_NEAR(obj_log_sigmoid(-800.0), -800.0, 1e-12);      /* naive log(σ(x)) = log(0) */
    EXPECT_NEAR(obj_sigmoid(-800.0), 0.0, 1e-300);
    EXPECT_NEAR(obj_sigmoid(800.0), 1.0, 0.0);
    EXPECT_NEAR(obj_log1mexp(-1e-10), log(1e-10), 1e-6);      /* log(1 - e^x) near 0 */
    EXPECT_NEAR(obj_log1mexp(-50.0), -exp(-50.0), 1e-30);
}

/* ---- token level ---------------------------------------------------------- */

TEST(xent_uniform_logits_is_log_v) {
    enum { B = 2, T = 3, V = 7, Vp = 8 };
    float logits[B * T * Vp], dl[B * T * Vp];
    int32_t tg[B * T] = {0, 1, 2, 3, 4, 5};
    for (int i = 0; i < B * T * Vp; i++) { logits[i] = 3.25f; dl[i] = 0.0f; }
    double L = obj_token_xent(logits, tg, NULL, B, T, V, Vp, 1.0f, dl, NULL);
    EXPECT_NEAR(L, log(7.0), 1e-6);
    /* gradient (softmax - onehot)/BT: 1/7/6 off target, (1/7 - 1)/6 at the target */
    EXPECT_NEAR(dl[0], (1.0 / 7 - 1) / 6, 1e-7);
    EXPECT_NEAR(dl[1], 1.0 / 7 / 6, 1e-7);
    EXPECT(dl[7] == 0.0f); /* padding column untouched */
}

TEST(xent_mask_and_nan_target) {
    enum { B = 1, T = 2, V = 3 };
    float logits[B * T * V] = {0, 0, 5, 100, -100, 0};
    int32_t tg[2] = {2, 1};
    float w[2] = {1, 0};
    float dl[B * T * V] = {0};
    double L = obj_token_xent(logits, tg, w, B, T, V, V, 1.0f, dl, NULL);
    EXPECT_NEAR(L, log(2.0 + exp(5.0)) - 5.0, 1e-6);
    for (int v = 3; v < 6; v++) EXPECT(dl[v] == 0.0f);  /* masked row: no gradient */
    float w0[2] = {0, 0};
    EXPECT(obj_token_xent(logits, tg, w0, B, T, V, V, 1.0f, dl, NULL) == 0.0);
    int32_t bad[2] = {2, 3};
    EXPECT(isnan(obj_token_xent(logits, bad, NULL, B, T, V, V, 1.0f, NULL, NULL)));
}

typedef struct { float *logits; int32_t *tg; float *w; int B, T, V, Vp; } xent_ctx;
static double xent_f(void *c) {
    xent_ctx *x = c;
    return obj_token_xent(x->logits, x->tg, x->w, x->B, x->T, x->V, x->Vp, 1.0f, NULL, NULL);
}
static double ent_f(void *c) {
    xent_ctx *x = c;
    return obj_entropy(x->logits, x->w, x->B, x->T, x->V, x->Vp, 1.0f, NULL, NULL);
}

TEST(xent_entropy_finite_differences_and_accumulation) {
    enum { B = 2, T = 3, V = 9, Vp = 12, n = B * T * Vp };
    rl_rng r; rl_rng_seed(&r, 1);
    float logits[n], g[n], g2[n], w[B * T] = {1, 1, 0, 0.5f, 1, 2};
    int32_t tg[B * T] = {0, 8, 3, 4, -1, 2};
    randn(&r, logits, n, 2.0);
    xent_ctx c = {logits, tg, w, B, T, V, Vp};
    for (int i = 0; i < n; i++) g[i] = 0.0f;
    obj_token_xent(logits, tg, w, B, T, V, Vp, 1.0f, g, NULL);
    EXPECT(fd_max_err(xent_f, &c, logits, n, g, 1e-3) < 2e-4);
    /* accumulation: a second call with dloss 0.5 adds half the gradient again */
    for (int i = 0; i < n; i++) g2[i] = g[i];
    obj_token_xent(logits, tg, w, B, T, V, Vp, 0.5f, g2, NULL);
    for (int i = 0; i < n; i++) EXPECT_NEAR(g2[i], 1.5 * g[i], 1e-7);
    for (int i = 0; i < n; i++) g[i] = 0.0f;
    obj_entropy(logits, w, B, T, V, Vp, 1.0f, g, NULL);
    EXPECT(fd_max_err(ent_f, &c, logits, n, g, 1e-3) < 2e-4);
    for (int i = 0; i < B * T; i++) EXPECT(g[i * Vp + V] == 0.0f && g[i * Vp + Vp - 1] == 0.0f);
}

TEST(entropy_uniform_is_log_v_and_peaked_is_zero) {
    float z[2 * 5] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 500};
    float ent[2], g[10] = {0};
    double H = obj_entropy(z, NULL, 1, 2, 5, 5, 1.0f, g, ent);
    EXPECT_NEAR(ent[0], log(5.0), 1e-6);
    EXPECT_NEAR(ent[1], 0.0, 1e-6);
    EXPECT_NEAR(H, 0.5 * log(5.0), 1e-6);
    for (int v = 0; v < 5; v++) EXPECT_NEAR(g[v], 0.0, 1e-7);  /* uniform is a maximum */
}

TEST(logprobs_match_xent_and_backward_by_fd) {
    enum { B = 2, T = 2, V = 6, n = B * T * V };
    rl_rng r; rl_rng_seed(&r, 2);
    float logits[n], lp[B * T], g[n] = {0};
    int32_t tg[B * T] = {1, 5, 0, 3};
    randn(&r, logits, n, 3.0);
    obj_token_logprobs(logits, tg, B, T, V, V, lp);
    float per[B * T];
    obj_token_xent(logits, tg, NULL, B, T, V, V, 1.0f, NULL, per);
    for (int i = 0; i < B * T; i++) EXPECT_NEAR(lp[i], -per[i], 1e-6);
    /* d(sum_t logp)/dz = -d(sum_t xent)/dz * BT */
    float ones[B * T] = {1, 1, 1, 1}, gx[n] = {0};
    obj_token_logprobs_backward(logits, tg, ones, B, T, V, V, g);
    obj_token_xent(logits, tg, NULL, B, T, V, V, -(float)(B * T), gx, NULL);
    for (int i = 0; i < n; i++) EXPECT_NEAR(g[i], gx[i], 1e-6);
}

TEST(logits_kernels_deterministic_across_threads) {
#if defined(_OPENMP)
    enum { B = 8, T = 33, V = 101, n = B * T * V };
    static float logits[n];
    static int32_t tg[B * T];
    rl_rng r; rl_rng_seed(&r, 3);
    randn(&r, logits, n, 2.0);
    for (int i = 0; i < B * T; i++) tg[i] = (int32_t)rl_rng_below(&r, V);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double a = obj_token_xent(logits, tg, NULL, B, T, V, V, 1.0f, NULL, NULL);
    double ea = obj_entropy(logits, NULL, B, T, V, V, 1.0f, NULL, NULL);
    omp_set_num_threads(3);
    double b = obj_token_xent(logits, tg, NULL, B, T, V, V, 1.0f, NULL, NULL);
    double eb = obj_entropy(logits, NULL, B, T, V, V, 1.0f, NULL, NULL);
    omp_set_num_threads(saved);
    EXPECT(a == b);
    EXPECT(ea == eb);
#endif
}

TEST(seq_logprobs) {
    float lp[6] = {-1, -2, -3, -4, -5, -6}, m[6] = {0, 1, 1, 1, 1, 0}, s[2], len[2], d[6];
    obj_seq_logprobs(lp, m, 2, 3, s, len);
    EXPECT_NEAR(s[0], -5, 0); EXPECT_NEAR(s[1], -9, 0);
    EXPECT_NEAR(len[0], 2, 0); EXPECT_NEAR(len[1], 2, 0);
    float ds[2] = {0.5f, -1};
    obj_seq_logprobs_backward(ds, m, 2, 3, d);
    EXPECT(d[0] == 0 && d[1] == 0.5f && d[3] == -1 && d[5] == 0);
}

/* ---- reward models -------------------------------------------------------- */

TEST(bt_hand_values) {
    float rc[3] = {0, 2, -10000}, rr[3] = {0, 1, 10000}, dc[3], dr[3];
    double L = obj_bt_loss(rc, rr, NULL, NULL, 1, 0.0, dc, dr);
    EXPECT_NEAR(L, log(2.0), 1e-15);
    EXPECT_NEAR(dc[0], -0.5, 1e-7); EXPECT_NEAR(dr[0], 0.5, 1e-7);
    float m[1] = {1};
    EXPECT_NEAR(obj_bt_loss(rc + 1, rr + 1, m, NULL, 1, 0.0, NULL, NULL), log(2.0), 1e-15); /* margin eats the gap */
    L = obj_bt_loss(rc + 2, rr + 2, NULL, NULL, 1, 0.0, dc, dr);
    EXPECT_NEAR(L, 20000.0, 1e-9);  /* finite, exact: no log(0) */
    EXPECT_NEAR(dc[0], -1.0, 1e-7);
    float w[3] = {0, 0, 0};
    EXPECT(obj_bt_loss(rc, rr, NULL, w, 3, 0.0, dc, dr) == 0.0 && dc[2] == 0.0f);
    EXPECT_NEAR(obj_pair_accuracy(rc, rr, NULL, 3), (0.5 + 1 + 0) / 3, 1e-15);
}

typedef struct { float *a, *b, *m, *w; int8_t *lab; int32_t *rank; int n, K, top; double c, nu; } rm_ctx;
static double bt_f(void *p) { rm_ctx *c = p; return obj_bt_loss(c->a, c->b, c->m, c->w, c->n, c->c, NULL, NULL); }
static double dav_f(void *p) { rm_ctx *c = p; return obj_davidson_loss(c->a, c->b, c->lab, c->w, c->n, c->nu, NULL, NULL, NULL); }
static double rank_f(void *p) { rm_ctx *c = p; return obj_rank_pairs_loss(c->a, c->rank, c->w, c->n, c->K, NULL); }
static double pl_f(void *p) { rm_ctx *c = p; return obj_plackett_luce_loss(c->a, c->rank, c->w, c->n, c->K, c->top, NULL); }
static double th_f(void *p) { rm_ctx *c = p; return obj_thumbs_loss(c->a, c->b, c->w, c->n, c->c, NULL, NULL); }

TEST(reward_losses_finite_differences) {
    enum { n = 12, P = 3, K = 5 };
    rl_rng r; rl_rng_seed(&r, 4);
    float a[n], b[n], m[n], w[n], da[n], db[n], y[n];
    int8_t lab[n];
    randn(&r, a, n, 2.0); randn(&r, b, n, 2.0);
    for (int i = 0; i < n; i++) {
        m[i] = rl_rng_uniform(&r); w[i] = 2 * rl_rng_uniform(&r);
        lab[i] = (int8_t)((int)rl_rng_below(&r, 3) - 1); y[i] = rl_rng_uniform(&r);
    }
    rm_ctx c = {a, b, m, w, lab, NULL, n, 0, 0, 0.01, 0.7};
    obj_bt_loss(a, b, m, w, n, 0.01, da, db);
    EXPECT(fd_max_err(bt_f, &c, a, n, da, 1e-3) < 1e-4);
    EXPECT(fd_max_err(bt_f, &c, b, n, db, 1e-3) < 1e-4);
    double dlognu;
    obj_davidson_loss(a, b, lab, w, n, 0.7, da, db, &dlognu);
    EXPECT(fd_max_err(dav_f, &c, a, n, da, 1e-3) < 1e-4);
    EXPECT(fd_max_err(dav_f, &c, b, n, db, 1e-3) < 1e-4);
    double h = 1e-5;
    c.nu = 0.7 * exp(h); double lp = dav_f(&c);
    c.nu = 0.7 * exp(-h); double lm = dav_f(&c);
    c.nu = 0.7;
    EXPECT_NEAR((lp - lm) / (2 * h), dlognu, 1e-7);
    c.c = 0.3;
    double dbias;
    obj_thumbs_loss(a, y, w, n, 0.3, da, &dbias);
    c.b = y;
    EXPECT(fd_max_err(th_f, &c, a, n, da, 1e-3) < 1e-4);
    /* rankings: P prompts of K, with a tie and an absent response */
    float rw[P * K], d[P * K];
    int32_t rank[P * K] = {0, 1, 2, 3, 4,  2, 0, 0, 1, -1,  4, 3, 2, 1, 0};
    randn(&r, rw, P * K, 1.5);
    rm_ctx rc = {rw, NULL, NULL, w, NULL, rank, P, K, 0, 0, 0};
    obj_rank_pairs_loss(rw, rank, w, P, K, d);
    EXPECT(fd_max_err(rank_f, &rc, rw, P * K, d, 1e-3) < 1e-4);
    EXPECT(d[4 + K] == 0.0f);
    for (int top = 0; top <= 2; top++) {
        rc.top = top;
        obj_plackett_luce_loss(rw, rank, w, P, K, top, d);
        EXPECT(fd_max_err(pl_f, &rc, rw, P * K, d, 1e-3) < 1e-4);
    }
}

TEST(ranking_k2_and_pl_k2_equal_bt) {
    float r[4] = {0.3f, -1.2f, 2.0f, 2.5f};
    int32_t rank[4] = {0, 1, 1, 0};
    float rc[2] = {0.3f, 2.5f}, rr[2] = {-1.2f, 2.0f};
    double bt = obj_bt_loss(rc, rr, NULL, NULL, 2, 0, NULL, NULL);
    EXPECT_NEAR(obj_rank_pairs_loss(r, rank, NULL, 2, 2, NULL), bt, 1e-12);
    EXPECT_NEAR(obj_plackett_luce_loss(r, rank, NULL, 2, 2, 0, NULL), bt, 1e-12);
    /* K=3 ranking = mean of its 3 pairs */
    float r3[3] = {1, 0, -1};
    int32_t k3[3] = {0, 1, 2};
    double want = (obj_softplus(-1) + obj_softplus(-2) + obj_softplus(-1)) / 3;
    EXPECT_NEAR(obj_rank_pairs_loss(r3, k3, NULL, 1, 3, NULL), want, 1e-12);
    /* PL K=3: [lse(1,0,-1) - 1 + lse(0,-1) - 0] / 2 */
    double pl = (log(exp(1) + 1 + exp(-1)) - 1 + log(1 + exp(-1))) / 2;
    EXPECT_NEAR(obj_plackett_luce_loss(r3, k3, NULL, 1, 3, 0, NULL), pl, 1e-12);
    /* all tied: no pair, loss 0, gradient 0 */
    int32_t tied[3] = {0, 0, 0};
    float d[3];
    EXPECT(obj_rank_pairs_loss(r3, tied, NULL, 1, 3, d) == 0.0 && d[0] == 0.0f);
}

TEST(davidson_ties) {
    float a[1] = {0.4f}, b[1] = {0.4f}, da[1], db[1];
    int8_t tie[1] = {0}, win[1] = {1};
    double nu = 0.5;
    /* at d = 0: P(tie) = ν/(2+ν), P(win) = 1/(2+ν) */
    EXPECT_NEAR(obj_davidson_loss(a, b, tie, NULL, 1, nu, da, db, NULL), -log(nu / (2 + nu)), 1e-12);
    EXPECT_NEAR(da[0], 0.0, 1e-9);   /* ties are most likely at d = 0: stationary */
    EXPECT_NEAR(obj_davidson_loss(a, b, win, NULL, 1, nu, NULL, NULL, NULL), log(2 + nu), 1e-12);
    /* a tie pulls rewards together */
    a[0] = 1.0f;
    obj_davidson_loss(a, b, tie, NULL, 1, nu, da, db, NULL);
    EXPECT(da[0] > 0 && db[0] < 0);
    /* ν → 0 recovers Bradley–Terry for wins */
    EXPECT_NEAR(obj_davidson_loss(a, b, win, NULL, 1, 1e-12, NULL, NULL, NULL),
                obj_softplus(-(1.0 - 0.4f)), 1e-9);
}

TEST(thumbs_and_ece) {
    float r[2] = {0, 0}, y[2] = {1, 0}, d[2];
    double db;
    EXPECT_NEAR(obj_thumbs_loss(r, y, NULL, 2, 0.0, d, &db), log(2.0), 1e-15);
    EXPECT_NEAR(d[0], -0.25, 1e-7); EXPECT_NEAR(d[1], 0.25, 1e-7); EXPECT_NEAR(db, 0.0, 1e-15);
    /* perfectly calibrated bins give ECE 0; constant over-confidence gives its gap */
    float p[4] = {0.25f, 0.25f, 0.25f, 0.25f}, lab[4] = {1, 0, 0, 0};
    EXPECT_NEAR(obj_ece(p, lab, NULL, 4, 10, NULL, NULL, NULL), 0.0, 1e-7);
    float p2[2] = {0.9f, 0.9f}, l2[2] = {1, 0};
    EXPECT_NEAR(obj_ece(p2, l2, NULL, 2, 10, NULL, NULL, NULL), 0.4, 1e-7);
    /* pairwise: σ(ln 3) = 0.75 confident, right once and wrong once -> |0.5 - 0.75| */
    float rc[2] = {(float)log(3.0), 0}, rr[2] = {0, (float)log(3.0)};
    float rcw[2] = {(float)log(3.0), (float)log(3.0)};
    EXPECT_NEAR(obj_pair_ece(rcw, rr + 0, NULL, 1, 10, NULL, NULL, NULL), 0.25, 1e-6);
    EXPECT_NEAR(obj_pair_ece(rc, rr, NULL, 2, 10, NULL, NULL, NULL), 0.25, 1e-6);
    (void)rcw;
}

/* ---- direct preference ---------------------------------------------------- */

TEST(dpo_at_h0_is_log2) {
    float pc[1] = {-10}, pr[1] = {-12}, rc[1] = {-10}, rr[1] = {-12}, dc[1], dr[1];
    obj_pref_batch b = {pc, pr, rc, rr, NULL, NULL, NULL, 1};
    obj_pref_stats st;
    double beta = 0.1;
    EXPECT_NEAR(obj_dpo_loss(&b, OBJ_DPO_SIGMOID, beta, 0.0, 0, dc, dr, &st), log(2.0), 1e-15);
    EXPECT_NEAR(dc[0], -beta / 2, 1e-8); EXPECT_NEAR(dr[0], beta / 2, 1e-8);
    EXPECT_NEAR(st.margin, 0.0, 0); EXPECT_NEAR(st.accuracy, 0.0, 0);
    /* cDPO: also log 2 at h = 0 (both terms are log 2) */
    EXPECT_NEAR(obj_dpo_loss(&b, OBJ_DPO_SIGMOID, beta, 0.2, 0, NULL, NULL, NULL), log(2.0), 1e-15);
    /* IPO at h = 0: (1/(2τ))^2 */
    EXPECT_NEAR(obj_dpo_loss(&b, OBJ_DPO_IPO, beta, 0.0, 0, dc, dr, NULL), 25.0, 1e-12);
    EXPECT_NEAR(dc[0], -10.0, 1e-6);
}

TEST(cdpo_stationary_at_flip_rate) {
    /* The gradient of cDPO is zero where σ(βh) = 1 - ε. */
    double beta = 0.5, eps = 0.2, h = log((1 - eps) / eps) / beta;
    float pc[1] = {(float)h}, pr[1] = {0}, z[1] = {0}, dc[1];
    obj_pref_batch b = {pc, pr, z, z, NULL, NULL, NULL, 1};
    obj_dpo_loss(&b, OBJ_DPO_SIGMOID, beta, eps, 0, dc, NULL, NULL);
    EXPECT_NEAR(dc[0], 0.0, 1e-7);
    /* robust DPO at ε = 0 is DPO */
    EXPECT_NEAR(obj_dpo_loss(&b, OBJ_DPO_ROBUST, beta, 0.0, 0, NULL, NULL, NULL),
                obj_dpo_loss(&b, OBJ_DPO_SIGMOID, beta, 0.0, 0, NULL, NULL, NULL), 1e-15);
    /* DPO stays finite for huge margins */
    pc[0] = -5000;
    double L = obj_dpo_loss(&b, OBJ_DPO_SIGMOID, beta, 0.0, 0, dc, NULL, NULL);
    EXPECT_NEAR(L, 2500.0, 1e-9);
    EXPECT_NEAR(dc[0], -beta, 1e-7);
}

typedef struct { obj_pref_batch b; int kind; double beta, eps, gamma; float *pol, *ref; uint8_t *des; double z0; } pref_ctx;
static double pref_f(void *p) {
    pref_ctx *c = p;
    switch (c->kind) {
    case 0: return obj_dpo_loss(&c->b, OBJ_DPO_SIGMOID, c->beta, c->eps, 0, NULL, NULL, NULL);
    case 1: return obj_dpo_loss(&c->b, OBJ_DPO_ROBUST, c->beta, c->eps, 0, NULL, NULL, NULL);
    case 2: return obj_dpo_loss(&c->b, OBJ_DPO_IPO, c->beta, 0, 1, NULL, NULL, NULL);
    case 3: return obj_orpo_loss(&c->b, c->beta, NULL, NULL, NULL);
    case 4: return obj_simpo_loss(&c->b, c->beta, c->gamma, NULL, NULL, NULL);
    default: return obj_kto_loss(c->pol, c->ref, c->des, c->b.weight, c->b.N, c->beta, c->z0, 1.33, 1.0, NULL, NULL);
    }
}

TEST(preference_losses_finite_differences) {
    enum { n = 10 };
    rl_rng r; rl_rng_seed(&r, 5);
    float pc[n], pr[n], rc[n], rr[n], lc[n], lr[n], w[n], dc[n], dr[n];
    uint8_t des[n];
    for (int i = 0; i < n; i++) {
        lc[i] = (float)(1 + rl_rng_below(&r, 20)); lr[i] = (float)(1 + rl_rng_below(&r, 20));
        pc[i] = -lc[i] * (0.2f + 2 * rl_rng_uniform(&r)); pr[i] = -lr[i] * (0.2f + 2 * rl_rng_uniform(&r));
        rc[i] = pc[i] + rl_rng_normal(&r); rr[i] = pr[i] + rl_rng_normal(&r);
        w[i] = 2 * rl_rng_uniform(&r); des[i] = (uint8_t)(i & 1);
    }
    pref_ctx c = {{pc, pr, rc, rr, lc, lr, w, n}, 0, 0.5, 0.1, 1.0, pc, rc, des, 0.3};
    const double betas[6] = {0.5, 0.5, 0.5, 0.2, 2.0, 0.7};
    for (int k = 0; k <= 4; k++) {
        c.kind = k; c.beta = betas[k];
        pref_f(&c);
        switch (k) {
        case 0: obj_dpo_loss(&c.b, OBJ_DPO_SIGMOID, c.beta, c.eps, 0, dc, dr, NULL); break;
        case 1: obj_dpo_loss(&c.b, OBJ_DPO_ROBUST, c.beta, c.eps, 0, dc, dr, NULL); break;
        case 2: obj_dpo_loss(&c.b, OBJ_DPO_IPO, c.beta, 0, 1, dc, dr, NULL); break;
        case 3: obj_orpo_loss(&c.b, c.beta, dc, dr, NULL); break;
        case 4: obj_simpo_loss(&c.b, c.beta, c.gamma, dc, dr, NULL); break;
        }
        EXPECT_MSG(fd_max_err(pref_f, &c, pc, n, dc, 1e-3) < 2e-4, "kind %d chosen", k);
        EXPECT_MSG(fd_max_err(pref_f, &c, pr, n, dr, 1e-3) < 2e-4, "kind %d rejected", k);
    }
    c.kind = 5; c.beta = betas[5];
    obj_kto_loss(pc, rc, des, w, n, c.beta, c.z0, 1.33, 1.0, dc, NULL);
    EXPECT(fd_max_err(pref_f, &c, pc, n, dc, 1e-3) < 2e-4);
}

TEST(kto_clamp_and_values) {
    float pm[3] = {-10, -20, -30}, rm[3] = {-9, -19, -29};  /* policy below reference: mean -1 */
    EXPECT(obj_kto_kl_estimate(pm, rm, 3) == 0.0);
    float rm2[3] = {-11, -21, -31};
    EXPECT_NEAR(obj_kto_kl_estimate(pm, rm2, 3), 1.0, 1e-12);
    EXPECT(obj_kto_kl_estimate(pm, rm, 0) == 0.0);
    /* r = z0: each loss is λ(1 - σ(0)) = λ/2 */
    float pol[2] = {-5, -5}, ref[2] = {-6, -6}, d[2];
    uint8_t des[2] = {1, 0};
    obj_pref_stats st;
    double L = obj_kto_loss(pol, ref, des, NULL, 2, 0.1, 1.0, 2.0, 1.0, d, &st);
    EXPECT_NEAR(L, (2.0 * 0.5 + 1.0 * 0.5) / 2, 1e-12);
    EXPECT_NEAR(d[0], -2.0 * 0.1 * 0.25 / 2, 1e-9);   /* desirable: raise its log-ratio */
    EXPECT_NEAR(d[1], 1.0 * 0.1 * 0.25 / 2, 1e-9);    /* undesirable: lower it */
    EXPECT_NEAR(st.reward_chosen, 0.1, 1e-7);
}

TEST(orpo_simpo_hand_values) {
    /* equal mean log-probs: log odds difference 0 -> OR = log σ(0) = -log 2 */
    float pc[1] = {-4}, pr[1] = {-8}, lc[1] = {2}, lr[1] = {4};
    obj_pref_batch b = {pc, pr, NULL, NULL, lc, lr, NULL, 1};
    obj_pref_stats st;
    double L = obj_orpo_loss(&b, 0.1, NULL, NULL, &st);
    EXPECT_NEAR(st.nll, 2.0, 1e-12);
    EXPECT_NEAR(L, 2.0 + 0.1 * log(2.0), 1e-12);
    /* SimPO: β(-2) - β(-2) - γ */
    EXPECT_NEAR(obj_simpo_loss(&b, 2.0, 1.0, NULL, NULL, NULL), obj_softplus(1.0), 1e-12);
}

/* ---- online RL ------------------------------------------------------------ */

TEST(kl_estimators) {
    float lp[4] = {-1, -2, -0.5f, -3}, ref[4] = {-1, -1, -2, -3.5f}, k[4], d[4];
    obj_kl_per_token(lp, ref, 4, OBJ_KL_K3, k, d);
    EXPECT(k[0] == 0.0f && d[0] == 0.0f);
    for (int i = 0; i < 4; i++) EXPECT(k[i] >= 0.0f);
    /* x = logp - ref = -1: e^1 - 1 - 1 */
    EXPECT_NEAR(k[1], exp(1.0) - 2.0, 1e-6);
    obj_kl_per_token(lp, ref, 4, OBJ_KL_K1, k, d);
    EXPECT_NEAR(k[1], -1.0, 0); EXPECT_NEAR(d[1], 1.0, 0);
}

TEST(shape_rewards_last_token_and_clip) {
    float score[2] = {5, -0.5f}, kl[6] = {1, 2, 3, 1, 1, 1}, m[6] = {1, 1, 0, 0, 1, 1}, r[6];
    obj_shape_rewards(score, kl, m, 2, 3, 0.1, 2.0, r);
    EXPECT_NEAR(r[0], -0.1, 1e-7);
    EXPECT_NEAR(r[1], -0.2 + 2.0, 1e-6);   /* score clipped to 2 at the last masked token */
    EXPECT(r[2] == 0.0f && r[3] == 0.0f);
    EXPECT_NEAR(r[5], -0.1 - 0.5, 1e-6);
    float x[3] = {-5, 0.5f, 9};
    obj_clip_values(x, 3, 1.0);
    EXPECT(x[0] == -1.0f && x[1] == 0.5f && x[2] == 1.0f);
}

TEST(gae_hand_values) {
    /* γ = λ = 1: A_t = sum_{s>=t} r_s - V_t (Monte Carlo), R_t = return-to-go */
    float r[4] = {1, 0, 2, 99}, v[4] = {0.5f, 1, -1, 99}, m[4] = {1, 1, 1, 0}, a[4], ret[4];
    obj_gae(r, v, m, 1, 4, 1.0, 1.0, a, ret);
    EXPECT_NEAR(a[0], 3 - 0.5, 1e-6); EXPECT_NEAR(a[1], 2 - 1, 1e-6); EXPECT_NEAR(a[2], 2 + 1, 1e-6);
    EXPECT_NEAR(ret[0], 3, 1e-6); EXPECT(a[3] == 0.0f && ret[3] == 0.0f);
    /* λ = 0: one-step TD, δ_t */
    obj_gae(r, v, m, 1, 4, 0.9, 0.0, a, ret);
    EXPECT_NEAR(a[0], 1 + 0.9 * 1 - 0.5, 1e-6);
    EXPECT_NEAR(a[2], 2 - (-1), 1e-6);
    /* a masked gap is transparent: same as the compacted row */
    float r2[5] = {1, 7, 0, 2, 0}, v2[5] = {0.5f, 7, 1, -1, 0}, m2[5] = {1, 0, 1, 1, 0}, a2[5], ret2[5];
    obj_gae(r2, v2, m2, 1, 5, 0.95, 0.9, a2, ret2);
    float rc[3] = {1, 0, 2}, vc[3] = {0.5f, 1, -1}, ac[3], retc[3];
    obj_gae(rc, vc, NULL, 1, 3, 0.95, 0.9, ac, retc);
    EXPECT_NEAR(a2[0], ac[0], 1e-7); EXPECT_NEAR(a2[2], ac[1], 1e-7); EXPECT_NEAR(a2[3], ac[2], 1e-7);
    EXPECT(a2[1] == 0.0f);
}

TEST(whiten) {
    float x[5] = {1, 2, 3, 4, 100}, m[5] = {1, 1, 1, 1, 0}, o[5];
    double sd = obj_whiten(x, m, 5, 1, o);
    EXPECT_NEAR(sd, sqrt(5.0 / 3.0), 1e-12);       /* unbiased std of 1..4 */
    double s = 0, q = 0;
    for (int i = 0; i < 4; i++) { s += o[i]; q += o[i] * o[i]; }
    EXPECT_NEAR(s, 0.0, 1e-6); EXPECT_NEAR(q / 3, 1.0, 1e-6);
    EXPECT(o[4] == 0.0f);
    obj_whiten(x, m, 5, 0, o);
    EXPECT_NEAR(o[0], 2.5 + (1 - 2.5) / sqrt(5.0 / 3.0), 1e-6);
}

typedef struct { float *lp, *old, *ref, *adv, *mask; int B, T, grpo; obj_agg agg; double beta; } pg_ctx;
static double pg_f(void *p) {
    pg_ctx *c = p;
    return (c->grpo ? obj_grpo_loss : obj_ppo_policy_loss)(c->lp, c->old, c->ref, c->adv, c->mask, c->B, c->T,
                                                           0.2, 0.28, c->beta, c->agg, NULL, NULL);
}

TEST(policy_losses_finite_differences) {
    enum { B = 4, T = 6, n = B * T };
    rl_rng r; rl_rng_seed(&r, 6);
    float lp[n], old[n], ref[n], adv[n], m[n], d[n];
    for (int i = 0; i < n; i++) {
        lp[i] = -2 * rl_rng_uniform(&r) - 0.05f;
        /* keep ρ away from the clip edges, where the loss has a kink */
        float dl = (float)(rl_rng_normal(&r) * 0.4);
        if (fabsf(expf(dl) - 0.8f) < 0.02f || fabsf(expf(dl) - 1.28f) < 0.02f) dl = 0.0f;
        old[i] = lp[i] - dl;
        ref[i] = lp[i] + (float)(rl_rng_normal(&r) * 0.3);
        adv[i] = rl_rng_normal(&r);
        m[i] = (i % T) < 1 + (i / T) ? 1.0f : 0.0f;
    }
    for (int grpo = 0; grpo <= 1; grpo++)
        for (int agg = 0; agg <= 2; agg++) {
            pg_ctx c = {lp, old, ref, adv, m, B, T, grpo, (obj_agg)agg, grpo ? 0.04 : 0.0};
            (grpo ? obj_grpo_loss : obj_ppo_policy_loss)(lp, old, ref, adv, m, B, T, 0.2, 0.28, c.beta,
                                                         (obj_agg)agg, d, NULL);
            EXPECT_MSG(fd_max_err(pg_f, &c, lp, n, d, 1e-4) < 1e-3, "grpo %d agg %d", grpo, agg);
        }
}

TEST(ppo_on_policy_values) {
    /* ρ = 1: loss = -mean(A), gradient = -A/M, nothing clipped, approx KL 0 */
    float lp[3] = {-1, -2, -3}, adv[3] = {1, -2, 0.5f}, d[3];
    obj_pg_stats st;
    double L = obj_ppo_policy_loss(lp, lp, NULL, adv, NULL, 1, 3, 0.2, 0.2, 0.0, OBJ_AGG_TOKEN, d, &st);
    EXPECT_NEAR(L, 0.5 / 3, 1e-12);
    EXPECT_NEAR(d[1], 2.0 / 3, 1e-7);
    EXPECT(st.clipfrac == 0.0 && st.approx_kl == 0.0);
    EXPECT_NEAR(st.ratio_mean, 1.0, 1e-15);
    /* ρ = e > 1 + ε with A > 0: clipped, flat */
    float old[1] = {-2}, lp1[1] = {-1}, a1[1] = {1}, d1[1];
    L = obj_ppo_policy_loss(lp1, old, NULL, a1, NULL, 1, 1, 0.2, 0.2, 0.0, OBJ_AGG_TOKEN, d1, &st);
    EXPECT_NEAR(L, -1.2, 1e-12); EXPECT(d1[0] == 0.0f); EXPECT(st.clipfrac == 1.0);
    EXPECT_NEAR(st.approx_kl, 0.5, 1e-12);
}

TEST(value_loss_and_explained_variance) {
    float v[3] = {1, 2, 0}, old[3] = {1, 1, 0}, ret[3] = {0, 3, 0.5f}, d[3];
    obj_vf_stats st;
    /* V=2, old 1, clip 0.5 -> Vc = 1.5; (1.5-3)^2 = 2.25 > (2-3)^2: clipped branch, flat */
    double L = obj_value_loss(v, old, ret, NULL, 3, 0.5, d, &st);
    EXPECT_NEAR(L, 0.5 * (1.0 + 2.25 + 0.25) / 3, 1e-7);
    EXPECT(d[1] == 0.0f);
    EXPECT_NEAR(d[0], 2.0 * 1 * 0.5 / 3, 1e-7);
    EXPECT_NEAR(st.clipfrac, 1.0 / 3, 1e-12);
    float same[3] = {0, 3, 0.5f};
    EXPECT_NEAR(obj_explained_variance(same, ret, NULL, 3), 1.0, 1e-12);
    float zero[3] = {0, 0, 0};
    EXPECT_NEAR(obj_explained_variance(zero, ret, NULL, 3), 0.0, 1e-12);
}

TEST(rloo_grpo_advantages) {
    enum { P = 3, K = 5 };
    rl_rng r; rl_rng_seed(&r, 7);
    float rw[P * K], a[P * K];
    randn(&r, rw, P * K, 3.0);
    obj_rloo_advantages(rw, P, K, a);
    for (int p = 0; p < P; p++) {
        double s = 0;
        for (int i = 0; i < K; i++) s += a[p * K + i];
        EXPECT_NEAR(s, 0.0, 1e-5);   /* leave-one-out advantages sum to 0 */
    }
    /* A_i = K/(K-1) (r_i - mean) */
    double mean0 = 0;
    for (int i = 0; i < K; i++) mean0 += rw[i] / K;
    EXPECT_NEAR(a[2], K / (K - 1.0) * (rw[2] - mean0), 1e-5);
    obj_grpo_advantages(rw, P, K, 1, 0.0, a);
    double s = 0, q = 0;
    for (int i = 0; i < K; i++) { s += a[i]; q += a[i] * a[i]; }
    EXPECT_NEAR(s, 0.0, 1e-5); EXPECT_NEAR(q / (K - 1), 1.0, 1e-5);
    float same[2] = {3, 3}, a2[2];
    obj_grpo_advantages(same, 1, 2, 1, 1e-4, a2);
    EXPECT(a2[0] == 0.0f && a2[1] == 0.0f);
}

TEST(kl_controller_and_bon) {
    obj_kl_ctl c = {0.15, 6.0, 10000.0, 1};
    EXPECT_NEAR(obj_kl_ctl_update(&c, 600.0, 100), 0.15 * (1 + 0.2 * 0.01), 1e-15);  /* e clipped at 0.2 */
    double b = c.beta;
    EXPECT_NEAR(obj_kl_ctl_update(&c, 0.0, 100), b * (1 - 0.2 * 0.01), 1e-15);
    b = c.beta;
    EXPECT_NEAR(obj_kl_ctl_update(&c, 6.6, 1000), b * (1 + 0.1 * 0.1), 1e-15);
    obj_kl_ctl f = {0.05, 6, 10000, 0};
    EXPECT(obj_kl_ctl_update(&f, 100, 1000) == 0.05);
    EXPECT(obj_bon_kl(1) == 0.0);
    EXPECT_NEAR(obj_bon_kl(2), log(2.0) - 0.5, 1e-15);
    EXPECT_NEAR(obj_bon_kl(64), log(64.0) - 63.0 / 64, 1e-15);
}

TEST_MAIN()
