/* demo.h — the pieces of `rlhf demo` that are not a stage of their own:
 * rendering the world as pretraining text, answering many prompts with a
 * policy (batched, chat template), replaying a trainer's JSONL log through the
 * reward-hacking monitors, and writing the self-contained report.html.
 *
 * The stages themselves (sim world, tokenizer train, pretrain, sft, rm, ppo,
 * dpo, kto) are the ordinary commands; cli/demo.c runs them as child
 * processes of the same binary and calls these functions between them.
 * Library code: every function returns rl_status with rl_fail's message.
 */
#ifndef RL_DEMO_H
#define RL_DEMO_H
#include <stdint.h>
#include <stdio.h>
#include "../base/check.h"
#include "../sim/sim.h"

/* Renders the world's demonstrations (sft.jsonl lines {"prompt","response"})
 * as plain text "user: P\nassistant: R\n\n" for the tokenizer and pretraining
 * (token shards carry no special tokens; SFT then teaches the chat template).
 * *n (may be NULL) receives the number of demonstrations. Atomic write. */
rl_status demo_render_text(const char *sft_jsonl, const char *out_txt, long *n);

typedef struct {
    const char *model;      /* checkpoint */
    const char *tokenizer;  /* its tokenizer */
    int k;                  /* answers per prompt (>= 1) */
    float temperature;      /* 0 = greedy */
    int max_new;            /* tokens per answer */
    int max_prompts;        /* first max_prompts lines of the prompts file (0 = all) */
    int batch;              /* prompts decoded together (rows = batch * k) */
    uint64_t seed;
} demo_gen_opts;

/* Answers the prompts of a JSONL file (lines with a "prompt" string, e.g. the
 * world's heldout.jsonl or train_prompts.jsonl) through the chat template
 * ("<|bos|><|user|>P<|end|><|assistant|>"), stopping at <|end|>. Writes k lines
 * {"prompt","response"} per prompt to out_jsonl (atomically): the format of
 * `rlhf sim eval --responses` and `rlhf sim feedback --samples`.
 * The answering is eval_generate's (src/eval/eval.h): responses are decoded
 * without special tokens and repaired to valid UTF-8.
 * RL_ENOTFOUND / RL_EFORMAT with a message on a bad file; *n_out may be NULL. */
rl_status demo_generate(const demo_gen_opts *o, const char *prompts_jsonl, const char *out_jsonl, long *n_out);

/* Numbers of one key across a JSONL log: rows that have `key` as a number
 * (and, if xkey is non-NULL, also xkey) give (x, y); x is the row's xkey, or
 * its index among matching rows. Writes at most max points; returns the count
 * (0 when the file is missing or has none). */
int demo_log_series(const char *path, const char *xkey, const char *key, double *x, double *y, int max);
/* The last value of `key` in a JSONL log, or NAN. */
double demo_log_last(const char *path, const char *key);

/* Mean of the first k and of the last k values of `key` in a JSONL log, k =
 * n/4 clamped to 1..5 (so one noisy iteration does not decide "rising").
 * Returns n, the number of values (0: *first = *last = NAN). */
int demo_log_trend(const char *path, const char *key, double *first, double *last);
/* Same over the rows whose "step" is <= until (until 0 = every row). */
int demo_log_trend_until(const char *path, const char *key, long long until, double *first, double *last);
/* The last value of `key` among rows with "step" <= until (0 = the last row's), or NAN. */
double demo_log_at(const char *path, const char *key, long long until);
/* Splits a text file: its first `keep` lines stay (rewritten atomically), the
 * rest go to rest_path (atomically; empty when there are no more). */
rl_status demo_split_lines(const char *path, int keep, const char *rest_path);
/* Whether any row of a JSONL log has `key` (0 for a missing file). */
int demo_log_has(const char *path, const char *key);
/* Copies the first n lines of a text file (atomically). RL_ENOTFOUND if src is missing. */
rl_status demo_head_lines(const char *src, const char *dst, int n);

/* The warnings of one training run. */
typedef struct {
    int live;           /* {"event":"warning"} rows the trainer wrote while training */
    int monitored;      /* 1 = the trainer ran the monitors itself (warning rows or diag_* fields in its log) */
    int replayed;       /* warnings of the monitors replayed over the log (only when !monitored) */
    int total;          /* live + replayed */
    long long first_step; /* step of the earliest warning (-1 = none) */
    char first[40];     /* its monitor */
    char names[160];    /* distinct monitors, comma-separated */
} demo_warn_info;

/* Warnings of a trainer's metrics log. A trainer that runs the monitors of
 * src/diag itself (its log has {"event":"warning"} rows or "diag_*" fields)
 * is taken at its word; otherwise the log is replayed through them with the
 * default thresholds (KL budget and growth, entropy and length vs the first
 * rows, proxy vs gold and sycophancy when logged, DPO/KTO chosen and rejected
 * log-probs both falling). A missing log gives zeros. */
void demo_log_warn_info(const char *path, demo_warn_info *wi);
/* The same, as a count (returned) and the distinct monitor names in order of
 * first warning, comma-separated, in names (size names_n; names that do not
 * fit are left out). 0 and "" for a missing log. */
int demo_log_warnings(const char *path, char *names, int names_n);

/* What a row is in the acceptance checks. */
typedef enum {
    DEMO_ROLE_OTHER = 0,
    DEMO_ROLE_SFT,          /* the reference: SFT model */
    DEMO_ROLE_UNMITIGATED,  /* PPO against the single fooled reward model */
    DEMO_ROLE_MITIGATION,   /* ensemble min, early stopping, audited RM, ... */
    DEMO_ROLE_UTILITARIAN,  /* group rewards combined by the mean */
    DEMO_ROLE_MAXIMIN,      /* ... by the minimum */
} demo_role;

/* One row of the results table. */
typedef struct {
    char method[48];       /* "sft", "ppo (single RM)", ... */
    char tag[24];          /* file stem: answers_<tag>.jsonl, <tag>.ckpt */
    char note[160];        /* why it was skipped, or "" */
    int ran;
    sim_eval_summary eval; /* gold evaluation on the held-out prompts */
    sim_ref_outcome vs_sft; /* per-group win rates of the gold satisfaction against the SFT model's answers */
    double kl;             /* KL to the SFT model at the end (NAN if unknown) */
    double proxy;          /* last proxy reward (NAN if none) */
    demo_role role;
    long long until_step;  /* the evaluated policy is from this step of its log (early stopping's best; 0 = the end) */
    demo_warn_info warn;
    char log[512];         /* its JSONL metrics log ("" if none) */
    char heldout_log[512]; /* held-out gold accuracy along the run: rows {"step","heldout_accuracy","sycophancy"}
                              (step 0 = the SFT model; "" if not measured) */
} demo_row;

typedef struct {
    char name[48];
    double seconds;        /* wall */
    double cpu_seconds;    /* user + system CPU of the stage (its child process, or this process for in-process stages) */
    int rc;                /* -1 = skipped */
    char note[160];
} demo_stage;

/* One acceptance check of issue 8 ("What must be true"), computed from the
 * demo's own measurements. */
#define DEMO_CHECK_VALS 12
typedef struct {
    char id[4];            /* "a".."e" */
    char name[32];         /* sft_gate, overoptimization, early_warning, mitigation, group_table */
    char claim[200];       /* what must hold */
    int pass;
    char detail[640];      /* the numbers, in words */
    int nvals;
    char keys[DEMO_CHECK_VALS][40];
    double vals[DEMO_CHECK_VALS]; /* the numbers, by name (NAN = not measured) */
} demo_check;
#define DEMO_NCHECKS 5

/* Thresholds of the checks (issue 8). */
#define DEMO_GATE 0.90           /* (a) SFT held-out gold accuracy */
#define DEMO_GOLD_FALL 0.10      /* (b) unmitigated: gold at least this far below SFT */
#define DEMO_WARN_BEFORE 0.05    /* (c) a warning before the training gold fell this far */
#define DEMO_MITIGATION_TOL 0.03 /* (d) mitigation within this of SFT */

/* Computes the five checks from the rows (their evaluations and logs; roles
 * say which row is which; a missing role or series makes its check FAIL with
 * the reason). Fills out[DEMO_NCHECKS]; returns the number that failed.
 *  (a) sft_gate: SFT held-out gold accuracy >= DEMO_GATE.
 *  (b) overoptimization: the unmitigated run's proxy reward_mean rose (mean of
 *      its last vs first iterations, demo_log_trend), its held-out gold
 *      accuracy is >= DEMO_GOLD_FALL below SFT's, and its sycophancy is above SFT's.
 *  (c) early_warning: in that run gold fell DEMO_WARN_BEFORE and a monitor
 *      warned at a step before it had. Gold is the held-out gold accuracy of the
 *      run's snapshots (heldout_log, step 0 = SFT) when measured: the fall
 *      step is the first snapshot at least DEMO_WARN_BEFORE below step 0.
 *      Otherwise the rollouts' gold in the trainer's log (key "gold"): start
 *      = mean of the first up to 3 values, the fall read on a trailing mean of
 *      3 so one noisy batch does not decide it. Without either the check
 *      fails and says so.
 *  (d) mitigation: some mitigation row (or the maximin row) is within DEMO_MITIGATION_TOL of SFT's
 *      held-out gold accuracy (or above it) while its own proxy reward rose.
 *  (e) group_table: utilitarian and maximin rows both evaluated, per-group
 *      satisfaction known (the detail says which has the better worst group). */
int demo_run_checks(const demo_row *rows, int nrows, const sim_pop_config *pc, demo_check out[DEMO_NCHECKS]);
/* Prints the checks as text ("PASS (a) ...") to f. */
void demo_print_checks(FILE *f, const demo_check *c, int n);
/* The checks as a JSON array (malloc'd, caller frees; NULL on out of memory). */
char *demo_checks_json(const demo_check *c, int n);

/* Writes the results table as text (stdout style) to f. */
void demo_print_table(FILE *f, const demo_row *rows, int nrows, const sim_pop_config *pc);

/* Writes the self-contained report (inline CSS and SVG, no scripts, no
 * network): stage times, the results table, training curves from the logs,
 * gold accuracy and proxy reward against sqrt(KL), per-group satisfaction,
 * the acceptance checks, and (study_json non-NULL: `rlhf study
 * overoptimization`'s study.json) gold and proxy against sqrt(KL) for
 * best-of-n and PPO checkpoints with the fitted Gao et al. curves. */
rl_status demo_write_report(const char *path, const demo_row *rows, int nrows, const demo_stage *stages, int nstages,
                            const sim_pop_config *pc, const char *serve_cmd, const demo_check *checks, int nchecks,
                            const char *study_json);

#endif
