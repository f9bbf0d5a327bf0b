/* gpt.h — GPT-2 in C: forward, backward, a scalar head, KV-cache decoding.
 *
 * Architecture (GPT-2): learned token (wte) and position (wpe) embeddings,
 * L pre-LayerNorm blocks  x += attn(ln1(x)); x += mlp(ln2(x))  with causal
 * multi-head attention and a GELU(tanh) MLP of width 4C, a final LayerNorm,
 * and the LM head tied to wte (logits = lnf(x) @ wte^T, no bias).
 * A scalar head (hw (C), hb (1)) maps the final hidden state at chosen
 * positions to one number: reward models and value functions use it.
 *
 * Memory is planned once: gpt_init allocates parameters, their gradients and
 * the AdamW moments in one block each (tensors pointed into it, llm.c style),
 * and the activations for (max_B, max_T) in another. Nothing is allocated in a
 * step: forward/backward take any B <= max_B, T <= max_T.
 *
 * Training step:
 *     gpt_zero_grad(m);                          (once per optimizer step)
 *     for each micro-batch: loss = gpt_forward(m, in, tgt, w, B, T); gpt_backward(m);
 *     optim step (src/optim/adamw.h) on m->params / m->grads
 * Custom losses (RL) use the split backward:
 *     gpt_forward(m, in, tgt, NULL, B, T);       logp of targets in m->logp (B,T)
 *     gpt_backward_begin(m);
 *     gpt_scalar_backward(m, pos, dvalue);       optional: value/reward head
 *     gpt_backward_end(m, dlogp);                dlogp (B,T) = dLoss/dlogp, or NULL
 *
 * Errors: gpt_init returns RL_EINVAL for a bad config, RL_ENOMEM. The other
 * calls CHECK their arguments (B, T within the plan, token ids < V): a wrong
 * call is a programming error.
 */
#ifndef RL_GPT_H
#define RL_GPT_H
#include <stddef.h>
#include <stdint.h>
#include "../base/check.h"
#include "../kernels/ops.h"
#include "../optim/adamw.h"

typedef struct {
    int L;      /* layers */
    int NH;     /* heads */
    int C;      /* channels (C % NH == 0) */
    int V;      /* vocabulary size */
    int maxT;   /* context length (rows of wpe) */
} gpt_config;

/* Fills L, NH, C for "tiny" (4,4,256), "small" (6,6,384), "gpt2" (12,12,768);
 * keeps V and maxT. RL_EINVAL for an unknown name. */
rl_status gpt_config_named(gpt_config *cfg, const char *name);
/* Parameters of a config (weights + scalar head). */
size_t gpt_num_params(const gpt_config *cfg);

#define GPT_NUM_TENSORS 18
typedef struct {
    float *wte;      /* (V, C) */
    float *wpe;      /* (maxT, C) */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, 3C, C) */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, 4C, C) */
    float *fcb;      /* (L, 4C) */
    float *fcprojw;  /* (L, C, 4C) */
    float *fcprojb;  /* (L, C) */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
    float *headw;    /* (C)  scalar head weight */
    float *headb;    /* (1)  scalar head bias */
} gpt_tensors;

/* Per tensor: name (PyTorch-style) and whether AdamW decays it by default
 * (only the 2-D matmul weights: qkvw, attprojw, fcw, fcprojw). */
extern const char *const gpt_tensor_names[GPT_NUM_TENSORS];
extern const int gpt_tensor_decay[GPT_NUM_TENSORS];

typedef struct {
    float *encoded;   /* (B, T, C) */
    float *ln1;       /* (L, B, T, C) */
    float *ln1_mean;  /* (L, B, T) */
    float *ln1_rstd;  /* (L, B, T) */
    float *qkv;       /* (L, B, T, 3C) */
    float *atty;      /* (L, B, T, C) */
    float *att;       /* (L, B, NH, T, T) */
    float *attproj;   /* (L, B, T, C) */
    float *residual2; /* (L, B, T, C) */
    float *ln2;       /* (L, B, T, C) */
    float *ln2_mean;  /* (L, B, T) */
    float *ln2_rstd;  /* (L, B, T) */
    float *fch;       /* (L, B, T, 4C) */
    float *fch_gelu;  /* (L, B, T, 4C) */
    float *fcproj;    /* (L, B, T, C) */
    float *residual3; /* (L, B, T, C) */
    float *lnf;       /* (B, T, C)  final hidden state */
    float *lnf_mean;  /* (B, T) */
    float *lnf_rstd;  /* (B, T) */
    float *logits;    /* (B, T, V)  overwritten by dlogits in gpt_backward_end */
    float *lse;       /* (B, T)  log-sum-exp of each logits row */
    float *logp;      /* (B, T)  log p(target) (0 where target < 0) */
} gpt_acts;
#define GPT_NUM_ACTS 22

/* Gradient buffers of the activations for the backward pass (sized for max_B, max_T). */
typedef struct {
    float *dresidual; /* (B, T, C) gradient flowing down the residual stream */
    float *dlnf;      /* (B, T, C) gradient of the final hidden state */
    float *dln;       /* (B, T, C) */
    float *dqkv;      /* (B, T, 3C) */
    float *datty;     /* (B, T, C) */
    float *datt;      /* (B, NH, T, T) scratch */
    float *dfch;      /* (B, T, 4C) */
    float *dfch_gelu; /* (B, T, 4C) */
    float *dres2;     /* (B, T, C) */
    float *dlogp;     /* (B, T) */
} gpt_grad_acts;

typedef struct {
    gpt_config cfg;
    const ops_table *ops;
    size_t num_params;
    size_t tensor_size[GPT_NUM_TENSORS];
    float *params;    /* (num_params) owned, all weights in one block */
    float *grads;     /* (num_params) owned */
    gpt_tensors w;    /* views into params */
    gpt_tensors g;    /* views into grads */
    int max_B, max_T;
    float *act_mem;   /* owned */
    gpt_acts a;
    float *gact_mem;  /* owned; NULL until the first backward plan (see gpt_plan) */
    gpt_grad_acts d;
    /* KV cache for decoding: (L, max_B, maxT, C) each; owned, NULL unless planned */
    float *kcache, *vcache;
    int cache_B;
    float *dec_mem;   /* decoding scratch, owned */
    uint16_t *half;   /* (num_params) binary16 snapshot of params for decoding, owned; NULL = decode in fp32 */
    int8_t *q8;       /* (num_params) int8 snapshot for decoding (gpt_decode_int8), owned; NULL = off */
    float *q8_scale;  /* (num_params / OPS_Q8_BLOCK) its block scales, owned */
    float *dec_priv;  /* per-thread scratch of the fused low-precision step (gpt_decode.c), owned */
    size_t dec_priv_n;
    int exact;        /* gpt_set_exact: row-independent kernels in the forward and the fp32 decode step */
    /* state of the last forward */
    int B, T;
    const int *inputs;   /* (B, T) caller's, must stay valid until backward */
    const int *targets;  /* (B, T) or NULL */
    const float *weight; /* (B, T) or NULL */
    int has_targets;
    int *tgt_copy;       /* (max_B*max_T) owned copy of targets */
    int *inp_copy;       /* (max_B*max_T) owned copy of inputs */
    float *w_copy;       /* (max_B*max_T) owned copy of the weights */
    double weight_sum;
    float loss;          /* mean (weighted) cross-entropy of the last forward, -1 without targets */
    int skip_lm_head;    /* set by gpt_forward_hidden */
} gpt_model;

/* Allocates parameters (+ their grads) and activations for B <= max_B,
 * T <= max_T <= cfg->maxT; initialises weights GPT-2 style from `seed`
 * (N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), LN 1/0, biases 0).
 * `ops` NULL means ops_get("fast"). */
rl_status gpt_init(gpt_model *m, const gpt_config *cfg, int max_B, int max_T, const ops_table *ops, uint64_t seed);
/* Same plan and allocation, weights all zero (to be filled, e.g. by ckpt_load). */
rl_status gpt_init_empty(gpt_model *m, const gpt_config *cfg, int max_B, int max_T, const ops_table *ops);
void gpt_free(gpt_model *m);

/* Forward pass. inputs (B,T) token ids; targets (B,T) or NULL (ids; < 0 = ignore);
 * loss_weight (B,T) or NULL (all 1). Copies inputs/targets/weights internally.
 * Returns the loss sum(w * -logp) / sum(w) (0 when sum(w) == 0), or -1 without targets.
 * After it: m->a.logits (B,T,V), m->a.lnf (B,T,C) (final hidden state), m->a.logp. */
float gpt_forward(gpt_model *m, const int *inputs, const int *targets, const float *loss_weight, int B, int T);
/* Forward up to the final hidden state only (no LM head; for reward/value models). */
void gpt_forward_hidden(gpt_model *m, const int *inputs, int B, int T);

/* Zeroes the parameter gradients (call once per optimizer step; backward accumulates). */
void gpt_zero_grad(gpt_model *m);
/* Backward of the loss of the last gpt_forward (needs targets) into m->grads (accumulating). */
void gpt_backward(gpt_model *m);
/* Split backward for custom losses (see top). dlogp (B,T) may be NULL (no LM-head term,
 * e.g. a pure reward model after gpt_forward_hidden). */
void gpt_backward_begin(gpt_model *m);
void gpt_backward_end(gpt_model *m, const float *dlogp);
/* Like gpt_backward_end, for losses that need the whole logits row (an entropy
 * bonus): the caller has overwritten m->a.logits (B,T,V) with dLoss/dlogits
 * (read the logits first; m->a.lse holds each row's log-sum-exp). */
void gpt_backward_end_dlogits(gpt_model *m);

/* Scalar head on the final hidden state of the last forward:
 * out[b] = hw . lnf[b, pos[b], :] + hb.   pos (B) positions in [0, T). */
void gpt_scalar_forward(gpt_model *m, const int *pos, float *out);
/* Adds the head's gradient for dout (B) = dLoss/dout into m->g.headw/headb and the
 * final-hidden-state gradient; call between gpt_backward_begin and _end. */
void gpt_scalar_backward(gpt_model *m, const int *pos, const float *dout);

/* AdamW parameter groups, one per tensor (GPT_NUM_TENSORS entries written to
 * `out`): weight decay on the matmul weights only, plus the embeddings when
 * decay_embeddings. Returns the number of groups. */
int gpt_param_groups(const gpt_model *m, optim_group *out, int decay_embeddings);

/* ---- KV-cache decoding ------------------------------------------------------ */

/* Plans the KV cache for up to `B` sequences of up to cfg.maxT tokens (allocates once). */
rl_status gpt_cache_plan(gpt_model *m, int B);
/* Half-precision decoding: on = 1 takes a binary16 snapshot of the current weights
 * that gpt_cache_step then uses for every matmul (LM head included): half the
 * memory traffic per token, logits within ~1e-3 of fp32. The snapshot does not
 * follow later weight updates: call again after training steps. on = 0 frees it
 * (back to exact fp32 decoding). RL_ENOMEM. */
rl_status gpt_decode_half(gpt_model *m, int on);
/* int8 decoding (gpt_decode.c): on = 1 takes a snapshot of the weights quantised
 * to int8 in blocks of 32 along C with one float scale each (ops_quantize_q8):
 * a quarter of the fp32 memory traffic per token; the inputs of every matmul are
 * quantised the same way (integer dot products). Log-probs differ from fp32's by
 * up to ~3e-2 (half precision: ~1e-3): for sampling and serving, never for
 * log-probs that training uses. Replaces a half snapshot (and gpt_decode_half
 * replaces this one). Needs C % 32 == 0 (RL_EUNSUPPORTED); RL_ENOMEM. on = 0 frees it. */
rl_status gpt_decode_int8(gpt_model *m, int on);

/* Exact mode (on = 1): the training forward (gpt_forward, gpt_forward_hidden)
 * and the fp32 decode step (gpt_cache_step without a half snapshot) use the
 * row-independent ops (ops.h: matmul_forward_exact, attention_forward_exact,
 * attention_step), so the sampler's log-probs equal gpt_forward's log-probs of
 * the same tokens bitwise, for any batch size, prompt lengths and thread
 * count. Costs: the forward's attention is a plain-C kernel instead of sgemm
 * (a few % of a training step); each decode row is computed inside a full
 * sgemm tile (2 rows per sequence on OpenBLAS's Zen/Haswell kernel) instead
 * of by sgemv: about 2x the generation time at PPO's batch sizes.
 * PPO turns it on for the policy; `rlhf sample` leaves it off. */
void gpt_set_exact(gpt_model *m, int on);

/* Feeds one token per sequence at position `pos` (the same for all rows; prompts
 * are fed one position at a time, rows of different prompt lengths simply start
 * sampling at different positions). tokens (B); writes logits (B,V) into `logits`
 * (caller's buffer). Positions [0, pos) of rows 0..B-1 must have been fed before.
 * Uses the same ops (matmul, layernorm, gelu) as the training forward. */
void gpt_cache_step(gpt_model *m, const int *tokens, int B, int pos, float *logits);
/* gpt_cache_step with the half-precision or int8 snapshot (gpt_decode.c;
 * gpt_cache_step calls it when m->half or m->q8 is set): all layers in ONE parallel region per step, each
 * matmul's output channels split across the threads (ops matvec_h / matvec_q8, with
 * the residual add and GELU fused into it), attention over the cache split by
 * (row, head) (ops attention_decode), LayerNorm recomputed by every thread
 * instead of shared, and a spin-then-sleep barrier between the phases instead
 * of a thread wake-up per op. Same math as the fp32 step on the rounded
 * weights; results do not depend on the thread count. Allocates its per-thread
 * scratch on first use for a (threads, B) (CHECK on out of memory). */
void gpt_cache_step_lowp(gpt_model *m, const int *tokens, int B, int pos, float *logits);

#endif
