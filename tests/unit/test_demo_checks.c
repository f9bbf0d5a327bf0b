/* test_demo_checks.c — the acceptance checks of `rlhf demo` (src/demo/checks.c)
 * on crafted rows and crafted trainer logs: each check passes on numbers that
 * meet its bar, fails on numbers just short of it, and fails (saying why) when
 * its numbers are missing. Also the log helpers it relies on (trend, warnings
 * live vs replayed). */
#include <stdarg.h>
#include <unistd.h>
#include "test.h"
#include "../../src/demo/demo.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf-test-demo-XXXXXX");
        if (!mkdtemp(tmpdir)) abort();
    }
    char *b = buf[k++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

/* Writes lines (NULL-terminated) to tmp/name; returns the path. */
static const char *write_log(const char *name, ...) {
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    if (!f) abort();
    va_list ap;
    va_start(ap, name);
    const char *l;
    while ((l = va_arg(ap, const char *))) fprintf(f, "%s\n", l);
    va_end(ap);
    fclose(f);
    return p;
}

/* A PPO-like log: n iterations, proxy from p0 to p1, gold from g0 to g1
 * (linear; gold omitted when g0 is NAN), kl 0.05 * step; an optional warning
 * row at warn_step (< 0: none). */
static const char *ppo_log(const char *name, int n, double p0, double p1, double g0, double g1, int warn_step, const char *monitor) {
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    if (!f) abort();
    for (int i = 0; i < n; i++) {
        double t = n > 1 ? (double)i / (n - 1) : 0;
        fprintf(f, "{\"step\":%d,\"reward_mean\":%.6f,\"kl\":%.4f", i, p0 + (p1 - p0) * t, 0.05 * i);
        if (!isnan(g0)) fprintf(f, ",\"gold\":%.6f", g0 + (g1 - g0) * t);
        fprintf(f, "}\n");
        if (i == warn_step)
            fprintf(f, "{\"event\":\"warning\",\"monitor\":\"%s\",\"step\":%d,\"value\":1,\"threshold\":0.5}\n", monitor, i);
    }
    fclose(f);
    return p;
}

static sim_pop_config pc;

static void row(demo_row *r, const char *method, demo_role role, double acc, double syc, double s0, double s1, const char *log) {
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->role = role;
    r->ran = 1;
    r->eval.heldout_accuracy = acc;
    r->eval.n_heldout = 300;
    r->eval.sycophancy = syc;
    r->eval.ngroups = 2;
    r->eval.satisfaction[0] = s0;
    r->eval.satisfaction[1] = s1;
    r->eval.min_satisfaction = s0 < s1 ? s0 : s1;
    r->kl = r->proxy = NAN;
    snprintf(r->log, sizeof r->log, "%s", log ? log : "");
    demo_log_warn_info(r->log, &r->warn);
}

/* The story the demo should tell: every check passes. */
static int good_rows(demo_row *rows) {
    sim_pop_default(&pc);
    pc.ngroups = 2;
    row(&rows[0], "sft", DEMO_ROLE_SFT, 0.91, 0.10, 0.6, 0.5, NULL);
    row(&rows[1], "ppo (single RM)", DEMO_ROLE_UNMITIGATED, 0.67, 0.15, 0.4, 0.3,
        ppo_log("ppo.jsonl", 30, 0.2, 1.5, 0.9, 0.6, 4, "proxy_gold_divergence"));
    row(&rows[2], "ppo (ensemble min)", DEMO_ROLE_MITIGATION, 0.70, 0.12, 0.4, 0.4, ppo_log("ens.jsonl", 30, 0.1, 0.2, 0.9, 0.7, -1, ""));
    row(&rows[3], "ppo (early stop)", DEMO_ROLE_MITIGATION, 0.895, 0.11, 0.6, 0.5, ppo_log("early.jsonl", 8, 0.2, 0.4, 0.9, 0.89, -1, ""));
    row(&rows[4], "ppo utilitarian", DEMO_ROLE_UTILITARIAN, 0.90, 0.1, 0.70, 0.40, ppo_log("util.jsonl", 10, 0, 1, NAN, NAN, -1, ""));
    row(&rows[5], "ppo maximin", DEMO_ROLE_MAXIMIN, 0.91, 0.1, 0.55, 0.55, ppo_log("mm.jsonl", 10, 0, 1, NAN, NAN, -1, ""));
    return 6;
}

TEST(all_pass_on_the_story) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    int failed = demo_run_checks(rows, n, &pc, c);
    for (int i = 0; i < DEMO_NCHECKS; i++) EXPECT_MSG(c[i].pass, "(%s) %s: %s", c[i].id, c[i].name, c[i].detail);
    EXPECT(failed == 0);
    EXPECT_STREQ(c[0].name, "sft_gate");
    EXPECT_STREQ(c[2].name, "early_warning");
    EXPECT(strstr(c[2].detail, "proxy_gold_divergence at step 4 (live)") != NULL);
    /* gold 0.9 -> 0.6 over 29 steps: the trailing 3-mean is 5 points below the start mean at step 7 */
    double fell = NAN;
    for (int k = 0; k < c[2].nvals; k++) if (!strcmp(c[2].keys[k], "gold_fell_5_at_step")) fell = c[2].vals[k];
    EXPECT_NEAR(fell, 7, 0);
    EXPECT(strstr(c[3].detail, "ppo (early stop)") && strstr(c[3].detail, "within 3"));
    EXPECT(strstr(c[4].detail, "maximin raised it") != NULL);
    char *js = demo_checks_json(c, DEMO_NCHECKS);
    REQUIRE(js);
    EXPECT(strstr(js, "\"name\":\"sft_gate\",\"pass\":true") != NULL);
    EXPECT(strstr(js, "\"sft_accuracy\":0.91") != NULL);
    free(js);
}

TEST(gate_just_below_fails) {
    demo_row rows[8];
    int n = good_rows(rows);
    rows[0].eval.heldout_accuracy = 0.8967; /* 269/300 */
    demo_check c[DEMO_NCHECKS];
    EXPECT(demo_run_checks(rows, n, &pc, c) >= 1);
    EXPECT(!c[0].pass);
    EXPECT(strstr(c[0].detail, "89.7%") != NULL);
    rows[0].eval.heldout_accuracy = 0.90;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(c[0].pass);
}

TEST(overopt_needs_all_three) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    /* gold fell 9.9 points: not enough */
    rows[1].eval.heldout_accuracy = 0.811;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[1].pass);
    EXPECT(strstr(c[1].detail, "too little") != NULL);
    rows[1].eval.heldout_accuracy = 0.81;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(c[1].pass);
    /* sycophancy did not rise */
    rows[1].eval.sycophancy = 0.10;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[1].pass);
    rows[1].eval.sycophancy = 0.15;
    /* proxy falling */
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("ppo_down.jsonl", 30, 1.5, 0.2, 0.9, 0.6, 4, "kl_growth"));
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[1].pass);
    EXPECT(strstr(c[1].detail, "NOT rising") != NULL);
    /* no log at all: one value is not a trend */
    rows[1].log[0] = 0;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[1].pass);
}

TEST(early_warning_timing) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    /* the warning comes at step 7, when gold is already 5 points down: fail */
    rows[1].role = DEMO_ROLE_UNMITIGATED;
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("late.jsonl", 30, 0.2, 1.5, 0.9, 0.6, 7, "kl_budget"));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    EXPECT(rows[1].warn.live == 1 && rows[1].warn.first_step == 7 && rows[1].warn.replayed == 0);
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(!c[2].pass, "%s", c[2].detail);
    /* one step earlier: pass */
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("early6.jsonl", 30, 0.2, 1.5, 0.9, 0.6, 6, "kl_budget"));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(c[2].pass, "%s", c[2].detail);
    /* gold never fell 5 points: a warning is not "early" about anything */
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("flatgold.jsonl", 30, 0.2, 1.5, 0.9, 0.88, 2, "kl_budget"));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(!c[2].pass && strstr(c[2].detail, "no fall to warn about"), "%s", c[2].detail);
    /* no gold series: cannot be told, fails and says so */
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("nogold.jsonl", 30, 0.2, 1.5, NAN, NAN, 2, "kl_budget"));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[2].pass);
    EXPECT(strstr(c[2].detail, "no gold series") != NULL);
    /* gold logged, no warning at all: fail */
    snprintf(rows[1].log, sizeof rows[1].log, "%s", write_log("quiet.jsonl", "{\"step\":0,\"reward_mean\":0.1,\"kl\":0,\"gold\":0.9,\"diag_kl_budget\":0}",
                                                            "{\"step\":1,\"reward_mean\":0.2,\"kl\":0.01,\"gold\":0.9,\"diag_kl_budget\":0.01}", NULL));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    EXPECT(rows[1].warn.monitored && rows[1].warn.total == 0);
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[2].pass);
    EXPECT(strstr(c[2].detail, "no warning") != NULL);
}

TEST(early_warning_on_heldout_snapshots) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    /* held-out accuracy of the snapshots decides when gold fell, not the noisy rollouts */
    snprintf(rows[1].heldout_log, sizeof rows[1].heldout_log, "%s",
             write_log("held.jsonl", "{\"step\":0,\"heldout_accuracy\":0.91}", "{\"step\":2,\"heldout_accuracy\":0.90}",
                       "{\"step\":4,\"heldout_accuracy\":0.86}", "{\"step\":6,\"heldout_accuracy\":0.70}", NULL));
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("h3.jsonl", 30, 0.2, 1.5, 0.9, 0.9, 3, "kl_growth"));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(c[2].pass, "%s", c[2].detail);
    EXPECT(strstr(c[2].detail, "held-out gold accuracy of its snapshots") != NULL);
    EXPECT(strstr(c[2].detail, "5 points below its start at step 4") != NULL);
    snprintf(rows[1].log, sizeof rows[1].log, "%s", ppo_log("h4.jsonl", 30, 0.2, 1.5, 0.9, 0.9, 4, "kl_growth"));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(!c[2].pass, "%s", c[2].detail);
}

TEST(early_warning_on_eval_rows) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    /* ppo --eval-prompts: greedy validation gold on "eval" rows, step 0 = the start, read unsmoothed */
    snprintf(rows[1].log, sizeof rows[1].log, "%s",
             write_log("evalrows.jsonl", "{\"step\":0,\"gold\":0.90,\"eval\":1}", "{\"step\":1,\"reward_mean\":0.1,\"kl\":0.1,\"gold_rollout\":0.5}",
                       "{\"step\":2,\"reward_mean\":0.2,\"kl\":0.2,\"gold\":0.89,\"eval\":1}",
                       "{\"event\":\"warning\",\"monitor\":\"kl_growth\",\"step\":3}",
                       "{\"step\":4,\"reward_mean\":0.5,\"kl\":0.4,\"gold\":0.84,\"eval\":1}", NULL));
    demo_log_warn_info(rows[1].log, &rows[1].warn);
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(c[2].pass && strstr(c[2].detail, "greedy validation gold") && strstr(c[2].detail, "at step 4"), "%s", c[2].detail);
}

TEST(mitigation_needs_gold_and_rising_proxy) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    rows[5].eval.heldout_accuracy = 0.85; /* maximin counts too: keep it out of the way here */
    rows[3].eval.heldout_accuracy = 0.879; /* 3.1 points below SFT */
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(!c[3].pass, "%s", c[3].detail);
    rows[3].eval.heldout_accuracy = 0.88;
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(c[3].pass, "%s", c[3].detail);
    /* within 3 points but the proxy did not rise: not a mitigation that still optimises */
    snprintf(rows[3].log, sizeof rows[3].log, "%s", ppo_log("flat.jsonl", 8, 0.3, 0.3, 0.9, 0.9, -1, ""));
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[3].pass);
    /* maximin within 3 points with a rising proxy is a mitigation as well */
    rows[5].eval.heldout_accuracy = 0.90;
    demo_run_checks(rows, n, &pc, c);
    EXPECT_MSG(c[3].pass && strstr(c[3].detail, "ppo maximin: gold 90.0%"), "%s", c[3].detail);
    rows[5].eval.heldout_accuracy = 0.85;
    /* none ran */
    rows[2].ran = rows[3].ran = 0;
    snprintf(rows[2].note, sizeof rows[2].note, "its reward model failed to train");
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[3].pass);
    EXPECT(strstr(c[3].detail, "failed to train") != NULL);
}

TEST(group_table) {
    demo_row rows[8];
    int n = good_rows(rows);
    demo_check c[DEMO_NCHECKS];
    rows[5].eval.min_satisfaction = 0.3;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(c[4].pass);
    EXPECT(strstr(c[4].detail, "maximin did NOT raise it") != NULL);
    rows[5].ran = 0;
    demo_run_checks(rows, n, &pc, c);
    EXPECT(!c[4].pass);
    EXPECT(strstr(c[4].detail, "maximin run did not run") != NULL);
}

TEST(trend_and_replay) {
    double a, b;
    EXPECT(demo_log_trend(tmp_path("missing.jsonl"), "reward_mean", &a, &b) == 0 && isnan(a) && isnan(b));
    /* 20 values 0..19: k = 5, first mean 2, last mean 17 */
    const char *p = ppo_log("lin.jsonl", 20, 0, 19, NAN, NAN, -1, "");
    EXPECT(demo_log_trend(p, "reward_mean", &a, &b) == 20);
    EXPECT_NEAR(a, 2, 1e-9);
    EXPECT_NEAR(b, 17, 1e-9);
    /* a log without monitors of its own is replayed: KL far over the budget warns */
    const char *q = write_log("hot.jsonl", "{\"step\":0,\"kl\":0.1,\"reward_mean\":0}", "{\"step\":1,\"kl\":7,\"reward_mean\":1}",
                              "{\"step\":2,\"kl\":8,\"reward_mean\":1}", "{\"step\":3,\"kl\":9,\"reward_mean\":1}", NULL);
    demo_warn_info w;
    demo_log_warn_info(q, &w);
    EXPECT(!w.monitored && w.live == 0 && w.replayed >= 1 && w.total == w.replayed);
    EXPECT(strstr(w.names, "kl_budget") != NULL);
    EXPECT(w.first_step >= 1 && w.first_step <= 3);
    /* the same numbers from a trainer that monitors itself are taken at its word (no replay) */
    const char *r = write_log("mon.jsonl", "{\"step\":0,\"kl\":0.1,\"reward_mean\":0,\"diag_kl_budget\":0.1}",
                              "{\"step\":1,\"kl\":7,\"reward_mean\":1,\"diag_kl_budget\":7}", NULL);
    demo_log_warn_info(r, &w);
    EXPECT(w.monitored && w.total == 0 && w.first_step == -1);
    demo_log_warn_info("", &w);
    EXPECT(w.total == 0 && w.first_step == -1);
    /* the count-and-names form */
    const char *two = write_log("two.jsonl", "{\"step\":3,\"kl\":1}", "{\"event\":\"warning\",\"monitor\":\"length_reward_correlation\",\"step\":3}",
                                "{\"event\":\"warning\",\"monitor\":\"kl_budget\",\"step\":4}", "{\"event\":\"warning\",\"monitor\":\"kl_budget\",\"step\":9}", NULL);
    char names[64], tiny[12];
    EXPECT(demo_log_warnings(two, names, sizeof names) == 3);
    EXPECT_STREQ(names, "length_reward_correlation,kl_budget");
    EXPECT(demo_log_warnings(two, tiny, sizeof tiny) == 3);
    EXPECT_STREQ(tiny, "kl_budget");
    EXPECT(demo_log_warnings("/nonexistent/log.jsonl", names, sizeof names) == 0 && names[0] == 0);
}

TEST_MAIN()
