/* test_ppo.c — the RL engine (src/train/ppo.h) and rewards (src/train/reward.h).
 * The losses themselves are checked against PyTorch in test_objectives; here:
 * sampled vs recomputed log-probs, GAE/reward wiring on a real rollout, and
 * end-to-end learning with a programmatic reward on a very small model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "../../src/base/log.h"
#include "../../src/train/ppo.h"
#include "../../src/train/reward.h"
#include "../../src/train/rm.h"
#include "../../src/model/checkpoint.h"
#include <unistd.h>

/* A very small GPT from scratch: V 16 tokens, near-uniform at initialisation. */
#define TV 16
#define TARGET 3 /* the rewarded token */

typedef struct {
    gpt_model pol, ref, val;
    optim_adamw opt, vopt;
    reward_fn *rw;
    ppo_trainer tr;
    int *pbuf;
    const int *pp[4];
    int pl[4];
} rig;

static const ops_table *g_ops; /* NULL = fast */

static void rig_open(rig *g, ppo_config *c, const char *spec) {
    memset(g, 0, sizeof *g);
    /* one thread: these models are far too small to gain from more, and OpenMP
     * barriers on a busy 2-core machine cost 10x (measured) */
    ops_set_threads(1);
    gpt_config cfg = {1, 2, 32, TV, 32};
    int maxp = 3;
    int Tp = ppo_plan_T(&cfg, maxp, c->max_new);
    CHECK_OK(gpt_init(&g->pol, &cfg, c->minibatch, Tp, g_ops, 7), "init");
    CHECK_OK(gpt_init(&g->ref, &cfg, c->minibatch, Tp, g_ops, 7), "init");
    optim_group grp[GPT_NUM_TENSORS];
    int ng = gpt_param_groups(&g->pol, grp, 0);
    CHECK_OK(optim_adamw_init(&g->opt, g->pol.num_params, grp, ng, 0.9f, 0.95f, 1e-8f, 0.0f), "adam");
    gpt_model *val = NULL;
    optim_adamw *vopt = NULL;
    if (c->algo == PPO_ALGO_PPO && c->separate_value) {
        CHECK_OK(gpt_init(&g->val, &cfg, c->minibatch, Tp, g_ops, 7), "init");
        ng = gpt_param_groups(&g->val, grp, 0);
        CHECK_OK(optim_adamw_init(&g->vopt, g->val.num_params, grp, ng, 0.9f, 0.95f, 1e-8f, 0.0f), "adam");
        val = &g->val;
        vopt = &g->vopt;
    }
    CHECK_OK(reward_open(&g->rw, spec, NULL, c->prompts_per_step * c->k, Tp, NULL), "reward");
    static const int P[4][3] = {{0, 1, 2}, {0, 5}, {0, 9, 4}, {0}};
    static const int L[4] = {3, 2, 3, 1};
    for (int i = 0; i < 4; i++) { g->pp[i] = P[i]; g->pl[i] = L[i]; }
    CHECK_OK(ppo_init(&g->tr, c, &g->pol, &g->opt, &g->ref, val, vopt, g->rw, g->pp, g->pl, 4), "ppo_init");
}

static void rig_close(rig *g) {
    ppo_free(&g->tr);
    reward_close(g->rw);
    optim_adamw_free(&g->opt);
    gpt_free(&g->pol);
    gpt_free(&g->ref);
    if (g->val.params) { gpt_free(&g->val); optim_adamw_free(&g->vopt); }
}

static void small_config(ppo_config *c, ppo_algo a) {
    ppo_config_default(c, a);
    c->prompts_per_step = a == PPO_ALGO_PPO ? 16 : 4;
    c->k = a == PPO_ALGO_PPO ? 1 : 4;
    c->max_new = 8;
    c->minibatch = 8;
    c->lr = 3e-3;
    c->value_lr = 3e-3;
    c->epochs = a == PPO_ALGO_GRPO ? 2 : 4;
    c->seed = 11;
}

TEST(rewards_programmatic) {
    EXPECT(reward_count_word("the cat, the hat; theme the", "the") == 3);
    EXPECT(reward_count_word("", "the") == 0);
    EXPECT_NEAR(reward_length_target(10, 20), 0.5, 1e-12);
    EXPECT_NEAR(reward_length_target(20, 20), 1.0, 1e-12);
    EXPECT_NEAR(reward_length_target(30, 20), 0.5, 1e-12);
    reward_fn *r = NULL;
    CHECK_OK(reward_open(&r, "token:3", NULL, 4, 16, NULL), "open");
    int pr[1] = {0}, a[4] = {3, 1, 3, 3}, b[2] = {2, 2};
    reward_item it[2] = {{pr, 1, a, 4}, {pr, 1, b, 2}};
    float s[2];
    EXPECT(reward_score(r, it, 2, s, NULL) == RL_OK);
    EXPECT(s[0] == 3.0f && s[1] == 0.0f);
    reward_close(r);
    CHECK_OK(reward_open(&r, "length:4", NULL, 4, 16, NULL), "open");
    EXPECT(reward_score(r, it, 2, s, NULL) == RL_OK);
    EXPECT_NEAR(s[0], 1.0, 1e-6);
    EXPECT_NEAR(s[1], 0.5, 1e-6);
    reward_close(r);
    /* groups: (token:3, length:4) per sample, aggregated by min */
    reward_agg ag = {"min", 0};
    CHECK_OK(reward_open(&r, "groups:token:3;length:4", NULL, 4, 16, &ag), "open");
    EXPECT(reward_num_groups(r) == 2);
    float gsc[4];
    EXPECT(reward_score(r, it, 2, s, gsc) == RL_OK);
    EXPECT(gsc[0] == 3.0f && fabsf(gsc[1] - 1.0f) < 1e-6f && gsc[2] == 0.0f && fabsf(gsc[3] - 0.5f) < 1e-6f);
    EXPECT_NEAR(s[0], 1.0, 1e-6);
    EXPECT_NEAR(s[1], 0.0, 1e-6);
    reward_close(r);
    /* bad specs are refused with a status, never a crash */
    EXPECT(reward_open(&r, "nope", NULL, 4, 16, NULL) == RL_EINVAL && r == NULL);
    EXPECT(reward_open(&r, "word:x", NULL, 4, 16, NULL) == RL_EINVAL); /* text reward without a tokenizer */
    EXPECT(reward_open(&r, "length:0", NULL, 4, 16, NULL) == RL_EINVAL);
    EXPECT(reward_open(&r, "ensemble:median:a,b", NULL, 4, 16, NULL) == RL_EINVAL);
    EXPECT(reward_open(&r, "rm:/nonexistent.ckpt", NULL, 4, 16, NULL) != RL_OK);
    EXPECT(reward_open(&r, "groups:token:1;groups:token:2", NULL, 4, 16, NULL) == RL_EINVAL);
}

/* One PPO step on a fresh model: the old log-probs come from the training
 * forward, so the first minibatch's ratio is exactly 1; the sampler's log-probs
 * agree with them to float rounding. The rewards/advantages are rebuilt here
 * from the trainer's arrays with a plain loop (score at the last response
 * token, -beta*kl elsewhere, GAE backwards). */
static void logprob_check(const char *kernels) {
    g_ops = ops_get(kernels);
    ppo_config c;
    small_config(&c, PPO_ALGO_PPO);
    c.whiten_adv = 0;
    c.kl_coef = 0.1;
    c.epochs = 1;
    rig g;
    rig_open(&g, &c, "token:3");
    ppo_stats st;
    int ab = 0;
    /* a second step so the policy differs from the reference (non-zero KL) */
    REQUIRE(ppo_step(&g.tr, &st, NULL, &ab) == RL_OK && !ab);
    REQUIRE(ppo_step(&g.tr, &st, NULL, &ab) == RL_OK && !ab);
    EXPECT_MSG(st.first_ratio_dev == 0.0, "first-minibatch ratio deviates from 1 by %g", st.first_ratio_dev);
    /* exact mode (gpt_set_exact): bitwise equal, not merely close */
    EXPECT_MSG(st.logp_diff == 0.0, "sampler vs forward log-prob max diff %g", st.logp_diff);
    printf("  %s kernels: sampler vs training-forward log-prob max |diff| = %.3g\n", kernels, st.logp_diff);
    ppo_trainer *t = &g.tr;
    const sampler_result *res = &t->sw.res;
    int R = t->R, T = 1;
    for (int r = 0; r < R; r++) if (t->rplen[r] + res->len[r] - 1 > T) T = t->rplen[r] + res->len[r] - 1;
    int bad_mask = 0, bad_adv = 0, bad_ret = 0;
    double beta = st.beta, kl_abs = 0;
    for (int r = 0; r < R; r++) {
        int pl = t->rplen[r], len = res->len[r];
        for (int i = 0; i < T; i++) {
            int want = i >= pl - 1 && i < pl - 1 + len;
            if ((t->mask[(size_t)r * T + i] != 0) != want) bad_mask++;
        }
        /* plain-loop GAE on the response positions */
        double A = 0, vnext = 0;
        for (int j = len - 1; j >= 0; j--) {
            size_t k = (size_t)r * T + pl - 1 + j;
            double x = (double)t->old_logp[k] - t->ref_logp[k];
            kl_abs += fabs(x);
            double rew = -beta * x + (j == len - 1 ? t->score[r] : 0);
            double delta = rew + c.gamma * vnext - t->values[k];
            A = delta + c.gamma * c.lam * A;
            vnext = t->values[k];
            if (fabs(A - t->adv[k]) > 1e-4 * (1 + fabs(A))) bad_adv++;
            if (fabs(A + t->values[k] - t->returns[k]) > 1e-4 * (1 + fabs(A))) bad_ret++;
        }
    }
    EXPECT(bad_mask == 0);
    EXPECT(bad_adv == 0);
    EXPECT(bad_ret == 0);
    EXPECT(kl_abs > 0); /* the KL term was exercised */
    rig_close(&g);
    g_ops = NULL;
}

TEST(ppo_logprobs_and_gae_wiring) {
    logprob_check("fast");
    logprob_check("ref");
}

/* Runs `steps` iterations; returns the mean reward of the first step and of the
 * last 10, and the mean KL of the last 10. */
static void train(ppo_config *c, int steps, double *r0, double *r_end, double *kl_end, double *beta_end) {
    rig g;
    rig_open(&g, c, "token:3");
    ppo_stats st;
    int ab;
    *r_end = *kl_end = 0;
    for (int s = 0; s < steps; s++) {
        CHECK_OK(ppo_step(&g.tr, &st, NULL, &ab), "step");
        if (s == 0) *r0 = st.reward_mean;
        if (s >= steps - 10) { *r_end += st.reward_mean / 10; *kl_end += st.kl / 10; }
    }
    *beta_end = g.tr.klc.beta;
    rig_close(&g);
}

TEST(end_to_end_rewards_rise) {
    /* the start policy emits token 3 with p ~ 1/16: ~0.5 of 8 tokens */
    const char *names[3] = {"ppo", "rloo", "grpo"};
    for (int a = 0; a < 3; a++) {
        ppo_config c;
        small_config(&c, (ppo_algo)a);
        c.kl_coef = 0.01;
        double r0, r1, kl, b;
        double t0 = rl_now();
        train(&c, 30, &r0, &r1, &kl, &b);
        printf("  %-4s reward %.2f -> %.2f (of 8), KL %.2f nats, %.1f s\n", names[a], r0, r1, kl, rl_now() - t0);
        EXPECT_MSG(r0 < 1.5, "%s start reward %g", names[a], r0);
        EXPECT_MSG(r1 > 4.0, "%s reward only reached %g", names[a], r1);
    }
}

TEST(adaptive_kl_band_and_kl_zero) {
    ppo_config c;
    small_config(&c, PPO_ALGO_PPO);
    c.kl_coef = 0.3;
    c.lr = 1e-3;
    c.adaptive_kl = 1;
    c.kl_target = 2.0;
    c.kl_horizon = 160; /* short: the controller must act within a short test */
    double r0, r1, kl_adapt, kl_free, b_adapt, b_free;
    train(&c, 80, &r0, &r1, &kl_adapt, &b_adapt);
    printf("  adaptive (target %.1f): reward %.2f -> %.2f, KL %.2f, beta %.3f\n", c.kl_target, r0, r1, kl_adapt, b_adapt);
    ppo_config z = c;
    z.adaptive_kl = 0;
    z.kl_coef = 0;
    train(&z, 80, &r0, &r1, &kl_free, &b_free);
    printf("  KL coef 0:            reward %.2f -> %.2f, KL %.2f\n", r0, r1, kl_free);
    EXPECT_MSG(kl_adapt > 0.5 * c.kl_target && kl_adapt < 1.5 * c.kl_target, "adaptive KL %g outside [%g, %g]", kl_adapt,
               0.5 * c.kl_target, 1.5 * c.kl_target);
    EXPECT_MSG(kl_free > 2 * kl_adapt, "KL without penalty %g vs adaptive %g", kl_free, kl_adapt);
}

/* The fused in-place PG + entropy-bonus gradient equals the objectives'
 * separate (PyTorch-checked) functions: obj_token_logprobs_backward + obj_entropy. */
TEST(pg_entropy_dlogits_matches_objectives) {
    enum { N = 6, V = 11 };
    float z[N * V], ref[N * V], lse[N];
    int tg[N] = {3, -1, 0, 10, 5, 7};
    float dlogp[N] = {0.3f, 0.5f, -1.2f, 0.0f, 2.0f, 0.7f}, mask[N] = {1, 0, 1, 1, 0, 1};
    rl_rng r;
    rl_rng_seed(&r, 5);
    for (int i = 0; i < N * V; i++) z[i] = 3.0f * (rl_rng_uniform(&r) - 0.5f);
    for (int i = 0; i < N; i++) {
        double m = -1e30, s = 0;
        for (int v = 0; v < V; v++) m = fmax(m, z[i * V + v]);
        for (int v = 0; v < V; v++) s += exp(z[i * V + v] - m);
        lse[i] = (float)(m + log(s));
    }
    memset(ref, 0, sizeof ref);
    float dl[N];
    for (int i = 0; i < N; i++) dl[i] = tg[i] < 0 ? 0 : dlogp[i];
    obj_token_logprobs_backward(z, tg, dl, 1, N, V, V, ref);
    float em[N];
    for (int i = 0; i < N; i++) em[i] = tg[i] < 0 ? 0 : mask[i];
    obj_entropy(z, em, 1, N, V, V, -0.05f, ref, NULL);
    ppo_pg_entropy_dlogits(z, lse, tg, dlogp, em, N, V, 0.05);
    double worst = 0;
    for (int i = 0; i < N * V; i++) worst = fmax(worst, fabs(z[i] - ref[i]));
    EXPECT_MSG(worst < 1e-6, "max |fused - objectives| = %g", worst);
}

/* rm:PATH scores exactly like the reward-model trainer's own scorer (rm_score,
 * used by `rlhf score`): same last-token position, same normalisation from the
 * checkpoint metadata; an LM checkpoint is refused as a reward. */
TEST(rm_reward_matches_rm_scorer) {
    const char *text = "the king said to the lord that the day is long and the night is longer still";
    tok_tokenizer *tok = NULL;
    size_t len = strlen(text);
    tok_train_opts to = {300, 1, 0};
    REQUIRE(tok_train(&tok, &text, &len, 1, &to) == RL_OK);
    char dir[] = "/tmp/rl_test_rmXXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char tokp[64], rmp[64], lmp[64];
    snprintf(tokp, sizeof tokp, "%s/tok.bin", dir);
    snprintf(rmp, sizeof rmp, "%s/rm.ckpt", dir);
    snprintf(lmp, sizeof lmp, "%s/lm.ckpt", dir);
    REQUIRE(tok_save(tok, tokp) == RL_OK);
    char tid[65];
    tok_identity(tok, tid);
    gpt_config cfg = {1, 2, 32, tok_vocab_size(tok), 64};
    gpt_model m;
    REQUIRE(gpt_init(&m, &cfg, 1, 8, NULL, 3) == RL_OK);
    m.w.headb[0] = 0.25f;
    for (int c = 0; c < 32; c++) m.w.headw[c] = 0.1f * (float)((c % 7) - 3);
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "reward");
    ckpt_meta_set(&meta, "reward.mean", "0.3");
    ckpt_meta_set(&meta, "reward.std", "1.7");
    REQUIRE(ckpt_save_meta(rmp, &m, tid, NULL, NULL, &meta) == RL_OK);
    REQUIRE(ckpt_save(lmp, &m, tid, NULL, NULL) == RL_OK);
    gpt_free(&m);
    /* the same (prompt, response) as tokens (ours) and as text (the scorer's) */
    const char *prompts[2] = {"the king said", "is the night long"}, *resps[2] = {"the lord", "longer still"};
    int *ids[2] = {NULL, NULL}, nid[2] = {0, 0}, *rid[2] = {NULL, NULL}, nr[2] = {0, 0};
    int bos = tok_special(tok, "<|bos|>"), user = tok_special(tok, "<|user|>"), end = tok_special(tok, "<|end|>"),
        asst = tok_special(tok, "<|assistant|>");
    reward_item it[2];
    for (int i = 0; i < 2; i++) {
        ids[i] = malloc(sizeof(int) * 2);
        ids[i][0] = bos; ids[i][1] = user; nid[i] = 2;
        REQUIRE(tok_encode(tok, prompts[i], strlen(prompts[i]), 0, &ids[i], &nid[i]) == RL_OK);
        ids[i] = realloc(ids[i], sizeof(int) * (nid[i] + 2));
        ids[i][nid[i]++] = end; ids[i][nid[i]++] = asst;
        REQUIRE(tok_encode(tok, resps[i], strlen(resps[i]), 0, &rid[i], &nr[i]) == RL_OK);
        rid[i] = realloc(rid[i], sizeof(int) * (nr[i] + 1));
        rid[i][nr[i]++] = end;
        it[i] = (reward_item){ids[i], nid[i], rid[i], nr[i]};
    }
    reward_fn *r = NULL;
    REQUIRE(reward_open(&r, (char[80]){0} , tok, 2, 64, NULL) == RL_EINVAL); /* empty spec */
    char spec[200];
    snprintf(spec, sizeof spec, "rm:%s", rmp);
    REQUIRE(reward_open(&r, spec, tok, 2, 64, NULL) == RL_OK);
    float ours[2], raw[2], norm[2];
    EXPECT(reward_score(r, it, 2, ours, NULL) == RL_OK);
    reward_close(r);
    rm_scorer sc;
    REQUIRE(rm_scorer_open(&sc, rmp, tokp, 2, NULL) == RL_OK);
    chat_turn t0 = {CHAT_ROLE_USER, prompts[0]}, t1 = {CHAT_ROLE_USER, prompts[1]};
    const chat_turn *turns[2] = {&t0, &t1};
    int nturns[2] = {1, 1};
    EXPECT(rm_score(&sc, turns, nturns, resps, 2, raw, norm) == RL_OK);
    rm_scorer_close(&sc);
    for (int i = 0; i < 2; i++) {
        EXPECT_NEAR(ours[i], norm[i], 1e-5);
        EXPECT_NEAR(norm[i], (raw[i] - 0.3) / 1.7, 1e-5);
    }
    /* ensemble of the same model twice: mean = min = the single score, std penalty 0 */
    snprintf(spec, sizeof spec, "ensemble:std=2:%s,%s", rmp, rmp);
    REQUIRE(reward_open(&r, spec, tok, 2, 64, NULL) == RL_OK);
    float ens[2];
    EXPECT(reward_score(r, it, 2, ens, NULL) == RL_OK);
    EXPECT_NEAR(ens[0], ours[0], 1e-6);
    reward_close(r);
    snprintf(spec, sizeof spec, "rm:%s", lmp);
    EXPECT(reward_open(&r, spec, tok, 2, 64, NULL) == RL_EFORMAT); /* kind lm */
    EXPECT(strstr(rl_error(), "not a reward model") != NULL);
    for (int i = 0; i < 2; i++) { free(ids[i]); free(rid[i]); }
    tok_free(tok);
    unlink(tokp); unlink(rmp); unlink(lmp); rmdir(dir);
}

TEST_MAIN()
