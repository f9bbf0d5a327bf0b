/* rl.c — `rlhf ppo` and `rlhf bon` (src/train/ppo.h, src/train/bon.h). */
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/kernels/ops.h"
#include "../src/train/bon.h"
#include "../src/train/ppo.h"
#include "../src/dist/dist.h"

/* Checkpoint security flags (cli/cli.h): sign what is written, verify/decrypt what is read. */
static const char *sec_sk, *sec_vk, *sec_kf, *sec_pe;
static int sec_enc;

int cmd_ppo(int argc, char **argv) {
    static const char *policy, *tokp, *reward, *prompts, *out, *algo, *value, *value_init, *kl, *whiten, *grpo_loss, *log_path, *aggregate,
        *snapshots, *gold, *eval_prompts;
    static int eval_every, steps, pps, k, max_new, epochs, minibatch, save_every, resume, raw, threads, quiet, dist_debug, early_stop, patience,
        warn_pat;
    static double warn_kl;
    static double temperature, lr, value_lr, grad_clip, gamma, lam, clip, value_clip, vf_coef, ent_coef, kl_coef, kl_target,
        kl_horizon, score_clip, alpha, wd;
    static long long seed;
    static rl_flag flags[] = {
        {"policy", RL_FLAG_STRING, &policy, NULL, 0, 0, NULL, "starting policy (an SFT checkpoint); also the frozen KL reference"},
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file the policy was trained with"},
        {"reward", RL_FLAG_STRING, &reward, NULL, 0, 0, NULL,
         "reward spec: rm:PATH | ensemble:mean|min|std=L|var=L:P1,P2 | word:W | token:ID | length:L | contains:S | regex:PAT | groups:S1;S2 | sim:gold|sycophancy|group=NAME"},
        {"prompts", RL_FLAG_STRING, &prompts, NULL, 0, 0, NULL, "prompts file: one per line, text or {\"prompt\": \"...\"}"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "output policy checkpoint (value network: OUT.value)"},
        {"algo", RL_FLAG_ENUM, &algo, "ppo", 0, 0, "ppo|rloo|grpo", "ppo (value net + GAE), rloo (leave-one-out baseline), grpo (group-normalised)"},
        {"steps", RL_FLAG_INT, &steps, "100", 1, 1e9, NULL, "iterations (rollout + update) in total, counting resumed ones"},
        {"prompts-per-step", RL_FLAG_INT, &pps, "8", 1, 65536, NULL, "prompts per iteration"},
        {"k", RL_FLAG_INT, &k, "0", 0, 1024, NULL, "samples per prompt (0 = algo default: ppo 1, rloo 2, grpo 8)"},
        {"max-new", RL_FLAG_INT, &max_new, "64", 1, 1000000, NULL, "response tokens at most"},
        {"temperature", RL_FLAG_FLOAT, &temperature, "1.0", 1e-3, 100, NULL, "rollout temperature"},
        {"lr", RL_FLAG_FLOAT, &lr, "1e-5", 0, 1, NULL, "policy learning rate (AdamW)"},
        {"value-lr", RL_FLAG_FLOAT, &value_lr, "1e-5", 0, 1, NULL, "value network learning rate (separate value)"},
        {"weight-decay", RL_FLAG_FLOAT, &wd, "0", 0, 10, NULL, "AdamW weight decay"},
        {"grad-clip", RL_FLAG_FLOAT, &grad_clip, "1.0", 0, 1e9, NULL, "global gradient-norm clip (0 = off)"},
        {"epochs", RL_FLAG_INT, &epochs, "0", 0, 1000, NULL, "passes over each rollout (0 = algo default: 4, grpo 1)"},
        {"minibatch", RL_FLAG_INT, &minibatch, "8", 1, 65536, NULL, "rollout rows per optimizer step"},
        {"gamma", RL_FLAG_FLOAT, &gamma, "1.0", 0, 1, NULL, "GAE discount γ"},
        {"lam", RL_FLAG_FLOAT, &lam, "0.95", 0, 1, NULL, "GAE λ"},
        {"clip", RL_FLAG_FLOAT, &clip, "0.2", 1e-6, 10, NULL, "policy ratio clip ε"},
        {"value-clip", RL_FLAG_FLOAT, &value_clip, "0.2", 0, 1e9, NULL, "value clip (0 = unclipped)"},
        {"vf-coef", RL_FLAG_FLOAT, &vf_coef, "0.1", 0, 1e6, NULL, "value loss weight (shared trunk)"},
        {"ent-coef", RL_FLAG_FLOAT, &ent_coef, "0", 0, 10, NULL, "entropy bonus (0 = off)"},
        {"value", RL_FLAG_ENUM, &value, "separate", 0, 0, "separate|shared", "ppo value function: separate network or a head on the policy trunk"},
        {"value-init", RL_FLAG_STRING, &value_init, "", 0, 0, NULL, "separate value network's initial weights (default: the policy; a reward model is common)"},
        {"kl", RL_FLAG_ENUM, &kl, "k1", 0, 0, "k1|k3", "KL estimator of the penalty"},
        {"kl-coef", RL_FLAG_FLOAT, &kl_coef, "-1", -1, 100, NULL, "KL coefficient β (-1 = algo default: 0.05, grpo 0.04); initial β when adaptive"},
        {"kl-target", RL_FLAG_FLOAT, &kl_target, "0", 0, 1e6, NULL, "adaptive KL: target nats per response (0 = fixed β)"},
        {"kl-horizon", RL_FLAG_FLOAT, &kl_horizon, "10000", 1, 1e12, NULL, "adaptive KL horizon in episodes (Ziegler: 10000)"},
        {"score-clip", RL_FLAG_FLOAT, &score_clip, "0", 0, 1e9, NULL, "clip the reward score to [-c, c] (0 = off)"},
        {"whiten", RL_FLAG_ENUM, &whiten, "auto", 0, 0, "auto|on|off", "whiten advantages (auto: on for ppo)"},
        {"grpo-loss", RL_FLAG_ENUM, &grpo_loss, "seq", 0, 0, "seq|token|dr", "GRPO: per-sequence mean (paper), token mean (TRL dapo), Dr. GRPO"},
        {"aggregate", RL_FLAG_ENUM, &aggregate, "mean", 0, 0, "mean|nash|isoelastic|min|maxmin", "how groups: rewards combine"},
        {"alpha", RL_FLAG_FLOAT, &alpha, "1", 0, 1e6, NULL, "isoelastic inequality aversion"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9.2e18, NULL, "random seed"},
        {"save-every", RL_FLAG_INT, &save_every, "0", 0, 1e9, NULL, "also checkpoint every N iterations (0 = only at the end / Ctrl-C)"},
        {"snapshots", RL_FLAG_STRING, &snapshots, "", 0, 0, NULL,
         "with --save-every: also keep DIR/step-NNNNNN.ckpt at each save (policy only; for 'rlhf study overoptimization --ppo-dir')"},
        {"resume", RL_FLAG_BOOL, &resume, "0", 0, 0, NULL, "continue from --out (and OUT.value)"},
        {"log", RL_FLAG_STRING, &log_path, "", 0, 0, NULL, "metrics JSONL file (one row per iteration)"},
        {"raw", RL_FLAG_BOOL, &raw, "0", 0, 0, NULL, "prompts as plain text (no chat template)"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},
        {"quiet", RL_FLAG_BOOL, &quiet, "0", 0, 0, NULL, "no progress output"},
        {"dist-debug", RL_FLAG_BOOL, &dist_debug, "0", 0, 0, NULL, "under mpirun: every rank prints its local reward and KL sums per step to stderr"},
        {"gold", RL_FLAG_STRING, &gold, "", 0, 0, NULL,
         "gold / held-out reward scored on every rollout and logged as gold (sim:gold also logs sycophancy; or rm:heldout.ckpt): feeds the proxy-gold monitors"},
        {"early-stop", RL_FLAG_BOOL, &early_stop, "0", 0, 0, NULL,
         "keep the policy with the best smoothed gold as OUT.best; stop when proxy and gold diverge or past the predicted peak (needs --gold)"},
        {"patience", RL_FLAG_INT, &patience, "0", 0, 1e9, NULL, "with --early-stop: also stop after this many iterations without a new best gold (0 = off)"},
        {"eval-prompts", RL_FLAG_STRING, &eval_prompts, "", 0, 0, NULL,
         "held-out prompts answered greedily and graded by --gold before training and every --eval-every iterations: then the gold series (else: gold of each rollout)"},
        {"eval-every", RL_FLAG_INT, &eval_every, "5", 1, 1e9, NULL, "with --eval-prompts: iterations between held-out evaluations"},
        {"warn-kl-budget", RL_FLAG_FLOAT, &warn_kl, "6", 0, 1e9, NULL, "monitor: warn when the mean KL to the reference exceeds this (nats)"},
        {"warn-patience", RL_FLAG_INT, &warn_pat, "2", 1, 1000, NULL, "monitors: consecutive iterations beyond a threshold before a warning"},
        CLI_CKPT_WRITE_FLAGS(sec_sk, sec_enc),
        CLI_CKPT_LOAD_FLAGS(sec_vk, sec_kf, sec_pe),
    };
    int rc = rl_flags_parse("ppo", "Online RL from a reward: PPO, RLOO or GRPO (docs/rl.md).", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("ppo", sec_sk, sec_vk, sec_kf, sec_pe, sec_enc)) return 1;
    /* under mpirun (same binary): MPI starts here; --prompts-per-step is per rank */
    if (dist_init(&argc, &argv) != RL_OK) { fprintf(stderr, "rlhf ppo: %s\n", rl_error()); return 1; }
    ops_set_threads(threads == 0 && dist_world() > 1 ? dist_default_threads() : threads);
    ppo_run_opts o;
    memset(&o, 0, sizeof o);
    ppo_algo a = !strcmp(algo, "ppo") ? PPO_ALGO_PPO : !strcmp(algo, "rloo") ? PPO_ALGO_RLOO : PPO_ALGO_GRPO;
    ppo_config_default(&o.c, a);
    ppo_config *c = &o.c;
    c->prompts_per_step = pps;
    if (k > 0) c->k = k;
    if (snapshots[0] && save_every == 0) {
        fprintf(stderr, "rlhf ppo: --snapshots needs --save-every N (a snapshot is kept at every save)\n");
        return 2;
    }
    if (a != PPO_ALGO_PPO && c->k < 2) {
        fprintf(stderr, "rlhf ppo: --algo %s needs --k >= 2 (samples per prompt form the baseline)\n", algo);
        return 2;
    }
    c->max_new = max_new;
    c->temperature = temperature;
    c->lr = lr;
    c->value_lr = value_lr;
    c->weight_decay = wd;
    c->grad_clip = grad_clip;
    if (epochs > 0) c->epochs = epochs;
    c->minibatch = minibatch;
    c->gamma = gamma;
    c->lam = lam;
    c->clip = clip;
    c->value_clip = value_clip;
    c->vf_coef = vf_coef;
    c->ent_coef = ent_coef;
    c->separate_value = !strcmp(value, "separate");
    c->kl_type = !strcmp(kl, "k3") ? OBJ_KL_K3 : OBJ_KL_K1;
    if (kl_coef >= 0) c->kl_coef = kl_coef;
    if (kl_target > 0) { c->adaptive_kl = 1; c->kl_target = kl_target; }
    c->kl_horizon = kl_horizon;
    c->score_clip = score_clip;
    if (strcmp(whiten, "auto")) c->whiten_adv = !strcmp(whiten, "on");
    c->grpo_agg = !strcmp(grpo_loss, "seq") ? OBJ_AGG_SEQ : !strcmp(grpo_loss, "token") ? OBJ_AGG_TOKEN : OBJ_AGG_SEQ_SUM;
    c->grpo_scale_std = strcmp(grpo_loss, "dr") != 0;
    c->seed = (uint64_t)seed;
    o.policy_path = policy;
    o.tokenizer_path = tokp;
    o.reward_spec = reward;
    o.prompts_path = prompts;
    o.out_path = out;
    o.value_init = value_init[0] ? value_init : NULL;
    o.log_path = log_path[0] ? log_path : NULL;
    o.aggregate = aggregate;
    o.snapshot_dir = snapshots[0] ? snapshots : NULL;
    o.alpha = alpha;
    o.steps = steps;
    o.save_every = save_every;
    o.resume = resume;
    o.chat = !raw;
    o.quiet = quiet;
    o.dist_debug = dist_debug;
    diag_config_default(&o.diag);
    o.diag.kl_budget = warn_kl;
    o.diag.patience = warn_pat;
    o.gold_spec = gold[0] ? gold : NULL;
    o.early_stop = early_stop;
    o.patience = patience;
    o.eval_prompts = eval_prompts[0] ? eval_prompts : NULL;
    o.eval_every = eval_every;
    if (o.eval_prompts && !o.gold_spec) {
        fprintf(stderr, "rlhf ppo: --eval-prompts needs --gold (the reward that grades the answers)\n");
        return 2;
    }
    if (early_stop && !o.gold_spec) {
        fprintf(stderr, "rlhf ppo: --early-stop needs --gold (the reward whose best checkpoint is kept)\n");
        return 2;
    }
    int rc2 = ppo_run(&o);
    dist_finalize();
    return rc2;
}

int cmd_bon(int argc, char **argv) {
    static const char *policy, *tokp, *reward, *prompts, *sft_out, *aggregate, *log_path, *gold;
    static int n, max_new, batch, raw, threads, quiet;
    static double temperature, alpha, warn_kl;
    static long long seed;
    static rl_flag flags[] = {
        {"policy", RL_FLAG_STRING, &policy, NULL, 0, 0, NULL, "policy checkpoint to sample from"},
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file the policy was trained with"},
        {"reward", RL_FLAG_STRING, &reward, NULL, 0, 0, NULL, "reward spec (see 'rlhf ppo --help')"},
        {"prompts", RL_FLAG_STRING, &prompts, NULL, 0, 0, NULL, "prompts file: one per line, text or {\"prompt\": \"...\"}"},
        {"n", RL_FLAG_INT, &n, "4", 1, 65536, NULL, "samples per prompt; the best is kept"},
        {"max-new", RL_FLAG_INT, &max_new, "64", 1, 1000000, NULL, "response tokens at most"},
        {"temperature", RL_FLAG_FLOAT, &temperature, "1.0", 0, 100, NULL, "sampling temperature"},
        {"batch", RL_FLAG_INT, &batch, "4", 1, 65536, NULL, "prompts decoded together (rows = batch x n)"},
        {"sft-out", RL_FLAG_STRING, &sft_out, "", 0, 0, NULL, "write the chosen answers as an SFT set (canonical feedback JSONL, demo records)"},
        {"aggregate", RL_FLAG_ENUM, &aggregate, "mean", 0, 0, "mean|nash|isoelastic|min|maxmin", "how groups: rewards combine"},
        {"alpha", RL_FLAG_FLOAT, &alpha, "1", 0, 1e6, NULL, "isoelastic inequality aversion"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9.2e18, NULL, "random seed"},
        {"raw", RL_FLAG_BOOL, &raw, "0", 0, 0, NULL, "prompts as plain text (no chat template)"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},
        {"quiet", RL_FLAG_BOOL, &quiet, "0", 0, 0, NULL, "no summary on stderr"},
        {"log", RL_FLAG_STRING, &log_path, "", 0, 0, NULL, "metrics JSONL: one row per block of --batch prompts, monitor warnings as {\"event\":\"warning\"} rows"},
        {"gold", RL_FLAG_STRING, &gold, "", 0, 0, NULL, "gold / held-out reward of the chosen answers, logged as gold (sim:gold, rm:heldout.ckpt, any reward spec)"},
        {"warn-kl-budget", RL_FLAG_FLOAT, &warn_kl, "6", 0, 1e9, NULL, "monitor: warn when the analytic KL log n - (n-1)/n exceeds this (nats)"},
        CLI_CKPT_LOAD_FLAGS(sec_vk, sec_kf, sec_pe),
    };
    int rc = rl_flags_parse("bon", "Best-of-n: sample n answers per prompt, keep the highest-reward one (JSONL on stdout).", flags,
                            RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("bon", NULL, sec_vk, sec_kf, sec_pe, 0)) return 1;
    ops_set_threads(threads);
    bon_opts o;
    memset(&o, 0, sizeof o);
    o.policy_path = policy;
    o.tokenizer_path = tokp;
    o.reward_spec = reward;
    o.prompts_path = prompts;
    o.sft_out = sft_out[0] ? sft_out : NULL;
    o.aggregate = aggregate;
    o.alpha = alpha;
    o.temperature = temperature;
    o.n = n;
    o.max_new = max_new;
    o.batch = batch;
    o.chat = !raw;
    o.quiet = quiet;
    o.seed = (uint64_t)seed;
    o.log_path = log_path[0] ? log_path : NULL;
    o.gold_spec = gold[0] ? gold : NULL;
    o.warn_kl_budget = warn_kl;
    /* Under mpirun every rank takes every world-th block of prompts; rank 0 prints. */
    if (dist_init(&argc, &argv) != RL_OK) { fprintf(stderr, "rlhf bon: %s\n", rl_error()); return 1; }
    int rc2 = bon_run(&o);
    dist_finalize();
    return rc2;
}
