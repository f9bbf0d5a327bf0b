/* align.c — `rlhf align consensus` and `rlhf align report`: parse flags, load
 * the CSVs (src/align/tables.h), call the library, print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/base/binfile.h"
#include "../src/align/consensus.h"
#include "../src/align/tables.h"
#include "../src/align/weights.h"
#include "../src/align/linbt.h"
#include "../src/align/mixture.h"
#include "../src/data/feedback.h"
#include "../src/train/common.h"
#include "../src/base/check.h"

int cmd_align_consensus(int argc, char **argv) {
    static const char *votes, *comments, *rule, *format;
    static int top, moderated_only;
    static rl_flag flags[] = {
        {"votes", RL_FLAG_STRING, &votes, NULL, 0, 0, NULL, "Polis participants-votes.csv (vote matrix with a group-id column)"},
        {"comments", RL_FLAG_STRING, &comments, "", 0, 0, NULL, "Polis comments.csv (statement text and moderation)"},
        {"rule", RL_FLAG_ENUM, &rule, "product", 0, 0, "product|min|mean", "welfare rule over groups' smoothed agree probabilities (product = Polis group-aware consensus)"},
        {"top", RL_FLAG_INT, &top, "10", 1, 100000, NULL, "statements to list"},
        {"moderated-only", RL_FLAG_BOOL, &moderated_only, "0", 0, 0, NULL, "rank only statements moderated in (needs --comments)"},
        {"format", RL_FLAG_ENUM, &format, "table", 0, 0, "table|tsv", "table for people, tsv for scripts (docs/align.md)"},
    };
    int rc = rl_flags_parse("align consensus",
                            "Rank statements by agreement across opinion groups (Polis group-informed consensus), next to the ranking by raw agree count.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (moderated_only && !comments[0]) {
        fprintf(stderr, "rlhf align consensus: --moderated-only needs --comments (moderation is in comments.csv); see 'rlhf align consensus --help'\n");
        return 2;
    }
    align_polis p;
    if (align_polis_load(votes, comments[0] ? comments : NULL, &p) != RL_OK) {
        fprintf(stderr, "rlhf align consensus: %s\n", rl_error());
        return 1;
    }
    unsigned char *inc = NULL;
    if (moderated_only) {
        inc = rl_xmalloc((size_t)p.S);
        for (int s = 0; s < p.S; s++) inc[s] = p.moderated[s] == 1;
    }
    align_consensus c;
    rl_status st = align_consensus_rank(p.P, p.S, p.votes, p.group, p.G, (align_cons_rule)align_cons_rule_parse(rule), inc, &c);
    if (st != RL_OK) {
        fprintf(stderr, "rlhf align consensus: %s\n", rl_error());
        free(inc); align_polis_free(&p);
        return 1;
    }
    if (c.n_ranked == 0) rl_warn("no statement to rank (is anything moderated in?)");
    align_consensus_print(stdout, &p, &c, rule, top, !strcmp(format, "tsv"));
    align_consensus_free(&c);
    free(inc);
    align_polis_free(&p);
    return 0;
}

/* Writes s as a CSV field (quoted when it holds a comma, quote or newline). */
static void csv_field(FILE *fp, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, fp); return; }
    fputc('"', fp);
    for (; *s; s++) { if (*s == '"') fputc('"', fp); fputc(*s, fp); }
    fputc('"', fp);
}

int cmd_align_report(int argc, char **argv) {
    static const char *data, *target, *out;
    static double cap, tol;
    static int max_iter;
    static rl_flag flags[] = {
        {"data", RL_FLAG_STRING, &data, NULL, 0, 0, NULL, "evaluator CSV: one row per evaluator; id, weight (optional) and attribute columns"},
        {"target", RL_FLAG_STRING, &target, "", 0, 0, NULL, "target population margins CSV: attribute,category,share (rakes when given)"},
        {"cap", RL_FLAG_FLOAT, &cap, "5", 0, 1e6, NULL, "trim weights at this multiple of the mean weight, then re-rake (0 = no cap; else > 1)"},
        {"max-iter", RL_FLAG_INT, &max_iter, "1000", 1, 1000000, NULL, "raking cycles at most"},
        {"tol", RL_FLAG_FLOAT, &tol, "1e-6", 1e-15, 0.5, NULL, "stop when every weighted margin is within tol of its target share"},
        {"out", RL_FLAG_STRING, &out, "", 0, 0, NULL, "write id,weight CSV here (atomically)"},
    };
    int rc = rl_flags_parse("align report",
                            "Who the evaluators are: counts by attribute against target margins, raking weights with a cap, Kish effective sample size.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cap > 0 && cap <= 1) {
        fprintf(stderr, "rlhf align report: --cap %g must be 0 (no cap) or > 1 (a multiple of the mean weight); see 'rlhf align report --help'\n", cap);
        return 2;
    }
    if (out[0] && !target[0]) {
        fprintf(stderr, "rlhf align report: --out needs --target (weights come from raking to the target margins); see 'rlhf align report --help'\n");
        return 2;
    }
    align_table t;
    if (align_table_load(data, &t) != RL_OK) { fprintf(stderr, "rlhf align report: %s\n", rl_error()); return 1; }
    double *T = NULL, *w = NULL;
    unsigned char *has = rl_xcalloc((size_t)t.nattr, 1);
    align_rake_report rep;
    int ret = 0;
    if (target[0]) {
        if (align_margins_load(target, &t, &T, has) != RL_OK) { fprintf(stderr, "rlhf align report: %s\n", rl_error()); ret = 1; goto done; }
        /* Rake over the attributes that have margins. */
        int nv = 0, tot = 0;
        for (int a = 0; a < t.nattr; a++) if (has[a]) { nv++; tot += t.ncat[a]; }
        if (nv == 0) { fprintf(stderr, "rlhf align report: %s gives no margins for any attribute of %s\n", target, data); ret = 1; goto done; }
        int *codes = rl_xmalloc((size_t)nv * t.n * sizeof *codes), *ncat = rl_xmalloc((size_t)nv * sizeof *ncat);
        double *Ts = rl_xmalloc((size_t)tot * sizeof *Ts);
        for (int a = 0, v = 0, off = 0, o2 = 0; a < t.nattr; off += t.ncat[a], a++) {
            if (!has[a]) continue;
            memcpy(codes + (size_t)v * t.n, t.codes + (size_t)a * t.n, (size_t)t.n * sizeof *codes);
            memcpy(Ts + o2, T + off, (size_t)t.ncat[a] * sizeof *Ts);
            ncat[v++] = t.ncat[a];
            o2 += t.ncat[a];
        }
        w = rl_xmalloc((size_t)t.n * sizeof *w);
        align_rake_opts o = {max_iter, tol, cap};
        rl_status st = align_rake(t.n, nv, codes, ncat, Ts, t.base, &o, w, &rep);
        free(codes); free(ncat); free(Ts);
        if (st != RL_OK) { fprintf(stderr, "rlhf align report: %s\n", rl_error()); ret = 1; goto done; }
    }
    align_report_print(stdout, &t, T, has, w, w ? &rep : NULL, cap);
    if (w && !rep.converged)
        rl_warn("raking did not reach the targets within --tol (max error %.3g)\n  a binding --cap or too few --max-iter cycles; the weights are the closest found",
                rep.max_margin_err);
    if (out[0]) {
        rl_atomic_file af;
        if (rl_atomic_open(&af, out) != RL_OK) { fprintf(stderr, "rlhf align report: %s\n", rl_error()); ret = 1; goto done; }
        fprintf(af.fp, "id,weight\n");
        for (int i = 0; i < t.n; i++) { csv_field(af.fp, t.id[i]); fprintf(af.fp, ",%.10g\n", w[i]); }
        if (rl_atomic_commit(&af) != RL_OK) { fprintf(stderr, "rlhf align report: %s\n", rl_error()); ret = 1; goto done; }
        rl_info("wrote %d weights to %s", t.n, out);
    }
done:
    free(T); free(w); free(has);
    align_table_free(&t);
    return ret;
}

/* ---- rlhf align reliability ------------------------------------------------- */
#include <math.h>
#include "../src/align/reliability.h"
#include "../src/train/common.h"

int cmd_align_reliability(int argc, char **argv) {
    static const char *records, *db, *format, *out, *how;
    static int min_labels, max_iter, skip_bad, top;
    static double smoothing;
    static rl_flag flags[] = {
        {"records", RL_FLAG_STRING, &records, "", 0, 0, NULL, "feedback file with pairs/rankings (any import format)"},
        {"db", RL_FLAG_STRING, &db, "", 0, 0, NULL, "feedback database from 'rlhf serve' (instead of --records)"},
        {"format", RL_FLAG_ENUM, &format, "auto", 0, 0, "auto|jsonl|hh|oasst", "format of --records"},
        {"skip-bad", RL_FLAG_BOOL, &skip_bad, "0", 0, 0, NULL, "skip malformed lines (counted) instead of stopping"},
        {"weight", RL_FLAG_ENUM, &how, "accuracy", 0, 0, "accuracy|logodds",
         "reliability -> weight: accuracy (w = r) or logodds (w = log(r/(1-r)), r clamped to [0.5, 0.99]); mean 1"},
        {"min-labels", RL_FLAG_INT, &min_labels, "1", 1, 1000000000, NULL, "annotators with fewer strict comparisons keep weight 1 (not estimated)"},
        {"max-iter", RL_FLAG_INT, &max_iter, "100", 1, 1000000, NULL, "Dawid-Skene EM iterations at most"},
        {"smoothing", RL_FLAG_FLOAT, &smoothing, "0.01", 0, 1e6, NULL, "Dirichlet pseudo-count on every confusion cell"},
        {"top", RL_FLAG_INT, &top, "20", 0, 1000000, NULL, "annotators listed (lowest reliability first; 0 = none)"},
        {"out", RL_FLAG_STRING, &out, "", 0, 0, NULL, "write id,weight CSV here (atomically): 'rlhf rm|dpo|kto --annotator-weights'"},
    };
    int rc = rl_flags_parse("align reliability",
                            "Annotator reliability by Dawid-Skene EM on pairwise choices (each comparison judged by several annotators is one item); "
                            "writes per-annotator weights for the trainers' --annotator-weights.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (!records[0] == !db[0]) {
        fprintf(stderr, "rlhf align reliability: give --records FILE or --db feedback.db (one of them); see 'rlhf align reliability --help'\n");
        return 2;
    }
    fb_set s;
    fb_set_init(&s);
    trn_load_records(&s, db[0] ? db : records, db[0] ? "db" : format, skip_bad, 1);
    align_ds_opts ds = align_ds_defaults();
    ds.max_iter = max_iter;
    ds.smoothing = smoothing;
    align_reliability r;
    if (align_pair_reliability(&s, &ds, (align_relw)align_relw_parse(how), min_labels, &r) != RL_OK) {
        fprintf(stderr, "rlhf align reliability: %s\n", rl_error());
        fb_set_free(&s);
        return 1;
    }
    printf("Dawid-Skene on %d strict comparisons of %d items (%d judged more than once) by %d annotators; "
           "%d iterations%s; DS labels agree with the majority vote on %.1f%% of items\n",
           r.n_obs, r.n_items, r.n_multi, r.n_annot, r.iterations, r.converged ? ", converged" : ", NOT converged",
           100 * r.agree_majority);
    if (r.n_multi == 0)
        rl_warn("no comparison was judged twice: Dawid-Skene has no agreement to learn from and every estimate is the prior");
    if (top > 0) {
        int *ord = rl_xmalloc((size_t)r.n_annot * sizeof *ord), n = 0;
        for (int a = 0; a < r.n_annot; a++) if (!isnan(r.reliability[a])) ord[n++] = a;
        for (int i = 1; i < n; i++) /* insertion sort by reliability, lowest first */
            for (int j = i; j > 0 && r.reliability[ord[j]] < r.reliability[ord[j - 1]]; j--) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
        printf("%-24s %11s %11s %8s\n", "annotator", "comparisons", "reliability", "weight");
        for (int i = 0; i < n && i < top; i++)
            printf("%-24s %11d %11.3f %8.3f\n", r.annot[ord[i]], r.n_labels[ord[i]], r.reliability[ord[i]], r.weight[ord[i]]);
        if (n > top) printf("... %d more\n", n - top);
        if (r.n_annot > r.n_estimated)
            printf("%d annotators with fewer than %d comparisons keep weight 1\n", r.n_annot - r.n_estimated, min_labels);
        free(ord);
    }
    int ret = 0;
    if (out[0]) {
        if (align_id_weights_write(out, r.n_annot, r.annot, r.weight) != RL_OK) { fprintf(stderr, "rlhf align reliability: %s\n", rl_error()); ret = 1; }
        else rl_info("wrote %d weights to %s", r.n_annot, out);
    }
    align_reliability_free(&r);
    fb_set_free(&s);
    return ret;
}

/* ---- align mixture -------------------------------------------------------------- */

/* Value of group `key` of record r, or NULL. */
static const char *group_value(const fb_record *r, const char *key) {
    for (int i = 0; i < r->n_groups; i++)
        if (!strcmp(r->groups[i].key, key)) return r->groups[i].value;
    return NULL;
}

static void print_trunc(FILE *fp, const char *s, int n) {
    int i = 0;
    for (; s[i] && i < n; i++) fputc(s[i] == '\n' || s[i] == '\t' ? ' ' : s[i], fp);
    if (s[i]) fputs("...", fp);
}

/* Distinct values of group `key` over the annotators (first record of each):
 * codes (n_annot, -1 = key absent), returns the number of values; vals (owned
 * by the set) in order of first appearance, at most 64. */
static int key_codes(const fb_set *s, const align_fb_cmps *c, const char *key, int *codes, const char **vals) {
    int nv = 0;
    for (int h = 0; h < c->n_annot; h++) {
        const char *v = group_value(&s->records[c->annot_first[h]], key);
        codes[h] = -1;
        if (!v) continue;
        int j = 0;
        while (j < nv && strcmp(vals[j], v)) j++;
        if (j == nv) { if (nv == 64) continue; vals[nv++] = v; }
        codes[h] = j;
    }
    return nv;
}

static int write_assignments(const char *path, const align_fb_cmps *c, const int *assign) {
    rl_atomic_file af;
    if (rl_atomic_open(&af, path) != RL_OK) return 1;
    fprintf(af.fp, "annotator,cluster\n");
    for (int h = 0; h < c->n_annot; h++) { csv_field(af.fp, c->annot_id[h]); fprintf(af.fp, ",%d\n", assign[h]); }
    return rl_atomic_commit(&af) != RL_OK;
}

/* Every record again, with group `key`=<cluster of its annotator> added (or
 * replaced); annotators without a cluster keep their groups unchanged. */
static int write_records(const char *path, const fb_set *s, const align_fb_cmps *c, const int *assign, const char *key) {
    fb_set out;
    fb_set_init(&out);
    rl_status st = RL_OK;
    fb_kv *kv = NULL;
    int kcap = 0;
    char val[16];
    for (int64_t i = 0; i < s->n && st == RL_OK; i++) {
        fb_record r = s->records[i];
        const char *id = r.annotator;
        int lo = 0, hi = c->n_annot - 1, h = -1;
        while (lo <= hi) { int mid = (lo + hi) / 2, cm = strcmp(c->annot_id[mid], id); if (!cm) { h = mid; break; } if (cm < 0) lo = mid + 1; else hi = mid - 1; }
        if (h >= 0 && assign[h] >= 0) {
            if (r.n_groups + 1 > kcap) { kcap = r.n_groups + 8; kv = realloc(kv, sizeof(fb_kv) * (size_t)kcap); CHECK(kv, "out of memory"); }
            int n = 0;
            for (int j = 0; j < r.n_groups; j++) if (strcmp(r.groups[j].key, key)) kv[n++] = r.groups[j];
            snprintf(val, sizeof val, "%d", assign[h]);
            kv[n++] = (fb_kv){key, val};
            r.groups = kv;
            r.n_groups = n;
        }
        st = fb_set_add(&out, &r);
    }
    if (st == RL_OK) st = fb_export_jsonl(&out, path);
    free(kv);
    fb_set_free(&out);
    return st != RL_OK;
}

int cmd_align_mixture(int argc, char **argv) {
    static const char *records, *db, *format, *out, *out_records, *cluster_key;
    static int K, seeds, restarts, max_iter, skip_bad, ngram_max, buckets, fold, show, max_bytes;
    static long long seed;
    static double l2;
    static rl_flag flags[] = {
        {"records", RL_FLAG_STRING, &records, "", 0, 0, NULL, "feedback file with pairs/rankings (any import format); every record names its annotator"},
        {"db", RL_FLAG_STRING, &db, "", 0, 0, NULL, "feedback database from 'rlhf serve' (instead of --records)"},
        {"format", RL_FLAG_ENUM, &format, "auto", 0, 0, "auto|jsonl|hh|oasst", "format of --records"},
        {"skip-bad", RL_FLAG_BOOL, &skip_bad, "0", 0, 0, NULL, "skip malformed lines instead of stopping"},
        {"k", RL_FLAG_INT, &K, "2", 1, 64, NULL, "clusters (reward models)"},
        {"seeds", RL_FLAG_INT, &seeds, "5", 1, 1000, NULL, "independent runs (seeds seed..seed+N-1) to measure stability; the best log-likelihood is kept"},
        {"restarts", RL_FLAG_INT, &restarts, "5", 1, 1000, NULL, "k-means++ restarts inside each run (best log-likelihood kept)"},
        {"max-iter", RL_FLAG_INT, &max_iter, "50", 1, 100000, NULL, "EM iterations per restart at most"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9e15, NULL, "first seed"},
        {"l2", RL_FLAG_FLOAT, &l2, "1e-3", 1e-9, 1e3, NULL, "L2 penalty of each linear Bradley-Terry reward model"},
        {"ngram-max", RL_FLAG_INT, &ngram_max, "3", 1, 8, NULL, "features: byte n-grams of the response, n = 1..this"},
        {"buckets", RL_FLAG_INT, &buckets, "18", 8, 24, NULL, "features hashed into 2^this buckets"},
        {"max-bytes", RL_FLAG_INT, &max_bytes, "2000", 0, 1000000000, NULL, "features from the first this many bytes of each response (0 = all; bounds memory on long texts)"},
        {"fold-digits", RL_FLAG_BOOL, &fold, "1", 0, 0, NULL, "read every digit as 0 (features see the shape of a response, not its numbers)"},
        {"cluster-key", RL_FLAG_STRING, &cluster_key, "cluster", 0, 0, NULL, "group key written by --out-records ('rlhf rm --group cluster=0')"},
        {"show", RL_FLAG_INT, &show, "2", 0, 100, NULL, "per cluster, list this many responses its model scores highest and lowest"},
        {"out", RL_FLAG_STRING, &out, "", 0, 0, NULL, "write annotator,cluster CSV here (atomically; -1 = no strict comparison)"},
        {"out-records", RL_FLAG_STRING, &out_records, "", 0, 0, NULL, "write every record again (canonical JSONL) with group <cluster-key>=<cluster> added"},
    };
    int rc = rl_flags_parse("align mixture",
                            "Discover groups of annotators without labels: an EM mixture of K reward models (linear Bradley-Terry on hashed "
                            "n-grams of the responses); each annotator goes to the model that best explains their choices (MaxMin-RLHF). "
                            "Reports the groups, their overlap with known groups in the records, and stability across seeds.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (!!records[0] == !!db[0]) {
        fprintf(stderr, "rlhf align mixture: give --records FILE or --db feedback.db (one of them); see 'rlhf align mixture --help'\n");
        return 2;
    }
    if (!cluster_key[0] || strchr(cluster_key, '=')) {
        fprintf(stderr, "rlhf align mixture: --cluster-key must be a non-empty key without '='\n");
        return 2;
    }
    fb_set set;
    fb_set_init(&set);
    trn_load_records(&set, db[0] ? db : records, db[0] ? "db" : format, skip_bad, 0);
    align_linbt_opts lo = align_linbt_defaults();
    lo.l2 = l2; lo.ngram_max = ngram_max; lo.buckets_log2 = buckets; lo.fold_digits = fold; lo.max_bytes = max_bytes;
    if (lo.ngram_min > lo.ngram_max) lo.ngram_min = lo.ngram_max;
    align_linbt m;
    align_fb_cmps c;
    int ret = 0;
    align_mix_result *res = rl_xcalloc((size_t)seeds, sizeof *res);
    memset(&c, 0, sizeof c);
    if (align_linbt_init(&m, K, &lo) != RL_OK || align_linbt_from_feedback(&m, &set, &c) != RL_OK) {
        fprintf(stderr, "rlhf align mixture: %s\n", rl_error());
        ret = 1; goto done;
    }
    rl_info("%d comparisons from %d annotators (%lld tie/both-bad pairs skipped)", c.n_cmp, c.n_annot, (long long)c.n_ties);
    align_mix_model mm = align_linbt_model(&m);
    align_mix_opts mo = {K, max_iter, restarts, (uint64_t)seed};
    align_mix_stability stab;
    if (align_mixture_seeds(&mm, c.annot, c.w, c.n_annot, &mo, seeds, res, &stab) != RL_OK) {
        fprintf(stderr, "rlhf align mixture: %s\n", rl_error());
        ret = 1; goto done;
    }
    const align_mix_result *b = &res[stab.best];
    printf("EM mixture over annotators: %d comparisons, %d annotators, K = %d, %d seed(s) x %d restart(s)\n\n",
           c.n_cmp, c.n_annot, K, seeds, restarts);
    printf("seed  loglik/comparison  iterations  converged  re-seeded  ARI vs best  sizes\n");
    for (int s = 0; s < seeds; s++) {
        printf("%4lld  %17.4f  %10d  %9s  %9d  %11.3f  ", seed + s, res[s].loglik / res[s].weight, res[s].iterations,
               res[s].converged ? "yes" : "no", res[s].reseeded, align_adjusted_rand(c.n_annot, b->assign, K, res[s].assign, K));
        for (int k = 0; k < K; k++) printf("%s%d", k ? "/" : "", res[s].size[k]);
        printf("%s\n", s == stab.best ? "  (kept)" : "");
    }
    printf("\nstability across seeds: adjusted Rand index mean %.3f, min %.3f; best-matching agreement with the kept seed mean %.3f, min %.3f\n",
           stab.ari_mean, stab.ari_min, stab.agree_mean, stab.agree_min);
    /* clusters, with the known groups of their annotators */
    int *ncmp = rl_xcalloc((size_t)K, sizeof(int));
    for (int i = 0; i < c.n_cmp; i++) if (b->assign[c.annot[i]] >= 0) ncmp[b->assign[c.annot[i]]]++;
    const char *keys[16];
    int nkeys = 0;
    for (int h = 0; h < c.n_annot; h++) {
        const fb_record *r = &set.records[c.annot_first[h]];
        for (int j = 0; j < r->n_groups && nkeys < 16; j++) {
            int seen = 0;
            for (int q = 0; q < nkeys; q++) seen |= !strcmp(keys[q], r->groups[j].key);
            if (!seen && strcmp(r->groups[j].key, cluster_key)) keys[nkeys++] = r->groups[j].key;
        }
    }
    int *codes = rl_xmalloc(sizeof(int) * (size_t)c.n_annot);
    const char *vals[64];
    printf("\ncluster  annotators  comparisons  loglik/comparison\n");
    for (int k = 0; k < K; k++)
        printf("%7d  %10d  %11d  %17.4f\n", k, b->size[k], ncmp[k], ncmp[k] ? b->cluster_ll[k] / ncmp[k] : 0.0);
    for (int q = 0; q < nkeys; q++) {
        int nv = key_codes(&set, &c, keys[q], codes, vals);
        printf("\nknown group '%s' (annotators per cluster):  ARI %.3f, best-matching agreement %.3f\n", keys[q],
               align_adjusted_rand(c.n_annot, codes, nv, b->assign, K), align_match_agreement(c.n_annot, codes, nv, b->assign, K, NULL));
        for (int k = 0; k < K; k++) {
            printf("  cluster %d:", k);
            int none = 0;
            for (int h = 0; h < c.n_annot; h++) none += b->assign[h] == k && codes[h] < 0;
            for (int v = 0; v < nv; v++) {
                int n = 0;
                for (int h = 0; h < c.n_annot; h++) n += b->assign[h] == k && codes[h] == v;
                if (n) printf(" %s=%s %d", keys[q], vals[v], n);
            }
            if (none) printf(" (no %s) %d", keys[q], none);
            printf("\n");
        }
    }
    if (show > 0) {
        /* what each cluster's model likes: the responses in the data it scores highest/lowest */
        int nr = 2 * c.n_cmp;
        fb_pair *pp = NULL;
        int64_t np = 0;
        if (fb_to_pairs(&set, &pp, &np) == RL_OK) {
            const char **resp = rl_xmalloc(sizeof(char *) * (size_t)(2 * np + 1));
            nr = 0;
            for (int64_t i = 0; i < np; i++) { resp[nr++] = pp[i].chosen; resp[nr++] = pp[i].rejected; }
            double *sc = rl_xmalloc(sizeof(double) * (size_t)(nr + 1));
            int *ord = rl_xmalloc(sizeof(int) * (size_t)(nr + 1));
            for (int k = 0; k < K; k++) {
                for (int i = 0; i < nr; i++) sc[i] = align_linbt_score(&m, k, resp[i]);
                /* selection of the extremes, skipping repeated strings */
                printf("\ncluster %d's model scores highest:", k);
                for (int pass = 0; pass < 2; pass++) {
                    int got = 0;
                    for (int t = 0; t < show; t++) {
                        int bi = -1;
                        for (int i = 0; i < nr; i++) {
                            int dup = 0;
                            for (int q = 0; q < got && !dup; q++) dup = !strcmp(resp[ord[q]], resp[i]);
                            if (dup) continue;
                            if (bi < 0 || (pass ? sc[i] < sc[bi] : sc[i] > sc[bi])) bi = i;
                        }
                        if (bi < 0) break;
                        ord[got++] = bi;
                        printf("\n    %+7.3f  ", sc[bi]);
                        print_trunc(stdout, resp[bi], 70);
                    }
                    if (!pass) printf("\n  lowest:");
                }
                printf("\n");
            }
            free(sc); free(ord); free(resp);
        }
        free(pp);
    }
    free(ncmp); free(codes);
    if (out[0]) {
        if (write_assignments(out, &c, b->assign)) { fprintf(stderr, "rlhf align mixture: %s\n", rl_error()); ret = 1; goto done; }
        rl_info("wrote %d assignments to %s", c.n_annot, out);
    }
    if (out_records[0]) {
        if (write_records(out_records, &set, &c, b->assign, cluster_key)) { fprintf(stderr, "rlhf align mixture: %s\n", rl_error()); ret = 1; goto done; }
        rl_info("wrote %lld records with group %s=<cluster> to %s (train one reward model per cluster: rlhf rm --records %s --group %s=0 ...)",
                (long long)set.n, cluster_key, out_records, out_records, cluster_key);
    }
done:
    for (int s = 0; s < seeds; s++) align_mix_result_free(&res[s]);
    free(res);
    align_fb_cmps_free(&c);
    align_linbt_free(&m);
    fb_set_free(&set);
    return ret;
}
