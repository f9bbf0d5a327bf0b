/* test_ops.c — every op of both tables: finite-difference check of its backward,
 * and fast == ref on the forward and backward (random shapes that are not
 * multiples of the vector width).
 *
 * Finite differences run in float32 on L = sum(out * R) for a random R, with
 * central differences (eps 1e-2 for smooth ops); tolerance |num - ana| <=
 * 2e-2 * max(|num|, |ana|) + 2e-3, on up to 48 sampled coordinates per input. */
#include "test.h"
#include "../../src/kernels/ops.h"
#include "../../src/base/rng.h"

static rl_rng rng;
static float *randn(size_t n, float std) {
    float *p = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) p[i] = std * rl_rng_normal(&rng);
    return p;
}
static float *zeros(size_t n) { return calloc(n + 1, sizeof(float)); }
static double dotf(const float *a, const float *b, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i]; return s; }

/* loss(ctx) evaluates the forward; x is perturbed in place. */
typedef double (*loss_fn)(void *ctx);
static int fd_check(const char *what, float *x, size_t n, const float *grad, loss_fn f, void *ctx, float eps) {
    int bad = 0;
    size_t step = n > 48 ? n / 48 : 1;
    for (size_t i = 0; i < n; i += step) {
        float old = x[i];
        x[i] = old + eps; double lp = f(ctx);
        x[i] = old - eps; double lm = f(ctx);
        x[i] = old;
        double num = (lp - lm) / (2.0 * eps), ana = grad[i];
        double tol = 2e-2 * fmax(fabs(num), fabs(ana)) + 2e-3;
        if (fabs(num - ana) > tol) {
            if (bad < 3) fprintf(stderr, "  %s[%zu]: numeric %.6g analytic %.6g\n", what, i, num, ana);
            bad++;
        }
    }
    return bad;
}
static double maxdiff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (d > m) m = d;
    }
    return m;
}

static const char *tables[] = {"ref", "fast"};

/* ---- matmul --------------------------------------------------------------- */
typedef struct { const ops_table *op; float *out, *inp, *w, *bias, *R; int N, C, OC; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    c->op->matmul_forward(c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
    return dotf(c->out, c->R, (size_t)c->N * c->OC);
}
TEST(matmul_grad) {
    for (int k = 0; k < 2; k++) {
        rl_rng_seed(&rng, 1);
        mm_ctx c = {ops_get(tables[k]), 0, 0, 0, 0, 0, 7, 13, 11};
        c.inp = randn(7 * 13, 1); c.w = randn(11 * 13, 1); c.bias = randn(11, 1); c.R = randn(7 * 11, 1); c.out = zeros(7 * 11);
        float *di = zeros(7 * 13), *dw = zeros(11 * 13), *db = zeros(11);
        mm_loss(&c);
        c.op->matmul_backward(di, dw, db, c.R, c.inp, c.w, 7, 13, 11);
        EXPECT(fd_check("matmul dinp", c.inp, 7 * 13, di, mm_loss, &c, 1e-2f) == 0);
        EXPECT(fd_check("matmul dw", c.w, 11 * 13, dw, mm_loss, &c, 1e-2f) == 0);
        EXPECT(fd_check("matmul dbias", c.bias, 11, db, mm_loss, &c, 1e-2f) == 0);
        free(c.inp); free(c.w); free(c.bias); free(c.R); free(c.out); free(di); free(dw); free(db);
    }
}

/* ---- layernorm ------------------------------------------------------------ */
typedef struct { const ops_table *op; float *out, *mean, *rstd, *inp, *w, *b, *R; int N, C; } ln_ctx;
static double ln_loss(void *p) {
    ln_ctx *c = p;
    c->op->layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dotf(c->out, c->R, (size_t)c->N * c->C);
}
TEST(layernorm_grad) {
    for (int k = 0; k < 2; k++) {
        rl_rng_seed(&rng, 2);
        ln_ctx c = {ops_get(tables[k]), 0, 0, 0, 0, 0, 0, 0, 5, 19};
        c.inp = randn(5 * 19, 1); c.w = randn(19, 1); c.b = randn(19, 1); c.R = randn(5 * 19, 1);
        c.out = zeros(5 * 19); c.mean = zeros(5); c.rstd = zeros(5);
        float *di = zeros(5 * 19), *dw = zeros(19), *db = zeros(19);
        ln_loss(&c);
        c.op->layernorm_backward(di, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, 5, 19);
        EXPECT(fd_check("ln dinp", c.inp, 5 * 19, di, ln_loss, &c, 1e-2f) == 0);
        EXPECT(fd_check("ln dw", c.w, 19, dw, ln_loss, &c, 1e-2f) == 0);
        EXPECT(fd_check("ln db", c.b, 19, db, ln_loss, &c, 1e-2f) == 0);
        free(c.inp); free(c.w); free(c.b); free(c.R); free(c.out); free(c.mean); free(c.rstd); free(di); free(dw); free(db);
    }
}

/* ---- attention ------------------------------------------------------------ */
typedef struct { const ops_table *op; float *out, *att, *qkv, *R; int B, T, C, NH; } at_ctx;
static double at_loss(void *p) {
    at_ctx *c = p;
    c->op->attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH);
    return dotf(c->out, c->R, (size_t)c->B * c->T * c->C);
}
TEST(attention_grad) {
    for (int k = 0; k < 2; k++) {
        rl_rng_seed(&rng, 3);
        int B = 2, T = 5, C = 12, NH = 3;
        at_ctx c = {ops_get(tables[k]), 0, 0, 0, 0, B, T, C, NH};
        c.qkv = randn((size_t)B * T * 3 * C, 1); c.R = randn((size_t)B * T * C, 1);
        c.out = zeros((size_t)B * T * C); c.att = zeros((size_t)B * NH * T * T);
        float *dqkv = zeros((size_t)B * T * 3 * C), *datt = zeros((size_t)B * NH * T * T);
        at_loss(&c);
        c.op->attention_backward(dqkv, datt, c.R, c.qkv, c.att, B, T, C, NH);
        EXPECT(fd_check("attention dqkv", c.qkv, (size_t)B * T * 3 * C, dqkv, at_loss, &c, 1e-2f) == 0);
        /* causality: the output at t must not depend on positions > t */
        float *out0 = zeros((size_t)B * T * C);
        memcpy(out0, c.out, sizeof(float) * B * T * C);
        c.qkv[(size_t)(T - 1) * 3 * C + C + 1] += 5.0f; /* key of the last position, batch 0 */
        at_loss(&c);
        EXPECT(maxdiff(c.out, out0, (size_t)(T - 1) * C) == 0.0);
        free(c.qkv); free(c.R); free(c.out); free(c.att); free(dqkv); free(datt); free(out0);
    }
}

/* ---- gelu, residual, encoder ---------------------------------------------- */
typedef struct { const ops_table *op; float *out, *inp, *inp2, *R; int n; } pw_ctx;
static double gelu_loss(void *p) { pw_ctx *c = p; c->op->gelu_forward(c->out, c->inp, c->n); return dotf(c->out, c->R, c->n); }
static double res_loss(void *p) { pw_ctx *c = p; c->op->residual_forward(c->out, c->inp, c->inp2, c->n); return dotf(c->out, c->R, c->n); }
TEST(pointwise_grad) {
    for (int k = 0; k < 2; k++) {
        rl_rng_seed(&rng, 4);
        int n = 37;
        pw_ctx c = {ops_get(tables[k]), zeros(n), randn(n, 2), randn(n, 1), randn(n, 1), n};
        float *d1 = zeros(n), *d2 = zeros(n);
        gelu_loss(&c);
        c.op->gelu_backward(d1, c.inp, c.R, n);
        EXPECT(fd_check("gelu", c.inp, n, d1, gelu_loss, &c, 1e-2f) == 0);
        memset(d1, 0, sizeof(float) * n);
        c.op->residual_backward(d1, d2, c.R, n);
        EXPECT(fd_check("residual a", c.inp, n, d1, res_loss, &c, 1e-2f) == 0);
        EXPECT(fd_check("residual b", c.inp2, n, d2, res_loss, &c, 1e-2f) == 0);
        free(c.out); free(c.inp); free(c.inp2); free(c.R); free(d1); free(d2);
    }
}

typedef struct { const ops_table *op; float *out, *wte, *wpe, *R; const int *inp; int B, T, C; } enc_ctx;
static double enc_loss(void *p) {
    enc_ctx *c = p;
    c->op->encoder_forward(c->out, c->inp, c->wte, c->wpe, c->B, c->T, c->C);
    return dotf(c->out, c->R, (size_t)c->B * c->T * c->C);
}
TEST(encoder_grad) {
    for (int k = 0; k < 2; k++) {
        rl_rng_seed(&rng, 5);
        int B = 2, T = 4, C = 6, V = 5;
        int inp[8] = {1, 3, 1, 0, 4, 4, 2, 1};
        enc_ctx c = {ops_get(tables[k]), zeros(B * T * C), randn(V * C, 1), randn(T * C, 1), randn(B * T * C, 1), inp, B, T, C};
        float *dwte = zeros(V * C), *dwpe = zeros(T * C);
        enc_loss(&c);
        c.op->encoder_backward(dwte, dwpe, c.R, inp, B, T, C);
        EXPECT(fd_check("encoder wte", c.wte, V * C, dwte, enc_loss, &c, 1e-2f) == 0);
        EXPECT(fd_check("encoder wpe", c.wpe, T * C, dwpe, enc_loss, &c, 1e-2f) == 0);
        free(c.out); free(c.wte); free(c.wpe); free(c.R); free(dwte); free(dwpe);
    }
}

/* ---- log-softmax ------------------------------------------------------------ */
typedef struct { const ops_table *op; float *lse, *logp, *logits, *R; const int *tg; int N, V; } ls_ctx;
static double ls_loss(void *p) {
    ls_ctx *c = p;
    c->op->logsoftmax_forward(c->lse, c->logp, c->logits, c->tg, c->N, c->V);
    return dotf(c->logp, c->R, c->N);
}
TEST(logsoftmax_grad) {
    for (int k = 0; k < 2; k++) {
        rl_rng_seed(&rng, 6);
        int N = 5, V = 23, tg[5] = {3, 0, -1, 22, 7};
        ls_ctx c = {ops_get(tables[k]), zeros(N), zeros(N), randn(N * V, 2), randn(N, 1), tg, N, V};
        float *dl = zeros(N * V);
        ls_loss(&c);
        /* logp must equal log softmax at the target */
        double l0 = 0; for (int v = 0; v < V; v++) l0 += exp(c.logits[v]);
        EXPECT_NEAR(c.logp[0], c.logits[3] - log(l0), 1e-5);
        EXPECT(c.logp[2] == 0.0f);
        c.op->logsoftmax_backward(dl, c.logits, c.lse, tg, c.R, N, V);
        EXPECT(fd_check("logsoftmax", c.logits, N * V, dl, ls_loss, &c, 1e-2f) == 0);
        /* in place gives the same */
        ls_loss(&c); /* fd_check left lse from a perturbed input */
        c.op->logsoftmax_backward(dl, c.logits, c.lse, tg, c.R, N, V);
        float *inplace = malloc(sizeof(float) * N * V);
        memcpy(inplace, c.logits, sizeof(float) * N * V);
        c.op->logsoftmax_backward(inplace, inplace, c.lse, tg, c.R, N, V);
        EXPECT(maxdiff(inplace, dl, N * V) == 0.0);
        free(inplace); free(c.lse); free(c.logp); free(c.logits); free(c.R); free(dl);
    }
}

/* ---- fast == ref on realistic shapes ---------------------------------------- */
TEST(fast_matches_ref) {
    const ops_table *r = ops_get("ref"), *f = ops_get("fast");
    rl_rng_seed(&rng, 7);
    int B = 3, T = 17, C = 40, NH = 4, OC = 61, N = B * T, V = 301;
    float *x = randn((size_t)N * C, 1), *w = randn((size_t)OC * C, 0.2f), *bias = randn(OC, 1), *dout = randn((size_t)N * OC, 1);
    float *o1 = zeros((size_t)N * OC), *o2 = zeros((size_t)N * OC);
    r->matmul_forward(o1, x, w, bias, N, C, OC); f->matmul_forward(o2, x, w, bias, N, C, OC);
    EXPECT(maxdiff(o2, o1, (size_t)N * OC) < 1e-5);
    /* few rows: the column-split path */
    r->matmul_forward(o1, x, w, bias, 2, C, OC); f->matmul_forward(o2, x, w, bias, 2, C, OC);
    EXPECT(maxdiff(o2, o1, (size_t)2 * OC) < 1e-5);
    float *di1 = randn((size_t)N * C, 1), *di2 = malloc(sizeof(float) * N * C), *dw1 = randn((size_t)OC * C, 1), *dw2 = malloc(sizeof(float) * OC * C), *db1 = zeros(OC), *db2 = zeros(OC);
    memcpy(di2, di1, sizeof(float) * N * C); memcpy(dw2, dw1, sizeof(float) * OC * C);
    r->matmul_backward(di1, dw1, db1, dout, x, w, N, C, OC); f->matmul_backward(di2, dw2, db2, dout, x, w, N, C, OC);
    EXPECT(maxdiff(di2, di1, (size_t)N * C) < 1e-5);
    EXPECT(maxdiff(dw2, dw1, (size_t)OC * C) < 1e-5);
    EXPECT(maxdiff(db2, db1, OC) < 1e-5);

    float *qkv = randn((size_t)N * 3 * C, 1), *a1 = zeros((size_t)B * NH * T * T), *a2 = zeros((size_t)B * NH * T * T);
    float *y1 = zeros((size_t)N * C), *y2 = zeros((size_t)N * C), *dy = randn((size_t)N * C, 1);
    r->attention_forward(y1, a1, qkv, B, T, C, NH); f->attention_forward(y2, a2, qkv, B, T, C, NH);
    EXPECT(maxdiff(y2, y1, (size_t)N * C) < 1e-5);
    EXPECT(maxdiff(a2, a1, (size_t)B * NH * T * T) < 1e-5);
    float *dq1 = zeros((size_t)N * 3 * C), *dq2 = zeros((size_t)N * 3 * C), *s1 = zeros((size_t)B * NH * T * T), *s2 = zeros((size_t)B * NH * T * T);
    r->attention_backward(dq1, s1, dy, qkv, a1, B, T, C, NH); f->attention_backward(dq2, s2, dy, qkv, a1, B, T, C, NH);
    EXPECT(maxdiff(dq2, dq1, (size_t)N * 3 * C) < 1e-5);

    float *lw = randn(C, 1), *lb = randn(C, 1), *m1 = zeros(N), *m2 = zeros(N), *r1 = zeros(N), *r2 = zeros(N);
    r->layernorm_forward(y1, m1, r1, x, lw, lb, N, C); f->layernorm_forward(y2, m2, r2, x, lw, lb, N, C);
    EXPECT(maxdiff(y2, y1, (size_t)N * C) < 1e-5);
    float *g1 = zeros((size_t)N * C), *g2 = zeros((size_t)N * C), *gw1 = zeros(C), *gw2 = zeros(C), *gb1 = zeros(C), *gb2 = zeros(C);
    r->layernorm_backward(g1, gw1, gb1, dy, x, lw, m1, r1, N, C); f->layernorm_backward(g2, gw2, gb2, dy, x, lw, m1, r1, N, C);
    EXPECT(maxdiff(g2, g1, (size_t)N * C) < 1e-5);
    EXPECT(maxdiff(gw2, gw1, C) < 1e-5);
    EXPECT(maxdiff(gb2, gb1, C) < 1e-5);

    float *gx = randn((size_t)N * C, 3);
    r->gelu_forward(y1, gx, N * C); f->gelu_forward(y2, gx, N * C);
    EXPECT(maxdiff(y2, y1, (size_t)N * C) < 1e-6);
    memset(g1, 0, sizeof(float) * N * C); memset(g2, 0, sizeof(float) * N * C);
    r->gelu_backward(g1, gx, dy, N * C); f->gelu_backward(g2, gx, dy, N * C);
    EXPECT(maxdiff(g2, g1, (size_t)N * C) < 1e-5);

    float *lg = randn((size_t)N * V, 3), *l1 = zeros(N), *l2 = zeros(N), *p1 = zeros(N), *p2 = zeros(N), *dlp = randn(N, 1);
    int *tg = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tg[i] = i % 5 == 4 ? -1 : (int)rl_rng_below(&rng, V);
    r->logsoftmax_forward(l1, p1, lg, tg, N, V); f->logsoftmax_forward(l2, p2, lg, tg, N, V);
    EXPECT(maxdiff(l2, l1, N) < 1e-5);
    EXPECT(maxdiff(p2, p1, N) < 1e-5);
    float *dl1 = zeros((size_t)N * V), *dl2 = zeros((size_t)N * V);
    r->logsoftmax_backward(dl1, lg, l1, tg, dlp, N, V); f->logsoftmax_backward(dl2, lg, l1, tg, dlp, N, V);
    EXPECT(maxdiff(dl2, dl1, (size_t)N * V) < 1e-6);

    int *inp = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) inp[i] = (int)rl_rng_below(&rng, 7);
    float *wte = randn(7 * C, 1), *wpe = randn((size_t)T * C, 1), *e1 = zeros(7 * C), *e2 = zeros(7 * C), *pp1 = zeros((size_t)T * C), *pp2 = zeros((size_t)T * C);
    r->encoder_forward(y1, inp, wte, wpe, B, T, C); f->encoder_forward(y2, inp, wte, wpe, B, T, C);
    EXPECT(maxdiff(y2, y1, (size_t)N * C) == 0.0);
    r->encoder_backward(e1, pp1, dy, inp, B, T, C); f->encoder_backward(e2, pp2, dy, inp, B, T, C);
    EXPECT(maxdiff(e2, e1, 7 * C) < 1e-6);
    EXPECT(maxdiff(pp2, pp1, (size_t)T * C) < 1e-6);

    free(x); free(w); free(bias); free(dout); free(o1); free(o2); free(di1); free(di2); free(dw1); free(dw2); free(db1); free(db2);
    free(qkv); free(a1); free(a2); free(y1); free(y2); free(dy); free(dq1); free(dq2); free(s1); free(s2);
    free(lw); free(lb); free(m1); free(m2); free(r1); free(r2); free(g1); free(g2); free(gw1); free(gw2); free(gb1); free(gb2);
    free(gx); free(lg); free(l1); free(l2); free(p1); free(p2); free(dlp); free(tg); free(dl1); free(dl2);
    free(inp); free(wte); free(wpe); free(e1); free(e2); free(pp1); free(pp2);
}

/* attention over more than one row block of the fast kernel (64 rows) */
TEST(attention_long_sequence_fast_equals_ref) {
    const ops_table *r = ops_get("ref"), *f = ops_get("fast");
    rl_rng_seed(&rng, 11);
    int B = 2, T = 150, C = 16, NH = 2;
    size_t nq = (size_t)B * T * 3 * C, ny = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = randn(nq, 1), *y1 = zeros(ny), *y2 = zeros(ny), *a1 = zeros(na), *a2 = zeros(na), *dy = randn(ny, 1);
    float *d1 = zeros(nq), *d2 = zeros(nq), *s1 = zeros(na), *s2 = zeros(na);
    r->attention_forward(y1, a1, qkv, B, T, C, NH); f->attention_forward(y2, a2, qkv, B, T, C, NH);
    EXPECT(maxdiff(y2, y1, ny) < 1e-5);
    EXPECT(maxdiff(a2, a1, na) < 1e-5);
    r->attention_backward(d1, s1, dy, qkv, a1, B, T, C, NH); f->attention_backward(d2, s2, dy, qkv, a1, B, T, C, NH);
    EXPECT(maxdiff(d2, d1, nq) < 1e-5);
    free(qkv); free(y1); free(y2); free(a1); free(a2); free(dy); free(d1); free(d2); free(s1); free(s2);
}

TEST(table_lookup) {
    EXPECT(ops_get("ref") != NULL);
    EXPECT(ops_get("fast") != NULL);
    EXPECT(ops_get("gpu") == NULL);
    EXPECT_STREQ(ops_get("fast")->name, "fast");
    EXPECT(ops_threads() >= 1);
}

TEST(half_conversion) {
    /* every finite half survives half -> float -> half */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue; /* NaN payloads */
        if (ops_f32_to_f16(ops_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    EXPECT(bad == 0);
    EXPECT(ops_f16_to_f32(0x3c00) == 1.0f && ops_f16_to_f32(0xc000) == -2.0f);
    EXPECT(ops_f32_to_f16(65520.0f) == 0x7c00); /* rounds to inf */
    EXPECT(ops_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie -> even */
    EXPECT(ops_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);
    /* the vectorised bulk conversion equals the scalar one */
    rl_rng_seed(&rng, 9);
    enum { n = 1003 };
    float f[n];
    uint16_t a[n];
    for (int i = 0; i < n; i++) f[i] = rl_rng_normal(&rng) * powf(10.0f, (float)(i % 13) - 8.0f);
    ops_f32_to_f16_n(a, f, n);
    int diff = 0;
    for (int i = 0; i < n; i++) diff += a[i] != ops_f32_to_f16(f[i]);
    EXPECT(diff == 0);
}

TEST(matmul_half_weights) {
    rl_rng_seed(&rng, 10);
    int N = 5, C = 45, OC = 33;
    float *x = randn((size_t)N * C, 1), *w = randn((size_t)OC * C, 0.3f), *b = randn(OC, 1);
    uint16_t *wh = malloc(sizeof(uint16_t) * OC * C);
    ops_f32_to_f16_n(wh, w, (size_t)OC * C);
    for (int i = 0; i < OC * C; i++) w[i] = ops_f16_to_f32(wh[i]); /* the exact weights the half path sees */
    float *o1 = zeros((size_t)N * OC), *o2 = zeros((size_t)N * OC), *o3 = zeros((size_t)N * OC);
    ops_get("ref")->matmul_forward(o1, x, w, b, N, C, OC);
    ops_get("ref")->matmul_forward_h(o2, x, wh, b, N, C, OC);
    ops_get("fast")->matmul_forward_h(o3, x, wh, b, N, C, OC);
    EXPECT(maxdiff(o2, o1, (size_t)N * OC) < 1e-6);
    EXPECT(maxdiff(o3, o1, (size_t)N * OC) < 1e-5);
    free(x); free(w); free(b); free(wh); free(o1); free(o2); free(o3);
}

/* The decoding kernels of the fused half-precision step: fast == ref on blocks
 * of output channels that do and do not fall on the 4-row blocks, C that is and
 * is not a multiple of 16, all three epilogues; outputs outside [lo, hi) are
 * untouched. */
TEST(matvec_half_blocks) {
    rl_rng_seed(&rng, 11);
    int Cs[2] = {48, 45};
    for (int ci = 0; ci < 2; ci++) {
        int N = 3, C = Cs[ci], OC = 37;
        float *x = randn((size_t)N * C, 1), *w = randn((size_t)OC * C, 0.3f), *b = randn(OC, 1);
        uint16_t *wh = malloc(sizeof(uint16_t) * OC * C);
        ops_f32_to_f16_n(wh, w, (size_t)OC * C);
        float *full = zeros((size_t)N * OC);
        ops_get("ref")->matmul_forward_h(full, x, wh, b, N, C, OC);
        int ranges[4][2] = {{0, 37}, {4, 20}, {3, 9}, {33, 37}};
        for (int mode = 0; mode < 3; mode++)
            for (int r = 0; r < 4; r++) {
                int lo = ranges[r][0], hi = ranges[r][1];
                float *base = randn((size_t)N * OC, 1), *o1 = zeros((size_t)N * OC), *o2 = zeros((size_t)N * OC);
                memcpy(o1, base, sizeof(float) * N * OC);
                memcpy(o2, base, sizeof(float) * N * OC);
                ops_get("ref")->matvec_h(o1, x, wh, mode == 1 ? NULL : b, N, C, OC, lo, hi, mode);
                ops_get("fast")->matvec_h(o2, x, wh, mode == 1 ? NULL : b, N, C, OC, lo, hi, mode);
                EXPECT_MSG(maxdiff(o2, o1, (size_t)N * OC) < 1e-5, "C=%d mode %d [%d,%d): %g", C, mode, lo, hi, maxdiff(o2, o1, (size_t)N * OC));
                int outside = 0, wrong = 0;
                for (int n = 0; n < N; n++)
                    for (int o = 0; o < OC; o++) {
                        size_t i = (size_t)n * OC + o;
                        if (o < lo || o >= hi) { outside += o1[i] != base[i] || o2[i] != base[i]; continue; }
                        /* the epilogue itself, against the plain matmul */
                        double y = mode == 1 ? full[i] - b[o] : full[i];
                        double want = mode == 0 ? y : mode == 1 ? base[i] + y
                                                    : 0.5 * y * (1 + tanh(0.7978845608028654 * (y + 0.044715 * y * y * y)));
                        wrong += fabs(o1[i] - want) > 1e-4 * (1 + fabs(want));
                    }
                EXPECT_MSG(outside == 0 && wrong == 0, "C=%d mode %d [%d,%d): %d touched outside, %d wrong", C, mode, lo, hi, outside, wrong);
                free(base); free(o1); free(o2);
            }
        free(x); free(w); free(b); free(wh); free(full);
    }
}

/* Attention of one query over n cached rows: fast (online softmax) == ref
 * (two passes in double) == a direct softmax computed here. */
TEST(attention_decode_matches_softmax) {
    rl_rng_seed(&rng, 12);
    int hss[2] = {16, 20};
    for (int hi_ = 0; hi_ < 2; hi_++)
        for (int n = 1; n <= 37; n += 9) {
            int hs = hss[hi_], ld = 3 * hs + 5;
            float *q = randn(hs, 1), *k = randn((size_t)n * ld, 1.5f), *v = randn((size_t)n * ld, 1);
            float o1[32], o2[32];
            double want[32] = {0}, p[40], mx = -1e300, sum = 0, scale = 1.0 / sqrt(hs);
            for (int t = 0; t < n; t++) {
                double d = 0;
                for (int i = 0; i < hs; i++) d += (double)q[i] * k[(size_t)t * ld + i];
                p[t] = d * scale;
                if (p[t] > mx) mx = p[t];
            }
            for (int t = 0; t < n; t++) { p[t] = exp(p[t] - mx); sum += p[t]; }
            for (int t = 0; t < n; t++)
                for (int i = 0; i < hs; i++) want[i] += p[t] / sum * v[(size_t)t * ld + i];
            ops_get("ref")->attention_decode(o1, q, k, v, n, ld, hs, (float)scale);
            ops_get("fast")->attention_decode(o2, q, k, v, n, ld, hs, (float)scale);
            double e1 = 0, e2 = 0;
            for (int i = 0; i < hs; i++) { e1 = fmax(e1, fabs(o1[i] - want[i])); e2 = fmax(e2, fabs(o2[i] - want[i])); }
            EXPECT_MSG(e1 < 1e-5 && e2 < 1e-5, "hs=%d n=%d: ref err %g, fast err %g", hs, n, e1, e2);
            free(q); free(k); free(v);
        }
}

/* int8 blocks: quantisation error within half a step of each block's scale;
 * matvec_q8 (int8 weights x int8 inputs) fast == ref (4-row blocks and the row
 * tail, all epilogues) and equal to a float matmul of the dequantised inputs
 * and weights: the integer dot products lose nothing beyond the quantisation. */
TEST(matvec_int8_blocks) {
    rl_rng_seed(&rng, 13);
    int N = 2, C = 64, OC = 23, nb = C / OPS_Q8_BLOCK;
    float *x = randn((size_t)N * C, 1), *w = randn((size_t)OC * C, 0.3f), *b = randn(OC, 1);
    w[5] = 3.0f; /* an outlier only coarsens its own block */
    x[40] = -4.0f;
    int8_t *q = malloc((size_t)OC * C), *xq = malloc((size_t)N * C);
    float *s = malloc(sizeof(float) * OC * nb), *deq = malloc(sizeof(float) * OC * C);
    float *xs = malloc(sizeof(float) * N * nb), *xdeq = malloc(sizeof(float) * N * C);
    ops_quantize_q8(q, s, w, (size_t)OC * C);
    ops_quantize_q8(xq, xs, x, (size_t)N * C);
    int bad = 0;
    for (int i = 0; i < OC * C; i++) {
        deq[i] = q[i] * s[i / OPS_Q8_BLOCK];
        bad += fabsf(deq[i] - w[i]) > 0.5f * s[i / OPS_Q8_BLOCK] * 1.0001f || q[i] < -127;
    }
    for (int i = 0; i < N * C; i++) {
        xdeq[i] = xq[i] * xs[i / OPS_Q8_BLOCK];
        bad += fabsf(xdeq[i] - x[i]) > 0.5f * xs[i / OPS_Q8_BLOCK] * 1.0001f;
    }
    EXPECT_MSG(bad == 0, "%d values off by more than half a quantisation step", bad);
    EXPECT(s[0] > 3.0f / 127 * 0.999f && s[1] < 2.0f / 127 && xq[40] == -127);
    float *full = zeros((size_t)N * OC);
    ops_get("ref")->matmul_forward(full, xdeq, deq, b, N, C, OC);
    for (int mode = 0; mode < 3; mode++) {
        float *o1 = randn((size_t)N * OC, 1), *o2 = zeros((size_t)N * OC);
        memcpy(o2, o1, sizeof(float) * N * OC);
        float *base = zeros((size_t)N * OC);
        memcpy(base, o1, sizeof(float) * N * OC);
        ops_get("ref")->matvec_q8(o1, xq, xs, q, s, b, N, C, OC, 2, 23, mode);
        ops_get("fast")->matvec_q8(o2, xq, xs, q, s, b, N, C, OC, 2, 23, mode);
        EXPECT_MSG(maxdiff(o2, o1, (size_t)N * OC) < 1e-5, "mode %d: fast vs ref %g", mode, maxdiff(o2, o1, (size_t)N * OC));
        int wrong = 0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                size_t i = (size_t)n * OC + o;
                double y = full[i], want = o < 2 ? base[i] : mode == 0 ? y : mode == 1 ? base[i] + y
                                                  : 0.5 * y * (1 + tanh(0.7978845608028654 * (y + 0.044715 * y * y * y)));
                wrong += fabs(o1[i] - want) > 1e-4 * (1 + fabs(want));
            }
        EXPECT_MSG(wrong == 0, "mode %d: %d outputs differ from the dequantised matmul", mode, wrong);
        free(o1); free(o2); free(base);
    }
    free(x); free(w); free(b); free(q); free(s); free(deq); free(full); free(xq); free(xs); free(xdeq);
}

TEST_MAIN()
