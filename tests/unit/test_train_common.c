/* test_train_common.c — src/train/common.h: chat sequences with train masks,
 * truncation, padded LM and last-token batches; rm_scorer refuses non-reward
 * checkpoints. */
#include <stdlib.h>
#include <unistd.h>
#include "test.h"
#include "../../src/train/common.h"
#include "../../src/train/rm.h"

static tok_tokenizer *tokenizer(void) {
    const char *corpus = "hello world, this is a tiny corpus for a tiny tokenizer. hello again.";
    size_t n = strlen(corpus);
    tok_tokenizer *t = NULL;
    tok_train_opts o = {280, 1, 0};
    if (tok_train(&t, &corpus, &n, 1, &o) != RL_OK) abort();
    return t;
}

TEST(mask_marks_response_and_end_only) {
    tok_tokenizer *t = tokenizer();
    trn_seqs s;
    trn_seqs_init(&s);
    chat_turn p[] = {{CHAT_ROLE_USER, "hello"}};
    int k = -1;
    REQUIRE(trn_seqs_add(&s, t, p, 1, "world", CHAT_TRAIN_LAST_ASSISTANT, 100, &k) == RL_OK);
    EXPECT(k == 0 && s.n == 1);
    int n = trn_seq_len(&s, 0);
    const int *ids = s.ids;
    EXPECT(ids[0] == tok_special(t, CHAT_BOS));
    EXPECT(ids[1] == tok_special(t, CHAT_USER));
    EXPECT(ids[n - 1] == tok_special(t, CHAT_END));
    /* decode the trained tokens: exactly "world<|end|>" */
    int tr[64], m = 0;
    for (int i = 0; i < n; i++) if (s.train[i]) tr[m++] = ids[i];
    char *txt; size_t len;
    REQUIRE(tok_decode(t, tr, m, &txt, &len) == RL_OK);
    EXPECT_STREQ(txt, "world<|end|>");
    free(txt);
    /* the token before the response is <|assistant|>, untrained */
    int first = 0;
    while (!s.train[first]) first++;
    EXPECT(ids[first - 1] == tok_special(t, CHAT_ASSISTANT));
    EXPECT(s.n_empty == 0 && s.n_cut_prompt == 0 && s.n_cut_response == 0);
    trn_seqs_free(&s);
    tok_free(t);
}

TEST(truncation_drops_prompt_start_then_response_end) {
    tok_tokenizer *t = tokenizer();
    trn_seqs s;
    trn_seqs_init(&s);
    chat_turn p[] = {{CHAT_ROLE_USER, "this is a tiny corpus for a tiny tokenizer this is a tiny corpus"}};
    int full, cut, cut2;
    REQUIRE(trn_seqs_add(&s, t, p, 1, "hello", CHAT_TRAIN_LAST_ASSISTANT, 1000, &full) == RL_OK);
    int nfull = trn_seq_len(&s, full), resp = 0;
    for (int i = 0; i < nfull; i++) resp += s.train[s.off[full] + i];
    REQUIRE(nfull > resp + 6);
    int lim = resp + 4; /* room for bos, 2 prompt tokens, <|assistant|> */
    REQUIRE(trn_seqs_add(&s, t, p, 1, "hello", CHAT_TRAIN_LAST_ASSISTANT, lim, &cut) == RL_OK);
    EXPECT(trn_seq_len(&s, cut) == lim);
    EXPECT(s.n_cut_prompt == 1 && s.n_cut_response == 0);
    EXPECT(s.n_cut == 1);
    EXPECT(s.ids[s.off[cut]] == tok_special(t, CHAT_BOS));
    /* the tail (the end of the prompt and the whole response) is unchanged */
    for (int i = 1; i < lim; i++) EXPECT(s.ids[s.off[cut] + lim - i] == s.ids[s.off[full] + nfull - i]);
    /* shorter than the response: the response's end goes */
    REQUIRE(trn_seqs_add(&s, t, p, 1, "hello world hello world hello", CHAT_TRAIN_LAST_ASSISTANT, 5, &cut2) == RL_OK);
    EXPECT(trn_seq_len(&s, cut2) == 5);
    EXPECT(s.n_cut_response == 1);
    /* each cut sequence counts once, even when it lost both its prompt's start and its end */
    EXPECT(s.n_cut == 2 && s.n_cut <= s.n_cut_prompt + s.n_cut_response);
    EXPECT(s.train[s.off[cut2] + 4] == 1);
    EXPECT(trn_seqs_add(&s, t, p, 1, "x", CHAT_TRAIN_LAST_ASSISTANT, 1, NULL) == RL_EINVAL);
    trn_seqs_free(&s);
    tok_free(t);
}

TEST(batches_pad_right_with_ignored_targets) {
    tok_tokenizer *t = tokenizer();
    trn_seqs s;
    trn_seqs_init(&s);
    chat_turn p1[] = {{CHAT_ROLE_USER, "hello"}};
    chat_turn p2[] = {{CHAT_ROLE_USER, "hello world, this is a tiny corpus"}};
    int a, b;
    REQUIRE(trn_seqs_add(&s, t, p1, 1, "world", CHAT_TRAIN_LAST_ASSISTANT, 100, &a) == RL_OK);
    REQUIRE(trn_seqs_add(&s, t, p2, 1, "again", CHAT_TRAIN_LAST_ASSISTANT, 100, &b) == RL_OK);
    int idx[2] = {a, b}, la = trn_seq_len(&s, a), lb = trn_seq_len(&s, b);
    REQUIRE(lb > la);
    int in[2 * 100], tg[2 * 100], pos[2];
    float mk[2 * 100];
    int T = trn_batch_lm(&s, idx, 2, in, tg, mk);
    EXPECT(T == lb - 1);
    for (int r = 0; r < 2; r++) {
        int l = trn_seq_len(&s, idx[r]);
        const int *ids = s.ids + s.off[idx[r]];
        const uint8_t *tr = s.train + s.off[idx[r]];
        for (int j = 0; j < T; j++) {
            int k = r * T + j;
            if (j < l - 1) {
                EXPECT(in[k] == ids[j]);
                EXPECT(tg[k] == (tr[j + 1] ? ids[j + 1] : -1));
                EXPECT(mk[k] == (tr[j + 1] ? 1.0f : 0.0f));
            } else {
                EXPECT(in[k] == 0 && tg[k] == -1 && mk[k] == 0.0f);
            }
        }
    }
    T = trn_batch_last(&s, idx, 2, in, pos);
    EXPECT(T == lb);
    EXPECT(pos[0] == la - 1 && pos[1] == lb - 1);
    EXPECT(in[pos[0]] == tok_special(t, CHAT_END) && in[T + pos[1]] == tok_special(t, CHAT_END));
    trn_seqs_free(&s);
    tok_free(t);
}

TEST(padding_does_not_change_a_sequences_result) {
    /* the reward of a sequence and its log-probs are the same alone and padded in a batch */
    tok_tokenizer *t = tokenizer();
    trn_seqs s;
    trn_seqs_init(&s);
    chat_turn p1[] = {{CHAT_ROLE_USER, "hello"}};
    chat_turn p2[] = {{CHAT_ROLE_USER, "hello world, this is a tiny corpus for a tiny tokenizer"}};
    int a, b;
    REQUIRE(trn_seqs_add(&s, t, p1, 1, "world", CHAT_TRAIN_LAST_ASSISTANT, 100, &a) == RL_OK);
    REQUIRE(trn_seqs_add(&s, t, p2, 1, "again", CHAT_TRAIN_LAST_ASSISTANT, 100, &b) == RL_OK);
    gpt_config cfg = {2, 2, 16, tok_vocab_size(t), 64};
    gpt_model m;
    REQUIRE(gpt_init(&m, &cfg, 2, 64, ops_get("ref"), 3) == RL_OK);
    int in[128], tg[128], pos[2];
    float mk[128], r1, r2[2];
    int idx[2] = {a, b};
    int T = trn_batch_last(&s, idx, 1, in, pos);
    gpt_forward_hidden(&m, in, 1, T);
    gpt_scalar_forward(&m, pos, &r1);
    T = trn_batch_last(&s, idx, 2, in, pos);
    gpt_forward_hidden(&m, in, 2, T);
    gpt_scalar_forward(&m, pos, r2);
    EXPECT_NEAR(r1, r2[0], 1e-5);
    T = trn_batch_lm(&s, idx, 1, in, tg, mk);
    gpt_forward(&m, in, tg, NULL, 1, T);
    double lp1 = 0;
    for (int j = 0; j < T; j++) lp1 += m.a.logp[j];
    int T2 = trn_batch_lm(&s, idx, 2, in, tg, mk);
    gpt_forward(&m, in, tg, NULL, 2, T2);
    double lp2 = 0;
    for (int j = 0; j < T2; j++) lp2 += m.a.logp[j];
    EXPECT(T2 > T);
    EXPECT_NEAR(lp1, lp2, 1e-4);
    gpt_free(&m);
    trn_seqs_free(&s);
    tok_free(t);
}

TEST(scorer_refuses_language_models) {
    tok_tokenizer *t = tokenizer();
    char dir[] = "/tmp/rlhf_test_trn_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char tp[128], cp[128];
    snprintf(tp, sizeof tp, "%s/tok.bin", dir);
    snprintf(cp, sizeof cp, "%s/lm.ckpt", dir);
    REQUIRE(tok_save(t, tp) == RL_OK);
    gpt_config cfg = {1, 1, 8, tok_vocab_size(t), 32};
    gpt_model m;
    REQUIRE(gpt_init(&m, &cfg, 1, 32, ops_get("ref"), 1) == RL_OK);
    char tid[65];
    tok_identity(t, tid);
    REQUIRE(ckpt_save(cp, &m, tid, NULL, NULL) == RL_OK);
    rm_scorer sc;
    EXPECT(rm_scorer_open(&sc, cp, tp, 4, NULL) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "not a reward model") != NULL);
    /* the same weights marked as a reward model score, and the normalisation applies */
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "reward");
    ckpt_meta_set_f(&meta, "reward.mean", 0.5);
    ckpt_meta_set_f(&meta, "reward.std", 2.0);
    m.w.headb[0] = 1.25f;
    REQUIRE(ckpt_save_meta(cp, &m, tid, NULL, NULL, &meta) == RL_OK);
    REQUIRE(rm_scorer_open(&sc, cp, tp, 4, ops_get("ref")) == RL_OK);
    chat_turn p[] = {{CHAT_ROLE_USER, "hello"}};
    const chat_turn *tv[2] = {p, p};
    int nt[2] = {1, 1};
    const char *resp[2] = {"world", "again and again"};
    float raw[2], norm[2];
    REQUIRE(rm_score(&sc, tv, nt, resp, 2, raw, norm) == RL_OK);
    for (int i = 0; i < 2; i++) EXPECT_NEAR(norm[i], (raw[i] - 0.5) / 2.0, 1e-6);
    EXPECT(raw[0] != raw[1]);
    EXPECT(rm_score(&sc, tv, nt, resp, 5, raw, norm) == RL_EINVAL);
    rm_scorer_close(&sc);
    gpt_free(&m);
    unlink(tp); unlink(cp); rmdir(dir);
    tok_free(t);
}

TEST_MAIN()
