/* study.c — see study.h. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "study.h"
#include "../base/binfile.h"
#include "../base/log.h"
#include "../model/checkpoint.h"
#include "../model/sampler.h"
#include "../train/objectives.h"
#include "../train/ppo.h"
#include "../train/reward.h"

static const int default_n_list[] = {1, 2, 4, 8, 16, 32, 64};

/* Prefixes the current error message (rl_fail cannot read its own buffer). */
static rl_status fail_prefix(rl_status s, const char *prefix) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rl_error());
    return rl_fail(s ? s : RL_EINVAL, "%s%s", prefix, msg);
}

void study_opts_default(study_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_list = default_n_list;
    o->n_n = (int)(sizeof default_n_list / sizeof default_n_list[0]);
    o->estimator = STUDY_BON_SUBSETS;
    o->ppo_samples = 4;
    o->max_new = 64;
    o->chat = 1;
    o->seed = 1;
    o->alpha = 1;
}

int study_parse_int_list(const char *s, int *out, int max, int lo, int hi) {
    if (!s) return -1;
    int n = 0;
    const char *p = s;
    if (!*p) return 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < lo || v > hi || n >= max) return -1;
        out[n++] = (int)v;
        if (*end == 0) return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

/* ---- best-of-n estimators ----------------------------------------------------- */

static const float *g_sort_key; /* qsort has no context argument; study code is single-threaded here */

static int cmp_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = g_sort_key[i], y = g_sort_key[j];
    int nx = isnan(x), ny = isnan(y);
    if (nx != ny) return nx - ny;          /* NaN last */
    if (!nx && x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);              /* ties: lower index first, as bon_argmax */
}

void study_bon_order(const float *proxy, int N, int *order) {
    for (int i = 0; i < N; i++) order[i] = i;
    g_sort_key = proxy;
    qsort(order, (size_t)N, sizeof *order, cmp_desc);
    g_sort_key = NULL;
}

void study_bon_weights(int N, int n, double *w) {
    /* w[0] = C(N-1, n-1)/C(N, n) = n/N; w[j+1]/w[j] = C(N-2-j, n-1)/C(N-1-j, n-1) = (N-j-n)/(N-1-j).
     * A product of ratios <= 1: no overflow for any N. */
    double x = (double)n / N;
    for (int j = 0; j < N; j++) {
        w[j] = x;
        x = (N - 1 - j > 0 && N - j - n > 0) ? x * (double)(N - j - n) / (double)(N - 1 - j) : 0.0;
    }
}

static int argmax_prefix(const float *s, int n) {
    int best = 0; /* same rule as bon_argmax (src/train/bon.c) */
    for (int i = 1; i < n; i++)
        if (s[i] > s[best] || (isnan(s[best]) && !isnan(s[i]))) best = i;
    return best;
}

int study_bon_estimate(const float *proxy, const float *gold, int N, int n, study_bon_estimator e, const int *order,
                       double *w, double *proxy_out, double *gold_out) {
    if (e == STUDY_BON_PREFIX) {
        int b = argmax_prefix(proxy, n);
        *proxy_out = proxy[b];
        *gold_out = gold[b];
        return b;
    }
    study_bon_weights(N, n, w);
    double ps = 0, gs = 0;
    for (int j = 0; j < N; j++) {
        if (w[j] == 0) break; /* weights are 0 from the first zero on */
        ps += w[j] * proxy[order[j]];
        gs += w[j] * gold[order[j]];
    }
    *proxy_out = ps;
    *gold_out = gs;
    return -1;
}

/* ---- running means over prompts ------------------------------------------------ */

typedef struct { double sp, sp2, sg, sg2; long n; } acc_t;

static void acc_add(acc_t *a, double p, double g) { a->sp += p; a->sp2 += p * p; a->sg += g; a->sg2 += g * g; a->n++; }

static void acc_row(const acc_t *a, study_row *r) {
    double n = (double)a->n;
    r->proxy = a->n ? a->sp / n : NAN;
    r->gold = a->n ? a->sg / n : NAN;
    if (a->n > 1) {
        double vp = (a->sp2 - a->sp * a->sp / n) / (n - 1), vg = (a->sg2 - a->sg * a->sg / n) / (n - 1);
        r->proxy_se = sqrt(vp > 0 ? vp / n : 0);
        r->gold_se = sqrt(vg > 0 ? vg / n : 0);
    } else {
        r->proxy_se = r->gold_se = NAN;
    }
}

/* ---- PPO checkpoints ----------------------------------------------------------- */

typedef struct { char *path; long long step; int idx; } ckpt_ref;

static int cmp_ckpt(const void *a, const void *b) {
    const ckpt_ref *x = a, *y = b;
    int ux = x->step < 0, uy = y->step < 0; /* unknown steps last, in the order given */
    if (ux != uy) return ux - uy;
    if (!ux && x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.ckpt file in dir (sorted by name), appended to *list. */
static rl_status list_dir(const char *dir, char ***list, int *n) {
    DIR *d = opendir(dir);
    if (!d) return rl_fail(RL_ENOTFOUND, "cannot open the PPO checkpoint directory %s: %s", dir, strerror(errno));
    int cap = *n;
    rl_status s = RL_OK;
    int first = *n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t L = strlen(e->d_name);
        if (e->d_name[0] == '.' || L < 6 || strcmp(e->d_name + L - 5, ".ckpt")) continue;
        if (*n >= STUDY_MAX_CKPTS) { s = rl_fail(RL_EINVAL, "%s holds more than %d checkpoints", dir, STUDY_MAX_CKPTS); break; }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **t = realloc(*list, sizeof(char *) * (size_t)cap);
            if (!t) { s = rl_fail(RL_ENOMEM, "out of memory listing %s", dir); break; }
            *list = t;
        }
        size_t need = strlen(dir) + L + 2;
        char *p = malloc(need);
        if (!p) { s = rl_fail(RL_ENOMEM, "out of memory listing %s", dir); break; }
        snprintf(p, need, "%s/%s", dir, e->d_name);
        (*list)[(*n)++] = p;
    }
    closedir(d);
    if (!s && *n == first) s = rl_fail(RL_ENOTFOUND, "%s holds no *.ckpt file (write some with 'rlhf ppo --save-every N --snapshots DIR')", dir);
    if (!s) qsort(*list + first, (size_t)(*n - first), sizeof(char *), cmp_str);
    return s;
}

/* ---- the study ----------------------------------------------------------------- */

typedef struct {
    const study_opts *o;
    tok_tokenizer *tok;
    ppo_prompts pr;
    int Tp, stops[2];
    reward_fn *proxy, *gold;
    int max_rows;
    const int **rp;          /* (max_rows) */
    int *rl;                 /* (max_rows) */
    reward_item *items;      /* (max_rows) */
    float *sp, *sg;          /* (max_rows) proxy and gold scores */
    int *inputs, *targets;   /* (K, Tp) */
    float *lp_pol;           /* (K, Tp) */
    double *seq_kl;          /* (K) */
} study_ctx;

/* Samples `rows` answers to prompt p (seed seed + p * 1000003, as `rlhf bon
 * --batch 1`) and scores them by proxy and gold into c->sp, c->sg. */
static rl_status sample_and_score(study_ctx *c, gpt_model *m, sampler_ws *ws, int p, int rows) {
    sampler_opts so;
    sampler_opts_default(&so);
    so.max_tokens = c->o->max_new;
    so.temperature = 1.0f; /* the KL and the best-of-n formula are for the policy itself */
    so.stop_tokens[0] = c->stops[0];
    so.stop_tokens[1] = c->stops[1];
    so.seed = c->o->seed + (uint64_t)p * 1000003u;
    for (int r = 0; r < rows; r++) { c->rp[r] = c->pr.ids[p]; c->rl[r] = c->pr.len[p]; }
    RL_TRY(sampler_generate_ws(m, ws, c->rp, c->rl, rows, &so, NULL, NULL));
    const sampler_result *res = &ws->res;
    for (int r = 0; r < rows; r++) c->items[r] = (reward_item){c->rp[r], c->rl[r], res->tokens + (size_t)r * res->cap, res->len[r]};
    RL_TRY(reward_score(c->proxy, c->items, rows, c->sp, NULL));
    RL_TRY(reward_score(c->gold, c->items, rows, c->sg, NULL));
    return RL_OK;
}

/* Sequence KL sum_t log pi - log pi_ref of each of the ws's `rows` answers to prompt p. */
static void seq_kl(study_ctx *c, gpt_model *pol, gpt_model *ref, const sampler_result *res, int p, int rows) {
    int pl = c->pr.len[p], T = 1;
    for (int r = 0; r < rows; r++) if (pl + res->len[r] - 1 > T) T = pl + res->len[r] - 1;
    for (int r = 0; r < rows; r++) {
        const int *resp = res->tokens + (size_t)r * res->cap;
        int len = pl + res->len[r];
        for (int i = 0; i < T; i++) {
            /* position i holds token i and predicts token i+1; past the row's end: padding, target -1 */
            int x = i < len ? (i < pl ? c->pr.ids[p][i] : resp[i - pl]) : 0;
            int y = i + 1 < len ? (i + 1 < pl ? c->pr.ids[p][i + 1] : resp[i + 1 - pl]) : -1;
            c->inputs[(size_t)r * T + i] = x;
            c->targets[(size_t)r * T + i] = y;
        }
    }
    gpt_forward(pol, c->inputs, c->targets, NULL, rows, T);
    memcpy(c->lp_pol, pol->a.logp, sizeof(float) * (size_t)rows * T);
    gpt_forward(ref, c->inputs, c->targets, NULL, rows, T);
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int i = pl - 1; i < pl - 1 + res->len[r]; i++) s += (double)c->lp_pol[(size_t)r * T + i] - ref->a.logp[(size_t)r * T + i];
        c->seq_kl[r] = s;
    }
}

static void row_label(study_row *row, const char *s) { snprintf(row->label, sizeof row->label, "%s", s); }

static void fit_curve(study_fit *f, diag_gao_form form, const study_row *rows, int n, int use_gold, double base) {
    memset(f, 0, sizeof *f);
    f->form = form;
    f->base = base;
    double *d = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!d || !y) { snprintf(f->error, sizeof f->error, "out of memory"); free(d); free(y); return; }
    int m = 0;
    for (int i = 0; i < n; i++) {
        double v = use_gold ? rows[i].gold : rows[i].proxy;
        if (!isfinite(v) || !isfinite(rows[i].d)) continue;
        d[m] = rows[i].d;
        y[m] = v - base;
        m++;
    }
    if (!isfinite(base)) snprintf(f->error, sizeof f->error, "no value at d = 0");
    else if (diag_gao_fit_points(form, d, y, m, &f->fit) == RL_OK) f->ok = 1;
    else snprintf(f->error, sizeof f->error, "%s", rl_error());
    free(d);
    free(y);
}

static int cmp_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }

static rl_status run_bon(study_ctx *c, gpt_model *ref, sampler_ws *ws, study_result *r) {
    const study_opts *o = c->o;
    int nn = 0, *ns = malloc(sizeof(int) * (size_t)o->n_n);
    if (!ns) return rl_fail(RL_ENOMEM, "out of memory");
    for (int i = 0; i < o->n_n; i++) ns[i] = o->n_list[i];
    qsort(ns, (size_t)o->n_n, sizeof(int), cmp_int);
    for (int i = 0; i < o->n_n; i++) if (nn == 0 || ns[nn - 1] != ns[i]) ns[nn++] = ns[i];
    int N = ns[nn - 1];
    r->bon_N = N;
    r->bon = calloc((size_t)nn, sizeof(study_row));
    acc_t *acc = calloc((size_t)nn, sizeof(acc_t)), base = {0};
    int *order = malloc(sizeof(int) * (size_t)N);
    double *w = malloc(sizeof(double) * (size_t)N);
    rl_status s = RL_OK;
    if (!r->bon || !acc || !order || !w) s = rl_fail(RL_ENOMEM, "out of memory for best-of-%d", N);
    else r->n_bon = nn;
    double t0 = rl_now();
    for (int p = 0; !s && p < c->pr.n; p++) {
        s = sample_and_score(c, ref, ws, p, N);
        if (s) break;
        study_bon_order(c->sp, N, order);
        double bp = 0, bg = 0;
        for (int i = 0; i < N; i++) { bp += c->sp[i]; bg += c->sg[i]; }
        acc_add(&base, bp / N, bg / N);
        for (int k = 0; k < nn; k++) {
            double vp, vg;
            study_bon_estimate(c->sp, c->sg, N, ns[k], o->estimator, order, w, &vp, &vg);
            acc_add(&acc[k], vp, vg);
        }
        if (!o->quiet && (p + 1) % 16 == 0) rl_info("best-of-n: %d/%d prompts (%d samples each), %.1f s", p + 1, c->pr.n, N, rl_now() - t0);
    }
    if (!s) {
        for (int k = 0; k < nn; k++) {
            study_row *row = &r->bon[k];
            snprintf(row->label, sizeof row->label, "n=%d", ns[k]);
            row->x = ns[k];
            row->kl = obj_bon_kl(ns[k]);
            row->d = sqrt(row->kl > 0 ? row->kl : 0);
            row->samples = (long)c->pr.n * ns[k];
            acc_row(&acc[k], row);
        }
        study_row b0;
        acc_row(&base, &b0);
        fit_curve(&r->bon_gold, DIAG_GAO_BON, r->bon, nn, 1, b0.gold);
        fit_curve(&r->bon_proxy, DIAG_GAO_BON, r->bon, nn, 0, b0.proxy);
        if (!o->quiet) rl_info("best-of-n: %d prompts x %d samples in %.1f s", c->pr.n, N, rl_now() - t0);
    }
    free(ns); free(acc); free(order); free(w);
    return s;
}

/* One PPO row: K samples per prompt from `pol` (== ref for the reference row). */
static rl_status run_ppo_row(study_ctx *c, gpt_model *pol, gpt_model *ref, sampler_ws *ws, study_row *row) {
    int K = c->o->ppo_samples;
    acc_t a = {0};
    double kl_sum = 0;
    for (int p = 0; p < c->pr.n; p++) {
        RL_TRY(sample_and_score(c, pol, ws, p, K));
        double mp = 0, mg = 0;
        for (int i = 0; i < K; i++) { mp += c->sp[i]; mg += c->sg[i]; }
        acc_add(&a, mp / K, mg / K);
        if (pol != ref) { /* pi_ref against itself: exactly 0, no forward needed */
            seq_kl(c, pol, ref, &ws->res, p, K);
            for (int i = 0; i < K; i++) kl_sum += c->seq_kl[i];
        }
    }
    acc_row(&a, row);
    row->samples = (long)c->pr.n * K;
    row->kl = kl_sum / (double)row->samples;
    row->d = sqrt(row->kl > 0 ? row->kl : 0);
    return RL_OK;
}

static rl_status run_ppo(study_ctx *c, gpt_model *ref, sampler_ws *ref_ws, const char *tid, study_result *r) {
    const study_opts *o = c->o;
    char **paths = NULL;
    int np = 0;
    rl_status s = RL_OK;
    for (int i = 0; i < o->n_ppo && !s; i++) {
        char **t = realloc(paths, sizeof(char *) * (size_t)(np + 1));
        if (!t) { s = rl_fail(RL_ENOMEM, "out of memory"); break; }
        paths = t;
        if (!(paths[np] = strdup(o->ppo_paths[i]))) s = rl_fail(RL_ENOMEM, "out of memory");
        else np++;
    }
    if (!s && o->ppo_dir) s = list_dir(o->ppo_dir, &paths, &np);
    ckpt_ref *cks = s ? NULL : calloc((size_t)(np > 0 ? np : 1), sizeof(ckpt_ref));
    if (!s && !cks) s = rl_fail(RL_ENOMEM, "out of memory");
    /* Check every checkpoint before the (slow) sampling: same tokenizer and shape as the policy. */
    for (int i = 0; !s && i < np; i++) {
        ckpt_info info;
        if ((s = ckpt_peek(paths[i], &info)) != RL_OK) { s = fail_prefix(s, "PPO checkpoint: "); break; }
        const gpt_config *a = &info.cfg, *b = &ref->cfg;
        if (strcmp(ckpt_meta_kind(&info.meta), "lm"))
            s = rl_fail(RL_EINVAL, "%s is a %s checkpoint, not a policy", paths[i], ckpt_meta_kind(&info.meta));
        else if (a->V != b->V || a->C != b->C || a->L != b->L || a->NH != b->NH || a->maxT != b->maxT)
            s = rl_fail(RL_EINVAL, "%s is not a fine-tune of %s (another model shape)", paths[i], o->policy_path);
        else if (info.tok_id[0] && tid[0] && strcmp(info.tok_id, tid))
            s = rl_fail(RL_EINVAL, "%s was trained with another tokenizer than %s", paths[i], o->tokenizer_path);
        cks[i] = (ckpt_ref){paths[i], info.has_train ? info.train.step : -1, i};
    }
    if (!s) {
        qsort(cks, (size_t)np, sizeof *cks, cmp_ckpt);
        r->ppo = calloc((size_t)np + 1, sizeof(study_row));
        if (!r->ppo) s = rl_fail(RL_ENOMEM, "out of memory");
    }
    double t0 = rl_now();
    if (!s) { /* the reference itself: step 0, KL 0 */
        study_row *row = &r->ppo[0];
        row_label(row, "reference");
        row->x = 0;
        s = run_ppo_row(c, ref, ref, ref_ws, row);
        if (!s) r->n_ppo = 1;
    }
    for (int i = 0; !s && i < np; i++) {
        gpt_model m;
        s = ckpt_load(cks[i].path, &m, o->ppo_samples, c->Tp, NULL, NULL, 0, 0, 0, 0, 0, NULL);
        if (s) { s = fail_prefix(s, "PPO checkpoint: "); break; }
        sampler_ws ws;
        s = sampler_ws_init(&ws, &m, o->ppo_samples, o->max_new);
        study_row *row = &r->ppo[r->n_ppo];
        row_label(row, cks[i].path);
        row->x = cks[i].step;
        if (!s) s = run_ppo_row(c, &m, ref, &ws, row);
        if (!s) r->n_ppo++;
        sampler_ws_free(&ws);
        gpt_free(&m);
        if (!s && !o->quiet)
            rl_info("PPO %s (step %lld): KL %.4f  proxy %.4f  gold %.4f  (%.1f s)", row->label, row->x, row->kl, row->proxy, row->gold,
                    rl_now() - t0);
    }
    if (!s) {
        fit_curve(&r->ppo_gold, DIAG_GAO_RL, r->ppo, r->n_ppo, 1, r->ppo[0].gold);
        fit_curve(&r->ppo_proxy, DIAG_GAO_RL, r->ppo, r->n_ppo, 0, r->ppo[0].proxy);
    }
    for (int i = 0; i < np; i++) free(paths[i]);
    free(paths);
    free(cks);
    return s;
}

static rl_status write_outputs(const study_opts *o, const study_result *r);

rl_status study_overoptimization(const study_opts *o, study_result *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < o->n_n; i++)
        if (o->n_list[i] < 1 || o->n_list[i] > STUDY_MAX_N) return rl_fail(RL_EINVAL, "best-of-n sizes must lie in 1..%d (got %d)", STUDY_MAX_N, o->n_list[i]);
    int want_ppo = o->n_ppo > 0 || (o->ppo_dir && *o->ppo_dir);
    if (o->n_n <= 0 && !want_ppo) return rl_fail(RL_EINVAL, "nothing to study: give best-of-n sizes and/or PPO checkpoints");
    if (!o->policy_path || !o->tokenizer_path || !o->prompts_path || !o->proxy_spec || !o->gold_spec)
        return rl_fail(RL_EINVAL, "the study needs a policy, a tokenizer, prompts, a proxy and a gold reward");
    if (o->ppo_samples < 1 || o->max_new < 1) return rl_fail(RL_EINVAL, "ppo_samples and max_new must be >= 1");
    if (o->n_ppo > STUDY_MAX_CKPTS) return rl_fail(RL_EINVAL, "at most %d PPO checkpoints", STUDY_MAX_CKPTS);
    double t0 = rl_now();
    study_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    gpt_model ref;
    memset(&ref, 0, sizeof ref);
    sampler_ws ws;
    memset(&ws, 0, sizeof ws);
    int have_ref = 0, have_ws = 0, have_pr = 0;
    rl_status s = tok_load(&c.tok, o->tokenizer_path);
    char tid[65] = "";
    ckpt_info pinfo;
    if (!s) {
        tok_identity(c.tok, tid);
        s = ckpt_peek(o->policy_path, &pinfo);
    }
    if (!s && strcmp(ckpt_meta_kind(&pinfo.meta), "lm"))
        s = rl_fail(RL_EINVAL, "%s is a %s checkpoint, not a policy", o->policy_path, ckpt_meta_kind(&pinfo.meta));
    if (!s && pinfo.tok_id[0] && strcmp(pinfo.tok_id, tid))
        s = rl_fail(RL_EINVAL, "%s was trained with another tokenizer; pass the right --tokenizer", o->policy_path);
    if (!s && pinfo.cfg.V != tok_vocab_size(c.tok))
        s = rl_fail(RL_EINVAL, "the tokenizer has %d ids, the policy %d", tok_vocab_size(c.tok), pinfo.cfg.V);
    if (!s) {
        s = ppo_prompts_load(&c.pr, o->prompts_path, c.tok, o->chat, pinfo.cfg.maxT - 1);
        have_pr = !s;
    }
    if (!s) {
        int maxp = 0;
        for (int i = 0; i < c.pr.n; i++) if (c.pr.len[i] > maxp) maxp = c.pr.len[i];
        c.Tp = ppo_plan_T(&pinfo.cfg, maxp, o->max_new);
        int N = 0;
        for (int i = 0; i < o->n_n; i++) if (o->n_list[i] > N) N = o->n_list[i];
        c.max_rows = N > o->ppo_samples ? N : o->ppo_samples;
        int end = tok_special(c.tok, "<|end|>"), sep = tok_special(c.tok, "<|endoftext|>");
        if (sep < 0) sep = tok_special(c.tok, "<|bos|>");
        c.stops[0] = end;
        c.stops[1] = sep;
        s = ckpt_load(o->policy_path, &ref, o->ppo_samples, c.Tp, NULL, NULL, 0, 0, 0, 0, 0, NULL);
        have_ref = !s;
    }
    reward_agg agg = {o->aggregate, o->alpha};
    if (!s && (s = reward_open(&c.proxy, o->proxy_spec, c.tok, c.max_rows, c.Tp, &agg)) != RL_OK) s = fail_prefix(s, "proxy reward: ");
    if (!s && (s = reward_open(&c.gold, o->gold_spec, c.tok, c.max_rows, c.Tp, &agg)) != RL_OK) s = fail_prefix(s, "gold reward: ");
    if (!s) {
        s = sampler_ws_init(&ws, &ref, c.max_rows, o->max_new);
        have_ws = !s;
    }
    if (!s) {
        size_t KT = (size_t)o->ppo_samples * c.Tp;
        c.rp = malloc(sizeof(int *) * (size_t)c.max_rows);
        c.rl = malloc(sizeof(int) * (size_t)c.max_rows);
        c.items = malloc(sizeof(reward_item) * (size_t)c.max_rows);
        c.sp = malloc(sizeof(float) * (size_t)c.max_rows);
        c.sg = malloc(sizeof(float) * (size_t)c.max_rows);
        c.inputs = malloc(sizeof(int) * KT);
        c.targets = malloc(sizeof(int) * KT);
        c.lp_pol = malloc(sizeof(float) * KT);
        c.seq_kl = malloc(sizeof(double) * (size_t)o->ppo_samples);
        if (!c.rp || !c.rl || !c.items || !c.sp || !c.sg || !c.inputs || !c.targets || !c.lp_pol || !c.seq_kl)
            s = rl_fail(RL_ENOMEM, "out of memory");
    }
    if (!s) {
        r->n_prompts = c.pr.n;
        if (!o->quiet)
            rl_info("study: %d prompts; proxy %s; gold %s", c.pr.n, reward_describe(c.proxy), reward_describe(c.gold));
    }
    if (!s && o->n_n > 0) s = run_bon(&c, &ref, &ws, r);
    if (!s && want_ppo) s = run_ppo(&c, &ref, &ws, tid, r);
    r->seconds = rl_now() - t0;
    if (!s && o->out_dir) s = write_outputs(o, r);
    free(c.rp); free(c.rl); free(c.items); free(c.sp); free(c.sg);
    free(c.inputs); free(c.targets); free(c.lp_pol); free(c.seq_kl);
    reward_close(c.proxy);
    reward_close(c.gold);
    if (have_ws) sampler_ws_free(&ws);
    if (have_ref) gpt_free(&ref);
    if (have_pr) ppo_prompts_free(&c.pr);
    tok_free(c.tok);
    return s;
}

void study_result_free(study_result *r) {
    free(r->bon);
    free(r->ppo);
    memset(r, 0, sizeof *r);
}

/* ---- output ---------------------------------------------------------------------- */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *row_json(const study_row *row) {
    json_t *o = json_object();
    json_object_set_new(o, "label", json_string(row->label));
    json_object_set_new(o, "x", json_integer(row->x));
    json_object_set_new(o, "kl", num(row->kl));
    json_object_set_new(o, "d", num(row->d));
    json_object_set_new(o, "proxy", num(row->proxy));
    json_object_set_new(o, "gold", num(row->gold));
    json_object_set_new(o, "proxy_se", num(row->proxy_se));
    json_object_set_new(o, "gold_se", num(row->gold_se));
    json_object_set_new(o, "samples", json_integer(row->samples));
    return o;
}

static json_t *fit_json(const study_fit *f) {
    json_t *o = json_object();
    json_object_set_new(o, "form", json_string(f->form == DIAG_GAO_BON ? "bon" : "rl"));
    json_object_set_new(o, "ok", json_boolean(f->ok));
    json_object_set_new(o, "base", num(f->base));
    if (!f->ok) {
        json_object_set_new(o, "error", json_string(f->error));
        return o;
    }
    const diag_gao_fit *g = &f->fit;
    int peak = isfinite(g->d_star);
    json_object_set_new(o, "n", json_integer(g->n));
    json_object_set_new(o, "alpha", num(g->alpha));
    json_object_set_new(o, "beta", num(g->beta));
    json_object_set_new(o, "r2", num(g->r2));
    json_object_set_new(o, "rmse", num(g->rmse));
    json_object_set_new(o, "d_star", peak ? num(g->d_star) : json_null());
    json_object_set_new(o, "kl_star", peak ? num(g->d_star * g->d_star) : json_null());
    json_object_set_new(o, "r_star", peak ? num(g->r_star) : json_null());
    json_object_set_new(o, "value_star", peak ? num(f->base + g->r_star) : json_null());
    return o;
}

static json_t *method_json(const study_row *rows, int n, const study_fit *fg, const study_fit *fp) {
    json_t *o = json_object(), *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, row_json(&rows[i]));
    json_object_set_new(o, "rows", a);
    json_object_set_new(o, "fit_gold", fit_json(fg));
    json_object_set_new(o, "fit_proxy", fit_json(fp));
    return o;
}

char *study_result_json(const study_opts *o, const study_result *r) {
    json_t *j = json_object();
    json_object_set_new(j, "format", json_string("rlhf-study-overoptimization"));
    json_object_set_new(j, "version", json_integer(1));
    json_object_set_new(j, "policy", json_string(o->policy_path ? o->policy_path : ""));
    json_object_set_new(j, "proxy", json_string(o->proxy_spec ? o->proxy_spec : ""));
    json_object_set_new(j, "gold", json_string(o->gold_spec ? o->gold_spec : ""));
    json_object_set_new(j, "prompts", json_integer(r->n_prompts));
    json_object_set_new(j, "max_new", json_integer(o->max_new));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "estimator", json_string(o->estimator == STUDY_BON_PREFIX ? "prefix" : "subsets"));
    json_object_set_new(j, "bon_samples_per_prompt", json_integer(r->bon_N));
    json_object_set_new(j, "ppo_samples_per_prompt", json_integer(r->n_ppo ? o->ppo_samples : 0));
    json_object_set_new(j, "bon", r->n_bon ? method_json(r->bon, r->n_bon, &r->bon_gold, &r->bon_proxy) : json_null());
    json_object_set_new(j, "ppo", r->n_ppo ? method_json(r->ppo, r->n_ppo, &r->ppo_gold, &r->ppo_proxy) : json_null());
    json_object_set_new(j, "seconds", num(r->seconds));
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    return s;
}

static void csv_field(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
    fputc('"', f);
}

static void csv_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.10g", v);
    else fputs(",", f);
}

static void csv_rows(FILE *f, const char *method, const study_row *rows, int n) {
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s,", method);
        csv_field(f, rows[i].label);
        fprintf(f, ",%lld", rows[i].x);
        csv_num(f, rows[i].kl); csv_num(f, rows[i].d); csv_num(f, rows[i].proxy); csv_num(f, rows[i].gold);
        csv_num(f, rows[i].proxy_se); csv_num(f, rows[i].gold_se);
        fprintf(f, ",%ld\n", rows[i].samples);
    }
}

static rl_status write_outputs(const study_opts *o, const study_result *r) {
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) return rl_fail(RL_EIO, "cannot create %s: %s", o->out_dir, strerror(errno));
    size_t L = strlen(o->out_dir) + 16;
    char *path = malloc(L);
    char *js = study_result_json(o, r);
    if (!path || !js) { free(path); free(js); return rl_fail(RL_ENOMEM, "out of memory writing the study"); }
    snprintf(path, L, "%s/study.json", o->out_dir);
    size_t n = strlen(js);
    js[n] = '\n'; /* replaces the NUL: written with its length */
    rl_status s = rl_atomic_write(path, js, n + 1);
    free(js);
    if (!s) {
        snprintf(path, L, "%s/study.csv", o->out_dir);
        rl_atomic_file af;
        s = rl_atomic_open(&af, path);
        if (!s) {
            fputs("method,label,x,kl,d,proxy,gold,proxy_se,gold_se,samples\n", af.fp);
            csv_rows(af.fp, "bon", r->bon, r->n_bon);
            csv_rows(af.fp, "ppo", r->ppo, r->n_ppo);
            if (ferror(af.fp)) { rl_atomic_abort(&af); s = rl_fail(RL_EIO, "cannot write %s", path); }
            else s = rl_atomic_commit(&af);
        }
    }
    free(path);
    return s;
}

static void print_fit(FILE *f, const char *what, const study_fit *ft) {
    if (!ft->ok) { fprintf(f, "  %-6s no fit: %s\n", what, ft->error); return; }
    const diag_gao_fit *g = &ft->fit;
    fprintf(f, "  %-6s alpha %.4g  beta %.4g  r2 %.3f  ", what, g->alpha, g->beta, g->r2);
    if (isfinite(g->d_star))
        fprintf(f, "peak d* %.4g (KL* %.4g nats) at %.4g\n", g->d_star, g->d_star * g->d_star, ft->base + g->r_star);
    else fprintf(f, "no peak (beta <= 0: still rising)\n");
}

static void print_rows(FILE *f, const study_row *rows, int n, int bon) {
    fprintf(f, "  %-28s %9s %7s %10s %10s %10s\n", bon ? "n" : "checkpoint (step)", "KL", "d", "proxy", "gold", "gold_se");
    for (int i = 0; i < n; i++) {
        char lab[64];
        if (bon) snprintf(lab, sizeof lab, "%lld", rows[i].x);
        else {
            const char *b = strrchr(rows[i].label, '/');
            b = b ? b + 1 : rows[i].label;
            snprintf(lab, sizeof lab, "%.18s (%lld)", b, rows[i].x);
        }
        fprintf(f, "  %-28s %9.4f %7.4f %10.4f %10.4f %10.4f\n", lab, rows[i].kl, rows[i].d, rows[i].proxy, rows[i].gold, rows[i].gold_se);
    }
}

void study_result_print(const study_result *r, FILE *f) {
    if (r->n_bon) {
        fprintf(f, "best-of-n (%d prompts, %d samples each; KL = log n - (n-1)/n):\n", r->n_prompts, r->bon_N);
        print_rows(f, r->bon, r->n_bon, 1);
        fprintf(f, " fits R(d) = d(alpha - beta d), R = reward - reward at n = 1:\n");
        print_fit(f, "gold", &r->bon_gold);
        print_fit(f, "proxy", &r->bon_proxy);
    }
    if (r->n_ppo) {
        fprintf(f, "PPO checkpoints (%d prompts; KL measured to the reference):\n", r->n_prompts);
        print_rows(f, r->ppo, r->n_ppo, 0);
        fprintf(f, " fits R(d) = d(alpha - beta ln d), R = reward - reward of the reference:\n");
        print_fit(f, "gold", &r->ppo_gold);
        print_fit(f, "proxy", &r->ppo_proxy);
    }
}
