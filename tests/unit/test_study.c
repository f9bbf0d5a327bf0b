/* test_study.c — the over-optimisation study's pieces (src/study/study.h):
 * best-of-n estimators against brute force, the prefix trick against fresh
 * sampling with the same seeds, list parsing. The whole command runs in
 * tests/cli/study.sh. */
#include "test.h"
#include "../../src/base/rng.h"
#include "../../src/model/gpt.h"
#include "../../src/model/sampler.h"
#include "../../src/study/study.h"
#include "../../src/train/bon.h"

/* Next k-subset of {0..N-1} in lexicographic order; 0 after the last. */
static int next_subset(int *s, int k, int N) {
    int i = k - 1;
    while (i >= 0 && s[i] == N - k + i) i--;
    if (i < 0) return 0;
    s[i]++;
    for (int j = i + 1; j < k; j++) s[j] = s[j - 1] + 1;
    return 1;
}

TEST(subset_weights_sum_to_one_and_match_binomials) {
    static double w[1000];
    for (int N = 1; N <= 40; N += 3)
        for (int n = 1; n <= N; n++) {
            study_bon_weights(N, n, w);
            double s = 0;
            for (int j = 0; j < N; j++) { EXPECT(w[j] >= 0); s += w[j]; }
            EXPECT_NEAR(s, 1.0, 1e-12);
            /* j-th best is chosen iff it is in the subset and the n-1 others are among the N-1-j worse ones */
            double lc = lgamma(N + 1.0) - lgamma(n + 1.0) - lgamma(N - n + 1.0);
            for (int j = 0; j < N; j++) {
                double want = N - 1 - j >= n - 1
                                  ? exp(lgamma(N - j + 0.0) - lgamma(n + 0.0) - lgamma(N - j - n + 1.0) - lc)
                                  : 0.0;
                EXPECT_NEAR(w[j], want, 1e-10);
            }
        }
    study_bon_weights(1000, 1, w); /* n = 1: uniform */
    EXPECT_NEAR(w[0], 1e-3, 1e-15);
}

/* The subsets estimator equals the average, over every n-subset (in index
 * order), of the proxy/gold of the answer bon_argmax picks — ties included. */
TEST(subsets_estimator_equals_brute_force_over_all_subsets) {
    rl_rng rng;
    rl_rng_seed(&rng, 5);
    for (int trial = 0; trial < 30; trial++) {
        int N = 1 + (int)rl_rng_below(&rng, 9);
        float proxy[9], gold[9];
        for (int i = 0; i < N; i++) {
            proxy[i] = (float)rl_rng_below(&rng, 4); /* few values: many ties */
            gold[i] = (float)rl_rng_uniform_d(&rng);
        }
        int order[9];
        double w[9];
        study_bon_order(proxy, N, order);
        EXPECT(order[0] == bon_argmax(proxy, N));
        for (int n = 1; n <= N; n++) {
            double vp, vg;
            EXPECT(study_bon_estimate(proxy, gold, N, n, STUDY_BON_SUBSETS, order, w, &vp, &vg) == -1);
            int s[9];
            for (int i = 0; i < n; i++) s[i] = i;
            double bp = 0, bg = 0;
            long cnt = 0;
            do {
                float sub[9];
                for (int i = 0; i < n; i++) sub[i] = proxy[s[i]];
                int b = s[bon_argmax(sub, n)];
                bp += proxy[b];
                bg += gold[b];
                cnt++;
            } while (next_subset(s, n, N));
            EXPECT_NEAR(vp, bp / cnt, 1e-6);
            EXPECT_NEAR(vg, bg / cnt, 1e-6);
        }
    }
}

TEST(proxy_estimate_never_falls_with_n) {
    rl_rng rng;
    rl_rng_seed(&rng, 11);
    float proxy[64], gold[64];
    int order[64];
    double w[64];
    for (int i = 0; i < 64; i++) { proxy[i] = (float)rl_rng_uniform_d(&rng); gold[i] = 1 - proxy[i]; }
    study_bon_order(proxy, 64, order);
    double last = -1, lastp = -1, g1 = 0, g64 = 0;
    for (int n = 1; n <= 64; n++) {
        double vp, vg, pp, pg;
        study_bon_estimate(proxy, gold, 64, n, STUDY_BON_SUBSETS, order, w, &vp, &vg);
        study_bon_estimate(proxy, gold, 64, n, STUDY_BON_PREFIX, order, w, &pp, &pg);
        EXPECT(vp >= last - 1e-9);
        EXPECT(pp >= lastp);
        last = vp;
        lastp = pp;
        if (n == 1) g1 = vg;
        if (n == 64) g64 = vg;
    }
    EXPECT(g64 < g1); /* gold = 1 - proxy: choosing by proxy lowers it */
    EXPECT_NEAR(last, proxy[order[0]], 1e-7); /* n = N: the best of all */
}

TEST(prefix_estimate_is_bon_argmax_of_the_first_n) {
    float proxy[6] = {0.5f, 2.0f, 2.0f, NAN, 7.0f, 1.0f}, gold[6] = {10, 11, 12, 13, 14, 15};
    double vp, vg;
    EXPECT(study_bon_estimate(proxy, gold, 6, 1, STUDY_BON_PREFIX, NULL, NULL, &vp, &vg) == 0);
    EXPECT(study_bon_estimate(proxy, gold, 6, 3, STUDY_BON_PREFIX, NULL, NULL, &vp, &vg) == 1); /* tie: first */
    EXPECT_NEAR(vg, 11, 0);
    EXPECT(study_bon_estimate(proxy, gold, 6, 4, STUDY_BON_PREFIX, NULL, NULL, &vp, &vg) == 1); /* NaN never wins */
    EXPECT(study_bon_estimate(proxy, gold, 6, 6, STUDY_BON_PREFIX, NULL, NULL, &vp, &vg) == 4);
    for (int n = 1; n <= 6; n++) EXPECT(study_bon_estimate(proxy, gold, 6, n, STUDY_BON_PREFIX, NULL, NULL, &vp, &vg) == bon_argmax(proxy, n));
    int order[6];
    study_bon_order(proxy, 6, order);
    EXPECT(order[0] == 4 && order[1] == 1 && order[2] == 2 && order[3] == 5 && order[4] == 0 && order[5] == 3);
}

/* Sampling N answers once and taking the first n gives the same answers, so
 * the same best-of-n choice, as sampling n fresh with the same seed (the
 * sampler's row r draws from stream (seed, r) whatever the batch). */
TEST(prefix_of_one_sampling_run_equals_sampling_n_fresh) {
    gpt_config cfg = {2, 2, 32, 40, 48};
    gpt_model m;
    REQUIRE(gpt_init(&m, &cfg, 1, 48, ops_get("fast"), 3) == RL_OK);
    int prompt[3] = {1, 2, 3};
    const int *pp[16];
    int pl[16];
    for (int i = 0; i < 16; i++) { pp[i] = prompt; pl[i] = 3; }
    sampler_opts so;
    sampler_opts_default(&so);
    so.max_tokens = 12;
    so.stop_tokens[0] = 7; /* a stop token so lengths vary */
    so.seed = 1 + 4 * 1000003u;
    sampler_result big, small;
    REQUIRE(sampler_generate(&m, pp, pl, 16, &so, &big, NULL, NULL) == RL_OK);
    for (int n = 1; n <= 16; n *= 2) {
        REQUIRE(sampler_generate(&m, pp, pl, n, &so, &small, NULL, NULL) == RL_OK);
        float sb[16], ss[16];
        int same = 1;
        for (int r = 0; r < n; r++) {
            same &= small.len[r] == big.len[r] && !memcmp(small.tokens + (size_t)r * small.cap, big.tokens + (size_t)r * big.cap, sizeof(int) * small.len[r]);
            /* a proxy that varies across rows: length plus the sum of the tokens */
            ss[r] = (float)small.len[r];
            sb[r] = (float)big.len[r];
            for (int i = 0; i < small.len[r]; i++) ss[r] += 0.01f * small.tokens[(size_t)r * small.cap + i];
            for (int i = 0; i < big.len[r]; i++) sb[r] += 0.01f * big.tokens[(size_t)r * big.cap + i];
        }
        EXPECT_MSG(same, "n = %d: the first n rows differ", n);
        double vp, vg;
        EXPECT(study_bon_estimate(sb, sb, 16, n, STUDY_BON_PREFIX, NULL, NULL, &vp, &vg) == bon_argmax(ss, n));
        sampler_result_free(&small);
    }
    int distinct = 0;
    for (int r = 1; r < 16; r++) distinct |= big.len[r] != big.len[0];
    EXPECT(distinct); /* the comparison above was not between identical rows */
    sampler_result_free(&big);
    gpt_free(&m);
}

TEST(int_lists_parse_strictly) {
    int v[8];
    EXPECT(study_parse_int_list("1,2,4,64", v, 8, 1, 4096) == 4 && v[0] == 1 && v[3] == 64);
    EXPECT(study_parse_int_list("", v, 8, 1, 4096) == 0);
    EXPECT(study_parse_int_list("0", v, 8, 1, 4096) == -1);
    EXPECT(study_parse_int_list("1,,2", v, 8, 1, 4096) == -1);
    EXPECT(study_parse_int_list("1,2,", v, 8, 1, 4096) == -1);
    EXPECT(study_parse_int_list("2x", v, 8, 1, 4096) == -1);
    EXPECT(study_parse_int_list("5000", v, 8, 1, 4096) == -1);
    EXPECT(study_parse_int_list("1,2,3", v, 2, 1, 4096) == -1);
    EXPECT(study_parse_int_list(NULL, v, 8, 1, 4096) == -1);
}

TEST(bad_options_are_refused_with_a_message) {
    study_opts o;
    study_opts_default(&o);
    study_result r;
    EXPECT(study_overoptimization(&o, &r) == RL_EINVAL); /* no paths */
    study_result_free(&r);
    o.n_n = 0;
    EXPECT(study_overoptimization(&o, &r) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "nothing to study") != NULL);
    study_result_free(&r);
    int bad[1] = {0};
    o.n_list = bad;
    o.n_n = 1;
    EXPECT(study_overoptimization(&o, &r) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "1..") != NULL);
    study_result_free(&r);
}

TEST_MAIN()
