/* study.h — `rlhf study overoptimization`: how gold reward and proxy reward
 * move as a policy is optimised against the proxy, measured against
 * d = sqrt(KL(pi || pi_ref)), with Gao, Schulman & Hilton (2022)'s functional
 * forms fitted (src/diag/diag.h) and their predicted peak.
 *
 * Two ways of moving away from the reference policy pi_ref (--policy):
 *
 *  best-of-n   For every prompt, N = max(n_list) answers are sampled ONCE from
 *              pi_ref (temperature 1; prompt p's rows use the sampler seed
 *              seed + p * 1000003, the seed `rlhf bon --batch 1` uses, so the
 *              first n rows are exactly what `rlhf bon --n n --batch 1` samples).
 *              Each is scored by proxy and gold. For each n the chosen answer
 *              is the proxy's argmax (ties: lowest index, as bon_argmax) and
 *              the row reports the mean over prompts of the chosen answer's
 *              proxy and gold reward. Two unbiased estimators of that mean:
 *                prefix   the best of the first n samples (one draw of
 *                         best-of-n per prompt: identical to sampling n fresh);
 *                subsets  the average over ALL n-subsets of the N samples of
 *                         the best one's reward (the exact expectation under
 *                         the empirical distribution; Rao-Blackwellised prefix,
 *                         lower variance). Sorting the N samples by proxy
 *                         (descending, ties by index), the j-th (0-based) is
 *                         the best of a uniform random n-subset with probability
 *                         C(N-1-j, n-1) / C(N, n) (study_bon_weights).
 *              KL is analytic: log n - (n-1)/n (an upper bound; Beirami et
 *              al. 2024), d = sqrt(KL).
 *
 *  PPO         Checkpoints along an `rlhf ppo` run (`--snapshots DIR` writes
 *              one per `--save-every`). For each, and for pi_ref itself as
 *              step 0, K = ppo_samples answers per prompt (same seeds as
 *              above) are sampled at temperature 1; the KL is the mean over
 *              samples of sum_t [log pi(y_t | ..) - log pi_ref(y_t | ..)] over
 *              the response tokens (stop token included), both log-probs from
 *              the training forward (gpt_forward) of each model on the sampled
 *              tokens: an unbiased Monte-Carlo estimate of the sequence KL (it
 *              can come out slightly negative for a checkpoint very close to
 *              pi_ref; then d = 0). pi_ref's own row has KL exactly 0.
 *
 * Fits: for each method, gold - gold(d=0) and proxy - proxy(d=0) against d,
 * best-of-n with R(d) = d(alpha - beta d), PPO with R(d) = d(alpha - beta ln d)
 * (diag_gao_fit_points), giving alpha, beta, r2 and the predicted peak d*,
 * KL* = d*^2 and the value there. The d=0 value is best-of-1 (computed from
 * all N samples, whatever n_list holds) and pi_ref's PPO row.
 *
 * Files written into out_dir (created if missing, each atomically):
 *   study.json  every row and fit; keys in docs/diagnostics.md ("study.json")
 *   study.csv   method,label,x,kl,d,proxy,gold,proxy_se,gold_se,samples
 *
 * Regime: library code. study_overoptimization returns a status with a
 * message (bad spec, missing or mismatched checkpoint, unreadable prompts,
 * unwritable output); nothing here exits.
 */
#ifndef RL_STUDY_H
#define RL_STUDY_H
#include <stdint.h>
#include <stdio.h>
#include "../base/check.h"
#include "../diag/diag.h"

#define STUDY_MAX_N 4096      /* largest n of best-of-n */
#define STUDY_MAX_CKPTS 1024  /* PPO checkpoints in one study */

typedef enum { STUDY_BON_SUBSETS = 0, STUDY_BON_PREFIX = 1 } study_bon_estimator;

typedef struct {
    const char *policy_path;     /* pi_ref: best-of-n samples it, KL is measured to it */
    const char *tokenizer_path;
    const char *prompts_path;    /* one prompt a line, text or {"prompt": ...} (ppo_prompts_load) */
    const char *proxy_spec;      /* reward specs (src/train/reward.h): the optimised reward ... */
    const char *gold_spec;       /* ... and the one that says what is true */
    const char *aggregate;       /* groups: rule for both specs (NULL = mean) */
    double alpha;                /* isoelastic alpha */
    const int *n_list;           /* best-of-n sizes in 1..STUDY_MAX_N, any order; n_n 0 = no best-of-n */
    int n_n;
    study_bon_estimator estimator;
    const char *const *ppo_paths;/* PPO checkpoints; n_ppo 0 = none */
    int n_ppo;
    const char *ppo_dir;         /* NULL, or: every *.ckpt in this directory is a PPO checkpoint too */
    int ppo_samples;             /* K answers per prompt per checkpoint (>= 1) */
    int max_new;                 /* response tokens at most */
    int chat;                    /* 1: chat template; 0: raw prompts (as `rlhf bon --raw`) */
    uint64_t seed;
    const char *out_dir;         /* NULL = write nothing */
    int quiet;                   /* no progress lines on stderr */
} study_opts;

/* n_list {1,2,4,8,16,32,64} (static), subsets estimator, ppo_samples 4,
 * max_new 64, chat 1, seed 1, alpha 1; every path NULL. */
void study_opts_default(study_opts *o);

/* One point of a curve. */
typedef struct {
    char label[256];     /* "n=4", "reference" or the checkpoint's path */
    long long x;         /* best-of-n: n; PPO: the checkpoint's training step (0 = reference, -1 = unknown) */
    double kl;           /* nats (analytic for best-of-n, measured for PPO) */
    double d;            /* sqrt(max(kl, 0)) */
    double proxy, gold;  /* mean over prompts */
    double proxy_se, gold_se; /* standard error of that mean over prompts (NAN with one prompt) */
    long samples;        /* answers sampled for this row */
} study_row;

typedef struct {
    int ok;              /* 1: fit holds alpha, beta, ...; 0: error says why */
    char error[200];
    diag_gao_form form;
    diag_gao_fit fit;    /* d_star INFINITY when beta <= 0 (no peak) */
    double base;         /* value at d = 0 subtracted before fitting; peak value = base + fit.r_star */
} study_fit;

typedef struct {
    int n_prompts;
    int bon_N;           /* samples per prompt for best-of-n (max of n_list), 0 = not run */
    int n_bon, n_ppo;
    study_row *bon;      /* (n_bon) in n_list order sorted ascending; owned */
    study_row *ppo;      /* (n_ppo) reference first, then checkpoints by step; owned */
    study_fit bon_gold, bon_proxy, ppo_gold, ppo_proxy;
    double seconds;
} study_result;

/* Runs the study (see the top of this file); fills *r (free with
 * study_result_free, also after a failure) and, with out_dir, writes
 * study.json and study.csv. Errors: RL_EINVAL (bad options or spec, a
 * checkpoint that is not a fine-tune of the policy, no best-of-n and no PPO
 * checkpoint), RL_ENOTFOUND/RL_EFORMAT/RL_EIO for files, RL_ENOMEM. */
rl_status study_overoptimization(const study_opts *o, study_result *r);
void study_result_free(study_result *r);

/* The whole result as JSON text (malloc'd, caller frees), or NULL (out of memory). */
char *study_result_json(const study_opts *o, const study_result *r);
/* The readable table and fits (what the CLI prints). */
void study_result_print(const study_result *r, FILE *f);

/* ---- pieces, exposed for tests ------------------------------------------- */

/* order (N) = indices 0..N-1 sorted by proxy descending, ties by index
 * ascending, NaN last: order[0] is what bon_argmax picks over all N. */
void study_bon_order(const float *proxy, int N, int *order);
/* w (N): w[j] = C(N-1-j, n-1) / C(N, n), the probability that the j-th best of
 * N samples is the best of a uniform random n-subset (1 <= n <= N). Sums to 1. */
void study_bon_weights(int N, int n, double *w);
/* One prompt's best-of-n estimate from N scored samples: the chosen answer's
 * proxy and gold (prefix: argmax of proxy[0..n); subsets: the weighted average
 * over the order). order from study_bon_order (needed by subsets only), w
 * scratch (N). Returns the index chosen by prefix, -1 for subsets. */
int study_bon_estimate(const float *proxy, const float *gold, int N, int n, study_bon_estimator e, const int *order,
                       double *w, double *proxy_out, double *gold_out);
/* Parses "1,2,4" into out (at most max values). Returns the count, or -1 on
 * anything that is not a comma-separated list of integers in [lo, hi]. An
 * empty string gives 0. */
int study_parse_int_list(const char *s, int *out, int max, int lo, int hi);

#endif
