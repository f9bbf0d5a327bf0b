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
