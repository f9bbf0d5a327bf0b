/* trainers.c — `rlhf sft`, `rlhf rm`, `rlhf score`, `rlhf dpo`, `rlhf kto`:
 * flags -> options -> src/train/{sft,rm,dpo}.c. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/kernels/ops.h"
#include "../src/train/sft.h"
#include "../src/train/rm.h"
#include "../src/train/dpo.h"
#include "../src/dist/dist.h"

/* Flags every trainer shares: where the model comes from. */
#define MODEL_FLAGS(src, seed)                                                                                       \
    {"model", RL_FLAG_STRING, &(src).path, "", 0, 0, NULL, "checkpoint to start from ('' = a fresh model of --config)"}, \
    {"config", RL_FLAG_ENUM, &(src).config, "tiny", 0, 0, "tiny|small|gpt2", "fresh model only: tiny L4 H4 C256, small L6 H6 C384, gpt2 L12 H12 C768"}, \
    {"layers", RL_FLAG_INT, &(src).layers, "0", 0, 256, NULL, "fresh model only: override the config's layers"},   \
    {"heads", RL_FLAG_INT, &(src).heads, "0", 0, 256, NULL, "fresh model only: override the config's heads"},      \
    {"channels", RL_FLAG_INT, &(src).channels, "0", 0, 16384, NULL, "fresh model only: override the config's channels"}, \
    {"context", RL_FLAG_INT, &(src).context, "0", 0, 65536, NULL, "fresh model only: context length (0 = --seq)"}, \
    {"seed", RL_FLAG_I64, &(seed), "1", 0, 9.2e18, NULL, "seed (fresh weights, data order, held-out split)"}

#define RUN_FLAGS(threads, kernels, quiet, log)                                                                  \
    {"log", RL_FLAG_STRING, &(log), "", 0, 0, NULL, "JSONL metrics log"},                                         \
    {"threads", RL_FLAG_INT, &(threads), "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},  \
    {"kernels", RL_FLAG_ENUM, &(kernels), "fast", 0, 0, "fast|ref", "fast (BLAS + OpenMP) or ref (plain loops)"}, \
    {"quiet", RL_FLAG_BOOL, &(quiet), "0", 0, 0, NULL, "no progress or summary on stderr"}

#define WEIGHT_FLAGS(o) \
    {"annotator-weights", RL_FLAG_STRING, &(o).annotator_weights, "", 0, 0, NULL, \
     "id,weight CSV ('rlhf align report --out', 'rlhf align reliability --out'): each record's weight x its annotator's"}, \
    {"missing-weight", RL_FLAG_FLOAT, &(o).missing_weight, "-1", -1, 1e6, NULL, \
     "weight of annotators missing from --annotator-weights (-1 = they are an error)"}

/* dpo and kto: held-out evaluation, KL sampling and their monitors (the same for both) */
#define PREF_EVAL_FLAGS(o) \
    {"val-fraction", RL_FLAG_FLOAT, &(o).val_fraction, "0.1", 0, 0.9, NULL, "fraction of prompts held out for the preference/KL metrics"}, \
    {"eval-every", RL_FLAG_I64, &(o).eval_every, "0", 0, 1e12, NULL, "held-out evaluation every K steps (0 = at the start and end)"}, \
    {"ckpt-every", RL_FLAG_I64, &(o).ckpt_every, "0", 0, 1e12, NULL, "checkpoint every K steps (0 = at the end)"}, \
    {"kl-samples", RL_FLAG_INT, &(o).kl_samples, "16", 0, 65536, NULL, "held-out prompts sampled for the KL(pi||ref) estimate (0 = off)"}, \
    {"kl-tokens", RL_FLAG_INT, &(o).kl_tokens, "64", 0, 65536, NULL, "max tokens per KL sample"}, \
    {"warn-dpo-drop", RL_FLAG_FLOAT, &(o).warn_dpo_drop, "1.0", 1e-6, 1e9, NULL, \
     "monitor: warn when the held-out chosen AND rejected log-ratios both fell this many nats"}, \
    {"warn-kl-budget", RL_FLAG_FLOAT, &(o).warn_kl_budget, "6", 1e-9, 1e9, NULL, "monitor: warn when the sampled KL(pi||ref) exceeds this (nats)"}

static const char *nz(const char *s) { return s && s[0] ? s : NULL; }

/* Checkpoint security flags (cli/cli.h), the same on every trainer: sign what
 * is written, verify/decrypt what is read. One command runs per process. */
static const char *sec_sk, *sec_vk, *sec_kf, *sec_pe;
static int sec_enc;
#define SEC_FLAGS CLI_CKPT_WRITE_FLAGS(sec_sk, sec_enc), CLI_CKPT_LOAD_FLAGS(sec_vk, sec_kf, sec_pe)

/* --db feedback.db in place of --records/--data: the trainer reads every
 * judgement from the database (format "db" of trn_load_records). Returns 0,
 * or 2 after a usage message. */
#define DB_FLAG(var) {"db", RL_FLAG_STRING, &(var), "", 0, 0, NULL, \
    "feedback database from 'rlhf serve' (instead of a file): every judgement with its annotator and groups"}
static int use_db(const char *cmd, const char *db, const char **records, const char **format, const char *what) {
    if (!db || !db[0]) {
        if (!*records || !**records) {
            fprintf(stderr, "rlhf %s: give %s FILE or --db feedback.db; see 'rlhf %s --help'\n", cmd, what, cmd);
            return 2;
        }
        return 0;
    }
    if (*records && **records) {
        fprintf(stderr, "rlhf %s: give %s or --db, not both\n", cmd, what);
        return 2;
    }
    *records = db;
    *format = "db";
    return 0;
}

/* ops_get() sets the thread count to all cores the first time it is called,
 * so it is called once before --threads is applied. */
static void set_threads(int n) {
    (void)ops_get("fast");
    ops_set_threads(n);
}

/* Under mpirun (same binary) MPI starts here and the trainer runs data
 * parallel (--batch per rank); ranks on one machine share its cores. */
static int run_dist(const char *cmd, int *argc, char ***argv, int threads, int (*run)(const void *), const void *o) {
    if (dist_init(argc, argv) != RL_OK) { fprintf(stderr, "rlhf %s: %s\n", cmd, rl_error()); return 1; }
    set_threads(threads == 0 && dist_world() > 1 ? dist_default_threads() : threads);
    int rc = run(o);
    dist_finalize();
    return rc;
}
static int run_sft(const void *o) { return sft_run(o); }
static int run_rm(const void *o) { return rm_run(o); }
static int run_dpo(const void *o) { return dpo_run(o); }

int cmd_sft(int argc, char **argv) {
    static sft_opts o;
    static const char *db;
    static long long seed;
    static int threads;
    static rl_flag flags[] = {
        MODEL_FLAGS(o.model, seed),
        {"tokenizer", RL_FLAG_STRING, &o.tokenizer, NULL, 0, 0, NULL, "tokenizer file (the model's)"},
        {"data", RL_FLAG_STRING, &o.data, "", 0, 0, NULL, "demonstrations: a feedback file in any import format (see --format)"},
        {"format", RL_FLAG_ENUM, &o.format, "auto", 0, 0, "auto|jsonl|hh|oasst", "format of --data"},
        {"records", RL_FLAG_STRING, &o.records, "", 0, 0, NULL, "demonstrations: canonical records JSONL ('rlhf feedback import --out')"},
        DB_FLAG(db),
        {"skip-bad", RL_FLAG_BOOL, &o.skip_bad, "0", 0, 0, NULL, "skip malformed lines (counted) instead of stopping"},
        {"winners", RL_FLAG_BOOL, &o.winners, "0", 0, 0, NULL, "also train on judged winners (chosen of pairs, rank-0 of rankings, thumbs up)"},
        {"all-turns", RL_FLAG_BOOL, &o.all_turns, "0", 0, 0, NULL, "train on every assistant turn of a conversation, not only the last"},
        {"out", RL_FLAG_STRING, &o.out, NULL, 0, 0, NULL, "checkpoint to write (atomically; also every --ckpt-every steps and on Ctrl-C)"},
        {"steps", RL_FLAG_I64, &o.steps, "0", 0, 1e12, NULL, "optimizer steps (0 = --epochs)"},
        {"epochs", RL_FLAG_FLOAT, &o.epochs, "2", 0.001, 1e6, NULL, "passes over the training demonstrations when --steps is 0"},
        {"batch", RL_FLAG_INT, &o.batch, "8", 1, 65536, NULL, "sequences per micro-batch (B)"},
        {"accum", RL_FLAG_INT, &o.accum, "1", 1, 65536, NULL, "micro-batches per optimizer step"},
        {"seq", RL_FLAG_INT, &o.seq, "256", 2, 65536, NULL, "max tokens per sequence (capped by the model's context)"},
        {"lr", RL_FLAG_FLOAT, &o.lr, "1e-4", 0, 10, NULL, "peak learning rate (warm-up + cosine)"},
        {"warmup", RL_FLAG_I64, &o.warmup, "-1", -1, 1e12, NULL, "warm-up steps (-1 = 5% of the steps, at most 100)"},
        {"min-lr-frac", RL_FLAG_FLOAT, &o.min_lr_frac, "0.1", 0, 1, NULL, "cosine floor as a fraction of --lr"},
        {"weight-decay", RL_FLAG_FLOAT, &o.weight_decay, "0.0", 0, 10, NULL, "AdamW weight decay (matmul weights)"},
        {"grad-clip", RL_FLAG_FLOAT, &o.grad_clip, "1.0", 0, 1e9, NULL, "clip the global gradient norm (0 = off)"},
        {"val-fraction", RL_FLAG_FLOAT, &o.val_fraction, "0.1", 0, 0.9, NULL, "fraction of prompts held out for the validation loss"},
        {"eval-every", RL_FLAG_I64, &o.eval_every, "0", 0, 1e12, NULL, "validation loss every K steps (0 = at the end)"},
        {"ckpt-every", RL_FLAG_I64, &o.ckpt_every, "0", 0, 1e12, NULL, "checkpoint every K steps (0 = at the end)"},
        RUN_FLAGS(threads, o.kernels, o.quiet, o.log_path),
        SEC_FLAGS,
    };
    int rc = rl_flags_parse("sft", "Supervised fine-tuning on demonstrations (loss on assistant tokens only).",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("sft", sec_sk, sec_vk, sec_kf, sec_pe, sec_enc)) return 1;
    o.data = nz(o.data); o.records = nz(o.records); o.log_path = nz(o.log_path);
    if (nz(db)) {
        if (o.data || o.records) { fprintf(stderr, "rlhf sft: give --data/--records or --db, not both\n"); return 2; }
        o.data = db; /* judged winners (--winners) and demos come from the database */
        o.format = "db";
    }
    if (!o.data && !o.records) { fprintf(stderr, "rlhf sft: give --data FILE or --records FILE (or --db feedback.db); see 'rlhf sft --help'\n"); return 2; }
    o.model.seed = o.seed = (unsigned long long)seed;
    return run_dist("sft", &argc, &argv, threads, run_sft, &o);
}

int cmd_rm(int argc, char **argv) {
    static rm_opts o;
    static const char *db;
    static long long seed;
    static int threads;
    static rl_flag flags[] = {
        MODEL_FLAGS(o.model, seed),
        {"tokenizer", RL_FLAG_STRING, &o.tokenizer, NULL, 0, 0, NULL, "tokenizer file (the model's)"},
        {"records", RL_FLAG_STRING, &o.records, "", 0, 0, NULL, "feedback file: pairs, rankings, thumbs, ratings (any import format)"},
        DB_FLAG(db),
        {"format", RL_FLAG_ENUM, &o.format, "auto", 0, 0, "auto|jsonl|hh|oasst", "format of --records"},
        {"skip-bad", RL_FLAG_BOOL, &o.skip_bad, "0", 0, 0, NULL, "skip malformed lines (counted) instead of stopping"},
        {"group", RL_FLAG_STRING, &o.group, "", 0, 0, NULL, "only records whose annotator is in this group (key=value); stored in the metadata"},
        WEIGHT_FLAGS(o),
        {"ties", RL_FLAG_ENUM, &o.ties, "davidson", 0, 0, "davidson|skip", "ties and 'both bad': Davidson model for all pairs, or drop them"},
        {"tie-nu", RL_FLAG_FLOAT, &o.tie_nu, "1.0", 1e-6, 1e6, NULL, "Davidson tie propensity nu (P(tie) = nu e^{(ra+rb)/2} / Z)"},
        {"thumbs-weight", RL_FLAG_FLOAT, &o.thumbs_weight, "1.0", 0, 1e6, NULL, "weight of thumbs/rating units relative to comparisons (0 = ignore)"},
        {"center-coef", RL_FLAG_FLOAT, &o.center_coef, "0", 0, 100, NULL, "reward centring c*(r_w+r_l)^2 on BT pairs (TRL suggests 0.01)"},
        {"out", RL_FLAG_STRING, &o.out, NULL, 0, 0, NULL, "reward-model checkpoint to write (kind=reward)"},
        {"steps", RL_FLAG_I64, &o.steps, "0", 0, 1e12, NULL, "optimizer steps (0 = --epochs)"},
        {"epochs", RL_FLAG_FLOAT, &o.epochs, "1", 0.001, 1e6, NULL, "passes over the training judgements (InstructGPT: 1; more overfits)"},
        {"batch", RL_FLAG_INT, &o.batch, "16", 1, 65536, NULL, "judgements (prompts) per step; a ranking's C(K,2) pairs stay in one batch"},
        {"micro-batch", RL_FLAG_INT, &o.micro, "16", 2, 65536, NULL, "max responses per forward pass (>= the largest ranking's K)"},
        {"seq", RL_FLAG_INT, &o.seq, "256", 2, 65536, NULL, "max tokens per prompt+response (capped by the model's context)"},
        {"lr", RL_FLAG_FLOAT, &o.lr, "1e-4", 0, 10, NULL, "peak learning rate (warm-up + cosine to --min-lr-frac)"},
        {"warmup", RL_FLAG_I64, &o.warmup, "-1", -1, 1e12, NULL, "warm-up steps (-1 = 5% of the steps, at most 100)"},
        {"min-lr-frac", RL_FLAG_FLOAT, &o.min_lr_frac, "0.1", 0, 1, NULL, "cosine floor as a fraction of --lr (InstructGPT: 10%)"},
        {"weight-decay", RL_FLAG_FLOAT, &o.weight_decay, "0.0", 0, 10, NULL, "AdamW weight decay (matmul weights)"},
        {"grad-clip", RL_FLAG_FLOAT, &o.grad_clip, "1.0", 0, 1e9, NULL, "clip the global gradient norm (0 = off)"},
        {"val-fraction", RL_FLAG_FLOAT, &o.val_fraction, "0.1", 0, 0.9, NULL, "fraction of prompts held out for accuracy and calibration"},
        {"eval-every", RL_FLAG_I64, &o.eval_every, "0", 0, 1e12, NULL, "held-out evaluation every K steps (0 = at the end)"},
        {"ckpt-every", RL_FLAG_I64, &o.ckpt_every, "0", 0, 1e12, NULL, "checkpoint every K steps (0 = at the end)"},
        {"norm-samples", RL_FLAG_INT, &o.norm_samples, "512", 1, 1e9, NULL, "training responses scored for reward.mean/std (normalisation)"},
        {"warn-len-corr", RL_FLAG_FLOAT, &o.warn_len_corr, "0.6", 1e-6, 1, NULL, "monitor: warn when Pearson(response length, reward) on the held-out responses exceeds this (length bias)"},
        RUN_FLAGS(threads, o.kernels, o.quiet, o.log_path),
        SEC_FLAGS,
    };
    int rc = rl_flags_parse("rm", "Train a reward model (Bradley-Terry / rankings / thumbs / ties) on human feedback.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (use_db("rm", db, &o.records, &o.format, "--records")) return 2;
    if (cli_ckpt_security("rm", sec_sk, sec_vk, sec_kf, sec_pe, sec_enc)) return 1;
    o.group = nz(o.group); o.log_path = nz(o.log_path);
    o.annotator_weights = nz(o.annotator_weights);
    if (o.group && !strchr(o.group, '=')) { fprintf(stderr, "rlhf rm: --group must be key=value; see 'rlhf rm --help'\n"); return 2; }
    o.model.seed = o.seed = (unsigned long long)seed;
    return run_dist("rm", &argc, &argv, threads, run_rm, &o);
}

static int dpo_common(int argc, char **argv, int kto) {
    static dpo_opts o;
    static const char *db;
    static long long seed;
    static int threads;
    static rl_flag dflags[] = {
        MODEL_FLAGS(o.model, seed),
        {"ref", RL_FLAG_STRING, &o.ref, "", 0, 0, NULL, "frozen reference checkpoint ('' = the starting model)"},
        {"tokenizer", RL_FLAG_STRING, &o.tokenizer, NULL, 0, 0, NULL, "tokenizer file (the model's)"},
        {"records", RL_FLAG_STRING, &o.records, "", 0, 0, NULL, "feedback file with pairs/rankings (any import format)"},
        DB_FLAG(db),
        {"format", RL_FLAG_ENUM, &o.format, "auto", 0, 0, "auto|jsonl|hh|oasst", "format of --records"},
        {"skip-bad", RL_FLAG_BOOL, &o.skip_bad, "0", 0, 0, NULL, "skip malformed lines (counted) instead of stopping"},
        WEIGHT_FLAGS(o),
        {"loss", RL_FLAG_ENUM, &o.loss, "dpo", 0, 0, "dpo|cdpo|rdpo|ipo|orpo|simpo", "objective (docs/objectives.md)"},
        {"beta", RL_FLAG_FLOAT, &o.beta, "0.1", 1e-6, 1e6, NULL, "beta (DPO/cDPO/rDPO), tau (IPO), lambda (ORPO), beta (SimPO 2.0)"},
        {"label-smoothing", RL_FLAG_FLOAT, &o.label_smoothing, "0", 0, 0.5, NULL, "cDPO/rDPO: assumed label-flip probability epsilon (0.1 typical)"},
        {"simpo-gamma", RL_FLAG_FLOAT, &o.simpo_gamma, "0.5", 0, 100, NULL, "SimPO target margin gamma"},
        {"ipo-per-token", RL_FLAG_BOOL, &o.ipo_per_token, "1", 0, 0, NULL, "IPO: per-token mean log-probs (TRL)"},
        {"out", RL_FLAG_STRING, &o.out, NULL, 0, 0, NULL, "policy checkpoint to write"},
        {"steps", RL_FLAG_I64, &o.steps, "0", 0, 1e12, NULL, "optimizer steps (0 = --epochs)"},
        {"epochs", RL_FLAG_FLOAT, &o.epochs, "1", 0.001, 1e6, NULL, "passes over the training pairs"},
        {"batch", RL_FLAG_INT, &o.batch, "8", 1, 65536, NULL, "pairs per micro-batch"},
        {"accum", RL_FLAG_INT, &o.accum, "1", 1, 65536, NULL, "micro-batches per optimizer step"},
        {"seq", RL_FLAG_INT, &o.seq, "256", 2, 65536, NULL, "max tokens per prompt+response (capped by the model's context)"},
        {"lr", RL_FLAG_FLOAT, &o.lr, "1e-5", 0, 10, NULL, "peak learning rate (DPO paper 1e-6 for billions of parameters; small models need more)"},
        {"warmup", RL_FLAG_I64, &o.warmup, "-1", -1, 1e12, NULL, "warm-up steps (-1 = 10% of the steps, at most 150 as the DPO paper)"},
        {"min-lr-frac", RL_FLAG_FLOAT, &o.min_lr_frac, "1.0", 0, 1, NULL, "cosine floor as a fraction of --lr (1 = constant after warm-up)"},
        {"weight-decay", RL_FLAG_FLOAT, &o.weight_decay, "0.0", 0, 10, NULL, "AdamW weight decay (matmul weights)"},
        {"grad-clip", RL_FLAG_FLOAT, &o.grad_clip, "10", 0, 1e9, NULL, "clip the global gradient norm (DPO repo: 10; 0 = off)"},
        PREF_EVAL_FLAGS(o),
        RUN_FLAGS(threads, o.kernels, o.quiet, o.log_path),
        SEC_FLAGS,
    };
    static rl_flag kflags[] = {
        MODEL_FLAGS(o.model, seed),
        {"ref", RL_FLAG_STRING, &o.ref, "", 0, 0, NULL, "frozen reference checkpoint ('' = the starting model)"},
        {"tokenizer", RL_FLAG_STRING, &o.tokenizer, NULL, 0, 0, NULL, "tokenizer file (the model's)"},
        {"records", RL_FLAG_STRING, &o.records, "", 0, 0, NULL, "feedback file with thumbs (or pairs, --from-pairs)"},
        DB_FLAG(db),
        {"format", RL_FLAG_ENUM, &o.format, "auto", 0, 0, "auto|jsonl|hh|oasst", "format of --records"},
        {"skip-bad", RL_FLAG_BOOL, &o.skip_bad, "0", 0, 0, NULL, "skip malformed lines (counted) instead of stopping"},
        WEIGHT_FLAGS(o),
        {"from-pairs", RL_FLAG_BOOL, &o.from_pairs, "1", 0, 0, NULL, "also use strict pairs: chosen desirable, rejected undesirable (TRL)"},
        {"beta", RL_FLAG_FLOAT, &o.beta, "0.1", 1e-6, 1e6, NULL, "KTO beta (paper 0.1)"},
        {"lambda-d", RL_FLAG_FLOAT, &o.lambda_d, "1.0", 0, 1e6, NULL, "weight of desirable examples lambda_D (paper: lambda_D n_D / lambda_U n_U in [1, 4/3])"},
        {"lambda-u", RL_FLAG_FLOAT, &o.lambda_u, "1.0", 0, 1e6, NULL, "weight of undesirable examples lambda_U"},
        {"out", RL_FLAG_STRING, &o.out, NULL, 0, 0, NULL, "policy checkpoint to write"},
        {"steps", RL_FLAG_I64, &o.steps, "0", 0, 1e12, NULL, "optimizer steps (0 = --epochs)"},
        {"epochs", RL_FLAG_FLOAT, &o.epochs, "1", 0.001, 1e6, NULL, "passes over the training examples"},
        {"batch", RL_FLAG_INT, &o.batch, "8", 2, 65536, NULL, "examples per micro-batch (>= 2: the KL estimate needs mismatched pairs)"},
        {"accum", RL_FLAG_INT, &o.accum, "1", 1, 65536, NULL, "micro-batches per optimizer step"},
        {"seq", RL_FLAG_INT, &o.seq, "256", 2, 65536, NULL, "max tokens per prompt+response (capped by the model's context)"},
        {"lr", RL_FLAG_FLOAT, &o.lr, "1e-5", 0, 10, NULL, "peak learning rate (paper 5e-6 for billions of parameters)"},
        {"warmup", RL_FLAG_I64, &o.warmup, "-1", -1, 1e12, NULL, "warm-up steps (-1 = 10% of the steps, at most 150)"},
        {"min-lr-frac", RL_FLAG_FLOAT, &o.min_lr_frac, "1.0", 0, 1, NULL, "cosine floor as a fraction of --lr (1 = constant after warm-up)"},
        {"weight-decay", RL_FLAG_FLOAT, &o.weight_decay, "0.0", 0, 10, NULL, "AdamW weight decay (matmul weights)"},
        {"grad-clip", RL_FLAG_FLOAT, &o.grad_clip, "10", 0, 1e9, NULL, "clip the global gradient norm (0 = off)"},
        PREF_EVAL_FLAGS(o),
        RUN_FLAGS(threads, o.kernels, o.quiet, o.log_path),
        SEC_FLAGS,
    };
    int rc = kto ? rl_flags_parse("kto", "KTO on thumbs up/down (or pairs) against a frozen reference model.", kflags,
                                  RL_NFLAGS(kflags), argc, argv)
                 : rl_flags_parse("dpo", "Direct preference optimisation (DPO, cDPO, rDPO, IPO, ORPO, SimPO) on preference pairs.",
                                  dflags, RL_NFLAGS(dflags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (use_db(kto ? "kto" : "dpo", db, &o.records, &o.format, "--records")) return 2;
    if (cli_ckpt_security(kto ? "kto" : "dpo", sec_sk, sec_vk, sec_kf, sec_pe, sec_enc)) return 1;
    o.kto = kto;
    if (kto) o.loss = "kto";
    o.ref = nz(o.ref); o.log_path = nz(o.log_path);
    o.annotator_weights = nz(o.annotator_weights);
    o.model.seed = o.seed = (unsigned long long)seed;
    return run_dist(kto ? "kto" : "dpo", &argc, &argv, threads, run_dpo, &o);
}

int cmd_dpo(int argc, char **argv) { return dpo_common(argc, argv, 0); }
int cmd_kto(int argc, char **argv) { return dpo_common(argc, argv, 1); }

/* ---- rlhf score ------------------------------------------------------------- */
#include <jansson.h>
#include "../src/data/chat.h"

/* A prompt: a string (one user turn) or [{role, content|text}]. Returns the
 * number of turns written to t (max), or -1 with a reason. */
static int parse_prompt(json_t *p, chat_turn *t, int max, const char **why) {
    if (json_is_string(p)) { t[0].role = CHAT_ROLE_USER; t[0].text = json_string_value(p); return 1; }
    if (!json_is_array(p) || json_array_size(p) == 0) { *why = "\"prompt\" must be a string or a non-empty array of {role, content} turns"; return -1; }
    if ((int)json_array_size(p) > max) { *why = "too many turns in \"prompt\""; return -1; }
    for (size_t i = 0; i < json_array_size(p); i++) {
        json_t *e = json_array_get(p, i), *role = json_object_get(e, "role"), *text = json_object_get(e, "content");
        if (!text) text = json_object_get(e, "text");
        if (!json_is_string(role) || chat_role_parse(json_string_value(role), &t[i].role) != 0 || !json_is_string(text)) {
            *why = "each prompt turn needs \"role\" (user/assistant/system) and a string \"content\"";
            return -1;
        }
        t[i].text = json_string_value(text);
    }
    return (int)json_array_size(p);
}

#define SCORE_MAX_TURNS 64
int cmd_score(int argc, char **argv) {
    static const char *rm, *tokp, *input, *kernels;
    static int batch, threads;
    static rl_flag flags[] = {
        {"rm", RL_FLAG_STRING, &rm, NULL, 0, 0, NULL, "reward-model checkpoint (kind=reward, from 'rlhf rm')"},
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file (the reward model's)"},
        {"input", RL_FLAG_STRING, &input, "-", 0, 0, NULL, "JSONL of {\"prompt\": str or [turns], \"response\": str} ('-' = stdin)"},
        {"batch", RL_FLAG_INT, &batch, "16", 1, 4096, NULL, "responses scored per forward pass"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},
        {"kernels", RL_FLAG_ENUM, &kernels, "fast", 0, 0, "fast|ref", "fast (BLAS + OpenMP) or ref (plain loops)"},
        CLI_CKPT_LOAD_FLAGS(sec_vk, sec_kf, sec_pe),
    };
    int rc = rl_flags_parse("score", "Score prompt/response pairs with a reward model: each input line is printed back with "
                            "\"score\" (raw) and \"score_norm\" ((score - reward.mean) / reward.std).",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("score", NULL, sec_vk, sec_kf, sec_pe, 0)) return 1;
    set_threads(threads);
    rm_scorer s;
    if (rm_scorer_open(&s, rm, tokp, batch, ops_get(kernels)) != RL_OK) {
        fprintf(stderr, "rlhf score: %s\n", rl_error());
        return 1;
    }
    FILE *in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    if (!in) { fprintf(stderr, "rlhf score: cannot open %s\n", input); rm_scorer_close(&s); return 1; }
    json_t **objs = calloc((size_t)batch, sizeof(json_t *));
    chat_turn *turns = calloc((size_t)batch * SCORE_MAX_TURNS, sizeof(chat_turn));
    const chat_turn **tp = calloc((size_t)batch, sizeof(chat_turn *));
    int *nt = calloc((size_t)batch, sizeof(int));
    const char **resp = calloc((size_t)batch, sizeof(char *));
    float *raw = calloc((size_t)batch, sizeof(float)), *norm = calloc((size_t)batch, sizeof(float));
    char *line = NULL;
    size_t cap = 0;
    long long lineno = 0, scored = 0;
    int n = 0, status = 0, eof = 0;
    while (!status) {
        ssize_t len = eof ? -1 : getline(&line, &cap, in);
        if (len >= 0) {
            lineno++;
            const char *p = line;
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
            if (!*p) continue;
            json_error_t err;
            json_t *o = json_loads(line, 0, &err);
            const char *why = NULL;
            if (!o || !json_is_object(o)) why = "not a JSON object";
            else if (!json_is_string(json_object_get(o, "response"))) why = "needs a string \"response\"";
            else if ((nt[n] = parse_prompt(json_object_get(o, "prompt"), turns + (size_t)n * SCORE_MAX_TURNS, SCORE_MAX_TURNS, &why)) < 0) {}
            else if (turns[(size_t)n * SCORE_MAX_TURNS + nt[n] - 1].role == CHAT_ROLE_ASSISTANT) why = "the prompt's last turn must not be an assistant turn";
            if (why) {
                fprintf(stderr, "rlhf score: %s:%lld: %s\n", input, lineno, why);
                json_decref(o);
                status = 1;
                break;
            }
            objs[n] = o;
            tp[n] = turns + (size_t)n * SCORE_MAX_TURNS;
            resp[n] = json_string_value(json_object_get(o, "response"));
            n++;
        } else {
            eof = 1;
        }
        if (n == batch || (eof && n > 0)) {
            if (rm_score(&s, tp, nt, resp, n, raw, norm) != RL_OK) { fprintf(stderr, "rlhf score: %s\n", rl_error()); status = 1; break; }
            for (int i = 0; i < n; i++) {
                json_object_set_new(objs[i], "score", json_real(raw[i]));
                json_object_set_new(objs[i], "score_norm", json_real(norm[i]));
                char *out = json_dumps(objs[i], JSON_COMPACT);
                if (out) { fputs(out, stdout); fputc('\n', stdout); free(out); }
                json_decref(objs[i]);
                objs[i] = NULL;
            }
            scored += n;
            n = 0;
        }
        if (eof) break;
    }
    for (int i = 0; i < n; i++) json_decref(objs[i]);
    if (!status) rl_debug("scored %lld responses", scored);
    free(line); free(objs); free(turns); free(tp); free(nt); free(resp); free(raw); free(norm);
    if (in != stdin) fclose(in);
    rm_scorer_close(&s);
    return status;
}
