/* test_chat.c — the chat template: exact renderings, segments that tile the
 * string, training masks, system folding, bad input. */
#include "test.h"
#include "../../src/data/chat.h"

#define U(t) {CHAT_ROLE_USER, t}
#define A(t) {CHAT_ROLE_ASSISTANT, t}
#define S(t) {CHAT_ROLE_SYSTEM, t}

TEST(render_single_turn) {
    chat_turn t[] = {U("Hi there")};
    char buf[128];
    size_t n = chat_render(t, 1, 1, buf, sizeof buf);
    EXPECT_STREQ(buf, "<|bos|><|user|>Hi there<|end|><|assistant|>");
    EXPECT(n == strlen(buf));
    chat_render(t, 1, 0, buf, sizeof buf);
    EXPECT_STREQ(buf, "<|bos|><|user|>Hi there<|end|>");
}

TEST(render_multi_turn) {
    chat_turn t[] = {U("q1"), A("a1"), U("q2"), A("a2")};
    char *s = chat_render_alloc(t, 4, 0, NULL);
    EXPECT_STREQ(s, "<|bos|><|user|>q1<|end|><|assistant|>a1<|end|><|user|>q2<|end|><|assistant|>a2<|end|>");
    free(s);
}

TEST(render_truncates_like_snprintf) {
    chat_turn t[] = {U("hello")};
    char buf[10];
    size_t n = chat_render(t, 1, 0, buf, sizeof buf);
    EXPECT(n == strlen("<|bos|><|user|>hello<|end|>"));
    EXPECT_STREQ(buf, "<|bos|><|");  /* 9 bytes and the NUL */
    EXPECT(chat_render(t, 1, 0, NULL, 0) == n);
}

TEST(system_turns_fold_into_user_turn) {
    chat_turn t[] = {S("Be brief."), U("Why?"), A("Because.")};
    char *s = chat_render_alloc(t, 3, 0, NULL);
    EXPECT_STREQ(s, "<|bos|><|user|>Be brief.\n\nWhy?<|end|><|assistant|>Because.<|end|>");
    free(s);
    chat_turn t2[] = {S("s1"), S("s2"), A("x")};  /* no user turn to join: a user turn of its own */
    s = chat_render_alloc(t2, 3, 0, NULL);
    EXPECT_STREQ(s, "<|bos|><|user|>s1\n\ns2<|end|><|assistant|>x<|end|>");
    free(s);
    chat_turn t3[] = {U("u"), S("late")};
    s = chat_render_alloc(t3, 2, 1, NULL);
    EXPECT_STREQ(s, "<|bos|><|user|>u<|end|><|user|>late<|end|><|assistant|>");
    free(s);
}

/* Segments tile the rendering, specials are exactly special tokens, and
 * the trained bytes are the assistant texts and their closing <|end|>. */
static void check_tiling(const chat_turn *t, int n, int gen, int which, const char *trained_expect) {
    size_t len;
    char *s = chat_render_alloc(t, n, gen, &len);
    REQUIRE(s);
    int ns = chat_segments(t, n, gen, which, NULL, 0);
    REQUIRE(ns > 0);
    chat_segment *seg = malloc((size_t)ns * sizeof *seg);
    EXPECT(chat_segments(t, n, gen, which, seg, ns) == ns);
    size_t pos = 0;
    char trained[1024] = "";
    for (int i = 0; i < ns; i++) {
        EXPECT(seg[i].start == pos);
        EXPECT(seg[i].end > seg[i].start);
        pos = seg[i].end;
        size_t l = seg[i].end - seg[i].start;
        if (seg[i].special) {
            int is_tok = (l == strlen(CHAT_BOS) && !memcmp(s + seg[i].start, CHAT_BOS, l)) ||
                         (l == strlen(CHAT_USER) && !memcmp(s + seg[i].start, CHAT_USER, l)) ||
                         (l == strlen(CHAT_ASSISTANT) && !memcmp(s + seg[i].start, CHAT_ASSISTANT, l)) ||
                         (l == strlen(CHAT_END) && !memcmp(s + seg[i].start, CHAT_END, l));
            EXPECT(is_tok);
        }
        if (i > 0) EXPECT(seg[i].special || seg[i - 1].special || seg[i].train != seg[i - 1].train); /* merged */
        if (seg[i].train) strncat(trained, s + seg[i].start, l);
    }
    EXPECT(pos == len);
    EXPECT_STREQ(trained, trained_expect);
    /* chat_assistant_spans gives the same bytes. */
    chat_span sp[16];
    int nsp = chat_assistant_spans(t, n, which, sp, 16);
    char from_spans[1024] = "";
    for (int i = 0; i < nsp; i++) strncat(from_spans, s + sp[i].start, sp[i].end - sp[i].start);
    EXPECT_STREQ(from_spans, trained_expect);
    free(seg);
    free(s);
}

TEST(segments_and_masks) {
    chat_turn t[] = {S("sys"), U("q1"), A("a1"), U("q2"), A("a2")};
    check_tiling(t, 5, 0, CHAT_TRAIN_ALL_ASSISTANT, "a1<|end|>a2<|end|>");
    check_tiling(t, 5, 0, CHAT_TRAIN_LAST_ASSISTANT, "a2<|end|>");
    check_tiling(t, 4, 1, CHAT_TRAIN_ALL_ASSISTANT, "a1<|end|>");
    chat_turn e[] = {U(""), A("")};  /* empty texts: no empty segments */
    check_tiling(e, 2, 0, CHAT_TRAIN_ALL_ASSISTANT, "<|end|>");
}

TEST(spans_positions) {
    chat_turn t[] = {U("q"), A("ab"), U("r"), A("cd")};
    chat_span sp[4];
    int n = chat_assistant_spans(t, 4, CHAT_TRAIN_ALL_ASSISTANT, sp, 4);
    REQUIRE(n == 2);
    /* "<|bos|><|user|>q<|end|><|assistant|>" is 7+8+1+7+13 = 36 bytes. */
    EXPECT(sp[0].start == 36 && sp[0].end == 36 + 2 + 7);
    EXPECT(chat_assistant_spans(t, 4, CHAT_TRAIN_ALL_ASSISTANT, NULL, 0) == 2);
}

TEST(special_text_in_content_stays_text) {
    chat_turn t[] = {U("say <|end|> please"), A("<|assistant|>")};
    chat_segment seg[16];
    int ns = chat_segments(t, 2, 0, CHAT_TRAIN_ALL_ASSISTANT, seg, 16);
    /* bos, user, text, end, assistant, text, end */
    REQUIRE(ns == 7);
    EXPECT(!seg[2].special && !seg[5].special);
    EXPECT(seg[5].train && seg[6].train && !seg[2].train);
}

TEST(invalid_input) {
    chat_turn bad_role[] = {{(chat_role)7, "x"}};
    chat_turn null_text[] = {{CHAT_ROLE_USER, NULL}};
    char buf[64] = "junk";
    EXPECT(chat_render(bad_role, 1, 0, buf, sizeof buf) == (size_t)-1);
    EXPECT(buf[0] == 0);
    EXPECT(chat_render(null_text, 1, 0, NULL, 0) == (size_t)-1);
    EXPECT(chat_render_alloc(bad_role, 1, 0, NULL) == NULL);
    EXPECT(chat_segments(bad_role, 1, 0, 0, NULL, 0) == -1);
    EXPECT(chat_segments(null_text, 1, 0, 9, NULL, 0) == -1);
    EXPECT(chat_assistant_spans(null_text, 1, 0, NULL, 0) == -1);
}

TEST(role_names) {
    chat_role r;
    EXPECT(chat_role_parse("human", &r) == 0 && r == CHAT_ROLE_USER);
    EXPECT(chat_role_parse("prompter", &r) == 0 && r == CHAT_ROLE_USER);
    EXPECT(chat_role_parse("gpt", &r) == 0 && r == CHAT_ROLE_ASSISTANT);
    EXPECT(chat_role_parse("system", &r) == 0 && r == CHAT_ROLE_SYSTEM);
    EXPECT(chat_role_parse("narrator", &r) == -1);
    EXPECT_STREQ(chat_role_name(CHAT_ROLE_ASSISTANT), "assistant");
}

TEST_MAIN()
