/* test_align_mixture.c — the EM mixture over annotators (src/align/mixture.h)
 * and the linear Bradley–Terry feature model (src/align/linbt.h): planted
 * clusters are recovered, K = 1, empty clusters are re-seeded, bad input is
 * refused, the clustering indices match hand/sklearn values, and the linear
 * model's fit is the maximum-likelihood one. The simulated-population
 * acceptance test is tests/unit/test_align_population.c. */
#include "test.h"
#include <math.h>
#include "../../src/align/mixture.h"
#include "../../src/align/linbt.h"
#include "../../src/base/rng.h"

/* ---- clustering indices ----------------------------------------------------- */

TEST(adjusted_rand_known_values) {
    /* sklearn.metrics.adjusted_rand_score docstring examples */
    int a[4] = {0, 0, 1, 1}, b[4] = {0, 0, 1, 2}, c[4] = {0, 1, 0, 1}, d[4] = {1, 1, 0, 0};
    EXPECT_NEAR(align_adjusted_rand(4, a, 2, b, 3), 0.5714285714285714, 1e-12);
    EXPECT_NEAR(align_adjusted_rand(4, a, 2, c, 2), -0.5, 1e-12);
    EXPECT_NEAR(align_adjusted_rand(4, a, 2, d, 2), 1.0, 1e-12);
    int one[4] = {0, 0, 0, 0};
    EXPECT_NEAR(align_adjusted_rand(4, one, 1, one, 1), 1.0, 0);
    /* negative labels are left out */
    int e[5] = {0, 0, 1, 1, -1}, f[5] = {1, 1, 0, 0, 0};
    EXPECT_NEAR(align_adjusted_rand(5, e, 2, f, 2), 1.0, 1e-12);
    EXPECT(isnan(align_adjusted_rand(1, e, 2, f, 2)));
}

TEST(match_agreement_known_values) {
    int a[5] = {0, 0, 1, 1, 1}, b[5] = {1, 0, 0, 0, 0}, map[3];
    EXPECT_NEAR(align_match_agreement(5, a, 2, b, 2, map), 0.8, 1e-12);
    EXPECT(map[0] == 1 && map[1] == 0);
    /* three labels, permuted */
    int x[6] = {0, 0, 1, 1, 2, 2}, y[6] = {2, 2, 0, 0, 1, 1};
    EXPECT_NEAR(align_match_agreement(6, x, 3, y, 3, map), 1.0, 0);
    EXPECT(map[2] == 0 && map[0] == 1 && map[1] == 2);
    /* more labels in b than in a: the extra one is unmatched */
    int z[6] = {0, 0, 1, 1, 2, 2};
    int two[6] = {0, 0, 1, 1, 1, 1};
    EXPECT_NEAR(align_match_agreement(6, two, 2, z, 3, map), 4.0 / 6, 1e-12);
    /* greedy path (k > 8): identical labelings with 10 labels agree fully */
    int g[20], h[20];
    for (int i = 0; i < 20; i++) { g[i] = i / 2; h[i] = 9 - i / 2; }
    EXPECT_NEAR(align_match_agreement(20, g, 10, h, 10, NULL), 1.0, 0);
}

/* ---- the linear BT model ------------------------------------------------------ */

TEST(linbt_fit_is_the_maximum_likelihood) {
    /* "x" beats "yy" in 80 of 100 comparisons: with a tiny L2 the fitted
     * probability σ(r(x) − r(yy)) is the empirical 0.8. */
    align_linbt_opts o = align_linbt_defaults();
    o.l2 = 1e-6;
    align_linbt m;
    REQUIRE(align_linbt_init(&m, 1, &o) == RL_OK);
    for (int i = 0; i < 100; i++)
        REQUIRE(i < 80 ? align_linbt_add(&m, "x", "yy", NULL) == RL_OK : align_linbt_add(&m, "yy", "x", NULL) == RL_OK);
    double *w = malloc(sizeof(double) * 100), *ll = malloc(sizeof(double) * 100);
    for (int i = 0; i < 100; i++) w[i] = 1;
    REQUIRE(align_linbt_fit(&m, 0, w) == RL_OK);
    double d = align_linbt_score(&m, 0, "x") - align_linbt_score(&m, 0, "yy");
    EXPECT_NEAR(1 / (1 + exp(-d)), 0.8, 2e-3);
    /* loglik agrees with the scores */
    align_linbt_loglik(&m, 0, ll);
    EXPECT_NEAR(ll[0], -log1p(exp(-d)), 1e-9);
    EXPECT_NEAR(ll[99], -log1p(exp(d)), 1e-9);
    /* weights: counting the 20 reversed comparisons 4 times gives 80/80 → 0.5 */
    for (int i = 80; i < 100; i++) w[i] = 4;
    REQUIRE(align_linbt_fit(&m, 0, w) == RL_OK);
    d = align_linbt_score(&m, 0, "x") - align_linbt_score(&m, 0, "yy");
    EXPECT_NEAR(d, 0, 1e-4);
    /* no weight: θ = 0 */
    for (int i = 0; i < 100; i++) w[i] = 0;
    REQUIRE(align_linbt_fit(&m, 0, w) == RL_OK);
    EXPECT_NEAR(align_linbt_score(&m, 0, "x"), 0, 0);
    /* frozen after the first fit; bad weights refused */
    EXPECT(align_linbt_add(&m, "a", "b", NULL) == RL_EINVAL);
    w[3] = -1;
    EXPECT(align_linbt_fit(&m, 0, w) == RL_EINVAL);
    w[3] = NAN;
    EXPECT(align_linbt_fit(&m, 0, w) == RL_EINVAL);
    EXPECT(align_linbt_fit(&m, 1, w) == RL_EINVAL);
    free(w); free(ll);
    align_linbt_free(&m);
}

TEST(linbt_digit_folding) {
    align_linbt_opts o = align_linbt_defaults();
    align_linbt m;
    REQUIRE(align_linbt_init(&m, 1, &o) == RL_OK);
    for (int i = 0; i < 50; i++) REQUIRE(align_linbt_add(&m, "12", "3 + 4 = 7.", NULL) == RL_OK);
    double w[50];
    for (int i = 0; i < 50; i++) w[i] = 1;
    REQUIRE(align_linbt_fit(&m, 0, w) == RL_OK);
    /* with folding, "85" scores exactly like "12" (same folded text) */
    EXPECT_NEAR(align_linbt_score(&m, 0, "85"), align_linbt_score(&m, 0, "12"), 1e-12);
    EXPECT(align_linbt_score(&m, 0, "85") > align_linbt_score(&m, 0, "37 + 48 = 85."));
    align_linbt_free(&m);
    align_linbt_opts bad = o;
    bad.buckets_log2 = 30;
    EXPECT(align_linbt_init(&m, 1, &bad) == RL_EINVAL);
    bad = o; bad.ngram_min = 3; bad.ngram_max = 2;
    EXPECT(align_linbt_init(&m, 1, &bad) == RL_EINVAL);
    bad = o; bad.l2 = 0;
    EXPECT(align_linbt_init(&m, 1, &bad) == RL_EINVAL);
    bad = o; bad.max_bytes = -1;
    EXPECT(align_linbt_init(&m, 1, &bad) == RL_EINVAL);
    /* max_bytes: only the first bytes count, so two responses that differ
     * after them score the same */
    align_linbt_opts mb = o;
    mb.max_bytes = 4;
    REQUIRE(align_linbt_init(&m, 1, &mb) == RL_OK);
    for (int i = 0; i < 50; i++) REQUIRE(align_linbt_add(&m, "abcdXX", "zzzz", NULL) == RL_OK);
    REQUIRE(align_linbt_fit(&m, 0, w) == RL_OK);
    EXPECT(align_linbt_score(&m, 0, "abcdYYYY") > align_linbt_score(&m, 0, "zzzz"));
    EXPECT_NEAR(align_linbt_score(&m, 0, "abcdYYYY"), align_linbt_score(&m, 0, "abcd"), 1e-12);
    align_linbt_free(&m);
    EXPECT(align_linbt_init(&m, 0, &o) == RL_EINVAL);
}

/* ---- planted clusters -------------------------------------------------------- */

/* G groups; each prefers its own one of three response styles (disjoint
 * alphabets) over the others with probability `p`. Annotator h is in group
 * h % G. Each annotator judges n_per comparisons of two different styles. */
static const char *STY[3][4] = {
    {"aaa", "aab", "aba", "baa"},
    {"xyz", "xxz", "zyx", "yxz"},
    {"1 + 2 = 3.", "4 + 5 = 9.", "7 + 1 = 8.", "2 + 2 = 4."},
};

static void planted(align_linbt *m, int G, int n_annot, int n_per, double p, uint64_t seed, int *annot) {
    rl_rng r;
    rl_rng_seed(&r, seed);
    int c = 0;
    for (int h = 0; h < n_annot; h++) {
        int g = h % G;
        for (int j = 0; j < n_per; j++) {
            int s1 = (int)rl_rng_below(&r, 3), s2 = (s1 + 1 + (int)rl_rng_below(&r, 2)) % 3;
            const char *a = STY[s1][rl_rng_below(&r, 4)], *b = STY[s2][rl_rng_below(&r, 4)];
            /* the group's favourite style wins with probability p; between
             * two non-favourites, the lower-numbered style wins with p */
            int a_pref = s1 == g ? 1 : s2 == g ? 0 : s1 < s2;
            int a_wins = rl_rng_uniform_d(&r) < p ? a_pref : !a_pref;
            align_linbt_add(m, a_wins ? a : b, a_wins ? b : a, NULL);
            annot[c++] = h;
        }
    }
}

TEST(mixture_recovers_planted_clusters) {
    enum { G = 3, NA = 30, NPER = 30 };
    align_linbt m;
    REQUIRE(align_linbt_init(&m, G, NULL) == RL_OK);
    int annot[NA * NPER];
    planted(&m, G, NA, NPER, 0.85, 7, annot);
    align_mix_model mm = align_linbt_model(&m);
    align_mix_opts o = align_mix_defaults();
    o.K = G;
    align_mix_result res[4];
    align_mix_stability st;
    REQUIRE(align_mixture_seeds(&mm, annot, NULL, NA, &o, 4, res, &st) == RL_OK);
    int truth[NA];
    for (int h = 0; h < NA; h++) truth[h] = h % G;
    for (int s = 0; s < 4; s++) {
        double agree = align_match_agreement(NA, truth, G, res[s].assign, G, NULL);
        if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "seed %d agreement %.3f ll %.3f it %d restart %d\n", s, agree, res[s].loglik, res[s].iterations, res[s].restart);
        /* hard EM has local optima and, with 30 noisy judgements each, the
         * planted assignment need not be the most likely one: every seed
         * within 3 annotators of the truth, the kept (best) seed within 1 */
        EXPECT_MSG(agree >= 0.9, "seed %d agreement %.3f", s, agree);
        if (s == st.best) EXPECT_MSG(agree >= 0.96, "best seed %d agreement %.3f", s, agree);
        EXPECT(res[s].converged);
        int tot = 0;
        for (int k = 0; k < G; k++) tot += res[s].size[k];
        EXPECT(tot == NA);
        EXPECT(res[s].loglik < 0 && res[s].weight == NA * NPER);
    }
    EXPECT(st.ari_min >= 0.8 && st.agree_min >= 0.9 && st.ari_mean <= 1 && st.agree_mean >= st.agree_min);
    /* the models end fitted to the best seed: each discovered cluster's model
     * ranks its group's favourite style first */
    int map[G];
    align_match_agreement(NA, truth, G, res[st.best].assign, G, map);
    for (int k = 0; k < G; k++) {
        int g = map[k];
        REQUIRE(g >= 0);
        double best = align_linbt_score(&m, k, STY[g][0]);
        for (int s = 0; s < 3; s++)
            if (s != g) EXPECT(align_linbt_score(&m, k, STY[s][0]) < best);
    }
    for (int s = 0; s < 4; s++) align_mix_result_free(&res[s]);
    align_linbt_free(&m);
}

/* No structure (everyone in one group), K = 2: every seed finds some split
 * that fits noise a little better, but the splits disagree across seeds; the
 * stability report is what tells the user (ARI near 0 here, 1 on the planted
 * data above). */
TEST(mixture_without_structure_is_unstable) {
    enum { NA = 30, NPER = 30 };
    align_linbt m;
    REQUIRE(align_linbt_init(&m, 2, NULL) == RL_OK);
    int annot[NA * NPER];
    planted(&m, 1, NA, NPER, 0.85, 7, annot);
    align_mix_model mm = align_linbt_model(&m);
    align_mix_opts o = align_mix_defaults();
    o.K = 2;
    align_mix_result res[5];
    align_mix_stability st;
    REQUIRE(align_mixture_seeds(&mm, annot, NULL, NA, &o, 5, res, &st) == RL_OK);
    if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "no structure: ARI mean %.3f min %.3f\n", st.ari_mean, st.ari_min);
    EXPECT_MSG(st.ari_mean < 0.5 && st.ari_min < 0.2, "ARI mean %.3f min %.3f", st.ari_mean, st.ari_min);
    for (int s = 0; s < 5; s++) align_mix_result_free(&res[s]);
    align_linbt_free(&m);
}

TEST(mixture_k1_is_one_model_for_everyone) {
    enum { NA = 12, NPER = 20 };
    align_linbt m;
    REQUIRE(align_linbt_init(&m, 1, NULL) == RL_OK);
    int annot[NA * NPER];
    planted(&m, 2, NA, NPER, 0.8, 3, annot);
    align_mix_model mm = align_linbt_model(&m);
    align_mix_opts o = align_mix_defaults();
    o.K = 1;
    align_mix_result r;
    REQUIRE(align_mixture_fit(&mm, annot, NULL, NA, &o, &r) == RL_OK);
    for (int h = 0; h < NA; h++) EXPECT(r.assign[h] == 0);
    EXPECT(r.size[0] == NA && r.converged);
    /* its log-likelihood is that of one model fit on everything */
    double w[NA * NPER], ll[NA * NPER], tot = 0;
    for (int c = 0; c < NA * NPER; c++) w[c] = 1;
    REQUIRE(align_linbt_fit(&m, 0, w) == RL_OK);
    align_linbt_loglik(&m, 0, ll);
    for (int c = 0; c < NA * NPER; c++) tot += ll[c];
    EXPECT_NEAR(r.loglik, tot, 1e-7 * fabs(tot)); /* equal up to the optimiser tolerance */
    align_mix_result_free(&r);
    align_linbt_free(&m);
}

/* A mock family where model 0 explains every comparison best, whatever it
 * was fit on: every E-step puts everyone in cluster 0, so the others must be
 * re-seeded. Checks the EM core through the abstract interface. */
typedef struct { int n; int fits; } mock;
static rl_status mock_fit(void *ctx, int k, const double *w) { (void)k; (void)w; ((mock *)ctx)->fits++; return RL_OK; }
static void mock_ll(void *ctx, int k, double *ll) { for (int c = 0; c < ((mock *)ctx)->n; c++) ll[c] = k == 0 ? -0.1 : -1.0 - 0.01 * c; }
static void mock_reset(void *ctx, int k) { (void)ctx; (void)k; }

TEST(mixture_reseeds_empty_clusters) {
    mock mk = {40, 0};
    align_mix_model mm = {&mk, 3, 40, mock_fit, mock_ll, mock_reset};
    int annot[40];
    for (int c = 0; c < 40; c++) annot[c] = c / 4; /* 10 annotators */
    align_mix_opts o = align_mix_defaults();
    o.K = 3; o.restarts = 1; o.max_iter = 5;
    align_mix_result r;
    REQUIRE(align_mixture_fit(&mm, annot, NULL, 10, &o, &r) == RL_OK);
    EXPECT(r.reseeded >= 2);
    for (int k = 0; k < 3; k++) EXPECT_MSG(r.size[k] >= 1, "cluster %d empty", k);
    int tot = 0;
    for (int k = 0; k < 3; k++) tot += r.size[k];
    EXPECT(tot == 10);
    EXPECT(mk.fits > 0);
    align_mix_result_free(&r);
}

TEST(mixture_bad_input) {
    mock mk = {8, 0};
    align_mix_model mm = {&mk, 2, 8, mock_fit, mock_ll, mock_reset};
    int annot[8] = {0, 0, 1, 1, 2, 2, 3, 3};
    double w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    align_mix_opts o = align_mix_defaults();
    align_mix_result r;
    o.K = 0;
    EXPECT(align_mixture_fit(&mm, annot, w, 4, &o, &r) == RL_EINVAL); align_mix_result_free(&r);
    o.K = 3; /* more than the model family has */
    EXPECT(align_mixture_fit(&mm, annot, w, 4, &o, &r) == RL_EINVAL); align_mix_result_free(&r);
    o.K = 2;
    EXPECT(align_mixture_fit(&mm, annot, w, 3, &o, &r) == RL_EINVAL); /* annotator 3 out of range */
    align_mix_result_free(&r);
    w[2] = -1;
    EXPECT(align_mixture_fit(&mm, annot, w, 4, &o, &r) == RL_EINVAL); align_mix_result_free(&r);
    w[2] = NAN;
    EXPECT(align_mixture_fit(&mm, annot, w, 4, &o, &r) == RL_EINVAL); align_mix_result_free(&r);
    /* only one annotator has weight: K = 2 cannot be filled */
    for (int c = 0; c < 8; c++) w[c] = c < 2;
    EXPECT(align_mixture_fit(&mm, annot, w, 4, &o, &r) == RL_EINVAL); align_mix_result_free(&r);
    mm.n_cmp = 0;
    EXPECT(align_mixture_fit(&mm, annot, NULL, 4, &o, &r) == RL_EINVAL); align_mix_result_free(&r);
    mm.n_cmp = 8;
    EXPECT(align_mixture_seeds(&mm, annot, NULL, 4, &o, 0, &r, NULL) == RL_EINVAL);
    /* an annotator whose comparisons all have weight 0 is unassigned (-1) */
    for (int c = 0; c < 8; c++) w[c] = c < 6;
    REQUIRE(align_mixture_fit(&mm, annot, w, 4, &o, &r) == RL_OK);
    EXPECT(r.assign[3] == -1 && r.size[0] + r.size[1] == 3);
    align_mix_result_free(&r);
}

TEST(linbt_from_feedback_records) {
    fb_set s;
    fb_set_init(&s);
    chat_turn turn = {CHAT_ROLE_USER, "what is 1+2?"};
    const char *resp[2] = {"3", "1 + 2 = 3."};
    const char *ann[3] = {"bob", "alice", "bob"};
    fb_choice ch[3] = {FB_CHOICE_A, FB_CHOICE_B, FB_CHOICE_TIE};
    for (int i = 0; i < 3; i++) {
        fb_record r = fb_record_init(FB_PAIR);
        r.source = "test"; r.annotator = ann[i]; r.prompt = &turn; r.n_prompt = 1;
        r.responses = resp; r.n_responses = 2; r.choice = ch[i]; r.weight = 1 + i;
        REQUIRE(fb_set_add(&s, &r) == RL_OK);
    }
    /* a ranking of 3 with distinct ranks gives 3 comparisons */
    const char *rr[3] = {"a", "b", "c"};
    int32_t ranks[3] = {2, 0, 1};
    fb_record r = fb_record_init(FB_RANKING);
    r.source = "test"; r.annotator = "carol"; r.prompt = &turn; r.n_prompt = 1;
    r.responses = rr; r.n_responses = 3; r.ranks = ranks;
    REQUIRE(fb_set_add(&s, &r) == RL_OK);
    align_linbt m;
    align_fb_cmps c;
    REQUIRE(align_linbt_init(&m, 2, NULL) == RL_OK);
    REQUIRE(align_linbt_from_feedback(&m, &s, &c) == RL_OK);
    EXPECT(c.n_cmp == 5 && m.n_cmp == 5 && c.n_ties == 1);
    EXPECT(c.n_annot == 3);
    EXPECT_STREQ(c.annot_id[0], "alice");
    EXPECT_STREQ(c.annot_id[1], "bob");
    EXPECT_STREQ(c.annot_id[2], "carol");
    EXPECT(c.annot[0] == 1 && c.annot[1] == 0 && c.annot[2] == 2);
    EXPECT(c.w[0] == 1 && c.w[1] == 2);
    EXPECT(c.annot_first[0] == 1 && c.annot_first[1] == 0 && c.annot_first[2] == 3);
    align_fb_cmps c_again;
    EXPECT(align_linbt_from_feedback(&m, &s, &c_again) == RL_EINVAL); /* the model already has comparisons */
    align_fb_cmps_free(&c);
    align_linbt_free(&m);
    /* only ties: refused */
    fb_set t;
    fb_set_init(&t);
    fb_record q = fb_record_init(FB_PAIR);
    q.source = "test"; q.annotator = "x"; q.prompt = &turn; q.n_prompt = 1;
    q.responses = resp; q.n_responses = 2; q.choice = FB_CHOICE_TIE;
    REQUIRE(fb_set_add(&t, &q) == RL_OK);
    REQUIRE(align_linbt_init(&m, 1, NULL) == RL_OK);
    EXPECT(align_linbt_from_feedback(&m, &t, &c) == RL_EINVAL);
    align_linbt_free(&m);
    fb_set_free(&t);
    fb_set_free(&s);
}

TEST_MAIN()
