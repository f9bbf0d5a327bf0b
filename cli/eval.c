/* eval.c — `rlhf eval`: a policy against a reference, per group (src/eval/eval.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/eval/eval.h"
#include "../src/kernels/ops.h"

/* One side's answers: the given file, or sampled from the checkpoint. */
static int side(const char *what, const char *file, const char *ckpt, const eval_gen_opts *go, char *const *prompts, int np,
                eval_answers *a) {
    rl_status st;
    if (file[0]) st = eval_answers_load(file, a);
    else {
        eval_gen_opts o = *go;
        o.model = ckpt;
        st = eval_generate(&o, prompts, np, a);
    }
    if (st) { fprintf(stderr, "rlhf eval: %s answers: %s\n", what, rl_error()); return 1; }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    static const char *policy, *reference, *tokp, *prompts_path, *reward, *responses, *ref_responses, *names, *weights;
    static const char *save, *save_ref;
    static int n, max_new, max_prompts, batch, threads, json;
    static double temperature, alpha;
    static long long seed;
    static rl_flag flags[] = {
        {"policy", RL_FLAG_STRING, &policy, "", 0, 0, NULL, "policy checkpoint to sample (or --responses)"},
        {"reference", RL_FLAG_STRING, &reference, "", 0, 0, NULL, "reference checkpoint to sample, e.g. the SFT model (or --reference-responses)"},
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file (the policies' and the reward models')"},
        {"prompts", RL_FLAG_STRING, &prompts_path, "", 0, 0, NULL, "prompts to answer: JSONL with \"prompt\" strings, or plain lines"},
        {"reward", RL_FLAG_STRING, &reward, NULL, 0, 0, NULL, "reward spec (rlhf ppo --help); groups:S1;S2;... gives one reward per group"},
        {"responses", RL_FLAG_STRING, &responses, "", 0, 0, NULL, "the policy's answers, JSONL {\"prompt\",\"response\"} (instead of sampling)"},
        {"reference-responses", RL_FLAG_STRING, &ref_responses, "", 0, 0, NULL, "the reference's answers to the same prompts, same order"},
        {"n", RL_FLAG_INT, &n, "1", 1, 1024, NULL, "answers per prompt when sampling"},
        {"temperature", RL_FLAG_FLOAT, &temperature, "0", 0, 100, NULL, "sampling temperature (0 = greedy)"},
        {"max-new", RL_FLAG_INT, &max_new, "64", 1, 65536, NULL, "tokens per sampled answer"},
        {"max-prompts", RL_FLAG_INT, &max_prompts, "0", 0, 100000000, NULL, "first N prompts only (0 = all)"},
        {"batch", RL_FLAG_INT, &batch, "32", 1, 65536, NULL, "prompts decoded together"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9e15, NULL, "sampling seed"},
        {"alpha", RL_FLAG_FLOAT, &alpha, "1", 0, 1e6, NULL, "inequality aversion of the isoelastic aggregate"},
        {"group-names", RL_FLAG_STRING, &names, "", 0, 0, NULL, "names of the groups, comma-separated (default: from the spec)"},
        {"group-weights", RL_FLAG_STRING, &weights, "", 0, 0, NULL, "population shares of the groups for the aggregates, e.g. 0.5,0.5 (default uniform)"},
        {"save-responses", RL_FLAG_STRING, &save, "", 0, 0, NULL, "write the policy's answers here (JSONL, for --responses)"},
        {"save-reference-responses", RL_FLAG_STRING, &save_ref, "", 0, 0, NULL, "write the reference's answers here"},
        {"json", RL_FLAG_BOOL, &json, "0", 0, 0, NULL, "print one JSON object instead of the table"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores)"},
    };
    int rc = rl_flags_parse("eval",
                            "A policy against a reference policy on the same prompts, per group: mean reward, win rate against the reference, "
                            "the gap between the best- and worst-off groups, and the aggregate under each welfare rule.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (!policy[0] == !responses[0] || !reference[0] == !ref_responses[0]) {
        fprintf(stderr, "rlhf eval: give --policy CKPT or --responses FILE, and --reference CKPT or --reference-responses FILE; see 'rlhf eval --help'\n");
        return 2;
    }
    if ((policy[0] || reference[0]) && !prompts_path[0]) {
        fprintf(stderr, "rlhf eval: sampling a checkpoint needs --prompts FILE\n");
        return 2;
    }
    double gw[64];
    int ngw = 0;
    if (weights[0]) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", weights);
        for (char *sv = NULL, *tk = strtok_r(buf, ",", &sv); tk; tk = strtok_r(NULL, ",", &sv)) {
            if (ngw == 64 || !rl_parse_double(tk, &gw[ngw]) || !(gw[ngw] >= 0)) {
                fprintf(stderr, "rlhf eval: --group-weights wants numbers >= 0 like 0.5,0.5\n");
                return 2;
            }
            ngw++;
        }
    }
    (void)ops_get("fast");
    ops_set_threads(threads);
    char **prompts = NULL;
    int np = 0;
    if ((policy[0] || reference[0]) && eval_prompts_load(prompts_path, max_prompts, &prompts, &np)) {
        fprintf(stderr, "rlhf eval: %s\n", rl_error());
        return 1;
    }
    eval_gen_opts go = {NULL, tokp, n, (float)temperature, max_new, batch, (uint64_t)seed};
    eval_answers pa = {0}, ra = {0};
    int ret = side("policy", responses, policy, &go, prompts, np, &pa) || side("reference", ref_responses, reference, &go, prompts, np, &ra);
    for (int i = 0; i < np; i++) free(prompts[i]);
    free(prompts);
    if (!ret && save[0] && eval_answers_write(save, &pa)) { fprintf(stderr, "rlhf eval: %s\n", rl_error()); ret = 1; }
    if (!ret && save_ref[0] && eval_answers_write(save_ref, &ra)) { fprintf(stderr, "rlhf eval: %s\n", rl_error()); ret = 1; }
    if (!ret) {
        eval_opts eo = {reward, tokp, alpha, ngw ? gw : NULL, ngw, names[0] ? names : NULL};
        eval_result r;
        if (eval_compare(&eo, &pa, &ra, &r)) {
            fprintf(stderr, "rlhf eval: %s\n", rl_error());
            ret = 1;
        } else {
            if (json) {
                char *s = eval_result_json(&r);
                if (s) printf("%s\n", s);
                else ret = 1;
                free(s);
            } else {
                eval_print(stdout, &r);
            }
            eval_result_free(&r);
        }
    }
    eval_answers_free(&pa);
    eval_answers_free(&ra);
    return ret;
}
