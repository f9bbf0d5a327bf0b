/* reliability.c — see reliability.h. */
#include "reliability.h"
#include "weights.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int align_relw_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "accuracy")) return ALIGN_RELW_ACCURACY;
    if (!strcmp(s, "logodds")) return ALIGN_RELW_LOGODDS;
    return -1;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Sorted distinct annotator ids of the records (pointers into the set). */
static rl_status annotators(const fb_set *s, const char ***out, int *n) {
    const char **a = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *a);
    if (!a) return rl_fail(RL_ENOMEM, "out of memory");
    for (int64_t i = 0; i < s->n; i++) a[i] = s->records[i].annotator;
    qsort(a, (size_t)s->n, sizeof *a, cmp_cstr);
    int k = 0;
    for (int64_t i = 0; i < s->n; i++)
        if (k == 0 || strcmp(a[k - 1], a[i])) a[k++] = a[i];
    *out = a;
    *n = k;
    return RL_OK;
}

static int find_sorted(const char *const *v, int n, const char *key) {
    const char *const *p = bsearch(&key, v, (size_t)n, sizeof *v, cmp_cstr);
    return p ? (int)(p - v) : -1;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}

typedef struct { uint64_t key; int obs; } key_obs;
static int cmp_key(const void *a, const void *b) {
    uint64_t x = ((const key_obs *)a)->key, y = ((const key_obs *)b)->key;
    if (x != y) return x < y ? -1 : 1;
    return ((const key_obs *)a)->obs - ((const key_obs *)b)->obs;
}

void align_reliability_free(align_reliability *r) {
    if (!r) return;
    free(r->annot); free(r->n_labels); free(r->reliability); free(r->weight);
    memset(r, 0, sizeof *r);
}

rl_status align_pair_reliability(const fb_set *s, const align_ds_opts *ds, align_relw how, int min_labels,
                                 align_reliability *out) {
    memset(out, 0, sizeof *out);
    if (min_labels < 1) return rl_fail(RL_EINVAL, "reliability: min_labels must be >= 1");
    if (how != ALIGN_RELW_ACCURACY && how != ALIGN_RELW_LOGODDS) return rl_fail(RL_EINVAL, "reliability: unknown weight rule");
    fb_pair *pairs = NULL;
    int64_t np = 0;
    RL_TRY(fb_to_pairs(s, &pairs, &np));
    rl_status st = annotators(s, &out->annot, &out->n_annot);
    int nA = out->n_annot, n_obs = 0;
    int *item = NULL, *ann = NULL, *label = NULL, *maj = NULL;
    key_obs *ko = NULL;
    align_ds_result res;
    memset(&res, 0, sizeof res);
    int have_res = 0;
    if (st) goto done;
    out->n_labels = calloc((size_t)nA, sizeof *out->n_labels);
    out->reliability = malloc((size_t)nA * sizeof *out->reliability);
    out->weight = malloc((size_t)nA * sizeof *out->weight);
    size_t cap = (size_t)(np > 0 ? np : 1);
    item = malloc(cap * sizeof *item); ann = malloc(cap * sizeof *ann); label = malloc(cap * sizeof *label);
    ko = malloc(cap * sizeof *ko);
    if (!out->n_labels || !out->reliability || !out->weight || !item || !ann || !label || !ko) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    for (int64_t i = 0; i < np; i++) {
        const fb_pair *p = &pairs[i];
        int c = strcmp(p->chosen, p->rejected);
        if (p->tie || c == 0) continue; /* no direction */
        const char *lo = c < 0 ? p->chosen : p->rejected, *hi = c < 0 ? p->rejected : p->chosen;
        uint64_t ph = fb_prompt_hash(p->turns, p->n_turns);
        uint64_t h = fnv(1469598103934665603ull, &ph, sizeof ph);
        h = fnv(h, lo, strlen(lo) + 1);
        h = fnv(h, hi, strlen(hi) + 1);
        ko[n_obs] = (key_obs){h, n_obs};
        ann[n_obs] = find_sorted(out->annot, nA, p->annotator);
        label[n_obs] = c < 0 ? 0 : 1; /* 0: the response sorting first won */
        out->n_labels[ann[n_obs]]++;
        n_obs++;
    }
    if (n_obs == 0) { st = rl_fail(RL_EINVAL, "reliability: no strict comparison (pairs judged A or B, or rankings with distinct ranks) in the records"); goto done; }
    qsort(ko, (size_t)n_obs, sizeof *ko, cmp_key);
    int n_items = 0;
    for (int i = 0; i < n_obs; i++) {
        if (i > 0 && ko[i].key != ko[i - 1].key) n_items++;
        item[ko[i].obs] = n_items;
        if (i > 0 && ko[i].key == ko[i - 1].key && (i < 2 || ko[i - 1].key != ko[i - 2].key)) out->n_multi++;
    }
    n_items++;
    out->n_items = n_items;
    out->n_obs = n_obs;
    for (int a = 0; a < nA; a++) out->n_estimated += out->n_labels[a] >= min_labels;
    if (out->n_estimated == 0) { st = rl_fail(RL_EINVAL, "reliability: no annotator has %d or more strict comparisons (lower --min-labels)", min_labels); goto done; }
    align_ds_opts d = ds ? *ds : align_ds_defaults();
    if ((st = align_dawid_skene(n_obs, item, ann, label, n_items, nA, 2, NULL, &d, &res))) goto done;
    have_res = 1;
    out->iterations = res.iterations;
    out->converged = res.converged;
    maj = malloc((size_t)n_items * sizeof *maj);
    if (!maj) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    if ((st = align_majority_vote(n_obs, item, label, n_items, 2, maj))) goto done;
    int same = 0;
    for (int i = 0; i < n_items; i++) same += maj[i] == res.label[i];
    out->agree_majority = (double)same / n_items;
    double sum = 0;
    for (int a = 0; a < nA; a++) {
        if (out->n_labels[a] < min_labels) { out->reliability[a] = NAN; continue; }
        double r = res.reliability[a];
        out->reliability[a] = r;
        double w = r;
        if (how == ALIGN_RELW_LOGODDS) {
            double rc = r < 0.5 ? 0.5 : r > 0.99 ? 0.99 : r;
            w = log(rc / (1 - rc));
        }
        out->weight[a] = w;
        sum += w;
    }
    if (!(sum > 0)) { st = rl_fail(RL_EINVAL, "reliability: every estimated annotator is at chance (all weights 0); use --weight accuracy"); goto done; }
    for (int a = 0; a < nA; a++) out->weight[a] = out->n_labels[a] < min_labels ? 1.0 : out->weight[a] * out->n_estimated / sum;
done:
    if (have_res) align_ds_free(&res);
    free(pairs); free(item); free(ann); free(label); free(ko); free(maj);
    if (st) align_reliability_free(out);
    return st;
}

rl_status align_apply_annotator_weights(fb_set *s, const align_id_weights *w, double missing_weight, align_apply_report *rep) {
    align_apply_report r;
    memset(&r, 0, sizeof r);
    r.n_records = s->n;
    if (s->n == 0) { if (rep) *rep = r; return RL_OK; }
    const char **ann = NULL;
    int nA = 0;
    RL_TRY(annotators(s, &ann, &nA));
    r.n_annot = nA;
    /* the file's ids sorted with their row, for lookups (cmp_cstr reads the first field) */
    typedef struct { const char *id; int row; } id_row;
    id_row *fid = malloc((size_t)w->n * sizeof *fid);
    double *aw = malloc((size_t)nA * sizeof *aw), *ex = malloc((size_t)s->n * sizeof *ex);
    int *ai = malloc((size_t)s->n * sizeof *ai), *used = calloc((size_t)w->n, sizeof *used);
    unsigned char *miss = calloc((size_t)nA, 1);
    rl_status st = RL_OK;
    if (!fid || !aw || !ex || !ai || !used || !miss) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    for (int i = 0; i < w->n; i++) fid[i] = (id_row){w->id[i], i};
    qsort(fid, (size_t)w->n, sizeof *fid, cmp_cstr);
    const char *first_missing = NULL;
    for (int a = 0; a < nA; a++) {
        const id_row *k = bsearch(&ann[a], fid, (size_t)w->n, sizeof *fid, cmp_cstr);
        if (!k) {
            r.n_annot_missing++;
            miss[a] = 1;
            if (!first_missing) first_missing = ann[a];
            aw[a] = missing_weight;
            continue;
        }
        used[k->row] = 1;
        aw[a] = w->w[k->row];
    }
    for (int i = 0; i < w->n; i++) r.n_unused += !used[i];
    for (int64_t i = 0; i < s->n; i++) {
        ai[i] = find_sorted(ann, nA, s->records[i].annotator);
        r.n_records_missing += miss[ai[i]];
    }
    if (r.n_annot_missing && !(missing_weight >= 0)) {
        st = rl_fail(RL_EINVAL, "annotator '%s' has no weight in the weights file (%d annotators missing, %lld records); "
                     "add them, or give --missing-weight W", first_missing, r.n_annot_missing, (long long)r.n_records_missing);
        goto done;
    }
    if ((st = align_example_weights((int)s->n, ai, nA, aw, NULL, ex))) {
        st = rl_fail(RL_EINVAL, "annotator weights: every record would get weight 0 (all its annotators have weight 0)");
        goto done;
    }
    for (int64_t i = 0; i < s->n; i++) {
        double nw = s->records[i].weight * ex[i];
        if ((st = fb_set_weight(s, i, nw))) goto done;
        ex[i] = nw;
        if (i == 0 || nw < r.w_min) r.w_min = nw;
        if (i == 0 || nw > r.w_max) r.w_max = nw;
    }
    r.ess = align_kish_ess((int)s->n, ex);
    if (!(r.ess > 0)) st = rl_fail(RL_EINVAL, "annotator weights: every record has weight 0");
done:
    free(ann); free(fid); free(aw); free(ex); free(ai); free(used); free(miss);
    if (!st && rep) *rep = r;
    return st;
}
