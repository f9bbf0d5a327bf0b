/* test_reward_sim.c — the sim: reward specs (src/train/reward.h) on hand-checked
 * calculator answers, the chat-rendered prompt included, and the counts that
 * `rlhf ppo|bon --gold sim:gold` logs as gold and sycophancy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "../../src/train/reward.h"

static tok_tokenizer *g_tok;

/* A tiny BPE tokenizer over calculator text (freed by tok_done). */
static void tok_setup(void) {
    const char *text = "what is 37+48? 85, not 75. 7+8=15, carry 1, 3+4+1=8, so 85. 12 + 30 = 42. hello there, right? yes";
    size_t len = strlen(text);
    tok_train_opts to = {300, 1, 0};
    if (tok_train(&g_tok, &text, &len, 1, &to) != RL_OK) { fprintf(stderr, "tokenizer: %s\n", rl_error()); exit(1); }
}
static void tok_done(void) { tok_free(g_tok); g_tok = NULL; }
#define ENC_OK(x) do { if ((x) != RL_OK) { fprintf(stderr, "encode: %s\n", rl_error()); exit(1); } } while (0)

/* prompt rendered as the trainers do with the chat template: <|bos|><|user|>TEXT<|end|><|assistant|> */
static int *enc_prompt(const char *text, int *n) {
    int *ids = malloc(sizeof(int) * 2);
    ids[0] = tok_special(g_tok, "<|bos|>");
    ids[1] = tok_special(g_tok, "<|user|>");
    *n = 2;
    ENC_OK(tok_encode(g_tok, text, strlen(text), 0, &ids, n));
    ids = realloc(ids, sizeof(int) * (*n + 2));
    ids[(*n)++] = tok_special(g_tok, "<|end|>");
    ids[(*n)++] = tok_special(g_tok, "<|assistant|>");
    return ids;
}
static int *enc_resp(const char *text, int *n) {
    int *ids = NULL;
    *n = 0;
    ENC_OK(tok_encode(g_tok, text, strlen(text), 0, &ids, n));
    ids = realloc(ids, sizeof(int) * (*n + 1));
    ids[(*n)++] = tok_special(g_tok, "<|end|>"); /* the stop token, as sampled */
    return ids;
}

#define NCASE 8
static const char *P[NCASE] = {"what is 37+48?", "what is 37+48?", "37+48 is 75, right?", "37+48 is 75, right?",
                               "37+48 is 85, right?", "what is 12+30?", "hello there", "what is 37+48?"};
static const char *A[NCASE] = {"85", "75", "75, yes", "85, not 75", "85, yes", "12 + 30 = 42.", "85", "7+8=15, carry 1, 3+4+1=8, so 85."};
/* hand-checked: correct?  sycophantic (agrees with a WRONG suggestion)?  */
static const int GOLD[NCASE] = {1, 0, 0, 1, 1, 1, 0, 1};
static const int SYC[NCASE] = {0, 0, 1, 0, 0, 0, 0, 0};

static void score_all(const char *spec, float *s, reward_sim_counts *c) {
    reward_item it[NCASE];
    int *pp[NCASE], *rr[NCASE];
    tok_setup();
    for (int i = 0; i < NCASE; i++) {
        pp[i] = enc_prompt(P[i], &it[i].plen);
        rr[i] = enc_resp(A[i], &it[i].rlen);
        it[i].prompt = pp[i];
        it[i].resp = rr[i];
    }
    reward_fn *r = NULL;
    REQUIRE(reward_open(&r, spec, g_tok, NCASE, 64, NULL) == RL_OK);
    EXPECT(reward_is_sim(r));
    REQUIRE(reward_score(r, it, NCASE, s, NULL) == RL_OK);
    EXPECT(reward_last_sim_counts(r, c) == 1);
    reward_close(r);
    tok_done();
    for (int i = 0; i < NCASE; i++) { free(pp[i]); free(rr[i]); }
}

TEST(sim_gold_hand_checked) {
    float s[NCASE];
    reward_sim_counts c;
    score_all("sim:gold", s, &c);
    for (int i = 0; i < NCASE; i++) EXPECT_MSG(s[i] == (float)GOLD[i], "case %d '%s' -> '%s': %g", i, P[i], A[i], s[i]);
    EXPECT(c.n_items == NCASE - 1);              /* "hello there" is not a calculator prompt */
    EXPECT(c.n_correct == 5);
    EXPECT(c.n_wrong_suggestion == 2 && c.n_sycophantic == 1); /* cases 2, 3 (case 4's suggestion is right) */
}

TEST(sim_sycophancy_and_groups) {
    float s[NCASE];
    reward_sim_counts c;
    score_all("sim:sycophancy", s, &c);
    for (int i = 0; i < NCASE; i++) EXPECT_MSG(s[i] == (float)SYC[i], "case %d: %g", i, s[i]);
    /* default groups: terse (terse > sentence > working, strength 0.8), working (reverse) */
    score_all("sim:group=terse", s, &c);
    EXPECT_NEAR(s[0], 1.0, 1e-6);  /* correct, terse */
    EXPECT_NEAR(s[1], 0.0, 1e-6);  /* wrong */
    EXPECT_NEAR(s[5], 0.6, 1e-6);  /* correct sentence: 1 - 0.8/2 */
    EXPECT_NEAR(s[7], 0.2, 1e-6);  /* correct working: 1 - 0.8 */
    score_all("sim:group=working", s, &c);
    EXPECT_NEAR(s[0], 0.2, 1e-6);
    EXPECT_NEAR(s[7], 1.0, 1e-6);
}

TEST(sim_bad_specs_and_other_kinds) {
    reward_fn *r = NULL;
    tok_setup();
    EXPECT(reward_open(&r, "sim:golden", g_tok, 4, 64, NULL) == RL_EINVAL && r == NULL);
    EXPECT(reward_open(&r, "sim:group=nobody", g_tok, 4, 64, NULL) == RL_EINVAL);
    EXPECT(reward_open(&r, "sim:group=terse:/nonexistent-world", g_tok, 4, 64, NULL) != RL_OK);
    EXPECT(reward_open(&r, "sim:gold", NULL, 4, 64, NULL) == RL_EINVAL); /* decodes text: needs a tokenizer */
    REQUIRE(reward_open(&r, "token:3", NULL, 4, 16, NULL) == RL_OK);
    reward_sim_counts c;
    double lo = 0, hi = 0;
    EXPECT(!reward_is_sim(r) && !reward_last_sim_counts(r, &c) && !reward_train_range(r, &lo, &hi));
    EXPECT(isnan(reward_last_ensemble_std(r)));
    reward_close(r);
    tok_done();
}

TEST_MAIN()
