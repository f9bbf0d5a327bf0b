/* test_feedback.c — feedback records: invariants, equality, ownership,
 * expansions, every import format and its round trip, malformed input, and
 * the counts on the real OASST and HH-RLHF files. */
#include "test.h"
#include <stdint.h>
#include <unistd.h>
#include <zlib.h>
#include "../../src/data/feedback.h"

/* ---- helpers ---------------------------------------------------------------- */

static char tmpdir[256];
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_test_feedback_%d", (int)getpid());
        char cmd[300];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", tmpdir);
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static char *read_all(const char *path, size_t *n) {
    gzFile f = gzopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    size_t cap = 1 << 20, len = 0;
    char *b = malloc(cap);
    int got;
    while ((got = gzread(f, b + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)got;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    gzclose(f);
    *n = len;
    return b;
}

static const char *shared(const char *name) {
    static char buf[512];
    const char *root = getenv("RLHF_SHARED");
    snprintf(buf, sizeof buf, "%s/data/%s", root ? root : "../shared", name);
    return buf;
}

/* Imports a string; returns the status, fills st. */
static rl_status import_str(fb_set *s, const char *text, fb_format fmt, int skip_bad, fb_import_stats *st) {
    fb_import_opts o = {skip_bad};
    return fb_import_mem(s, "t.jsonl", text, strlen(text), fmt, &o, st);
}

/* Exports a set to canonical JSONL, re-imports it, and checks every record
 * is equal field by field. Returns the number of mismatches. */
static int canonical_round_trip(const fb_set *a) {
    const char *p = tmp_path("rt.jsonl");
    if (fb_export_jsonl(a, p) != RL_OK) { fprintf(stderr, "export: %s\n", rl_error()); return 1; }
    fb_set b;
    fb_set_init(&b);
    fb_import_stats st;
    int bad = 0;
    if (fb_import_file(&b, p, FB_FMT_JSONL, NULL, &st) != RL_OK) { fprintf(stderr, "import: %s\n", rl_error()); bad = 1; }
    else if (b.n != a->n) { fprintf(stderr, "round trip: %lld records, expected %lld\n", (long long)b.n, (long long)a->n); bad = 1; }
    for (int64_t i = 0; !bad && i < a->n; i++) {
        char why[64];
        if (!fb_record_equal(&a->records[i], &b.records[i], why, sizeof why)) {
            fprintf(stderr, "round trip: record %lld differs in %s\n", (long long)i, why);
            bad++;
        }
    }
    fb_set_free(&b);
    return bad;
}

/* A record of each kind with every field set. */
static const chat_turn conv[] = {{CHAT_ROLE_SYSTEM, "Be kind."}, {CHAT_ROLE_USER, "Hi \"you\" \\ \xc3\xa9\n"},
                                 {CHAT_ROLE_ASSISTANT, "Hello."}, {CHAT_ROLE_USER, "Tell me a joke \xf0\x9f\x98\x80"}};
static const fb_kv groups[] = {{"group", "red-team"}, {"age", "25-34"}, {"region", ""}};
static const fb_kv meta[] = {{"model", "tiny-3"}, {"seed", "42"}};
static const char *two[] = {"Joke A", "Joke B\twith tab"};
static const char *four[] = {"r0", "r1", "r2", "r3"};
static const int32_t ranks4[] = {2, 0, 2, 1}; /* ties allowed */

static fb_record full_record(fb_kind k) {
    fb_record r = fb_record_init(k);
    r.id = "rec-1";
    r.source = "app";
    r.annotator = "alice";
    r.groups = groups;
    r.n_groups = 3;
    r.time_ms = 1714564800123LL; /* 2024-05-01T12:00:00.123Z */
    r.weight = 0.1;
    r.prompt = conv;
    r.n_prompt = 4;
    r.comment = "meh";
    r.meta = meta;
    r.n_meta = 2;
    r.responses = two;
    r.n_responses = k == FB_PAIR ? 2 : 1;
    if (k == FB_THUMBS) r.thumb = -1;
    if (k == FB_PAIR) r.choice = FB_CHOICE_BOTH_BAD;
    if (k == FB_RANKING) { r.responses = four; r.n_responses = 4; r.ranks = ranks4; }
    if (k == FB_RATING) { r.rating = 3.5; r.scale_lo = 1; r.scale_hi = 7; }
    return r;
}

/* ---- invariants and equality ---------------------------------------------------- */

TEST(validate_rejects_each_broken_invariant) {
    for (int k = 0; k < FB_NKINDS; k++) { /* an all-zero record of any kind is invalid */
        fb_record z;
        memset(&z, 0, sizeof z);
        z.kind = (fb_kind)k;
        EXPECT(fb_record_validate(&z) == RL_EINVAL);
    }
    fb_record ok = full_record(FB_RATING);
    EXPECT(fb_record_validate(&ok) == RL_OK);
    fb_record r;
    r = ok; r.annotator = NULL; EXPECT(fb_record_validate(&r) == RL_EINVAL); EXPECT(strstr(rl_error(), "annotator") != NULL);
    r = ok; r.annotator = ""; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.source = ""; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.weight = -1; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.weight = NAN; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.n_prompt = 3; EXPECT(fb_record_validate(&r) == RL_EINVAL); /* ends with an assistant turn */
    EXPECT(strstr(rl_error(), "user turn") != NULL);
    r = ok; r.n_prompt = 0; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.rating = 8; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.scale_hi = 1; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.n_responses = 2; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.thumb = 1; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    r = ok; r.time_ms = 300000000000000LL; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    fb_kv dup[] = {{"a", "1"}, {"a", "2"}};
    r = ok; r.groups = dup; r.n_groups = 2; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    fb_kv empty_key[] = {{"", "1"}};
    r = ok; r.meta = empty_key; r.n_meta = 1; EXPECT(fb_record_validate(&r) == RL_EINVAL);
    fb_record t = full_record(FB_THUMBS);
    EXPECT(fb_record_validate(&t) == RL_OK);
    t.thumb = 0; EXPECT(fb_record_validate(&t) == RL_EINVAL);
    fb_record p = full_record(FB_PAIR);
    p.choice = (fb_choice)4; EXPECT(fb_record_validate(&p) == RL_EINVAL);
    p = full_record(FB_PAIR); p.n_responses = 1; EXPECT(fb_record_validate(&p) == RL_EINVAL);
    fb_record k = full_record(FB_RANKING);
    EXPECT(fb_record_validate(&k) == RL_OK);
    int32_t neg[] = {0, -1, 1, 2};
    k.ranks = neg; EXPECT(fb_record_validate(&k) == RL_EINVAL);
    k = full_record(FB_RANKING); k.ranks = NULL; EXPECT(fb_record_validate(&k) == RL_EINVAL);
    k = full_record(FB_RANKING); k.n_responses = 1; EXPECT(fb_record_validate(&k) == RL_EINVAL);
    fb_record d = full_record(FB_DEMO);
    d.ranks = ranks4; EXPECT(fb_record_validate(&d) == RL_EINVAL);
}

TEST(equal_notices_every_field) {
    fb_record a = full_record(FB_RANKING);
    char why[64];
    EXPECT(fb_record_equal(&a, &a, why, sizeof why));
    fb_record b;
    const char *resp2[] = {"r0", "r1", "r2", "rX"};
    const int32_t ranks2[] = {2, 0, 2, 0};
    const chat_turn conv2[] = {{CHAT_ROLE_SYSTEM, "Be kind."}, {CHAT_ROLE_USER, "Hi"}, {CHAT_ROLE_ASSISTANT, "Hello."}, {CHAT_ROLE_USER, "x"}};
    const fb_kv g2[] = {{"group", "red-team"}, {"age", "35-44"}, {"region", ""}};
#define DIFF(stmt, field) do { b = a; stmt; EXPECT(!fb_record_equal(&a, &b, why, sizeof why)); EXPECT_STREQ(why, field); } while (0)
    DIFF(b.kind = FB_PAIR, "kind");
    DIFF(b.id = "rec-2", "id");
    DIFF(b.id = NULL, "id");
    DIFF(b.source = "hh", "source");
    DIFF(b.annotator = "bob", "annotator");
    DIFF(b.groups = g2, "groups");
    DIFF(b.n_groups = 2, "groups");
    DIFF(b.time_ms = FB_TIME_UNKNOWN, "time");
    DIFF(b.weight = 0.2, "weight");
    DIFF(b.prompt = conv2, "prompt (turn)");
    DIFF(b.n_prompt = 2, "prompt (turn count)");
    DIFF(b.responses = resp2, "responses");
    DIFF(b.ranks = ranks2, "ranks");
    DIFF(b.comment = NULL, "comment");
    DIFF(b.n_meta = 1, "meta");
    fb_record t = full_record(FB_THUMBS);
    fb_record t2 = t; t2.thumb = 1;
    EXPECT(!fb_record_equal(&t, &t2, why, sizeof why)); EXPECT_STREQ(why, "thumb");
    fb_record q = full_record(FB_RATING), q2 = q;
    q2.rating = 4; EXPECT(!fb_record_equal(&q, &q2, why, sizeof why)); EXPECT_STREQ(why, "rating");
    fb_record pr = full_record(FB_PAIR), pr2 = pr;
    pr2.choice = FB_CHOICE_TIE; EXPECT(!fb_record_equal(&pr, &pr2, why, sizeof why)); EXPECT_STREQ(why, "choice");
#undef DIFF
}

TEST(set_owns_copies) {
    char text[32] = "original prompt", resp[32] = "original response", annot[16] = "carol";
    chat_turn t = {CHAT_ROLE_USER, text};
    const char *rs[1] = {resp};
    fb_record r = fb_record_init(FB_DEMO);
    r.source = "test";
    r.annotator = annot;
    r.prompt = &t;
    r.n_prompt = 1;
    r.responses = rs;
    r.n_responses = 1;
    fb_set s;
    fb_set_init(&s);
    for (int i = 0; i < 5000; i++) REQUIRE(fb_set_add(&s, &r) == RL_OK); /* several pool blocks */
    strcpy(text, "changed"); strcpy(resp, "changed"); strcpy(annot, "mallory");
    EXPECT_STREQ(s.records[0].prompt[0].text, "original prompt");
    EXPECT_STREQ(s.records[4999].responses[0], "original response");
    EXPECT_STREQ(s.records[2500].annotator, "carol");
    EXPECT(s.records[0].prompt != &t);
    r.annotator = NULL;
    EXPECT(fb_set_add(&s, &r) == RL_EINVAL);
    EXPECT(s.n == 5000);
    EXPECT(fb_set_weight(&s, 3, 2.5) == RL_OK && s.records[3].weight == 2.5);
    EXPECT(fb_set_weight(&s, 3, -1) == RL_EINVAL);
    EXPECT(fb_set_weight(&s, 5000, 1) == RL_EINVAL);
    fb_set_truncate(&s, 10);
    EXPECT(s.n == 10);
    fb_set_free(&s);
    EXPECT(s.n == 0 && s.records == NULL);
}

/* ---- canonical JSONL ------------------------------------------------------------------ */

TEST(canonical_round_trip_every_kind_and_field) {
    fb_set s;
    fb_set_init(&s);
    for (int k = 0; k < FB_NKINDS; k++) {
        fb_record r = full_record((fb_kind)k);
        REQUIRE(fb_set_add(&s, &r) == RL_OK);
        /* The same kind with optional fields absent and odd numbers. */
        r.id = NULL; r.comment = NULL; r.n_groups = 0; r.n_meta = 0; r.time_ms = FB_TIME_UNKNOWN;
        r.weight = 1.0 / 3.0;
        if (k == FB_RATING) { r.rating = -0.25; r.scale_lo = -1e-3 - 1; r.scale_hi = 1e300; }
        if (k == FB_PAIR) r.choice = FB_CHOICE_B;
        if (k == FB_THUMBS) r.thumb = 1;
        REQUIRE(fb_set_add(&s, &r) == RL_OK);
        r.time_ms = -86400000LL * 365 * 100 - 1; /* before 1970: negative ms, odd millisecond */
        r.weight = 0;
        REQUIRE(fb_set_add(&s, &r) == RL_OK);
    }
    EXPECT(canonical_round_trip(&s) == 0);
    /* Writing what was read gives the same bytes. */
    size_t n1 = 0, n2 = 0;
    fb_set b;
    fb_set_init(&b);
    REQUIRE(fb_export_jsonl(&s, tmp_path("c1.jsonl")) == RL_OK);
    REQUIRE(fb_import_file(&b, tmp_path("c1.jsonl"), FB_FMT_AUTO, NULL, NULL) == RL_OK);
    REQUIRE(fb_export_jsonl(&b, tmp_path("c2.jsonl")) == RL_OK);
    char *x = read_all(tmp_path("c1.jsonl"), &n1), *y = read_all(tmp_path("c2.jsonl"), &n2);
    EXPECT(n1 == n2 && !memcmp(x, y, n1));
    /* Short numbers are written short. */
    char *line = fb_record_to_json(&s.records[0]);
    EXPECT(strstr(line, "\"weight\":0.1,") != NULL);
    EXPECT(strstr(line, "\"time\":\"2024-05-01T12:00:00.123Z\"") != NULL);
    EXPECT(strstr(line, "\"groups\":{\"group\":\"red-team\",\"age\":\"25-34\",\"region\":\"\"}") != NULL);
    free(line);
    free(x); free(y);
    fb_set_free(&b);
    fb_set_free(&s);
}

TEST(canonical_time_forms) {
    fb_set s;
    fb_set_init(&s);
    const char *lines =
        "{\"kind\":\"demo\",\"annotator\":\"a\",\"prompt\":\"p\",\"responses\":[\"r\"],\"time\":\"2024-05-01T14:00:00+02:00\"}\n"
        "{\"kind\":\"demo\",\"annotator\":\"a\",\"prompt\":\"p\",\"responses\":[\"r\"],\"time\":\"2024-05-01 12:00:00.5\"}\n"
        "{\"kind\":\"demo\",\"annotator\":\"a\",\"prompt\":\"p\",\"responses\":[\"r\"],\"time\":1714564800.25}\n"
        "{\"kind\":\"demo\",\"annotator\":\"a\",\"prompt\":\"p\",\"responses\":[\"r\"],\"time\":\"2023-02-05T14:23:50.983374+00:00\"}\n";
    fb_import_stats st;
    REQUIRE(import_str(&s, lines, FB_FMT_JSONL, 0, &st) == RL_OK);
    REQUIRE(s.n == 4);
    EXPECT(s.records[0].time_ms == 1714564800000LL);
    EXPECT(s.records[1].time_ms == 1714564800500LL);
    EXPECT(s.records[2].time_ms == 1714564800250LL);
    EXPECT(s.records[3].time_ms == 1675607030983LL);
    EXPECT(import_str(&s, "{\"kind\":\"demo\",\"annotator\":\"a\",\"prompt\":\"p\",\"responses\":[\"r\"],\"time\":\"2023-02-30T00:00:00Z\"}",
                      FB_FMT_JSONL, 0, &st) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "ISO-8601") != NULL);
    EXPECT(canonical_round_trip(&s) == 0);
    fb_set_free(&s);
}

/* ---- generic JSONL ------------------------------------------------------------------------ */

TEST(generic_shapes) {
    const char *lines =
        "{\"prompt\": \"What is 2+2?\", \"response\": \"4\"}\n"
        "{\"prompt\": \"Pick\", \"chosen\": \"good\", \"rejected\": \"bad\", \"annotator\": \"u7\", \"groups\": {\"age\": \"18-24\"}}\n"
        "{\"prompt\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"Hi\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \"Hey\"}], \"label\": false}\n"
        "\n   \n"
        "{\"prompt\": \"Rank\", \"responses\": [\"x\", \"y\", \"z\"], \"ranking\": [[0, 2], 1], \"weight\": 2}\n"
        "{\"prompt\": \"Rate\", \"response\": \"ok\", \"rating\": 4, \"scale\": [1, 5], \"comment\": \"fine\", \"id\": 17}\n"
        "{\"prompt\": \"SFT\", \"completion\": \"done\", \"extra_column\": 1}\n";
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    REQUIRE(import_str(&s, lines, FB_FMT_JSONL, 0, &st) == RL_OK);
    EXPECT(st.lines == 6);
    REQUIRE(s.n == 6);
    const fb_record *r = s.records;
    EXPECT(r[0].kind == FB_DEMO && !strcmp(r[0].responses[0], "4") && !strcmp(r[0].prompt[0].text, "What is 2+2?"));
    EXPECT_STREQ(r[0].annotator, "jsonl:unknown");
    EXPECT_STREQ(r[0].source, "jsonl");
    EXPECT(r[1].kind == FB_PAIR && r[1].choice == FB_CHOICE_A && !strcmp(r[1].responses[0], "good") && !strcmp(r[1].responses[1], "bad"));
    EXPECT_STREQ(r[1].annotator, "u7");
    EXPECT(r[1].n_groups == 1 && !strcmp(r[1].groups[0].key, "age") && !strcmp(r[1].groups[0].value, "18-24"));
    EXPECT(r[2].kind == FB_THUMBS && r[2].thumb == -1 && r[2].n_prompt == 2 && r[2].prompt[0].role == CHAT_ROLE_SYSTEM);
    EXPECT_STREQ(r[2].responses[0], "Hey");
    EXPECT(r[3].kind == FB_RANKING && r[3].n_responses == 3 && r[3].weight == 2);
    EXPECT(r[3].ranks[0] == 0 && r[3].ranks[1] == 1 && r[3].ranks[2] == 0);
    EXPECT(r[4].kind == FB_RATING && r[4].rating == 4 && r[4].scale_lo == 1 && r[4].scale_hi == 5);
    EXPECT_STREQ(r[4].comment, "fine");
    EXPECT_STREQ(r[4].id, "17");
    EXPECT(r[5].kind == FB_DEMO && !strcmp(r[5].responses[0], "done"));
    EXPECT(st.added[FB_DEMO] == 2 && st.added[FB_PAIR] == 1 && st.added[FB_THUMBS] == 1 && st.added[FB_RANKING] == 1 && st.added[FB_RATING] == 1);
    EXPECT(st.n_notes >= 1 && strstr(st.notes[0], "jsonl:unknown") != NULL);
    EXPECT(canonical_round_trip(&s) == 0);
    /* generic → canonical → generic-free: a second export is byte-identical */
    fb_set_free(&s);
}

TEST(generic_label_and_ranking_errors) {
    struct { const char *line, *msg; } cases[] = {
        {"{\"prompt\": \"p\", \"completion\": \"c\", \"label\": \"yes\"}", "'label' must be true"},
        {"{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"], \"ranking\": [0, 0]}", "appears twice"},
        {"{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"], \"ranking\": [0]}", "every response must be ranked"},
        {"{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"], \"ranking\": [0, 5]}", "index 5 is not a response"},
        {"{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"]}", "needs 'ranking'"},
        {"{\"prompt\": \"p\", \"chosen\": \"c\"}", "both 'chosen' and 'rejected'"},
        {"{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"r\"}", "'chosen' must be a string"},
        {"{\"prompt\": [], \"response\": \"r\"}", "non-empty array"},
        {"{\"prompt\": [{\"role\": \"alien\", \"text\": \"x\"}], \"response\": \"r\"}", "role must be"},
        {"{\"prompt\": [{\"role\": \"user\", \"text\": \"x\"}, {\"role\": \"assistant\", \"text\": \"y\"}], \"response\": \"r\"}", "must be a user turn"},
        {"{\"prompt\": \"p\"}", "needs one of"},
        {"{\"prompt\": \"p\", \"response\": \"r\", \"annotator\": \"\"}", "'annotator' is empty"},
        {"{\"prompt\": \"p\", \"response\": \"r\", \"weight\": -2}", "weight"},
        {"{\"prompt\": \"p\", \"response\": \"r\", \"groups\": {\"g\": 1}}", "must be a string"},
        {"{\"prompt\": \"p\", \"response\": \"r\", \"rating\": 9, \"scale\": [1, 5]}", "outside its scale"},
        {"{\"prompt\": \"p\", \"response\": \"r\", \"a\": 1, \"a\": 2}", "not valid JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"hello\": 1}", "matches no known shape"},
        {"{\"prompt\": \"p\", \"response\": \"r\"", "not valid JSON"},
        {"{\"kind\": \"demo\", \"prompt\": \"p\", \"responses\": [\"r\"]}", "canonical records must say who judged"},
        {"{\"kind\": \"vote\", \"annotator\": \"a\", \"prompt\": \"p\", \"responses\": [\"r\"]}", "expected demo, thumbs"},
        {"{\"kind\": \"demo\", \"annotator\": \"a\", \"prompt\": \"p\", \"responses\": [\"r\"], \"anotator\": \"x\"}", "unknown field 'anotator'"},
        {"{\"v\": 2, \"kind\": \"demo\", \"annotator\": \"a\", \"prompt\": \"p\", \"responses\": [\"r\"]}", "version"},
        {"{\"kind\": \"pair\", \"annotator\": \"a\", \"prompt\": \"p\", \"responses\": [\"r\", \"s\"], \"choice\": \"c\"}", "expected a, b, tie"},
        {"{\"kind\": \"ranking\", \"annotator\": \"a\", \"prompt\": \"p\", \"responses\": [\"r\", \"s\"], \"ranks\": [0]}", "'ranks' must be"},
        {"{\"kind\": \"demo\", \"annotator\": \"a\", \"prompt\": \"p\", \"responses\": [\"r\"], \"thumb\": \"up\"}", "thumbs records only"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        fb_set s;
        fb_set_init(&s);
        char buf[1024];
        /* a good line first, the bad one on line 2 */
        snprintf(buf, sizeof buf, "{\"prompt\": \"ok\", \"response\": \"fine\"}\n%s\n", cases[i].line);
        fb_import_stats st;
        rl_status rc = import_str(&s, buf, FB_FMT_AUTO, 0, &st);
        EXPECT_MSG(rc == RL_EFORMAT, "case %d accepted: %s", i, cases[i].line);
        EXPECT_MSG(strstr(rl_error(), "t.jsonl:2: ") == rl_error(), "case %d: message '%s' lacks t.jsonl:2:", i, rl_error());
        EXPECT_MSG(strstr(rl_error(), cases[i].msg) != NULL, "case %d: message '%s' lacks '%s'", i, rl_error(), cases[i].msg);
        EXPECT(s.n == 1); /* the good line before it stays */
        fb_set_free(&s);
        /* skip_bad: both lines read, one skipped */
        fb_set_init(&s);
        snprintf(buf, sizeof buf, "%s\n{\"prompt\": \"ok\", \"response\": \"fine\"}\n", cases[i].line);
        EXPECT(import_str(&s, buf, FB_FMT_AUTO, 1, &st) == RL_OK);
        EXPECT(st.bad == 1 && st.lines == 2 && s.n == 1);
        EXPECT(strstr(st.first_error, "t.jsonl:1: ") == st.first_error);
        fb_set_free(&s);
    }
}

TEST(explicit_format_rejects_other_shapes) {
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    EXPECT(import_str(&s, "{\"prompt\": \"p\", \"response\": \"r\"}", FB_FMT_HH, 0, &st) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "expected an HH-RLHF line") && strstr(rl_error(), "generic JSONL line"));
    EXPECT(import_str(&s, "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: c\"}",
                      FB_FMT_OASST, 0, &st) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "OpenAssistant tree") && strstr(rl_error(), "HH-RLHF line"));
    EXPECT(import_str(&s, "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: c\"}",
                      FB_FMT_JSONL, 0, &st) == RL_EFORMAT);
    EXPECT(s.n == 0);
    fb_set_free(&s);
}

/* ---- expansions ----------------------------------------------------------------------------- */

TEST(pairs_from_choices_and_rankings) {
    const char *lines =
        "{\"prompt\": \"P\", \"chosen\": \"c\", \"rejected\": \"r\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"P\", \"responses\": [\"A\", \"B\"], \"choice\": \"b\", \"weight\": 0.5}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\", \"responses\": [\"A\", \"B\"], \"choice\": \"tie\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\", \"responses\": [\"A\", \"B\"], \"choice\": \"both_bad\"}\n"
        "{\"prompt\": \"R\", \"responses\": [\"x\", \"y\", \"z\", \"w\"], \"ranking\": [3, [0, 2], 1]}\n"
        "{\"prompt\": \"Q\", \"response\": \"demo\"}\n";
    fb_set s;
    fb_set_init(&s);
    REQUIRE(import_str(&s, lines, FB_FMT_AUTO, 0, NULL) == RL_OK);
    fb_pair *p;
    int64_t n;
    REQUIRE(fb_to_pairs(&s, &p, &n) == RL_OK);
    REQUIRE(n == 4 + 6); /* 4 pair records + C(4,2) */
    EXPECT(!strcmp(p[0].chosen, "c") && !strcmp(p[0].rejected, "r") && !p[0].tie && p[0].record == 0);
    EXPECT(!strcmp(p[1].chosen, "B") && !strcmp(p[1].rejected, "A") && p[1].weight == 0.5);
    EXPECT_STREQ(p[1].annotator, "b");
    EXPECT(p[2].tie && !p[2].both_bad);
    EXPECT(p[3].tie && p[3].both_bad);
    /* prompt ids: P, P, Q, Q, R → 0, 0, 1, 1, 2 */
    EXPECT(p[0].prompt == 0 && p[1].prompt == 0 && p[2].prompt == 1 && p[3].prompt == 1);
    /* ranking: w best (rank 0), x = z (rank 1), y worst (rank 2) */
    int seen = 0;
    for (int64_t i = 4; i < n; i++) {
        EXPECT(p[i].prompt == 2 && p[i].record == 4 && p[i].n_turns == 1);
        const char *c = p[i].chosen, *r = p[i].rejected;
        if ((!strcmp(c, "x") && !strcmp(r, "z")) || (!strcmp(c, "z") && !strcmp(r, "x"))) { EXPECT(p[i].tie); seen |= 1; }
        else {
            EXPECT(!p[i].tie);
            int rank_c = !strcmp(c, "w") ? 0 : (!strcmp(c, "x") || !strcmp(c, "z")) ? 1 : 2;
            int rank_r = !strcmp(r, "w") ? 0 : (!strcmp(r, "x") || !strcmp(r, "z")) ? 1 : 2;
            EXPECT(rank_c < rank_r);
            seen |= 2;
        }
    }
    EXPECT(seen == 3);
    free(p);
    int32_t ids[6], np;
    REQUIRE(fb_set_prompt_ids(&s, ids, &np) == RL_OK);
    EXPECT(np == 3 && ids[5] == 1);
    fb_set_free(&s);
}

TEST(thumbs_and_demos_with_flags) {
    const char *lines =
        "{\"prompt\": \"P\", \"completion\": \"yes\", \"label\": true}\n"
        "{\"prompt\": \"P\", \"completion\": \"no\", \"label\": false}\n"
        "{\"prompt\": \"P\", \"chosen\": \"c\", \"rejected\": \"r\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\", \"responses\": [\"A\", \"B\"], \"choice\": \"both_bad\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\", \"responses\": [\"A\", \"B\"], \"choice\": \"tie\"}\n"
        "{\"prompt\": \"R\", \"response\": \"hi\", \"rating\": 5, \"scale\": [1, 5]}\n"
        "{\"prompt\": \"R\", \"response\": \"mid\", \"rating\": 3, \"scale\": [1, 5]}\n"
        "{\"prompt\": \"S\", \"responses\": [\"x\", \"y\", \"z\"], \"ranking\": [[1, 2], 0]}\n"
        "{\"prompt\": \"T\", \"response\": \"demo\"}\n";
    fb_set s;
    fb_set_init(&s);
    REQUIRE(import_str(&s, lines, FB_FMT_AUTO, 0, NULL) == RL_OK);
    fb_thumb *t;
    int64_t n;
    REQUIRE(fb_to_thumbs(&s, 0, &t, &n) == RL_OK);
    REQUIRE(n == 2);
    EXPECT(t[0].label == 1 && t[1].label == 0 && !strcmp(t[1].response, "no"));
    free(t);
    REQUIRE(fb_to_thumbs(&s, FB_THUMBS_FROM_PAIRS | FB_THUMBS_FROM_RATINGS, &t, &n) == RL_OK);
    REQUIRE(n == 2 + 2 + 2 + 1); /* thumbs, strict pair, both bad, rating 5 (3 is the midpoint) */
    EXPECT(!strcmp(t[2].response, "c") && t[2].label == 1 && !strcmp(t[3].response, "r") && t[3].label == 0);
    EXPECT(t[4].label == 0 && t[5].label == 0);
    EXPECT(!strcmp(t[6].response, "hi") && t[6].label == 1);
    free(t);
    fb_demo *d;
    REQUIRE(fb_to_demos(&s, 0, &d, &n) == RL_OK);
    REQUIRE(n == 1);
    EXPECT_STREQ(d[0].response, "demo");
    free(d);
    REQUIRE(fb_to_demos(&s, FB_DEMOS_FROM_WINNERS, &d, &n) == RL_OK);
    REQUIRE(n == 1 + 1 + 2 + 1); /* thumbs up, pair winner, both rank-0 of the ranking, the demo */
    EXPECT(!strcmp(d[0].response, "yes") && !strcmp(d[1].response, "c"));
    EXPECT(!strcmp(d[2].response, "y") && !strcmp(d[3].response, "z"));
    free(d);
    fb_set_free(&s);
    fb_set e;
    fb_set_init(&e);
    fb_pair *p = (fb_pair *)1;
    REQUIRE(fb_to_pairs(&e, &p, &n) == RL_OK);
    EXPECT(n == 0 && p == NULL);
    fb_set_free(&e);
}

TEST(tally_counts_annotators_and_groups) {
    const char *lines =
        "{\"prompt\": \"P\", \"response\": \"a\", \"annotator\": \"u1\", \"groups\": {\"group\": \"g1\", \"age\": \"18-24\"}}\n"
        "{\"prompt\": \"P\", \"response\": \"b\", \"annotator\": \"u1\", \"groups\": {\"group\": \"g1\", \"age\": \"18-24\"}}\n"
        "{\"prompt\": \"P\", \"response\": \"c\", \"annotator\": \"u2\", \"groups\": {\"group\": \"g1\"}, \"weight\": 3}\n"
        "{\"prompt\": \"P\", \"completion\": \"d\", \"label\": true, \"annotator\": \"u3\", \"groups\": {\"group\": \"g2\"}}\n";
    fb_set s;
    fb_set_init(&s);
    REQUIRE(import_str(&s, lines, FB_FMT_AUTO, 0, NULL) == RL_OK);
    fb_tally_row *rows;
    int64_t n;
    REQUIRE(fb_tally(&s, FB_TALLY_GROUP, &rows, &n) == RL_OK);
    REQUIRE(n == 3);
    EXPECT_STREQ(rows[0].key, "group=g1");
    EXPECT(rows[0].records == 3 && rows[0].annotators == 2 && rows[0].weight == 5);
    EXPECT_STREQ(rows[1].key, "age=18-24");
    EXPECT(rows[1].records == 2 && rows[1].annotators == 1);
    EXPECT_STREQ(rows[2].key, "group=g2");
    free(rows);
    REQUIRE(fb_tally(&s, FB_TALLY_ANNOTATOR, &rows, &n) == RL_OK);
    EXPECT(n == 3 && !strcmp(rows[0].key, "u1") && rows[0].records == 2);
    free(rows);
    REQUIRE(fb_tally(&s, FB_TALLY_KIND, &rows, &n) == RL_OK);
    EXPECT(n == 2 && !strcmp(rows[0].key, "demo") && rows[0].records == 3 && rows[0].annotators == 2);
    free(rows);
    fb_set_free(&s);
}

/* ---- HH-RLHF ------------------------------------------------------------------------------------ */

TEST(hh_split_and_round_trip) {
    const char *lines =
        "{\"chosen\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: How?\\n\\nAssistant: Well.\", "
        "\"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: How?\\n\\nAssistant: Badly.\"}\n"
        /* responses that run on past the final turn on one side (as in 5 real lines) */
        "{\"chosen\": \"\\n\\nHuman: Q\\n\\nAssistant: A1\\n\\nHuman: more\\n\\nAssistant: A2\", "
        "\"rejected\": \"\\n\\nHuman: Q\\n\\nAssistant: B\"}\n"
        /* an empty final turn, an inline 'Human:' and two Human turns in a row */
        "{\"chosen\": \"\\n\\nHuman: x Human: y\\n\\nHuman: z\\n\\nAssistant: \", \"rejected\": \"\\n\\nHuman: x Human: y\\n\\nHuman: z\\n\\nAssistant: no\"}\n";
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    REQUIRE(import_str(&s, lines, FB_FMT_HH, 0, &st) == RL_OK);
    REQUIRE(s.n == 3);
    const fb_record *r = s.records;
    EXPECT(r[0].kind == FB_PAIR && r[0].n_prompt == 3 && r[0].choice == FB_CHOICE_A);
    EXPECT(!strcmp(r[0].prompt[0].text, "Hi") && r[0].prompt[1].role == CHAT_ROLE_ASSISTANT && !strcmp(r[0].prompt[2].text, "How?"));
    EXPECT(!strcmp(r[0].responses[0], "Well.") && !strcmp(r[0].responses[1], "Badly."));
    EXPECT_STREQ(r[0].annotator, "hh:unknown");
    EXPECT_STREQ(r[0].source, "hh");
    EXPECT(r[1].n_prompt == 1 && !strcmp(r[1].responses[0], "A1\n\nHuman: more\n\nAssistant: A2") && !strcmp(r[1].responses[1], "B"));
    EXPECT(st.hh_multi_turn_responses == 1);
    EXPECT(r[2].n_prompt == 2 && !strcmp(r[2].prompt[0].text, "x Human: y") && !strcmp(r[2].responses[0], ""));
    /* HH → records → HH gives the same bytes; → records again gives equal records */
    int64_t w, sk;
    REQUIRE(fb_export_hh(&s, tmp_path("hh.jsonl"), &w, &sk) == RL_OK);
    EXPECT(w == 3 && sk == 0);
    size_t n = 0;
    char *back = read_all(tmp_path("hh.jsonl"), &n);
    char *want = malloc(strlen(lines) + 1);
    /* the test lines use "\"chosen\": ..., \"rejected\"" spacing, as HH does */
    strcpy(want, lines);
    EXPECT(n == strlen(want) && !memcmp(back, want, n));
    free(back); free(want);
    fb_set b;
    fb_set_init(&b);
    REQUIRE(fb_import_file(&b, tmp_path("hh.jsonl"), FB_FMT_HH, NULL, NULL) == RL_OK);
    REQUIRE(b.n == 3);
    for (int i = 0; i < 3; i++) EXPECT(fb_record_equal(&s.records[i], &b.records[i], NULL, 0));
    fb_set_free(&b);
    EXPECT(canonical_round_trip(&s) == 0);
    fb_set_free(&s);
}

TEST(hh_export_skips_what_hh_cannot_say) {
    const char *lines =
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\", \"responses\": [\"A\", \"B\"], \"choice\": \"b\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\", \"responses\": [\"A\", \"B\"], \"choice\": \"tie\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": [{\"role\": \"system\", \"text\": \"s\"}, {\"role\": \"user\", \"text\": \"u\"}], \"responses\": [\"A\", \"B\"], \"choice\": \"a\"}\n"
        "{\"kind\": \"pair\", \"annotator\": \"b\", \"prompt\": \"Q\\n\\nAssistant: sneaky\", \"responses\": [\"A\", \"B\"], \"choice\": \"a\"}\n"
        "{\"prompt\": \"R\", \"responses\": [\"x\", \"y\", \"z\"], \"ranking\": [2, 1, 0]}\n"
        "{\"prompt\": \"D\", \"response\": \"demo\"}\n";
    fb_set s;
    fb_set_init(&s);
    REQUIRE(import_str(&s, lines, FB_FMT_AUTO, 0, NULL) == RL_OK);
    int64_t w, sk;
    REQUIRE(fb_export_hh(&s, tmp_path("hh2.jsonl"), &w, &sk) == RL_OK);
    EXPECT(w == 1 + 3 && sk == 3);
    fb_set b;
    fb_set_init(&b);
    REQUIRE(fb_import_file(&b, tmp_path("hh2.jsonl"), FB_FMT_AUTO, NULL, NULL) == RL_OK);
    REQUIRE(b.n == 4);
    EXPECT(!strcmp(b.records[0].responses[0], "B") && !strcmp(b.records[0].responses[1], "A")); /* winner first */
    /* ranking [2, 1, 0]: z > y > x; pairs in response order (x,y), (x,z), (y,z) */
    EXPECT(!strcmp(b.records[1].responses[0], "y") && !strcmp(b.records[1].responses[1], "x"));
    EXPECT(!strcmp(b.records[3].responses[0], "z") && !strcmp(b.records[3].responses[1], "y"));
    fb_set_free(&b);
    fb_set_free(&s);
}

TEST(hh_malformed) {
    struct { const char *line, *msg; } cases[] = {
        {"{\"chosen\": \"Human: hi\\n\\nAssistant: a\", \"rejected\": \"\\n\\nHuman: hi\\n\\nAssistant: b\"}", "must start with"},
        {"{\"chosen\": \"\\n\\nHuman: hi\", \"rejected\": \"\\n\\nHuman: hi\\n\\nAssistant: b\"}", "share no Human turn"},
        {"{\"chosen\": \"\\n\\nHuman: hi\\n\\nAssistant: a\", \"rejected\": 5}", "'rejected' must be a string"},
        {"{\"chosen\": \"\\n\\nAssistant: a\", \"rejected\": \"\\n\\nAssistant: b\"}", "must start with"},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        fb_set s;
        fb_set_init(&s);
        EXPECT(import_str(&s, cases[i].line, FB_FMT_HH, 0, NULL) == RL_EFORMAT);
        EXPECT_MSG(strstr(rl_error(), cases[i].msg) != NULL, "case %d: '%s'", i, rl_error());
        EXPECT(s.n == 0);
        fb_set_free(&s);
    }
}

/* ---- OpenAssistant ------------------------------------------------------------------------------ */

/* A tree: P0 → {A1 rank 0 (+1 x3, -1 x1), A2 rank 1 (+1 x1, -1 x1: tied), A3 rank 2 synthetic,
 * A4 deleted}; A1 → P5 → A6 (no rank; user_id, created_date). */
static const char *oa_tree =
    "{\"message_tree_id\": \"T1\", \"prompt\": {\"message_id\": \"P0\", \"text\": \"root q\", \"role\": \"prompter\", "
    "\"deleted\": false, \"synthetic\": false, \"review_result\": true, \"emojis\": {\"+1\": 9}, \"replies\": ["
    "{\"message_id\": \"A1\", \"parent_id\": \"P0\", \"text\": \"best\", \"role\": \"assistant\", \"rank\": 0, \"deleted\": false, "
    "\"synthetic\": false, \"emojis\": {\"+1\": 3, \"-1\": 1, \"_skip_reply\": 2}, \"replies\": ["
    "  {\"message_id\": \"P5\", \"text\": \"follow up\", \"role\": \"prompter\", \"replies\": ["
    "    {\"message_id\": \"A6\", \"text\": \"deep answer\", \"role\": \"assistant\", \"user_id\": \"u42\", "
    "     \"created_date\": \"2023-02-05T14:23:50.983374+00:00\", \"emojis\": {\"-1\": 2}, \"replies\": []}]}]},"
    "{\"message_id\": \"A2\", \"text\": \"second\", \"role\": \"assistant\", \"rank\": 1, \"emojis\": {\"+1\": 1, \"-1\": 1}, \"replies\": []},"
    "{\"message_id\": \"A3\", \"text\": \"synthetic\", \"role\": \"assistant\", \"rank\": 2, \"synthetic\": true, \"replies\": []},"
    "{\"message_id\": \"A4\", \"text\": \"deleted\", \"role\": \"assistant\", \"rank\": 3, \"deleted\": true, \"replies\": ["
    "  {\"message_id\": \"P7\", \"text\": \"under deleted\", \"role\": \"prompter\", \"replies\": []}]}"
    "]}}\n";

TEST(oasst_tree) {
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    REQUIRE(import_str(&s, oa_tree, FB_FMT_OASST, 0, &st) == RL_OK);
    EXPECT(st.oasst_messages == 8);
    EXPECT(st.oasst_dropped_synthetic == 1 && st.oasst_dropped_deleted == 2);
    EXPECT(st.oasst_rank_groups == 1 && st.oasst_thumbs_messages == 3 && st.oasst_thumbs_tied == 1);
    EXPECT(st.added[FB_DEMO] == 3 && st.added[FB_THUMBS] == 2 && st.added[FB_RANKING] == 1);
    const fb_record *rank = NULL, *deep = NULL, *a6thumb = NULL, *a1thumb = NULL;
    for (int64_t i = 0; i < s.n; i++) {
        const fb_record *r = &s.records[i];
        if (r->kind == FB_RANKING) rank = r;
        if (r->kind == FB_DEMO && !strcmp(r->id, "A6")) deep = r;
        if (r->kind == FB_THUMBS && !strcmp(r->id, "A6")) a6thumb = r;
        if (r->kind == FB_THUMBS && !strcmp(r->id, "A1")) a1thumb = r;
    }
    REQUIRE(rank && deep && a6thumb && a1thumb);
    EXPECT(rank->n_responses == 2 && !strcmp(rank->responses[0], "best") && rank->ranks[0] == 0 && rank->ranks[1] == 1);
    EXPECT_STREQ(rank->annotator, "oasst:crowd");
    EXPECT_STREQ(rank->id, "P0");
    EXPECT(rank->n_meta == 2 && !strcmp(rank->meta[1].value, "A1,A2"));
    EXPECT(deep->n_prompt == 3 && !strcmp(deep->prompt[1].text, "best") && !strcmp(deep->prompt[2].text, "follow up"));
    EXPECT_STREQ(deep->annotator, "oasst:u42");
    EXPECT(deep->time_ms == 1675607030983LL);
    EXPECT(a6thumb->thumb == -1 && a1thumb->thumb == 1);
    EXPECT(!strcmp(a1thumb->meta[1].key, "votes_up") && !strcmp(a1thumb->meta[1].value, "3"));
    EXPECT(canonical_round_trip(&s) == 0);
    fb_set_free(&s);
}

TEST(oasst_bad_deep_message_adds_nothing_from_its_line) {
    /* line 1 is good; line 2's error is in a nested reply after records were built */
    char buf[8192];
    char *bad = strdup(oa_tree);
    char *p = strstr(bad, "\"role\": \"assistant\", \"user_id\"");
    REQUIRE(p);
    memcpy(p + 9, "narrator ", 9);  /* "role": "narrator " */
    snprintf(buf, sizeof buf, "%s%s", oa_tree, bad);
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    EXPECT(import_str(&s, buf, FB_FMT_OASST, 0, &st) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "t.jsonl:2: message A6: role") != NULL);
    EXPECT(s.n == 6);
    fb_set_free(&s);
    fb_set_init(&s);
    EXPECT(import_str(&s, buf, FB_FMT_OASST, 1, &st) == RL_OK);
    EXPECT(s.n == 6 && st.bad == 1 && st.added[FB_DEMO] == 3 && st.oasst_messages == 8);
    fb_set_free(&s);
    free(bad);
}

/* ---- files ------------------------------------------------------------------------------------------- */

TEST(files_gzip_missing_truncated) {
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    EXPECT(fb_import_file(&s, tmp_path("does-not-exist.jsonl"), FB_FMT_AUTO, NULL, &st) == RL_ENOTFOUND);
    EXPECT(strstr(rl_error(), "does-not-exist.jsonl") != NULL);
    /* gzip written here, read back directly; CRLF line endings and no final newline */
    const char *text = "{\"prompt\": \"p\", \"response\": \"r1\"}\r\n{\"prompt\": \"p\", \"response\": \"r2\"}";
    gzFile g = gzopen(tmp_path("x.jsonl.gz"), "wb");
    gzputs(g, text);
    gzclose(g);
    REQUIRE(fb_import_file(&s, tmp_path("x.jsonl.gz"), FB_FMT_AUTO, NULL, &st) == RL_OK);
    EXPECT(s.n == 2 && !strcmp(s.records[1].responses[0], "r2"));
    /* a truncated gzip file is an I/O error, not silently short data */
    size_t n;
    char *raw = NULL;
    FILE *f = fopen(tmp_path("x.jsonl.gz"), "rb");
    REQUIRE(f);
    raw = malloc(4096);
    n = fread(raw, 1, 4096, f);
    fclose(f);
    f = fopen(tmp_path("trunc.jsonl.gz"), "wb");
    fwrite(raw, 1, n - 12, f);
    fclose(f);
    free(raw);
    fb_set_truncate(&s, 0);
    rl_status rc = fb_import_file(&s, tmp_path("trunc.jsonl.gz"), FB_FMT_AUTO, NULL, &st);
    EXPECT(rc == RL_EIO);
    EXPECT(strstr(rl_error(), "truncated") != NULL);
    /* a NUL byte inside a line: that line is malformed, the next still counts as line 2 */
    f = fopen(tmp_path("nul.jsonl"), "wb");
    static const char nul_text[] = "{\"prompt\": \"p\0\", \"response\": \"r\"}\n{\"prompt\": \"p\", \"response\": \"ok\"}\n";
    fwrite(nul_text, 1, sizeof nul_text - 1, f);
    fclose(f);
    fb_set_truncate(&s, 0);
    fb_import_opts o = {1};
    REQUIRE(fb_import_file(&s, tmp_path("nul.jsonl"), FB_FMT_AUTO, &o, &st) == RL_OK);
    EXPECT(st.lines == 2 && st.bad == 1 && s.n == 1);
    EXPECT(strstr(st.first_error, "nul.jsonl:1:") != NULL);
    fb_set_free(&s);
}

TEST(heldout_split_is_by_prompt) {
    fb_set s;
    fb_set_init(&s);
    char line[128];
    for (int i = 0; i < 2000; i++) {
        snprintf(line, sizeof line, "{\"prompt\": \"prompt %d\", \"chosen\": \"a\", \"rejected\": \"b\"}", i / 2);
        REQUIRE(import_str(&s, line, FB_FMT_AUTO, 0, NULL) == RL_OK);
    }
    int held = 0;
    for (int64_t i = 0; i < s.n; i += 2) {
        int h = fb_is_heldout(&s.records[i], 0.2, 7);
        EXPECT(h == fb_is_heldout(&s.records[i + 1], 0.2, 7));
        held += h;
    }
    EXPECT(held > 150 && held < 250); /* 1000 prompts, expect ~200 (binomial sd ~13) */
    EXPECT(!fb_is_heldout(&s.records[0], 0.0, 7) && fb_is_heldout(&s.records[0], 1.0, 7));
    fb_set_free(&s);
}

/* ---- real data ------------------------------------------------------------------------------------------ */

TEST(real_oasst_counts) {
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    rl_status rc = fb_import_file(&s, shared("oasst_en_100_trees.jsonl"), FB_FMT_AUTO, NULL, &st);
    REQUIRE(rc == RL_OK);
    /* SOURCES.md: 100 trees, 1,167 messages, 22 synthetic (in 5 whole
     * synthetic trees), 455 assistant messages with thumbs (334 net up,
     * 96 net down, 25 tied), 212 ranked sibling groups / 754 pairs. The 5
     * synthetic trees hold 5 of the groups and 22 of the pairs: dropping
     * them leaves 207 groups and 732 pairs. */
    EXPECT(st.lines == 100);
    EXPECT(st.oasst_messages == 1167);
    EXPECT(st.oasst_dropped_synthetic == 22 && st.oasst_dropped_deleted == 0 && st.oasst_dropped_review == 0);
    EXPECT(st.oasst_thumbs_messages == 455 && st.oasst_thumbs_tied == 25);
    EXPECT(st.added[FB_THUMBS] == 430);
    int up = 0, down = 0;
    for (int64_t i = 0; i < s.n; i++)
        if (s.records[i].kind == FB_THUMBS) { up += s.records[i].thumb > 0; down += s.records[i].thumb < 0; }
    EXPECT(up == 334 && down == 96);
    EXPECT(st.oasst_rank_groups == 207 && st.added[FB_RANKING] == 207);
    EXPECT(st.added[FB_DEMO] == 687 - 17); /* 687 assistant messages, 17 of them synthetic */
    fb_pair *p;
    int64_t n;
    REQUIRE(fb_to_pairs(&s, &p, &n) == RL_OK);
    EXPECT(n == 732);
    int ties = 0;
    for (int64_t i = 0; i < n; i++) ties += p[i].tie;
    EXPECT(ties == 0);
    free(p);
    for (int64_t i = 0; i < s.n; i++) EXPECT(s.records[i].annotator && s.records[i].annotator[0]);
    EXPECT(canonical_round_trip(&s) == 0);
    fb_set_free(&s);
}

TEST(real_hh_counts_and_byte_identical_reexport) {
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    const char *path = shared("hh_rlhf_harmless_base_test.jsonl.gz");
    REQUIRE(fb_import_file(&s, path, FB_FMT_HH, NULL, &st) == RL_OK);
    EXPECT(s.n == 2312 && st.added[FB_PAIR] == 2312 && st.bad == 0);
    EXPECT(st.hh_multi_turn_responses == 5);
    int multi_turn_prompts = 0;
    for (int64_t i = 0; i < s.n; i++) multi_turn_prompts += s.records[i].n_prompt > 1;
    EXPECT(multi_turn_prompts > 1000); /* most harmless-base dialogues have several turns */
    int64_t w, sk;
    REQUIRE(fb_export_hh(&s, tmp_path("hh_real.jsonl"), &w, &sk) == RL_OK);
    EXPECT(w == 2312 && sk == 0);
    size_t na = 0, nb = 0;
    char *a = read_all(path, &na), *b = read_all(tmp_path("hh_real.jsonl"), &nb);
    EXPECT(na == nb && a && b && !memcmp(a, b, na));
    free(a); free(b);
    EXPECT(canonical_round_trip(&s) == 0);
    fb_set_free(&s);
}

TEST(cleanup) {
    char cmd[300];
    tmp_path("x");
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    EXPECT(system(cmd) == 0);
}

TEST_MAIN()
