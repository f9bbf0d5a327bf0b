/* test_store.c — the feedback database: migrations, refusal of newer schemas,
 * tokens, round trips, injection strings stored verbatim, export, stats. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr, memmem */
#endif
#include "test.h"
#include <jansson.h>
#include <sqlite3.h>
#include <unistd.h>
#include "../../src/serve/store.h"
#include "../../src/serve/text.h"

static char dir[256];

static const char *tmp_path(const char *name) {
    static char p[512];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/rlhf_test_store_XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
    char w[600];
    snprintf(w, sizeof w, "%s-wal", p); unlink(w);
    snprintf(w, sizeof w, "%s-shm", p); unlink(w);
    return p;
}

/* Raw SQL against the file, outside the store (what a later rlhf or a curious
 * user would do). Returns the first column of the first row as an int. */
static long long sql_int(const char *path, const char *sql) {
    sqlite3 *db;
    long long v = -999;
    if (sqlite3_open(path, &db) != SQLITE_OK) return v;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}
static int sql_exec(const char *path, const char *sql) {
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int64_t add_gen(store *s, int64_t model, int64_t ann, const char *prompt, const char *resp) {
    json_t *conv = json_pack("[{s:s, s:s}]", "role", "user", "content", prompt);
    char *c = json_dumps(conv, JSON_COMPACT);
    store_generation g = {model, ann, c, resp, "{\"temperature\":1.0}", 42, 0};
    int64_t id = -1;
    if (store_generation_add(s, &g, &id) != RL_OK) id = -1;
    free(c);
    json_decref(conv);
    return id;
}

TEST(migrates_empty_db_to_current) {
    const char *p = tmp_path("a.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    EXPECT(store_version(s) == STORE_SCHEMA_VERSION);
    EXPECT(store_integrity_check(s) == RL_OK);
    store_close(s);
    EXPECT(sql_int(p, "SELECT version FROM schema_version") == STORE_SCHEMA_VERSION);
    sqlite3 *db;
    REQUIRE(sqlite3_open(p, &db) == SQLITE_OK);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    EXPECT_STREQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* Reopening an up-to-date database changes nothing. */
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    EXPECT(store_version(s) == STORE_SCHEMA_VERSION);
    store_close(s);
}

TEST(migrates_v1_with_data_to_v2) {
    const char *p = tmp_path("v1.db");
    store_opts o = {.max_version = 1};
    store *s;
    REQUIRE(store_open(&s, p, &o) == RL_OK);
    EXPECT(store_version(s) == 1);
    char tok[STORE_TOKEN_MAX];
    int64_t ann, model;
    REQUIRE(store_annotator_add(s, "old", STORE_ROLE_ANNOTATOR, NULL, 0, tok, &ann) == RL_OK);
    REQUIRE(store_model_ensure(s, "m.ckpt", "m1", &model) == RL_OK);
    int64_t g = add_gen(s, model, ann, "hi", "hello");
    REQUIRE(g > 0);
    store_close(s);
    /* Version 1 has no profile tables and no client_key column. */
    EXPECT(sql_int(p, "SELECT count(*) FROM sqlite_master WHERE name='profile_answers'") == 0);
    /* Insert a v1 judgement the raw way, as an old rlhf would have. */
    EXPECT(sql_exec(p, "INSERT INTO judgements(kind, annotator_id, thumb, created) VALUES ('thumbs', 1, 1, 0);"
                       "INSERT INTO judgement_items VALUES (1, 0, 1);") == SQLITE_OK);
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    EXPECT(store_version(s) == 2);
    int64_t n = 0;
    EXPECT(store_judgement_count(s, &n) == RL_OK && n == 1);
    store_annotator a;
    EXPECT(store_annotator_auth(s, tok, &a) == RL_OK && a.id == ann);
    EXPECT(store_question_set(s, "age_band", "Age band", "18-29|30-49|50+") == RL_OK);
    int64_t items[1] = {g}, jid;
    store_judgement j = {.kind = STORE_THUMBS, .annotator_id = ann, .items = items, .nitems = 1, .thumb = -1, .client_key = "k1"};
    EXPECT(store_judgement_add(s, &j, &jid) == RL_OK);
    EXPECT(store_integrity_check(s) == RL_OK);
    store_close(s);
    EXPECT(sql_int(p, "SELECT version FROM schema_version") == 2);
}

TEST(refuses_newer_schema_and_foreign_files) {
    const char *p = tmp_path("new.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    store_close(s);
    REQUIRE(sql_exec(p, "UPDATE schema_version SET version = 99") == SQLITE_OK);
    EXPECT(store_open(&s, p, NULL) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "newer") != NULL);
    EXPECT(strstr(rl_error(), "upgrade rlhf") != NULL);
    EXPECT(s == NULL);
    /* Untouched: still 99. */
    EXPECT(sql_int(p, "SELECT version FROM schema_version") == 99);
    /* Someone else's SQLite file. */
    const char *q = tmp_path("other.db");
    REQUIRE(sql_exec(q, "CREATE TABLE t(x)") == SQLITE_OK);
    EXPECT(store_open(&s, q, NULL) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "not an rlhf feedback database") != NULL);
    /* Not SQLite at all. */
    const char *r = tmp_path("junk.db");
    FILE *f = fopen(r, "wb");
    REQUIRE(f);
    for (int i = 0; i < 4096; i++) fputc('x', f);
    fclose(f);
    EXPECT(store_open(&s, r, NULL) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "not a SQLite database") != NULL);
}

TEST(tokens_hash_only_and_constant_time_auth) {
    const char *p = tmp_path("tok.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    char tok[STORE_TOKEN_MAX], tok2[STORE_TOKEN_MAX];
    const char *groups[] = {"red-team", "eu"};
    int64_t id, id2;
    REQUIRE(store_annotator_add(s, "alice", STORE_ROLE_OPERATOR, groups, 2, tok, &id) == RL_OK);
    REQUIRE(store_annotator_add(s, "bob", STORE_ROLE_ANNOTATOR, NULL, 0, tok2, &id2) == RL_OK);
    EXPECT(strncmp(tok, "rlhf1.", 6) == 0);
    EXPECT(strcmp(tok, tok2) != 0);
    store_annotator a;
    EXPECT(store_annotator_auth(s, tok, &a) == RL_OK && a.id == id && a.role == STORE_ROLE_OPERATOR);
    EXPECT_STREQ(a.name, "alice");
    EXPECT(store_annotator_auth(s, tok2, &a) == RL_OK && a.id == id2 && a.role == STORE_ROLE_ANNOTATOR);
    /* One changed character, a swapped id, junk, empty: all rejected. */
    char bad[STORE_TOKEN_MAX];
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 1] ^= 1;
    EXPECT(store_annotator_auth(s, bad, &a) == RL_EAUTH);
    snprintf(bad, sizeof bad, "rlhf1.%lld.%s", (long long)id2, strchr(tok + 6, '.') + 1);
    EXPECT(store_annotator_auth(s, bad, &a) == RL_EAUTH);
    EXPECT(store_annotator_auth(s, "", &a) == RL_EAUTH);
    EXPECT(store_annotator_auth(s, "rlhf1.1.' OR 1=1 --", &a) == RL_EAUTH);
    EXPECT(store_annotator_auth(s, NULL, &a) == RL_EAUTH);
    /* Duplicate name, bad group. */
    EXPECT(store_annotator_add(s, "alice", STORE_ROLE_ANNOTATOR, NULL, 0, bad, &id2) == RL_EINVAL);
    const char *badg[] = {"a,b"};
    EXPECT(store_annotator_add(s, "carol", STORE_ROLE_ANNOTATOR, badg, 1, bad, &id2) == RL_EINVAL);
    EXPECT(store_annotator_add(s, "line\nbreak", STORE_ROLE_ANNOTATOR, NULL, 0, bad, &id2) == RL_EINVAL);
    store_close(s);
    /* The secret is nowhere in the file: only its hash. */
    EXPECT(sql_int(p, "SELECT length(token_hash) FROM annotators WHERE name='alice'") == 32);
    FILE *f = fopen(p, "rb");
    REQUIRE(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *secret = strchr(tok + 6, '.') + 1;
    EXPECT(memmem(buf, n, secret, strlen(secret)) == NULL);
}

TEST(round_trips_and_injection_strings_verbatim) {
    const char *p = tmp_path("rt.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    const char *evil[] = {
        "'); DROP TABLE judgements; --",
        "\" OR \"1\"=\"1",
        "<script>alert(1)</script>",
        "Robert'); DELETE FROM annotators WHERE ('1'='1",
        "emoji \xF0\x9F\x98\x80 and \xC3\xA9 and newline\nand tab\t",
    };
    char tok[STORE_TOKEN_MAX];
    int64_t ann, model;
    REQUIRE(store_annotator_add(s, evil[0], STORE_ROLE_ANNOTATOR, NULL, 0, tok, &ann) == RL_OK);
    REQUIRE(store_model_ensure(s, "x", evil[1], &model) == RL_OK);
    int64_t gens[5];
    for (int i = 0; i < 5; i++) {
        gens[i] = add_gen(s, model, ann, evil[i], evil[(i + 1) % 5]);
        REQUIRE(gens[i] > 0);
        char *resp = NULL, *ident = NULL;
        EXPECT(store_generation_get(s, gens[i], &resp, &ident) == RL_OK);
        EXPECT_STREQ(resp, evil[(i + 1) % 5]);
        EXPECT_STREQ(ident, evil[1]);
        free(resp);
        free(ident);
    }
    for (int i = 0; i < 5; i++) {
        int64_t items[1] = {gens[i]}, jid;
        store_judgement j = {.kind = STORE_THUMBS, .annotator_id = ann, .items = items, .nitems = 1, .thumb = i % 2 ? 1 : -1, .comment = evil[i]};
        EXPECT(store_judgement_add(s, &j, &jid) == RL_OK);
    }
    int64_t pr[2] = {gens[0], gens[1]}, jid;
    store_judgement pj = {.kind = STORE_PAIR, .annotator_id = ann, .items = pr, .nitems = 2, .choice = STORE_CHOICE_B, .comment = evil[2]};
    EXPECT(store_judgement_add(s, &pj, &jid) == RL_OK);
    int order[3] = {2, 0, 1};
    int64_t rk[3] = {gens[2], gens[3], gens[4]};
    store_judgement rj = {.kind = STORE_RANKING, .annotator_id = ann, .items = rk, .nitems = 3, .order = order};
    EXPECT(store_judgement_add(s, &rj, &jid) == RL_OK);
    store_judgement rt = {.kind = STORE_RATING, .annotator_id = ann, .items = rk, .nitems = 1, .rating = 4, .rating_lo = 1, .rating_hi = 7};
    EXPECT(store_judgement_add(s, &rt, &jid) == RL_OK);
    int64_t n = 0;
    EXPECT(store_judgement_count(s, &n) == RL_OK && n == 8);
    store_close(s);
    /* Tables intact, comments verbatim. */
    EXPECT(sql_int(p, "SELECT count(*) FROM annotators") == 1);
    EXPECT(sql_int(p, "SELECT count(*) FROM judgements WHERE comment = '''); DROP TABLE judgements; --'") == 1);
    EXPECT(sql_int(p, "SELECT count(*) FROM judgements WHERE comment = '<script>alert(1)</script>'") == 2);
    EXPECT(sql_int(p, "SELECT count(*) FROM judgement_items") == 5 + 2 + 3 + 1);
    EXPECT(sql_int(p, "SELECT count(*) FROM judgements WHERE kind='ranking' AND ranking='[2,0,1]'") == 1);
}

TEST(rejects_bad_judgements_and_stores_nothing) {
    const char *p = tmp_path("bad.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    char tok[STORE_TOKEN_MAX];
    int64_t ann, model, jid;
    REQUIRE(store_annotator_add(s, "a", STORE_ROLE_ANNOTATOR, NULL, 0, tok, &ann) == RL_OK);
    REQUIRE(store_model_ensure(s, "x", "m", &model) == RL_OK);
    int64_t g1 = add_gen(s, model, ann, "p", "r1"), g2 = add_gen(s, model, ann, "p", "r2");
    int64_t missing[2] = {g1, 9999};
    store_judgement j = {.kind = STORE_PAIR, .annotator_id = ann, .items = missing, .nitems = 2, .choice = STORE_CHOICE_A};
    EXPECT(store_judgement_add(s, &j, &jid) == RL_EINVAL);   /* generation 9999: FK, rolled back */
    int64_t dup[2] = {g1, g1};
    j.items = dup;
    EXPECT(store_judgement_add(s, &j, &jid) == RL_EINVAL);
    int64_t ok2[2] = {g1, g2};
    j.items = ok2;
    j.annotator_id = 12345;
    EXPECT(store_judgement_add(s, &j, &jid) == RL_EINVAL);   /* unknown annotator */
    j.annotator_id = ann;
    j.choice = (store_choice)7;
    EXPECT(store_judgement_add(s, &j, &jid) == RL_EINVAL);
    int bad_order[2] = {0, 0};
    store_judgement r = {.kind = STORE_RANKING, .annotator_id = ann, .items = ok2, .nitems = 2, .order = bad_order};
    EXPECT(store_judgement_add(s, &r, &jid) == RL_EINVAL);
    store_judgement t = {.kind = STORE_THUMBS, .annotator_id = ann, .items = ok2, .nitems = 1, .thumb = 0};
    EXPECT(store_judgement_add(s, &t, &jid) == RL_EINVAL);
    store_judgement rt = {.kind = STORE_RATING, .annotator_id = ann, .items = ok2, .nitems = 1, .rating = 9, .rating_lo = 1, .rating_hi = 7};
    EXPECT(store_judgement_add(s, &rt, &jid) == RL_EINVAL);
    t.thumb = 1;
    t.comment = "\xff\xfe bad utf8";
    EXPECT(store_judgement_add(s, &t, &jid) == RL_EINVAL);
    int64_t n = -1;
    EXPECT(store_judgement_count(s, &n) == RL_OK && n == 0);
    store_close(s);
    EXPECT(sql_int(p, "SELECT count(*) FROM judgement_items") == 0);
}

TEST(client_key_makes_retries_idempotent) {
    const char *p = tmp_path("idem.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    char tok[STORE_TOKEN_MAX];
    int64_t ann, model, j1, j2;
    REQUIRE(store_annotator_add(s, "a", STORE_ROLE_ANNOTATOR, NULL, 0, tok, &ann) == RL_OK);
    REQUIRE(store_model_ensure(s, "x", "m", &model) == RL_OK);
    int64_t g = add_gen(s, model, ann, "p", "r");
    int64_t items[1] = {g};
    store_judgement t = {.kind = STORE_THUMBS, .annotator_id = ann, .items = items, .nitems = 1, .thumb = 1, .client_key = "abc"};
    EXPECT(store_judgement_add(s, &t, &j1) == RL_OK);
    EXPECT(store_judgement_add(s, &t, &j2) == RL_OK);
    EXPECT(j1 == j2);
    int64_t n = 0;
    EXPECT(store_judgement_count(s, &n) == RL_OK && n == 1);
    store_close(s);
}

TEST(profile_needs_consent_and_configured_questions) {
    const char *p = tmp_path("prof.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    char tok[STORE_TOKEN_MAX];
    int64_t ann;
    REQUIRE(store_annotator_add(s, "a", STORE_ROLE_ANNOTATOR, NULL, 0, tok, &ann) == RL_OK);
    REQUIRE(store_question_set(s, "age_band", "Age band", "18-29|30-49|50+") == RL_OK);
    REQUIRE(store_question_set(s, "language", "First language", NULL) == RL_OK);
    const char *k[] = {"age_band", "language"}, *v[] = {"30-49", "Deutsch"};
    EXPECT(store_profile_set(s, ann, 0, k, v, 2) == RL_EINVAL);   /* no consent, no storing */
    EXPECT(store_profile_set(s, ann, 1, k, v, 2) == RL_OK);
    const char *vbad[] = {"12", "x"};
    EXPECT(store_profile_set(s, ann, 1, k, vbad, 2) == RL_EINVAL); /* not a choice: rolled back */
    const char *kbad[] = {"shoe_size"};
    EXPECT(store_profile_set(s, ann, 1, kbad, v, 1) == RL_EINVAL);
    char *js = NULL;
    EXPECT(store_profile_json(s, ann, &js) == RL_OK);
    EXPECT(js && strstr(js, "\"age_band\":\"30-49\"") && strstr(js, "\"consent\":true"));
    free(js);
    EXPECT(store_profile_set(s, ann, 0, NULL, NULL, 0) == RL_OK);  /* withdraw consent: answers deleted */
    EXPECT(store_profile_json(s, ann, &js) == RL_OK);
    EXPECT(js && strstr(js, "\"answers\":{}") && strstr(js, "\"consent\":false"));
    free(js);
    store_close(s);
    EXPECT(sql_int(p, "SELECT count(*) FROM profile_answers") == 0);
}

TEST(export_jsonl_and_hh_and_stats) {
    const char *p = tmp_path("exp.db");
    store *s;
    REQUIRE(store_open(&s, p, NULL) == RL_OK);
    char tok[STORE_TOKEN_MAX];
    int64_t a1, a2, model;
    const char *g1[] = {"red-team"};
    REQUIRE(store_annotator_add(s, "ann1", STORE_ROLE_ANNOTATOR, g1, 1, tok, &a1) == RL_OK);
    REQUIRE(store_annotator_add(s, "ann2", STORE_ROLE_ANNOTATOR, NULL, 0, tok, &a2) == RL_OK);
    REQUIRE(store_question_set(s, "region", "Region", "EU|US|other") == RL_OK);
    const char *k[] = {"region"}, *v[] = {"EU"};
    REQUIRE(store_profile_set(s, a1, 1, k, v, 1) == RL_OK);
    REQUIRE(store_model_ensure(s, "x", "m", &model) == RL_OK);
    int64_t ga = add_gen(s, model, a1, "Q?", "answer A"), gb = add_gen(s, model, a1, "Q?", "answer B");
    int64_t ab[2] = {ga, gb}, ba[2] = {gb, ga}, jid;
    /* ann1 picks A=ga; ann2 sees them swapped and picks B=ga: they agree. */
    store_judgement j1 = {.kind = STORE_PAIR, .annotator_id = a1, .items = ab, .nitems = 2, .choice = STORE_CHOICE_A};
    store_judgement j2 = {.kind = STORE_PAIR, .annotator_id = a2, .items = ba, .nitems = 2, .choice = STORE_CHOICE_B};
    REQUIRE(store_judgement_add(s, &j1, &jid) == RL_OK);
    REQUIRE(store_judgement_add(s, &j2, &jid) == RL_OK);
    /* thumbs on ga: disagree. */
    store_judgement t1 = {.kind = STORE_THUMBS, .annotator_id = a1, .items = ab, .nitems = 1, .thumb = 1, .comment = "good"};
    store_judgement t2 = {.kind = STORE_THUMBS, .annotator_id = a2, .items = ab, .nitems = 1, .thumb = -1};
    REQUIRE(store_judgement_add(s, &t1, &jid) == RL_OK);
    REQUIRE(store_judgement_add(s, &t2, &jid) == RL_OK);
    char *stats = NULL;
    REQUIRE(store_stats_json(s, &stats) == RL_OK);
    json_error_t err;
    json_t *st = json_loads(stats, 0, &err);
    REQUIRE(st);
    EXPECT(json_integer_value(json_object_get(st, "total")) == 4);
    json_t *ap = json_object_get(json_object_get(st, "agreement"), "pair");
    EXPECT(json_integer_value(json_object_get(ap, "items")) == 1);
    EXPECT_NEAR(json_real_value(json_object_get(ap, "rate")), 1.0, 1e-12);
    json_t *at = json_object_get(json_object_get(st, "agreement"), "thumbs");
    EXPECT_NEAR(json_real_value(json_object_get(at, "rate")), 0.0, 1e-12);
    json_decref(st);
    free(stats);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int64_t written = 0, skipped = 0;
    REQUIRE(store_export(s, STORE_EXPORT_JSONL, f, &written, &skipped) == RL_OK);
    fclose(f);
    EXPECT(written == 4);
    /* First line: the pair by ann1, with its group and consented profile answer. */
    char *nl = strchr(buf, '\n');
    REQUIRE(nl);
    *nl = 0;
    json_t *l1 = json_loads(buf, 0, &err);
    REQUIRE(l1);
    EXPECT(json_integer_value(json_object_get(l1, "v")) == 1);
    EXPECT_STREQ(json_string_value(json_object_get(l1, "kind")), "pair");
    json_t *pt = json_array_get(json_object_get(l1, "prompt"), 0);
    EXPECT_STREQ(json_string_value(json_object_get(pt, "role")), "user");
    EXPECT_STREQ(json_string_value(json_object_get(pt, "text")), "Q?");
    EXPECT_STREQ(json_string_value(json_object_get(l1, "choice")), "a");
    EXPECT(json_is_null(json_object_get(l1, "comment")));
    const char *tm = json_string_value(json_object_get(l1, "time"));
    EXPECT(tm && strlen(tm) == 24 && tm[10] == 'T' && tm[19] == '.' && tm[23] == 'Z');
    char want_gens[64];
    snprintf(want_gens, sizeof want_gens, "%lld,%lld", (long long)ga, (long long)gb);
    EXPECT_STREQ(json_string_value(json_object_get(json_object_get(l1, "meta"), "generations")), want_gens);
    EXPECT_STREQ(json_string_value(json_object_get(json_object_get(l1, "meta"), "models")), "m,m");
    EXPECT_STREQ(json_string_value(json_object_get(l1, "annotator")), "ann1");
    EXPECT_STREQ(json_string_value(json_array_get(json_object_get(l1, "responses"), 0)), "answer A");
    EXPECT_STREQ(json_string_value(json_object_get(json_object_get(l1, "groups"), "group")), "red-team");
    EXPECT_STREQ(json_string_value(json_object_get(json_object_get(l1, "groups"), "region")), "EU");
    json_decref(l1);
    /* Third line: the thumbs up with its comment. */
    char *p2 = nl + 1, *e2 = strchr(p2, '\n');
    REQUIRE(e2);
    char *p3 = e2 + 1, *e3 = strchr(p3, '\n');
    REQUIRE(e3);
    *e3 = 0;
    json_t *l3 = json_loads(p3, 0, &err);
    REQUIRE(l3);
    EXPECT_STREQ(json_string_value(json_object_get(l3, "thumb")), "up");
    EXPECT_STREQ(json_string_value(json_object_get(l3, "comment")), "good");
    EXPECT(json_object_get(l3, "choice") == NULL);
    json_decref(l3);
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    REQUIRE(store_export(s, STORE_EXPORT_HH, f, &written, &skipped) == RL_OK);
    fclose(f);
    EXPECT(written == 2 && skipped == 2);
    EXPECT(strstr(buf, "\"chosen\":\"\\n\\nHuman: Q?\\n\\nAssistant: answer A\"") != NULL);
    free(buf);
    store_close(s);
}

TEST(utf8_helpers) {
    EXPECT(text_utf8_valid("h\xC3\xA9llo", 6, 0));
    EXPECT(!text_utf8_valid("\xC0\xAF", 2, 0));          /* overlong '/' */
    EXPECT(!text_utf8_valid("\xED\xA0\x80", 3, 0));      /* surrogate */
    EXPECT(!text_utf8_valid("a\nb", 3, 0));
    EXPECT(text_utf8_valid("a\nb", 3, 1));
    EXPECT(text_utf8_complete_prefix("ab\xE2\x82", 4) == 2);     /* € cut after 2 of 3 bytes */
    EXPECT(text_utf8_complete_prefix("ab\xE2\x82\xAC", 5) == 5);
    EXPECT(text_utf8_complete_prefix("ab\xFF", 3) == 3);         /* invalid: not held back */
    char *c = text_utf8_sanitize("a\xFF" "b", 3);
    EXPECT_STREQ(c, "a\xEF\xBF\xBD" "b");
    free(c);
    /* control bytes a byte-level model may emit become U+FFFD; \n \t stay */
    c = text_utf8_sanitize("a\x01\n\t\x7F" "b", 6);
    EXPECT_STREQ(c, "a\xEF\xBF\xBD\n\t\xEF\xBF\xBD" "b");
    EXPECT(text_utf8_valid(c, strlen(c), 1));
    free(c);
    char out[64];
    size_t n = 0;
    text_xml_escape(out, sizeof out, &n, "<a href=\"x\">&'</a>");
    EXPECT_STREQ(out, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
}

TEST_MAIN()
