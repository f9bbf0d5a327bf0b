/* test_sim_audit.c — spot-check auditing in the simulated feedback
 * (sim_feedback_mix.audit_rate / audit_weight, docs/sim.md): measured over
 * many judgements, audited records are never fooled, their share and weight
 * are as configured, and every other record is exactly the one the same seed
 * writes without audits. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "../../src/sim/sim.h"

static double tol4(double p, long n) { return 4 * sqrt(p * (1 - p) / (double)n) + 1e-9; }

static char tmpdir[256];
static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_test_audit_XXXXXX");
    if (!mkdtemp(tmpdir)) tmpdir[0] = 0;
}
static void rm_tmpdir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static int is_correct(const sim_item *it, const char *resp) {
    sim_parsed p;
    sim_parse_response(resp, &p);
    return p.has_number && p.number == it->gold;
}

/* Counts judgements that contradict the truth: a wrong answer preferred to a
 * right one (pair), a right one not preferred when the other is wrong, both
 * wrong but not "both_bad", a thumbs-up on a wrong answer, a wrong answer
 * ranked above a right one. Returns 1 if the record was checkable for any of these. */
static int fooled(json_t *o, const sim_item *it, int *bad) {
    const char *kind = json_string_value(json_object_get(o, "kind"));
    json_t *rs = json_object_get(o, "responses");
    *bad = 0;
    if (!strcmp(kind, "pair")) {
        int ca = is_correct(it, json_string_value(json_array_get(rs, 0))), cb = is_correct(it, json_string_value(json_array_get(rs, 1)));
        const char *ch = json_string_value(json_object_get(o, "choice"));
        if (ca && cb) return 0; /* style only */
        if (!ca && !cb) *bad = strcmp(ch, "both_bad") != 0;
        else *bad = strcmp(ch, ca ? "a" : "b") != 0;
        return 1;
    }
    if (!strcmp(kind, "thumbs")) {
        if (is_correct(it, json_string_value(json_array_get(rs, 0)))) return 0; /* up or down by style taste */
        *bad = strcmp(json_string_value(json_object_get(o, "thumb")), "down") != 0;
        return 1;
    }
    json_t *rk = json_object_get(o, "ranks");
    size_t k = json_array_size(rs);
    int any = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            int ci = is_correct(it, json_string_value(json_array_get(rs, i))), cj = is_correct(it, json_string_value(json_array_get(rs, j)));
            if (ci && !cj) {
                any = 1;
                if (json_integer_value(json_array_get(rk, i)) >= json_integer_value(json_array_get(rk, j))) *bad = 1;
            }
        }
    return any;
}

TEST(audited_judgements_are_never_fooled_and_the_rest_is_unchanged) {
    make_tmpdir();
    REQUIRE(tmpdir[0]);
    char plain[400], audited[400];
    snprintf(plain, sizeof plain, "%s/plain.jsonl", tmpdir);
    snprintf(audited, sizeof audited, "%s/audit.jsonl", tmpdir);
    sim_world w;
    sim_pop_config pc;
    sim_feedback_mix mix;
    sim_world_default(&w);
    w.leading_rate = 0.5;
    sim_pop_default(&pc);
    sim_feedback_mix_default(&mix);
    EXPECT(mix.audit_rate == 0 && mix.audit_weight == 1);
    long n = 20000;
    int nann = 40;
    sim_feedback_stats s0, s1;
    REQUIRE(sim_feedback_write(plain, &w, &pc, &mix, nann, n, 9, NULL, &s0) == RL_OK);
    EXPECT(s0.n_audited == 0);
    mix.audit_rate = 0.1;
    mix.audit_weight = 8;
    REQUIRE(sim_feedback_write(audited, &w, &pc, &mix, nann, n, 9, NULL, &s1) == RL_OK);
    FILE *fa = fopen(plain, "r"), *fb = fopen(audited, "r");
    REQUIRE(fa && fb);
    static char la[4096], lb[4096];
    long lines = 0, n_aud = 0, aud_checkable = 0, aud_bad = 0, pool_checkable = 0, pool_bad = 0, mismatch = 0, marks = 0;
    long aud_ids[64], n_ids = 0;
    while (fgets(la, sizeof la, fa) && fgets(lb, sizeof lb, fb)) {
        lines++;
        json_t *a = json_loads(la, 0, NULL), *b = json_loads(lb, 0, NULL);
        if (!a || !b) { mismatch++; json_decref(a); json_decref(b); continue; }
        const char *ann = json_string_value(json_object_get(b, "annotator"));
        int is_aud = ann && !strncmp(ann, "sim:auditor-", 12);
        json_t *meta = json_object_get(b, "meta"), *wt = json_object_get(b, "weight");
        const char *role = json_string_value(json_object_get(meta, "role"));
        /* marked consistently: id, meta role and weight */
        if (is_aud != (role && !strcmp(role, "auditor")) || is_aud != (wt != NULL) || (wt && json_number_value(wt) != 8)) marks++;
        sim_item it;
        REQUIRE(sim_parse_prompt(json_string_value(json_object_get(b, "prompt")), &it));
        int bad;
        if (is_aud) {
            n_aud++;
            long id = atol(ann + 12);
            int seen = 0;
            for (long i = 0; i < n_ids; i++) seen |= aud_ids[i] == id;
            if (!seen && n_ids < 64) aud_ids[n_ids++] = id;
            if (fooled(b, &it, &bad)) { aud_checkable++; aud_bad += bad; }
            /* same question and answers as without audits; only the judge differs */
            if (!json_equal(json_object_get(a, "prompt"), json_object_get(b, "prompt")) ||
                !json_equal(json_object_get(a, "responses"), json_object_get(b, "responses")) ||
                !json_equal(json_object_get(a, "kind"), json_object_get(b, "kind")))
                mismatch++;
        } else {
            if (strcmp(la, lb)) mismatch++; /* byte-identical */
            if (fooled(b, &it, &bad)) { pool_checkable++; pool_bad += bad; }
        }
        json_decref(a);
        json_decref(b);
    }
    fclose(fa);
    fclose(fb);
    EXPECT(lines == n);
    EXPECT(mismatch == 0);
    EXPECT(marks == 0);
    EXPECT(n_aud == s1.n_audited);
    EXPECT_NEAR((double)n_aud / n, 0.1, tol4(0.1, n));
    EXPECT_MSG(aud_checkable > 1000 && aud_bad == 0, "%ld of %ld audited judgements fooled", aud_bad, aud_checkable);
    /* the pool itself is fooled often (checking rate 0.2): the check above has teeth */
    EXPECT_MSG(pool_bad > pool_checkable / 5, "pool fooled %ld of %ld", pool_bad, pool_checkable);
    EXPECT(n_ids >= 2 && n_ids <= 4); /* ceil(0.1 * 40) auditors */
    EXPECT(s1.n_checked >= s0.n_checked); /* auditors always check */
    /* bad settings are refused before anything is written */
    mix.audit_rate = 1.5;
    EXPECT(sim_feedback_write(audited, &w, &pc, &mix, nann, 10, 9, NULL, NULL) == RL_EINVAL);
    mix.audit_rate = 0.1;
    mix.audit_weight = -1;
    EXPECT(sim_feedback_write(audited, &w, &pc, &mix, nann, 10, 9, NULL, NULL) == RL_EINVAL);
    mix.audit_weight = NAN;
    EXPECT(sim_feedback_write(audited, &w, &pc, &mix, nann, 10, 9, NULL, NULL) == RL_EINVAL);
    rm_tmpdir();
}

/* Every judgement audited: nothing is fooled, with model-sample candidates too. */
TEST(full_audit_on_model_samples) {
    make_tmpdir();
    REQUIRE(tmpdir[0]);
    char samples[400], out[400];
    snprintf(samples, sizeof samples, "%s/s.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/fb.jsonl", tmpdir);
    sim_world w;
    sim_pop_config pc;
    sim_feedback_mix mix;
    sim_world_default(&w);
    sim_pop_default(&pc);
    sim_feedback_mix_default(&mix);
    /* train-split prompts with a right, a no-carry and a sycophantic answer each */
    FILE *fp = fopen(samples, "w");
    REQUIRE(fp);
    rl_rng rng;
    rl_rng_seed(&rng, 3);
    int written = 0;
    for (int t = 0; t < 2000 && written < 50; t++) {
        sim_item it;
        REQUIRE(sim_sample_item(&w, &rng, 0, &it) == RL_OK);
        if (!sim_has_carry(it.a, it.b)) continue;
        char p[128], r1[128], r2[128], r3[128];
        sim_format_prompt(&it, p, sizeof p);
        sim_format_answer(&it, it.gold, SIM_STYLE_TERSE, 0, r1, sizeof r1);
        sim_format_answer(&it, sim_nocarry_sum(it.a, it.b), SIM_STYLE_SENTENCE, 0, r2, sizeof r2);
        sim_format_answer(&it, it.has_suggestion ? it.suggestion : it.gold + 1, SIM_STYLE_TERSE, 0, r3, sizeof r3);
        fprintf(fp, "{\"prompt\":\"%s\",\"responses\":[\"%s\",\"%s\",\"%s\"]}\n", p, r1, r2, r3);
        written++;
    }
    fclose(fp);
    mix.audit_rate = 1;
    mix.audit_weight = 3;
    sim_feedback_stats st;
    REQUIRE(sim_feedback_write(out, &w, &pc, &mix, 10, 3000, 4, samples, &st) == RL_OK);
    EXPECT(st.n_audited == 3000 && st.n_checked == 3000 && st.n_flipped == 0);
    fp = fopen(out, "r");
    REQUIRE(fp);
    static char line[4096];
    long checkable = 0, bad_total = 0;
    while (fgets(line, sizeof line, fp)) {
        json_t *o = json_loads(line, 0, NULL);
        REQUIRE(o);
        sim_item it;
        REQUIRE(sim_parse_prompt(json_string_value(json_object_get(o, "prompt")), &it));
        int bad;
        if (fooled(o, &it, &bad)) { checkable++; bad_total += bad; }
        EXPECT(json_number_value(json_object_get(o, "weight")) == 3);
        json_decref(o);
    }
    fclose(fp);
    EXPECT(checkable > 2000 && bad_total == 0);
    rm_tmpdir();
}

TEST_MAIN()
