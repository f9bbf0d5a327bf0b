/* demo.c — rendering, batched answering, log replay and the HTML report of `rlhf demo`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "demo.h"
#include "../base/binfile.h"
#include "../base/log.h"
#include "../diag/diag.h"
#include "../eval/eval.h"

/* ---- small helpers ---------------------------------------------------------- */

/* Reads a whole text file (NUL-terminated, malloc'd). */
static rl_status read_all(const char *path, char **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(RL_ENOTFOUND, "cannot open %s", path);
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (!b) { fclose(f); return rl_fail(RL_ENOMEM, "out of memory reading %s", path); }
    size_t r;
    while ((r = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len < 2) {
            char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); fclose(f); return rl_fail(RL_ENOMEM, "out of memory reading %s", path); }
            b = nb; cap *= 2;
        }
    }
    fclose(f);
    b[len] = 0;
    *out = b;
    if (n) *n = len;
    return RL_OK;
}

/* Calls fn(ctx, obj, lineno) for every JSON object line of a file; blank lines skipped. */
typedef rl_status (*line_fn)(void *ctx, json_t *obj, long lineno);
static rl_status each_json_line(const char *path, line_fn fn, void *ctx, int strict) {
    char *buf = NULL;
    RL_TRY(read_all(path, &buf, NULL));
    rl_status st = RL_OK;
    long lineno = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!line[strspn(line, " \t\r")]) continue;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            if (!strict) continue;
            st = rl_fail(RL_EFORMAT, "%s:%ld: not a JSON object", path, lineno);
            break;
        }
        st = fn(ctx, o, lineno);
        json_decref(o);
        if (st) break;
    }
    free(buf);
    return st;
}

/* ---- pretraining text ------------------------------------------------------- */

typedef struct { FILE *f; long n; const char *path; } render_ctx;

static rl_status render_line(void *vc, json_t *o, long lineno) {
    render_ctx *c = vc;
    const char *p = json_string_value(json_object_get(o, "prompt"));
    const char *r = json_string_value(json_object_get(o, "response"));
    if (!p || !r) return rl_fail(RL_EFORMAT, "%s:%ld: a demonstration needs \"prompt\" and \"response\" strings", c->path, lineno);
    fprintf(c->f, "user: %s\nassistant: %s\n\n", p, r);
    c->n++;
    return RL_OK;
}

rl_status demo_render_text(const char *sft_jsonl, const char *out_txt, long *n) {
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    if (!f) return rl_fail(RL_ENOMEM, "out of memory");
    render_ctx c = {f, 0, sft_jsonl};
    rl_status st = each_json_line(sft_jsonl, render_line, &c, 1);
    fclose(f);
    if (!st && c.n == 0) st = rl_fail(RL_EFORMAT, "%s has no demonstrations", sft_jsonl);
    if (!st) st = rl_atomic_write(out_txt, mem, len);
    free(mem);
    if (n) *n = c.n;
    return st;
}

/* ---- answering prompts ------------------------------------------------------ */

typedef struct { char **v; int n, cap, max; const char *path; } prompt_list;

static rl_status collect_prompt(void *vc, json_t *o, long lineno) {
    prompt_list *l = vc;
    if (l->max && l->n >= l->max) return RL_OK;
    const char *p = json_string_value(json_object_get(o, "prompt"));
    if (!p) return rl_fail(RL_EFORMAT, "%s:%ld: no \"prompt\" string", l->path, lineno);
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 256;
        char **nv = realloc(l->v, sizeof(char *) * (size_t)nc);
        if (!nv) return rl_fail(RL_ENOMEM, "out of memory");
        l->v = nv; l->cap = nc;
    }
    l->v[l->n++] = strdup(p);
    return RL_OK;
}

static void write_pair(FILE *f, const char *prompt, const char *resp) {
    int n1 = rl_json_escape(NULL, 0, prompt) + 1, n2 = rl_json_escape(NULL, 0, resp) + 1;
    char *a = malloc((size_t)n1), *b = malloc((size_t)n2);
    rl_json_escape(a, n1, prompt);
    rl_json_escape(b, n2, resp);
    fprintf(f, "{\"prompt\":%s,\"response\":%s}\n", a, b);
    free(a);
    free(b);
}

rl_status demo_generate(const demo_gen_opts *o, const char *prompts_jsonl, const char *out_jsonl, long *n_out) {
    prompt_list pl = {0};
    pl.max = o->max_prompts;
    pl.path = prompts_jsonl;
    eval_answers ans = {0};
    char *mem = NULL;
    size_t memlen = 0;
    rl_status st = each_json_line(prompts_jsonl, collect_prompt, &pl, 1);
    /* the batched answering is rlhf eval's (src/eval): chat template, <|end|> stop, a seed per batch */
    eval_gen_opts eo = {o->model, o->tokenizer, o->k, o->temperature, o->max_new, o->batch, o->seed};
    if (!st) st = eval_generate(&eo, pl.v, pl.n, &ans);
    FILE *f = st ? NULL : open_memstream(&mem, &memlen);
    if (!st && !f) st = rl_fail(RL_ENOMEM, "out of memory");
    if (f) {
        for (int i = 0; i < ans.n; i++) write_pair(f, ans.prompt[i], ans.response[i]);
        fclose(f);
        st = rl_atomic_write(out_jsonl, mem, memlen);
        if (!st && n_out) *n_out = ans.n;
    }
    free(mem);
    eval_answers_free(&ans);
    for (int i = 0; i < pl.n; i++) free(pl.v[i]);
    free(pl.v);
    return st;
}

/* ---- logs ------------------------------------------------------------------- */

typedef struct { const char *xkey, *key; double *x, *y; int n, max, idx; } series_ctx;

static rl_status series_line(void *vc, json_t *o, long lineno) {
    (void)lineno;
    series_ctx *c = vc;
    json_t *v = json_object_get(o, c->key);
    if (!json_is_number(v)) return RL_OK;
    double x = c->idx++;
    if (c->xkey) {
        json_t *xv = json_object_get(o, c->xkey);
        if (!json_is_number(xv)) return RL_OK;
        x = json_number_value(xv);
    }
    if (c->n < c->max) { c->x[c->n] = x; c->y[c->n] = json_number_value(v); c->n++; }
    return RL_OK;
}

int demo_log_series(const char *path, const char *xkey, const char *key, double *x, double *y, int max) {
    if (!path || !path[0]) return 0;
    series_ctx c = {xkey, key, x, y, 0, max, 0};
    if (each_json_line(path, series_line, &c, 0)) return 0;
    return c.n;
}

double demo_log_last(const char *path, const char *key) {
    enum { MAXP = 100000 };
    double *x = malloc(sizeof(double) * MAXP), *y = malloc(sizeof(double) * MAXP);
    int n = demo_log_series(path, NULL, key, x, y, MAXP);
    double v = n ? y[n - 1] : NAN;
    free(x);
    free(y);
    return v;
}

int demo_log_trend(const char *path, const char *key, double *first, double *last) {
    return demo_log_trend_until(path, key, 0, first, last);
}

/* Values of key (rows with "step" <= until when until > 0) into y; returns the count. */
static int series_until(const char *path, const char *key, long long until, double *x, double *y, int max) {
    if (until <= 0) return demo_log_series(path, NULL, key, x, y, max);
    int n = demo_log_series(path, "step", key, x, y, max), k = 0;
    for (int i = 0; i < n; i++)
        if (x[i] <= (double)until) { x[k] = x[i]; y[k] = y[i]; k++; }
    return k;
}

double demo_log_at(const char *path, const char *key, long long until) {
    enum { MAXP = 100000 };
    double *x = malloc(sizeof(double) * MAXP), *y = malloc(sizeof(double) * MAXP);
    int n = (x && y) ? series_until(path, key, until, x, y, MAXP) : 0;
    double v = n ? y[n - 1] : NAN;
    free(x);
    free(y);
    return v;
}

rl_status demo_split_lines(const char *path, int keep, const char *rest_path) {
    char *buf = NULL;
    size_t len = 0;
    RL_TRY(read_all(path, &buf, &len));
    size_t end = 0;
    for (int k = 0; k < keep && end < len; k++) {
        char *nl = memchr(buf + end, '\n', len - end);
        end = nl ? (size_t)(nl - buf) + 1 : len;
    }
    rl_status st = rl_atomic_write(rest_path, buf + end, len - end);
    if (!st) st = rl_atomic_write(path, buf, end);
    free(buf);
    return st;
}

typedef struct { const char *key; int found; } has_ctx;
static rl_status has_line(void *vc, json_t *o, long lineno) {
    (void)lineno;
    has_ctx *c = vc;
    if (json_object_get(o, c->key)) c->found = 1;
    return RL_OK;
}

int demo_log_has(const char *path, const char *key) {
    if (!path || !path[0]) return 0;
    has_ctx c = {key, 0};
    if (each_json_line(path, has_line, &c, 0)) return 0;
    return c.found;
}

rl_status demo_head_lines(const char *src, const char *dst, int n) {
    char *buf = NULL;
    size_t len = 0;
    RL_TRY(read_all(src, &buf, &len));
    size_t end = 0;
    for (int k = 0; k < n && end < len; k++) {
        char *nl = memchr(buf + end, '\n', len - end);
        end = nl ? (size_t)(nl - buf) + 1 : len;
    }
    rl_status st = rl_atomic_write(dst, buf, end);
    free(buf);
    return st;
}

int demo_log_trend_until(const char *path, const char *key, long long until, double *first, double *last) {
    enum { MAXP = 100000 };
    *first = *last = NAN;
    double *x = malloc(sizeof(double) * MAXP), *y = malloc(sizeof(double) * MAXP);
    int n = (x && y) ? series_until(path, key, until, x, y, MAXP) : 0;
    if (n > 0) {
        int k = n / 4;
        if (k < 1) k = 1;
        if (k > 5) k = 5;
        double a = 0, b = 0;
        for (int i = 0; i < k; i++) { a += y[i]; b += y[n - k + i]; }
        *first = a / k;
        *last = b / k;
    }
    free(x);
    free(y);
    return n;
}

typedef struct { diag_monitor *dm; demo_warn_info *wi; int64_t row; int replay; } warn_ctx;

static double num(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void add_name(demo_warn_info *wi, const char *nm) {
    if (!nm || !nm[0]) return;
    size_t nl = strlen(nm), used = strlen(wi->names);
    for (const char *p = wi->names; (p = strstr(p, nm)); p += nl)
        if ((p == wi->names || p[-1] == ',') && (p[nl] == 0 || p[nl] == ',')) return;
    if (used + nl + 2 < sizeof wi->names) snprintf(wi->names + used, sizeof wi->names - used, "%s%s", used ? "," : "", nm);
}

static void note_warning(demo_warn_info *wi, long long step, const char *monitor) {
    if (wi->first_step < 0 || (step >= 0 && step < wi->first_step)) {
        wi->first_step = step;
        snprintf(wi->first, sizeof wi->first, "%s", monitor ? monitor : "?");
    }
    add_name(wi, monitor);
}

/* First pass: does the trainer run the monitors itself? */
static rl_status scan_line(void *vc, json_t *o, long lineno) {
    (void)lineno;
    warn_ctx *c = vc;
    const char *ev = json_string_value(json_object_get(o, "event"));
    if (ev && !strcmp(ev, "warning")) {
        c->wi->live++;
        c->wi->monitored = 1;
        double st = num(o, "step");
        note_warning(c->wi, isnan(st) ? -1 : (long long)st, json_string_value(json_object_get(o, "monitor")));
        return RL_OK;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) if (!strncmp(k, "diag_", 5)) { c->wi->monitored = 1; break; }
    return RL_OK;
}

static rl_status replay_line(void *vc, json_t *o, long lineno) {
    (void)lineno;
    warn_ctx *c = vc;
    if (json_object_get(o, "event")) return RL_OK;
    double step = num(o, "step");
    diag_step s;
    diag_step_clear(&s);
    s.kl = num(o, "kl");
    if (isnan(s.kl)) s.kl = num(o, "val_kl_sampled");
    s.proxy = num(o, "reward_mean");
    s.gold = num(o, "gold");
    s.sycophancy = num(o, "sycophancy");
    s.entropy = num(o, "entropy");
    s.length = num(o, "resp_len");
    s.chosen_logp = num(o, "logp_chosen");
    if (isnan(s.chosen_logp)) s.chosen_logp = num(o, "logp_desirable");
    s.rejected_logp = num(o, "logp_rejected");
    if (isnan(s.rejected_logp)) s.rejected_logp = num(o, "logp_undesirable");
    if (isnan(s.kl) && isnan(s.proxy) && isnan(s.chosen_logp)) return RL_OK;
    int64_t at = isnan(step) ? c->row : (int64_t)step;
    int before = c->dm->nwarnings;
    diag_update(c->dm, at, &s);
    for (int i = before; i < c->dm->nwarnings; i++) note_warning(c->wi, (long long)c->dm->warnings[i].step, diag_name(c->dm->warnings[i].monitor));
    c->row++;
    return RL_OK;
}

int demo_log_warnings(const char *path, char *names, int names_n) {
    demo_warn_info wi;
    demo_log_warn_info(path, &wi);
    if (names && names_n > 0) {
        names[0] = 0;
        int used = 0;
        char list[sizeof wi.names];
        memcpy(list, wi.names, sizeof list);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int need = (int)strlen(t) + (used ? 1 : 0);
            if (used + need >= names_n) continue;
            used += snprintf(names + used, (size_t)(names_n - used), "%s%s", used ? "," : "", t);
        }
    }
    return wi.total;
}

void demo_log_warn_info(const char *path, demo_warn_info *wi) {
    memset(wi, 0, sizeof *wi);
    wi->first_step = -1;
    if (!path || !path[0]) return;
    warn_ctx c = {NULL, wi, 0, 0};
    if (each_json_line(path, scan_line, &c, 0)) return;
    if (!wi->monitored) {
        diag_monitor *dm = malloc(sizeof *dm);
        if (!dm) return;
        diag_config cfg;
        diag_config_default(&cfg);
        cfg.print = 0;
        diag_init(dm, &cfg, NULL);
        c.dm = dm;
        if (!each_json_line(path, replay_line, &c, 0)) wi->replayed = dm->nwarnings_total;
        free(dm);
    }
    wi->total = wi->live + wi->replayed;
}

/* ---- table ------------------------------------------------------------------ */

static void fmt_num(char *b, size_t n, double v, const char *f) {
    if (isnan(v)) snprintf(b, n, "-");
    else snprintf(b, n, f, v);
}

void demo_print_table(FILE *f, const demo_row *rows, int nrows, const sim_pop_config *pc) {
    fprintf(f, "%-24s %8s", "method", "gold acc");
    for (int g = 0; g < pc->ngroups; g++) fprintf(f, " %9.9s", pc->groups[g].name);
    for (int g = 0; g < pc->ngroups; g++) { char h[16]; snprintf(h, sizeof h, "win:%s", pc->groups[g].name); fprintf(f, " %11.11s", h); }
    fprintf(f, " %7s %7s", "sat.gap", "win.gap");
    fprintf(f, " %8s %8s %7s %5s\n", "sycoph.", "proxy", "KL", "warn");
    for (int i = 0; i < nrows; i++) {
        const demo_row *r = &rows[i];
        if (!r->ran) { fprintf(f, "%-24s skipped: %s\n", r->method, r->note); continue; }
        char a[16], s[16], p[16], k[16];
        fmt_num(a, sizeof a, 100 * r->eval.heldout_accuracy, "%.1f%%");
        fprintf(f, "%-24s %8s", r->method, a);
        for (int g = 0; g < pc->ngroups; g++) { char b[16]; fmt_num(b, sizeof b, r->eval.satisfaction[g], "%.3f"); fprintf(f, " %9s", b); }
        /* win rate of each group's gold satisfaction against the SFT answers (the sft row is the reference: -) */
        for (int g = 0; g < pc->ngroups; g++) { char b[16]; fmt_num(b, sizeof b, strcmp(r->tag, "sft") ? 100 * r->vs_sft.win[g] : NAN, "%.1f%%"); fprintf(f, " %11s", b); }
        { char b1[16], b2[16]; fmt_num(b1, sizeof b1, r->vs_sft.gap_satisfaction, "%.3f"); fmt_num(b2, sizeof b2, strcmp(r->tag, "sft") ? 100 * r->vs_sft.gap_win : NAN, "%.1f"); fprintf(f, " %7s %7s", b1, b2); }
        fmt_num(s, sizeof s, 100 * r->eval.sycophancy, "%.1f%%");
        fmt_num(p, sizeof p, r->proxy, "%.3f");
        fmt_num(k, sizeof k, r->kl, "%.3f");
        fprintf(f, " %8s %8s %7s %5d%s%s%s\n", s, p, k, r->warn.total, r->warn.names[0] ? " " : "", r->warn.names,
                r->warn.replayed ? " (replayed)" : "");
    }
}

/* ---- report ----------------------------------------------------------------- */

static void html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define NCOLORS 8

typedef struct { const double *x, *y; int n; const char *label; int points; int color1; /* 0 = by position, k = COLORS[k-1] */ } svg_series;

/* A line chart (or scatter when points) with axes, ticks and a legend. */
static void svg_chart(FILE *f, const char *title, const char *xl, const char *yl, const svg_series *s, int ns) {
    const double W = 520, H = 300, L = 60, R = 150, T = 30, B = 45;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j])) continue;
            if (s[i].x[j] < x0) x0 = s[i].x[j];
            if (s[i].x[j] > x1) x1 = s[i].x[j];
            if (s[i].y[j] < y0) y0 = s[i].y[j];
            if (s[i].y[j] > y1) y1 = s[i].y[j];
        }
    fprintf(f, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" role=\"img\">\n", W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", L);
    html_esc(f, title);
    fputs("</text>\n", f);
    if (!isfinite(x0)) {
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no data</text></svg></figure>\n", L, H / 2);
        return;
    }
    if (x1 - x0 < 1e-12) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    double pad = 0.05 * (y1 - y0);
    y0 -= pad; y1 += pad;
    double pw = W - L - R, ph = H - T - B;
#define PX(v) (L + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (T + (1 - ((v) - y0) / (y1 - y0)) * ph)
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n", L, T, pw, ph);
    for (int k = 0; k <= 4; k++) {
        double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"middle\">%.3g</text>\n", PX(xv), T + ph + 14, xv);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g</text>\n", L - 4, PY(yv) + 3, yv);
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, L + pw, PY(yv), PY(yv));
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\">", L + pw / 2, H - 8);
    html_esc(f, xl);
    fprintf(f, "</text>\n<text x=\"12\" y=\"%.0f\" font-size=\"11\" transform=\"rotate(-90 12 %.0f)\" text-anchor=\"middle\">", T + ph / 2, T + ph / 2);
    html_esc(f, yl);
    fputs("</text>\n", f);
    for (int i = 0; i < ns; i++) {
        const char *c = s[i].color1 > 0 ? COLORS[(s[i].color1 - 1) % NCOLORS] : COLORS[i % NCOLORS];
        if (s[i].points || s[i].n <= 3) { /* a line of one or two points would not show */
            for (int j = 0; j < s[i].n; j++)
                if (isfinite(s[i].x[j]) && isfinite(s[i].y[j]))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", PX(s[i].x[j]), PY(s[i].y[j]), c);
        } else {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", c);
            for (int j = 0; j < s[i].n; j++)
                if (isfinite(s[i].x[j]) && isfinite(s[i].y[j])) fprintf(f, "%.1f,%.1f ", PX(s[i].x[j]), PY(s[i].y[j]));
            fputs("\"/>\n", f);
        }
        fprintf(f, "<rect x=\"%.0f\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%d\" font-size=\"11\">",
                W - R + 10, (int)T + 16 * i, c, W - R + 24, (int)T + 16 * i + 9);
        html_esc(f, s[i].label);
        fputs("</text>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg></figure>\n", f);
}

/* Grouped bars: one group of bars per method, one bar per population group. */
static void svg_bars(FILE *f, const char *title, const demo_row *rows, int nrows, const sim_pop_config *pc) {
    int n = 0;
    for (int i = 0; i < nrows; i++) n += rows[i].ran;
    const double H = 300, L = 50, T = 30, B = 70, bw = 16;
    double W = L + 40 + n * (bw * pc->ngroups + 24) + 120;
    double ph = H - T - B;
    fprintf(f, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" role=\"img\">\n", W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", L);
    html_esc(f, title);
    fputs("</text>\n", f);
    for (int k = 0; k <= 4; k++) {
        double y = T + ph * (1 - k / 4.0);
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%.0f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.2f</text>\n",
                L, W - 120, y, y, L - 4, y + 3, k / 4.0);
    }
    double x = L + 20;
    for (int i = 0; i < nrows; i++) {
        if (!rows[i].ran) continue;
        for (int g = 0; g < pc->ngroups; g++) {
            double v = rows[i].eval.satisfaction[g];
            if (!isfinite(v)) v = 0;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\" fill=\"%s\"><title>%s %s: %.3f</title></rect>\n",
                    x + g * bw, T + ph * (1 - v), bw - 2, ph * v, COLORS[g % NCOLORS], rows[i].method, pc->groups[g].name, v);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" transform=\"rotate(30 %.1f %.0f)\">", x, T + ph + 14, x, T + ph + 14);
        html_esc(f, rows[i].method);
        fputs("</text>\n", f);
        x += bw * pc->ngroups + 24;
    }
    for (int g = 0; g < pc->ngroups; g++) {
        fprintf(f, "<rect x=\"%.0f\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%d\" font-size=\"11\">group ",
                W - 110, (int)T + 16 * g, COLORS[g % NCOLORS], W - 96, (int)T + 16 * g + 9);
        html_esc(f, pc->groups[g].name);
        fputs("</text>\n", f);
    }
    fputs("</svg></figure>\n", f);
}

#define MAXPTS 4096

/* study.json of `rlhf study overoptimization`: for best-of-n and the PPO
 * checkpoints, gold and proxy against d = sqrt(KL) (points) with the fitted
 * Gao et al. curves (lines; value = base + R(d)) and a table of the fits. */
static void study_section(FILE *f, const char *path) {
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    fputs("<h2 id=\"study\">Over-optimisation study: gold and proxy against &radic;KL, with Gao et al. fits</h2>\n", f);
    if (!j) { fputs("<p>study.json could not be read.</p>\n", f); return; }
    fputs("<p><code>rlhf study overoptimization</code>: best-of-n samples of the SFT model (KL = log n &minus; (n&minus;1)/n) and "
          "checkpoints along the unmitigated PPO run (KL measured on samples), each scored by the proxy (the fooled reward model) "
          "and the gold truth, on held-out prompts. Lines: the fitted forms of Gao, Schulman &amp; Hilton 2022, "
          "best-of-n d(&alpha;&minus;&beta;d), RL d(&alpha;&minus;&beta; ln d), added to the value at d = 0.</p>\n", f);
    static const char *methods[][2] = {{"bon", "best-of-n"}, {"ppo", "PPO checkpoints"}};
    enum { NP = 256, NC = 48 };
    double *buf = malloc(sizeof(double) * (6 * NP + 4 * NC));
    if (!buf) { json_decref(j); return; }
    fputs("<table id=\"study-table\"><tr><th>method</th><th>reward</th><th>points</th><th>&alpha;</th><th>&beta;</th><th>r&sup2;</th>"
          "<th>predicted peak &radic;KL</th><th>KL there</th><th>value there</th></tr>\n", f);
    for (int m = 0; m < 2; m++) {
        json_t *mo = json_object_get(j, methods[m][0]);
        if (!json_is_object(mo)) continue;
        static const char *fits[2][2] = {{"fit_gold", "gold"}, {"fit_proxy", "proxy"}};
        for (int q = 0; q < 2; q++) {
            json_t *ft = json_object_get(mo, fits[q][0]);
            fprintf(f, "<tr><td>%s</td><td>%s</td>", methods[m][1], fits[q][1]);
            if (!json_is_object(ft) || !json_is_true(json_object_get(ft, "ok"))) {
                const char *e = json_string_value(json_object_get(ft, "error"));
                fputs("<td colspan=\"7\" class=\"skip\">no fit", f);
                if (e) { fputs(": ", f); html_esc(f, e); }
                fputs("</td></tr>\n", f);
                continue;
            }
            fprintf(f, "<td>%lld</td>", (long long)json_integer_value(json_object_get(ft, "n")));
            static const char *keys[] = {"alpha", "beta", "r2", "d_star", "kl_star", "value_star"};
            for (int k = 0; k < 6; k++) {
                json_t *v = json_object_get(ft, keys[k]);
                if (json_is_number(v)) fprintf(f, "<td>%.4g</td>", json_number_value(v));
                else fputs("<td>-</td>", f);
            }
            fputs("</tr>\n", f);
        }
    }
    fputs("</table>\n", f);
    for (int m = 0; m < 2; m++) {
        json_t *mo = json_object_get(j, methods[m][0]);
        json_t *rows = json_object_get(mo, "rows");
        if (!json_is_array(rows)) continue;
        double *d = buf, *g = buf + NP, *p = buf + 2 * NP, *dg = buf + 3 * NP, *dp = buf + 4 * NP, *pp = buf + 5 * NP;
        int ng = 0, npx = 0;
        size_t i;
        json_t *r;
        double dmax = 0;
        json_array_foreach(rows, i, r) {
            double dv = json_number_value(json_object_get(r, "d"));
            json_t *gv = json_object_get(r, "gold"), *pv = json_object_get(r, "proxy");
            if (!json_is_number(json_object_get(r, "d"))) continue;
            if (dv > dmax) dmax = dv;
            if (json_is_number(gv) && ng < NP) { dg[ng] = dv; g[ng++] = json_number_value(gv); }
            if (json_is_number(pv) && npx < NP) { dp[npx] = dv; pp[npx++] = json_number_value(pv); }
        }
        (void)d; (void)p;
        svg_series ser[4];
        int ns = 0;
        char lab[4][48];
        double *cx = buf + 6 * NP, *cy[2] = {buf + 6 * NP + NC, buf + 6 * NP + 2 * NC};
        for (int k = 0; k < NC; k++) cx[k] = dmax * 1.15 * k / (NC - 1);
        static const char *fits[2] = {"fit_gold", "fit_proxy"};
        for (int q = 0; q < 2; q++) {
            snprintf(lab[2 * q], sizeof lab[0], "%s (measured)", q ? "proxy" : "gold");
            ser[ns++] = (svg_series){q ? dp : dg, q ? pp : g, q ? npx : ng, lab[2 * q], 1, q ? 2 : 1};
            json_t *ft = json_object_get(mo, fits[q]);
            if (!json_is_object(ft) || !json_is_true(json_object_get(ft, "ok")) || dmax <= 0) continue;
            const char *form = json_string_value(json_object_get(ft, "form"));
            diag_gao_form fm = form && !strcmp(form, "bon") ? DIAG_GAO_BON : DIAG_GAO_RL;
            double base = json_number_value(json_object_get(ft, "base")), al = json_number_value(json_object_get(ft, "alpha")),
                   be = json_number_value(json_object_get(ft, "beta"));
            for (int k = 0; k < NC; k++) cy[q][k] = base + diag_gao_eval(fm, al, be, cx[k]);
            snprintf(lab[2 * q + 1], sizeof lab[0], "%s fit", q ? "proxy" : "gold");
            ser[ns++] = (svg_series){cx, cy[q], NC, lab[2 * q + 1], 0, q ? 2 : 1};
        }
        char title[96];
        snprintf(title, sizeof title, "%s: gold and proxy vs sqrt(KL)", methods[m][1]);
        svg_chart(f, title, "sqrt(KL)", "reward (gold: share correct)", ser, ns);
    }
    free(buf);
    json_decref(j);
}

rl_status demo_write_report(const char *path, const demo_row *rows, int nrows, const demo_stage *stages, int nstages,
                            const sim_pop_config *pc, const char *serve_cmd, const demo_check *checks, int nchecks,
                            const char *study_json) {
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    if (!f) return rl_fail(RL_ENOMEM, "out of memory");
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rlhf.c demo report</title>\n"
          "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
          "td:first-child,th:first-child{text-align:left}#results-table td:last-child{max-width:14em;text-align:left}figure{display:inline-block;margin:0.5em}"
          "code{background:#f4f4f4;padding:1px 4px}.skip{color:#888}.pass{color:#1a7f37;font-weight:bold}"
          ".fail{color:#c62828;font-weight:bold}#checks-table td{text-align:left;vertical-align:top}</style></head><body>\n", f);
    fputs("<h1>rlhf.c demo: evaluators can be fooled</h1>\n"
          "<p>A calculator world whose truth is known (docs/sim.md). Simulated evaluators often do not check the sum; "
          "they believe the carry-free sum, agree with the user, or trust a confident tone. Every number below is the gold "
          "evaluation (<code>rlhf sim eval</code>) of each model's greedy answers to held-out prompts.</p>\n", f);

    int npass = 0;
    for (int i = 0; i < nchecks; i++) npass += checks[i].pass;
    fprintf(f, "<h2 id=\"checks\">Acceptance checks: %d of %d passed</h2>\n"
               "<p>Computed by the demo from its own measurements below (issue 8, &ldquo;what must be true&rdquo;). "
               "A failed check is shown with its numbers.</p>\n<table id=\"checks-table\"><tr><th>check</th><th>result</th>"
               "<th>what must hold</th><th>measured</th></tr>\n", npass, nchecks);
    for (int i = 0; i < nchecks; i++) {
        fprintf(f, "<tr data-check=\"%s\" data-pass=\"%d\"><td>(%s) ", checks[i].name, checks[i].pass, checks[i].id);
        html_esc(f, checks[i].name);
        fprintf(f, "</td><td class=\"%s\">%s</td><td>", checks[i].pass ? "pass" : "fail", checks[i].pass ? "PASS" : "FAIL");
        html_esc(f, checks[i].claim);
        fputs("</td><td>", f);
        html_esc(f, checks[i].detail);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);

    fputs("<h2 id=\"results\">Results</h2>\n<table id=\"results-table\"><tr><th>method</th><th>held-out gold accuracy</th>", f);
    for (int g = 0; g < pc->ngroups; g++) { fputs("<th>satisfaction ", f); html_esc(f, pc->groups[g].name); fputs("</th>", f); }
    fputs("<th>worst group</th>", f);
    for (int g = 0; g < pc->ngroups; g++) { fputs("<th>win vs SFT ", f); html_esc(f, pc->groups[g].name); fputs("</th>", f); }
    fputs("<th>satisfaction gap</th><th>win-rate gap</th><th>sycophancy</th><th>proxy reward</th><th>KL</th><th>warnings</th></tr>\n", f);
    for (int i = 0; i < nrows; i++) {
        const demo_row *r = &rows[i];
        fputs("<tr><td>", f);
        html_esc(f, r->method);
        fputs("</td>", f);
        if (!r->ran) {
            fprintf(f, "<td class=\"skip\" colspan=\"%d\">skipped: ", 2 * pc->ngroups + 8);
            html_esc(f, r->note);
            fputs("</td></tr>\n", f);
            continue;
        }
        fprintf(f, "<td data-acc=\"%.6f\">%.1f%%</td>", r->eval.heldout_accuracy, 100 * r->eval.heldout_accuracy);
        for (int g = 0; g < pc->ngroups; g++) fprintf(f, "<td>%.3f</td>", r->eval.satisfaction[g]);
        fprintf(f, "<td>%.3f</td>", r->eval.min_satisfaction);
        for (int g = 0; g < pc->ngroups; g++)
            if (strcmp(r->tag, "sft")) fprintf(f, "<td>%.1f%%</td>", 100 * r->vs_sft.win[g]); else fputs("<td>-</td>", f);
        fprintf(f, "<td>%.3f</td>", r->vs_sft.gap_satisfaction);
        if (strcmp(r->tag, "sft")) fprintf(f, "<td>%.1f</td>", 100 * r->vs_sft.gap_win); else fputs("<td>-</td>", f);
        if (isnan(r->eval.sycophancy)) fputs("<td>-</td>", f); else fprintf(f, "<td data-syc=\"%.6f\">%.1f%%</td>", r->eval.sycophancy, 100 * r->eval.sycophancy);
        if (isnan(r->proxy)) fputs("<td>-</td>", f); else fprintf(f, "<td>%.3f</td>", r->proxy);
        if (isnan(r->kl)) fputs("<td>-</td>", f); else fprintf(f, "<td>%.3f</td>", r->kl);
        fprintf(f, "<td>%d", r->warn.total);
        if (r->warn.names[0]) { fputs(" (", f); html_esc(f, r->warn.names); fputs(r->warn.replayed ? "; replayed)" : ")", f); }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<p>Satisfaction of a group = correct &times; that group's utility for the answer's style "
          "(1 favourite, 1&minus;strength/2 middle, 1&minus;strength last). Win vs SFT: the share of held-out prompts where "
          "the method's answer satisfies the group more than the SFT model's (ties count one half); the gaps are best "
          "minus worst group (satisfaction; win rate in points). KL: the trainer's last estimate of "
          "KL(policy&nbsp;||&nbsp;SFT). Warnings: the reward-hacking monitors (src/diag), as the trainer raised them while training, or "
          "(marked <em>replayed</em>) replayed over its log when the trainer does not run them itself.</p>\n", f);

    /* training curves */
    fputs("<h2 id=\"curves\">Training curves</h2>\n", f);
    double *xs = malloc(sizeof(double) * MAXPTS * 2 * 8), *ys = malloc(sizeof(double) * MAXPTS * 2 * 8);
    {
        static const char *keys[][2] = {{"loss", "loss"}, {"reward_mean", "proxy reward (mean)"}, {"kl", "KL to the SFT model"},
                                        {"gold", "gold during RL (share correct)"}, {"sycophancy", "sycophancy during RL"}};
        for (int k = 0; k < 5; k++) {
            svg_series s[8];
            int ns = 0;
            for (int i = 0; i < nrows && ns < 8; i++) {
                if (!rows[i].ran || !rows[i].log[0]) continue;
                double *x = xs + (size_t)ns * MAXPTS, *y = ys + (size_t)ns * MAXPTS;
                int n = demo_log_series(rows[i].log, "step", keys[k][0], x, y, MAXPTS);
                if (n == 0) continue;
                s[ns++] = (svg_series){x, y, n, rows[i].method, 0, 0};
            }
            if (ns == 0 && k >= 3) continue; /* logged only by trainers with --gold */
            char title[96];
            snprintf(title, sizeof title, "%s by step", keys[k][1]);
            svg_chart(f, title, "step", keys[k][1], s, ns);
        }
    }

    /* gold vs proxy against sqrt(KL) */
    fputs("<h2 id=\"overopt\">Gold and proxy against &radic;KL</h2>\n"
          "<p>Each point is a trained policy (the SFT model at &radic;KL = 0): gold held-out accuracy and the "
          "proxy reward it reached. Proxy rising while gold falls is over-optimisation of a fooled reward.</p>\n", f);
    {
        double gx[16], gy[16];
        int ng = 0;
        for (int i = 0; i < nrows && ng < 16; i++) {
            if (!rows[i].ran) continue;
            double kl = !strcmp(rows[i].method, "sft") ? 0 : rows[i].kl;
            if (!isfinite(kl)) continue;
            double d = sqrt(kl > 0 ? kl : 0);
            gx[ng] = d; gy[ng] = rows[i].eval.heldout_accuracy; ng++;
        }
        svg_series s1[1] = {{gx, gy, ng, "gold accuracy", 1, 0}};
        svg_chart(f, "gold accuracy vs sqrt(KL)", "sqrt(KL)", "held-out gold accuracy", s1, 1);
        svg_series s2[8];
        int ns = 0;
        for (int i = 0; i < nrows && ns < 8; i++) {
            if (!rows[i].ran || !rows[i].log[0]) continue;
            double *x = xs + (size_t)ns * MAXPTS, *y = ys + (size_t)ns * MAXPTS;
            double *kx = xs + (size_t)(8 + ns) * MAXPTS, *ky = ys + (size_t)(8 + ns) * MAXPTS;
            int n1 = demo_log_series(rows[i].log, "step", "reward_mean", x, y, MAXPTS);
            int n2 = demo_log_series(rows[i].log, "step", "kl", kx, ky, MAXPTS);
            int n = n1 < n2 ? n1 : n2;
            if (n == 0) continue;
            for (int j = 0; j < n; j++) x[j] = sqrt(ky[j] > 0 ? ky[j] : 0);
            s2[ns++] = (svg_series){x, y, n, rows[i].method, 1, 0}; /* points: KL is not monotone in the step */
        }
        svg_chart(f, "proxy reward vs sqrt(KL) during RL", "sqrt(KL)", "proxy reward", s2, ns);
        /* held-out gold accuracy of the unmitigated run's snapshots, and where the first warning came */
        for (int i = 0; i < nrows; i++) {
            const demo_row *r = &rows[i];
            if (!r->ran || r->role != DEMO_ROLE_UNMITIGATED || !r->heldout_log[0]) continue;
            double *hx = xs, *hy = ys;
            int hn = demo_log_series(r->heldout_log, "step", "heldout_accuracy", hx, hy, MAXPTS);
            if (hn == 0) break;
            svg_series sh[2] = {{hx, hy, hn, "held-out gold accuracy", 0, 1}};
            int nsh = 1;
            double wx[1], wy[1];
            if (r->warn.first_step >= 0) {
                wx[0] = (double)r->warn.first_step;
                wy[0] = hy[0];
                for (int j = 0; j < hn; j++) if (hx[j] <= wx[0]) wy[0] = hy[j]; /* the last snapshot before it */
                sh[nsh++] = (svg_series){wx, wy, 1, "first monitor warning", 1, 2};
            }
            char title[96];
            snprintf(title, sizeof title, "%s: held-out gold along the run", r->method);
            svg_chart(f, title, "PPO iteration", "held-out gold accuracy", sh, nsh);
            break;
        }
    }
    free(xs);
    free(ys);

    if (study_json && study_json[0]) study_section(f, study_json);

    fputs("<h2 id=\"groups\">Per-group outcomes</h2>\n", f);
    {
        const demo_row *ut = NULL, *mm = NULL;
        for (int i = 0; i < nrows; i++) {
            if (rows[i].ran && rows[i].role == DEMO_ROLE_UTILITARIAN && !ut) ut = &rows[i];
            if (rows[i].ran && rows[i].role == DEMO_ROLE_MAXIMIN && !mm) mm = &rows[i];
        }
        fputs("<p>The same two group reward models (one trained on each evaluator group's judgements), combined by the mean "
              "(utilitarian) or by the minimum (maximin). Gold satisfaction of each group on the held-out prompts:</p>\n"
              "<table id=\"groups-table\"><tr><th>aggregation</th>", f);
        for (int g = 0; g < pc->ngroups; g++) { fputs("<th>", f); html_esc(f, pc->groups[g].name); fputs("</th>", f); }
        fputs("<th>worst group</th><th>population-weighted</th><th>gold accuracy</th></tr>\n", f);
        const demo_row *pair[2] = {ut, mm};
        const char *label[2] = {"utilitarian (mean)", "maximin (min)"};
        for (int k = 0; k < 2; k++) {
            fprintf(f, "<tr><td>%s</td>", label[k]);
            if (!pair[k]) { fprintf(f, "<td class=\"skip\" colspan=\"%d\">did not run</td></tr>\n", pc->ngroups + 3); continue; }
            for (int g = 0; g < pc->ngroups; g++) fprintf(f, "<td>%.3f</td>", pair[k]->eval.satisfaction[g]);
            fprintf(f, "<td>%.3f</td><td>%.3f</td><td>%.1f%%</td></tr>\n", pair[k]->eval.min_satisfaction, pair[k]->eval.pop_satisfaction,
                    100 * pair[k]->eval.heldout_accuracy);
        }
        fputs("</table>\n", f);
    }
    svg_bars(f, "satisfaction by group (gold)", rows, nrows, pc);

    fputs("<h2 id=\"stages\">Stages</h2>\n<table id=\"stages-table\"><tr><th>stage</th><th>seconds</th><th>CPU seconds</th><th>status</th></tr>\n", f);
    for (int i = 0; i < nstages; i++) {
        fputs("<tr><td>", f);
        html_esc(f, stages[i].name);
        fprintf(f, "</td><td>%.1f</td><td>%.1f</td><td>", stages[i].seconds, stages[i].cpu_seconds);
        if (stages[i].rc < 0) { fputs("skipped: ", f); html_esc(f, stages[i].note); }
        else if (stages[i].rc == 0) fputs("ok", f);
        else { fprintf(f, "failed (exit %d) ", stages[i].rc); html_esc(f, stages[i].note); }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<h2 id=\"serve\">Try it</h2>\n<p><code>", f);
    html_esc(f, serve_cmd);
    fputs("</code></p>\n</body></html>\n", f);
    fclose(f);
    rl_status st = rl_atomic_write(path, mem, len);
    free(mem);
    return st;
}
