/* objectives.h — every RLHF loss as a pure function on arrays.
 *
 * No model lives here: inputs are logits, log-probabilities, rewards, values
 * and masks; each loss returns its value and writes the gradient with respect
 * to its inputs, so a trainer chains it into the model's backward pass.
 * Formulas and defaults come from /work/shared/reference/algorithms.md (cited
 * as "alg §x.y") and the papers named in each comment; docs/objectives.md maps
 * every loss to its function.
 *
 * Shape vocabulary (llm.c style):
 *   B  sequences in a batch           T  positions per sequence
 *   V  vocabulary size                Vp row stride of a logits row (Vp >= V,
 *                                        padded columns are never read/written)
 *   N  pairs / examples               P  prompts
 *   K  responses per prompt (rankings, RLOO, GRPO groups)
 *
 * Conventions (the contract):
 *  - Arrays are float (what the model produces); reductions are done in double.
 *    Losses and statistics are returned as double.
 *  - Gradients with respect to LOGITS (B,T,V) are ADDED to dlogits, scaled by
 *    an upstream factor `dloss` (dlogits += dloss * dL/dlogits): several terms
 *    (SFT + ORPO, PPO + entropy bonus) feed the same logits buffer, which the
 *    trainer zeroes once per step. Every other gradient output (w.r.t. rewards,
 *    log-probs, values: small arrays) is WRITTEN (overwritten). Any gradient
 *    pointer may be NULL to skip it.
 *  - Masks and weights are float arrays; NULL means "all ones". A position or
 *    example with weight 0 contributes nothing, not even to the denominator.
 *  - Batched losses are weighted means: sum_i w_i l_i / sum_i w_i. When every
 *    weight is 0 the loss is 0 and the gradients are 0 (never NaN).
 *  - These functions never allocate and never exit. Preconditions (sizes > 0,
 *    parameters in the documented ranges) are the caller's; the trainers
 *    validate flags before calling. A target id outside [0, V) makes a loss
 *    NaN (surfaces in the log) instead of reading out of bounds.
 *  - Numerics: log σ(x) is computed as -softplus(-x) with
 *    softplus(x) = max(x,0) + log1p(exp(-|x|)); softmaxes subtract the row max.
 */
#ifndef RL_OBJECTIVES_H
#define RL_OBJECTIVES_H
#include <stdint.h>

/* ---- scalar helpers ------------------------------------------------------- */

/* softplus(x) = log(1 + e^x), exact for every finite x (no overflow). */
double obj_softplus(double x);
/* log σ(x) = -softplus(-x). */
double obj_log_sigmoid(double x);
/* σ(x) without overflow for large |x|. */
double obj_sigmoid(double x);
/* log(1 - e^x) for x < 0 (Mächler 2012: expm1 branch above -ln 2, log1p below). */
double obj_log1mexp(double x);

/* ======================================================================== */
/* 1. Token level: masked cross-entropy, log-prob gather, entropy            */
/* ======================================================================== */

/* Masked token cross-entropy (SFT; loss on assistant tokens only).
 *   logits  (B,T,Vp)  row (b,t) predicts targets[b,t]
 *   targets (B,T)     token ids in [0,V); a negative id means "ignore" (weight 0)
 *   weights (B,T)     per-position weight/mask (1 on assistant tokens, 0 on
 *                     prompt and padding); NULL = all ones
 *   losses  (B,T)     optional out: -log p(target) per position (0 where ignored)
 *   dlogits (B,T,Vp)  optional: += dloss * w_bt / W * (softmax_bt - onehot(target))
 * L = sum_bt w_bt * (-log softmax(logits_bt)[target_bt]) / W,  W = sum_bt w_bt
 * (mean over unmasked positions). Returns L (0 when W = 0).
 * Source: standard LM cross-entropy; SFT masking as in InstructGPT / TRL's
 * assistant-only loss (issue 4, item 1). */
double obj_token_xent(const float *logits, const int32_t *targets, const float *weights,
                      int B, int T, int V, int Vp, float dloss, float *dlogits, float *losses);

/* Per-token log-probabilities of the given tokens (the sequence log-prob
 * building block for DPO/KTO/PPO; log π(a_t|s_t) of alg §1.2).
 *   logits (B,T,Vp), targets (B,T) -> logp (B,T) = log softmax(logits_bt)[targets_bt].
 * A negative target gives logp = 0 (a padding position); a target >= V gives NaN. */
void obj_token_logprobs(const float *logits, const int32_t *targets,
                        int B, int T, int V, int Vp, float *logp);

/* Backward of obj_token_logprobs:
 *   dlogits[b,t,v] += dlogp[b,t] * (onehot(targets_bt)[v] - softmax(logits_bt)[v]).
 * Rows with a negative target or dlogp = 0 are skipped. */
void obj_token_logprobs_backward(const float *logits, const int32_t *targets, const float *dlogp,
                                 int B, int T, int V, int Vp, float *dlogits);

/* Sequence log-prob (alg §2: "summed over the response tokens"):
 * seq_logp[b] = sum_t mask[b,t] * logp[b,t]  (B)
 * and, if seq_len != NULL, seq_len[b] = sum_t mask[b,t] (the response length |y|
 * used by IPO per-token normalisation, ORPO and SimPO). mask NULL = all ones. */
void obj_seq_logprobs(const float *logp, const float *mask, int B, int T,
                      float *seq_logp, float *seq_len);
/* Backward: dlogp[b,t] = mask[b,t] * dseq[b] (written). */
void obj_seq_logprobs_backward(const float *dseq, const float *mask, int B, int T, float *dlogp);

/* Mean entropy of the policy over masked positions (entropy bonus, Schulman
 * 2017 PPO Eq. 9; entropy as a collapse diagnostic, alg §5.7).
 *   logits (B,T,Vp), mask (B,T) or NULL, ent (B,T) optional per-token entropy out.
 * H = sum_bt m_bt H_bt / sum_bt m_bt,  H_bt = -sum_v p_v log p_v.
 * dlogits += dloss * m_bt/M * dH_bt/dz, with dH/dz_j = -p_j (log p_j + H_bt).
 * For an entropy *bonus* c_ent*H subtracted from a loss pass dloss = -c_ent. */
double obj_entropy(const float *logits, const float *mask, int B, int T, int V, int Vp,
                   float dloss, float *dlogits, float *ent);

/* ======================================================================== */
/* 2. Reward-model losses on scalar rewards (alg §1.1)                      */
/* ======================================================================== */

/* Bradley–Terry pairwise loss (InstructGPT Eq. 1; margin as TRL RewardTrainer;
 * centring term from arXiv 2312.09244 as TRL center_rewards_coefficient).
 *   r_chosen, r_rejected (N)  scalar rewards of the preferred / other response
 *   margin (N) or NULL        required reward gap m_i (0 if NULL)
 *   weight (N) or NULL        per-pair weight (annotator reweighting)
 *   center_coef               c >= 0; adds c * sum w (r_w + r_l)^2 / W (0 = off; TRL suggests 0.01)
 * L = sum_i w_i [ -log σ(r_w,i - r_l,i - m_i) ] / W  (+ centring).
 * d_chosen, d_rejected (N) written: dL/dr. */
double obj_bt_loss(const float *r_chosen, const float *r_rejected, const float *margin,
                   const float *weight, int N, double center_coef,
                   float *d_chosen, float *d_rejected);

/* Pairwise preferences with explicit ties: the Davidson (1970) model
 * (R. R. Davidson, "On extending the Bradley-Terry model to accommodate ties in
 * paired comparison experiments", JASA 65:317-328). With π = e^r and d = r_a - r_b:
 *   P(a ≻ b) = e^{r_a} / Z,  P(b ≻ a) = e^{r_b} / Z,  P(tie) = ν e^{(r_a+r_b)/2} / Z,
 *   Z = e^{r_a} + e^{r_b} + ν e^{(r_a+r_b)/2}.
 * ν > 0 is the tie propensity (ν = 0 is Bradley–Terry, where a tie has probability
 * 0); P(tie) peaks at d = 0, so a tie label pulls the two rewards together while a
 * win still pushes them apart. Chosen over Rao–Kupper because it has no threshold
 * to fit, reduces to BT exactly at ν = 0, and its tie term is smooth in d.
 *   r_a, r_b (N), label (N): +1 a preferred, -1 b preferred, 0 tie
 *   weight (N) or NULL, nu > 0
 * L = sum_i w_i [ -log P(label_i) ] / W. d_a, d_b (N) written; d_log_nu (scalar,
 * optional) = dL/d(log ν) so ν can be learned. */
double obj_davidson_loss(const float *r_a, const float *r_b, const int8_t *label,
                         const float *weight, int N, double nu,
                         float *d_a, float *d_b, double *d_log_nu);

/* K-way rankings as all pairs of one prompt (InstructGPT §3.5, alg §1.1).
 *   rewards (P,K)  rewards of the K responses of each prompt
 *   rank    (P,K)  rank of each response, 0 = best; equal ranks are tied (that
 *                  pair is skipped); a negative rank marks an absent response
 *                  (so prompts may have fewer than K responses)
 *   weight  (P) or NULL  per-prompt (per-annotator-judgement) weight
 * For prompt p with pair set S_p = {(i,j): rank_i < rank_j}:
 *   l_p = (1/|S_p|) sum_{(i,j) in S_p} -log σ(r_i - r_j)   (the 1/C(K,2) of Eq. 1)
 * L = sum_p w_p l_p / sum_{p: |S_p|>0} w_p. Prompts without a pair contribute nothing.
 * d_rewards (P,K) written (0 at absent responses). */
double obj_rank_pairs_loss(const float *rewards, const int32_t *rank, const float *weight,
                           int P, int K, float *d_rewards);

/* Listwise Plackett–Luce ranking loss (Plackett 1975; Luce 1959).
 * Same inputs as obj_rank_pairs_loss. For prompt p, present responses are
 * processed best to worst; each response i contributes
 *   -[ r_i - log sum_{j: rank_j >= rank_i} e^{r_j} ]
 * (tied responses share one risk set: Breslow's 1974 treatment of ties; with
 * distinct ranks this is exactly the PL negative log-likelihood). Terms whose
 * risk set holds only i itself are 0 and not counted. `top` > 0 keeps only
 * responses with rank < top (top = 1 is Ziegler et al.'s best-of-K softmax
 * loss, alg §1.1); 0 keeps all.
 *   l_p = (sum of terms) / (number of terms counted);  L = sum_p w_p l_p / W.
 * With K = 2 and distinct ranks this equals Bradley–Terry. d_rewards (P,K) written. */
double obj_plackett_luce_loss(const float *rewards, const int32_t *rank, const float *weight,
                              int P, int K, int top, float *d_rewards);

/* Thumbs up/down as binary logistic loss on the reward (issue 4; TRL KTO data
 * format, label 1 = desirable).
 *   reward (N), label (N) in {0,1} (soft labels in [0,1] allowed), weight (N) or NULL
 *   bias: threshold b; the probability of "up" is σ(r - b)
 * L = sum_i w_i [ -y log σ(r-b) - (1-y) log σ(b-r) ] / W.
 * d_reward (N) written; d_bias (scalar, optional) = dL/db. */
double obj_thumbs_loss(const float *reward, const float *label, const float *weight,
                       int N, double bias, float *d_reward, double *d_bias);

/* Pairwise accuracy: sum_i w_i ([r_w > r_l] + 0.5 [r_w == r_l]) / W. */
double obj_pair_accuracy(const float *r_chosen, const float *r_rejected, const float *weight, int N);

/* Expected calibration error (Guo et al. 2017) of predicted probabilities.
 *   prob (N) predicted P(label = 1), label (N) in {0,1} (or soft), weight (N) or NULL
 *   nbins equal-width bins over [0,1] (last bin closed)
 * ECE = sum_b (W_b / W) |mean_label_b - mean_prob_b|.
 * Optional outs (nbins each): bin_prob (mean prob), bin_label (mean label),
 * bin_weight (W_b); empty bins get 0. */
double obj_ece(const float *prob, const float *label, const float *weight, int N, int nbins,
               float *bin_prob, float *bin_label, float *bin_weight);
/* Confidence ECE of a pairwise reward model (Guo et al. 2017): with
 * p_i = σ(r_w - r_l), confidence max(p, 1-p) is scored against "the predicted
 * winner is the chosen one" (1 if p > 0.5, 0.5 if p = 0.5, 0 otherwise).
 * nbins equal-width bins over confidence [0.5, 1]. Optional outs: bin_prob =
 * mean confidence, bin_label = accuracy, bin_weight (a reliability diagram). */
double obj_pair_ece(const float *r_chosen, const float *r_rejected, const float *weight, int N,
                    int nbins, float *bin_prob, float *bin_label, float *bin_weight);

/* ======================================================================== */
/* 3. Direct preference losses on sequence log-probs (alg §2)               */
/* ======================================================================== */

/* One batch of preference pairs as summed sequence log-probs (obj_seq_logprobs). */
typedef struct {
    const float *pol_chosen, *pol_rejected; /* (N) log π_θ(y_w|x), log π_θ(y_l|x) */
    const float *ref_chosen, *ref_rejected; /* (N) frozen reference; NULL for ORPO/SimPO */
    const float *len_chosen, *len_rejected; /* (N) response token counts |y| (> 0);
                                               needed by IPO per-token, ORPO, SimPO */
    const float *weight;                    /* (N) or NULL */
    int N;
} obj_pref_batch;

/* What a trainer logs (weighted means over the batch). Implicit rewards are
 * β·log(π_θ/π_ref) for the DPO family (per-token log-ratios for IPO with
 * ipo_per_token), β·logp/|y| for SimPO and λ·logp/|y| for ORPO (as TRL logs). */
typedef struct {
    double loss;
    double reward_chosen, reward_rejected; /* mean implicit rewards */
    double margin;                          /* mean(reward_chosen - reward_rejected) */
    double accuracy;                        /* fraction with reward_chosen > reward_rejected */
    double logp_chosen, logp_rejected;      /* mean policy sequence log-probs (to see a falling chosen logp) */
    double nll;                             /* ORPO only: its SFT term */
} obj_pref_stats;

typedef enum {
    OBJ_DPO_SIGMOID = 0, /* DPO (Rafailov 2023): -log σ(βh); with eps > 0 it is cDPO
                            (label smoothing, Mitchell 2023): -(1-ε)log σ(βh) - ε log σ(-βh) */
    OBJ_DPO_ROBUST  = 1, /* rDPO (Chowdhury 2024, TRL "robust"):
                            [-(1-ε) log σ(βh) + ε log σ(-βh)] / (1-2ε), ε in [0, 0.5) */
    OBJ_DPO_IPO     = 2  /* IPO (Azar 2023): (h - 1/(2τ))^2 with τ = beta (TRL) */
} obj_dpo_type;

/* DPO / cDPO / rDPO / IPO.
 *   h = [log π_θ(y_w) - log π_ref(y_w)] - [log π_θ(y_l) - log π_ref(y_l)]
 *   ipo_per_token: for IPO, divide each of the four log-probs by its |y| first
 *   (TRL's normalisation, agreed with the IPO authors; needs len_*).
 * L = sum_i w_i l_i / W. d_chosen, d_rejected (N) written = dL/d pol_* (the
 * reference is frozen). Defaults: β = 0.1 (alg §2), ε = 0 (cDPO/rDPO: 0.1 typical). */
double obj_dpo_loss(const obj_pref_batch *b, obj_dpo_type type, double beta, double eps,
                    int ipo_per_token, float *d_chosen, float *d_rejected, obj_pref_stats *st);

/* KTO (Ethayarajh 2024; alg §2; HALOs KTOTrainer, TRL kto_trainer).
 *   pol, ref (N)   summed sequence log-probs of unpaired (x, y) examples
 *   desirable (N)  1 = thumbs up (desirable), 0 = undesirable
 *   weight (N) or NULL
 *   z0             reference point, a CONSTANT (no gradient flows through it):
 *                  use obj_kto_kl_estimate on mismatched pairs
 *   lambda_d, lambda_u  desirable / undesirable weights (default 1, 1)
 * r_i = pol_i - ref_i;  l_i = λ_D (1 - σ(β(r_i - z0))) if desirable,
 *                              λ_U (1 - σ(β(z0 - r_i))) if undesirable
 * (the paper's λ_y - v(x,y)). L = sum_i w_i l_i / W. d_pol (N) written.
 * Stats: reward_chosen/rejected = mean β r over desirable / undesirable examples,
 * margin = their difference, accuracy = fraction whose sign of β(r - z0) agrees
 * with the label. */
double obj_kto_loss(const float *pol, const float *ref, const uint8_t *desirable,
                    const float *weight, int N, double beta, double z0,
                    double lambda_d, double lambda_u, float *d_pol, obj_pref_stats *st);

/* KTO reference point from mismatched pairs (x_i, y_j), j != i:
 *   z0 = max(0, mean_i (pol_mm_i - ref_mm_i))   (M)
 * Clamped at 0 and to be treated as a constant (HALOs: `.clamp(min=0)` on a
 * detached estimate). Returns 0 when M = 0. */
double obj_kto_kl_estimate(const float *pol_mismatched, const float *ref_mismatched, int M);

/* ORPO (Hong 2024; TRL odds_ratio_loss). No reference model.
 *   a = pol/|y| (mean token log-prob, < 0), log odds(y) = a - log(1 - e^a)
 *   OR_i = log σ( log odds(y_w) - log odds(y_l) )
 *   L = NLL - λ sum_i w_i OR_i / W,  NLL = sum_i w_i (-pol_chosen_i) / sum_i w_i |y_w,i|
 * (NLL = token-mean cross-entropy on the chosen responses, as TRL's SFT term).
 * a is clamped to <= -1e-6 so log(1 - e^a) stays finite. λ = beta (default 0.1).
 * d_chosen, d_rejected (N) written w.r.t. the summed pol log-probs.
 * Stats: reward_* = λ·a (TRL logs β·mean logp), accuracy from log odds. */
double obj_orpo_loss(const obj_pref_batch *b, double lambda,
                     float *d_chosen, float *d_rejected, obj_pref_stats *st);

/* SimPO (Meng 2024). No reference model.
 *   l_i = -log σ( β pol_w/|y_w| - β pol_l/|y_l| - γ )
 * γ is the absolute margin (the SimPO repo's gamma_beta_ratio = γ/β).
 * Defaults (paper): β 2.0-2.5, γ 0.5-1.5. Implicit reward β·pol/|y|. */
double obj_simpo_loss(const obj_pref_batch *b, double beta, double gamma,
                      float *d_chosen, float *d_rejected, obj_pref_stats *st);

/* ======================================================================== */
/* 4. Online RL (alg §1.2, §1.3, §2 RLOO/GRPO)                              */
/* ======================================================================== */

typedef enum {
    OBJ_KL_K1 = 1, /* log π - log π_ref (unbiased, can be negative) */
    OBJ_KL_K2 = 2, /* 0.5 (log π - log π_ref)^2 */
    OBJ_KL_K3 = 3  /* e^{-x} - 1 + x with x = log π - log π_ref (>= 0, low variance; Schulman 2020) */
} obj_kl_type;

/* Per-token KL estimate from sampled tokens (Schulman, "Approximating KL
 * divergence", 2020; TRL `kl_estimator`).
 *   logp, ref_logp (n) log-probs of the sampled tokens under π and π_ref
 *   kl (n) out; dkl (n) optional out: d kl / d logp. */
void obj_kl_per_token(const float *logp, const float *ref_logp, int n, obj_kl_type type,
                      float *kl, float *dkl);

/* Per-token RLHF rewards (alg §1.2; lm-human-preferences, TRL PPO):
 *   rewards[b,t] = -beta * kl[b,t] on response positions (mask 1), 0 elsewhere,
 *   plus score[b] at the LAST masked position of row b (the EOS/last token).
 * score_clip > 0 clips the score to [-score_clip, score_clip] first (reward
 * clipping, trlx `cliprange_reward`); 0 = no clipping. A row with an empty mask
 * gets no score. kl, mask, rewards: (B,T); score (B). */
void obj_shape_rewards(const float *score, const float *kl, const float *mask,
                       int B, int T, double beta, double score_clip, float *rewards);

/* Clip n values to [-c, c] in place (c > 0): reward clipping of whole arrays
 * (e.g. per-token rewards; trlx cliprange_reward clips the score). */
void obj_clip_values(float *x, int n, double c);

/* Generalised advantage estimation (Schulman 2016), backwards over each row:
 *   δ_t = r_t + γ V_{t'} - V_t,  A_t = δ_t + γλ A_{t'},  R_t = A_t + V_t
 * where t' is the next masked position of the row (prompt or tool tokens in
 * between are transparent) and V, A after the last masked position are 0 (the
 * episode ends; alg §1.3). Unmasked positions get A = R = 0.
 * rewards, values, mask, adv, returns: (B,T). Defaults γ = 1, λ = 0.95. */
void obj_gae(const float *rewards, const float *values, const float *mask, int B, int T,
             double gamma, double lam, float *adv, float *returns);

/* Masked whitening (TRL masked_whiten, alg §1.3):
 *   out = (x - mean) / sqrt(var + 1e-8), mean/var over mask (var unbiased, as
 *   torch's default); shift_mean = 0 adds the mean back (reward whitening).
 * Masked-out positions are written 0. Fewer than 2 unmasked values: out = x - mean
 * (or x) without scaling. x and out may alias. Returns the (unbiased) std. */
double obj_whiten(const float *x, const float *mask, int n, int shift_mean, float *out);

typedef enum {
    OBJ_AGG_TOKEN = 0,    /* sum over all masked tokens / their count (PPO; GRPO "dapo"/"bnpo") */
    OBJ_AGG_SEQ   = 1,    /* mean over sequences of the per-sequence token mean (GRPO paper: (1/G)Σ_i 1/|o_i| Σ_t) */
    OBJ_AGG_SEQ_SUM = 2   /* sum over masked tokens / (B*T): a constant (Dr. GRPO) */
} obj_agg;

/* Training statistics of the clipped policy loss (weighted by the mask). */
typedef struct {
    double loss;         /* total (policy + beta*KL) */
    double pg_loss;      /* policy-gradient part */
    double kl;           /* mean in-loss k3 KL (GRPO), 0 without ref */
    double clipfrac;     /* fraction of tokens where the clipped branch is active */
    double approx_kl;    /* 0.5 * mean((logp - old_logp)^2) */
    double ratio_mean;   /* mean of ρ */
} obj_pg_stats;

/* PPO clipped surrogate (Schulman 2017; alg §1.3) with optional KL-in-loss (GRPO).
 *   logp, old_logp (B,T)  log-probs of the sampled tokens now / at sampling
 *   ref_logp (B,T)        reference log-probs, or NULL (no KL term)
 *   adv (B,T)             advantages (already whitened if wanted)
 *   mask (B,T)            response tokens; NULL = all
 *   eps_low, eps_high     clip range [1-eps_low, 1+eps_high] (0.2, 0.2; DAPO's
 *                         clip-higher uses a larger eps_high)
 *   beta                  weight of the per-token k3 KL to π_ref in the loss
 * per token: l_t = max(-A ρ, -A clip(ρ, 1-ε_l, 1+ε_h)) + β k3_t,  ρ = e^{logp - old_logp}
 * aggregated by `agg`. dlogp (B,T) written (0 at masked positions).
 * For sequence-level ratios (TRL RLOO) pass summed log-probs with T = 1. */
double obj_ppo_policy_loss(const float *logp, const float *old_logp, const float *ref_logp,
                           const float *adv, const float *mask, int B, int T,
                           double eps_low, double eps_high, double beta, obj_agg agg,
                           float *dlogp, obj_pg_stats *st);

/* GRPO loss (Shao 2024): obj_ppo_policy_loss with one advantage per sequence
 *   adv (B) broadcast over the row; β = KL weight (paper 0.04; TRL 0);
 *   agg = OBJ_AGG_SEQ for the paper's 1/|o_i| averaging, OBJ_AGG_TOKEN for
 *   TRL's "dapo" (token-level) default, OBJ_AGG_SEQ_SUM for Dr. GRPO. */
double obj_grpo_loss(const float *logp, const float *old_logp, const float *ref_logp,
                     const float *adv, const float *mask, int B, int T,
                     double eps_low, double eps_high, double beta, obj_agg agg,
                     float *dlogp, obj_pg_stats *st);

typedef struct {
    double loss;          /* 0.5 * mean(max((V-R)^2, (Vclip-R)^2)) */
    double clipfrac;      /* fraction where the clipped branch is larger */
    double explained_var; /* 1 - Var(R - V)/Var(R) */
} obj_vf_stats;

/* Clipped value loss (alg §1.3, TRL PPO):
 *   L = 0.5 * masked_mean( max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2) )
 *   values, old_values, returns, mask (B,T) (n = B*T flattened); clip c > 0
 *   (0 = unclipped: L = 0.5 masked_mean((V-R)^2)). dvalues (n) written. */
double obj_value_loss(const float *values, const float *old_values, const float *returns,
                      const float *mask, int n, double clip, float *dvalues, obj_vf_stats *st);

/* Explained variance 1 - Var(R - V) / Var(R) over the mask (alg §1.3, the
 * value-head diagnostic of lm-human-preferences/TRL; population variances).
 * Returns NaN when Var(R) = 0. */
double obj_explained_variance(const float *values, const float *returns, const float *mask, int n);

/* RLOO advantages (Ahmadian 2024, Kool 2019): rewards (P,K), K >= 2 samples per prompt:
 *   adv[p,i] = r[p,i] - (1/(K-1)) sum_{j != i} r[p,j]   (sums to 0 per prompt). */
void obj_rloo_advantages(const float *rewards, int P, int K, float *adv);

/* GRPO group-normalised advantages (Shao 2024; TRL grpo_trainer):
 *   adv[p,i] = (r[p,i] - mean_p) / (std_p + eps) if scale_std, else r - mean_p
 * (Dr. GRPO drops the std). std is the unbiased (Bessel) std as torch .std();
 * eps default 1e-4 (TRL). rewards, adv (P,G); G >= 2 when scale_std. */
void obj_grpo_advantages(const float *rewards, int P, int G, int scale_std, double eps, float *adv);

/* KL coefficient controller (Ziegler 2019, lm-human-preferences AdaptiveKLController). */
typedef struct {
    double beta;     /* current coefficient */
    double target;   /* target KL in nats (Ziegler: 6); ignored when !adaptive */
    double horizon;  /* episodes (Ziegler: 10000) */
    int adaptive;    /* 0 = fixed beta */
} obj_kl_ctl;

/* After a batch with measured KL `kl` over `n_steps` episodes:
 *   e = clip(kl/target - 1, -0.2, 0.2);  beta <- beta (1 + e n_steps / horizon).
 * No-op when !adaptive. Returns the new beta. */
double obj_kl_ctl_update(obj_kl_ctl *c, double kl, double n_steps);

/* Analytic KL of best-of-n sampling against the base policy (Stiennon 2020 /
 * Gao 2022, alg §5.1): log n - (n-1)/n. n >= 1. */
double obj_bon_kl(int n);

#endif
