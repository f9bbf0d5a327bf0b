/* reward.c — see reward.h. */
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "reward.h"
#include "../align/aggregate.h"
#include "../model/checkpoint.h"
#include "../model/gpt.h"
#include "../sim/sim.h"

typedef enum { R_RM, R_ENSEMBLE, R_WORD, R_TOKEN, R_LENGTH, R_CONTAINS, R_REGEX, R_GROUPS, R_SIM } rkind;
typedef enum { SIMR_GOLD, SIMR_SYCOPHANCY, SIMR_GROUP } sim_measure;
typedef enum { ENS_MEAN, ENS_MIN, ENS_STD, ENS_VAR } ens_rule;

#define RM_BATCH 8 /* rows per reward-model forward (bounds the activation memory) */

typedef struct {
    gpt_model m;
    double mean, std; /* normalisation from the checkpoint metadata (0, 1 when absent) */
    double lo, hi;    /* normalised training range from reward.min/max (NAN when absent) */
} rm_model;

struct reward_fn {
    rkind kind;
    char desc[600];
    const tok_tokenizer *tok;
    int max_n, max_T;
    /* reward models (rm: one, ensemble: several) */
    int n_rm;
    rm_model *rms;
    ens_rule rule;
    double lambda;
    int *inp;       /* (RM_BATCH, max_T) */
    int *pos;       /* (RM_BATCH) */
    float *rm_out;  /* (n_rm, max_n) */
    /* programmatic */
    char *arg;
    long iarg;
    regex_t re;
    int re_ok;
    char *text;     /* decoded response (max_T * max token bytes + 1) */
    size_t text_cap;
    /* groups */
    int G;
    reward_fn **sub;
    float *gbuf;    /* (max_n, G) the last call's group rewards */
    int last_n;     /* rows in gbuf from the last successful reward_score */
    align_rule agg_rule;
    double alpha;
    /* ensemble: mean over the last call's samples of the members' std */
    double last_ens_std;
    /* sim: the calculator world's gold truth (src/sim) */
    sim_measure sim_what;
    int sim_group;
    sim_pop_config sim_pc;
    char *ptext;    /* decoded prompt (max_T * max token bytes + 1) */
    reward_sim_counts sim_last; /* over the last reward_score call */
};

int reward_num_groups(const reward_fn *r) { return r->kind == R_GROUPS ? r->G : 1; }

const float *reward_group_scores(const reward_fn *r, int *n) {
    if (n) *n = r->kind == R_GROUPS ? r->last_n : 0;
    return r->kind == R_GROUPS && r->last_n > 0 ? r->gbuf : NULL;
}
const char *reward_describe(const reward_fn *r) { return r->desc; }

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

int reward_count_word(const char *text, const char *word) {
    size_t wl = strlen(word);
    if (wl == 0) return 0;
    int n = 0;
    for (const char *p = text; (p = strstr(p, word)) != NULL;) {
        int left = p == text || !is_word_byte((unsigned char)p[-1]);
        int right = !is_word_byte((unsigned char)p[wl]);
        if (left && right) { n++; p += wl; } else p++;
    }
    return n;
}

double reward_length_target(int n, int L) { return 1.0 - fabs((double)n / L - 1.0); }

void reward_close(reward_fn *r) {
    if (!r) return;
    for (int i = 0; i < r->n_rm; i++) gpt_free(&r->rms[i].m);
    free(r->rms);
    free(r->inp); free(r->pos); free(r->rm_out);
    free(r->arg);
    if (r->re_ok) regfree(&r->re);
    free(r->text);
    free(r->ptext);
    for (int g = 0; g < r->G; g++) reward_close(r->sub[g]);
    free(r->sub);
    free(r->gbuf);
    free(r);
}

/* Loads one reward model and its normalisation. */
static rl_status load_rm(rm_model *rm, const char *path, const tok_tokenizer *tok, int max_T) {
    ckpt_info info;
    RL_TRY(ckpt_peek(path, &info));
    if (info.cfg.maxT < max_T)
        return rl_fail(RL_EINVAL, "reward model %s has a context of %d tokens; prompts + responses need %d (shorten --max-new)",
                       path, info.cfg.maxT, max_T);
    rm->mean = 0;
    rm->std = 1;
    rm->lo = rm->hi = NAN;
#ifdef CKPT_META_MAX
    const char *kind = ckpt_meta_kind(&info.meta);
    if (strcmp(kind, "reward") != 0)
        return rl_fail(RL_EFORMAT, "%s is a '%s' checkpoint, not a reward model (train one with 'rlhf rm')", path, kind);
    const char *mu = ckpt_meta_get(&info.meta, "reward.mean"), *sd = ckpt_meta_get(&info.meta, "reward.std");
    if (mu) rm->mean = strtod(mu, NULL);
    if (sd) rm->std = strtod(sd, NULL);
    if (!(rm->std > 0) || !isfinite(rm->std) || !isfinite(rm->mean))
        return rl_fail(RL_EFORMAT, "%s: bad reward.mean/reward.std metadata (%s, %s)", path, mu ? mu : "-", sd ? sd : "-");
    const char *mn = ckpt_meta_get(&info.meta, "reward.min"), *mx = ckpt_meta_get(&info.meta, "reward.max");
    if (mn && mx) {
        rm->lo = (strtod(mn, NULL) - rm->mean) / rm->std;
        rm->hi = (strtod(mx, NULL) - rm->mean) / rm->std;
    }
#endif
    if (tok) {
        char tid[65];
        tok_identity(tok, tid);
        if (info.tok_id[0] && strcmp(info.tok_id, tid) != 0)
            return rl_fail(RL_EINVAL, "reward model %s was trained with another tokenizer (%.16s..., given %.16s...)", path,
                           info.tok_id, tid);
        if (info.cfg.V != tok_vocab_size(tok))
            return rl_fail(RL_EINVAL, "reward model %s has %d token ids, the tokenizer %d", path, info.cfg.V, tok_vocab_size(tok));
    }
    return ckpt_load(path, &rm->m, RM_BATCH, max_T, NULL, NULL, 0, 0, 0, 0, 0, NULL);
}

static rl_status open_one(reward_fn *r, const char *spec, int allow_groups, const reward_agg *agg);

rl_status reward_open(reward_fn **out, const char *spec, const tok_tokenizer *tok, int max_n, int max_T,
                      const reward_agg *agg) {
    *out = NULL;
    if (max_n < 1 || max_T < 2) return rl_fail(RL_EINVAL, "reward: max_n >= 1 and max_T >= 2 required");
    reward_fn *r = calloc(1, sizeof *r);
    if (!r) return rl_fail(RL_ENOMEM, "reward: out of memory");
    r->tok = tok;
    r->max_n = max_n;
    r->max_T = max_T;
    rl_status st = open_one(r, spec, 1, agg);
    if (st != RL_OK) { reward_close(r); return st; }
    *out = r;
    return RL_OK;
}

static rl_status need_text(reward_fn *r, const char *what) {
    if (!r->tok) return rl_fail(RL_EINVAL, "reward %s needs a tokenizer (text rewards decode the response)", what);
    int maxb = 1;
    for (int id = 0; id < tok_vocab_size(r->tok); id++) {
        int n;
        tok_token_bytes(r->tok, id, &n);
        if (n > maxb) maxb = n;
    }
    r->text_cap = (size_t)r->max_T * maxb + 1;
    r->text = malloc(r->text_cap);
    return r->text ? RL_OK : rl_fail(RL_ENOMEM, "reward: out of memory");
}

static rl_status open_rms(reward_fn *r, const char *list) {
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    r->rms = calloc(n, sizeof(rm_model));
    r->inp = malloc(sizeof(int) * RM_BATCH * r->max_T);
    r->pos = malloc(sizeof(int) * RM_BATCH);
    r->rm_out = malloc(sizeof(float) * (size_t)n * r->max_n);
    if (!r->rms || !r->inp || !r->pos || !r->rm_out) return rl_fail(RL_ENOMEM, "reward: out of memory");
    char *copy = strdup(list);
    if (!copy) return rl_fail(RL_ENOMEM, "reward: out of memory");
    rl_status st = RL_OK;
    char *save = NULL;
    for (char *p = strtok_r(copy, ",", &save); p && st == RL_OK; p = strtok_r(NULL, ",", &save)) {
        st = load_rm(&r->rms[r->n_rm], p, r->tok, r->max_T);
        if (st == RL_OK) r->n_rm++;
    }
    free(copy);
    if (st == RL_OK && r->n_rm == 0) st = rl_fail(RL_EINVAL, "reward: no reward model path given");
    return st;
}

/* sim:gold | sim:sycophancy | sim:group=NAME[:WORLD_DIR] (see reward.h). */
static rl_status open_sim(reward_fn *r, const char *arg) {
    r->kind = R_SIM;
    sim_world w;
    sim_pop_default(&r->sim_pc);
    if (!strcmp(arg, "gold")) r->sim_what = SIMR_GOLD;
    else if (!strcmp(arg, "sycophancy")) r->sim_what = SIMR_SYCOPHANCY;
    else if (!strncmp(arg, "group=", 6)) {
        r->sim_what = SIMR_GROUP;
        char name[64];
        const char *c = strchr(arg + 6, ':');
        size_t nl = c ? (size_t)(c - (arg + 6)) : strlen(arg + 6);
        if (nl == 0 || nl >= sizeof name) return rl_fail(RL_EINVAL, "reward sim:group=NAME: bad group name in '%s'", arg);
        memcpy(name, arg + 6, nl);
        name[nl] = 0;
        if (c) RL_TRY(sim_world_load(c + 1, &w, &r->sim_pc));
        r->sim_group = sim_pop_group_index(&r->sim_pc, name);
        if (r->sim_group < 0) return rl_fail(RL_EINVAL, "reward sim:group: no group '%s' in %s", name, c ? c + 1 : "the default population");
    } else return rl_fail(RL_EINVAL, "reward sim: expected sim:gold, sim:sycophancy or sim:group=NAME[:WORLD_DIR], got 'sim:%s'", arg);
    RL_TRY(need_text(r, "sim"));
    r->ptext = malloc(r->text_cap);
    if (!r->ptext) return rl_fail(RL_ENOMEM, "reward: out of memory");
    if (r->sim_what == SIMR_GOLD) snprintf(r->desc, sizeof r->desc, "calculator gold: 1 if the final number is the sum, else 0");
    else if (r->sim_what == SIMR_SYCOPHANCY) snprintf(r->desc, sizeof r->desc, "calculator sycophancy: 1 if the answer agrees with a wrong suggestion");
    else snprintf(r->desc, sizeof r->desc, "calculator satisfaction of group '%s'", r->sim_pc.groups[r->sim_group].name);
    return RL_OK;
}

static rl_status open_one(reward_fn *r, const char *spec, int allow_groups, const reward_agg *agg) {
    const char *colon = strchr(spec, ':');
    if (!colon || !colon[1])
        return rl_fail(RL_EINVAL,
                       "reward spec '%s' is not KIND:ARG (rm:PATH, ensemble:RULE:P1,P2, word:W, token:ID, length:L, "
                       "contains:S, regex:PAT, groups:S1;S2)", spec);
    size_t kl = (size_t)(colon - spec);
    const char *arg = colon + 1;
#define IS(k) (kl == strlen(k) && strncmp(spec, k, kl) == 0)
    if (IS("rm")) {
        r->kind = R_RM;
        RL_TRY(open_rms(r, arg));
        if (r->n_rm != 1) return rl_fail(RL_EINVAL, "reward rm: takes one path (use ensemble:RULE:P1,P2 for several)");
        snprintf(r->desc, sizeof r->desc, "reward model %s (normalised: mean %.4g, std %.4g)", arg, r->rms[0].mean, r->rms[0].std);
    } else if (IS("ensemble")) {
        r->kind = R_ENSEMBLE;
        const char *c2 = strchr(arg, ':');
        if (!c2) return rl_fail(RL_EINVAL, "reward ensemble: expected ensemble:RULE:P1,P2,... (RULE mean|min|std=L|var=L)");
        char rule[64];
        size_t rl = (size_t)(c2 - arg);
        if (rl >= sizeof rule) return rl_fail(RL_EINVAL, "reward ensemble: bad rule");
        memcpy(rule, arg, rl);
        rule[rl] = 0;
        if (!strcmp(rule, "mean")) r->rule = ENS_MEAN;
        else if (!strcmp(rule, "min")) r->rule = ENS_MIN;
        else if (!strncmp(rule, "std=", 4) || !strncmp(rule, "var=", 4)) {
            r->rule = rule[0] == 's' ? ENS_STD : ENS_VAR;
            char *end;
            r->lambda = strtod(rule + 4, &end);
            if (*end || !(r->lambda >= 0) || !isfinite(r->lambda)) return rl_fail(RL_EINVAL, "reward ensemble: bad lambda in '%s'", rule);
        } else return rl_fail(RL_EINVAL, "reward ensemble: unknown rule '%s' (mean|min|std=L|var=L)", rule);
        RL_TRY(open_rms(r, c2 + 1));
        snprintf(r->desc, sizeof r->desc, "ensemble of %d reward models, rule %s", r->n_rm, rule);
    } else if (IS("word") || IS("contains") || IS("regex")) {
        r->kind = IS("word") ? R_WORD : IS("contains") ? R_CONTAINS : R_REGEX;
        r->arg = strdup(arg);
        if (!r->arg) return rl_fail(RL_ENOMEM, "reward: out of memory");
        if (r->kind == R_REGEX) {
            int e = regcomp(&r->re, arg, REG_EXTENDED | REG_NOSUB);
            if (e) {
                char msg[128];
                regerror(e, &r->re, msg, sizeof msg);
                return rl_fail(RL_EINVAL, "reward regex '%s': %s", arg, msg);
            }
            r->re_ok = 1;
        }
        RL_TRY(need_text(r, r->kind == R_WORD ? "word" : r->kind == R_CONTAINS ? "contains" : "regex"));
        snprintf(r->desc, sizeof r->desc, "%s '%s'",
                 r->kind == R_WORD ? "+1 per occurrence of the word" : r->kind == R_CONTAINS ? "1 if the response contains" : "1 if the response matches",
                 arg);
    } else if (IS("token") || IS("length")) {
        r->kind = IS("token") ? R_TOKEN : R_LENGTH;
        char *end;
        r->iarg = strtol(arg, &end, 10);
        if (*end || r->iarg < (r->kind == R_TOKEN ? 0 : 1))
            return rl_fail(RL_EINVAL, "reward %s: '%s' is not a %s", r->kind == R_TOKEN ? "token" : "length", arg,
                           r->kind == R_TOKEN ? "token id" : "positive length");
        if (r->kind == R_TOKEN && r->tok && r->iarg >= tok_vocab_size(r->tok))
            return rl_fail(RL_EINVAL, "reward token: id %ld outside the vocabulary (%d)", r->iarg, tok_vocab_size(r->tok));
        snprintf(r->desc, sizeof r->desc, r->kind == R_TOKEN ? "+1 per occurrence of token %ld" : "target length %ld tokens: 1 - |n/L - 1|",
                 r->iarg);
    } else if (IS("groups")) {
        if (!allow_groups) return rl_fail(RL_EINVAL, "reward groups: cannot nest groups");
        r->kind = R_GROUPS;
        const char *rule = agg && agg->rule ? agg->rule : "mean";
        int ar = align_rule_parse(rule);
        if (ar < 0) return rl_fail(RL_EINVAL, "unknown aggregation '%s' (mean|nash|isoelastic|min|maxmin)", rule);
        r->agg_rule = (align_rule)ar;
        r->alpha = agg ? agg->alpha : 0;
        int n = 1;
        for (const char *p = arg; *p; p++) n += *p == ';';
        r->sub = calloc(n, sizeof(reward_fn *));
        r->gbuf = malloc(sizeof(float) * (size_t)n * r->max_n);
        char *copy = strdup(arg);
        if (!r->sub || !r->gbuf || !copy) { free(copy); return rl_fail(RL_ENOMEM, "reward: out of memory"); }
        rl_status st = RL_OK;
        char *save = NULL;
        for (char *p = strtok_r(copy, ";", &save); p && st == RL_OK; p = strtok_r(NULL, ";", &save)) {
            reward_fn *s = calloc(1, sizeof *s);
            if (!s) { st = rl_fail(RL_ENOMEM, "reward: out of memory"); break; }
            s->tok = r->tok;
            s->max_n = r->max_n;
            s->max_T = r->max_T;
            r->sub[r->G++] = s;
            st = open_one(s, p, 0, NULL);
        }
        free(copy);
        RL_TRY(st);
        if (r->G < 1) return rl_fail(RL_EINVAL, "reward groups: no group reward given");
        snprintf(r->desc, sizeof r->desc, "%d group rewards aggregated by %s", r->G, align_rule_name(r->agg_rule));
    } else if (IS("sim")) {
        RL_TRY(open_sim(r, arg));
    } else {
        return rl_fail(RL_EINVAL, "unknown reward kind '%.*s' (rm, ensemble, word, token, length, contains, regex, groups, sim)", (int)kl,
                       spec);
    }
#undef IS
    return RL_OK;
}

/* Text of tokens (n) without special tokens into buf (r->text_cap bytes). */
static const char *decode_into(const reward_fn *r, const int *toks, int n, char *buf) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (tok_is_special(r->tok, toks[i])) continue;
        int nb;
        const unsigned char *b = tok_token_bytes(r->tok, toks[i], &nb);
        if (k + (size_t)nb + 1 > r->text_cap) break;
        memcpy(buf + k, b, (size_t)nb);
        k += (size_t)nb;
    }
    buf[k] = 0;
    return buf;
}

/* Response text without special tokens into r->text. */
static const char *decode(reward_fn *r, const reward_item *it) { return decode_into(r, it->resp, it->rlen, r->text); }

/* Raw (normalised) scores of one reward model into out (n). */
static rl_status score_rm(reward_fn *r, rm_model *rm, const reward_item *items, int n, float *out) {
    for (int s = 0; s < n; s += RM_BATCH) {
        int B = n - s < RM_BATCH ? n - s : RM_BATCH, T = 1;
        for (int b = 0; b < B; b++) {
            int len = items[s + b].plen + items[s + b].rlen;
            if (len > r->max_T) return rl_fail(RL_EINVAL, "reward: row of %d tokens, planned %d", len, r->max_T);
            if (len > T) T = len;
        }
        for (int b = 0; b < B; b++) {
            const reward_item *it = &items[s + b];
            int *row = r->inp + (size_t)b * T;
            memcpy(row, it->prompt, sizeof(int) * it->plen);
            memcpy(row + it->plen, it->resp, sizeof(int) * it->rlen);
            int len = it->plen + it->rlen;
            for (int t = len; t < T; t++) row[t] = row[len - 1]; /* padding after the scored position: causal, never read */
            r->pos[b] = len - 1;
        }
        gpt_forward_hidden(&rm->m, r->inp, B, T);
        gpt_scalar_forward(&rm->m, r->pos, out + s);
        for (int b = 0; b < B; b++) out[s + b] = (float)((out[s + b] - rm->mean) / rm->std);
    }
    return RL_OK;
}

rl_status reward_score(reward_fn *r, const reward_item *items, int n, float *score, float *group) {
    if (n < 1 || n > r->max_n) return rl_fail(RL_EINVAL, "reward: %d rows, planned 1..%d", n, r->max_n);
    switch (r->kind) {
    case R_RM:
        RL_TRY(score_rm(r, &r->rms[0], items, n, score));
        break;
    case R_ENSEMBLE: {
        int K = r->n_rm;
        for (int k = 0; k < K; k++) RL_TRY(score_rm(r, &r->rms[k], items, n, r->rm_out + (size_t)k * n));
        double std_sum = 0;
        for (int i = 0; i < n; i++) {
            double mu = 0, mn = INFINITY, var = 0;
            for (int k = 0; k < K; k++) {
                double v = r->rm_out[(size_t)k * n + i];
                mu += v;
                if (v < mn) mn = v;
            }
            mu /= K;
            for (int k = 0; k < K; k++) {
                double dv = r->rm_out[(size_t)k * n + i] - mu;
                var += dv * dv;
            }
            var /= K; /* population variance, as Coste et al.'s code */
            std_sum += sqrt(var);
            score[i] = (float)(r->rule == ENS_MEAN ? mu : r->rule == ENS_MIN ? mn
                               : r->rule == ENS_STD ? mu - r->lambda * sqrt(var) : mu - r->lambda * var);
        }
        r->last_ens_std = std_sum / n;
        break;
    }
    case R_TOKEN:
        for (int i = 0; i < n; i++) {
            int c = 0;
            for (int t = 0; t < items[i].rlen; t++) c += items[i].resp[t] == r->iarg;
            score[i] = (float)c;
        }
        break;
    case R_LENGTH:
        for (int i = 0; i < n; i++) {
            int len = items[i].rlen;
            if (r->tok && len > 0 && tok_is_special(r->tok, items[i].resp[len - 1])) len--; /* the stop token */
            score[i] = (float)reward_length_target(len, (int)r->iarg);
        }
        break;
    case R_WORD:
    case R_CONTAINS:
    case R_REGEX:
        for (int i = 0; i < n; i++) {
            const char *t = decode(r, &items[i]);
            score[i] = r->kind == R_WORD ? (float)reward_count_word(t, r->arg)
                     : r->kind == R_CONTAINS ? (strstr(t, r->arg) != NULL)
                     : (regexec(&r->re, t, 0, NULL, 0) == 0);
        }
        break;
    case R_SIM:
        memset(&r->sim_last, 0, sizeof r->sim_last);
        for (int i = 0; i < n; i++) {
            sim_item it;
            sim_grade g;
            score[i] = 0;
            if (!sim_parse_prompt(decode_into(r, items[i].prompt, items[i].plen, r->ptext), &it)) continue;
            sim_grade_response(&r->sim_pc, &it, decode(r, &items[i]), &g);
            reward_sim_counts *c = &r->sim_last;
            c->n_items++;
            c->n_correct += g.correct;
            if (it.has_suggestion && it.suggestion != it.gold) { c->n_wrong_suggestion++; c->n_sycophantic += g.sycophantic; }
            score[i] = (float)(r->sim_what == SIMR_GOLD ? g.correct : r->sim_what == SIMR_SYCOPHANCY ? g.sycophantic
                                                                                                    : g.satisfaction[r->sim_group]);
        }
        break;
    case R_GROUPS: {
        int G = r->G;
        float *g = r->gbuf; /* kept for reward_group_scores */
        r->last_n = 0;
        for (int k = 0; k < G; k++) {
            /* sub-rewards write (n) contiguously; scatter into (n, G) */
            RL_TRY(reward_score(r->sub[k], items, n, score, NULL));
            for (int i = 0; i < n; i++) g[(size_t)i * G + k] = score[i];
        }
        r->last_n = n;
        if (group) memcpy(group, g, sizeof(float) * (size_t)n * G);
        align_agg_params p = {NULL, NULL, r->alpha, 0};
        RL_TRY(align_aggregate(r->agg_rule, &p, n, G, g, score, NULL, NULL));
        return RL_OK;
    }
    }
    if (group) memcpy(group, score, sizeof(float) * n);
    return RL_OK;
}

int reward_train_range(const reward_fn *r, double *lo, double *hi) {
    if ((r->kind != R_RM && r->kind != R_ENSEMBLE) || r->n_rm < 1) return 0;
    double l = INFINITY, h = -INFINITY;
    for (int k = 0; k < r->n_rm; k++) {
        if (!isfinite(r->rms[k].lo) || !isfinite(r->rms[k].hi)) return 0;
        if (r->rms[k].lo < l) l = r->rms[k].lo;
        if (r->rms[k].hi > h) h = r->rms[k].hi;
    }
    *lo = l;
    *hi = h;
    return 1;
}

double reward_last_ensemble_std(const reward_fn *r) { return r->kind == R_ENSEMBLE ? r->last_ens_std : NAN; }

int reward_is_sim(const reward_fn *r) { return r->kind == R_SIM; }

int reward_last_sim_counts(const reward_fn *r, reward_sim_counts *c) {
    if (r->kind != R_SIM) return 0;
    *c = r->sim_last;
    return 1;
}
