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
 * RL_ENOTFOUND / RL_EFORMAT with a message on a bad file; *n_out may be NULL. */
rl_status demo_generate(const demo_gen_opts *o, const char *prompts_jsonl, const char *out_jsonl, long *n_out);

/* Numbers of one key across a JSONL log: rows that have `key` as a number
 * (and, if xkey is non-NULL, also xkey) give (x, y); x is the row's xkey, or
 * its index among matching rows. Writes at most max points; returns the count
 * (0 when the file is missing or has none). */
int demo_log_series(const char *path, const char *xkey, const char *key, double *x, double *y, int max);
/* The last value of `key` in a JSONL log, or NAN. */
double demo_log_last(const char *path, const char *key);

/* Counts the {"event":"warning"} rows a trainer wrote into its own log while
 * it trained (the live monitors, src/train/monitor.h) and fills names (size
 * names_n) with the distinct monitor names, comma-separated, in order of first
 * warning. Returns the number of warnings (0 for a missing log). */
int demo_log_warnings(const char *path, char *names, int names_n);

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
    int warnings;
    char warn_names[160];
    char log[512];         /* its JSONL metrics log ("" if none) */
} demo_row;

typedef struct {
    char name[48];
    double seconds;
    int rc;                /* -1 = skipped */
    char note[160];
} demo_stage;

/* Writes the results table as text (stdout style) to f. */
void demo_print_table(FILE *f, const demo_row *rows, int nrows, const sim_pop_config *pc);

/* Writes the self-contained report (inline CSS and SVG, no scripts, no
 * network): stage times, the results table, training curves from the logs,
 * gold accuracy and proxy reward against sqrt(KL), per-group satisfaction. */
rl_status demo_write_report(const char *path, const demo_row *rows, int nrows, const demo_stage *stages, int nstages,
                            const sim_pop_config *pc, const char *serve_cmd);

#endif
