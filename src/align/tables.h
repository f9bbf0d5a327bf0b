/* tables.h — the CSV inputs of `rlhf align consensus` and `rlhf align report`
 * loaded into the plain arrays the align_ functions take. Formats:
 * docs/formats-align.md.
 *
 * 1. Polis exports (compdemocracy/openData): participants-votes.csv, a vote
 *    matrix with columns participant, group-id, n-comments, n-votes, n-agree,
 *    n-disagree and then one column per comment id (cells 1 agree, -1 disagree,
 *    0 pass, empty = not seen); comments.csv with comment-id, moderated
 *    (1 in, 0 unmoderated, -1 out) and comment-body.
 * 2. Evaluator tables for weighting: one row per evaluator, a header naming the
 *    columns; `id` (optional) names the row, `weight` (optional) is a base/design
 *    weight, every other column is a categorical attribute. Margins: rows
 *    attribute,category,share.
 */
#ifndef RL_ALIGN_TABLES_H
#define RL_ALIGN_TABLES_H
#include "../base/check.h"

typedef struct {
    int P, S, G;                  /* participants, statements (vote columns), opinion groups */
    signed char *votes;           /* (P,S) 1, -1, 0 or ALIGN_VOTE_NONE */
    int *group;                   /* (P) 0..G-1, -1 = unclustered (empty group-id) */
    int *comment_id;              /* (S) the column's comment id */
    char **text;                  /* (S) comment body, NULL if comments.csv lacks it */
    int *moderated;               /* (S) 1 in, 0 unmoderated, -1 out; 0 without comments.csv */
} align_polis;

/* Loads a Polis vote matrix and (if comments_csv is not NULL) its comments.
 * RL_EFORMAT with "file:line: what" on a malformed cell, a missing column or a
 * comment id that is not an integer; RL_ENOTFOUND/RL_EIO from opening.
 * On success *out owns its arrays (align_polis_free). */
rl_status align_polis_load(const char *votes_csv, const char *comments_csv, align_polis *out);
void align_polis_free(align_polis *p);

typedef struct {
    int n;                 /* evaluators (rows) */
    int nattr;             /* attribute columns */
    char **attr;           /* (nattr) column names */
    int *ncat;             /* (nattr) distinct categories seen */
    char ***cat;           /* (nattr)(ncat[a]) category names, in order of first appearance */
    int *codes;            /* (nattr, n) category index per evaluator */
    double *base;          /* (n) base weight (1 without a weight column) */
    char **id;             /* (n) row id (the row number as text without an id column) */
    int has_weight;
} align_table;

/* Loads an evaluator table. An empty attribute cell is the category "" (shown
 * as "(empty)"); a weight that is not a number >= 0 is RL_EFORMAT naming the line. */
rl_status align_table_load(const char *path, align_table *out);
void align_table_free(align_table *t);

/* Loads margins (attribute,category,share) for the attributes of t.
 * targets_out: (Σ ncat) flattened as in weights.h, shares per attribute;
 * has_target: (nattr) 1 if the file gives margins for that attribute.
 * Errors (RL_EFORMAT, naming file and line): an attribute that is not a
 * column of the data; a data category missing from the margins of its
 * attribute; a category with a positive share and no evaluators; shares not
 * summing to 1 within 1e-3; a duplicate row. *targets_out is malloc'd. */
rl_status align_margins_load(const char *path, const align_table *t, double **targets_out, unsigned char *has_target);


/* Per-evaluator weights, the `id,weight` CSV that `rlhf align report --out`
 * and `rlhf align reliability --out` write (docs/formats-align.md): a header
 * with columns `id` and `weight` (others ignored), one row per evaluator.
 * RL_EFORMAT naming file:line for: a missing id/weight column, an empty or
 * duplicate id, a weight that is not a finite number >= 0, no rows.
 * On success *out owns its arrays (align_id_weights_free). */
typedef struct {
    int n;
    char **id;     /* (n) */
    double *w;     /* (n) */
} align_id_weights;
rl_status align_id_weights_load(const char *path, align_id_weights *out);
void align_id_weights_free(align_id_weights *w);
/* Index of `id` in w, or -1 (linear in n; callers with many lookups sort). */
int align_id_weights_find(const align_id_weights *w, const char *id);
/* Writes `id,weight` rows (ids quoted when needed, weights %.10g) atomically. */
rl_status align_id_weights_write(const char *path, int n, const char *const *id, const double *w);

/* ---- printing (used by the CLI; output formats in docs/align.md) ---------- */
#include <stdio.h>
#include "consensus.h"
#include "weights.h"

/* Prints the top `top` statements of c->rank and of c->rank_raw with per-group
 * agreement. tsv = 0: a table for people; 1: tab-separated rows
 *   section rank comment_id score {agree_g disagree_g pass_g}*G agree_all disagree_all pass_all text
 * (section = "consensus" or "raw"; tabs/newlines in text become spaces). */
void align_consensus_print(FILE *out, const align_polis *p, const align_consensus *c, const char *rule_name,
                           int top, int tsv);

/* Prints counts per attribute and category (n, sample share, target share and
 * weighted share when given), then the raking report. targets/has_target/w/rep
 * may be NULL (counts only). */
void align_report_print(FILE *out, const align_table *t, const double *targets, const unsigned char *has_target,
                        const double *w, const align_rake_report *rep, double cap);

#endif
