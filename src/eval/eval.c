/* eval.c — see eval.h. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eval.h"
#include "../base/binfile.h"
#include "../base/log.h"
#include "../data/chat.h"
#include "../model/checkpoint.h"
#include "../model/sampler.h"
#include "../tok/tok.h"
#include "../serve/text.h"
#include "../train/reward.h"

/* ---- files ------------------------------------------------------------------ */

void eval_answers_free(eval_answers *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) { free(a->prompt[i]); free(a->response[i]); }
    free(a->prompt);
    free(a->response);
    memset(a, 0, sizeof *a);
}

static rl_status answers_push(eval_answers *a, int *cap, const char *p, const char *r) {
    if (a->n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        char **np = realloc(a->prompt, sizeof(char *) * (size_t)nc);
        if (np) a->prompt = np;
        char **nr = realloc(a->response, sizeof(char *) * (size_t)nc);
        if (nr) a->response = nr;
        if (!np || !nr) return rl_fail(RL_ENOMEM, "out of memory");
        *cap = nc;
    }
    a->prompt[a->n] = strdup(p);
    a->response[a->n] = strdup(r);
    if (!a->prompt[a->n] || !a->response[a->n]) { free(a->prompt[a->n]); free(a->response[a->n]); return rl_fail(RL_ENOMEM, "out of memory"); }
    a->n++;
    return RL_OK;
}

static int blank(const char *s) { return !s[strspn(s, " \t\r\n")]; }

rl_status eval_answers_load(const char *path, eval_answers *a) {
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "r");
    if (!f) return rl_fail(RL_ENOTFOUND, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    int cap = 0;
    rl_status st = RL_OK;
    while (!st && getline(&line, &lcap, f) >= 0) {
        lineno++;
        if (blank(line)) continue;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        const char *p = o ? json_string_value(json_object_get(o, "prompt")) : NULL;
        const char *r = o ? json_string_value(json_object_get(o, "response")) : NULL;
        if (o && !r) r = json_string_value(json_object_get(o, "completion"));
        if (!o || !json_is_object(o)) st = rl_fail(RL_EFORMAT, "%s:%ld: not a JSON object; expected {\"prompt\":...,\"response\":...}", path, lineno);
        else if (!p || !r) st = rl_fail(RL_EFORMAT, "%s:%ld: needs string fields \"prompt\" and \"response\"", path, lineno);
        else st = answers_push(a, &cap, p, r);
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (!st && a->n == 0) st = rl_fail(RL_EFORMAT, "%s has no answers", path);
    if (st) eval_answers_free(a);
    return st;
}

rl_status eval_answers_write(const char *path, const eval_answers *a) {
    rl_atomic_file af;
    RL_TRY(rl_atomic_open(&af, path));
    for (int i = 0; i < a->n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "prompt", json_string(a->prompt[i]));
        json_object_set_new(o, "response", json_string(a->response[i]));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s) { rl_atomic_abort(&af); return rl_fail(RL_ENOMEM, "out of memory (an answer that is not UTF-8?)"); }
        fprintf(af.fp, "%s\n", s);
        free(s);
    }
    return rl_atomic_commit(&af);
}

rl_status eval_prompts_load(const char *path, int max, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return rl_fail(RL_ENOTFOUND, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    int cap = 0;
    rl_status st = RL_OK;
    while (!st && (max <= 0 || *n < max) && getline(&line, &lcap, f) >= 0) {
        lineno++;
        if (blank(line)) continue;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *p = NULL;
        if (line[strspn(line, " \t")] == '{') {
            json_error_t err;
            json_t *o = json_loads(line, 0, &err);
            const char *s = o ? json_string_value(json_object_get(o, "prompt")) : NULL;
            if (!s) st = rl_fail(RL_EFORMAT, "%s:%ld: a JSON line needs a \"prompt\" string", path, lineno);
            else p = strdup(s);
            json_decref(o);
        } else {
            p = strdup(line);
        }
        if (st) break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(*out, sizeof(char *) * (size_t)cap);
            if (!nv) { free(p); st = rl_fail(RL_ENOMEM, "out of memory"); break; }
            *out = nv;
        }
        if (!p) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        (*out)[(*n)++] = p;
    }
    free(line);
    fclose(f);
    if (!st && *n == 0) st = rl_fail(RL_EFORMAT, "%s has no prompts", path);
    if (st) {
        for (int i = 0; i < *n; i++) free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

/* ---- answering -------------------------------------------------------------- */

/* Prompt tokens: the user turn with the generation prompt. */
static rl_status prompt_ids(const tok_tokenizer *t, const char *prompt, int **ids, int *n) {
    chat_turn turn = {CHAT_ROLE_USER, prompt};
    size_t tl;
    char *text = chat_render_alloc(&turn, 1, 1, &tl);
    if (!text) return rl_fail(RL_ENOMEM, "out of memory");
    rl_status st = tok_encode(t, text, tl, 1, ids, n);
    free(text);
    return st;
}

/* Generated ids as text, special tokens left out. */
static char *ids_text(const tok_tokenizer *t, const int *ids, int n) {
    int *keep = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)), k = 0;
    if (!keep) return NULL;
    for (int i = 0; i < n; i++) if (!tok_is_special(t, ids[i])) keep[k++] = ids[i];
    char *raw = NULL, *out = NULL;
    size_t len;
    /* a byte-level token can split a character: repair to valid UTF-8 so the
     * answers can be saved as JSON and re-read byte for byte */
    if (tok_decode(t, keep, k, &raw, &len) == RL_OK) out = text_utf8_sanitize(raw, len);
    free(raw);
    free(keep);
    return out;
}

rl_status eval_generate(const eval_gen_opts *o, char *const *prompts, int n, eval_answers *out) {
    memset(out, 0, sizeof *out);
    if (o->k < 1 || o->batch < 1 || o->max_new < 1) return rl_fail(RL_EINVAL, "eval: k, batch and max_new must be >= 1");
    tok_tokenizer *t = NULL;
    RL_TRY(tok_load(&t, o->tokenizer));
    gpt_model m;
    memset(&m, 0, sizeof m);
    ckpt_info info;
    rl_status st = ckpt_load(o->model, &m, 1, 1, NULL, NULL, 0, 0, 0, 0, 0, &info);
    if (st) { tok_free(t); return st; }
    char tid[65];
    tok_identity(t, tid);
    int rows_max = o->batch * o->k, cap = 0;
    int **ids = calloc((size_t)rows_max, sizeof(int *)), *plen = calloc((size_t)rows_max, sizeof(int));
    sampler_result res;
    memset(&res, 0, sizeof res);
    if (info.tok_id[0] && strcmp(info.tok_id, tid)) st = rl_fail(RL_EINVAL, "%s was trained with another tokenizer than %s", o->model, o->tokenizer);
    else if (tok_vocab_size(t) != m.cfg.V) st = rl_fail(RL_EINVAL, "%s has %d ids, the model %s %d", o->tokenizer, tok_vocab_size(t), o->model, m.cfg.V);
    else if (!ids || !plen) st = rl_fail(RL_ENOMEM, "out of memory");
    sampler_opts so;
    sampler_opts_default(&so);
    so.max_tokens = o->max_new;
    so.temperature = o->temperature;
    so.stop_tokens[0] = tok_special(t, CHAT_END);
    for (int start = 0; !st && start < n; start += o->batch) {
        int nb = n - start < o->batch ? n - start : o->batch;
        for (int b = 0; !st && b < nb; b++) {
            int *p = NULL, np = 0;
            if ((st = prompt_ids(t, prompts[start + b], &p, &np))) break;
            for (int j = 0; j < o->k; j++) { ids[b * o->k + j] = p; plen[b * o->k + j] = np; }
            if (np + o->max_new > m.cfg.maxT)
                st = rl_fail(RL_EINVAL, "prompt %d is %d tokens; with %d new tokens it exceeds the model's context %d (lower --max-new)",
                             start + b + 1, np, o->max_new, m.cfg.maxT);
        }
        /* a batch's rows draw from streams of their own seed, so batches differ */
        so.seed = o->seed + (uint64_t)start * 7919u;
        if (!st) st = sampler_generate(&m, (const int *const *)ids, plen, nb * o->k, &so, &res, NULL, NULL);
        for (int r = 0; !st && r < nb * o->k; r++) {
            char *txt = ids_text(t, res.tokens + (size_t)r * res.cap, res.len[r]);
            st = answers_push(out, &cap, prompts[start + r / o->k], txt ? txt : "");
            free(txt);
        }
        for (int b = 0; b < nb; b++) { free(ids[b * o->k]); for (int j = 0; j < o->k; j++) ids[b * o->k + j] = NULL; }
        sampler_result_free(&res);
        memset(&res, 0, sizeof res);
    }
    free(ids);
    free(plen);
    gpt_free(&m);
    tok_free(t);
    if (st) eval_answers_free(out);
    return st;
}

/* ---- scoring ---------------------------------------------------------------- */

void eval_result_free(eval_result *r) {
    if (!r) return;
    for (int g = 0; r->names && g < r->G; g++) free(r->names[g]);
    free(r->names); free(r->r); free(r->r_ref); free(r->mean); free(r->mean_ref); free(r->win); free(r->disagreement);
    memset(r, 0, sizeof *r);
}

/* Group names: the given list, else each sub-spec of groups: (rm:PATH -> the
 * file name without its extension), else the spec. */
static rl_status group_names(const eval_opts *o, int G, char **names) {
    if (o->group_names && o->group_names[0]) {
        const char *s = o->group_names;
        for (int g = 0; g < G; g++) {
            const char *e = strchr(s, ',');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (n == 0 || (g < G - 1 && !e) || (g == G - 1 && e))
                return rl_fail(RL_EINVAL, "eval: --group-names needs %d non-empty names, comma-separated", G);
            names[g] = strndup(s, n);
            s = e ? e + 1 : s + n;
        }
        return RL_OK;
    }
    const char *spec = o->reward_spec;
    int grouped = !strncmp(spec, "groups:", 7);
    const char *s = grouped ? spec + 7 : spec;
    for (int g = 0; g < G; g++) {
        const char *e = grouped ? strchr(s, ';') : NULL;
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *part = strndup(s, n);
        if (!part) return rl_fail(RL_ENOMEM, "out of memory");
        if (!strncmp(part, "rm:", 3)) {
            const char *b = strrchr(part + 3, '/');
            b = b ? b + 1 : part + 3;
            char *nm = strdup(b), *dot = strrchr(nm, '.');
            if (dot && dot != nm) *dot = 0;
            free(part);
            part = nm;
        }
        names[g] = part;
        s = e ? e + 1 : s + n;
    }
    return RL_OK;
}

/* Scores n answers into out (n, G). */
static rl_status score_set(reward_fn *rw, const tok_tokenizer *t, int end_id, const eval_answers *a, int max_n, int G, float *out) {
    reward_item *items = calloc((size_t)max_n, sizeof *items);
    float *score = malloc(sizeof(float) * (size_t)max_n);
    int **pid = calloc((size_t)max_n, sizeof(int *)), **rid = calloc((size_t)max_n, sizeof(int *));
    rl_status st = (!items || !score || !pid || !rid) ? rl_fail(RL_ENOMEM, "out of memory") : RL_OK;
    for (int s = 0; !st && s < a->n; s += max_n) {
        int B = a->n - s < max_n ? a->n - s : max_n;
        for (int b = 0; !st && b < B; b++) {
            int np = 0, nr = 0;
            if ((st = prompt_ids(t, a->prompt[s + b], &pid[b], &np))) break;
            if ((st = tok_encode(t, a->response[s + b], strlen(a->response[s + b]), 0, &rid[b], &nr))) break;
            int *r2 = realloc(rid[b], sizeof(int) * (size_t)(nr + 1));
            if (!r2) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
            rid[b] = r2;
            rid[b][nr++] = end_id;
            items[b] = (reward_item){pid[b], np, rid[b], nr};
        }
        if (!st) st = reward_score(rw, items, B, score, out + (size_t)s * G);
        for (int b = 0; b < B; b++) { free(pid[b]); free(rid[b]); pid[b] = rid[b] = NULL; }
    }
    free(items); free(score); free(pid); free(rid);
    return st;
}

/* Longest prompt+response in tokens over a set. */
static rl_status longest(const tok_tokenizer *t, const eval_answers *a, int *maxT) {
    for (int i = 0; i < a->n; i++) {
        int *p = NULL, np = 0, *r = NULL, nr = 0;
        RL_TRY(prompt_ids(t, a->prompt[i], &p, &np));
        rl_status st = tok_encode(t, a->response[i], strlen(a->response[i]), 0, &r, &nr);
        free(p);
        free(r);
        RL_TRY(st);
        if (np + nr + 1 > *maxT) *maxT = np + nr + 1;
    }
    return RL_OK;
}

rl_status eval_compare(const eval_opts *o, const eval_answers *pol, const eval_answers *ref, eval_result *out) {
    memset(out, 0, sizeof *out);
    if (pol->n != ref->n)
        return rl_fail(RL_EINVAL, "eval: the policy has %d answers and the reference %d; they must answer the same prompts in the same order",
                       pol->n, ref->n);
    for (int i = 0; i < pol->n; i++)
        if (strcmp(pol->prompt[i], ref->prompt[i]))
            return rl_fail(RL_EINVAL, "eval: answer %d is to \"%.60s\" for the policy but \"%.60s\" for the reference; "
                           "they must answer the same prompts in the same order", i + 1, pol->prompt[i], ref->prompt[i]);
    if (!(o->alpha >= 0)) return rl_fail(RL_EINVAL, "eval: alpha must be >= 0");
    tok_tokenizer *t = NULL;
    RL_TRY(tok_load(&t, o->tokenizer));
    int end_id = tok_special(t, CHAT_END);
    rl_status st = RL_OK;
    reward_fn *rw = NULL;
    int maxT = 2, N = pol->n, max_n = N < 64 ? N : 64;
    if (end_id < 0) st = rl_fail(RL_EINVAL, "eval: %s has no %s token (not a chat tokenizer)", o->tokenizer, CHAT_END);
    if (!st) st = longest(t, pol, &maxT);
    if (!st) st = longest(t, ref, &maxT);
    if (!st) st = reward_open(&rw, o->reward_spec, t, max_n, maxT, NULL);
    int G = st ? 0 : reward_num_groups(rw);
    if (!st && o->group_weights && o->n_group_weights != G)
        st = rl_fail(RL_EINVAL, "eval: %d group weights for %d groups", o->n_group_weights, G);
    out->N = N;
    out->G = G;
    out->alpha = o->alpha;
    if (!st) {
        snprintf(out->describe, sizeof out->describe, "%s", reward_describe(rw));
        out->names = calloc((size_t)G, sizeof(char *));
        out->r = malloc(sizeof(float) * (size_t)N * G);
        out->r_ref = malloc(sizeof(float) * (size_t)N * G);
        out->mean = malloc(sizeof(double) * G);
        out->mean_ref = malloc(sizeof(double) * G);
        out->win = malloc(sizeof(double) * G);
        out->disagreement = malloc(sizeof(double) * G);
        if (!out->names || !out->r || !out->r_ref || !out->mean || !out->mean_ref || !out->win || !out->disagreement)
            st = rl_fail(RL_ENOMEM, "out of memory");
    }
    if (!st) st = group_names(o, G, out->names);
    if (!st) st = score_set(rw, t, end_id, pol, max_n, G, out->r);
    if (!st) st = score_set(rw, t, end_id, ref, max_n, G, out->r_ref);
    if (!st) st = align_group_outcomes(N, G, out->r, out->r_ref, out->mean, out->win, &out->sum);
    if (!st) st = align_group_outcomes(N, G, out->r_ref, NULL, out->mean_ref, NULL, NULL);
    /* the rules, with the disagreement point below every answer (eval.h) */
    float *agg = NULL, *agg_ref = NULL;
    if (!st) {
        for (int g = 0; g < G; g++) {
            double lo = INFINITY, hi = -INFINITY;
            for (int i = 0; i < N; i++) {
                double a = out->r[(size_t)i * G + g], b = out->r_ref[(size_t)i * G + g];
                lo = fmin(lo, fmin(a, b));
                hi = fmax(hi, fmax(a, b));
            }
            out->disagreement[g] = lo - (hi > lo ? hi - lo : 1.0);
        }
        agg = malloc(sizeof(float) * (size_t)N);
        agg_ref = malloc(sizeof(float) * (size_t)N);
        if (!agg || !agg_ref) st = rl_fail(RL_ENOMEM, "out of memory");
    }
    static const align_rule rules[EVAL_NRULES] = {ALIGN_AGG_MEAN, ALIGN_AGG_NASH, ALIGN_AGG_ISOELASTIC, ALIGN_AGG_MIN};
    align_agg_params p = {o->group_weights, out->disagreement, o->alpha, 0};
    for (int k = 0; !st && k < EVAL_NRULES; k++) {
        out->rule[k] = rules[k];
        if ((st = align_aggregate(rules[k], &p, N, G, out->r, agg, NULL, NULL))) break;
        if ((st = align_aggregate(rules[k], &p, N, G, out->r_ref, agg_ref, NULL, NULL))) break;
        double sp = 0, sr = 0, w = 0;
        for (int i = 0; i < N; i++) {
            sp += agg[i];
            sr += agg_ref[i];
            w += agg[i] > agg_ref[i] ? 1.0 : agg[i] == agg_ref[i] ? 0.5 : 0.0;
        }
        out->rule_policy[k] = sp / N;
        out->rule_ref[k] = sr / N;
        out->rule_win[k] = w / N;
    }
    free(agg);
    free(agg_ref);
    reward_close(rw);
    tok_free(t);
    if (st) eval_result_free(out);
    return st;
}

/* ---- reports ---------------------------------------------------------------- */

static const char *rule_label(const eval_result *r, int k, char *buf, size_t n) {
    if (r->rule[k] == ALIGN_AGG_ISOELASTIC) snprintf(buf, n, "isoelastic(%g)", r->alpha);
    else snprintf(buf, n, "%s", align_rule_name(r->rule[k]));
    return buf;
}

void eval_print(FILE *f, const eval_result *r) {
    fprintf(f, "%d answers; reward: %s\n", r->N, r->describe);
    fprintf(f, "%-20s %10s %10s %9s\n", "group", "policy", "reference", "win rate");
    for (int g = 0; g < r->G; g++)
        fprintf(f, "%-20.20s %10.4f %10.4f %8.1f%%\n", r->names[g], r->mean[g], r->mean_ref[g], 100 * r->win[g]);
    fprintf(f, "gap best - worst: mean reward %.4f (best %s, worst %s), win rate %.1f points (worst %s)\n", r->sum.gap_mean,
            r->names[r->sum.best], r->names[r->sum.worst], 100 * r->sum.gap_win,
            r->sum.worst_win >= 0 ? r->names[r->sum.worst_win] : "-");
    if (r->G < 2) return;
    fprintf(f, "%-20s %10s %10s %9s\n", "aggregate", "policy", "reference", "win rate");
    for (int k = 0; k < EVAL_NRULES; k++) {
        char b[48];
        fprintf(f, "%-20s %10.4f %10.4f %8.1f%%\n", rule_label(r, k, b, sizeof b), r->rule_policy[k], r->rule_ref[k], 100 * r->rule_win[k]);
    }
    fprintf(f, "(aggregates shift each group by its disagreement point d_g = lowest reward - range:");
    for (int g = 0; g < r->G; g++) fprintf(f, " %.4g", r->disagreement[g]);
    fprintf(f, ")\n");
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

char *eval_result_json(const eval_result *r) {
    json_t *o = json_object(), *gs = json_array(), *rs = json_array(), *d = json_array();
    json_object_set_new(o, "n", json_integer(r->N));
    json_object_set_new(o, "reward", json_string(r->describe));
    for (int g = 0; g < r->G; g++) {
        json_t *x = json_object();
        json_object_set_new(x, "name", json_string(r->names[g]));
        json_object_set_new(x, "mean", num(r->mean[g]));
        json_object_set_new(x, "mean_ref", num(r->mean_ref[g]));
        json_object_set_new(x, "win", num(r->win[g]));
        json_array_append_new(gs, x);
        json_array_append_new(d, num(r->disagreement[g]));
    }
    json_object_set_new(o, "groups", gs);
    json_object_set_new(o, "gap_mean", num(r->sum.gap_mean));
    json_object_set_new(o, "gap_win", num(r->sum.gap_win));
    json_object_set_new(o, "best", json_string(r->names[r->sum.best]));
    json_object_set_new(o, "worst", json_string(r->names[r->sum.worst]));
    json_object_set_new(o, "worst_win", r->sum.worst_win >= 0 ? json_string(r->names[r->sum.worst_win]) : json_null());
    json_object_set_new(o, "win_gini", num(r->sum.win_gini));
    for (int k = 0; k < EVAL_NRULES && r->G >= 2; k++) {
        json_t *x = json_object();
        json_object_set_new(x, "rule", json_string(align_rule_name(r->rule[k])));
        if (r->rule[k] == ALIGN_AGG_ISOELASTIC) json_object_set_new(x, "alpha", json_real(r->alpha));
        json_object_set_new(x, "policy", num(r->rule_policy[k]));
        json_object_set_new(x, "reference", num(r->rule_ref[k]));
        json_object_set_new(x, "win", num(r->rule_win[k]));
        json_array_append_new(rs, x);
    }
    json_object_set_new(o, "rules", rs);
    json_object_set_new(o, "disagreement", d);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}
