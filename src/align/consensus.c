/* consensus.c — see consensus.h. */
#include "consensus.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int align_cons_rule_parse(const char *s) {
    if (!strcmp(s, "product")) return ALIGN_CONS_PRODUCT;
    if (!strcmp(s, "min")) return ALIGN_CONS_MIN;
    if (!strcmp(s, "mean")) return ALIGN_CONS_MEAN;
    return -1;
}

void align_consensus_free(align_consensus *c) {
    if (!c) return;
    free(c->agree); free(c->disagree); free(c->pass);
    free(c->agree_all); free(c->disagree_all); free(c->pass_all);
    free(c->group_size); free(c->q); free(c->score); free(c->rank); free(c->rank_raw);
    memset(c, 0, sizeof *c);
}

static int by_score(const void *a, const void *b, void *ctx) {
    const align_consensus *c = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (c->score[i] != c->score[j]) return c->score[i] > c->score[j] ? -1 : 1;
    if (c->agree_all[i] != c->agree_all[j]) return c->agree_all[i] > c->agree_all[j] ? -1 : 1;
    return (i > j) - (i < j);
}

static int by_raw(const void *a, const void *b, void *ctx) {
    const align_consensus *c = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (c->agree_all[i] != c->agree_all[j]) return c->agree_all[i] > c->agree_all[j] ? -1 : 1;
    if (c->disagree_all[i] != c->disagree_all[j]) return c->disagree_all[i] < c->disagree_all[j] ? -1 : 1;
    return (i > j) - (i < j);
}

rl_status align_consensus_rank(int P, int S, const signed char *votes, const int *group, int G,
                               align_cons_rule rule, const unsigned char *include, align_consensus *c) {
    memset(c, 0, sizeof *c);
    if (P < 0 || S < 1 || G < 1) return rl_fail(RL_EINVAL, "consensus: need >= 1 statement and >= 1 group (got %d statements, %d groups)", S, G);
    if ((int)rule < ALIGN_CONS_PRODUCT || rule > ALIGN_CONS_MEAN) return rl_fail(RL_EINVAL, "consensus: unknown rule %d", (int)rule);
    size_t GS = (size_t)G * S;
    c->n_statements = S; c->n_groups = G;
    c->agree = calloc(GS, sizeof(int)); c->disagree = calloc(GS, sizeof(int)); c->pass = calloc(GS, sizeof(int));
    c->agree_all = calloc((size_t)S, sizeof(int)); c->disagree_all = calloc((size_t)S, sizeof(int)); c->pass_all = calloc((size_t)S, sizeof(int));
    c->group_size = calloc((size_t)G, sizeof(int));
    c->q = calloc(GS, sizeof(double)); c->score = calloc((size_t)S, sizeof(double));
    c->rank = calloc((size_t)S, sizeof(int)); c->rank_raw = calloc((size_t)S, sizeof(int));
    if (!c->agree || !c->disagree || !c->pass || !c->agree_all || !c->disagree_all || !c->pass_all ||
        !c->group_size || !c->q || !c->score || !c->rank || !c->rank_raw) {
        align_consensus_free(c);
        return rl_fail(RL_ENOMEM, "consensus: out of memory");
    }
    for (int p = 0; p < P; p++) {
        int g = group[p];
        if (g >= G) { align_consensus_free(c); return rl_fail(RL_EINVAL, "consensus: participant %d is in group %d (valid 0..%d, or < 0 for unclustered)", p, g, G - 1); }
        if (g >= 0) c->group_size[g]++;
        const signed char *row = votes + (size_t)p * S;
        for (int s = 0; s < S; s++) {
            signed char v = row[s];
            if (v == ALIGN_VOTE_NONE) continue;
            if (v < -1 || v > 1) { align_consensus_free(c); return rl_fail(RL_EINVAL, "consensus: participant %d statement %d has vote %d (valid 1, -1, 0 or none)", p, s, v); }
            int *cnt_all = v == 1 ? c->agree_all : v == -1 ? c->disagree_all : c->pass_all;
            cnt_all[s]++;
            if (g >= 0) {
                int *cnt = v == 1 ? c->agree : v == -1 ? c->disagree : c->pass;
                cnt[(size_t)g * S + s]++;
            }
        }
    }
    int nr = 0;
    for (int s = 0; s < S; s++) {
        double prod = 1, mn = INFINITY, sum = 0;
        for (int g = 0; g < G; g++) {
            size_t j = (size_t)g * S + s;
            int V = c->agree[j] + c->disagree[j] + c->pass[j];
            double q = (c->agree[j] + 1.0) / (V + 2.0);
            c->q[j] = q;
            prod *= q; sum += q;
            if (q < mn) mn = q;
        }
        c->score[s] = rule == ALIGN_CONS_PRODUCT ? prod : rule == ALIGN_CONS_MIN ? mn : sum / G;
        if (include && !include[s]) { c->score[s] = -INFINITY; continue; }
        c->rank[nr] = s; c->rank_raw[nr] = s; nr++;
    }
    c->n_ranked = nr;
    qsort_r(c->rank, (size_t)nr, sizeof(int), by_score, c);
    qsort_r(c->rank_raw, (size_t)nr, sizeof(int), by_raw, c);
    return RL_OK;
}
