/* test_groupeval.c — per-group outcomes: reward_group_scores (what ppo/bon log),
 * sim_eval_against (rlhf sim eval --reference, the demo's win columns), and the
 * answer/prompt files of rlhf eval. */
#include "test.h"
#include <unistd.h>
#include "../../src/eval/eval.h"
#include "../../src/sim/sim.h"
#include "../../src/train/reward.h"

static char *tmp_with(const char *text) {
    static char path[8][64];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 64, "/tmp/rl_test_ge_XXXXXX");
    int fd = mkstemp(p);
    if (fd < 0) return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) { close(fd); return NULL; }
    close(fd);
    return p;
}

TEST(reward_group_scores_are_the_last_calls) {
    reward_fn *r = NULL;
    reward_agg agg = {"mean", 0};
    REQUIRE(reward_open(&r, "groups:token:5;length:4", NULL, 3, 16, &agg) == RL_OK);
    EXPECT(reward_num_groups(r) == 2);
    int n = -1;
    EXPECT(reward_group_scores(r, &n) == NULL && n == 0); /* before any call */
    int p[2] = {1, 2}, a[4] = {5, 5, 7, 9}, b[2] = {5, 3}, c[1] = {8};
    reward_item it[3] = {{p, 2, a, 4}, {p, 2, b, 2}, {p, 2, c, 1}};
    float s[3], g[6];
    REQUIRE(reward_score(r, it, 3, s, g) == RL_OK);
    const float *gs = reward_group_scores(r, &n);
    REQUIRE(gs && n == 3);
    /* token:5 counts 2, 1, 0; length:4 = 1 - |n/4 - 1|: 1, 0.5, 0.25 */
    float want[6] = {2, 1, 1, 0.5f, 0, 0.25f};
    for (int i = 0; i < 6; i++) { EXPECT_NEAR(gs[i], want[i], 1e-6); EXPECT_NEAR(g[i], want[i], 1e-6); }
    for (int i = 0; i < 3; i++) EXPECT_NEAR(s[i], 0.5 * (want[2 * i] + want[2 * i + 1]), 1e-6);
    /* without a group buffer the accessor still has them */
    REQUIRE(reward_score(r, it, 2, s, NULL) == RL_OK);
    gs = reward_group_scores(r, &n);
    EXPECT(gs && n == 2);
    EXPECT_NEAR(gs[2], 1, 1e-6);
    reward_close(r);
    REQUIRE(reward_open(&r, "token:5", NULL, 3, 16, NULL) == RL_OK);
    REQUIRE(reward_score(r, it, 3, s, NULL) == RL_OK);
    EXPECT(reward_group_scores(r, &n) == NULL && n == 0);
    reward_close(r);
}

TEST(sim_eval_against_win_rates) {
    sim_world w;
    sim_world_default(&w);
    sim_pop_config pc;
    sim_pop_default(&pc);
    /* terse group: terse 1 > sentence .6 > working .2; working group: the reverse */
    char *pol = tmp_with("{\"prompt\":\"what is 37+48?\",\"response\":\"85\"}\n"
                         "{\"prompt\":\"what is 37+48?\",\"response\":\"7+8=15, carry 1, 3+4+1=8, so 85.\"}\n"
                         "{\"prompt\":\"what is 21+43?\",\"response\":\"21 + 43 = 64.\"}\n");
    char *ref = tmp_with("{\"prompt\":\"what is 37+48?\",\"response\":\"37 + 48 = 85.\"}\n"
                         "{\"prompt\":\"what is 37+48?\",\"response\":\"75\"}\n"
                         "{\"prompt\":\"what is 21+43?\",\"response\":\"64\"}\n");
    REQUIRE(pol && ref);
    sim_eval_summary s, s0;
    sim_ref_outcome ro;
    REQUIRE(sim_eval_against(pol, ref, &w, &pc, &s, &ro) == RL_OK);
    /* terse: win, win, lose (.6 < 1) -> 2/3; working: lose, win, win (.6 > .2) -> 2/3 */
    EXPECT_NEAR(ro.win[0], 2.0 / 3, 1e-12);
    EXPECT_NEAR(ro.win[1], 2.0 / 3, 1e-12);
    EXPECT_NEAR(ro.satisfaction_ref[0], (0.6 + 0 + 1) / 3, 1e-12);
    EXPECT_NEAR(ro.satisfaction_ref[1], (0.6 + 0 + 0.2) / 3, 1e-12);
    EXPECT_NEAR(s.satisfaction[0], (1 + 0.2 + 0.6) / 3, 1e-12);
    EXPECT_NEAR(ro.gap_satisfaction, 0, 1e-12);
    EXPECT_NEAR(ro.gap_win, 0, 1e-12);
    EXPECT(ro.n == 3 && ro.ngroups == 2);
    /* the summary part equals sim_eval_file's */
    REQUIRE(sim_eval_file(pol, &w, &pc, &s0) == RL_OK);
    char *j0 = sim_eval_summary_json(&s0, &pc), *j1 = sim_eval_json(&s, &pc, NULL), *j2 = sim_eval_json(&s, &pc, &ro);
    EXPECT_STREQ(j0, j1);
    EXPECT(j2 && !strncmp(j0, j2, strlen(j0) - 1) && strstr(j2, "\"vs_reference\":{"));
    free(j0); free(j1); free(j2);
    /* against itself: one half everywhere */
    REQUIRE(sim_eval_against(pol, pol, &w, &pc, &s, &ro) == RL_OK);
    EXPECT_NEAR(ro.win[0], 0.5, 0);
    EXPECT_NEAR(ro.win[1], 0.5, 0);
    /* a different prompt on a line, or a different length, is refused */
    char *bad = tmp_with("{\"prompt\":\"what is 37+48?\",\"response\":\"85\"}\n"
                         "{\"prompt\":\"what is 11+48?\",\"response\":\"59\"}\n"
                         "{\"prompt\":\"what is 21+43?\",\"response\":\"64\"}\n");
    char *shrt = tmp_with("{\"prompt\":\"what is 37+48?\",\"response\":\"85\"}\n");
    REQUIRE(bad && shrt);
    EXPECT(sim_eval_against(pol, bad, &w, &pc, &s, &ro) == RL_EINVAL && strstr(rl_error(), "response 2"));
    EXPECT(sim_eval_against(pol, shrt, &w, &pc, &s, &ro) == RL_EINVAL);
    unlink(pol); unlink(ref); unlink(bad); unlink(shrt);
}

TEST(eval_answer_and_prompt_files) {
    char *a = tmp_with("{\"prompt\":\"p1\",\"response\":\"x \\\"y\\\"\"}\n\n{\"prompt\":\"p2\",\"completion\":\"z\"}\n");
    REQUIRE(a);
    eval_answers e;
    REQUIRE(eval_answers_load(a, &e) == RL_OK);
    EXPECT(e.n == 2);
    EXPECT_STREQ(e.response[0], "x \"y\"");
    EXPECT_STREQ(e.response[1], "z");
    char out[80];
    snprintf(out, sizeof out, "%s.out", a);
    REQUIRE(eval_answers_write(out, &e) == RL_OK);
    eval_answers e2;
    REQUIRE(eval_answers_load(out, &e2) == RL_OK);
    EXPECT(e2.n == 2);
    EXPECT_STREQ(e2.prompt[1], "p2");
    EXPECT_STREQ(e2.response[0], "x \"y\"");
    eval_answers_free(&e2);
    eval_answers_free(&e);
    unlink(out);
    unlink(a);
    char *bad = tmp_with("{\"prompt\":\"p1\"}\n");
    REQUIRE(bad);
    EXPECT(eval_answers_load(bad, &e) == RL_EFORMAT && strstr(rl_error(), ":1:"));
    unlink(bad);
    char *pp = tmp_with("plain one\n{\"prompt\": \"json two\"}\n\nthree\n");
    REQUIRE(pp);
    char **pr = NULL;
    int n = 0;
    REQUIRE(eval_prompts_load(pp, 0, &pr, &n) == RL_OK);
    EXPECT(n == 3);
    if (n == 3) { EXPECT_STREQ(pr[0], "plain one"); EXPECT_STREQ(pr[1], "json two"); EXPECT_STREQ(pr[2], "three"); }
    for (int i = 0; i < n; i++) free(pr[i]);
    free(pr);
    REQUIRE(eval_prompts_load(pp, 2, &pr, &n) == RL_OK);
    EXPECT(n == 2);
    for (int i = 0; i < n; i++) free(pr[i]);
    free(pr);
    unlink(pp);
}

TEST_MAIN()
