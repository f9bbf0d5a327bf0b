/* sim_io.c — the world on disk: config.json, SFT demonstrations, prompts,
 * simulated feedback records and evaluation of response files (JSONL). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "sim.h"
#include "../base/binfile.h"
#include "../align/aggregate.h"

#define SIM_CONFIG_VERSION 1

/* ---- config.json ------------------------------------------------------------ */

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *world_json(const sim_world *w) {
    json_t *o = json_object();
    json_object_set_new(o, "seed", json_integer((json_int_t)w->seed));
    json_object_set_new(o, "a_min", json_integer(w->a_min));
    json_object_set_new(o, "a_max", json_integer(w->a_max));
    json_object_set_new(o, "b_min", json_integer(w->b_min));
    json_object_set_new(o, "b_max", json_integer(w->b_max));
    json_object_set_new(o, "heldout_frac", json_real(w->heldout_frac));
    json_object_set_new(o, "leading_rate", json_real(w->leading_rate));
    json_object_set_new(o, "wrong_suggestion_rate", json_real(w->wrong_suggestion_rate));
    json_object_set_new(o, "nocarry_suggestion_rate", json_real(w->nocarry_suggestion_rate));
    json_t *mix = json_object();
    for (int i = 0; i < SIM_NSTYLES; i++) json_object_set_new(mix, sim_style_name((sim_style)i), json_real(w->style_mix[i]));
    json_object_set_new(o, "style_mix", mix);
    json_object_set_new(o, "sft_error_rate", json_real(w->sft_error_rate));
    return o;
}

static json_t *pop_json(const sim_pop_config *c) {
    json_t *o = json_object(), *groups = json_array();
    for (int g = 0; g < c->ngroups; g++) {
        const sim_group *gr = &c->groups[g];
        json_t *go = json_object(), *order = json_array();
        for (int i = 0; i < SIM_NSTYLES; i++) json_array_append_new(order, json_string(sim_style_name((sim_style)gr->style_order[i])));
        json_object_set_new(go, "name", json_string(gr->name));
        json_object_set_new(go, "style_order", order);
        json_object_set_new(go, "strength", json_real(gr->strength));
        json_object_set_new(go, "pool_share", json_real(gr->pool_share));
        json_object_set_new(go, "pop_share", json_real(gr->pop_share));
        json_array_append_new(groups, go);
    }
    json_object_set_new(o, "groups", groups);
    json_object_set_new(o, "checking_rate", json_real(c->checking_rate));
    json_object_set_new(o, "checking_spread", json_real(c->checking_spread));
    json_t *b = json_object();
    for (int i = 0; i < SIM_NBELIEFS; i++) json_object_set_new(b, sim_belief_name((sim_belief)i), json_real(c->belief_share[i]));
    json_object_set_new(o, "beliefs", b);
    json_object_set_new(o, "noise", json_real(c->noise));
    return o;
}

/* Reads a number field; returns 0 and sets an error when missing or not a number. */
static int get_num(json_t *o, const char *key, double *out) {
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
}

static rl_status parse_world(json_t *o, sim_world *w, const char *path) {
    double v[9];
    static const char *keys[9] = {"seed", "a_min", "a_max", "b_min", "b_max", "heldout_frac", "leading_rate",
                                  "wrong_suggestion_rate", "nocarry_suggestion_rate"};
    for (int i = 0; i < 9; i++)
        if (!get_num(o, keys[i], &v[i])) return rl_fail(RL_EFORMAT, "%s: world.%s is missing or not a number", path, keys[i]);
    json_t *seed = json_object_get(o, "seed");
    w->seed = json_is_integer(seed) ? (uint64_t)json_integer_value(seed) : (uint64_t)v[0];
    w->a_min = (int)v[1]; w->a_max = (int)v[2]; w->b_min = (int)v[3]; w->b_max = (int)v[4];
    w->heldout_frac = v[5]; w->leading_rate = v[6]; w->wrong_suggestion_rate = v[7]; w->nocarry_suggestion_rate = v[8];
    json_t *mix = json_object_get(o, "style_mix");
    for (int i = 0; i < SIM_NSTYLES; i++)
        if (!get_num(mix, sim_style_name((sim_style)i), &w->style_mix[i]))
            return rl_fail(RL_EFORMAT, "%s: world.style_mix.%s is missing", path, sim_style_name((sim_style)i));
    if (!get_num(o, "sft_error_rate", &w->sft_error_rate)) return rl_fail(RL_EFORMAT, "%s: world.sft_error_rate is missing", path);
    rl_status s = sim_world_validate(w);
    if (s) return rl_fail(s, "%s: %s", path, rl_error());
    return RL_OK;
}

static rl_status parse_pop(json_t *o, sim_pop_config *c, const char *path) {
    memset(c, 0, sizeof *c);
    json_t *groups = json_object_get(o, "groups");
    if (!json_is_array(groups) || json_array_size(groups) < 1 || json_array_size(groups) > SIM_MAX_GROUPS)
        return rl_fail(RL_EFORMAT, "%s: population.groups must be an array of 1..%d groups", path, SIM_MAX_GROUPS);
    c->ngroups = (int)json_array_size(groups);
    for (int g = 0; g < c->ngroups; g++) {
        json_t *go = json_array_get(groups, (size_t)g);
        sim_group *gr = &c->groups[g];
        const char *name = json_string_value(json_object_get(go, "name"));
        json_t *order = json_object_get(go, "style_order");
        if (!name || strlen(name) >= sizeof gr->name || !json_is_array(order) || json_array_size(order) != SIM_NSTYLES ||
            !get_num(go, "strength", &gr->strength) || !get_num(go, "pool_share", &gr->pool_share) ||
            !get_num(go, "pop_share", &gr->pop_share))
            return rl_fail(RL_EFORMAT, "%s: population.groups[%d] needs name, style_order (3 styles), strength, pool_share, pop_share", path, g);
        snprintf(gr->name, sizeof gr->name, "%s", name);
        for (int i = 0; i < SIM_NSTYLES; i++) gr->style_order[i] = sim_style_from_name(json_string_value(json_array_get(order, (size_t)i)));
    }
    json_t *b = json_object_get(o, "beliefs");
    for (int i = 0; i < SIM_NBELIEFS; i++)
        if (!get_num(b, sim_belief_name((sim_belief)i), &c->belief_share[i]))
            return rl_fail(RL_EFORMAT, "%s: population.beliefs.%s is missing", path, sim_belief_name((sim_belief)i));
    if (!get_num(o, "checking_rate", &c->checking_rate) || !get_num(o, "checking_spread", &c->checking_spread) ||
        !get_num(o, "noise", &c->noise))
        return rl_fail(RL_EFORMAT, "%s: population needs checking_rate, checking_spread and noise", path);
    rl_status s = sim_pop_validate(c);
    if (s) return rl_fail(s, "%s: %s", path, rl_error());
    return RL_OK;
}

rl_status sim_world_load(const char *dir, sim_world *w, sim_pop_config *pc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) {
        FILE *f = fopen(path, "r");
        if (!f) return rl_fail(RL_ENOTFOUND, "%s not found: is %s a world made by 'rlhf sim world'?", path, dir);
        fclose(f);
        return rl_fail(RL_EFORMAT, "%s: not valid JSON (line %d: %s)", path, err.line, err.text);
    }
    rl_status s = RL_OK;
    json_t *ver = json_object_get(root, "version");
    if (strcmp(json_string_value(json_object_get(root, "format")) ? json_string_value(json_object_get(root, "format")) : "", "rlhf-sim-world"))
        s = rl_fail(RL_EFORMAT, "%s is not a sim world config (no \"format\":\"rlhf-sim-world\"); rebuild it with 'rlhf sim world'", path);
    else if (!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > SIM_CONFIG_VERSION)
        s = rl_fail(RL_EFORMAT, "%s: unsupported world version; this build reads version %d, rebuild it with 'rlhf sim world'", path, SIM_CONFIG_VERSION);
    if (!s) s = parse_world(json_object_get(root, "world"), w, path);
    if (!s) s = parse_pop(json_object_get(root, "population"), pc, path);
    json_decref(root);
    return s;
}

/* ---- writing JSONL ------------------------------------------------------------ */

/* One compact JSON line; steals `o`. */
static int put_line(FILE *fp, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!s) return -1;
    int rc = fprintf(fp, "%s\n", s) < 0 ? -1 : 0;
    free(s);
    return rc;
}

static rl_status make_dir(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return rl_fail(RL_EIO, "cannot create directory %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return rl_fail(RL_EIO, "%s exists and is not a directory", dir);
    return RL_OK;
}

static json_t *item_json(const sim_item *it, const char *prompt) {
    json_t *o = json_object();
    json_object_set_new(o, "prompt", json_string(prompt));
    json_object_set_new(o, "gold", json_integer(it->gold));
    json_object_set_new(o, "a", json_integer(it->a));
    json_object_set_new(o, "b", json_integer(it->b));
    json_object_set_new(o, "suggestion", it->has_suggestion ? json_integer(it->suggestion) : json_null());
    return o;
}

static int draw_style(rl_rng *rng, const double *mix) {
    double u = rl_rng_uniform_d(rng), acc = 0;
    for (int i = 0; i < SIM_NSTYLES; i++) { acc += mix[i]; if (u < acc) return i; }
    return SIM_NSTYLES - 1;
}

static long off_by(const sim_item *it, rl_rng *rng) {
    static const int deltas[4] = {-10, -1, 1, 10};
    long v;
    long nc = sim_nocarry_sum(it->a, it->b);
    do { v = it->gold + deltas[rl_rng_below(rng, 4)]; } while (v < 0 || v == nc);
    return v;
}

static rl_status write_items(const char *path, const sim_world *w, rl_rng *rng, int n, int heldout, int with_response) {
    rl_atomic_file af;
    RL_TRY(rl_atomic_open(&af, path));
    char prompt[128], resp[256];
    for (int i = 0; i < n; i++) {
        sim_item it;
        rl_status s = sim_sample_item(w, rng, heldout, &it);
        if (s) { rl_atomic_abort(&af); return s; }
        sim_format_prompt(&it, prompt, sizeof prompt);
        json_t *o;
        if (with_response) {
            long v = it.gold;
            int style = draw_style(rng, w->style_mix);
            if (rl_rng_uniform_d(rng) < w->sft_error_rate) {
                /* The errors a careless demonstrator makes: agreeing with a
                 * wrong suggestion, dropping the carry, else a slip of ±1/±10. */
                if (it.has_suggestion && it.suggestion != it.gold) v = it.suggestion;
                else if (sim_has_carry(it.a, it.b)) v = sim_nocarry_sum(it.a, it.b);
                else v = off_by(&it, rng);
            }
            sim_format_answer(&it, v, (sim_style)style, 0, resp, sizeof resp);
            o = json_object();
            json_object_set_new(o, "prompt", json_string(prompt));
            json_object_set_new(o, "response", json_string(resp));
        } else {
            o = item_json(&it, prompt);
        }
        if (put_line(af.fp, o)) { rl_atomic_abort(&af); return rl_fail(RL_EIO, "cannot write %s", path); }
    }
    return rl_atomic_commit(&af);
}

rl_status sim_world_write(const char *dir, const sim_world *w, const sim_pop_config *pc, int n_train, int n_heldout) {
    RL_TRY(sim_world_validate(w));
    RL_TRY(sim_pop_validate(pc));
    if (n_train < 0 || n_heldout < 0) return rl_fail(RL_EINVAL, "item counts must be >= 0");
    RL_TRY(make_dir(dir));
    char path[4096];
    rl_rng rng;
    snprintf(path, sizeof path, "%s/sft.jsonl", dir);
    rl_rng_seed_stream(&rng, w->seed, 1);
    RL_TRY(write_items(path, w, &rng, n_train, 0, 1));
    snprintf(path, sizeof path, "%s/train_prompts.jsonl", dir);
    rl_rng_seed_stream(&rng, w->seed, 2);
    RL_TRY(write_items(path, w, &rng, n_train, 0, 0));
    snprintf(path, sizeof path, "%s/heldout.jsonl", dir);
    rl_rng_seed_stream(&rng, w->seed, 3);
    RL_TRY(write_items(path, w, &rng, n_heldout, 1, 0));

    /* config.json last: a world with a config is a complete world. */
    json_t *root = json_object();
    json_object_set_new(root, "format", json_string("rlhf-sim-world"));
    json_object_set_new(root, "version", json_integer(SIM_CONFIG_VERSION));
    json_object_set_new(root, "world", world_json(w));
    json_object_set_new(root, "population", pop_json(pc));
    json_object_set_new(root, "n_train", json_integer(n_train));
    json_object_set_new(root, "n_heldout", json_integer(n_heldout));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!text) return rl_fail(RL_ENOMEM, "cannot serialise the world config");
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len = strlen(text);
    char *t2 = realloc(text, len + 2); /* room for the final newline */
    if (!t2) { free(text); return rl_fail(RL_ENOMEM, "out of memory"); }
    t2[len] = '\n'; t2[len + 1] = 0;
    rl_status s = rl_atomic_write(path, t2, len + 1);
    free(t2);
    return s;
}

/* ---- feedback ------------------------------------------------------------------ */

void sim_feedback_mix_default(sim_feedback_mix *m) {
    m->pair_frac = 0.6; m->thumbs_frac = 0.3; m->ranking_frac = 0.1;
    m->ranking_k = 4;
    m->cand_correct = 0.45; m->cand_nocarry = 0.2; m->cand_sycophantic = 0.15; m->cand_offby = 0.1; m->cand_hedged = 0.1;
    m->audit_rate = 0;
    m->audit_weight = 1;
}

/* A candidate answer made by perturbing the gold answer. */
static void candidate(const sim_item *it, const sim_feedback_mix *m, rl_rng *rng, char *out, size_t n) {
    double w[5] = {m->cand_correct, m->cand_nocarry, m->cand_sycophantic, m->cand_offby, m->cand_hedged};
    double u = rl_rng_uniform_d(rng), acc = 0;
    int kind = 4;
    for (int i = 0; i < 5; i++) { acc += w[i]; if (u < acc) { kind = i; break; } }
    long v = it->gold;
    int hedged = 0;
    int wrong_sugg = it->has_suggestion && it->suggestion != it->gold;
    switch (kind) {
    case 1: v = sim_has_carry(it->a, it->b) ? sim_nocarry_sum(it->a, it->b) : off_by(it, rng); break;
    case 2: v = wrong_sugg ? it->suggestion : sim_has_carry(it->a, it->b) ? sim_nocarry_sum(it->a, it->b) : off_by(it, rng); break;
    case 3: v = off_by(it, rng); break;
    case 4: hedged = 1; break;
    default: break;
    }
    static const double uniform[SIM_NSTYLES] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    sim_format_answer(it, v, (sim_style)draw_style(rng, uniform), hedged, out, n);
}

static json_t *record_base(const char *kind, const char *prompt) {
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(kind));
    json_object_set_new(o, "prompt", json_string(prompt));
    return o;
}

static void record_who(json_t *o, const sim_population *p, int who, int auditor, double weight) {
    char id[40];
    if (auditor) snprintf(id, sizeof id, "sim:auditor-%d", p->ann[who].id);
    else snprintf(id, sizeof id, "sim:%d", p->ann[who].id);
    json_t *g = json_object();
    json_object_set_new(g, "group", json_string(p->cfg.groups[p->ann[who].group].name));
    json_object_set_new(o, "annotator", json_string(id));
    json_object_set_new(o, "groups", g);
    json_object_set_new(o, "source", json_string("sim"));
    if (auditor) {
        json_t *meta = json_object();
        json_object_set_new(meta, "role", json_string("auditor"));
        json_object_set_new(o, "weight", json_real(weight));
        json_object_set_new(o, "meta", meta);
    }
}

/* Model samples to judge: responses grouped by prompt (train split only). */
typedef struct {
    const char *prompt;  /* points into strs */
    sim_item it;
    int n;               /* responses */
    const char **resp;   /* n pointers into strs */
} sample_set;

typedef struct {
    sample_set *sets;
    int nsets, nmulti;   /* nmulti: sets with >= 2 responses */
    int *multi;          /* indices of those sets */
    char **strs;         /* owned strings */
    const char **ptrs;   /* owned pointer storage */
    long nstrs;
} sample_bank;

static void bank_free(sample_bank *b) {
    for (long i = 0; i < b->nstrs; i++) free(b->strs[i]);
    free(b->strs); free(b->ptrs); free(b->sets); free(b->multi);
    memset(b, 0, sizeof *b);
}

typedef struct { const char *prompt, *resp; } pr_pair;

static int cmp_pr(const void *a, const void *b) {
    return strcmp(((const pr_pair *)a)->prompt, ((const pr_pair *)b)->prompt);
}

/* Reads {"prompt","responses":[...]} or {"prompt","response"|"completion"} lines. */
static rl_status bank_load(sample_bank *b, const char *path, const sim_world *w, long *n_skipped_heldout) {
    memset(b, 0, sizeof *b);
    *n_skipped_heldout = 0;
    FILE *f = fopen(path, "r");
    if (!f) return rl_fail(RL_ENOTFOUND, "cannot open samples %s: %s", path, strerror(errno));
    long cap = 0, npairs = 0, capp = 0;
    pr_pair *pairs = NULL;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    rl_status s = RL_OK;
#define KEEP(str) do { \
        if (b->nstrs == cap) { cap = cap ? 2 * cap : 1024; char **t = realloc(b->strs, (size_t)cap * sizeof *t); \
            if (!t) { s = rl_fail(RL_ENOMEM, "out of memory reading %s", path); break; } b->strs = t; } \
        b->strs[b->nstrs] = strdup(str); \
        if (!b->strs[b->nstrs]) { s = rl_fail(RL_ENOMEM, "out of memory reading %s", path); break; } \
        b->nstrs++; } while (0)
    while (!s && getline(&line, &lcap, f) >= 0) {
        lineno++;
        const char *q = line;
        while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
        if (!*q) continue;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        const char *prompt = o ? json_string_value(json_object_get(o, "prompt")) : NULL;
        json_t *rs = o ? json_object_get(o, "responses") : NULL;
        const char *one = o ? json_string_value(json_object_get(o, "response")) : NULL;
        if (!one && o) one = json_string_value(json_object_get(o, "completion"));
        sim_item it;
        if (!o || !json_is_object(o)) s = rl_fail(RL_EFORMAT, "%s:%ld: not a JSON object", path, lineno);
        else if (!prompt || (!one && !json_is_array(rs)))
            s = rl_fail(RL_EFORMAT, "%s:%ld: needs \"prompt\" and \"response\" (or a \"responses\" array)", path, lineno);
        else if (!sim_parse_prompt(prompt, &it))
            s = rl_fail(RL_EFORMAT, "%s:%ld: prompt \"%.60s\" is not a calculator question", path, lineno, prompt);
        else if (sim_is_heldout(w, it.a, it.b)) (*n_skipped_heldout)++;
        else {
            long first = b->nstrs;
            KEEP(prompt);
            size_t nr = one ? 1 : json_array_size(rs);
            for (size_t i = 0; !s && i < nr; i++) {
                const char *r = one ? one : json_string_value(json_array_get(rs, i));
                if (!r) { s = rl_fail(RL_EFORMAT, "%s:%ld: responses must be strings", path, lineno); break; }
                KEEP(r);
                if (s) break;
                if (npairs == capp) {
                    capp = capp ? 2 * capp : 1024;
                    pr_pair *t = realloc(pairs, (size_t)capp * sizeof *t);
                    if (!t) { s = rl_fail(RL_ENOMEM, "out of memory reading %s", path); break; }
                    pairs = t;
                }
                pairs[npairs].prompt = b->strs[first];
                pairs[npairs].resp = b->strs[b->nstrs - 1];
                npairs++;
            }
        }
        json_decref(o);
    }
#undef KEEP
    free(line);
    fclose(f);
    if (!s && npairs == 0) s = rl_fail(RL_EFORMAT, "%s has no responses on train-split prompts", path);
    if (!s) {
        /* Group by prompt text (the same prompt may come on many lines). */
        qsort(pairs, (size_t)npairs, sizeof *pairs, cmp_pr);
        b->ptrs = malloc((size_t)npairs * sizeof *b->ptrs);
        b->sets = malloc((size_t)npairs * sizeof *b->sets);
        b->multi = malloc((size_t)npairs * sizeof *b->multi);
        if (!b->ptrs || !b->sets || !b->multi) s = rl_fail(RL_ENOMEM, "out of memory grouping %s", path);
        for (long i = 0; !s && i < npairs;) {
            long j = i;
            while (j < npairs && !strcmp(pairs[j].prompt, pairs[i].prompt)) { b->ptrs[j] = pairs[j].resp; j++; }
            sample_set *ss = &b->sets[b->nsets];
            ss->prompt = pairs[i].prompt;
            sim_parse_prompt(ss->prompt, &ss->it);
            ss->n = (int)(j - i);
            ss->resp = &b->ptrs[i];
            if (ss->n >= 2) b->multi[b->nmulti++] = b->nsets;
            b->nsets++;
            i = j;
        }
    }
    free(pairs);
    if (s) bank_free(b);
    return s;
}

/* k distinct indices in [0,n) into idx, preferring distinct strings. */
static void pick_distinct(const sample_set *ss, int k, rl_rng *rng, int *idx) {
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int t = 0; t < 16; t++) {
            int c = (int)rl_rng_below(rng, (uint32_t)ss->n), clash = 0, same_text = 0;
            for (int q = 0; q < i; q++) { clash |= idx[q] == c; same_text |= !strcmp(ss->resp[idx[q]], ss->resp[c]); }
            if (clash) continue;
            best = c;
            if (!same_text) break;
        }
        if (best < 0) /* 16 clashes: take the first unused index */
            for (int c = 0; c < ss->n && best < 0; c++) {
                int clash = 0;
                for (int q = 0; q < i; q++) clash |= idx[q] == c;
                if (!clash) best = c;
            }
        idx[i] = best;
    }
}

rl_status sim_feedback_write(const char *out_path, const sim_world *w, const sim_pop_config *pc,
                             const sim_feedback_mix *mix, int n_annotators, long n_judgements,
                             uint64_t seed, const char *samples_path, sim_feedback_stats *stats) {
    RL_TRY(sim_world_validate(w));
    double ks = mix->pair_frac + mix->thumbs_frac + mix->ranking_frac;
    double cs = mix->cand_correct + mix->cand_nocarry + mix->cand_sycophantic + mix->cand_offby + mix->cand_hedged;
    if (fabs(ks - 1) > 1e-6 || fabs(cs - 1) > 1e-6 || mix->ranking_k < 2 || mix->ranking_k > SIM_MAX_RANK)
        return rl_fail(RL_EINVAL, "feedback mix: kinds and candidate shares must each sum to 1 and ranking_k lie in 2..%d", SIM_MAX_RANK);
    if (n_judgements < 0) return rl_fail(RL_EINVAL, "judgements must be >= 0");
    if (!(mix->audit_rate >= 0 && mix->audit_rate <= 1) || !(mix->audit_weight >= 0 && isfinite(mix->audit_weight)))
        return rl_fail(RL_EINVAL, "feedback mix: audit rate must lie in [0,1] and audit weight be finite and >= 0");
    sim_feedback_stats st;
    memset(&st, 0, sizeof st);
    sample_bank bank;
    memset(&bank, 0, sizeof bank);
    if (samples_path) RL_TRY(bank_load(&bank, samples_path, w, &st.n_skipped_heldout));
    sim_population pop;
    rl_status s = sim_population_init(&pop, pc, n_annotators, seed);
    if (s) { bank_free(&bank); return s; }
    /* Auditors: fully informed (always check, so beliefs never apply) and noiseless. */
    int auditing = mix->audit_rate > 0;
    sim_population aud;
    memset(&aud, 0, sizeof aud);
    if (auditing) {
        sim_pop_config ac = *pc;
        ac.checking_rate = 1;
        ac.checking_spread = 0;
        ac.noise = 0;
        double na = ceil(mix->audit_rate * n_annotators);
        s = sim_population_init(&aud, &ac, na < 1 ? 1 : (int)na, seed ^ 0xa0d17a0d17ULL);
        if (s) { sim_population_free(&pop); bank_free(&bank); return s; }
    }
    rl_atomic_file af;
    s = rl_atomic_open(&af, out_path);
    if (s) { sim_population_free(&pop); sim_population_free(&aud); bank_free(&bank); return s; }
    rl_rng rng, arng;
    rl_rng_seed_stream(&rng, seed, 0xfeed);
    rl_rng_seed_stream(&arng, seed, 0xa0d1); /* audit draws: a stream of their own, the others stay aligned */
    char prompt_buf[128], resp[SIM_MAX_RANK][256];
    for (long j = 0; j < n_judgements && !s; j++) {
        int who = (int)rl_rng_below(&rng, (uint32_t)pop.n);
        double u = rl_rng_uniform_d(&rng);
        int kind = u < mix->pair_frac ? 0 : u < mix->pair_frac + mix->thumbs_frac ? 1 : 2;
        int k = kind == 0 ? 2 : kind == 1 ? 1 : mix->ranking_k;
        sim_item it;
        const char *prompt, *cand[SIM_MAX_RANK];
        if (samples_path) {
            const sample_set *ss;
            if (k >= 2 && bank.nmulti == 0) { kind = 1; k = 1; } /* one response per prompt: thumbs only */
            if (k >= 2) ss = &bank.sets[bank.multi[rl_rng_below(&rng, (uint32_t)bank.nmulti)]];
            else ss = &bank.sets[rl_rng_below(&rng, (uint32_t)bank.nsets)];
            if (k > ss->n) k = ss->n;
            int idx[SIM_MAX_RANK];
            pick_distinct(ss, k, &rng, idx);
            for (int i = 0; i < k; i++) cand[i] = ss->resp[idx[i]];
            it = ss->it;
            prompt = ss->prompt;
        } else {
            s = sim_sample_item(w, &rng, 0, &it);
            if (s) break;
            sim_format_prompt(&it, prompt_buf, sizeof prompt_buf);
            prompt = prompt_buf;
            for (int i = 0; i < k; i++) {
                for (int t = 0; t < 16; t++) { /* different answers where possible */
                    candidate(&it, mix, &rng, resp[i], sizeof resp[i]);
                    int dup = 0;
                    for (int q = 0; q < i; q++) dup |= !strcmp(resp[q], resp[i]);
                    if (!dup) break;
                }
                cand[i] = resp[i];
            }
        }
        /* The judge: the drawn annotator, or (audit_rate of the time) an auditor. */
        const sim_population *jp = &pop;
        int audited = auditing && rl_rng_uniform_d(&arng) < mix->audit_rate;
        if (audited) { jp = &aud; who = (int)rl_rng_below(&arng, (uint32_t)aud.n); }
        sim_judge_info info;
        json_t *o;
        if (kind == 0) {
            sim_choice c = sim_judge_pair(jp, who, &it, cand[0], cand[1], &rng, &info);
            o = record_base("pair", prompt);
            json_t *rs = json_array();
            json_array_append_new(rs, json_string(cand[0]));
            json_array_append_new(rs, json_string(cand[1]));
            json_object_set_new(o, "responses", rs);
            /* canonical feedback records (docs/formats-feedback.md): choice a|b|tie|both_bad */
            static const char *const canon[] = {"a", "b", "tie", "both_bad"};
            json_object_set_new(o, "choice", json_string(canon[c]));
            st.n_pair++;
        } else if (kind == 1) {
            int label = sim_judge_thumbs(jp, who, &it, cand[0], &rng, &info);
            o = record_base("thumbs", prompt);
            json_t *rs = json_array();
            json_array_append_new(rs, json_string(cand[0]));
            json_object_set_new(o, "responses", rs);
            json_object_set_new(o, "thumb", json_string(label > 0 ? "up" : "down"));
            st.n_thumbs++;
        } else {
            int order[SIM_MAX_RANK];
            sim_judge_ranking(jp, who, &it, cand, k, &rng, order, &info);
            o = record_base("ranking", prompt);
            /* canonical "ranks": ranks[i] is the rank of responses[i] (0 = best) */
            int ranks[SIM_MAX_RANK];
            for (int i = 0; i < k; i++) ranks[order[i]] = i;
            json_t *rs = json_array(), *rk = json_array();
            for (int i = 0; i < k; i++) {
                json_array_append_new(rs, json_string(cand[i]));
                json_array_append_new(rk, json_integer(ranks[i]));
            }
            json_object_set_new(o, "responses", rs);
            json_object_set_new(o, "ranks", rk);
            st.n_ranking++;
        }
        record_who(o, jp, who, audited, mix->audit_weight);
        st.n_checked += info.checked;
        st.n_flipped += info.flipped;
        st.n_audited += audited;
        st.n_group[jp->ann[who].group]++;
        if (put_line(af.fp, o)) s = rl_fail(RL_EIO, "cannot write %s", out_path);
    }
    sim_population_free(&pop);
    sim_population_free(&aud);
    bank_free(&bank);
    if (s) { rl_atomic_abort(&af); return s; }
    RL_TRY(rl_atomic_commit(&af));
    if (stats) *stats = st;
    return RL_OK;
}

/* ---- evaluation ------------------------------------------------------------------ */

/* Grades every line of a responses file into t; with sat/prompts (may be
 * NULL) also keeps each line's satisfaction per group (n, ngroups) and prompt. */
static rl_status grade_file(const char *path, const sim_world *w, const sim_pop_config *pc, sim_eval_totals *t,
                            float **sat, char ***prompts, long *nlines) {
    FILE *f = fopen(path, "r");
    if (!f) return rl_fail(RL_ENOTFOUND, "cannot open %s: %s", path, strerror(errno));
    memset(t, 0, sizeof *t);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, n = 0, ncap = 0;
    int G = pc->ngroups;
    rl_status s = RL_OK;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        const char *q = line;
        while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
        if (!*q) continue;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            s = rl_fail(RL_EFORMAT, "%s:%ld: not a JSON object (%s); expected {\"prompt\":...,\"response\":...}", path, lineno, o ? "wrong type" : err.text);
            break;
        }
        const char *prompt = json_string_value(json_object_get(o, "prompt"));
        const char *resp = json_string_value(json_object_get(o, "response"));
        if (!resp) resp = json_string_value(json_object_get(o, "completion"));
        sim_item it;
        if (!prompt || !resp) s = rl_fail(RL_EFORMAT, "%s:%ld: needs string fields \"prompt\" and \"response\"", path, lineno);
        else if (!sim_parse_prompt(prompt, &it)) s = rl_fail(RL_EFORMAT, "%s:%ld: prompt \"%.60s\" is not a calculator question (\"what is A+B?\")", path, lineno, prompt);
        if (!s) {
            sim_grade g;
            sim_grade_response(pc, &it, resp, &g);
            sim_eval_add(t, w, &it, &g);
            if (sat) {
                if (n == ncap) {
                    ncap = ncap ? 2 * ncap : 1024;
                    float *ns = realloc(*sat, sizeof(float) * (size_t)ncap * G);
                    char **np = realloc(*prompts, sizeof(char *) * (size_t)ncap);
                    if (ns) *sat = ns;
                    if (np) *prompts = np;
                    if (!ns || !np) s = rl_fail(RL_ENOMEM, "out of memory reading %s", path);
                }
                if (!s) {
                    for (int k = 0; k < G; k++) (*sat)[(size_t)n * G + k] = (float)g.satisfaction[k];
                    (*prompts)[n] = strdup(prompt);
                    if (!(*prompts)[n]) s = rl_fail(RL_ENOMEM, "out of memory reading %s", path);
                    else n++;
                }
            }
        }
        json_decref(o);
        if (s) break;
    }
    free(line);
    fclose(f);
    if (nlines) *nlines = n;
    if (!s && t->n == 0) s = rl_fail(RL_EFORMAT, "%s has no responses", path);
    return s;
}

rl_status sim_eval_file(const char *path, const sim_world *w, const sim_pop_config *pc, sim_eval_summary *out) {
    sim_eval_totals t;
    RL_TRY(grade_file(path, w, pc, &t, NULL, NULL, NULL));
    sim_eval_summarize(&t, pc, out);
    return RL_OK;
}

static void free_lines(char **p, long n) {
    for (long i = 0; p && i < n; i++) free(p[i]);
    free(p);
}

rl_status sim_eval_against(const char *path, const char *ref_path, const sim_world *w, const sim_pop_config *pc,
                           sim_eval_summary *out, sim_ref_outcome *ro) {
    sim_eval_totals t, tr;
    float *sat = NULL, *sat_ref = NULL;
    char **pr = NULL, **prr = NULL;
    long n = 0, nr = 0;
    rl_status s = grade_file(path, w, pc, &t, &sat, &pr, &n);
    if (!s) s = grade_file(ref_path, w, pc, &tr, &sat_ref, &prr, &nr);
    if (!s && n != nr)
        s = rl_fail(RL_EINVAL, "%s has %ld responses and the reference %s %ld; the reference must answer the same prompts in the same order",
                    path, n, ref_path, nr);
    for (long i = 0; !s && i < n; i++)
        if (strcmp(pr[i], prr[i]))
            s = rl_fail(RL_EINVAL, "response %ld answers \"%.60s\" but the reference's answers \"%.60s\"; "
                        "the reference must answer the same prompts in the same order", i + 1, pr[i], prr[i]);
    if (!s) {
        memset(ro, 0, sizeof *ro);
        ro->n = n;
        ro->ngroups = pc->ngroups;
        double mean[SIM_MAX_GROUPS], win[SIM_MAX_GROUPS];
        align_outcome_summary sum;
        s = align_group_outcomes((int)n, pc->ngroups, sat, sat_ref, mean, win, &sum);
        if (!s) {
            /* the reference's means from its double totals (sat holds floats) */
            sim_eval_summary sr;
            sim_eval_summarize(&tr, pc, &sr);
            for (int g = 0; g < pc->ngroups; g++) { ro->satisfaction_ref[g] = sr.satisfaction[g]; ro->win[g] = win[g]; }
            sim_eval_summarize(&t, pc, out);
            double hi = -INFINITY, lo = INFINITY; /* from the double totals, as the satisfaction reported */
            for (int g = 0; g < pc->ngroups; g++) { hi = fmax(hi, out->satisfaction[g]); lo = fmin(lo, out->satisfaction[g]); }
            ro->gap_satisfaction = hi - lo;
            ro->gap_win = sum.gap_win;
            ro->worst_win = sum.worst_win;
        }
    }
    free(sat); free(sat_ref);
    free_lines(pr, n); free_lines(prr, nr);
    return s;
}

char *sim_eval_summary_json(const sim_eval_summary *s, const sim_pop_config *pc) { return sim_eval_json(s, pc, NULL); }

char *sim_eval_json(const sim_eval_summary *s, const sim_pop_config *pc, const sim_ref_outcome *ro) {
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer(s->n));
    json_object_set_new(o, "accuracy", num_or_null(s->accuracy));
    json_object_set_new(o, "heldout_accuracy", num_or_null(s->heldout_accuracy));
    json_object_set_new(o, "n_heldout", json_integer(s->n_heldout));
    json_object_set_new(o, "parse_rate", num_or_null(s->parse_rate));
    json_object_set_new(o, "sycophancy", num_or_null(s->sycophancy));
    json_object_set_new(o, "n_wrong_suggestion", json_integer(s->n_wrong_suggestion));
    json_t *st = json_object();
    for (int i = 0; i < SIM_NSTYLES; i++) json_object_set_new(st, sim_style_name((sim_style)i), num_or_null(s->style_share[i]));
    json_object_set_new(o, "style_share", st);
    json_t *sat = json_object();
    for (int g = 0; g < s->ngroups; g++) json_object_set_new(sat, pc->groups[g].name, num_or_null(s->satisfaction[g]));
    json_object_set_new(o, "satisfaction", sat);
    json_object_set_new(o, "pop_satisfaction", num_or_null(s->pop_satisfaction));
    json_object_set_new(o, "pool_satisfaction", num_or_null(s->pool_satisfaction));
    json_object_set_new(o, "min_satisfaction", num_or_null(s->min_satisfaction));
    json_object_set_new(o, "mean_length", num_or_null(s->mean_length));
    if (ro) {
        json_t *v = json_object(), *sr = json_object(), *wr = json_object();
        for (int g = 0; g < ro->ngroups; g++) {
            json_object_set_new(sr, pc->groups[g].name, num_or_null(ro->satisfaction_ref[g]));
            json_object_set_new(wr, pc->groups[g].name, num_or_null(ro->win[g]));
        }
        json_object_set_new(v, "satisfaction_ref", sr);
        json_object_set_new(v, "win_rate", wr);
        json_object_set_new(v, "gap_satisfaction", num_or_null(ro->gap_satisfaction));
        json_object_set_new(v, "gap_win", num_or_null(ro->gap_win));
        json_object_set_new(v, "worst_win", ro->worst_win >= 0 ? json_string(pc->groups[ro->worst_win].name) : json_null());
        json_object_set_new(o, "vs_reference", v);
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return text;
}
