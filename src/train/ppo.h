/* ppo.h — online RL for language models: PPO with a KL penalty to a frozen
 * reference, and the critic-free RLOO and GRPO, in one engine.
 *
 * One iteration (ppo_step):
 *   1. rollout   R = P*k rows (P prompts, k samples each) decoded together with
 *                the batched KV-cache sampler (sampler_generate_ws, planned once);
 *   2. score     the reward (src/train/reward.h) on every (prompt, response);
 *   3. evaluate  the TRAINING forward (gpt_forward, the same code and the same
 *                minibatch layout as the first training pass) gives the old
 *                log-probs, so the ratio of the first minibatch is exactly 1; the
 *                frozen reference gives ref log-probs, the value head the values.
 *                The policy runs in exact mode (gpt_set_exact), so the sampler's
 *                own log-probs equal them bitwise (stats.logp_diff: max
 *                |sampler - forward|, 0);
 *   4. advantages
 *        ppo:  r_t = -β kl_t, + clip(score) at the last token (alg §1.2); GAE(γ, λ);
 *              whitened advantages (alg §1.3)
 *        rloo: r_i = clip(score_i) - β Σ_t kl_t (sequence level, alg §2 RLOO row);
 *              A_i = r_i - mean of the other k-1 samples of the prompt, on every token
 *        grpo: A_i = (s_i - mean_group)/(std_group + 1e-4) on every token; the KL is a
 *              k3 term IN THE LOSS with weight β (alg §2 GRPO row)
 *   5. train     `epochs` passes over minibatches of `minibatch` rows (rows
 *                shuffled after the first pass): clipped policy loss, optional
 *                entropy bonus, clipped value loss (ppo), one AdamW step each;
 *   6. KL control  β ← adaptive controller (Ziegler 2019) or fixed.
 *
 * Shapes: R rollout rows; T positions of a row (prompt + response − 1, the
 * longest row of the rollout; the plan holds Tp = min(maxT, max prompt + max_new));
 * position t predicts token t+1; mask (R,T) is 1 where that token is a response
 * token. Values V[r,t] are the value head on the hidden state at t (the state
 * before response token t+1 is emitted).
 *
 * Memory: ppo_init plans every buffer (rollout, minibatch gathers, sampler
 * workspace, KV cache, model activations for `minibatch` rows); ppo_step
 * allocates nothing.
 *
 * Errors: ppo_init returns RL_EINVAL for inconsistent settings (message says
 * which), RL_ENOMEM. ppo_step returns a reward's error; RL_EINTERNAL-free: model
 * misuse CHECKs (programming errors).
 */
#ifndef RL_PPO_H
#define RL_PPO_H
#include <signal.h>
#include <stdint.h>
#include "objectives.h"
#include "reward.h"
#include "../base/rng.h"
#include "../model/gpt.h"
#include "../model/sampler.h"
#include "../optim/adamw.h"
#include "../dist/dp.h"
#include "../diag/diag.h"

typedef enum { PPO_ALGO_PPO = 0, PPO_ALGO_RLOO = 1, PPO_ALGO_GRPO = 2 } ppo_algo;

typedef struct {
    ppo_algo algo;
    int prompts_per_step;  /* P */
    int k;                 /* samples per prompt (ppo: >= 1, rloo/grpo: >= 2) */
    int max_new;           /* response tokens at most */
    double temperature;    /* rollout temperature (1: the log-probs are the policy's own) */
    int stop_tokens[4];    /* -1 = unused */
    double lr;             /* policy learning rate */
    double value_lr;       /* separate value network's learning rate */
    double grad_clip;      /* global-norm clip (0 = off) */
    double weight_decay;
    int epochs;            /* passes over each rollout */
    int minibatch;         /* rows per minibatch (one optimizer step each) */
    double gamma, lam;     /* GAE */
    double clip;           /* policy ratio clip ε */
    double value_clip;     /* value clip (0 = unclipped) */
    double vf_coef;        /* value loss weight on a shared trunk */
    double ent_coef;       /* entropy bonus (0 = off) */
    obj_kl_type kl_type;   /* KL estimator for the penalty (k1 or k3; GRPO's in-loss term is k3) */
    double kl_coef;        /* β (initial β when adaptive) */
    int adaptive_kl;
    double kl_target;      /* nats per sequence */
    double kl_horizon;     /* episodes */
    double score_clip;     /* clip the score to [-c, c] (0 = off) */
    int whiten_adv;        /* whiten advantages over the batch (ppo default on) */
    int separate_value;    /* 1: separate value network, 0: value head on the policy trunk */
    obj_agg grpo_agg;      /* GRPO loss aggregation (paper: per-sequence mean) */
    int grpo_scale_std;    /* GRPO: divide by the group std (0 = Dr. GRPO) */
    uint64_t seed;
} ppo_config;

/* Defaults with their sources (docs/rl.md): γ 1, λ 0.95, clip 0.2, value clip
 * 0.2, vf_coef 0.1, 4 epochs, k1 KL with β 0.05 (TRL PPO), adaptive off
 * (target 6 nats, horizon 10000: Ziegler), score_clip 0, whitening on for ppo;
 * rloo: k 2 (TRL), β 0.05, no whitening; grpo: k 8 (TRL), β 0.04 (paper), 1 epoch
 * (paper: one update per exploration stage), per-sequence aggregation. lr 1e-5. */
void ppo_config_default(ppo_config *c, ppo_algo algo);
const char *ppo_algo_name(ppo_algo a);

#define PPO_MAX_LOG_GROUPS 16
/* Metrics of one iteration. */
typedef struct {
    long long step;
    double reward_mean, reward_std;  /* raw scores (before clipping) */
    double kl;                       /* mean sequence KL with the chosen estimator (old policy vs ref) */
    double kl_k1, kl_k3;             /* mean sequence KL, both estimators */
    double beta;                     /* KL coefficient used this iteration */
    double entropy;                  /* mean per-token entropy of the rollout policy */
    double clipfrac, approx_kl;      /* means over minibatches */
    double pg_loss, vf_loss, vf_clipfrac;
    double explained_var;            /* of the rollout values vs returns (ppo) */
    double resp_len;                 /* mean response tokens */
    double logp_diff;                /* max |sampler logp - training-forward logp| */
    double first_ratio_dev;          /* max |ρ - 1| in the very first minibatch (0: exact) */
    double t_gen, t_score, t_train;  /* seconds */
    long long gen_tokens;
    int ngroups;                     /* groups: rewards: G (> 1), else 0 */
    double reward_group[PPO_MAX_LOG_GROUPS]; /* mean reward of each group (first PPO_MAX_LOG_GROUPS), all ranks */
} ppo_stats;

typedef struct {
    ppo_config c;
    gpt_model *policy, *ref, *value; /* caller's; value NULL unless separate_value (ppo) */
    optim_adamw *opt, *vopt;         /* caller's (vopt with value) */
    reward_fn *reward;               /* caller's */
    const int *const *prompts;       /* caller's: n_prompts prompts, plen tokens each */
    const int *plen;
    int n_prompts;
    int R, Tp, V;
    long long step;                  /* iterations done */
    uint64_t cursor;                 /* prompts consumed */
    obj_kl_ctl klc;
    rl_rng rng;
    sampler_ws sw;
    int *perm_prompts;               /* (n_prompts) fixed shuffle of the prompt order */
    /* rollout (R, Tp) unless noted */
    int *row_prompt;                 /* (R) */
    int *inputs, *targets;
    float *mask, *old_logp, *ref_logp, *values, *kl, *rewards, *adv, *returns;
    float *score, *score_c, *seq_kl, *seq_adv, *seq_tmp; /* (R) */
    reward_item *items;              /* (R) */
    const int **rp;                  /* (R) prompt pointers for the sampler */
    int *rplen;                      /* (R) */
    int *perm;                       /* (R) row order of a pass */
    /* minibatch gathers (minibatch, Tp) */
    int *mb_in, *mb_tg, *mb_pos;
    float *mb_mask, *mb_old, *mb_ref, *mb_adv, *mb_ret, *mb_oldv, *mb_v, *mb_dlogp, *mb_dv, *mb_sadv, *mb_tmp;
    /* Data parallelism (src/dist), set by the caller after ppo_init; NULL =
     * one process (the code path of a trainer that never heard of MPI). With
     * dp every rank rolls out its own P prompts (the next P x world of the
     * shared prompt order, rank r the r-th P of them) with its own sampling
     * seed (dist_seed_for_rank), scores them where they are, and the logged
     * statistics (reward mean/std, KL, entropy, length), advantage whitening
     * and the KL controller use global sums over all ranks; each minibatch
     * step averages the ranks' gradients (dist_dp_step on dp, vdp for the
     * separate value network). opt/vopt must then be dist_dp_adamw(dp/vdp). */
    dist_dp *dp, *vdp;
    int dist_debug;                  /* 1: print this rank's local sums to stderr every step */
} ppo_trainer;

/* Sets up a trainer. policy/ref/value must be gpt_init'ed (or loaded) with
 * max_B >= c->minibatch and max_T >= Tp; same config and vocabulary for
 * policy and ref. opt must be initialised over policy->params (vopt over
 * value->params when value). Checks the settings. */
rl_status ppo_init(ppo_trainer *t, const ppo_config *c, gpt_model *policy, optim_adamw *opt, gpt_model *ref,
                   gpt_model *value, optim_adamw *vopt, reward_fn *reward, const int *const *prompts,
                   const int *plen, int n_prompts);
void ppo_free(ppo_trainer *t);
/* Planned sequence length Tp for prompts of up to max_plen tokens. */
int ppo_plan_T(const gpt_config *cfg, int max_plen, int max_new);

/* One iteration. If *stop becomes non-zero during the rollout or scoring the
 * iteration is abandoned before any weight changes (returns RL_OK with
 * *abandoned = 1); training, once begun, completes. */
rl_status ppo_step(ppo_trainer *t, ppo_stats *st, volatile sig_atomic_t *stop, int *abandoned);

/* dLoss/dlogits of a policy-gradient term plus an entropy bonus, written in
 * place over the logits (one pass per row, so the (N,V) logits buffer is reused
 * for the gradient; gpt_backward_end_dlogits continues from it):
 *   z (N,V) logits in, dlogits out; lse (N) their log-sum-exp; targets (N)
 *   (< 0: row ignored, zero gradient); dlogp (N) = dL/dlogp(target); mask (N)
 *   dz_j = dlogp (1[j = target] - p_j) + (ent_coef m / M) p_j (log p_j + H),
 * the second term being the gradient of -ent_coef * (mask-weighted mean entropy),
 * M = sum(mask) (obj_entropy's convention). */
void ppo_pg_entropy_dlogits(float *z, const float *lse, const int *targets, const float *dlogp, const float *mask,
                            int N, int V, double ent_coef);

/* ---- command-level driver (rlhf ppo) ---------------------------------------- */
typedef struct {
    const char *policy_path, *tokenizer_path, *reward_spec, *prompts_path, *out_path;
    const char *value_init;   /* separate value network initial weights (NULL: the policy's) */
    const char *log_path;     /* metrics JSONL (NULL: off) */
    const char *aggregate;    /* group rule */
    const char *snapshot_dir; /* NULL, or: at every save also DIR/step-NNNNNN.ckpt (policy weights and step, no
                                 optimizer): the checkpoints along the run that `rlhf study overoptimization` reads */
    double alpha;
    int steps, save_every, resume, chat, quiet;
    int dist_debug;           /* under mpirun: every rank prints its local reward/KL sums to stderr */
    ppo_config c;
    /* live monitors (src/train/monitor.h, docs/diagnostics.md) */
    diag_config diag;         /* thresholds (diag_config_default, then change fields); left zeroed = the defaults */
    const char *gold_spec;    /* --gold: any reward spec (sim:gold, rm:heldout.ckpt) scored on every rollout; NULL = none */
    int early_stop;           /* --early-stop: keep OUT.best (best smoothed gold) and stop at over-optimisation (needs gold) */
    int patience;             /* --patience: also stop after this many gold measurements without a new best (0 = off) */
    const char *eval_prompts; /* --eval-prompts: held-out prompts answered greedily and scored by the gold (NULL = the
                                 gold is measured on every rollout instead) */
    int eval_every;           /* --eval-every K: with eval_prompts, before training and every K iterations */
} ppo_run_opts;
/* Loads everything, trains `steps` iterations (Ctrl-C: saves and returns),
 * writes <out> (policy + AdamW + KL state) and <out>.value. Fails fast (CHECK)
 * with a message on bad files; returns 0 on success. */
int ppo_run(const ppo_run_opts *o);

/* Reads a prompts file: one prompt per line, plain text, or a JSON object with
 * a "prompt" string. chat = 1 renders each as a user turn with the generation
 * prompt (<|bos|><|user|>...<|end|><|assistant|>); chat = 0 prefixes the
 * document separator. Returns the prompts as token arrays (each owned by
 * *ids, one block; (*ids)[i] points into it) and texts (for best-of-n).
 * RL_EIO / RL_EINVAL with "file:line: ..." messages. */
typedef struct {
    int n;
    int **ids;      /* (n) */
    int *len;       /* (n) */
    char **text;    /* (n) the prompt text as given */
} ppo_prompts;
rl_status ppo_prompts_load(ppo_prompts *p, const char *path, const tok_tokenizer *tok, int chat, int max_len);
void ppo_prompts_free(ppo_prompts *p);

#endif
