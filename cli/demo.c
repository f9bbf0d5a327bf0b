/* demo.c — `rlhf demo`: the whole loop on the calculator world (issue 8).
 *
 * Each stage is an ordinary rlhf command run as a child process of this same
 * binary (its stderr goes to OUT/logs/<stage>.log), so the demo exercises
 * exactly what a user would type. Between stages the
 * demo answers prompts in-process (src/demo) and grades them with the gold
 * evaluator (src/sim). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/demo/demo.h"
#include "../src/kernels/ops.h"
#include "../src/model/checkpoint.h"
#include "../src/sim/sim.h"

#define MAX_STAGES 64 /* a full run has 33 */
static demo_stage stages[MAX_STAGES];
static int nstages;
static const char *outdir;
static char self_exe[4096];

static demo_stage *stage_begin(const char *name) {
    demo_stage *s = &stages[nstages < MAX_STAGES - 1 ? nstages++ : nstages];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static double tv_s(struct timeval t) { return (double)t.tv_sec + 1e-6 * (double)t.tv_usec; }
/* CPU seconds (user + system) this process has used so far, all threads. */
static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

/* Runs `rlhf <args>` (args NULL-terminated) as a child; stderr+stdout to OUT/logs/<name>.log. */
static int run_stage_v(const char *name, const char *const *args) {
    char *argv[96];
    int n = 0;
    argv[n++] = self_exe;
    for (; *args && n < 95; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    demo_stage *s = stage_begin(name);
    char logp[4096];
    snprintf(logp, sizeof logp, "%s/logs/%s.log", outdir, name);
    printf("  %-22s ", name);
    fflush(stdout);
    double t0 = rl_now();
    pid_t pid = fork();
    if (pid < 0) { s->rc = 1; snprintf(s->note, sizeof s->note, "fork: %s", strerror(errno)); printf("failed (fork)\n"); return 1; }
    if (pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        execv(self_exe, argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    s->seconds = rl_now() - t0;
    s->cpu_seconds = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    s->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (s->rc) {
        snprintf(s->note, sizeof s->note, "see logs/%.100s.log", name);
        printf("FAILED (exit %d) after %.1f s; see %s\n", s->rc, s->seconds, logp);
    } else {
        printf("%6.1f s  (%.1f CPU-s)\n", s->seconds, s->cpu_seconds);
    }
    fflush(stdout);
    return s->rc;
}

/* run_stage(name, "cmd", "--flag", value, ..., NULL) */
static int run_stage(const char *name, ...) {
    const char *args[96];
    int n = 0;
    va_list ap;
    va_start(ap, name);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 95) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return run_stage_v(name, args);
}

/* CPU seconds of this process and of every child it waited for. */
static double total_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return self_cpu() + tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static char *path_in(const char *name) {
    /* one slot per call (about 60 in a run), never reused, so no path is overwritten */
    static char buf[256][1024];
    static int k;
    char *b = buf[k < 255 ? k++ : 255];
    snprintf(b, 1024, "%s/%s", outdir, name);
    return b;
}

/* A formatted string from a ring of 256 buffers (a run makes about 100 calls;
 * the values every stage uses have buffers of their own). */
static char *fmt(const char *f, ...) {
    static char buf[256][512];
    static int k;
    char *b = buf[k++ % 256];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, 512, f, ap);
    va_end(ap);
    return b;
}

/* Greedy answers of `model` to the held-out prompts, graded by the gold evaluator,
 * and per group against the SFT model's answers (answers_sft.jsonl, written first). */
static int evaluate(const char *model, const char *tokp, const char *world, const char *tag, int n_eval, int max_new,
                    const sim_world *w, const sim_pop_config *pc, sim_eval_summary *sum, sim_ref_outcome *vs_sft) {
    demo_gen_opts go = {model, tokp, 1, 0.0f, max_new, n_eval, 64, 1};
    char heldout[4096], outp[4096];
    snprintf(heldout, sizeof heldout, "%s/heldout.jsonl", world);
    snprintf(outp, sizeof outp, "%s/answers_%s.jsonl", outdir, tag);
    double t0 = rl_now(), c0 = self_cpu();
    char refp[4096];
    snprintf(refp, sizeof refp, "%s/answers_sft.jsonl", outdir);
    if (demo_generate(&go, heldout, outp, NULL) || sim_eval_against(outp, refp, w, pc, sum, vs_sft)) {
        fprintf(stderr, "rlhf demo: evaluating %s: %s\n", model, rl_error());
        return 1;
    }
    demo_stage *s = stage_begin(fmt("eval %s", tag));
    s->seconds = rl_now() - t0;
    s->cpu_seconds = self_cpu() - c0;
    return 0;
}

int cmd_demo(int argc, char **argv) {
    static const char *out;
    static int quick, n_train, n_heldout, pre_steps, sft_steps, rm_steps, rl_steps, pref_steps, layers, heads, channels;
    static int threads, n_judge, samples_k, n_sample_prompts, max_new, tiny, a_max, b_max, strict;
    static long long seed;
    static double audit_rate, audit_weight, sft_lr;
    static int n_val;
    rl_flag flags[] = {
        {"out", RL_FLAG_STRING, &out, "demo-out", 0, 0, NULL, "directory for every file the demo writes (report.html, models, logs)"},
        {"quick", RL_FLAG_BOOL, &quick, "0", 0, 0, NULL, "the whole path at small sizes (aims at under 2 minutes on 2 cores)"},
        {"tiny", RL_FLAG_BOOL, &tiny, "0", 0, 0, NULL, "smallest sizes that run every stage (seconds; for tests, numbers meaningless)"},
        {"n-train", RL_FLAG_INT, &n_train, "0", 0, 10000000, NULL, "SFT demonstrations / RL prompts (0 = by mode: 20000, quick 4000)"},
        {"n-heldout", RL_FLAG_INT, &n_heldout, "0", 0, 1000000, NULL, "held-out prompts evaluated (0 = by mode: 300, quick 100)"},
        {"pretrain-steps", RL_FLAG_INT, &pre_steps, "-1", -1, 1000000, NULL, "pretraining steps (-1 = by mode: 100, quick 30)"},
        {"sft-steps", RL_FLAG_INT, &sft_steps, "-1", -1, 1000000, NULL, "SFT steps, batch 64 (-1 = by mode: 1100, quick 700)"},
        {"sft-lr", RL_FLAG_FLOAT, &sft_lr, "0", 0, 1, NULL, "SFT peak learning rate, cosine to a tenth (0 = by mode: 3e-3, quick 5e-3)"},
        {"rm-steps", RL_FLAG_INT, &rm_steps, "-1", -1, 1000000, NULL, "reward-model steps each (-1 = by mode: 100, quick 20)"},
        {"rl-steps", RL_FLAG_INT, &rl_steps, "-1", -1, 1000000, NULL, "PPO iterations per run (-1 = by mode: 30, quick 12)"},
        {"pref-steps", RL_FLAG_INT, &pref_steps, "-1", -1, 1000000, NULL, "DPO and KTO steps each (-1 = by mode: 100, quick 10)"},
        {"judgements", RL_FLAG_INT, &n_judge, "0", 0, 10000000, NULL, "simulated judgements of SFT samples (0 = by mode: 3000, quick 400)"},
        {"sample-prompts", RL_FLAG_INT, &n_sample_prompts, "0", 0, 1000000, NULL, "train prompts the SFT model answers for feedback (0 = by mode: 600, quick 100)"},
        {"samples-per-prompt", RL_FLAG_INT, &samples_k, "4", 2, 16, NULL, "SFT answers per prompt (temperature 1) for the annotators"},
        {"max-new", RL_FLAG_INT, &max_new, "48", 8, 256, NULL, "tokens per answer"},
        {"layers", RL_FLAG_INT, &layers, "2", 1, 64, NULL, "model layers (L)"},
        {"heads", RL_FLAG_INT, &heads, "4", 1, 64, NULL, "attention heads (NH)"},
        {"channels", RL_FLAG_INT, &channels, "0", 0, 4096, NULL,
         "model width (C; 0 = by mode: 128, quick 64: the narrow model passed 90% in a third of the SFT CPU time, docs/demo.md)"},
        {"a-max", RL_FLAG_INT, &a_max, "49", 10, 99, NULL, "largest first operand (10..49 passed the 90% gate sooner than 10..99; docs/demo.md)"},
        {"b-max", RL_FLAG_INT, &b_max, "49", 10, 99, NULL, "largest second operand"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads for every stage (0 = all cores)"},
        {"seed", RL_FLAG_I64, &seed, "1234", 0, 9e15, NULL, "seed of the world and every stage"},
        {"audit-rate", RL_FLAG_FLOAT, &audit_rate, "0.1", 0, 1, NULL,
         "audited-RM mitigation: share of judgements by fully informed auditors (rlhf sim feedback --audit-rate; 0 = no audited row)"},
        {"audit-weight", RL_FLAG_FLOAT, &audit_weight, "5", 0, 1e6, NULL, "record weight of an audited judgement in the reward-model loss"},
        {"n-val", RL_FLAG_INT, &n_val, "0", 0, 100000, NULL,
         "validation prompts (held-out operand pairs, apart from the evaluated ones) for ppo --eval-prompts (0 = by mode: 100, tiny 10)"},
        {"strict", RL_FLAG_BOOL, &strict, "0", 0, 0, NULL, "exit 1 when any acceptance check (issue 8) fails (they are always computed and reported)"},
    };
    const char *summary = "The whole loop on the calculator world: world, tokenizer, pretrain, SFT, simulated feedback on the SFT "
                          "model's samples, reward models (single, per group, ensemble), PPO (utilitarian and maximin), DPO, KTO; "
                          "gold evaluation table and report.html.";
    int rc = rl_flags_parse("demo", summary, flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (n_train <= 0) n_train = tiny ? 300 : quick ? 4000 : 20000;
    if (n_heldout <= 0) n_heldout = tiny ? 20 : quick ? 100 : 300;
    if (n_val <= 0) n_val = tiny ? 10 : 100;
    if (n_judge <= 0) n_judge = tiny ? 40 : quick ? 400 : 3000;
    if (n_sample_prompts <= 0) n_sample_prompts = tiny ? 10 : quick ? 100 : 600;
    if (pre_steps < 0) pre_steps = tiny ? 2 : quick ? 30 : 100;
    if (sft_steps < 0) sft_steps = tiny ? 2 : quick ? 700 : 1100;
    if (sft_lr <= 0) sft_lr = quick ? 5e-3 : 3e-3;
    if (channels <= 0) channels = quick ? 64 : 128;
    if (channels % heads) { fprintf(stderr, "rlhf demo: --channels %d is not a multiple of --heads %d\n", channels, heads); return 2; }
    if (rm_steps < 0) rm_steps = tiny ? 2 : quick ? 20 : 100;
    if (rl_steps < 0) rl_steps = tiny ? 1 : quick ? 12 : 30;
    if (pref_steps < 0) pref_steps = tiny ? 2 : quick ? 10 : 100;
    outdir = out;
    ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (sl <= 0) { fprintf(stderr, "rlhf demo: cannot find my own executable: %s\n", strerror(errno)); return 1; }
    self_exe[sl] = 0;
    if (mkdir(out, 0755) && errno != EEXIST) { fprintf(stderr, "rlhf demo: cannot create %s: %s\n", out, strerror(errno)); return 1; }
    mkdir(path_in("logs"), 0755);
    double t_start = rl_now();
    /* used by every stage: their own buffers (fmt's ring of 64 is reused long before the last stage) */
    static char th[16], sd[24], L[16], NH[16], C[16];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(sd, sizeof sd, "%lld", seed);
    snprintf(L, sizeof L, "%d", layers);
    snprintf(NH, sizeof NH, "%d", heads);
    snprintf(C, sizeof C, "%d", channels);
    char *world = path_in("world"), *tokp = path_in("tok.bin"), *text = path_in("pretrain.txt"), *data = path_in("data");
    char *pre = path_in("pretrain.ckpt"), *sft = path_in("sft.ckpt"), *samples = path_in("sft_samples.jsonl");
    char *fb = path_in("feedback.jsonl"), *prompts = path_in("world/train_prompts.jsonl"), *sftdata = path_in("world/sft.jsonl");
    printf("rlhf demo: writing to %s/ (stage logs in %s/logs/)%s\n", out, out, quick ? " [quick]" : tiny ? " [tiny]" : "");

    /* 1. world, tokenizer, pretraining text */
    if (run_stage("world", "sim", "world", "--out", world, "--seed", sd, "--n-train", fmt("%d", n_train), "--n-heldout",
                  fmt("%d", n_heldout + n_val), "--a-max", fmt("%d", a_max), "--b-max", fmt("%d", b_max), NULL)) return 1;
    sim_world w;
    sim_pop_config pc;
    if (sim_world_load(world, &w, &pc)) { fprintf(stderr, "rlhf demo: %s\n", rl_error()); return 1; }
    /* the last n_val held-out prompts become the validation prompts the PPO
     * runs answer greedily while training (ppo --eval-prompts: the monitors'
     * gold series and early stopping's choice); the table is measured on the
     * first n_heldout, which no run has seen or been selected on */
    char *valp = path_in("val_prompts.jsonl");
    if (demo_split_lines(fmt("%s/heldout.jsonl", world), n_heldout, valp)) { fprintf(stderr, "rlhf demo: %s\n", rl_error()); return 1; }
    if (demo_render_text(sftdata, text, NULL)) { fprintf(stderr, "rlhf demo: %s\n", rl_error()); return 1; }
    /* 256 bytes + 4 chat specials, no merges: character-level tokens keep every
     * digit its own token, which is what makes column addition learnable. */
    if (run_stage("tokenizer", "tokenizer", "train", "--input", text, "--vocab-size", "260", "--out", tokp, "--quiet", NULL)) return 1;
    if (run_stage("data", "data", "prepare", "--tokenizer", tokp, "--input", text, "--out", data, "--quiet", NULL)) return 1;
    const char *ctx = "128";
    if (run_stage("pretrain", "pretrain", "--data", data, "--out", pre, "--layers", L, "--heads", NH, "--channels", C,
                  "--context", ctx, "--seq", "128", "--batch", "16", "--steps", fmt("%d", pre_steps > 0 ? pre_steps : 1), "--lr", "3e-3",
                  "--log", path_in("logs/pretrain.jsonl"), "--threads", th, "--seed", sd, "--quiet", NULL)) return 1;

    /* 2. SFT */
    demo_row rows[16];
    int nrows = 0;
    memset(rows, 0, sizeof rows);
    if (run_stage("sft", "sft", "--model", pre, "--tokenizer", tokp, "--data", sftdata, "--out", sft, "--steps",
                  fmt("%d", sft_steps > 0 ? sft_steps : 1), "--batch", "64", "--seq", "72", "--lr", fmt("%g", sft_lr), "--warmup", "50", "--log",
                  path_in("logs/sft.jsonl"), "--threads", th, "--seed", sd, "--quiet", NULL)) return 1;
    const char *policy = sft;
    ops_set_threads(threads);
    demo_row *base = &rows[nrows++];
    snprintf(base->method, sizeof base->method, "sft");
    snprintf(base->tag, sizeof base->tag, "sft");
    base->role = DEMO_ROLE_SFT;
    snprintf(base->log, sizeof base->log, "%s", path_in("logs/sft.jsonl"));
    if (evaluate(policy, tokp, world, "sft", n_heldout, max_new, &w, &pc, &base->eval, &base->vs_sft)) return 1;
    base->ran = 1;
    base->kl = 0;
    base->proxy = NAN;
    printf("  SFT model: held-out gold accuracy %.1f%%, sycophancy %.1f%% (gate: >= 90%%)\n", 100 * base->eval.heldout_accuracy,
           100 * base->eval.sycophancy);

    /* 3. simulated feedback on the SFT model's own samples */
    demo_gen_opts go = {policy, tokp, samples_k, 1.0f, max_new, n_sample_prompts, 32, (uint64_t)seed};
    double t0 = rl_now(), c0 = self_cpu();
    if (demo_generate(&go, prompts, samples, NULL)) { fprintf(stderr, "rlhf demo: sampling: %s\n", rl_error()); return 1; }
    demo_stage *ss = stage_begin("sample sft");
    ss->seconds = rl_now() - t0;
    ss->cpu_seconds = self_cpu() - c0;
    printf("  %-22s %6.1f s  (%.1f CPU-s)\n", "sample sft", ss->seconds, ss->cpu_seconds);
    if (run_stage("feedback", "sim", "feedback", "--world", world, "--samples", samples, "--out", fb, "--judgements",
                  fmt("%d", n_judge), "--seed", sd, NULL)) return 1;
    /* spot-check auditing (mitigation): the same evaluators, but a share of
     * the judgements made by fully informed auditors and weighted up */
    char *fba = path_in("feedback_audit.jsonl");
    int ok_fba = 0;
    if (audit_rate > 0)
        ok_fba = !run_stage("feedback audited", "sim", "feedback", "--world", world, "--samples", samples, "--out", fba, "--judgements",
                            fmt("%d", n_judge), "--seed", sd, "--audit-rate", fmt("%g", audit_rate), "--audit-weight",
                            fmt("%g", audit_weight), NULL);

    /* 4. reward models */
    char *rm1 = path_in("rm.ckpt"), *rm2 = path_in("rm_b.ckpt"), *rmt = path_in("rm_terse.ckpt"), *rmw = path_in("rm_working.ckpt");
    char *rma = path_in("rm_audit.ckpt");
    int ok_rma = 0;
    const char *rm_st = fmt("%d", rm_steps > 0 ? rm_steps : 1);
    int ok_rm1 = !run_stage("rm", "rm", "--model", policy, "--tokenizer", tokp, "--records", fb, "--out", rm1, "--steps", rm_st, "--lr", "1e-3",
                            "--seq", "96", "--log", path_in("logs/rm.jsonl"), "--threads", th, "--seed", sd, "--quiet", NULL);
    int ok_rm2 = !run_stage("rm ensemble #2", "rm", "--model", policy, "--tokenizer", tokp, "--records", fb, "--out", rm2, "--steps", rm_st,
                            "--lr", "1e-3", "--seq", "96", "--log", path_in("logs/rm_b.jsonl"), "--threads", th, "--seed",
                            fmt("%lld", seed + 1), "--quiet", NULL);
    int ok_rmg = !run_stage("rm group terse", "rm", "--model", policy, "--tokenizer", tokp, "--records", fb, "--group", "group=terse",
                            "--out", rmt, "--steps", rm_st, "--lr", "1e-3", "--seq", "96", "--log", path_in("logs/rm_terse.jsonl"),
                            "--threads", th, "--seed", sd, "--quiet", NULL) &&
                 !run_stage("rm group working", "rm", "--model", policy, "--tokenizer", tokp, "--records", fb, "--group",
                            "group=working", "--out", rmw, "--steps", rm_st, "--lr", "1e-3", "--seq", "96", "--log",
                            path_in("logs/rm_working.jsonl"), "--threads", th, "--seed", sd, "--quiet", NULL);
    if (ok_fba)
        ok_rma = !run_stage("rm audited", "rm", "--model", policy, "--tokenizer", tokp, "--records", fba, "--out", rma, "--steps", rm_st,
                            "--lr", "1e-3", "--seq", "96", "--log", path_in("logs/rm_audit.jsonl"), "--threads", th, "--seed", sd,
                            "--quiet", NULL);

    /* 5. policies: PPO against the fooled RM (unmitigated); mitigations: the
     * worst-case ensemble, early stopping on the gold series, an RM trained
     * on audited feedback; the group RMs combined by mean and by min; DPO; KTO.
     * With `rlhf ppo --gold` every run also logs the gold truth of its own
     * rollouts (sim:gold: correctness and sycophancy), which the monitors
     * compare with the proxy while training. */
    char *snapdir = path_in("snapshots_ppo");
    struct { const char *name, *tag, *reward, *aggregate; int need; demo_role role; int early; const char *why; } ppo_runs[] = {
        {"ppo (single RM)", "ppo", fmt("rm:%s", rm1), "mean", ok_rm1, DEMO_ROLE_UNMITIGATED, 0, NULL},
        {"ppo (ensemble min)", "ppo_ens", fmt("ensemble:min:%s,%s", rm1, rm2), "mean", ok_rm1 && ok_rm2, DEMO_ROLE_MITIGATION, 0, NULL},
        {"ppo (early stop)", "ppo_early", fmt("rm:%s", rm1), "mean", ok_rm1, DEMO_ROLE_MITIGATION, 1, NULL},
        {"ppo (audited RM)", "ppo_audit", fmt("rm:%s", rma), "mean", ok_rma, DEMO_ROLE_MITIGATION, 0,
         audit_rate <= 0 ? "--audit-rate 0" : NULL},
        {"ppo utilitarian", "ppo_util", fmt("groups:rm:%s;rm:%s", rmt, rmw), "mean", ok_rmg, DEMO_ROLE_UTILITARIAN, 0, NULL},
        {"ppo maximin", "ppo_maximin", fmt("groups:rm:%s;rm:%s", rmt, rmw), "min", ok_rmg, DEMO_ROLE_MAXIMIN, 0, NULL},
    };
    for (size_t i = 0; i < sizeof ppo_runs / sizeof ppo_runs[0]; i++) {
        demo_row *r = &rows[nrows++];
        snprintf(r->method, sizeof r->method, "%s", ppo_runs[i].name);
        snprintf(r->tag, sizeof r->tag, "%s", ppo_runs[i].tag);
        r->role = ppo_runs[i].role;
        r->until_step = 0;
        if (!ppo_runs[i].need) {
            snprintf(r->note, sizeof r->note, "%s", ppo_runs[i].why ? ppo_runs[i].why : "its reward model failed to train (see logs/)");
            continue;
        }
        char *o = path_in(fmt("%s.ckpt", ppo_runs[i].tag));
        snprintf(r->log, sizeof r->log, "%s", path_in(fmt("logs/%s.jsonl", ppo_runs[i].tag)));
        const char *args[64];
        int na = 0;
        const char *base_args[] = {"ppo", "--policy", policy, "--tokenizer", tokp, "--reward", ppo_runs[i].reward, "--aggregate",
                                   ppo_runs[i].aggregate, "--prompts", prompts, "--out", o, "--steps", fmt("%d", rl_steps > 0 ? rl_steps : 1),
                                   "--prompts-per-step", "16", "--max-new", fmt("%d", max_new), "--lr", "5e-5", "--value-lr", "1e-3",
                                   "--log", r->log, "--threads", th, "--seed", sd, "--quiet"};
        for (size_t k = 0; k < sizeof base_args / sizeof base_args[0]; k++) args[na++] = base_args[k];
        args[na++] = "--gold";
        args[na++] = "sim:gold";
        /* greedy answers to the validation prompts: a steadier gold series than the rollouts' */
        args[na++] = "--eval-prompts";
        args[na++] = valp;
        args[na++] = "--eval-every";
        args[na++] = "1";
        /* one crossing of a threshold on this steadier series is enough: with the
         * default patience 2 (and eval every 2) the full demo's first warning came
         * at iteration 6, two after held-out gold had fallen 5 points (docs/demo.md) */
        args[na++] = "--warn-patience";
        args[na++] = "1";
        if (ppo_runs[i].early) args[na++] = "--early-stop";
        if (r->role == DEMO_ROLE_UNMITIGATED) {
            /* checkpoints along the run: their held-out gold accuracy says when
             * gold fell (check c), and `rlhf study overoptimization` uses them */
            args[na++] = "--save-every";
            args[na++] = fmt("%d", rl_steps >= 30 ? rl_steps / 15 : 1);
            args[na++] = "--snapshots";
            args[na++] = snapdir;
        }
        args[na] = NULL;
        if (run_stage_v(ppo_runs[i].tag, args)) {
            snprintf(r->note, sizeof r->note, "rlhf ppo failed (see logs/%s.log)", ppo_runs[i].tag);
            r->log[0] = 0;
            continue;
        }
        const char *policy_out = o;
        if (ppo_runs[i].early) {
            /* early stopping returns the policy with the best smoothed gold (OUT.best) */
            char *best = path_in(fmt("%s.ckpt.best", ppo_runs[i].tag));
            ckpt_info bi;
            double bs;
            if (access(best, R_OK) == 0 && ckpt_peek(best, &bi) == RL_OK) {
                policy_out = best;
                if (ckpt_meta_get_f(&bi.meta, "rl.best_step", &bs)) r->until_step = (long long)bs + 1;
            }
        }
        if (evaluate(policy_out, tokp, world, ppo_runs[i].tag, n_heldout, max_new, &w, &pc, &r->eval, &r->vs_sft)) return 1;
        r->ran = 1;
        if (r->role == DEMO_ROLE_UNMITIGATED) {
            /* held-out gold accuracy of every snapshot, as the table measures it */
            snprintf(r->heldout_log, sizeof r->heldout_log, "%s", path_in("logs/ppo_heldout.jsonl"));
            FILE *hf = fopen(r->heldout_log, "w");
            if (!hf) { fprintf(stderr, "rlhf demo: cannot write %s\n", r->heldout_log); return 1; }
            fprintf(hf, "{\"step\":0,\"heldout_accuracy\":%.6g,\"sycophancy\":%.6g}\n", base->eval.heldout_accuracy,
                    isnan(base->eval.sycophancy) ? -1.0 : base->eval.sycophancy);
            int ns0 = nstages;
            double th0 = rl_now(), ch0 = self_cpu();
            for (int st = 1; st <= rl_steps; st++) {
                char *snap = fmt("%s/step-%06d.ckpt", snapdir, st);
                if (access(snap, R_OK)) continue;
                sim_eval_summary se;
                sim_ref_outcome sr;
                if (evaluate(snap, tokp, world, fmt("ppo_step%d", st), n_heldout, max_new, &w, &pc, &se, &sr)) { fclose(hf); return 1; }
                fprintf(hf, "{\"step\":%d,\"heldout_accuracy\":%.6g,\"sycophancy\":%.6g}\n", st, se.heldout_accuracy,
                        isnan(se.sycophancy) ? -1.0 : se.sycophancy);
                remove(fmt("%s/answers_ppo_step%d.jsonl", outdir, st));
            }
            fclose(hf);
            nstages = ns0; /* one stage for them all */
            demo_stage *es = stage_begin("eval ppo snapshots");
            es->seconds = rl_now() - th0;
            es->cpu_seconds = self_cpu() - ch0;
            printf("  %-22s %6.1f s  (%.1f CPU-s)\n", es->name, es->seconds, es->cpu_seconds);
        }
        r->kl = demo_log_at(r->log, "kl", r->until_step);
        r->proxy = demo_log_at(r->log, "reward_mean", r->until_step);
    }
    /* gold and proxy against sqrt(KL) along the unmitigated run and for best-of-n (Gao et al. fits) */
    char *study_dir = path_in("study");
    int ok_study = 0;
    if (rows[1].ran && rows[1].role == DEMO_ROLE_UNMITIGATED) {
        char *sp = path_in("study_prompts.jsonl");
        if (demo_head_lines(fmt("%s/heldout.jsonl", world), sp, quick || tiny ? 24 : 64)) {
            fprintf(stderr, "rlhf demo: %s\n", rl_error());
            return 1;
        }
        ok_study = !run_stage("study", "study", "overoptimization", "--policy", policy, "--tokenizer", tokp, "--prompts", sp, "--proxy",
                              fmt("rm:%s", rm1), "--gold", "sim:gold", "--n-list", quick || tiny ? "1,2,4,8" : "1,2,4,8,16,32",
                              "--ppo-dir", snapdir, "--ppo-samples", "2", "--max-new", fmt("%d", max_new), "--seed", sd, "--out",
                              study_dir, "--threads", th, "--quiet", NULL);
    }
    struct { const char *name, *cmd; } prefs[] = {{"dpo", "dpo"}, {"kto", "kto"}};
    for (int i = 0; i < 2; i++) {
        demo_row *r = &rows[nrows++];
        snprintf(r->method, sizeof r->method, "%s", prefs[i].name);
        snprintf(r->tag, sizeof r->tag, "%s", prefs[i].name);
        char *o = path_in(fmt("%s.ckpt", prefs[i].name));
        snprintf(r->log, sizeof r->log, "%s", path_in(fmt("logs/%s.jsonl", prefs[i].name)));
        if (run_stage(prefs[i].name, prefs[i].cmd, "--model", policy, "--tokenizer", tokp, "--records", fb, "--out", o, "--steps",
                      fmt("%d", pref_steps > 0 ? pref_steps : 1), "--lr", "3e-5", "--seq", "96", "--kl-samples", "8", "--log", r->log,
                      "--threads", th, "--seed", sd, "--quiet", NULL)) {
            snprintf(r->note, sizeof r->note, "rlhf %s failed (see logs/%s.log)", prefs[i].cmd, prefs[i].name);
            r->log[0] = 0;
            continue;
        }
        if (evaluate(o, tokp, world, prefs[i].name, n_heldout, max_new, &w, &pc, &r->eval, &r->vs_sft)) return 1;
        r->ran = 1;
        r->kl = demo_log_last(r->log, "val_kl_sampled");
        r->proxy = NAN;
    }
    for (int i = 0; i < nrows; i++) if (rows[i].ran && i > 0) demo_log_warn_info(rows[i].log, &rows[i].warn);

    /* 6. table, summary, report */
    printf("\nheld-out gold evaluation (%d prompts; satisfaction per group; sycophancy = agreeing with a wrong suggestion)\n", n_heldout);
    demo_print_table(stdout, rows, nrows, &pc);
    demo_check checks[DEMO_NCHECKS];
    int failed = demo_run_checks(rows, nrows, &pc, checks);
    printf("\nacceptance checks (issue 8), from the measurements above:\n");
    demo_print_checks(stdout, checks, DEMO_NCHECKS);
    printf("%d of %d checks passed%s\n", DEMO_NCHECKS - failed, DEMO_NCHECKS,
           quick || tiny ? " (quick and tiny sizes are not expected to pass them; docs/demo.md)" : "");
    char serve[1024];
    snprintf(serve, sizeof serve, "rlhf serve --model %s --tokenizer %s --db %s", policy, tokp, path_in("feedback.db"));
    /* summary.json: the table, machine-readable (the tests compare it with rlhf sim eval) */
    FILE *sj = fopen(path_in("summary.json"), "w");
    if (sj) {
        fprintf(sj, "{\"methods\":[");
        int first = 1;
        for (int i = 0; i < nrows; i++) {
            if (!rows[i].ran) continue;
            char *ev = sim_eval_json(&rows[i].eval, &pc, &rows[i].vs_sft); /* = rlhf sim eval --reference answers_sft.jsonl */
            fprintf(sj, "%s{\"method\":\"%s\",\"answers\":\"answers_%s.jsonl\",\"kl\":%.6g,\"proxy\":%.6g,\"warnings\":%d,"
                    "\"warnings_live\":%d,\"warnings_replayed\":%d,\"first_warning_step\":%lld,\"eval\":%s}", first ? "" : ",",
                    rows[i].method, rows[i].tag, isnan(rows[i].kl) ? -1.0 : rows[i].kl, isnan(rows[i].proxy) ? 0.0 : rows[i].proxy,
                    rows[i].warn.total, rows[i].warn.live, rows[i].warn.replayed, rows[i].warn.first_step, ev ? ev : "null");
            free(ev);
            first = 0;
        }
        char *cj = demo_checks_json(checks, DEMO_NCHECKS);
        double cpu = total_cpu();
        fprintf(sj, "],\"checks\":%s,\"checks_failed\":%d,\"stages\":[", cj ? cj : "[]", failed);
        free(cj);
        for (int i = 0; i < nstages; i++)
            fprintf(sj, "%s{\"name\":\"%s\",\"seconds\":%.2f,\"cpu_seconds\":%.2f,\"rc\":%d}", i ? "," : "", stages[i].name,
                    stages[i].seconds, stages[i].cpu_seconds, stages[i].rc);
        fprintf(sj, "],\"cpu_seconds\":%.1f,\"seconds\":%.1f}\n", cpu, rl_now() - t_start);
        fclose(sj);
    }
    if (demo_write_report(path_in("report.html"), rows, nrows, stages, nstages, &pc, serve, checks, DEMO_NCHECKS,
                          ok_study ? path_in("study/study.json") : NULL)) {
        fprintf(stderr, "rlhf demo: %s\n", rl_error());
        return 1;
    }
    printf("\nreport: %s   (%.0f s in all, %.0f CPU-s)\n", path_in("report.html"), rl_now() - t_start, total_cpu());
    printf("try the model in the feedback app:\n  %s\n", serve);
    if (strict && failed) {
        fprintf(stderr, "rlhf demo: %d acceptance check(s) failed (--strict)\n", failed);
        return 1;
    }
    return 0;
}
