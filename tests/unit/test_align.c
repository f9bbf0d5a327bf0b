/* test_align.c — src/align: agreement against published worked examples,
 * raking against a hand-solved table, Dawid–Skene on simulated annotators,
 * aggregation rules against hand-computed values and their limits,
 * consensus counting, and the CSV reader. The independent numpy
 * implementations (raking, Dawid–Skene) are in tests/ref/test_align.py. */
#include "test.h"
#include <math.h>
#include "../../src/align/agreement.h"
#include "../../src/align/weights.h"
#include "../../src/align/aggregate.h"
#include "../../src/align/consensus.h"
#include "../../src/align/csv.h"
#include "../../src/base/rng.h"

#define NA NAN

/* Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section
 * C: 4 observers × 12 units with missing values. Published: nominal α = 0.743,
 * ordinal 0.815, interval 0.849. The same matrix is the ordinal (0.815) and
 * ratio (0.797) test case of pln-fing-udelar/fast-krippendorff
 * (tests/test_krippendorff.py), an independent implementation. */
static const double K2011[4 * 12] = {
    1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA,
    1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3,
    NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA,
    1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA,
};

TEST(krippendorff_2011_worked_example) {
    align_alpha_result r;
    REQUIRE(align_krippendorff_alpha(4, 12, K2011, ALIGN_NOMINAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 0.743, 5e-4);
    EXPECT_NEAR(r.n_pairable, 40, 0);   /* unit 12 has one value, so 40 pairable values */
    EXPECT(r.n_units == 11);
    REQUIRE(align_krippendorff_alpha(4, 12, K2011, ALIGN_ORDINAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 0.815, 5e-4);
    REQUIRE(align_krippendorff_alpha(4, 12, K2011, ALIGN_INTERVAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 0.849, 5e-4);
    REQUIRE(align_krippendorff_alpha(4, 12, K2011, ALIGN_RATIO, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 0.797, 5e-4);
}

/* The Wikipedia "computational example" (3 coders × 15 units), as in
 * fast-krippendorff's tests: nominal 0.691358, interval 0.810845. */
TEST(krippendorff_wikipedia_example) {
    static const double x[3 * 15] = {
        NA, NA, NA, NA, NA, 3, 4, 1, 2, 1, 1, 3, 3, NA, 3,
        1, NA, 2, 1, 3, 3, 4, 3, NA, NA, NA, NA, NA, NA, NA,
        NA, NA, 2, 1, 3, 4, 4, NA, 2, 1, 1, 3, 3, NA, 4,
    };
    align_alpha_result r;
    REQUIRE(align_krippendorff_alpha(3, 15, x, ALIGN_NOMINAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 0.691358, 1e-6);
    REQUIRE(align_krippendorff_alpha(3, 15, x, ALIGN_INTERVAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 0.810845, 1e-6);
}

/* crowd-kit's doctest: items X (Yes, Yes), Y (No, No), Z (Yes, No) → 0.4444. */
TEST(krippendorff_crowdkit_doctest_and_edge_cases) {
    static const double x[2 * 3] = {1, 0, 1, 1, 0, 0};
    align_alpha_result r;
    REQUIRE(align_krippendorff_alpha(2, 3, x, ALIGN_NOMINAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 4.0 / 9.0, 1e-12);
    /* perfect agreement = 1 */
    static const double y[3 * 4] = {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4};
    REQUIRE(align_krippendorff_alpha(3, 4, y, ALIGN_INTERVAL, &r) == RL_OK);
    EXPECT_NEAR(r.alpha, 1.0, 1e-12);
    /* nothing pairable, and no variation: errors, alpha NAN */
    static const double z[2 * 2] = {1, NA, NA, 2};
    EXPECT(align_krippendorff_alpha(2, 2, z, ALIGN_NOMINAL, &r) == RL_EINVAL && isnan(r.alpha));
    static const double w[2 * 2] = {1, 1, 1, 1};
    EXPECT(align_krippendorff_alpha(2, 2, w, ALIGN_NOMINAL, &r) == RL_EINVAL);
    static const double neg[2 * 2] = {-1, 1, -1, 2};
    EXPECT(align_krippendorff_alpha(2, 2, neg, ALIGN_RATIO, &r) == RL_EINVAL);
}

TEST(alpha_by_group_and_percent_agreement) {
    /* coders 0,1 agree perfectly; coders 2,3 disagree on every unit */
    static const double x[4 * 4] = {
        0, 1, 0, 1,
        0, 1, 0, 1,
        0, 1, 1, 0,
        1, 0, 0, 1,
    };
    int grp[4] = {0, 0, 1, 1};
    double a[2], all;
    REQUIRE(align_alpha_by_group(4, 4, x, ALIGN_NOMINAL, grp, 2, a, &all) == RL_OK);
    EXPECT_NEAR(a[0], 1.0, 1e-12);
    EXPECT(a[1] < 0);               /* systematic disagreement: below chance */
    EXPECT(all > a[1] && all < a[0]);
    double pa;
    REQUIRE(align_percent_agreement(2, 4, x, &pa) == RL_OK);
    EXPECT_NEAR(pa, 1.0, 1e-12);
    REQUIRE(align_percent_agreement(2, 4, x + 8, &pa) == RL_OK);
    EXPECT_NEAR(pa, 0.0, 1e-12);
    /* a group with a single coder has nothing pairable: NAN, not an error */
    int grp2[4] = {0, 0, 0, 1};
    REQUIRE(align_alpha_by_group(4, 4, x, ALIGN_NOMINAL, grp2, 2, a, NULL) == RL_OK);
    EXPECT(isnan(a[1]));
}

/* Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories;
 * P̄ = 0.378, P̄_e = 0.213, κ = 0.210. */
TEST(fleiss_kappa_wikipedia) {
    static const int n[10 * 5] = {
        0, 0, 0, 0, 14,
        0, 2, 6, 4, 2,
        0, 0, 3, 5, 6,
        0, 3, 9, 2, 0,
        2, 2, 8, 1, 1,
        7, 7, 0, 0, 0,
        3, 2, 6, 3, 0,
        2, 5, 3, 2, 2,
        6, 5, 2, 1, 0,
        0, 2, 2, 3, 7,
    };
    double k;
    REQUIRE(align_fleiss_kappa(10, 5, n, &k) == RL_OK);
    EXPECT_NEAR(k, 0.210, 5e-4);
    int bad[2 * 2] = {2, 1, 1, 1};
    EXPECT(align_fleiss_kappa(2, 2, bad, &k) == RL_EINVAL);
}

/* Cohen's κ, the 2×2 textbook example (Wikipedia "Cohen's kappa"): 50 items,
 * both yes 20, A yes/B no 5, A no/B yes 10, both no 15: p_o = 0.7, p_e = 0.5,
 * κ = 0.4. Second example: 45/15/25/15 → κ = 0.1304. */
TEST(cohen_kappa_textbook) {
    int a[100], b[100], n = 0;
    for (int i = 0; i < 20; i++) { a[n] = 1; b[n++] = 1; }
    for (int i = 0; i < 5; i++) { a[n] = 1; b[n++] = 0; }
    for (int i = 0; i < 10; i++) { a[n] = 0; b[n++] = 1; }
    for (int i = 0; i < 15; i++) { a[n] = 0; b[n++] = 0; }
    double k, kl, kq;
    REQUIRE(align_cohen_kappa(n, a, b, 2, ALIGN_KAPPA_UNWEIGHTED, &k) == RL_OK);
    EXPECT_NEAR(k, 0.4, 1e-12);
    /* with two categories every weighting gives the same κ */
    REQUIRE(align_cohen_kappa(n, a, b, 2, ALIGN_KAPPA_LINEAR, &kl) == RL_OK);
    REQUIRE(align_cohen_kappa(n, a, b, 2, ALIGN_KAPPA_QUADRATIC, &kq) == RL_OK);
    EXPECT_NEAR(kl, 0.4, 1e-12);
    EXPECT_NEAR(kq, 0.4, 1e-12);
    n = 0;
    for (int i = 0; i < 45; i++) { a[n] = 1; b[n++] = 1; }
    for (int i = 0; i < 15; i++) { a[n] = 1; b[n++] = 0; }
    for (int i = 0; i < 25; i++) { a[n] = 0; b[n++] = 1; }
    for (int i = 0; i < 15; i++) { a[n] = 0; b[n++] = 0; }
    REQUIRE(align_cohen_kappa(n, a, b, 2, ALIGN_KAPPA_UNWEIGHTED, &k) == RL_OK);
    EXPECT_NEAR(k, 0.1304, 1e-4);
    /* missing ratings are skipped */
    a[0] = -1;
    REQUIRE(align_cohen_kappa(1, a, b, 2, ALIGN_KAPPA_UNWEIGHTED, &k) == RL_EINVAL);
}

/* Weighted κ on a 3×3 table computed by hand (docs/align.md shows the sums):
 * pairs (0,0)×3 (1,1)×2 (2,2)×2 (0,1) (1,2) (0,2): p_o = .7, p_e = .32,
 * κ = .38/.68; linear 1 − .2/.47; quadratic 1 − .15/.365. */
TEST(cohen_kappa_weighted_hand) {
    int a[10] = {0, 0, 0, 1, 1, 2, 2, 0, 1, 0};
    int b[10] = {0, 0, 0, 1, 1, 2, 2, 1, 2, 2};
    double k;
    REQUIRE(align_cohen_kappa(10, a, b, 3, ALIGN_KAPPA_UNWEIGHTED, &k) == RL_OK);
    EXPECT_NEAR(k, 0.38 / 0.68, 1e-12);
    REQUIRE(align_cohen_kappa(10, a, b, 3, ALIGN_KAPPA_LINEAR, &k) == RL_OK);
    EXPECT_NEAR(k, 1 - 0.2 / 0.47, 1e-12);
    REQUIRE(align_cohen_kappa(10, a, b, 3, ALIGN_KAPPA_QUADRATIC, &k) == RL_OK);
    EXPECT_NEAR(k, 1 - 0.15 / 0.365, 1e-12);
}

/* ---- weights ----------------------------------------------------------------- */

TEST(kish_ess_and_deff) {
    double w1[4] = {1, 1, 1, 1}, w2[4] = {2, 0, 1, 1};
    EXPECT_NEAR(align_kish_ess(4, w1), 4, 1e-12);
    EXPECT_NEAR(align_design_effect(4, w1), 1, 1e-12);
    EXPECT_NEAR(align_kish_ess(4, w2), 16.0 / 6.0, 1e-12);
    /* deff = 1 + CV² with the population CV: mean 1, var (1+1+0+0)/4 = .5 */
    EXPECT_NEAR(align_design_effect(4, w2), 1.5, 1e-12);
}

/* 2×2 raking solved by hand: counts (A0,B0)=40 (A0,B1)=10 (A1,B0)=20 (A1,B1)=30,
 * targets 50/50 on both. Raking keeps the odds ratio 40·30/(10·20) = 6, so the
 * raked table is x, 50−x / 50−x, x with x/(50−x) = √6. */
TEST(rake_matches_hand_solved_2x2) {
    int n = 100, codes[200], ncat[2] = {2, 2};
    for (int i = 0; i < n; i++) {
        int a = i >= 50, bb = i < 40 ? 0 : i < 50 ? 1 : i < 70 ? 0 : 1;
        codes[i] = a; codes[n + i] = bb;
    }
    double T[4] = {0.5, 0.5, 0.5, 0.5}, w[100];
    align_rake_report rep;
    align_rake_opts o = align_rake_defaults();
    o.tol = 1e-10;
    REQUIRE(align_rake(n, 2, codes, ncat, T, NULL, &o, w, &rep) == RL_OK);
    EXPECT(rep.converged);
    double x = 50 * sqrt(6.0) / (1 + sqrt(6.0));
    EXPECT_NEAR(w[0], x / 40, 1e-8);
    EXPECT_NEAR(w[45], (50 - x) / 10, 1e-8);
    EXPECT_NEAR(w[60], (50 - x) / 20, 1e-8);
    EXPECT_NEAR(w[99], x / 30, 1e-8);
    EXPECT(rep.max_margin_err <= 1e-10);
    EXPECT_NEAR(rep.ess, align_kish_ess(n, w), 1e-9);
    EXPECT_NEAR(rep.deff * rep.ess, n, 1e-9);
    EXPECT(rep.iterations > 1 && rep.iterations < 100);
}

TEST(rake_one_attribute_equals_poststratification) {
    int n = 10, codes[10] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 2}, ncat = 3;
    double T[3] = {0.2, 0.5, 0.3}, w1[10], w2[10];
    REQUIRE(align_rake(n, 1, codes, &ncat, T, NULL, NULL, w1, NULL) == RL_OK);
    REQUIRE(align_poststratify(n, codes, 3, T, NULL, w2) == RL_OK);
    for (int i = 0; i < n; i++) EXPECT_NEAR(w1[i], w2[i], 1e-9);
    /* 7 of 10 in cell 0 with share .2: weight .2·10/7 */
    EXPECT_NEAR(w2[0], 0.2 * 10 / 7, 1e-12);
    EXPECT_NEAR(w2[9], 0.3 * 10 / 1, 1e-12);
    /* base weights: cells {0,0,1,1}, b = {1,3,1,1}, T = {.5,.5}: b·T·W/W_h = {.75, 2.25, 1.5, 1.5}, mean 1 → ×4/6 */
    int c4[4] = {0, 0, 1, 1};
    double b4[4] = {1, 3, 1, 1}, T4[2] = {0.5, 0.5}, w4[4];
    REQUIRE(align_poststratify(4, c4, 2, T4, b4, w4) == RL_OK);
    EXPECT_NEAR(w4[0], 0.5, 1e-12); EXPECT_NEAR(w4[1], 1.5, 1e-12); EXPECT_NEAR(w4[2], 1.0, 1e-12);
    /* cells from two attributes */
    int codes2[2 * 4] = {0, 0, 1, 1, 0, 1, 0, 1}, nc2[2] = {2, 2}, cell[4], ncells;
    REQUIRE(align_cells(4, 2, codes2, nc2, cell, &ncells) == RL_OK);
    EXPECT(ncells == 4 && cell[0] == 0 && cell[1] == 1 && cell[2] == 2 && cell[3] == 3);
    /* an empty cell with a target is an error that says what to do */
    double T2[3] = {0.2, 0.5, 0.3};
    int codes3[3] = {0, 0, 1};
    EXPECT(align_poststratify(3, codes3, 3, T2, NULL, w2) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "collapse") != NULL);
}

TEST(rake_cap_and_errors) {
    /* 95 of 100 in category 0 but target 50/50: raw weights would be ~10 for the 5. */
    int n = 100, codes[100], ncat = 2;
    for (int i = 0; i < n; i++) codes[i] = i < 95 ? 0 : 1;
    double T[2] = {0.5, 0.5}, w[100];
    align_rake_report rep;
    REQUIRE(align_rake(n, 1, codes, &ncat, T, NULL, NULL, w, &rep) == RL_OK);
    EXPECT(rep.converged);
    EXPECT_NEAR(w[99], 10.0, 1e-6);
    align_rake_opts o = align_rake_defaults();
    o.cap = 5;
    o.max_iter = 50;
    REQUIRE(align_rake(n, 1, codes, &ncat, T, NULL, &o, w, &rep) == RL_OK);
    EXPECT(!rep.converged);               /* the cap makes 50/50 unreachable */
    EXPECT(rep.w_max <= 5 * 1.0 + 1e-9);  /* weights have mean 1 */
    EXPECT(rep.n_capped == 5);
    EXPECT(rep.max_margin_err > 0.1);
    /* errors */
    double Tbad[2] = {0.5, 0.7};
    EXPECT(align_rake(n, 1, codes, &ncat, Tbad, NULL, NULL, w, NULL) == RL_EINVAL);
    int codes0[100];
    for (int i = 0; i < n; i++) codes0[i] = 0;
    EXPECT(align_rake(n, 1, codes0, &ncat, T, NULL, NULL, w, NULL) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "no evaluators") != NULL);
    o.cap = 0.5;
    EXPECT(align_rake(n, 1, codes, &ncat, T, NULL, &o, w, NULL) == RL_EINVAL);
}

TEST(example_weights) {
    int annot[5] = {0, 0, 1, 2, 2};
    double aw[3] = {2, 1, 0.5}, rel[3] = {1, 0.5, 1}, ew[5];
    REQUIRE(align_example_weights(5, annot, 3, aw, NULL, ew) == RL_OK);
    /* raw 2,2,1,.5,.5 (sum 6) → ×5/6 */
    EXPECT_NEAR(ew[0], 2 * 5.0 / 6, 1e-12); EXPECT_NEAR(ew[3], 0.5 * 5.0 / 6, 1e-12);
    REQUIRE(align_example_weights(5, annot, 3, aw, rel, ew) == RL_OK);
    /* raw 2,2,.5,.5,.5 (sum 5.5) */
    EXPECT_NEAR(ew[2], 0.5 * 5 / 5.5, 1e-12);
    int bad[1] = {3};
    EXPECT(align_example_weights(1, bad, 3, aw, NULL, ew) == RL_EINVAL);
}

/* ---- Dawid–Skene -------------------------------------------------------------- */

/* 600 items, 3 classes, 11 annotators who all label every item: 3 experts
 * (90% accurate, errors uniform), 7 uniform spammers and 1 annotator who
 * always says class 0. Majority vote drowns the experts; DS finds them. */
TEST(dawid_skene_recovers_simulated_annotators) {
    enum { NI = 600, NA_ = 11, K = 3 };
    static int item[NI * NA_], ann[NI * NA_], lab[NI * NA_], truth[NI], mv[NI];
    rl_rng rng;
    rl_rng_seed(&rng, 7);
    int o = 0;
    for (int i = 0; i < NI; i++) {
        truth[i] = (int)rl_rng_below(&rng, K);
        for (int a = 0; a < NA_; a++) {
            int l;
            if (a < 3) l = rl_rng_uniform_d(&rng) < 0.9 ? truth[i] : (truth[i] + 1 + (int)rl_rng_below(&rng, K - 1)) % K;
            else if (a < 10) l = (int)rl_rng_below(&rng, K);
            else l = 0;
            item[o] = i; ann[o] = a; lab[o] = l; o++;
        }
    }
    REQUIRE(align_majority_vote(o, item, lab, NI, K, mv) == RL_OK);
    align_ds_result r;
    REQUIRE(align_dawid_skene(o, item, ann, lab, NI, NA_, K, NULL, NULL, &r) == RL_OK);
    int ok_mv = 0, ok_ds = 0;
    for (int i = 0; i < NI; i++) { ok_mv += mv[i] == truth[i]; ok_ds += r.label[i] == truth[i]; }
    double acc_mv = (double)ok_mv / NI, acc_ds = (double)ok_ds / NI;
    if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "  DS accuracy %.3f, majority vote %.3f, %d iterations\n", acc_ds, acc_mv, r.iterations);
    EXPECT(acc_ds >= 0.95);
    EXPECT(acc_mv <= acc_ds - 0.10);
    EXPECT(r.converged);
    /* confusion matrices: experts ≈ .9 on the diagonal, spammers ≈ 1/3 everywhere,
     * the constant annotator says 0 whatever the truth */
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < K; c++) EXPECT_NEAR(r.confusion[(a * K + c) * K + c], 0.9, 0.05);
    for (int a = 3; a < 10; a++)
        for (int c = 0; c < K; c++)
            for (int k = 0; k < K; k++) EXPECT_NEAR(r.confusion[(a * K + c) * K + k], 1.0 / 3, 0.1);
    for (int c = 0; c < K; c++) EXPECT(r.confusion[(10 * K + c) * K + 0] > 0.99);
    for (int c = 0; c < K; c++) EXPECT_NEAR(r.prior[c], 1.0 / 3, 0.06);
    /* reliability ranks the experts first */
    for (int a = 3; a < NA_; a++) EXPECT(r.reliability[a] < r.reliability[0] - 0.3);
    align_ds_free(&r);
    /* bad input */
    int badlab = 5, zero = 0;
    EXPECT(align_dawid_skene(1, &zero, &zero, &badlab, 1, 1, K, NULL, NULL, &r) == RL_EINVAL);
}

/* ---- aggregation --------------------------------------------------------------- */

TEST(aggregate_hand_values) {
    float u[2] = {1, 4}, out, g[2];
    double p[2] = {0.5, 0.5};
    align_agg_params P = {p, NULL, 0, 0};
    REQUIRE(align_aggregate(ALIGN_AGG_MEAN, &P, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 2.5, 1e-6); EXPECT_NEAR(g[0], 0.5, 1e-7);
    REQUIRE(align_aggregate(ALIGN_AGG_NASH, &P, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, log(2.0), 1e-6); EXPECT_NEAR(g[0], 0.5, 1e-7); EXPECT_NEAR(g[1], 0.125, 1e-7);
    P.alpha = 1;   /* geometric mean */
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 2.0, 1e-6); EXPECT_NEAR(g[0], 1.0, 1e-6); EXPECT_NEAR(g[1], 0.25, 1e-6);
    P.alpha = 2;   /* harmonic mean 1/(.5/1 + .5/4) = 1.6; grad .5·(s/1.6)^-2 */
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 1.6, 1e-6); EXPECT_NEAR(g[0], 1.28, 1e-6); EXPECT_NEAR(g[1], 0.08, 1e-6);
    P.alpha = 0.5; /* (.5·1 + .5·2)² = 2.25 */
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 2.25, 1e-6);
    REQUIRE(align_aggregate(ALIGN_AGG_MIN, &P, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 1.0, 0); EXPECT(g[0] == 1 && g[1] == 0);
    /* population weights .8/.2 */
    double p2[2] = {4, 1};
    align_agg_params P2 = {p2, NULL, 0, 0};
    REQUIRE(align_aggregate(ALIGN_AGG_MEAN, &P2, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 0.8 * 1 + 0.2 * 4, 1e-6);
    /* disagreement point: nash on u − d */
    double d[2] = {0.5, 2};
    align_agg_params P3 = {p, d, 0, 0};
    REQUIRE(align_aggregate(ALIGN_AGG_NASH, &P3, 1, 2, u, &out, g, NULL) == RL_OK);
    EXPECT_NEAR(out, 0.5 * log(0.5) + 0.5 * log(2.0), 1e-6);
}

TEST(aggregate_alpha_limits) {
    enum { N = 50, G = 3 };
    float u[N * G], out0[N], outm[N], outb[N], outmin[N], g[N * G];
    rl_rng rng;
    rl_rng_seed(&rng, 3);
    for (int i = 0; i < N * G; i++) u[i] = 0.1f + 3 * rl_rng_uniform(&rng);
    double p[G] = {0.5, 0.3, 0.2};
    align_agg_params P = {p, NULL, 0, 0};
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, N, G, u, out0, g, NULL) == RL_OK);
    REQUIRE(align_aggregate(ALIGN_AGG_MEAN, &P, N, G, u, outm, NULL, NULL) == RL_OK);
    for (int n = 0; n < N; n++) EXPECT_NEAR(out0[n], outm[n], 1e-6);       /* α = 0 is the mean */
    P.alpha = 400;
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, N, G, u, outb, g, NULL) == RL_OK);
    REQUIRE(align_aggregate(ALIGN_AGG_MIN, &P, N, G, u, outmin, NULL, NULL) == RL_OK);
    for (int n = 0; n < N; n++) {
        EXPECT(outb[n] >= outmin[n] - 1e-6);
        EXPECT_NEAR(outb[n], outmin[n], 0.02 * outmin[n]);                 /* large α approaches min */
        double gs = g[n * G] + g[n * G + 1] + g[n * G + 2];
        EXPECT_NEAR(gs, 1.0, 0.02);                                          /* weight concentrates ... */
        int a = 0;
        for (int k = 1; k < G; k++) if (u[n * G + k] < u[n * G + a]) a = k;
        EXPECT(g[n * G + a] > 0.5);                                          /* ... on the worst group */
    }
    P.alpha = INFINITY;
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, N, G, u, outb, NULL, NULL) == RL_OK);
    for (int n = 0; n < N; n++) EXPECT(outb[n] == outmin[n]);
    /* α → 1 is continuous (the expm1/log1p form) */
    float a1[N], a1p[N];
    P.alpha = 1; REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, N, G, u, a1, NULL, NULL) == RL_OK);
    P.alpha = 1 + 1e-9; REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, N, G, u, a1p, NULL, NULL) == RL_OK);
    for (int n = 0; n < N; n++) EXPECT_NEAR(a1[n], a1p[n], 1e-5);
    /* monotone in α: mean >= EDE(α) >= min */
    float prev[N];
    memcpy(prev, outm, sizeof prev);
    for (double al = 0.5; al < 40; al *= 2) {
        P.alpha = al;
        REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, N, G, u, out0, NULL, NULL) == RL_OK);
        for (int n = 0; n < N; n++) EXPECT(out0[n] <= prev[n] + 1e-5 && out0[n] >= outmin[n] - 1e-5);
        memcpy(prev, out0, sizeof prev);
    }
}

/* Gradient weights equal finite differences of out (double-checked in float). */
TEST(aggregate_gradients_match_finite_differences) {
    enum { G = 3 };
    float u[G] = {0.7f, 1.9f, 1.2f}, out, g[G];
    double p[G] = {0.2, 0.5, 0.3}, d[G] = {0.1, 0.2, -0.3};
    align_rule rules[3] = {ALIGN_AGG_MEAN, ALIGN_AGG_NASH, ALIGN_AGG_ISOELASTIC};
    double alphas[4] = {0.3, 1.0, 2.5, 7.0};
    for (int r = 0; r < 3; r++)
        for (int ai = 0; ai < (rules[r] == ALIGN_AGG_ISOELASTIC ? 4 : 1); ai++) {
            align_agg_params P = {p, d, alphas[ai], 0};
            REQUIRE(align_aggregate(rules[r], &P, 1, G, u, &out, g, NULL) == RL_OK);
            for (int k = 0; k < G; k++) {
                float up[G], dn[G], op, om;
                memcpy(up, u, sizeof up); memcpy(dn, u, sizeof dn);
                up[k] += 1e-2f; dn[k] -= 1e-2f;
                align_aggregate(rules[r], &P, 1, G, up, &op, NULL, NULL);
                align_aggregate(rules[r], &P, 1, G, dn, &om, NULL, NULL);
                double fd = ((double)op - om) / ((double)up[k] - dn[k]);
                EXPECT_MSG(fabs(fd - g[k]) < 2e-3 + 2e-3 * fabs(g[k]), "rule %d alpha %g group %d: fd %g grad %g", r, alphas[ai], k, fd, (double)g[k]);
            }
        }
}

TEST(aggregate_guard_and_maxmin) {
    /* Nash/isoelastic below the disagreement point: finite, increasing, largest weight there */
    float u[3 * 2] = {-5, 2, -0.5f, 2, 0.5f, 2}, out[3], g[3 * 2];
    align_agg_params P = {NULL, NULL, 2, 0};
    REQUIRE(align_aggregate(ALIGN_AGG_NASH, &P, 3, 2, u, out, g, NULL) == RL_OK);
    for (int n = 0; n < 3; n++) EXPECT(isfinite(out[n]) && g[n * 2] > g[n * 2 + 1]);
    EXPECT(out[0] < out[1] && out[1] < out[2]);
    REQUIRE(align_aggregate(ALIGN_AGG_ISOELASTIC, &P, 3, 2, u, out, g, NULL) == RL_OK);
    for (int n = 0; n < 3; n++) EXPECT(isfinite(out[n]) && g[n * 2] > g[n * 2 + 1]);
    EXPECT(out[0] < out[1] && out[1] < out[2]);
    /* group-level maximin: group 1 is worse on average though not on every sample */
    float v[3 * 2] = {1, 0, 1, 3, 1, -2}, o2[3];
    int chosen = -5;
    REQUIRE(align_aggregate(ALIGN_AGG_MAXMIN, NULL, 3, 2, v, o2, g, &chosen) == RL_OK);
    EXPECT(chosen == 1);
    EXPECT(o2[0] == 0 && o2[1] == 3 && o2[2] == -2);
    EXPECT(g[0] == 0 && g[1] == 1);
    /* per-sample min picks per row */
    REQUIRE(align_aggregate(ALIGN_AGG_MIN, NULL, 3, 2, v, o2, g, &chosen) == RL_OK);
    EXPECT(chosen == -1 && o2[0] == 0 && o2[1] == 1 && o2[2] == -2);
    /* bad input */
    float bad[2] = {NAN, 1};
    EXPECT(align_aggregate(ALIGN_AGG_MEAN, NULL, 1, 2, bad, o2, NULL, NULL) == RL_EINVAL);
    align_agg_params Pn = {NULL, NULL, -1, 0};
    EXPECT(align_aggregate(ALIGN_AGG_ISOELASTIC, &Pn, 1, 2, v, o2, NULL, NULL) == RL_EINVAL);
    EXPECT(align_rule_parse("nash") == ALIGN_AGG_NASH && align_rule_parse("bogus") == -1);
}

TEST(group_outcomes) {
    /* 4 prompts, 2 groups */
    float r[4 * 2] = {1, 0, 2, 0, 3, 1, 2, 0};
    float ref[4 * 2] = {0, 1, 2, 1, 1, 0, 5, 1};
    double m[2], w[2];
    align_outcome_summary s;
    REQUIRE(align_group_outcomes(4, 2, r, ref, m, w, &s) == RL_OK);
    EXPECT_NEAR(m[0], 2.0, 1e-12); EXPECT_NEAR(m[1], 0.25, 1e-12);
    EXPECT_NEAR(w[0], (1 + 0.5 + 1 + 0) / 4.0, 1e-12);
    EXPECT_NEAR(w[1], (0 + 0 + 1 + 0) / 4.0, 1e-12);
    EXPECT(s.best == 0 && s.worst == 1 && s.worst_win == 1);
    EXPECT_NEAR(s.gap_mean, 1.75, 1e-12);
    EXPECT_NEAR(s.gap_win, 0.625 - 0.25, 1e-12);
    EXPECT_NEAR(s.win_ratio, 0.25 / 0.625, 1e-12);
    /* Gini of (.625, .25): Σ|diff| = 2·.375 over 2·4·.4375 */
    EXPECT_NEAR(s.win_gini, 0.75 / (8 * 0.4375), 1e-12);
    REQUIRE(align_group_outcomes(4, 2, r, NULL, m, w, &s) == RL_OK);
    EXPECT(isnan(w[0]) && s.worst_win == -1);
}

/* ---- consensus -------------------------------------------------------------- */

TEST(consensus_counts_and_rules) {
    /* 6 participants (groups 0,0,0,1,1,-1), 3 statements.
     * s0: group 0 all agree, group 1 all disagree  -> divisive, high raw agree
     * s1: both groups mostly agree                 -> consensus
     * s2: few votes                                                      */
    const signed char N_ = ALIGN_VOTE_NONE;
    signed char v[6 * 3] = {
        1, 1, N_,
        1, 1, 0,
        1, 0, N_,
        -1, 1, N_,
        -1, 1, 1,
        1, 1, N_,
    };
    int grp[6] = {0, 0, 0, 1, 1, -1};
    align_consensus c;
    REQUIRE(align_consensus_rank(6, 3, v, grp, 2, ALIGN_CONS_PRODUCT, NULL, &c) == RL_OK);
    EXPECT(c.agree[0 * 3 + 0] == 3 && c.disagree[1 * 3 + 0] == 2);
    EXPECT(c.agree_all[0] == 4 && c.agree_all[1] == 5 && c.pass_all[1] == 1);
    EXPECT(c.group_size[0] == 3 && c.group_size[1] == 2);
    /* q for s1: group 0 (2+1)/(3+2) = .6, group 1 (2+1)/(2+2) = .75 */
    EXPECT_NEAR(c.q[0 * 3 + 1], 0.6, 1e-12);
    EXPECT_NEAR(c.q[1 * 3 + 1], 0.75, 1e-12);
    EXPECT_NEAR(c.score[1], 0.45, 1e-12);
    EXPECT_NEAR(c.score[0], (4.0 / 5) * (1.0 / 4), 1e-12);
    EXPECT(c.rank[0] == 1);
    EXPECT(c.rank_raw[0] == 1 && c.rank_raw[1] == 0);
    align_consensus_free(&c);
    REQUIRE(align_consensus_rank(6, 3, v, grp, 2, ALIGN_CONS_MIN, NULL, &c) == RL_OK);
    EXPECT_NEAR(c.score[1], 0.6, 1e-12);
    align_consensus_free(&c);
    unsigned char inc[3] = {1, 0, 1};
    REQUIRE(align_consensus_rank(6, 3, v, grp, 2, ALIGN_CONS_MEAN, inc, &c) == RL_OK);
    EXPECT(c.n_ranked == 2 && c.rank[0] != 1 && c.rank_raw[0] == 0);
    align_consensus_free(&c);
    int badg[6] = {0, 0, 0, 1, 1, 2};
    EXPECT(align_consensus_rank(6, 3, v, badg, 2, ALIGN_CONS_PRODUCT, NULL, &c) == RL_EINVAL);
}

/* ---- CSV ------------------------------------------------------------------ */

TEST(csv_quotes_newlines_crlf_bom) {
    const char *s = "\xEF\xBB\xBF" "a,b,c\r\n1,\"x, y\",\"he said \"\"hi\"\"\"\r\n\r\n2,\"multi\nline\",\n3,,\"\"";
    csv_reader *r;
    REQUIRE(csv_open_mem(&r, s, strlen(s), "mem.csv") == RL_OK);
    int nf; char **f;
    REQUIRE(csv_next(r, &nf, &f) == RL_OK);
    EXPECT(nf == 3); EXPECT_STREQ(f[0], "a"); EXPECT_STREQ(f[2], "c");
    EXPECT(csv_find(nf, f, "b") == 1 && csv_find(nf, f, "z") == -1);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK);
    EXPECT(nf == 3); EXPECT_STREQ(f[1], "x, y"); EXPECT_STREQ(f[2], "he said \"hi\"");
    EXPECT(csv_line(r) == 2);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK);
    EXPECT(nf == 3); EXPECT_STREQ(f[1], "multi\nline"); EXPECT_STREQ(f[2], "");
    EXPECT(csv_line(r) == 4);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK);
    EXPECT(nf == 3); EXPECT_STREQ(f[0], "3"); EXPECT_STREQ(f[1], ""); EXPECT_STREQ(f[2], "");
    EXPECT(csv_line(r) == 6);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK);
    EXPECT(nf == -1 && f == NULL);
    csv_close(r);
}

TEST(csv_cr_endings_and_wide_rows) {
    /* old-Mac CR line ends, and a 300-field row (the field table grows) */
    char buf[4096];
    int o = snprintf(buf, sizeof buf, "a,b\r1,2\r");
    for (int i = 0; i < 300; i++) o += snprintf(buf + o, sizeof buf - o, i ? ",%d" : "%d", i);
    csv_reader *r;
    REQUIRE(csv_open_mem(&r, buf, (size_t)o, "cr.csv") == RL_OK);
    int nf; char **f;
    REQUIRE(csv_next(r, &nf, &f) == RL_OK); EXPECT(nf == 2);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK); EXPECT(nf == 2 && !strcmp(f[1], "2")); EXPECT(csv_line(r) == 2);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK); EXPECT(nf == 300 && !strcmp(f[299], "299")); EXPECT(csv_line(r) == 3);
    REQUIRE(csv_next(r, &nf, &f) == RL_OK); EXPECT(nf == -1);
    csv_close(r);
}

TEST(csv_errors_say_where) {
    const char *bad[] = {"a,b\n1,\"open\n2,3\n", "a,b\n1,x\"y\n", "a,b\n1,\"q\"z\n"};
    const char *what[] = {"mem.csv:2:3: quoted field is never closed", "mem.csv:2:4: quote inside an unquoted field", "mem.csv:2:6: text after the closing quote"};
    for (int t = 0; t < 3; t++) {
        csv_reader *r;
        REQUIRE(csv_open_mem(&r, bad[t], strlen(bad[t]), "mem.csv") == RL_OK);
        int nf; char **f;
        EXPECT(csv_next(r, &nf, &f) == RL_OK);
        EXPECT(csv_next(r, &nf, &f) == RL_EFORMAT);
        EXPECT_MSG(strstr(rl_error(), what[t]) != NULL, "got '%s'", rl_error());
        EXPECT(csv_next(r, &nf, &f) == RL_EFORMAT); /* sticky */
        csv_close(r);
    }
    csv_reader *r;
    EXPECT(csv_open(&r, "/nonexistent/x.csv") == RL_ENOTFOUND);
}

TEST_MAIN()
