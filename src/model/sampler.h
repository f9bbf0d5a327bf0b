/* sampler.h — batched KV-cache decoding with per-token log-probabilities.
 *
 * Many sequences decode at once (one gpt_cache_step per position for the whole
 * batch): n prompts, or one prompt repeated n times, for PPO rollouts and
 * best-of-n. Rows whose prompts are shorter start sampling earlier; finished
 * rows ride along until every row is done.
 *
 * The log-probability returned for each generated token is the model's own
 * log p(token | prefix) at temperature 1 without top-k/top-p filtering (what
 * policy-gradient methods need), computed by the same logsoftmax op the
 * training forward uses; tests check it equals the full forward's log-prob.
 *
 * Randomness: row r draws from rl_rng_seed_stream(seed, r), so a row's sample
 * does not depend on the batch size. temperature 0 = greedy (deterministic).
 */
#ifndef RL_SAMPLER_H
#define RL_SAMPLER_H
#include <stdint.h>
#include "gpt.h"

typedef struct {
    int max_tokens;        /* tokens to generate per row (>= 1) */
    float temperature;     /* 0 = greedy */
    int top_k;             /* 0 = off */
    float top_p;           /* 1 = off (nucleus sampling otherwise) */
    int stop_tokens[4];    /* generation of a row ends after any of these (-1 = unused) */
    uint64_t seed;
} sampler_opts;

/* Fills defaults: max_tokens 256, temperature 1, top_k 0, top_p 1, no stop tokens, seed 1. */
void sampler_opts_default(sampler_opts *o);

typedef struct {
    int n;            /* rows */
    int cap;          /* max_tokens */
    int *tokens;      /* (n, cap) generated ids (row r: tokens[r*cap .. r*cap+len[r])) */
    float *logp;      /* (n, cap) log p of each generated token (temperature 1, unfiltered) */
    int *len;         /* (n) tokens generated (a stop token included) */
    int *stopped;     /* (n) 1 if the row ended on a stop token, 0 if it hit max_tokens or the context */
} sampler_result;

/* Called for every generated token as soon as it is chosen (row, id). May be NULL.
 * Returns 0 to go on; nonzero cancels the whole call after the current position
 * (every row keeps the tokens it has, stopped stays 0 unless it ended on a stop
 * token; sampler_generate returns RL_OK): the server's Stop button. */
typedef int (*sampler_stream_fn)(void *ctx, int row, int token);

/* Generates for n rows: prompts[r] (plen[r] >= 1 tokens each; every prompt must
 * be shorter than the context). Plans the model's KV cache for n rows (allocates
 * once). res is allocated here; free with sampler_result_free.
 * RL_EINVAL for empty/too-long prompts or bad options, RL_ENOMEM. */
rl_status sampler_generate(gpt_model *m, const int *const *prompts, const int *plen, int n, const sampler_opts *o,
                           sampler_result *res, sampler_stream_fn cb, void *ctx);
void sampler_result_free(sampler_result *r);

/* Planned-once variant for training loops (PPO rollouts, best-of-n): every
 * buffer the decoding loop needs, sized for up to max_n rows and max_tokens
 * generated tokens each, allocated by sampler_ws_init and reused by every
 * sampler_generate_ws call (no allocation per call). res inside the
 * workspace holds the last call's output (n, len, tokens, logp, stopped).
 * Also plans the model's KV cache for max_n rows. */
typedef struct {
    int max_n, max_tokens, V;
    sampler_result res;  /* owned; res.cap = max_tokens */
    float *logits;       /* (max_n, V) */
    float *lse, *lp;     /* (max_n) */
    int *cur, *next, *done; /* (max_n) */
    void *scratch;       /* (V) candidates */
    void *rngs;          /* (max_n) rl_rng */
} sampler_ws;
rl_status sampler_ws_init(sampler_ws *w, gpt_model *m, int max_n, int max_tokens);
void sampler_ws_free(sampler_ws *w);
/* Same as sampler_generate (same tokens and log-probs for the same inputs) into
 * w->res; o->max_tokens must be <= w->max_tokens and n <= w->max_n. */
rl_status sampler_generate_ws(gpt_model *m, sampler_ws *w, const int *const *prompts, const int *plen, int n,
                              const sampler_opts *o, sampler_stream_fn cb, void *ctx);

#endif
