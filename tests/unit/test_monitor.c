/* test_monitor.c — src/train/monitor.h (the measurements the trainers feed
 * the live monitors) and demo_log_warnings reading the trainers' own warning rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "../../src/train/monitor.h"
#include "../../src/demo/demo.h"

/* token:ID rewards need no tokenizer: length, Pearson(length, reward) and the
 * out-of-range share are checked against hand computations; distinct-n and gold
 * need a tokenizer and stay NAN. */
TEST(rollout_measures_without_tokenizer) {
    reward_fn *r = NULL;
    REQUIRE(reward_open(&r, "token:3", NULL, 4, 16, NULL) == RL_OK);
    trn_monitor m;
    REQUIRE(trn_mon_init(&m, NULL, NULL, NULL, r, NULL, 4, 16) == RL_OK);
    int pr[1] = {0}, a[2] = {3, 3}, b[4] = {3, 3, 3, 3}, c[6] = {3, 3, 3, 3, 3, 3};
    reward_item it[3] = {{pr, 1, a, 2}, {pr, 1, b, 4}, {pr, 1, c, 6}};
    float s[3];
    REQUIRE(reward_score(r, it, 3, s, NULL) == RL_OK);
    diag_step d;
    diag_step_clear(&d);
    REQUIRE(trn_mon_rollout(&m, it, s, 3, &d) == RL_OK);
    EXPECT_NEAR(d.length, 4.0, 1e-12);
    EXPECT_NEAR(d.len_reward_corr, 1.0, 1e-12); /* reward = length here */
    EXPECT(isnan(d.distinct) && isnan(d.gold) && isnan(d.above_range) && isnan(d.ens_std));
    /* reward = -length: perfectly anti-correlated */
    float neg[3] = {-2, -4, -6};
    REQUIRE(trn_mon_rollout(&m, it, neg, 3, &d) == RL_OK);
    EXPECT_NEAR(d.len_reward_corr, -1.0, 1e-12);
    EXPECT(trn_mon_rollout(&m, it, s, 5, &d) == RL_EINVAL); /* more rows than planned */
    trn_mon_free(&m);
    reward_close(r);
    /* a bad gold spec is refused at init */
    REQUIRE(reward_open(&r, "token:3", NULL, 4, 16, NULL) == RL_OK);
    EXPECT(trn_mon_init(&m, NULL, NULL, NULL, r, "nope", 4, 16) != RL_OK);
    reward_close(r);
}

/* A monitor fed through a metrics log writes the rows demo_log_warnings counts. */
TEST(demo_counts_live_warning_rows) {
    char path[] = "/tmp/rl_test_monXXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    rl_metrics met;
    REQUIRE(rl_metrics_open(&met, path, 0) == RL_OK);
    diag_config cfg;
    diag_config_default(&cfg);
    cfg.print = 0;
    cfg.kl_budget = 1.0;
    diag_monitor *dm = malloc(sizeof *dm);
    diag_init(dm, &cfg, &met);
    for (int t = 0; t < 6; t++) {
        diag_step s;
        diag_step_clear(&s);
        s.kl = 0.5 * t;             /* beyond 1.0 from t = 3; patience 2 -> one warning at t = 4 */
        s.len_reward_corr = t >= 2 ? 0.9 : 0.0; /* beyond 0.6 from t = 2 -> one warning at t = 3 */
        diag_update(dm, t, &s);
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", t);
        rl_metrics_f(&met, "kl", s.kl);
        rl_metrics_end(&met);
    }
    rl_metrics_close(&met);
    EXPECT(dm->nwarnings_total == 2);
    char names[64];
    EXPECT(demo_log_warnings(path, names, sizeof names) == 2);
    EXPECT_STREQ(names, "length_reward_correlation,kl_budget");
    char tiny[12]; /* too small for both names: keeps what fits */
    EXPECT(demo_log_warnings(path, tiny, sizeof tiny) == 2);
    EXPECT(strlen(tiny) < sizeof tiny);
    EXPECT(demo_log_warnings("/nonexistent/log.jsonl", names, sizeof names) == 0 && names[0] == 0);
    free(dm);
    unlink(path);
}

TEST_MAIN()
