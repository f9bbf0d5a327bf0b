/* ppo.c — see ppo.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ppo.h"
#include "../base/log.h"

const char *ppo_algo_name(ppo_algo a) { return a == PPO_ALGO_PPO ? "ppo" : a == PPO_ALGO_RLOO ? "rloo" : "grpo"; }

void ppo_config_default(ppo_config *c, ppo_algo algo) {
    memset(c, 0, sizeof *c);
    c->algo = algo;
    c->prompts_per_step = 8;
    c->k = algo == PPO_ALGO_PPO ? 1 : algo == PPO_ALGO_RLOO ? 2 : 8; /* TRL num_generations (RLOO 2, GRPO 8) */
    c->max_new = 64;
    c->temperature = 1.0;
    for (int i = 0; i < 4; i++) c->stop_tokens[i] = -1;
    c->lr = 1e-5;
    c->value_lr = 1e-5;
    c->grad_clip = 1.0;
    c->weight_decay = 0.0;
    c->epochs = algo == PPO_ALGO_GRPO ? 1 : 4; /* lm-human-preferences/TRL 4; GRPO paper: one update */
    c->minibatch = 8;
    c->gamma = 1.0;   /* alg §1.3: all sources */
    c->lam = 0.95;    /* alg §1.3 */
    c->clip = 0.2;    /* alg §1.3 */
    c->value_clip = 0.2;
    c->vf_coef = 0.1; /* lm-human-preferences, TRL */
    c->ent_coef = 0.0;
    c->kl_type = OBJ_KL_K1;
    c->kl_coef = algo == PPO_ALGO_GRPO ? 0.04 : 0.05; /* GRPO paper 0.04; TRL PPO/RLOO 0.05 */
    c->adaptive_kl = 0;
    c->kl_target = 6.0;    /* Ziegler et al. 2019 */
    c->kl_horizon = 10000; /* Ziegler et al. 2019 */
    c->score_clip = 0;
    c->whiten_adv = algo == PPO_ALGO_PPO;
    c->separate_value = 1; /* InstructGPT/Stiennon: separate value network */
    c->grpo_agg = OBJ_AGG_SEQ;
    c->grpo_scale_std = 1;
    c->seed = 1;
}

int ppo_plan_T(const gpt_config *cfg, int max_plen, int max_new) {
    int T = max_plen + max_new;
    return T < cfg->maxT ? T : cfg->maxT;
}

void ppo_free(ppo_trainer *t) {
    sampler_ws_free(&t->sw);
    free(t->perm_prompts); free(t->row_prompt); free(t->inputs); free(t->targets);
    free(t->mask); free(t->old_logp); free(t->ref_logp); free(t->values); free(t->kl); free(t->rewards);
    free(t->adv); free(t->returns); free(t->score); free(t->score_c); free(t->seq_kl); free(t->seq_adv); free(t->seq_tmp);
    free(t->items); free(t->rp); free(t->rplen); free(t->perm);
    free(t->mb_in); free(t->mb_tg); free(t->mb_pos);
    free(t->mb_mask); free(t->mb_old); free(t->mb_ref); free(t->mb_adv); free(t->mb_ret); free(t->mb_oldv); free(t->mb_v);
    free(t->mb_dlogp); free(t->mb_dv); free(t->mb_sadv); free(t->mb_tmp);
    memset(t, 0, sizeof *t);
}

rl_status ppo_init(ppo_trainer *t, const ppo_config *c, gpt_model *policy, optim_adamw *opt, gpt_model *ref,
                   gpt_model *value, optim_adamw *vopt, reward_fn *reward, const int *const *prompts,
                   const int *plen, int n_prompts) {
    memset(t, 0, sizeof *t);
    if (n_prompts < 1) return rl_fail(RL_EINVAL, "ppo: no prompts");
    if (c->prompts_per_step < 1 || c->k < 1 || c->max_new < 1 || c->epochs < 1 || c->minibatch < 1)
        return rl_fail(RL_EINVAL, "ppo: prompts per step, k, max_new, epochs and minibatch must be >= 1");
    if (c->algo != PPO_ALGO_PPO && c->k < 2) return rl_fail(RL_EINVAL, "%s needs k >= 2 samples per prompt", ppo_algo_name(c->algo));
    if (c->kl_type != OBJ_KL_K1 && c->kl_type != OBJ_KL_K3 && c->kl_type != OBJ_KL_K2) return rl_fail(RL_EINVAL, "ppo: bad KL estimator");
    if (c->adaptive_kl && !(c->kl_target > 0 && c->kl_horizon > 0)) return rl_fail(RL_EINVAL, "ppo: adaptive KL needs target > 0 and horizon > 0");
    if (!(c->temperature > 0)) return rl_fail(RL_EINVAL, "ppo: rollout temperature must be > 0 (policy gradients need samples)");
    if (!ref || ref->cfg.V != policy->cfg.V) return rl_fail(RL_EINVAL, "ppo: the reference must share the policy's vocabulary");
    int need_value = c->algo == PPO_ALGO_PPO && c->separate_value;
    if (need_value && (!value || !vopt)) return rl_fail(RL_EINVAL, "ppo: a separate value network (and its optimizer) is required");
    if (!need_value) value = NULL, vopt = NULL;
    int maxp = 0;
    for (int i = 0; i < n_prompts; i++) {
        if (plen[i] < 1) return rl_fail(RL_EINVAL, "ppo: prompt %d is empty", i);
        if (plen[i] > maxp) maxp = plen[i];
    }
    if (maxp >= policy->cfg.maxT) return rl_fail(RL_EINVAL, "ppo: a prompt of %d tokens leaves no room in the context (%d)", maxp, policy->cfg.maxT);
    int Tp = ppo_plan_T(&policy->cfg, maxp, c->max_new);
    gpt_model *ms[3] = {policy, ref, value};
    for (int i = 0; i < 3; i++)
        if (ms[i] && (ms[i]->max_B < c->minibatch || ms[i]->max_T < Tp))
            return rl_fail(RL_EINVAL, "ppo: model %d planned for (%d, %d), needs (%d, %d)", i, ms[i]->max_B, ms[i]->max_T, c->minibatch, Tp);
    /* the sampler's log-probs then equal the training forward's bitwise (stats.logp_diff 0) */
    gpt_set_exact(policy, 1);
    t->c = *c;
    t->policy = policy; t->ref = ref; t->value = value; t->opt = opt; t->vopt = vopt; t->reward = reward;
    t->prompts = prompts; t->plen = plen; t->n_prompts = n_prompts;
    t->R = c->prompts_per_step * c->k;
    t->Tp = Tp;
    t->V = policy->cfg.V;
    t->klc.beta = c->kl_coef; t->klc.target = c->kl_target; t->klc.horizon = c->kl_horizon; t->klc.adaptive = c->adaptive_kl;
    rl_rng_seed(&t->rng, c->seed);
    int R = t->R, MB = c->minibatch;
    size_t RT = (size_t)R * Tp, MT = (size_t)MB * Tp;
    rl_status st = sampler_ws_init(&t->sw, policy, R, c->max_new);
    if (st != RL_OK) return st;
#define A(p, n) ((p) = calloc((n), sizeof *(p)), ok = ok && (p) != NULL)
    int ok = 1;
    A(t->perm_prompts, n_prompts); A(t->row_prompt, R); A(t->inputs, RT); A(t->targets, RT);
    A(t->mask, RT); A(t->old_logp, RT); A(t->ref_logp, RT); A(t->values, RT); A(t->kl, RT); A(t->rewards, RT);
    A(t->adv, RT); A(t->returns, RT); A(t->score, R); A(t->score_c, R); A(t->seq_kl, R); A(t->seq_adv, R); A(t->seq_tmp, R);
    A(t->items, R); A(t->rp, R); A(t->rplen, R); A(t->perm, R);
    A(t->mb_in, MT); A(t->mb_tg, MT); A(t->mb_pos, MB);
    A(t->mb_mask, MT); A(t->mb_old, MT); A(t->mb_ref, MT); A(t->mb_adv, MT); A(t->mb_ret, MT); A(t->mb_oldv, MT); A(t->mb_v, MT);
    A(t->mb_dlogp, MT); A(t->mb_dv, MT); A(t->mb_sadv, MB); A(t->mb_tmp, MB);
#undef A
    if (!ok) { ppo_free(t); return rl_fail(RL_ENOMEM, "ppo: out of memory planning %d rollout rows of %d tokens", R, Tp); }
    /* fixed, seeded shuffle of the prompt order: resuming only needs the cursor */
    for (int i = 0; i < n_prompts; i++) t->perm_prompts[i] = i;
    for (int i = n_prompts - 1; i > 0; i--) {
        int j = (int)(rl_rng_uniform_d(&t->rng) * (i + 1));
        if (j > i) j = i;
        int x = t->perm_prompts[i]; t->perm_prompts[i] = t->perm_prompts[j]; t->perm_prompts[j] = x;
    }
    return RL_OK;
}

/* values (B,T) = scalar head on every position of the last forward. */
static void head_values(const gpt_model *m, int B, int T, float *out) {
    int C = m->cfg.C;
    for (int i = 0; i < B * T; i++) {
        const float *h = m->a.lnf + (size_t)i * C;
        double s = m->w.headb[0];
        for (int c = 0; c < C; c++) s += (double)m->w.headw[c] * h[c];
        out[i] = (float)s;
    }
}

/* Head backward for dv (B,T) at every position (between backward_begin and _end). */
static void head_backward(gpt_model *m, int B, int T, const float *dv, int *pos, float *tmp) {
    for (int t = 0; t < T; t++) {
        int any = 0;
        for (int b = 0; b < B; b++) { pos[b] = t; tmp[b] = dv[(size_t)b * T + t]; any |= tmp[b] != 0; }
        if (any) gpt_scalar_backward(m, pos, tmp);
    }
}

void ppo_pg_entropy_dlogits(float *z_all, const float *lse_all, const int *targets, const float *dlogp, const float *mask,
                            int N, int V, double ent_coef) {
    double M = 0;
    for (int i = 0; i < N; i++) M += mask[i];
    for (int i = 0; i < N; i++) {
        float *z = z_all + (size_t)i * V;
        double s = M > 0 ? ent_coef * mask[i] / M : 0;
        if (targets[i] < 0 || (dlogp[i] == 0 && s == 0)) { memset(z, 0, sizeof(float) * V); continue; }
        double lse = lse_all[i], H = 0;
        for (int v = 0; v < V; v++) {
            double lp = z[v] - lse;
            H -= exp(lp) * lp;
        }
        for (int v = 0; v < V; v++) {
            double lp = z[v] - lse, p = exp(lp);
            z[v] = (float)(dlogp[i] * ((v == targets[i]) - p) + s * p * (lp + H));
        }
    }
}

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Under MPI every rank must abandon the same iteration: the stop flag is agreed
 * by an all-reduce (max). One process: the flag itself. */
static int agreed_stop(const ppo_trainer *t, volatile sig_atomic_t *stop) {
    double f = stop && *stop ? 1.0 : 0.0;
    if (t->dp) CHECK_OK(dist_allreduce_max_f64(&f, 1), "agreeing on a stop");
    return f > 0;
}

/* obj_whiten(x, mask, n, 1, out) with the mean and (Bessel-corrected) variance
 * over the masked entries of every rank: two all-reduced passes in double. */
static void whiten_global(float *x, const float *mask, size_t n) {
    double a[2] = {0, 0};
    for (size_t i = 0; i < n; i++) { a[0] += mask[i]; a[1] += (double)mask[i] * x[i]; }
    CHECK_OK(dist_allreduce_sum_f64(a, 2), "advantage statistics");
    double M = a[0], mean = M > 0 ? a[1] / M : 0.0, v = 0;
    for (size_t i = 0; i < n; i++) { double d = x[i] - mean; v += (double)mask[i] * d * d; }
    CHECK_OK(dist_allreduce_sum_f64(&v, 1), "advantage statistics");
    double var = M > 1 ? v / M * (M / (M - 1.0)) : 0.0;
    double inv = M > 1 ? 1.0 / sqrt(var + 1e-8) : 1.0;
    for (size_t i = 0; i < n; i++) x[i] = mask[i] == 0 ? 0.0f : (float)((x[i] - mean) * inv);
}

rl_status ppo_step(ppo_trainer *t, ppo_stats *st, volatile sig_atomic_t *stop, int *abandoned) {
    const ppo_config *c = &t->c;
    int R = t->R, K = c->k, P = c->prompts_per_step, MB = c->minibatch, V = t->V;
    gpt_model *pol = t->policy;
    memset(st, 0, sizeof *st);
    *abandoned = 0;
    st->step = t->step;
    double t0 = rl_now();
    int rank = t->dp ? dist_rank() : 0, world = t->dp ? dist_world() : 1;
    /* 1. rollout (rank r: prompts r*P .. r*P+P-1 of the step's P x world) */
    for (int p = 0; p < P; p++) {
        int pi = t->perm_prompts[(t->cursor + (uint64_t)rank * P + (uint64_t)p) % (uint64_t)t->n_prompts];
        for (int j = 0; j < K; j++) {
            int r = p * K + j;
            t->rp[r] = t->prompts[pi];
            t->rplen[r] = t->plen[pi];
            t->row_prompt[r] = pi;
        }
    }
    sampler_opts so;
    sampler_opts_default(&so);
    so.max_tokens = c->max_new;
    so.temperature = (float)c->temperature;
    for (int i = 0; i < 4; i++) so.stop_tokens[i] = c->stop_tokens[i];
    so.seed = mix64(dist_seed_for_rank(c->seed, rank) ^ mix64((uint64_t)t->step + 1)); /* rank 0: c->seed */
    RL_TRY(sampler_generate_ws(pol, &t->sw, t->rp, t->rplen, R, &so, NULL, NULL));
    const sampler_result *res = &t->sw.res;
    double t1 = rl_now();
    st->t_gen = t1 - t0;
    if (agreed_stop(t, stop)) { *abandoned = 1; return RL_OK; }
    /* 2. score */
    for (int r = 0; r < R; r++) {
        t->items[r].prompt = t->rp[r];
        t->items[r].plen = t->rplen[r];
        t->items[r].resp = res->tokens + (size_t)r * res->cap;
        t->items[r].rlen = res->len[r];
        st->gen_tokens += res->len[r];
    }
    RL_TRY(reward_score(t->reward, t->items, R, t->score, NULL));
    {   /* each group's mean reward, for the log (global under data parallelism) */
        int G = reward_num_groups(t->reward), ng;
        const float *gs = reward_group_scores(t->reward, &ng);
        st->ngroups = G > 1 ? (G < PPO_MAX_LOG_GROUPS ? G : PPO_MAX_LOG_GROUPS) : 0;
        double gsum[PPO_MAX_LOG_GROUPS + 1] = {0};
        for (int r = 0; gs && r < ng; r++)
            for (int g = 0; g < st->ngroups; g++) gsum[g] += gs[(size_t)r * G + g];
        gsum[st->ngroups] = ng;
        if (t->dp && st->ngroups) CHECK_OK(dist_allreduce_sum_f64(gsum, st->ngroups + 1), "global group rewards");
        for (int g = 0; g < st->ngroups; g++) st->reward_group[g] = gsum[st->ngroups] > 0 ? gsum[g] / gsum[st->ngroups] : NAN;
    }
    double t2 = rl_now();
    st->t_score = t2 - t1;
    if (agreed_stop(t, stop)) { *abandoned = 1; return RL_OK; }
    /* 3. rows: inputs/targets/mask with T = the longest row - 1 */
    int T = 1;
    for (int r = 0; r < R; r++) {
        int len = t->rplen[r] + res->len[r];
        if (len - 1 > T) T = len - 1;
    }
    for (int r = 0; r < R; r++) {
        int pl = t->rplen[r], len = pl + res->len[r];
        const int *resp = res->tokens + (size_t)r * res->cap;
        for (int i = 0; i < T; i++) {
            int x = i < len ? (i < pl ? t->rp[r][i] : resp[i - pl]) : (len > pl ? resp[len - pl - 1] : t->rp[r][pl - 1]);
            int y = i + 1 < len ? (i + 1 < pl ? t->rp[r][i + 1] : resp[i + 1 - pl]) : -1;
            size_t k = (size_t)r * T + i;
            t->inputs[k] = x;
            t->targets[k] = y;
            t->mask[k] = (y >= 0 && i + 1 >= pl) ? 1.0f : 0.0f;
        }
    }
    size_t RT = (size_t)R * T;
    /* evaluation passes in the layout of the first training pass */
    double ent_sum = 0, ent_n = 0;
    for (int s = 0; s < R; s += MB) {
        int B = R - s < MB ? R - s : MB;
        size_t off = (size_t)s * T;
        gpt_forward(pol, t->inputs + off, t->targets + off, NULL, B, T);
        memcpy(t->old_logp + off, pol->a.logp, sizeof(float) * B * T);
        double msum = 0;
        for (size_t i = 0; i < (size_t)B * T; i++) msum += t->mask[off + i];
        if (msum > 0) ent_sum += msum * obj_entropy(pol->a.logits, t->mask + off, B, T, V, V, 0, NULL, NULL);
        ent_n += msum;
        if (c->algo == PPO_ALGO_PPO && !t->value) head_values(pol, B, T, t->values + off);
        gpt_forward(t->ref, t->inputs + off, t->targets + off, NULL, B, T);
        memcpy(t->ref_logp + off, t->ref->a.logp, sizeof(float) * B * T);
        if (t->value) {
            gpt_forward_hidden(t->value, t->inputs + off, B, T);
            head_values(t->value, B, T, t->values + off);
        }
    }
    st->entropy = ent_n > 0 ? ent_sum / ent_n : 0;
    /* the sampler's log-probs vs the training forward's */
    for (int r = 0; r < R; r++)
        for (int i = 0; i < res->len[r]; i++) {
            int pos = t->rplen[r] - 1 + i;
            double d = fabs((double)res->logp[(size_t)r * res->cap + i] - t->old_logp[(size_t)r * T + pos]);
            if (d > st->logp_diff) st->logp_diff = d;
        }
    /* 4. KL and advantages */
    obj_kl_per_token(t->old_logp, t->ref_logp, (int)RT, c->kl_type, t->kl, NULL);
    double beta = t->klc.beta, kl_sum = 0, k1_sum = 0, k3_sum = 0, rs = 0, rss = 0, len_sum = 0;
    for (int r = 0; r < R; r++) {
        double sk = 0;
        for (int i = 0; i < T; i++) {
            size_t k = (size_t)r * T + i;
            if (t->mask[k] == 0) { t->kl[k] = 0; continue; }
            double x = (double)t->old_logp[k] - t->ref_logp[k];
            sk += t->kl[k];
            k1_sum += x;
            k3_sum += exp(-x) - 1 + x;
        }
        t->seq_kl[r] = (float)sk;
        kl_sum += sk;
        rs += t->score[r];
        rss += (double)t->score[r] * t->score[r];
        len_sum += res->len[r];
        double sc = t->score[r];
        if (c->score_clip > 0) sc = sc < -c->score_clip ? -c->score_clip : sc > c->score_clip ? c->score_clip : sc;
        t->score_c[r] = (float)sc;
    }
    double Rg = R;
    if (t->dp) {
        /* global statistics: sums over every rank's rows (each rank has R) */
        if (t->dist_debug)
            fprintf(stderr, "dist-debug: rank %d step %lld rows %d reward_sum %.17g kl_sum %.17g\n", rank, t->step, R, rs, kl_sum);
        double red[9] = {kl_sum, k1_sum, k3_sum, rs, rss, len_sum, (double)R, ent_sum, ent_n};
        CHECK_OK(dist_allreduce_sum_f64(red, 9), "global rollout statistics");
        kl_sum = red[0]; k1_sum = red[1]; k3_sum = red[2]; rs = red[3]; rss = red[4]; len_sum = red[5]; Rg = red[6];
        st->entropy = red[8] > 0 ? red[7] / red[8] : 0;
    }
    st->reward_mean = rs / Rg;
    st->reward_std = Rg > 1 ? sqrt(fmax(0, (rss - rs * rs / Rg) / (Rg - 1))) : 0;
    st->kl = kl_sum / Rg;
    st->kl_k1 = k1_sum / Rg;
    st->kl_k3 = k3_sum / Rg;
    st->beta = beta;
    st->resp_len = len_sum / Rg;
    if (c->algo == PPO_ALGO_PPO) {
        obj_shape_rewards(t->score, t->kl, t->mask, R, T, beta, c->score_clip, t->rewards);
        obj_gae(t->rewards, t->values, t->mask, R, T, c->gamma, c->lam, t->adv, t->returns);
        st->explained_var = obj_explained_variance(t->values, t->returns, t->mask, (int)RT);
    } else {
        if (c->algo == PPO_ALGO_RLOO) {
            for (int r = 0; r < R; r++) t->seq_tmp[r] = (float)(t->score_c[r] - beta * t->seq_kl[r]);
            obj_rloo_advantages(t->seq_tmp, P, K, t->seq_adv);
        } else {
            obj_grpo_advantages(t->score_c, P, K, c->grpo_scale_std, 1e-4, t->seq_adv);
        }
        for (size_t k = 0; k < RT; k++) t->adv[k] = t->mask[k] * t->seq_adv[k / T];
        st->explained_var = NAN;
    }
    if (c->whiten_adv) {
        if (t->dp) whiten_global(t->adv, t->mask, RT);
        else obj_whiten(t->adv, t->mask, (int)RT, 1, t->adv);
    }
    /* 5. train */
    int nmb = 0;
    for (int e = 0; e < c->epochs; e++) {
        for (int r = 0; r < R; r++) t->perm[r] = r;
        if (e > 0)
            for (int r = R - 1; r > 0; r--) {
                int j = (int)(rl_rng_uniform_d(&t->rng) * (r + 1));
                if (j > r) j = r;
                int x = t->perm[r]; t->perm[r] = t->perm[j]; t->perm[j] = x;
            }
        for (int s = 0; s < R; s += MB) {
            int B = R - s < MB ? R - s : MB;
            for (int b = 0; b < B; b++) {
                size_t src = (size_t)t->perm[s + b] * T, dst = (size_t)b * T;
                memcpy(t->mb_in + dst, t->inputs + src, sizeof(int) * T);
                memcpy(t->mb_tg + dst, t->targets + src, sizeof(int) * T);
                memcpy(t->mb_mask + dst, t->mask + src, sizeof(float) * T);
                memcpy(t->mb_old + dst, t->old_logp + src, sizeof(float) * T);
                memcpy(t->mb_ref + dst, t->ref_logp + src, sizeof(float) * T);
                memcpy(t->mb_adv + dst, t->adv + src, sizeof(float) * T);
                memcpy(t->mb_ret + dst, t->returns + src, sizeof(float) * T);
                memcpy(t->mb_oldv + dst, t->values + src, sizeof(float) * T);
                t->mb_sadv[b] = t->seq_adv[t->perm[s + b]];
            }
            gpt_zero_grad(pol);
            gpt_forward(pol, t->mb_in, t->mb_tg, NULL, B, T);
            const float *logp = pol->a.logp;
            obj_pg_stats pg;
            if (c->algo == PPO_ALGO_GRPO)
                obj_grpo_loss(logp, t->mb_old, t->mb_ref, t->mb_sadv, t->mb_mask, B, T, c->clip, c->clip, beta, c->grpo_agg,
                              t->mb_dlogp, &pg);
            else
                obj_ppo_policy_loss(logp, t->mb_old, NULL, t->mb_adv, t->mb_mask, B, T, c->clip, c->clip, 0, OBJ_AGG_TOKEN,
                                    t->mb_dlogp, &pg);
            if (e == 0 && s == 0)
                for (size_t i = 0; i < (size_t)B * T; i++)
                    if (t->mb_mask[i] > 0) {
                        double d = fabs(exp((double)logp[i] - t->mb_old[i]) - 1);
                        if (d > st->first_ratio_dev) st->first_ratio_dev = d;
                    }
            st->pg_loss += pg.pg_loss;
            st->clipfrac += pg.clipfrac;
            st->approx_kl += pg.approx_kl;
            gpt_backward_begin(pol);
            obj_vf_stats vs = {0, 0, 0};
            if (c->algo == PPO_ALGO_PPO && !t->value) {
                head_values(pol, B, T, t->mb_v);
                obj_value_loss(t->mb_v, t->mb_oldv, t->mb_ret, t->mb_mask, B * T, c->value_clip, t->mb_dv, &vs);
                for (int i = 0; i < B * T; i++) t->mb_dv[i] *= (float)c->vf_coef;
                head_backward(pol, B, T, t->mb_dv, t->mb_pos, t->mb_tmp);
            }
            if (c->ent_coef > 0) {
                ppo_pg_entropy_dlogits(pol->a.logits, pol->a.lse, t->mb_tg, t->mb_dlogp, t->mb_mask, B * T, V, c->ent_coef);
                gpt_backward_end_dlogits(pol);
            } else {
                gpt_backward_end(pol, t->mb_dlogp);
            }
            if (t->dp) RL_TRY(dist_dp_step(t->dp, 1.0f, (float)c->grad_clip, (float)c->lr, NULL)); /* mean over ranks */
            else {
                optim_clip_grad_norm(pol->grads, pol->num_params, 1.0f, (float)c->grad_clip);
                optim_adamw_step(t->opt, pol->params, pol->grads, (float)c->lr);
            }
            if (t->value) {
                gpt_model *vm = t->value;
                gpt_zero_grad(vm);
                gpt_forward_hidden(vm, t->mb_in, B, T);
                head_values(vm, B, T, t->mb_v);
                obj_value_loss(t->mb_v, t->mb_oldv, t->mb_ret, t->mb_mask, B * T, c->value_clip, t->mb_dv, &vs);
                gpt_backward_begin(vm);
                head_backward(vm, B, T, t->mb_dv, t->mb_pos, t->mb_tmp);
                gpt_backward_end(vm, NULL);
                if (t->vdp) RL_TRY(dist_dp_step(t->vdp, 1.0f, (float)c->grad_clip, (float)c->value_lr, NULL));
                else {
                    optim_clip_grad_norm(vm->grads, vm->num_params, 1.0f, (float)c->grad_clip);
                    optim_adamw_step(t->vopt, vm->params, vm->grads, (float)c->value_lr);
                }
            }
            st->vf_loss += vs.loss;
            st->vf_clipfrac += vs.clipfrac;
            nmb++;
        }
    }
    st->pg_loss /= nmb; st->clipfrac /= nmb; st->approx_kl /= nmb; st->vf_loss /= nmb; st->vf_clipfrac /= nmb;
    if (t->dp) {
        /* minibatch means: every rank ran the same number of minibatches */
        double red[6] = {st->pg_loss, st->clipfrac, st->approx_kl, st->vf_loss, st->vf_clipfrac, st->explained_var};
        CHECK_OK(dist_allreduce_sum_f64(red, 6), "global training statistics");
        st->pg_loss = red[0] / world; st->clipfrac = red[1] / world; st->approx_kl = red[2] / world;
        st->vf_loss = red[3] / world; st->vf_clipfrac = red[4] / world;
        st->explained_var = red[5] / world; /* the mean of the ranks' (NaN for rloo/grpo) */
        double mx[2] = {st->logp_diff, st->first_ratio_dev};
        CHECK_OK(dist_allreduce_max_f64(mx, 2), "global training statistics");
        st->logp_diff = mx[0]; st->first_ratio_dev = mx[1];
    }
    /* 6. KL control (episodes = rows, of every rank) */
    obj_kl_ctl_update(&t->klc, st->kl, Rg);
    t->step++;
    t->cursor += (uint64_t)P * (uint64_t)world;
    st->t_train = rl_now() - t2;
    return RL_OK;
}
