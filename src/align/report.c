/* report.c — printing for `rlhf align consensus` and `rlhf align report`. */
#include "tables.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Copies s into buf (size n) with whitespace runs (tabs, newlines) turned into
 * single spaces, cut at `maxlen` bytes without splitting a UTF-8 sequence
 * ("..." marks a cut; maxlen 0 = no cut). */
static void flat_text(char *buf, size_t n, const char *s, size_t maxlen) {
    size_t o = 0;
    int space = 0, cut = 0;
    if (!s) s = "(no text)";
    for (; *s && o + 4 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\t' || ch == '\n' || ch == '\r') { space = 1; continue; }
        if (space && o > 0) buf[o++] = ' ';
        space = 0;
        if (maxlen && o >= maxlen && (ch & 0xC0) != 0x80) { cut = 1; break; }
        buf[o++] = (char)ch;
    }
    buf[o] = 0;
    if (cut) { memcpy(buf + o, "...", 4); }
}

static void cell(char *buf, size_t n, int a, int d, int p) {
    int v = a + d + p;
    if (v == 0) snprintf(buf, n, "  -  (0/0)");
    else snprintf(buf, n, "%3.0f%% (%d/%d)", 100.0 * a / v, a, v);
}

static void print_list(FILE *out, const align_polis *p, const align_consensus *c, const int *order,
                       const char *section, int top, int tsv) {
    int G = c->n_groups, S = c->n_statements;
    char text[4096], b[64];
    if (!tsv) {
        fprintf(out, "%4s %6s %8s", "rank", "id", "score");
        for (int g = 0; g < G; g++) { snprintf(b, sizeof b, "group %d agree", g); fprintf(out, "  %-18s", b); }
        fprintf(out, "  %-18s  %s\n", "all agree", "statement");
    }
    for (int r = 0; r < top && r < c->n_ranked; r++) {
        int s = order[r];
        flat_text(text, sizeof text, p->text ? p->text[s] : NULL, tsv ? 0 : 70);
        if (tsv) {
            fprintf(out, "%s\t%d\t%d\t%.6f", section, r + 1, p->comment_id[s], c->score[s]);
            for (int g = 0; g < G; g++) {
                size_t j = (size_t)g * S + s;
                fprintf(out, "\t%d\t%d\t%d", c->agree[j], c->disagree[j], c->pass[j]);
            }
            fprintf(out, "\t%d\t%d\t%d\t%s\n", c->agree_all[s], c->disagree_all[s], c->pass_all[s], text);
        } else {
            fprintf(out, "%4d %6d %8.4f", r + 1, p->comment_id[s], c->score[s]);
            for (int g = 0; g < G; g++) {
                size_t j = (size_t)g * S + s;
                cell(b, sizeof b, c->agree[j], c->disagree[j], c->pass[j]);
                fprintf(out, "  %-18s", b);
            }
            cell(b, sizeof b, c->agree_all[s], c->disagree_all[s], c->pass_all[s]);
            fprintf(out, "  %-18s  %s\n", b, text);
        }
    }
}

void align_consensus_print(FILE *out, const align_polis *p, const align_consensus *c, const char *rule_name,
                           int top, int tsv) {
    if (!tsv) {
        int uncl = 0;
        for (int i = 0; i < p->P; i++) uncl += p->group[i] < 0;
        fprintf(out, "participants %d (", p->P);
        for (int g = 0; g < c->n_groups; g++) fprintf(out, "group %d: %d, ", g, c->group_size[g]);
        fprintf(out, "unclustered: %d); statements ranked: %d of %d\n", uncl, c->n_ranked, c->n_statements);
        fprintf(out, "score: %s over groups of q_g = (agrees_g + 1)/(votes_g + 2), votes = agree + disagree + pass\n", rule_name);
        fprintf(out, "cells: agrees as a share of votes cast (agrees/votes, passes included)\n\n");
        fprintf(out, "top %d by group-informed consensus (%s)\n", top, rule_name);
    }
    print_list(out, p, c, c->rank, "consensus", top, tsv);
    if (!tsv) fprintf(out, "\ntop %d by raw agree count\n", top);
    print_list(out, p, c, c->rank_raw, "raw", top, tsv);
}

void align_report_print(FILE *out, const align_table *t, const double *targets, const unsigned char *has_target,
                        const double *w, const align_rake_report *rep, double cap) {
    fprintf(out, "evaluators: %d%s\n", t->n, t->has_weight ? " (with base weights)" : "");
    for (int a = 0, off = 0; a < t->nattr; off += t->ncat[a], a++) {
        int raked = has_target && has_target[a] && w;
        int K = t->ncat[a];
        fprintf(out, "\nattribute %s (%d categories%s)\n", t->attr[a], K,
                has_target && has_target[a] ? (w ? ", raked" : ", target given") : ", no target");
        fprintf(out, "  %-24s %7s %9s", "category", "n", "sample%");
        if (has_target && has_target[a]) fprintf(out, " %9s", "target%");
        if (w) fprintf(out, " %10s", "weighted%");
        fprintf(out, "\n");
        const int *code = t->codes + (size_t)a * t->n;
        double *sh = malloc((size_t)K * sizeof *sh);
        int *cnt = calloc((size_t)K, sizeof *cnt);
        if (!sh || !cnt) { free(sh); free(cnt); fprintf(out, "  (out of memory)\n"); continue; }
        align_weighted_shares(t->n, code, K, w, sh);
        for (int i = 0; i < t->n; i++) cnt[code[i]]++;
        for (int c = 0; c < K; c++) {
            char name[64];
            flat_text(name, sizeof name, t->cat[a][c][0] ? t->cat[a][c] : "(empty)", 24);
            fprintf(out, "  %-24s %7d %8.2f%%", name, cnt[c], 100.0 * cnt[c] / t->n);
            if (has_target && has_target[a]) fprintf(out, " %8.2f%%", 100.0 * targets[off + c]);
            if (w) fprintf(out, " %9.2f%%", 100.0 * sh[c]);
            fprintf(out, "%s\n", raked && fabs(sh[c] - targets[off + c]) > 0.005 ? "  (off target)" : "");
        }
        free(sh); free(cnt);
    }
    if (rep) {
        fprintf(out, "\nraking: %s after %d cycles, max margin error %.3g\n",
                rep->converged ? "converged" : "NOT converged", rep->iterations, rep->max_margin_err);
        if (cap > 0) fprintf(out, "cap: %g x mean weight, %d weights at the cap\n", cap, rep->n_capped);
        fprintf(out, "weights (mean 1): min %.4g, max %.4g\n", rep->w_min, rep->w_max);
        fprintf(out, "Kish effective sample size %.1f of %d (efficiency %.3f, design effect %.3f)\n",
                rep->ess, t->n, rep->efficiency, rep->deff);
    } else if (t->has_weight) {
        fprintf(out, "\nbase weights: Kish effective sample size %.1f of %d\n", align_kish_ess(t->n, t->base), t->n);
    }
}
