/* test_exact_logp.c — the sampler's log-probs equal the training forward's
 * bitwise in exact mode (gpt_set_exact), on a model whose logits have the
 * spread of a trained one (weights scaled: log-probs down to below -15), for
 * both kernel tables, batches 1, 3 and 16 with mixed prompt lengths, one and
 * two threads, and the forward run in three batch layouts (T a multiple of
 * the exact matmul's row tile or not). Without
 * exact mode the same comparison differs by ~1e-6 (printed, not asserted). */
#include "test.h"
#include "../../src/kernels/ops.h"
#include "../../src/model/gpt.h"
#include "../../src/model/sampler.h"

enum { MAXN = 16, MAXP = 9, NEW = 20, MAXT = 48 };

/* Scale the weights so that logits spread like a pretrained model's: the final
 * LayerNorm gain x40 (logit std ~10), attention and MLP inputs x3 (peaked
 * attention, saturated GELUs). */
static void sharpen(gpt_model *m) {
    const gpt_config *c = &m->cfg;
    for (int i = 0; i < c->C; i++) m->w.lnfw[i] *= 40.0f;
    for (size_t i = 0; i < (size_t)c->L * 3 * c->C * c->C; i++) m->w.qkvw[i] *= 3.0f;
    for (size_t i = 0; i < (size_t)c->L * 4 * c->C * c->C; i++) m->w.fcw[i] *= 3.0f;
}

typedef struct { int mismatches, compared; double maxdiff, min_logp_vocab; } cmp_result;

/* Samples n rows, then recomputes the log-probs with gpt_forward in `layout`
 * rows per forward call (pad extra positions at the end of T). */
static cmp_result run_case(const ops_table *ops, int n, int exact, int layout, int pad) {
    cmp_result r = {0, 0, 0.0, 0.0};
    gpt_config cfg = {.L = 2, .NH = 4, .C = 64, .V = 101, .maxT = MAXT};
    gpt_model m;
    if (gpt_init(&m, &cfg, MAXN, MAXT, ops, 7) != RL_OK) { r.mismatches = -1; return r; }
    sharpen(&m);
    gpt_set_exact(&m, exact);
    static int prompts[MAXN][MAXP];
    const int *pp[MAXN];
    int plen[MAXN];
    for (int b = 0; b < n; b++) {
        plen[b] = 1 + (b * 7 + 3) % MAXP; /* mixed lengths: rows start sampling at different positions */
        for (int i = 0; i < plen[b]; i++) prompts[b][i] = (b * 31 + i * 17 + 5) % cfg.V;
        pp[b] = prompts[b];
    }
    sampler_opts o;
    sampler_opts_default(&o);
    o.max_tokens = NEW;
    o.seed = 11;
    sampler_result res;
    if (sampler_generate(&m, pp, plen, n, &o, &res, NULL, NULL) != RL_OK) { gpt_free(&m); r.mismatches = -1; return r; }
    int T = 0;
    for (int b = 0; b < n; b++) if (plen[b] + res.len[b] - 1 > T) T = plen[b] + res.len[b] - 1;
    if (pad < 0) { int u = ops_exact_tile(); T = (T + u - 1) / u * u; if (T > MAXT) T = MAXT; } /* the no-gather path */
    else T += pad;
    static int in[MAXN * MAXT], tg[MAXN * MAXT];
    for (int b = 0; b < n; b++)
        for (int t = 0; t < T; t++) {
            int seq_t = t < plen[b] ? prompts[b][t] : (t - plen[b] < res.len[b] ? res.tokens[b * res.cap + t - plen[b]] : 0);
            int j = t + 1 - plen[b]; /* index of the generated token that position t predicts */
            in[b * T + t] = seq_t;
            tg[b * T + t] = j >= 0 && j < res.len[b] ? res.tokens[b * res.cap + j] : -1;
        }
    for (int b0 = 0; b0 < n; b0 += layout) {
        int B = n - b0 < layout ? n - b0 : layout;
        gpt_forward(&m, in + b0 * T, tg + b0 * T, NULL, B, T);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int j = t + 1 - plen[b0 + b];
                const float *lg = m.a.logits + ((size_t)b * T + t) * cfg.V;
                for (int v = 0; v < cfg.V; v++) if (lg[v] - m.a.lse[b * T + t] < r.min_logp_vocab) r.min_logp_vocab = lg[v] - m.a.lse[b * T + t];
                if (j < 0 || j >= res.len[b0 + b]) continue;
                float f = m.a.logp[b * T + t], s = res.logp[(b0 + b) * res.cap + j];
                r.compared++;
                if (memcmp(&f, &s, sizeof f)) r.mismatches++;
                if (fabs((double)f - s) > r.maxdiff) r.maxdiff = fabs((double)f - s);
            }
    }
    sampler_result_free(&res);
    gpt_free(&m);
    return r;
}

static void check_table(const char *name) {
    const ops_table *ops = ops_get(name);
    int ns[3] = {1, 3, 16};
    for (int th = 1; th <= 2; th++) {
        ops_set_threads(th);
        for (int i = 0; i < 3; i++) {
            int n = ns[i];
            cmp_result e1 = run_case(ops, n, 1, n, 0), e2 = run_case(ops, n, 1, 2, 5), e3 = run_case(ops, n, 1, 4, -1);
            cmp_result off = run_case(ops, n, 0, n, 0);
            REQUIRE(e1.mismatches >= 0 && e2.mismatches >= 0 && e3.mismatches >= 0 && off.mismatches >= 0);
            printf("  %s, %d thread(s), batch %2d: exact %d/%d tokens differ (max %.2g; other layouts %d/%d, %d/%d), "
                   "not exact max |diff| %.2g; min vocabulary log-prob %.1f\n",
                   name, th, n, e1.mismatches, e1.compared, e1.maxdiff, e2.mismatches, e2.compared, e3.mismatches, e3.compared, off.maxdiff,
                   e1.min_logp_vocab);
            EXPECT(e1.compared >= n * 5);
            EXPECT_MSG(e1.mismatches == 0 && e2.mismatches == 0 && e3.mismatches == 0,
                       "%s batch %d: %d + %d + %d log-probs not bitwise equal (max %g, %g, %g)", name, n, e1.mismatches,
                       e2.mismatches, e3.mismatches, e1.maxdiff, e2.maxdiff, e3.maxdiff);
            EXPECT(e1.min_logp_vocab < -15.0); /* the logits have a trained model's spread */
        }
    }
    ops_set_threads(0);
}

TEST(sampler_logp_bitwise_ref) { check_table("ref"); }
TEST(sampler_logp_bitwise_fast) { check_table("fast"); }

/* The exact ops agree with the ordinary ones to float rounding, and the exact
 * matmul's rows do not depend on the call: rows 0..n-1 of an N-row call equal
 * an n-row call on the same rows, for every n (partial tiles, padding). */
TEST(exact_ops_match_ordinary) {
    const ops_table *ops = ops_get("fast");
    enum { N = 40, C = 48, OC = 70 };
    static float inp[N * C], w[OC * C], bias[OC], a[N * OC], b[N * OC], c[N * OC];
    uint32_t s = 1;
    for (int i = 0; i < N * C; i++) { s = s * 1664525u + 1013904223u; inp[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    for (int i = 0; i < OC * C; i++) { s = s * 1664525u + 1013904223u; w[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    for (int i = 0; i < OC; i++) bias[i] = 0.1f * i;
    ops->matmul_forward_exact(a, inp, w, bias, N, C, OC, 1, 0);
    ops->matmul_forward(b, inp, w, bias, N, C, OC);
    double md = 0;
    for (int i = 0; i < N * OC; i++) md = fmax(md, fabs((double)a[i] - b[i]));
    EXPECT(md < 1e-5);
    int bad = 0;
    for (int n = 1; n <= N; n++) {
        ops->matmul_forward_exact(c, inp + (size_t)(N - n) * C, w, bias, n, C, OC, 1, 0);
        if (memcmp(c, a + (size_t)(N - n) * OC, sizeof(float) * n * OC)) bad++;
    }
    EXPECT_MSG(bad == 0, "%d row counts give other bits", bad);
    /* attention: exact vs the sgemm version */
    enum { B = 2, T = 20, AC = 32, NH = 2 };
    static float qkv[B * T * 3 * AC], o1[B * T * AC], o2[B * T * AC], att1[B * NH * T * T], att2[B * NH * T * T];
    for (int i = 0; i < B * T * 3 * AC; i++) { s = s * 1664525u + 1013904223u; qkv[i] = 3.0f * ((float)(s >> 8) / 16777216.0f - 0.5f); }
    ops->attention_forward_exact(o1, att1, qkv, B, T, AC, NH);
    ops->attention_forward(o2, att2, qkv, B, T, AC, NH);
    md = 0;
    for (int i = 0; i < B * T * AC; i++) md = fmax(md, fabs((double)o1[i] - o2[i]));
    for (int i = 0; i < B * NH * T * T; i++) md = fmax(md, fabs((double)att1[i] - att2[i]));
    EXPECT_MSG(md < 1e-5, "exact vs sgemm attention max |diff| %g", md);
}

TEST_MAIN()
