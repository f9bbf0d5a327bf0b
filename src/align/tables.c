/* tables.c — see tables.h. */
#include "tables.h"
#include "consensus.h"
#include "csv.h"
#include "../base/binfile.h"
#include "../base/flags.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++) if (*s < '0' || *s > '9') return 0;
    return 1;
}

void align_polis_free(align_polis *p) {
    if (!p) return;
    if (p->text) for (int s = 0; s < p->S; s++) free(p->text[s]);
    free(p->text); free(p->votes); free(p->group); free(p->comment_id); free(p->moderated);
    memset(p, 0, sizeof *p);
}

static rl_status load_comments(align_polis *p, const char *path) {
    csv_reader *r;
    RL_TRY(csv_open(&r, path));
    int nf; char **f;
    rl_status st = csv_next(r, &nf, &f);
    if (st == RL_OK && nf < 0) st = rl_fail(RL_EFORMAT, "%s is empty; expected a Polis comments.csv with a header", path);
    int cid = -1, cmod = -1, cbody = -1, ncols = 0;
    if (st == RL_OK) {
        ncols = nf;
        cid = csv_find(nf, f, "comment-id"); cmod = csv_find(nf, f, "moderated"); cbody = csv_find(nf, f, "comment-body");
        if (cid < 0 || cmod < 0 || cbody < 0)
            st = rl_fail(RL_EFORMAT, "%s:1: missing column %s; expected a Polis comments.csv (comment-id, moderated, comment-body)",
                         path, cid < 0 ? "comment-id" : cmod < 0 ? "moderated" : "comment-body");
    }
    int maxid = 0;
    for (int s = 0; s < p->S; s++) if (p->comment_id[s] > maxid) maxid = p->comment_id[s];
    int *col = NULL;
    if (st == RL_OK) {
        col = malloc(((size_t)maxid + 1) * sizeof *col);
        if (!col) st = rl_fail(RL_ENOMEM, "out of memory");
        else {
            for (int i = 0; i <= maxid; i++) col[i] = -1;
            for (int s = 0; s < p->S; s++) col[p->comment_id[s]] = s;
        }
    }
    while (st == RL_OK && (st = csv_next(r, &nf, &f)) == RL_OK && nf >= 0) {
        if (nf != ncols) { st = rl_fail(RL_EFORMAT, "%s:%d: %d fields, the header has %d", path, csv_line(r), nf, ncols); break; }
        long long id, mod;
        if (!rl_parse_int(f[cid], &id) || id < 0) { st = rl_fail(RL_EFORMAT, "%s:%d: comment-id '%s' is not a non-negative integer", path, csv_line(r), f[cid]); break; }
        if (!rl_parse_int(f[cmod], &mod) || mod < -1 || mod > 1) { st = rl_fail(RL_EFORMAT, "%s:%d: moderated '%s' is not -1, 0 or 1", path, csv_line(r), f[cmod]); break; }
        if (id > maxid || col[id] < 0) continue; /* a comment nobody could vote on */
        int s = col[id];
        free(p->text[s]);
        p->text[s] = strdup(f[cbody]);
        if (!p->text[s]) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        p->moderated[s] = (int)mod;
    }
    free(col);
    csv_close(r);
    return st;
}

rl_status align_polis_load(const char *votes_csv, const char *comments_csv, align_polis *p) {
    memset(p, 0, sizeof *p);
    csv_reader *r;
    RL_TRY(csv_open(&r, votes_csv));
    int nf; char **f;
    rl_status st = csv_next(r, &nf, &f);
    if (st == RL_OK && nf < 0) st = rl_fail(RL_EFORMAT, "%s is empty; expected a Polis participants-votes.csv with a header", votes_csv);
    int cgroup = -1, ncols = 0, *vcol = NULL;
    if (st == RL_OK) {
        ncols = nf;
        cgroup = csv_find(nf, f, "group-id");
        if (cgroup < 0) st = rl_fail(RL_EFORMAT, "%s:1: no group-id column; expected a Polis participants-votes.csv (participant, group-id, ..., one column per comment id)", votes_csv);
    }
    if (st == RL_OK) {
        vcol = malloc((size_t)nf * sizeof *vcol);
        p->comment_id = malloc((size_t)nf * sizeof *p->comment_id);
        if (!vcol || !p->comment_id) st = rl_fail(RL_ENOMEM, "out of memory");
        for (int i = 0; st == RL_OK && i < nf; i++)
            if (all_digits(f[i])) {
                long long id;
                if (!rl_parse_int(f[i], &id) || id > 10000000) { st = rl_fail(RL_EFORMAT, "%s:1: comment id '%s' is too large", votes_csv, f[i]); break; }
                vcol[p->S] = i;
                p->comment_id[p->S++] = (int)id;
            }
        if (st == RL_OK && p->S == 0) st = rl_fail(RL_EFORMAT, "%s:1: no comment-id columns (numeric headers) found", votes_csv);
    }
    size_t cap = 0;
    while (st == RL_OK && (st = csv_next(r, &nf, &f)) == RL_OK && nf >= 0) {
        if (nf != ncols) { st = rl_fail(RL_EFORMAT, "%s:%d: %d fields, the header has %d", votes_csv, csv_line(r), nf, ncols); break; }
        if ((size_t)p->P == cap) {
            cap = cap ? cap * 2 : 256;
            signed char *v = realloc(p->votes, cap * p->S);
            int *g = realloc(p->group, cap * sizeof *g);
            if (v) p->votes = v;
            if (g) p->group = g;
            if (!v || !g) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        }
        long long gid = -1;
        if (f[cgroup][0] && (!rl_parse_int(f[cgroup], &gid) || gid < 0 || gid > 1000)) {
            st = rl_fail(RL_EFORMAT, "%s:%d: group-id '%s' is not a group number (0..1000) or empty", votes_csv, csv_line(r), f[cgroup]);
            break;
        }
        p->group[p->P] = (int)gid;
        if (gid + 1 > p->G) p->G = (int)gid + 1;
        signed char *row = p->votes + (size_t)p->P * p->S;
        for (int s = 0; s < p->S; s++) {
            const char *c = f[vcol[s]];
            if (!c[0]) { row[s] = ALIGN_VOTE_NONE; continue; }
            double v;
            if (!rl_parse_double(c, &v) || (v != 1 && v != -1 && v != 0)) {
                st = rl_fail(RL_EFORMAT, "%s:%d: vote '%s' on comment %d is not 1, -1, 0 or empty", votes_csv, csv_line(r), c, p->comment_id[s]);
                break;
            }
            row[s] = (signed char)v;
        }
        p->P++;
    }
    free(vcol);
    csv_close(r);
    if (st == RL_OK && p->P == 0) st = rl_fail(RL_EFORMAT, "%s has no participant rows", votes_csv);
    if (st == RL_OK && p->G == 0) st = rl_fail(RL_EFORMAT, "%s: no participant has a group-id; consensus across groups needs opinion groups", votes_csv);
    if (st == RL_OK) {
        p->text = calloc((size_t)p->S, sizeof *p->text);
        p->moderated = calloc((size_t)p->S, sizeof *p->moderated);
        if (!p->text || !p->moderated) st = rl_fail(RL_ENOMEM, "out of memory");
    }
    if (st == RL_OK && comments_csv) st = load_comments(p, comments_csv);
    if (st != RL_OK) align_polis_free(p);
    return st;
}

/* ---- evaluator tables ----------------------------------------------------- */

void align_table_free(align_table *t) {
    if (!t) return;
    for (int a = 0; a < t->nattr; a++) {
        if (t->cat && t->cat[a]) for (int c = 0; c < t->ncat[a]; c++) free(t->cat[a][c]);
        if (t->cat) free(t->cat[a]);
        if (t->attr) free(t->attr[a]);
    }
    if (t->id) for (int i = 0; i < t->n; i++) free(t->id[i]);
    free(t->attr); free(t->ncat); free(t->cat); free(t->codes); free(t->base); free(t->id);
    memset(t, 0, sizeof *t);
}

/* Category index of `s` in attribute a, adding it if new; -1 on ENOMEM. */
static int intern(align_table *t, int *cap, int a, const char *s) {
    for (int c = 0; c < t->ncat[a]; c++) if (!strcmp(t->cat[a][c], s)) return c;
    if (t->ncat[a] == cap[a]) {
        int nc = cap[a] ? cap[a] * 2 : 8;
        char **p = realloc(t->cat[a], (size_t)nc * sizeof *p);
        if (!p) return -1;
        t->cat[a] = p; cap[a] = nc;
    }
    t->cat[a][t->ncat[a]] = strdup(s);
    if (!t->cat[a][t->ncat[a]]) return -1;
    return t->ncat[a]++;
}

rl_status align_table_load(const char *path, align_table *t) {
    memset(t, 0, sizeof *t);
    csv_reader *r;
    RL_TRY(csv_open(&r, path));
    int nf; char **f;
    rl_status st = csv_next(r, &nf, &f);
    if (st == RL_OK && nf < 0) st = rl_fail(RL_EFORMAT, "%s is empty; expected a header row (id, weight, attribute columns)", path);
    int ncols = 0, cid = -1, cw = -1, *acol = NULL, *catcap = NULL;
    if (st == RL_OK) {
        ncols = nf;
        cid = csv_find(nf, f, "id");
        cw = csv_find(nf, f, "weight");
        t->has_weight = cw >= 0;
        acol = malloc((size_t)nf * sizeof *acol);
        t->attr = calloc((size_t)nf, sizeof *t->attr);
        t->ncat = calloc((size_t)nf, sizeof *t->ncat);
        t->cat = calloc((size_t)nf, sizeof *t->cat);
        catcap = calloc((size_t)nf, sizeof *catcap);
        if (!acol || !t->attr || !t->ncat || !t->cat || !catcap) st = rl_fail(RL_ENOMEM, "out of memory");
        for (int i = 0; st == RL_OK && i < nf; i++) {
            if (i == cid || i == cw) continue;
            for (int j = 0; j < i; j++)
                if (!strcmp(f[i], f[j])) { st = rl_fail(RL_EFORMAT, "%s:1: column '%s' appears twice", path, f[i]); break; }
            if (st != RL_OK) break;
            acol[t->nattr] = i;
            t->attr[t->nattr] = strdup(f[i]);
            if (!t->attr[t->nattr]) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
            t->nattr++;
        }
        if (st == RL_OK && t->nattr == 0) st = rl_fail(RL_EFORMAT, "%s:1: no attribute columns (every column is id or weight)", path);
    }
    size_t cap = 0;
    int *codes_rows = NULL; /* (n, nattr) while reading, transposed at the end */
    while (st == RL_OK && (st = csv_next(r, &nf, &f)) == RL_OK && nf >= 0) {
        if (nf != ncols) { st = rl_fail(RL_EFORMAT, "%s:%d: %d fields, the header has %d", path, csv_line(r), nf, ncols); break; }
        if ((size_t)t->n == cap) {
            cap = cap ? cap * 2 : 256;
            int *c = realloc(codes_rows, cap * t->nattr * sizeof *c);
            double *b = realloc(t->base, cap * sizeof *b);
            char **id = realloc(t->id, cap * sizeof *id);
            if (c) codes_rows = c;
            if (b) t->base = b;
            if (id) t->id = id;
            if (!c || !b || !id) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        }
        int i = t->n;
        double w = 1;
        if (cw >= 0 && (!rl_parse_double(f[cw], &w) || !(w >= 0) || !isfinite(w))) {
            st = rl_fail(RL_EFORMAT, "%s:%d: weight '%s' is not a number >= 0", path, csv_line(r), f[cw]);
            break;
        }
        char idbuf[32];
        snprintf(idbuf, sizeof idbuf, "%d", i + 1);
        t->id[i] = strdup(cid >= 0 ? f[cid] : idbuf);
        if (!t->id[i]) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        t->base[i] = w;
        t->n++;
        for (int a = 0; a < t->nattr; a++) {
            int c = intern(t, catcap, a, f[acol[a]]);
            if (c < 0) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
            codes_rows[(size_t)i * t->nattr + a] = c;
        }
    }
    csv_close(r);
    if (st == RL_OK && t->n == 0) st = rl_fail(RL_EFORMAT, "%s has a header but no evaluator rows", path);
    if (st == RL_OK) {
        t->codes = malloc((size_t)t->n * t->nattr * sizeof *t->codes);
        if (!t->codes) st = rl_fail(RL_ENOMEM, "out of memory");
        else
            for (int i = 0; i < t->n; i++)
                for (int a = 0; a < t->nattr; a++) t->codes[(size_t)a * t->n + i] = codes_rows[(size_t)i * t->nattr + a];
    }
    free(codes_rows); free(acol); free(catcap);
    if (st != RL_OK) align_table_free(t);
    return st;
}

rl_status align_margins_load(const char *path, const align_table *t, double **targets_out, unsigned char *has_target) {
    *targets_out = NULL;
    size_t tot = 0;
    for (int a = 0; a < t->nattr; a++) { tot += (size_t)t->ncat[a]; has_target[a] = 0; }
    if (tot == 0) return rl_fail(RL_EINVAL, "margins: the evaluator table has no categories");
    double *T = malloc(tot * sizeof *T);
    unsigned char *seen = calloc(tot, 1);
    size_t na = t->nattr > 0 ? (size_t)t->nattr : 1;
    double *sum = calloc(na, sizeof *sum);
    if (!T || !seen || !sum) { free(T); free(seen); free(sum); return rl_fail(RL_ENOMEM, "out of memory"); }
    for (size_t j = 0; j < tot; j++) T[j] = 0;
    csv_reader *r;
    rl_status st = csv_open(&r, path);
    if (st != RL_OK) { free(T); free(seen); free(sum); return st; }
    int nf; char **f;
    st = csv_next(r, &nf, &f);
    int ca = -1, cc = -1, cs = -1, ncols = nf;
    if (st == RL_OK && nf < 0) st = rl_fail(RL_EFORMAT, "%s is empty; expected a header attribute,category,share", path);
    if (st == RL_OK) {
        ca = csv_find(nf, f, "attribute"); cc = csv_find(nf, f, "category"); cs = csv_find(nf, f, "share");
        if (ca < 0 || cc < 0 || cs < 0) st = rl_fail(RL_EFORMAT, "%s:1: the header needs the columns attribute,category,share", path);
    }
    while (st == RL_OK && (st = csv_next(r, &nf, &f)) == RL_OK && nf >= 0) {
        if (nf != ncols) { st = rl_fail(RL_EFORMAT, "%s:%d: %d fields, the header has %d", path, csv_line(r), nf, ncols); break; }
        int a = -1;
        for (int k = 0; k < t->nattr; k++) if (!strcmp(t->attr[k], f[ca])) a = k;
        if (a < 0) { st = rl_fail(RL_EFORMAT, "%s:%d: attribute '%s' is not a column of the evaluator data", path, csv_line(r), f[ca]); break; }
        double share;
        if (!rl_parse_double(f[cs], &share) || !(share >= 0) || share > 1) { st = rl_fail(RL_EFORMAT, "%s:%d: share '%s' is not a number in [0, 1]", path, csv_line(r), f[cs]); break; }
        int off = 0;
        for (int k = 0; k < a; k++) off += t->ncat[k];
        int c = -1;
        for (int k = 0; k < t->ncat[a]; k++) if (!strcmp(t->cat[a][k], f[cc])) c = k;
        has_target[a] = 1;
        sum[a] += share;
        if (c < 0) {
            if (share > 0) { st = rl_fail(RL_EFORMAT, "%s:%d: %s = '%s' has target share %g but no evaluator in the data has it; it cannot be weighted up (merge it with a neighbouring category)", path, csv_line(r), f[ca], f[cc], share); break; }
            continue;
        }
        if (seen[off + c]) { st = rl_fail(RL_EFORMAT, "%s:%d: %s = '%s' is given twice", path, csv_line(r), f[ca], f[cc]); break; }
        seen[off + c] = 1;
        T[off + c] = share;
    }
    csv_close(r);
    for (int a = 0, off = 0; st == RL_OK && a < t->nattr; off += t->ncat[a], a++) {
        if (!has_target[a]) continue;
        if (fabs(sum[a] - 1) > 1e-3) { st = rl_fail(RL_EFORMAT, "%s: the shares of attribute '%s' sum to %.6g, not 1", path, t->attr[a], sum[a]); break; }
        for (int c = 0; c < t->ncat[a]; c++)
            if (!seen[off + c]) {
                st = rl_fail(RL_EFORMAT, "%s: attribute '%s' has no share for category '%s' that appears in the data; add a row (a share of 0 drops those evaluators)", path, t->attr[a], t->cat[a][c]);
                break;
            }
    }
    free(seen); free(sum);
    if (st != RL_OK) { free(T); return st; }
    *targets_out = T;
    return RL_OK;
}

/* ---- id,weight files -------------------------------------------------------- */

void align_id_weights_free(align_id_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->id[i]);
    free(w->id);
    free(w->w);
    memset(w, 0, sizeof *w);
}

int align_id_weights_find(const align_id_weights *w, const char *id) {
    for (int i = 0; i < w->n; i++) if (!strcmp(w->id[i], id)) return i;
    return -1;
}

static int cmp_str_idx(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

rl_status align_id_weights_load(const char *path, align_id_weights *out) {
    memset(out, 0, sizeof *out);
    csv_reader *r;
    RL_TRY(csv_open(&r, path));
    int nf; char **f;
    rl_status st = csv_next(r, &nf, &f);
    if (st == RL_OK && nf < 0) st = rl_fail(RL_EFORMAT, "%s is empty; expected a header row 'id,weight'", path);
    int cid = -1, cw = -1, ncols = 0;
    if (st == RL_OK) {
        ncols = nf;
        cid = csv_find(nf, f, "id");
        cw = csv_find(nf, f, "weight");
        if (cid < 0 || cw < 0)
            st = rl_fail(RL_EFORMAT, "%s:1: needs columns 'id' and 'weight' (as written by 'rlhf align report --out')", path);
    }
    size_t cap = 0;
    int *line = NULL;
    while (st == RL_OK && (st = csv_next(r, &nf, &f)) == RL_OK && nf >= 0) {
        if (nf != ncols) { st = rl_fail(RL_EFORMAT, "%s:%d: %d fields, the header has %d", path, csv_line(r), nf, ncols); break; }
        double w;
        if (!f[cid][0]) { st = rl_fail(RL_EFORMAT, "%s:%d: empty id", path, csv_line(r)); break; }
        if (!rl_parse_double(f[cw], &w) || !(w >= 0) || !isfinite(w)) {
            st = rl_fail(RL_EFORMAT, "%s:%d: weight '%s' is not a finite number >= 0", path, csv_line(r), f[cw]);
            break;
        }
        if ((size_t)out->n == cap) {
            cap = cap ? cap * 2 : 256;
            char **id = realloc(out->id, cap * sizeof *id);
            double *ww = realloc(out->w, cap * sizeof *ww);
            int *ln = realloc(line, cap * sizeof *ln);
            if (id) out->id = id;
            if (ww) out->w = ww;
            if (ln) line = ln;
            if (!id || !ww || !ln) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        }
        out->id[out->n] = strdup(f[cid]);
        if (!out->id[out->n]) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
        out->w[out->n] = w;
        line[out->n] = csv_line(r);
        out->n++;
    }
    csv_close(r);
    if (st == RL_OK && out->n == 0) st = rl_fail(RL_EFORMAT, "%s has a header but no rows", path);
    if (st == RL_OK) { /* duplicates: sort a copy of the id pointers */
        char **s = malloc((size_t)out->n * sizeof *s);
        if (!s) st = rl_fail(RL_ENOMEM, "out of memory");
        else {
            memcpy(s, out->id, (size_t)out->n * sizeof *s);
            qsort(s, (size_t)out->n, sizeof *s, cmp_str_idx);
            for (int i = 1; i < out->n; i++)
                if (!strcmp(s[i], s[i - 1])) {
                    int a = -1, b = -1;
                    for (int k = 0; k < out->n; k++)
                        if (!strcmp(out->id[k], s[i])) { if (a < 0) a = k; else if (b < 0) b = k; }
                    st = rl_fail(RL_EFORMAT, "%s:%d: id '%s' appears twice (first on line %d)", path, line[b], s[i], line[a]);
                    break;
                }
            free(s);
        }
    }
    free(line);
    if (st != RL_OK) align_id_weights_free(out);
    return st;
}

rl_status align_id_weights_write(const char *path, int n, const char *const *id, const double *w) {
    rl_atomic_file af;
    RL_TRY(rl_atomic_open(&af, path));
    fprintf(af.fp, "id,weight\n");
    for (int i = 0; i < n; i++) {
        const char *s = id[i];
        if (!strpbrk(s, ",\"\r\n")) fputs(s, af.fp);
        else {
            fputc('"', af.fp);
            for (; *s; s++) { if (*s == '"') fputc('"', af.fp); fputc(*s, af.fp); }
            fputc('"', af.fp);
        }
        fprintf(af.fp, ",%.10g\n", w[i]);
    }
    return rl_atomic_commit(&af);
}
