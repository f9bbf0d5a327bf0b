/* test_feedback_fuzz.c — a bounded, deterministic mutation test of the
 * feedback importers: valid lines of every format are mutated at random
 * (byte flips, deletions, JSON/HH fragments spliced in, truncation, lines
 * joined) and imported. Checked on every input: no crash (ASan/UBSan under
 * `make asan`, no leaks), the import reports only format errors with
 * "name:line:", skip-bad counts add up, every record that gets in is valid,
 * and writes back to canonical JSON that reads as an equal record.
 * The libFuzzer target in tests/fuzz/ explores the same properties. */
#include "test.h"
#include "../../src/base/rng.h"
#include "../../src/data/feedback.h"

static const char *seeds[] = {
    "{\"prompt\": \"What is 2+2?\", \"response\": \"4\"}",
    "{\"prompt\": \"Pick\", \"chosen\": \"good\", \"rejected\": \"bad\", \"annotator\": \"u7\", \"groups\": {\"age\": \"18-24\"}, \"time\": \"2024-05-01T12:00:00Z\"}",
    "{\"prompt\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"Hi\"}], \"completion\": \"Hey\", \"label\": false, \"weight\": 0.5}",
    "{\"prompt\": \"Rank\", \"responses\": [\"x\", \"y\", \"z\"], \"ranking\": [[0, 2], 1]}",
    "{\"prompt\": \"Rate\", \"response\": \"ok\", \"rating\": 4, \"scale\": [1, 5], \"comment\": \"c\"}",
    "{\"v\":1,\"kind\":\"ranking\",\"id\":\"r1\",\"source\":\"app\",\"annotator\":\"alice\",\"groups\":{\"group\":\"g\"},\"time\":\"2024-05-01T12:00:00.123Z\","
    "\"weight\":0.1,\"prompt\":[{\"role\":\"user\",\"text\":\"q\"},{\"role\":\"assistant\",\"text\":\"a\"},{\"role\":\"user\",\"text\":\"q2\"}],"
    "\"responses\":[\"r0\",\"r1\",\"r2\"],\"ranks\":[1,0,1],\"comment\":null,\"meta\":{\"m\":\"1\"}}",
    "{\"v\":1,\"kind\":\"pair\",\"id\":null,\"source\":\"app\",\"annotator\":\"bob\",\"groups\":{},\"time\":null,\"weight\":1,"
    "\"prompt\":[{\"role\":\"user\",\"text\":\"q\"}],\"responses\":[\"A\",\"B\"],\"choice\":\"both_bad\",\"comment\":\"meh\",\"meta\":{}}",
    "{\"v\":1,\"kind\":\"rating\",\"source\":\"app\",\"annotator\":\"c\",\"prompt\":[{\"role\":\"user\",\"text\":\"q\"}],\"responses\":[\"A\"],\"rating\":2.5,\"scale\":[0,10]}",
    "{\"v\":1,\"kind\":\"thumbs\",\"source\":\"app\",\"annotator\":\"d\",\"prompt\":[{\"role\":\"user\",\"text\":\"q\"}],\"responses\":[\"A\"],\"thumb\":\"up\"}",
    "{\"chosen\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: How?\\n\\nAssistant: Well.\", "
    "\"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: How?\\n\\nAssistant: Badly.\"}",
    "{\"message_tree_id\": \"T1\", \"prompt\": {\"message_id\": \"P0\", \"text\": \"root q\", \"role\": \"prompter\", \"replies\": ["
    "{\"message_id\": \"A1\", \"text\": \"best\", \"role\": \"assistant\", \"rank\": 0, \"emojis\": {\"+1\": 3, \"-1\": 1}, \"replies\": ["
    "{\"message_id\": \"P5\", \"text\": \"more\", \"role\": \"prompter\", \"replies\": [{\"message_id\": \"A6\", \"text\": \"deep\", "
    "\"role\": \"assistant\", \"user_id\": \"u\", \"created_date\": \"2023-02-05T14:23:50.98+00:00\", \"replies\": []}]}]},"
    "{\"message_id\": \"A2\", \"text\": \"second\", \"role\": \"assistant\", \"rank\": 1, \"synthetic\": false, \"replies\": []},"
    "{\"message_id\": \"A3\", \"text\": \"s\", \"role\": \"assistant\", \"rank\": 2, \"synthetic\": true, \"replies\": []}]}}",
};

static const char *fragments[] = {
    "\"", "\\", "{", "}", "[", "]", ",", ":", "null", "true", "false", "-1", "0", "1e999", "-0.0", "99999999999999999999",
    "\"\\u0000\"", "\"\\ud800\"", "\\n\\nHuman: ", "\\n\\nAssistant: ", "\"rank\": 0", "\"kind\": \"pair\"", "\"annotator\": \"\"",
    "\"replies\": [{}]", "\"prompt\": {}", "\"ranking\": [[]]", "\"time\": \"9999-12-31T23:59:59.999Z\"", "\"weight\": 1e308",
    "\n", "\r\n", "\xff", "\xc3", " ", "\"role\": \"assistant\"", "\"label\": 1", "\"scale\": [5, 1]", "\"emojis\": {\"+1\": -3}",
};

#define NSEEDS ((int)(sizeof seeds / sizeof seeds[0]))
#define NFRAG ((int)(sizeof fragments / sizeof fragments[0]))

/* Appends n bytes to a growing buffer. */
typedef struct { char *p; size_t n, cap; } buf;
static void put(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void mutate(rl_rng *r, buf *out) {
    /* 1-3 seed lines joined, then 1-6 mutations. */
    out->n = 0;
    int lines = 1 + (int)rl_rng_below(r, 3);
    for (int i = 0; i < lines; i++) {
        const char *s = seeds[rl_rng_below(r, NSEEDS)];
        put(out, s, strlen(s));
        put(out, "\n", 1);
    }
    int muts = 1 + (int)rl_rng_below(r, 6);
    for (int m = 0; m < muts && out->n > 0; m++) {
        size_t pos = rl_rng_below(r, (uint32_t)out->n);
        switch (rl_rng_below(r, 6)) {
        case 0: out->p[pos] ^= (char)(1u << rl_rng_below(r, 8)); break;           /* bit flip */
        case 1: {                                                                    /* delete a range */
            size_t len = 1 + rl_rng_below(r, 16);
            if (pos + len > out->n) len = out->n - pos;
            memmove(out->p + pos, out->p + pos + len, out->n - pos - len);
            out->n -= len;
            break;
        }
        case 2: case 3: {                                                            /* splice a fragment */
            const char *f = fragments[rl_rng_below(r, NFRAG)];
            size_t fl = strlen(f);
            buf t = {0};
            put(&t, out->p, pos);
            put(&t, f, fl);
            put(&t, out->p + pos, out->n - pos);
            free(out->p);
            *out = t;
            break;
        }
        case 4: out->n = pos; break;                                                 /* truncate */
        case 5: {                                                                    /* duplicate a range */
            size_t len = 1 + rl_rng_below(r, 32);
            if (pos + len > out->n) len = out->n - pos;
            buf t = {0};
            put(&t, out->p, pos + len);
            put(&t, out->p + pos, out->n - pos);
            free(out->p);
            *out = t;
            break;
        }
        }
    }
}

static int64_t nonblank_lines(const char *p, size_t n) {
    int64_t k = 0;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - p) : n;
        int blank = 1;
        for (size_t j = i; j < e; j++) if (p[j] != ' ' && p[j] != '\t' && p[j] != '\r') blank = 0;
        k += !blank;
        i = e + 1;
    }
    return k;
}

TEST(mutated_lines_never_break_the_importer) {
    rl_rng r;
    rl_rng_seed(&r, 20240501);
    buf in = {0};
    int iters = getenv("RLHF_FUZZ_ITERS") ? atoi(getenv("RLHF_FUZZ_ITERS")) : 20000;
    int64_t accepted = 0, rejected = 0;
    for (int it = 0; it < iters; it++) {
        mutate(&r, &in);
        fb_set s;
        fb_set_init(&s);
        fb_import_stats st;
        fb_import_opts skip = {1};
        fb_format fmt = (fb_format)rl_rng_below(&r, 4);
        rl_status rc = fb_import_mem(&s, "fz", in.p ? in.p : "", in.n, fmt, &skip, &st);
        EXPECT_MSG(rc == RL_OK, "iteration %d: skip-bad import failed: %s", it, rl_error());
        EXPECT_MSG(st.lines == nonblank_lines(in.p, in.n), "iteration %d: %lld lines counted", it, (long long)st.lines);
        EXPECT(st.bad >= 0 && st.bad <= st.lines);
        int64_t added = 0;
        for (int k = 0; k < FB_NKINDS; k++) added += st.added[k];
        EXPECT(added == s.n);
        EXPECT((st.bad == 0) == (st.first_error[0] == 0));
        if (st.bad) EXPECT_MSG(!strncmp(st.first_error, "fz:", 3), "iteration %d: '%s'", it, st.first_error);
        accepted += st.lines - st.bad;
        rejected += st.bad;
        /* every record is valid and survives canonical JSON */
        for (int64_t i = 0; i < s.n; i++) {
            const fb_record *rec = &s.records[i];
            EXPECT(fb_record_validate(rec) == RL_OK);
            char *js = fb_record_to_json(rec);
            EXPECT(js != NULL);
            if (!js) continue;
            fb_set b;
            fb_set_init(&b);
            EXPECT_MSG(fb_import_mem(&b, "rt", js, strlen(js), FB_FMT_JSONL, NULL, NULL) == RL_OK, "iteration %d: %s", it, rl_error());
            EXPECT(b.n == 1 && fb_record_equal(rec, &b.records[0], NULL, 0));
            fb_set_free(&b);
            free(js);
            char *chat = chat_render_alloc(rec->prompt, rec->n_prompt, 1, NULL);
            EXPECT(chat != NULL);
            free(chat);
        }
        fb_pair *p; fb_thumb *t; fb_demo *d;
        int64_t n;
        EXPECT(fb_to_pairs(&s, &p, &n) == RL_OK); free(p);
        EXPECT(fb_to_thumbs(&s, FB_THUMBS_FROM_PAIRS | FB_THUMBS_FROM_RATINGS, &t, &n) == RL_OK); free(t);
        EXPECT(fb_to_demos(&s, FB_DEMOS_FROM_WINNERS, &d, &n) == RL_OK); free(d);
        fb_set_free(&s);
        /* strict mode: OK, or a format error that names the line */
        fb_set_init(&s);
        rc = fb_import_mem(&s, "fz", in.p ? in.p : "", in.n, fmt, NULL, &st);
        EXPECT(rc == RL_OK || rc == RL_EFORMAT);
        if (rc == RL_EFORMAT) EXPECT_MSG(!strncmp(rl_error(), "fz:", 3) && strchr(rl_error() + 3, ':'), "iteration %d: '%s'", it, rl_error());
        fb_set_free(&s);
    }
    free(in.p);
    /* The mutations must exercise both outcomes, or the test proves little. */
    EXPECT(accepted > iters / 10 && rejected > iters / 10);
    if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "  %d inputs: %lld lines accepted, %lld rejected\n", iters, (long long)accepted, (long long)rejected);
}

TEST_MAIN()
