/* study.c — `rlhf study overoptimization` (src/study/study.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/kernels/ops.h"
#include "../src/study/study.h"

static const char *sec_vk, *sec_kf, *sec_pe;

int cmd_study_overoptimization(int argc, char **argv) {
    static const char *policy, *tokp, *prompts, *proxy, *gold, *n_list, *ckpts, *ppo_dir, *out, *estimator, *aggregate;
    static int ppo_samples, max_new, raw, threads, quiet;
    static double alpha;
    static long long seed;
    static rl_flag flags[] = {
        {"policy", RL_FLAG_STRING, &policy, NULL, 0, 0, NULL, "reference policy (the SFT model): best-of-n samples it; KL is measured to it"},
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file the policy was trained with"},
        {"prompts", RL_FLAG_STRING, &prompts, NULL, 0, 0, NULL, "prompts file: one per line, text or {\"prompt\": \"...\"}"},
        {"proxy", RL_FLAG_STRING, &proxy, NULL, 0, 0, NULL, "the optimised reward: a reward spec (see 'rlhf ppo --help'), e.g. rm:rm.ckpt"},
        {"gold", RL_FLAG_STRING, &gold, NULL, 0, 0, NULL, "the true reward: a reward spec, e.g. a held-out RM or a programmatic one"},
        {"n-list", RL_FLAG_STRING, &n_list, "1,2,4,8,16,32,64", 0, 0, NULL,
         "best-of-n sizes (max(n) samples per prompt, drawn once); \"\" = no best-of-n"},
        {"estimator", RL_FLAG_ENUM, &estimator, "subsets", 0, 0, "subsets|prefix",
         "best-of-n estimate: average over all n-subsets of the samples, or the first n (= 'rlhf bon --batch 1')"},
        {"ppo-checkpoints", RL_FLAG_STRING, &ckpts, "", 0, 0, NULL, "comma-separated PPO checkpoints along a run"},
        {"ppo-dir", RL_FLAG_STRING, &ppo_dir, "", 0, 0, NULL, "every *.ckpt in this directory (from 'rlhf ppo --save-every N --snapshots DIR')"},
        {"ppo-samples", RL_FLAG_INT, &ppo_samples, "4", 1, 4096, NULL, "answers per prompt per PPO checkpoint"},
        {"max-new", RL_FLAG_INT, &max_new, "64", 1, 1000000, NULL, "response tokens at most"},
        {"aggregate", RL_FLAG_ENUM, &aggregate, "mean", 0, 0, "mean|nash|isoelastic|min|maxmin", "how groups: rewards combine"},
        {"alpha", RL_FLAG_FLOAT, &alpha, "1", 0, 1e6, NULL, "isoelastic inequality aversion"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9.2e18, NULL, "sampling seed (prompt p: seed + p*1000003, as 'rlhf bon --batch 1')"},
        {"raw", RL_FLAG_BOOL, &raw, "0", 0, 0, NULL, "prompts as plain text (no chat template)"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "directory for study.json and study.csv (created)"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},
        {"quiet", RL_FLAG_BOOL, &quiet, "0", 0, 0, NULL, "no progress on stderr"},
        CLI_CKPT_LOAD_FLAGS(sec_vk, sec_kf, sec_pe),
    };
    const char *summary = "Over-optimisation study: gold and proxy reward against d = sqrt(KL) for best-of-n over a range of n "
                          "and for PPO checkpoints along a run; Gao et al. (2022) fits and the predicted peak (docs/diagnostics.md).";
    int rc = rl_flags_parse("study overoptimization", summary, flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("study overoptimization", NULL, sec_vk, sec_kf, sec_pe, 0)) return 1;
    static int ns[64];
    int nn = study_parse_int_list(n_list, ns, 64, 1, STUDY_MAX_N);
    if (nn < 0) {
        fprintf(stderr, "rlhf study overoptimization: --n-list wants up to 64 comma-separated sizes in 1..%d, like 1,2,4,8\n", STUDY_MAX_N);
        return 2;
    }
    /* split --ppo-checkpoints at commas */
    char *buf = strdup(ckpts);
    const char **paths = calloc(STUDY_MAX_CKPTS, sizeof(char *));
    if (!buf || !paths) { free(buf); free(paths); fprintf(stderr, "rlhf study overoptimization: out of memory\n"); return 1; }
    int np = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (np == STUDY_MAX_CKPTS) {
            fprintf(stderr, "rlhf study overoptimization: at most %d --ppo-checkpoints\n", STUDY_MAX_CKPTS);
            free(buf); free(paths);
            return 2;
        }
        paths[np++] = t;
    }
    if (nn == 0 && np == 0 && !ppo_dir[0]) {
        fprintf(stderr, "rlhf study overoptimization: nothing to study: give --n-list and/or --ppo-checkpoints / --ppo-dir\n");
        free(buf); free(paths);
        return 2;
    }
    ops_set_threads(threads);
    study_opts o;
    study_opts_default(&o);
    o.policy_path = policy;
    o.tokenizer_path = tokp;
    o.prompts_path = prompts;
    o.proxy_spec = proxy;
    o.gold_spec = gold;
    o.aggregate = aggregate;
    o.alpha = alpha;
    o.n_list = ns;
    o.n_n = nn;
    o.estimator = !strcmp(estimator, "prefix") ? STUDY_BON_PREFIX : STUDY_BON_SUBSETS;
    o.ppo_paths = paths;
    o.n_ppo = np;
    o.ppo_dir = ppo_dir[0] ? ppo_dir : NULL;
    o.ppo_samples = ppo_samples;
    o.max_new = max_new;
    o.chat = !raw;
    o.seed = (uint64_t)seed;
    o.out_dir = out;
    o.quiet = quiet;
    study_result r;
    rl_status s = study_overoptimization(&o, &r);
    int ret = 0;
    if (s) {
        fprintf(stderr, "rlhf study overoptimization: %s\n", rl_error());
        ret = 1;
    } else {
        study_result_print(&r, stdout);
        if (!quiet) rl_info("wrote %s/study.json and %s/study.csv (%.1f s)", out, out, r.seconds);
    }
    study_result_free(&r);
    free(buf);
    free(paths);
    return ret;
}
