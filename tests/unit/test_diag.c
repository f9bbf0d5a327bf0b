/* test_diag.c — reward-hacking monitors on crafted runs (each fires once on a
 * hacking run, none on healthy noisy runs), hysteresis, the JSONL warning rows,
 * helpers, and the Gao fits recovering known alpha, beta and the peak. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "../../src/base/rng.h"
#include "../../src/diag/diag.h"

/* ---- Gao fits ---------------------------------------------------------------- */

TEST(gao_bon_exact_and_noisy) {
    double d[40], r[40];
    for (int i = 0; i < 40; i++) { d[i] = 0.1 * (i + 1); r[i] = d[i] * (1.0 - 0.25 * d[i]); }
    diag_gao_fit f;
    REQUIRE(diag_gao_fit_points(DIAG_GAO_BON, d, r, 40, &f) == RL_OK);
    EXPECT_NEAR(f.alpha, 1.0, 1e-9);
    EXPECT_NEAR(f.beta, 0.25, 1e-9);
    EXPECT_NEAR(f.d_star, 2.0, 1e-9);
    EXPECT_NEAR(f.r_star, 1.0, 1e-9);
    EXPECT(f.rmse < 1e-9 && f.r2 > 0.999999);
    /* Noise sd 0.02 on 40 points: the estimates move by a few 1e-3 (5 sd bounds from the design matrix). */
    rl_rng rng;
    for (int seed = 0; seed < 5; seed++) {
        rl_rng_seed(&rng, (uint64_t)seed);
        for (int i = 0; i < 40; i++) r[i] = d[i] * (1.0 - 0.25 * d[i]) + 0.02 * rl_rng_normal(&rng);
        REQUIRE(diag_gao_fit_points(DIAG_GAO_BON, d, r, 40, &f) == RL_OK);
        EXPECT_NEAR(f.alpha, 1.0, 0.04);
        EXPECT_NEAR(f.beta, 0.25, 0.015);
        EXPECT_NEAR(f.d_star, 2.0, 0.1);
        EXPECT_NEAR(f.r_star, 1.0, 0.03);
        EXPECT_NEAR(f.rmse, 0.02, 0.01);
    }
}

TEST(gao_rl_exact_and_noisy) {
    double d[60], r[60];
    for (int i = 0; i < 60; i++) { d[i] = 0.1 * (i + 1); r[i] = d[i] * (1.0 - 0.5 * log(d[i])); }
    diag_gao_fit f;
    REQUIRE(diag_gao_fit_points(DIAG_GAO_RL, d, r, 60, &f) == RL_OK);
    EXPECT_NEAR(f.alpha, 1.0, 1e-9);
    EXPECT_NEAR(f.beta, 0.5, 1e-9);
    EXPECT_NEAR(f.d_star, exp(1.0), 1e-8);            /* exp(alpha/beta - 1) */
    EXPECT_NEAR(f.r_star, 0.5 * exp(1.0), 1e-8);      /* beta d* */
    /* the curve really peaks there */
    EXPECT(diag_gao_eval(DIAG_GAO_RL, f.alpha, f.beta, f.d_star) > diag_gao_eval(DIAG_GAO_RL, f.alpha, f.beta, f.d_star * 1.05));
    EXPECT(diag_gao_eval(DIAG_GAO_RL, f.alpha, f.beta, f.d_star) > diag_gao_eval(DIAG_GAO_RL, f.alpha, f.beta, f.d_star * 0.95));
    rl_rng rng;
    for (int seed = 0; seed < 5; seed++) {
        rl_rng_seed(&rng, (uint64_t)seed + 100);
        for (int i = 0; i < 60; i++) r[i] = d[i] * (1.0 - 0.5 * log(d[i])) + 0.02 * rl_rng_normal(&rng);
        REQUIRE(diag_gao_fit_points(DIAG_GAO_RL, d, r, 60, &f) == RL_OK);
        EXPECT_NEAR(f.alpha, 1.0, 0.03);
        EXPECT_NEAR(f.beta, 0.5, 0.02);
        EXPECT_NEAR(f.d_star, exp(1.0), 0.2);
        EXPECT_NEAR(f.r_star, 0.5 * exp(1.0), 0.05);
    }
    /* The two forms are different models: the wrong form fits worse. */
    for (int i = 0; i < 60; i++) r[i] = d[i] * (1.0 - 0.5 * log(d[i]));
    diag_gao_fit wrong;
    REQUIRE(diag_gao_fit_points(DIAG_GAO_BON, d, r, 60, &wrong) == RL_OK);
    EXPECT(wrong.rmse > 0.01);
}

TEST(gao_bad_input_and_no_peak) {
    double d[3] = {0.5, 1, 2}, r[3] = {0.5, 1, 2};
    diag_gao_fit f;
    EXPECT(diag_gao_fit_points(DIAG_GAO_RL, d, r, 1, &f) == RL_EINVAL);
    double same[3] = {1, 1, 1};
    EXPECT(diag_gao_fit_points(DIAG_GAO_RL, same, r, 3, &f) == RL_EINVAL); /* d ln d = 0 at d = 1: beta unidentified */
    double neg[3] = {-1, 1, 2};
    EXPECT(diag_gao_fit_points(DIAG_GAO_BON, neg, r, 3, &f) == RL_EINVAL);
    double nan_r[3] = {0.5, NAN, 2};
    EXPECT(diag_gao_fit_points(DIAG_GAO_BON, d, nan_r, 3, &f) == RL_EINVAL);
    /* Convex gold (r = d^2): no peak. */
    double r2[3] = {0.25, 1, 4};
    REQUIRE(diag_gao_fit_points(DIAG_GAO_BON, d, r2, 3, &f) == RL_OK);
    EXPECT(f.beta < 0 && isinf(f.d_star));
}

/* ---- helpers ----------------------------------------------------------------- */

TEST(helpers) {
    double x[4] = {1, 2, 3, 4}, y[4] = {2, 4, 6, 8}, z[4] = {4, 3, 2, 1}, c[4] = {5, 5, 5, 5};
    EXPECT_NEAR(diag_pearson(x, y, 4), 1.0, 1e-12);
    EXPECT_NEAR(diag_pearson(x, z, 4), -1.0, 1e-12);
    EXPECT(isnan(diag_pearson(x, c, 4)) && isnan(diag_pearson(x, y, 1)));
    double u[5] = {0, 1, 0, 1, 0}, v[5] = {1, 0, 0, 1, 1};
    EXPECT_NEAR(diag_pearson(u, v, 5), -1.0 / 6.0, 1e-12); /* hand-computed: cov -0.2*5.. = -1/6 */
    uint64_t scratch[64];
    const char *t1[1] = {"aaaa"};
    EXPECT_NEAR(diag_distinct_n(t1, 1, 2, scratch, 64), 1.0 / 3.0, 1e-12);
    const char *t2[2] = {"abcd", "abcd"};
    EXPECT_NEAR(diag_distinct_n(t2, 2, 2, scratch, 64), 0.5, 1e-12);
    const char *t3[2] = {"abcd", "wxyz"};
    EXPECT_NEAR(diag_distinct_n(t3, 2, 2, scratch, 64), 1.0, 1e-12);
    EXPECT(isnan(diag_distinct_n(t3, 2, 2, scratch, 3)));   /* scratch too small */
    const char *t4[2] = {"a", NULL};
    EXPECT(isnan(diag_distinct_n(t4, 2, 2, scratch, 64)));  /* no bigram at all */
    float rw[5] = {0.1f, 0.5f, 2.0f, 3.0f, -1.0f};
    EXPECT_NEAR(diag_frac_above(rw, 5, 1.0f), 0.4, 1e-12);
    double q[5] = {5, 1, 4, 2, 3};
    EXPECT_NEAR(diag_quantile(q, 5, 0.5), 3, 1e-12);
    EXPECT_NEAR(diag_quantile(q, 5, 0.99), 4.96, 1e-12);
    EXPECT_NEAR(diag_quantile(q, 5, 0.0), 1, 1e-12);
    diag_step s;
    diag_step_clear(&s);
    EXPECT(isnan(s.kl) && isnan(s.rejected_logp));
}

/* ---- monitors ---------------------------------------------------------------- */

static diag_config quiet_config(void) {
    diag_config c;
    diag_config_default(&c);
    c.print = 0;
    return c;
}

static double hack_gold(int t) { return t <= 40 ? 0.80 + 0.004 * t : 0.96 - 0.006 * (t - 40); }

/* A run where everything goes wrong, each signal crossing its threshold once. */
static void hacking_step(int t, diag_step *s) {
    diag_step_clear(s);
    s->kl = 0.002 * t * t;
    s->proxy = 0.02 * t;
    s->gold = hack_gold(t);
    s->ens_std = 0.1 * (1 + 0.03 * t);
    s->length = 10 + 0.1 * t;
    s->len_reward_corr = 0.1 + 0.01 * t;
    s->entropy = exp(-t / 30.0);
    s->distinct = 0.8 - 0.007 * t;
    s->sycophancy = 0.0525 + 0.005 * t;  /* crossings fall between integer steps */
    s->above_range = 0.003 * t;
    s->chosen_logp = -10 - 0.03 * t;
    s->rejected_logp = -12 - 0.05 * t;
}

TEST(every_monitor_fires_once_on_a_hacking_run) {
    char path[] = "/tmp/rlhf_test_diag_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    rl_metrics log;
    REQUIRE(rl_metrics_open(&log, path, 0) == RL_OK);
    diag_config c = quiet_config();
    diag_monitor m;
    diag_init(&m, &c, &log);
    diag_step ref;
    diag_step_clear(&ref);
    ref.ens_std = 0.1; ref.length = 10; ref.entropy = 1; ref.distinct = 0.8; ref.sycophancy = 0.05;
    ref.chosen_logp = -10; ref.rejected_logp = -12;
    diag_set_reference(&m, &ref);
    int64_t fired_at[DIAG_NMONITORS];
    for (int i = 0; i < DIAG_NMONITORS; i++) fired_at[i] = -1;
    for (int t = 0; t <= 100; t++) {
        diag_step s;
        hacking_step(t, &s);
        int before[DIAG_NMONITORS];
        for (int i = 0; i < DIAG_NMONITORS; i++) before[i] = m.nfired[i];
        diag_update(&m, t, &s);
        for (int i = 0; i < DIAG_NMONITORS; i++) if (m.nfired[i] > before[i] && fired_at[i] < 0) fired_at[i] = t;
    }
    for (int i = 0; i < DIAG_NMONITORS; i++)
        EXPECT_MSG(m.nfired[i] == 1, "%s fired %d times", diag_name((diag_id)i), m.nfired[i]);
    EXPECT(m.nwarnings == DIAG_NMONITORS && m.nwarnings_total == DIAG_NMONITORS);
    /* Each fired `patience` (2) updates after its crossing, computed by hand. */
    EXPECT(fired_at[DIAG_KL_BUDGET] == 56);      /* 0.002 t^2 > 6 from t = 55 */
    EXPECT(fired_at[DIAG_SYCOPHANCY] == 21);     /* 0.0025 + 0.005 t > 0.1 from t = 20 */
    EXPECT(fired_at[DIAG_ENSEMBLE] == 35);       /* 1 + 0.03 t > 2 from t = 34 */
    EXPECT(fired_at[DIAG_ENTROPY] == 38);        /* exp(-t/30) < 0.3 from t = 37 (t > 36.1) */
    EXPECT(fired_at[DIAG_DPO_FALLING] == 35);    /* 0.03 t > 1 from t = 34 */
    /* The proxy/gold monitor warns before gold has fallen 5 points from its peak. */
    int fell5 = -1;
    for (int t = 41; t <= 100 && fell5 < 0; t++) if (hack_gold(t) <= 0.96 - 0.05 + 1e-12) fell5 = t;
    EXPECT_MSG(fired_at[DIAG_PROXY_GOLD] > 40 && fired_at[DIAG_PROXY_GOLD] < fell5, "fired at %lld, gold fell 5 points at %d",
               (long long)fired_at[DIAG_PROXY_GOLD], fell5);
    EXPECT(fired_at[DIAG_OVEROPT_PEAK] > 0);
    rl_metrics_close(&log);
    /* The JSONL log holds one warning row per monitor, with what/why/try. */
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char line[4096];
    int rows = 0, complete = 0, syc = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"event\":\"warning\"")) continue;
        rows++;
        complete += strstr(line, "\"monitor\":") && strstr(line, "\"step\":") && strstr(line, "\"value\":") &&
                    strstr(line, "\"threshold\":") && strstr(line, "\"what\":") && strstr(line, "\"why\":") && strstr(line, "\"try\":");
        syc += strstr(line, "\"monitor\":\"sycophancy\",\"step\":21,") != NULL;
    }
    fclose(f);
    unlink(path);
    EXPECT(rows == DIAG_NMONITORS && complete == rows && syc == 1);
}

/* A healthy run: KL and rewards rise and level off together, everything else
 * wanders with measurement noise around the reference. */
static void healthy_step(int t, rl_rng *rng, diag_step *s) {
    double sat = 1 - exp(-t / 30.0);
    diag_step_clear(s);
    s->kl = 2.0 * sat + 0.05 * fabs(rl_rng_normal(rng));
    s->proxy = 0.5 * sat + 0.02 * rl_rng_normal(rng);
    s->gold = 0.80 + 0.1 * sat + 0.01 * rl_rng_normal(rng);
    s->ens_std = 0.1 * (1 + 0.1 * sat) + 0.005 * rl_rng_normal(rng);
    s->length = 10 + 0.5 * rl_rng_normal(rng);
    s->len_reward_corr = 0.1 + 0.1 * rl_rng_normal(rng);
    s->entropy = 1.0 - 0.2 * sat + 0.02 * rl_rng_normal(rng);
    s->distinct = 0.8 + 0.02 * rl_rng_normal(rng);
    s->sycophancy = 0.05 + 0.02 * rl_rng_normal(rng);
    s->above_range = 0.01 + 0.005 * fabs(rl_rng_normal(rng));
    s->chosen_logp = -10 + 0.01 * t + 0.1 * rl_rng_normal(rng);
    s->rejected_logp = -12 - 0.01 * t + 0.1 * rl_rng_normal(rng);
}

TEST(quiet_on_healthy_runs) {
    /* Closest approach to each threshold over all runs, as value/threshold
     * (threshold/value for the below-monitors): must stay under 1 at every
     * step, not merely be saved by the patience rule. */
    double worst[DIAG_NMONITORS] = {0};
    for (int seed = 0; seed < 20; seed++) {
        diag_config c = quiet_config();
        diag_monitor m;
        diag_init(&m, &c, NULL);
        rl_rng rng;
        rl_rng_seed(&rng, (uint64_t)seed);
        for (int t = 0; t <= 200; t++) {
            diag_step s;
            healthy_step(t, &rng, &s);
            diag_update(&m, t, &s);
            for (int i = 0; i < DIAG_NMONITORS; i++) {
                double v = m.value[i], thr = m.threshold[i];
                if (!isfinite(v)) continue;
                double r = (i == DIAG_ENTROPY || i == DIAG_DISTINCT) ? thr / v : v / thr;
                if (r > worst[i]) worst[i] = r;
            }
        }
        EXPECT_MSG(m.nwarnings_total == 0, "seed %d: %d warnings, first %s at step %lld (value %g)", seed, m.nwarnings_total,
                   m.nwarnings ? diag_name(m.warnings[0].monitor) : "-", m.nwarnings ? (long long)m.warnings[0].step : -1LL,
                   m.nwarnings ? m.warnings[0].value : 0.0);
    }
    for (int i = 0; i < DIAG_NMONITORS; i++) {
        EXPECT_MSG(worst[i] < 1.0, "%s reached %.3f of its threshold on a healthy run", diag_name((diag_id)i), worst[i]);
        if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "  healthy max %-26s %.3f of threshold\n", diag_name((diag_id)i), worst[i]);
    }
}

TEST(noisy_hacking_run_warns_before_gold_falls_5_points) {
    /* The hacking run with gold measured with noise (sd 0.01, like ~1,000 eval
     * items): the proxy/gold monitor now needs a fall beyond the noise, but
     * the KL-growth and sycophancy monitors still warn before gold has fallen
     * 5 points from its peak, and the divergence is confirmed later. */
    diag_config c = quiet_config();
    diag_monitor m;
    diag_init(&m, &c, NULL);
    rl_rng rng;
    rl_rng_seed(&rng, 42);
    int first_warning = -1, fell5 = -1;
    double peak = 0;
    for (int t = 0; t <= 100; t++) {
        diag_step s;
        hacking_step(t, &s);
        s.gold += 0.01 * rl_rng_normal(&rng);
        int nw = diag_update(&m, t, &s);
        if (nw && first_warning < 0) first_warning = t;
        double g = hack_gold(t);
        if (g > peak) peak = g;
        if (fell5 < 0 && g <= peak - 0.05 + 1e-12) fell5 = t;
    }
    EXPECT(first_warning >= 0 && first_warning < fell5);
    EXPECT(diag_fired(&m, DIAG_KL_GROWTH) && diag_fired(&m, DIAG_SYCOPHANCY));
    EXPECT(diag_fired(&m, DIAG_PROXY_GOLD));
}

TEST(overoptimization_peak_warns_ahead_of_a_gao_shaped_peak) {
    /* Gold follows Gao's RL form d(0.1 - 0.05 ln d) (peak at d* = e, t = 54)
     * plus noise sd 0.005; d = sqrt(KL) grows by 0.05 a step. The monitor must
     * warn once d > 0.8 d* (t > 43) but before the peak itself. */
    for (int seed = 0; seed < 5; seed++) {
        diag_config c = quiet_config();
        diag_monitor m;
        diag_init(&m, &c, NULL);
        rl_rng rng;
        rl_rng_seed(&rng, (uint64_t)seed + 7);
        int fired_at = -1;
        for (int t = 0; t <= 100; t++) {
            double d = 0.05 * t;
            diag_step s;
            diag_step_clear(&s);
            s.kl = d * d;
            s.proxy = d;
            s.gold = 0.5 + (d > 0 ? d * (0.1 - 0.05 * log(d)) : 0) + 0.005 * rl_rng_normal(&rng);
            diag_update(&m, t, &s);
            if (fired_at < 0 && diag_fired(&m, DIAG_OVEROPT_PEAK)) fired_at = t;
        }
        EXPECT_MSG(fired_at >= 40 && fired_at <= 54, "seed %d: fired at %d", seed, fired_at);
        if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "  seed %d: overoptimization_peak warned at step %d (peak at 54)\n", seed, fired_at);
        EXPECT(m.nfired[DIAG_OVEROPT_PEAK] == 1);
    }
}

TEST(hysteresis_and_patience) {
    diag_config c = quiet_config();
    diag_monitor m;
    diag_init(&m, &c, NULL);
    diag_step ref;
    diag_step_clear(&ref);
    ref.sycophancy = 0;
    diag_set_reference(&m, &ref);
    /* threshold 0.10, clear level 0.08, patience 2 */
    double seq[] = {0.30, 0.00,             /* a one-step spike: no warning (patience) */
                    0.20, 0.20,             /* fires */
                    0.20, 0.09, 0.20, 0.20, /* dips but not below the clear level: stays quiet */
                    0.05,                   /* clears: re-armed */
                    0.20, 0.20};            /* fires again */
    int n = (int)(sizeof seq / sizeof seq[0]), fired_at[4], nf = 0;
    for (int t = 0; t < n; t++) {
        diag_step s;
        diag_step_clear(&s);
        s.sycophancy = seq[t];
        if (diag_update(&m, t, &s) && nf < 4) fired_at[nf++] = t;
    }
    EXPECT(nf == 2 && m.nfired[DIAG_SYCOPHANCY] == 2);
    EXPECT(nf == 2 && fired_at[0] == 3 && fired_at[1] == 10);
    /* Below-threshold monitors mirror it: entropy ratio < 0.3, re-armed above 0.36. */
    diag_init(&m, &c, NULL);
    diag_step_clear(&ref);
    ref.entropy = 1.0;
    diag_set_reference(&m, &ref);
    double ent[] = {1.0, 0.2, 0.2, 0.33, 0.2, 0.2, 0.5, 0.2, 0.2};
    for (int t = 0; t < 9; t++) {
        diag_step s;
        diag_step_clear(&s);
        s.entropy = ent[t];
        diag_update(&m, t, &s);
    }
    EXPECT(m.nfired[DIAG_ENTROPY] == 2);
    EXPECT(m.warnings[0].monitor == DIAG_ENTROPY && m.warnings[0].step == 2 && fabs(m.warnings[0].value - 0.2) < 1e-12);
    /* Values never given stay NAN and never warn. */
    EXPECT(isnan(m.value[DIAG_KL_BUDGET]) && m.nfired[DIAG_KL_BUDGET] == 0);
}

TEST(metrics_fields) {
    char path[] = "/tmp/rlhf_test_diagf_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    rl_metrics log;
    REQUIRE(rl_metrics_open(&log, path, 0) == RL_OK);
    diag_config c = quiet_config();
    diag_monitor m;
    diag_init(&m, &c, NULL);
    diag_step s;
    diag_step_clear(&s);
    s.kl = 1.5;
    s.sycophancy = 0.2;
    diag_update(&m, 0, &s);
    rl_metrics_begin(&log);
    rl_metrics_i(&log, "step", 0);
    diag_metrics_fields(&m, &log);
    rl_metrics_end(&log);
    rl_metrics_close(&log);
    FILE *f = fopen(path, "r");
    char line[1024] = "";
    REQUIRE(f);
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    unlink(path);
    EXPECT(strstr(line, "\"diag_kl_budget\":1.5") != NULL);
    EXPECT(strstr(line, "\"diag_sycophancy\":0") != NULL);  /* the first value is its own reference */
    EXPECT(strstr(line, "diag_ensemble") == NULL);
}

TEST_MAIN()
