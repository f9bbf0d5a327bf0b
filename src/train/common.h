/* common.h — what the feedback trainers share (rlhf sft / rm / score / dpo / kto):
 * turning chat conversations into token sequences with a train mask,
 * padding them into (B, T) batches, opening the model a trainer starts from,
 * loading feedback records, and Ctrl-C handling.
 *
 * Sequences. A conversation (+ optional final assistant response) is rendered
 * with the chat template (src/data/chat.h) and tokenized segment by segment:
 * special segments become their special-token id, text segments are BPE-encoded
 * as plain text (a user typing "<|end|>" gets ordinary tokens). Each token keeps
 * its segment's train flag: 1 on the assistant content being learned/judged
 * and the "<|end|>" closing it, 0 on the prompt.
 *
 * Padding, not packing. A batch holds B sequences padded on the RIGHT to the
 * longest one (T_b <= max_T). Attention is causal, so a real token never sees
 * the padding after it, and sequences never share a row: no attention leaks
 * between documents. Padding positions get target -1 (ignored by the loss,
 * logp 0) and mask 0. Cost: compute on padding; trainers sort nothing, so
 * batches are as long as their longest member.
 *
 * Truncation. A sequence longer than max_len loses prompt tokens from its
 * left (after "<|bos|>", keeping the prompt's end, nearest the response); if the
 * trained part alone is too long, its end is cut. Both are counted.
 *
 * Trainer regime: functions here that can only fail on user input CHECK
 * (print a message and exit 1); the sequence store returns rl_status.
 */
#ifndef RL_TRAIN_COMMON_H
#define RL_TRAIN_COMMON_H
#include <stdint.h>
#include <signal.h>
#include "../data/chat.h"
#include "../data/feedback.h"
#include "../model/checkpoint.h"
#include "../model/gpt.h"
#include "../tok/tok.h"
#include "../optim/adamw.h"
#include "../dist/dp.h"

/* ---- token sequences with a train mask ------------------------------------ */

typedef struct {
    int n;               /* sequences */
    int64_t *off;        /* (n+1) start of sequence i in ids/train */
    int *ids;            /* (total) token ids */
    uint8_t *train;      /* (total) 1 = trained / judged token (assistant response) */
    int64_t total, cap;
    int ncap;
    int n_cut;           /* sequences longer than max_len (cut somewhere; counted once) */
    int n_cut_prompt;    /* sequences whose prompt lost tokens on the left */
    int n_cut_response;  /* sequences whose trained part lost its end */
    int n_empty;         /* sequences with no trained token (kept, weight 0 in SFT) */
} trn_seqs;

void trn_seqs_init(trn_seqs *s);
void trn_seqs_free(trn_seqs *s);
/* Length of sequence i. */
static inline int trn_seq_len(const trn_seqs *s, int i) { return (int)(s->off[i + 1] - s->off[i]); }

/* Appends one sequence: turns[0..nturns) plus, if response != NULL, a final
 * assistant turn holding it. which = CHAT_TRAIN_LAST_ASSISTANT (only the final
 * assistant turn is trained/judged) or CHAT_TRAIN_ALL_ASSISTANT. Truncated to
 * max_len tokens (>= 2) as described above. Returns the new sequence's index
 * in *index. RL_EINVAL for an invalid conversation or a tokenizer without the
 * chat special tokens; RL_ENOMEM. */
rl_status trn_seqs_add(trn_seqs *s, const tok_tokenizer *t, const chat_turn *turns, int nturns,
                       const char *response, int which, int max_len, int *index);

/* Next-token batch for LM losses (SFT, DPO, KTO). rows idx[0..B) of s:
 *   inputs  (B, T) ids[0..len-1) of each sequence, 0 after it
 *   targets (B, T) ids[1..len) where that token is trained, else -1
 *   mask    (B, T) 1 where targets >= 0, else 0 (may be NULL)
 * T = the longest len-1 among the rows (>= 1). Returns T. The arrays must hold
 * B * max_T entries, max_T >= every len-1. */
int trn_batch_lm(const trn_seqs *s, const int *idx, int B, int *inputs, int *targets, float *mask);

/* Batch for the scalar head (reward models): inputs (B, T) = whole sequences
 * padded with 0, pos (B) = index of each sequence's last token (the "<|end|>"
 * closing the response unless cut). T = the longest len. Returns T. */
int trn_batch_last(const trn_seqs *s, const int *idx, int B, int *inputs, int *pos);

/* ---- opening models -------------------------------------------------------- */

typedef struct {
    const char *path;          /* checkpoint, or NULL / "" for a fresh model */
    /* fresh model only: */
    const char *config;        /* tiny | small | gpt2 */
    int layers, heads, channels, context; /* > 0 override the named config; context 0 = max_T */
    uint64_t seed;
} trn_model_src;

/* Opens the model a trainer starts from: loads src->path (CHECKs the file,
 * that its vocabulary equals the tokenizer's, that its tokenizer identity (if
 * recorded) equals tok_id, and that its metadata "kind" is one of `kinds`, a
 * '|'-separated list like "lm" or "lm|reward"), or initialises a fresh model
 * of the named config with V = the tokenizer's vocabulary. Plans activations
 * for (max_B, max_T) (max_T is clamped to the model's context; the clamped
 * value is returned). meta (may be NULL) receives the file's metadata. */
int trn_open_model(gpt_model *m, const trn_model_src *src, const tok_tokenizer *t, const char *tok_id,
                   int max_B, int max_T, const ops_table *ops, const char *kinds, ckpt_meta *meta);

/* Loads a tokenizer (CHECK) and writes its identity. */
tok_tokenizer *trn_open_tokenizer(const char *path, char tok_id[65]);

/* Loads feedback records from `path` (format "auto" | "jsonl" | "hh" | "oasst",
 * gzip read directly); prints the import notes; CHECKs on a malformed line
 * unless skip_bad. Format "db": `path` is a feedback database (src/serve/store.h,
 * the trainers' --db), opened read-only; every judgement is exported to JSONL in
 * memory and imported with its annotator and groups. CHECKs (exit 1 with a
 * message) when the file is missing or not an rlhf feedback database. */
void trn_load_records(fb_set *s, const char *path, const char *format, int skip_bad, int quiet);

/* --annotator-weights FILE (rm, dpo, kto): multiplies each record's weight by
 * its annotator's weight from an `id,weight` CSV (`rlhf align report --out`,
 * `rlhf align reliability --out`; align_apply_annotator_weights in
 * src/align/reliability.h). missing_weight < 0: an annotator absent from the
 * file is an error; else it takes that weight. Prints the Kish effective
 * sample size of the resulting record weights (unless quiet). CHECKs (exit 1
 * with the file's message) on a bad file. path NULL or "": nothing. */
void trn_apply_annotator_weights(fb_set *s, const char *path, double missing_weight, int quiet);

/* ---- Ctrl-C ------------------------------------------------------------------- */

/* After trn_sigint_install(), the first SIGINT (or SIGUSR1, which mpirun
 * forwards to the ranks) sets trn_stop (the trainer
 * finishes its step, writes its checkpoint and returns 130); a second one kills. */
extern volatile sig_atomic_t trn_stop;
void trn_sigint_install(void);
void trn_sigint_restore(void);

/* Under mpirun (src/dist): the watchdog's limit on one collective for the
 * feedback trainers, in seconds (a stuck rank ends the job instead of hanging it). */
#define TRN_DIST_TIMEOUT 600.0

/* Mean and (population) standard deviation of x (n), in double. */
/* The step plan of the preference trainers: `per_step` examples per optimizer
 * step (all ranks), --steps (0 = --epochs passes over `n` examples, at least
 * one step), and a warm-up of --warmup steps (-1 = steps/warm_div, at most
 * warm_cap). Fills `sch` and returns the number of steps. */
long long trn_plan_steps(long long n, long long per_step, long long steps_flag, double epochs, long long warmup_flag,
                         int warm_div, int warm_cap, double lr, double min_lr_frac, optim_schedule *sch);
/* Data parallelism (one process: plain clip + AdamW) and AdamW with the
 * trainers' betas (0.9, 0.95), eps 1e-8, decay on matmul weights only.
 * Copies rank 0's weights to every rank. Fails fast. */
void trn_dp_setup(dist_dp *dp, gpt_model *m, double weight_decay);

void trn_mean_std(const float *x, int n, double *mean, double *std);

#endif
