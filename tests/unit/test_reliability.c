/* test_reliability.c — annotator weights into records (src/align/reliability.h),
 * the id,weight CSV (src/align/tables.h), Dawid-Skene reliability on pair choices. */
#include "test.h"
#include <unistd.h>
#include "../../src/align/reliability.h"
#include "../../src/align/weights.h"
#include "../../src/base/rng.h"

static char *tmpfile_with(const char *text) {
    static char path[8][64];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 64, "/tmp/rl_test_rel_XXXXXX");
    int fd = mkstemp(p);
    if (fd < 0) return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) { close(fd); return NULL; }
    close(fd);
    return p;
}

static void add_pair(fb_set *s, const char *annot, const char *prompt, const char *a, const char *b, fb_choice c) {
    fb_record r = fb_record_init(FB_PAIR);
    chat_turn t = {CHAT_ROLE_USER, prompt};
    const char *resp[2] = {a, b};
    r.source = "test";
    r.annotator = annot;
    r.prompt = &t;
    r.n_prompt = 1;
    r.responses = resp;
    r.n_responses = 2;
    r.choice = c;
    fb_set_add(s, &r);
}

TEST(id_weights_load_and_errors) {
    align_id_weights w;
    char *p = tmpfile_with("id,weight,extra\nann1,0.5,x\n\"a,b\",2,y\nann3,0,z\n");
    REQUIRE(p);
    REQUIRE(align_id_weights_load(p, &w) == RL_OK);
    EXPECT(w.n == 3);
    EXPECT_STREQ(w.id[1], "a,b");
    EXPECT_NEAR(w.w[0], 0.5, 0);
    EXPECT(align_id_weights_find(&w, "ann3") == 2);
    EXPECT(align_id_weights_find(&w, "nobody") == -1);
    /* write -> load round trip (quoted id) */
    char out[64];
    snprintf(out, sizeof out, "%s.out", p);
    REQUIRE(align_id_weights_write(out, w.n, (const char *const *)w.id, w.w) == RL_OK);
    align_id_weights w2;
    REQUIRE(align_id_weights_load(out, &w2) == RL_OK);
    EXPECT(w2.n == 3);
    EXPECT_STREQ(w2.id[1], "a,b");
    EXPECT_NEAR(w2.w[1], 2, 0);
    align_id_weights_free(&w2);
    unlink(out);
    align_id_weights_free(&w);
    unlink(p);
    const char *bad[] = {"id,weight\nann1,1\nann1,2\n", "id,weight\nann1,-1\n", "id,weight\nann1,nan\n", "who,weight\nx,1\n",
                         "id,weight\n", "", "id,weight\n,1\n", "id,weight\nann1,1,3\n"};
    const char *why[] = {"appears twice", "not a finite number", "not a finite number", "needs columns", "no rows", "empty",
                         "empty id", "fields"};
    for (int i = 0; i < 8; i++) {
        p = tmpfile_with(bad[i]);
        REQUIRE(p);
        rl_status st = align_id_weights_load(p, &w);
        EXPECT_MSG(st == RL_EFORMAT && strstr(rl_error(), why[i]), "case %d: %s", i, rl_error());
        unlink(p);
    }
}

TEST(apply_annotator_weights) {
    fb_set s;
    fb_set_init(&s);
    add_pair(&s, "a", "q1", "x", "y", FB_CHOICE_A);
    add_pair(&s, "a", "q2", "x", "y", FB_CHOICE_A);
    add_pair(&s, "b", "q3", "x", "y", FB_CHOICE_B);
    add_pair(&s, "c", "q4", "x", "y", FB_CHOICE_B);
    REQUIRE(fb_set_weight(&s, 3, 2.0) == RL_OK); /* an existing record weight is multiplied, not replaced */
    align_id_weights w = {0};
    char *p = tmpfile_with("id,weight\na,1\nb,4\nunused,9\n");
    REQUIRE(p && align_id_weights_load(p, &w) == RL_OK);
    unlink(p);
    /* c is missing: an error, and nothing changes */
    EXPECT(align_apply_annotator_weights(&s, &w, -1, NULL) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "'c'") && strstr(rl_error(), "--missing-weight"));
    EXPECT_NEAR(s.records[0].weight, 1, 0);
    EXPECT_NEAR(s.records[3].weight, 2, 0);
    align_apply_report rep;
    REQUIRE(align_apply_annotator_weights(&s, &w, 1.0, &rep) == RL_OK);
    /* annotator weights a 1, a 1, b 4, c 1 -> mean 7/4 -> 4/7, 4/7, 16/7, 4/7; times the record weights 1,1,1,2 */
    double want[4] = {4.0 / 7, 4.0 / 7, 16.0 / 7, 8.0 / 7};
    for (int i = 0; i < 4; i++) EXPECT_NEAR(s.records[i].weight, want[i], 1e-12);
    double sw = 0, sw2 = 0;
    for (int i = 0; i < 4; i++) { sw += want[i]; sw2 += want[i] * want[i]; }
    EXPECT_NEAR(rep.ess, sw * sw / sw2, 1e-12);
    EXPECT(rep.n_annot == 3 && rep.n_annot_missing == 1 && rep.n_records_missing == 1 && rep.n_unused == 1);
    EXPECT_NEAR(rep.w_min, 4.0 / 7, 1e-12);
    EXPECT_NEAR(rep.w_max, 16.0 / 7, 1e-12);
    /* every weight 0 is refused */
    align_id_weights z = {0};
    p = tmpfile_with("id,weight\na,0\nb,0\nc,0\n");
    REQUIRE(p && align_id_weights_load(p, &z) == RL_OK);
    unlink(p);
    EXPECT(align_apply_annotator_weights(&s, &z, -1, NULL) == RL_EINVAL);
    align_id_weights_free(&z);
    align_id_weights_free(&w);
    fb_set_free(&s);
}

/* 100 comparisons, each judged by 3 careful annotators (90% right) and 3
 * spammers (coin flips), shown in a random A/B order. */
TEST(pair_reliability_finds_spammers) {
    fb_set s;
    fb_set_init(&s);
    rl_rng rng;
    rl_rng_seed(&rng, 7);
    const char *ann[6] = {"good1", "good2", "good3", "spam1", "spam2", "spam3"};
    char prompt[32], ra[32], rb[32];
    for (int i = 0; i < 100; i++) {
        snprintf(prompt, sizeof prompt, "question %d", i);
        snprintf(ra, sizeof ra, "answer %d one", i);
        snprintf(rb, sizeof rb, "answer %d two", i);
        int truth = (int)rl_rng_below(&rng, 2); /* 0: ra better */
        for (int a = 0; a < 6; a++) {
            int says = a < 3 ? (rl_rng_uniform_d(&rng) < 0.9 ? truth : 1 - truth) : (int)rl_rng_below(&rng, 2);
            int swap = (int)rl_rng_below(&rng, 2);
            const char *A = swap ? rb : ra, *B = swap ? ra : rb;
            /* says == 0: ra wins */
            fb_choice c = (says == 0) == !swap ? FB_CHOICE_A : FB_CHOICE_B;
            add_pair(&s, ann[a], prompt, A, B, c);
        }
    }
    add_pair(&s, "tie_only", "question 0", "answer 0 one", "answer 0 two", FB_CHOICE_TIE); /* no direction: no label */
    align_reliability r;
    REQUIRE(align_pair_reliability(&s, NULL, ALIGN_RELW_ACCURACY, 1, &r) == RL_OK);
    EXPECT(r.n_annot == 7);
    EXPECT(r.n_items == 100);  /* A/B order does not make a new item */
    EXPECT(r.n_multi == 100);
    EXPECT(r.n_obs == 600);
    EXPECT(r.n_estimated == 6);
    double good = 1, spam = 0, wg = 1e9, ws = 0;
    for (int a = 0; a < r.n_annot; a++) {
        if (!strcmp(r.annot[a], "tie_only")) { EXPECT(isnan(r.reliability[a])); EXPECT_NEAR(r.weight[a], 1, 0); continue; }
        EXPECT(r.n_labels[a] == 100);
        if (!strncmp(r.annot[a], "good", 4)) { if (r.reliability[a] < good) good = r.reliability[a]; if (r.weight[a] < wg) wg = r.weight[a]; }
        else { if (r.reliability[a] > spam) spam = r.reliability[a]; if (r.weight[a] > ws) ws = r.weight[a]; }
    }
    EXPECT_MSG(good > 0.8, "worst careful annotator %.3f", good);
    EXPECT_MSG(spam < 0.7, "best spammer %.3f", spam);
    EXPECT(wg > ws);
    double mean = 0;
    for (int a = 0; a < r.n_annot; a++) if (!isnan(r.reliability[a])) mean += r.weight[a];
    EXPECT_NEAR(mean / 6, 1, 1e-12);
    align_reliability_free(&r);
    /* log-odds weights push the spammers toward 0 */
    REQUIRE(align_pair_reliability(&s, NULL, ALIGN_RELW_LOGODDS, 1, &r) == RL_OK);
    for (int a = 0; a < r.n_annot; a++)
        if (!strncmp(r.annot[a], "spam", 4)) EXPECT_MSG(r.weight[a] < 0.5, "%s logodds weight %.3f", r.annot[a], r.weight[a]);
    align_reliability_free(&r);
    /* min_labels above everyone's count is refused */
    EXPECT(align_pair_reliability(&s, NULL, ALIGN_RELW_ACCURACY, 101, &r) == RL_EINVAL);
    fb_set_free(&s);
    /* only ties: nothing to learn */
    fb_set_init(&s);
    add_pair(&s, "x", "q", "a", "b", FB_CHOICE_TIE);
    EXPECT(align_pair_reliability(&s, NULL, ALIGN_RELW_ACCURACY, 1, &r) == RL_EINVAL);
    fb_set_free(&s);
}

TEST_MAIN()
