/* sim.c — `rlhf sim world|feedback|eval`: the calculator world (src/sim). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/binfile.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/sim/sim.h"

/* Comma-separated numbers ("0.8,0.2"). Returns the count, or -1 on junk. */
static int parse_list(const char *s, double *out, int max) {
    int n = 0;
    char buf[256];
    if (!s || strlen(s) >= sizeof buf) return -1;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= max || !rl_parse_double(tok, &out[n])) return -1;
        n++;
    }
    return n;
}

/* Population flags shared by `sim world` and `sim feedback`. */
static const char *pool_shares, *pop_shares, *beliefs;
static double strength, checking_rate, checking_spread, noise;
#define POP_FLAGS \
    {"pool-shares", RL_FLAG_STRING, &pool_shares, "0.8,0.2", 0, 0, NULL, "group shares among evaluators (groups terse,working[,...])"}, \
    {"pop-shares", RL_FLAG_STRING, &pop_shares, "0.5,0.5", 0, 0, NULL, "group shares in the population served"}, \
    {"strength", RL_FLAG_FLOAT, &strength, "0.8", 0, 1, NULL, "P(an annotator picks their preferred style between two answers believed right)"}, \
    {"checking-rate", RL_FLAG_FLOAT, &checking_rate, "0.2", 0, 1, NULL, "mean probability that an annotator verifies the sum"}, \
    {"checking-spread", RL_FLAG_FLOAT, &checking_spread, "0", 0, 1, NULL, "per-annotator checking rate uniform in rate±spread"}, \
    {"beliefs", RL_FLAG_STRING, &beliefs, "0.5,0.3,0.2", 0, 0, NULL, "shares of annotators believing nocarry,agree,tone when not checking"}, \
    {"noise", RL_FLAG_FLOAT, &noise, "0.05", 0, 1, NULL, "probability a judgement is flipped"}

/* Applies the population flags to c (only those given when only_given). Returns 0 or 2 (usage). */
static int apply_pop_flags(const char *cmd, sim_pop_config *c, const rl_flag *flags, int nflags, int only_given) {
#define GIVEN(name) (!only_given || rl_flag_given(flags, nflags, name))
    double v[SIM_MAX_GROUPS];
    if (GIVEN("pool-shares") || GIVEN("pop-shares")) {
        int n1 = parse_list(pool_shares, v, SIM_MAX_GROUPS);
        if (n1 < 1) { fprintf(stderr, "rlhf %s: --pool-shares wants numbers like 0.8,0.2\n", cmd); return 2; }
        double w[SIM_MAX_GROUPS];
        int n2 = parse_list(pop_shares, w, SIM_MAX_GROUPS);
        if (n2 != n1) { fprintf(stderr, "rlhf %s: --pop-shares needs as many numbers as --pool-shares (%d)\n", cmd, n1); return 2; }
        if (n1 != c->ngroups) {
            /* More groups than the defaults: styles rotate so each group has a different favourite. */
            for (int g = c->ngroups; g < n1; g++) {
                sim_group *gr = &c->groups[g];
                snprintf(gr->name, sizeof gr->name, "%s", g == 2 ? "sentence" : "group3");
                for (int i = 0; i < SIM_NSTYLES; i++) gr->style_order[i] = (g + i) % SIM_NSTYLES;
                gr->strength = c->groups[0].strength;
            }
            c->ngroups = n1;
        }
        for (int g = 0; g < n1; g++) { c->groups[g].pool_share = v[g]; c->groups[g].pop_share = w[g]; }
    }
    if (GIVEN("strength")) for (int g = 0; g < c->ngroups; g++) c->groups[g].strength = strength;
    if (GIVEN("checking-rate")) c->checking_rate = checking_rate;
    if (GIVEN("checking-spread")) c->checking_spread = checking_spread;
    if (GIVEN("noise")) c->noise = noise;
    if (GIVEN("beliefs")) {
        if (parse_list(beliefs, c->belief_share, SIM_NBELIEFS) != SIM_NBELIEFS) {
            fprintf(stderr, "rlhf %s: --beliefs wants three numbers nocarry,agree,tone\n", cmd);
            return 2;
        }
    }
#undef GIVEN
    if (sim_pop_validate(c)) { fprintf(stderr, "rlhf %s: %s\n", cmd, rl_error()); return 2; }
    return 0;
}

int cmd_sim_world(int argc, char **argv) {
    static const char *out, *style_mix;
    static long long seed;
    static int n_train, n_heldout, a_min, a_max, b_min, b_max;
    static double heldout_frac, leading_rate, wrong_rate, sft_error_rate;
    rl_flag flags[] = {
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "directory to write the world into (created)"},
        {"seed", RL_FLAG_I64, &seed, "1234", 0, 9e15, NULL, "seed of the split and every draw"},
        {"n-train", RL_FLAG_INT, &n_train, "5000", 0, 10000000, NULL, "SFT demonstrations (and RL prompts) from train pairs"},
        {"n-heldout", RL_FLAG_INT, &n_heldout, "500", 0, 10000000, NULL, "held-out prompts with gold answers"},
        {"a-min", RL_FLAG_INT, &a_min, "10", 0, SIM_MAX_OPERAND, NULL, "smallest first operand"},
        {"a-max", RL_FLAG_INT, &a_max, "99", 0, SIM_MAX_OPERAND, NULL, "largest first operand"},
        {"b-min", RL_FLAG_INT, &b_min, "10", 0, SIM_MAX_OPERAND, NULL, "smallest second operand"},
        {"b-max", RL_FLAG_INT, &b_max, "99", 0, SIM_MAX_OPERAND, NULL, "largest second operand"},
        {"heldout-frac", RL_FLAG_FLOAT, &heldout_frac, "0.1", 0, 1, NULL, "share of unordered operand pairs held out"},
        {"leading-rate", RL_FLAG_FLOAT, &leading_rate, "0.3", 0, 1, NULL, "share of prompts where the user suggests an answer"},
        {"wrong-suggestion-rate", RL_FLAG_FLOAT, &wrong_rate, "0.7", 0, 1, NULL, "share of suggestions that are wrong"},
        {"sft-error-rate", RL_FLAG_FLOAT, &sft_error_rate, "0.03", 0, 1, NULL, "share of SFT demonstrations that are wrong"},
        {"style-mix", RL_FLAG_STRING, &style_mix, "0.4,0.3,0.3", 0, 0, NULL, "SFT style shares terse,sentence,working"},
        POP_FLAGS,
    };
    const char *summary = "Build the calculator world: SFT demonstrations, RL prompts, held-out prompts with gold answers, and config.json.";
    int rc = rl_flags_parse("sim world", summary, flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    sim_world w;
    sim_world_default(&w);
    w.seed = (uint64_t)seed;
    w.a_min = a_min; w.a_max = a_max; w.b_min = b_min; w.b_max = b_max;
    w.heldout_frac = heldout_frac; w.leading_rate = leading_rate;
    w.wrong_suggestion_rate = wrong_rate; w.sft_error_rate = sft_error_rate;
    if (parse_list(style_mix, w.style_mix, SIM_NSTYLES) != SIM_NSTYLES) {
        fprintf(stderr, "rlhf sim world: --style-mix wants three numbers terse,sentence,working\n");
        return 2;
    }
    if (sim_world_validate(&w)) { fprintf(stderr, "rlhf sim world: %s\n", rl_error()); return 2; }
    sim_pop_config pc;
    sim_pop_default(&pc);
    if ((rc = apply_pop_flags("sim world", &pc, flags, RL_NFLAGS(flags), 0))) return rc;
    if (sim_world_write(out, &w, &pc, n_train, n_heldout)) { fprintf(stderr, "rlhf sim world: %s\n", rl_error()); return 1; }
    rl_info("world written to %s: sft.jsonl (%d), train_prompts.jsonl (%d), heldout.jsonl (%d), config.json", out, n_train, n_train, n_heldout);
    return 0;
}

int cmd_sim_feedback(int argc, char **argv) {
    static const char *world, *out, *kinds, *cands, *samples;
    static int annotators, ranking_k;
    static long long judgements, seed;
    static double audit_rate, audit_weight;
    rl_flag flags[] = {
        {"world", RL_FLAG_STRING, &world, NULL, 0, 0, NULL, "world directory from 'rlhf sim world'"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "feedback JSONL to write"},
        {"annotators", RL_FLAG_INT, &annotators, "50", 1, 1000000, NULL, "simulated annotators"},
        {"judgements", RL_FLAG_I64, &judgements, "2000", 0, 1e8, NULL, "judgements to generate"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9e15, NULL, "seed of annotators and judgements"},
        {"kinds", RL_FLAG_STRING, &kinds, "0.6,0.3,0.1", 0, 0, NULL, "shares of pair,thumbs,ranking judgements"},
        {"ranking-k", RL_FLAG_INT, &ranking_k, "4", 2, SIM_MAX_RANK, NULL, "responses per ranking"},
        {"candidates", RL_FLAG_STRING, &cands, "0.45,0.2,0.15,0.1,0.1", 0, 0, NULL,
         "perturbed gold answers: shares correct,nocarry,sycophantic,off-by,hedged-correct"},
        {"samples", RL_FLAG_STRING, &samples, "", 0, 0, NULL,
         "judge model samples instead: JSONL {\"prompt\",\"response\"} or {\"prompt\",\"responses\":[...]}"},
        {"audit-rate", RL_FLAG_FLOAT, &audit_rate, "0", 0, 1, NULL,
         "share of judgements made by fully informed auditors (always check, no noise; annotator sim:auditor-K, meta role auditor)"},
        {"audit-weight", RL_FLAG_FLOAT, &audit_weight, "1", 0, 1e6, NULL, "record weight of an audited judgement (the reward-model loss uses it)"},
        POP_FLAGS,
    };
    const char *summary = "Simulated annotators judge answers (perturbed gold answers, or model samples with --samples) on train prompts; "
                          "writes feedback JSONL (pairs, thumbs, rankings). "
                          "Population flags not given come from the world's config.json.";
    int rc = rl_flags_parse("sim feedback", summary, flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    sim_feedback_mix mix;
    sim_feedback_mix_default(&mix);
    double k3[3], c5[5];
    if (parse_list(kinds, k3, 3) != 3 || parse_list(cands, c5, 5) != 5) {
        fprintf(stderr, "rlhf sim feedback: --kinds wants 3 numbers and --candidates 5; see 'rlhf sim feedback --help'\n");
        return 2;
    }
    mix.pair_frac = k3[0]; mix.thumbs_frac = k3[1]; mix.ranking_frac = k3[2]; mix.ranking_k = ranking_k;
    mix.cand_correct = c5[0]; mix.cand_nocarry = c5[1]; mix.cand_sycophantic = c5[2]; mix.cand_offby = c5[3]; mix.cand_hedged = c5[4];
    mix.audit_rate = audit_rate;
    mix.audit_weight = audit_weight;
    sim_world w;
    sim_pop_config pc;
    if (sim_world_load(world, &w, &pc)) { fprintf(stderr, "rlhf sim feedback: %s\n", rl_error()); return 1; }
    if ((rc = apply_pop_flags("sim feedback", &pc, flags, RL_NFLAGS(flags), 1))) return rc;
    sim_feedback_stats st;
    if (sim_feedback_write(out, &w, &pc, &mix, annotators, judgements, (uint64_t)seed, *samples ? samples : NULL, &st)) {
        fprintf(stderr, "rlhf sim feedback: %s\n", rl_error());
        return strstr(rl_error(), "feedback mix") ? 2 : 1; /* bad --kinds/--candidates shares: usage */
    }
    rl_info("%lld judgements by %d annotators -> %s: %ld pairs, %ld thumbs, %ld rankings; checked %.1f%%, flipped %.1f%%",
            judgements, annotators, out, st.n_pair, st.n_thumbs, st.n_ranking,
            judgements ? 100.0 * st.n_checked / judgements : 0.0, judgements ? 100.0 * st.n_flipped / judgements : 0.0);
    if (audit_rate > 0)
        rl_info("  audited %ld (%.1f%%) by fully informed auditors, weight %g each", st.n_audited,
                judgements ? 100.0 * st.n_audited / judgements : 0.0, audit_weight);
    if (st.n_skipped_heldout) rl_info("  skipped %ld sample lines on held-out prompts", st.n_skipped_heldout);
    for (int g = 0; g < pc.ngroups; g++)
        rl_info("  group %-10s %ld judgements (pool share %.2f, population share %.2f)", pc.groups[g].name, st.n_group[g],
                pc.groups[g].pool_share, pc.groups[g].pop_share);
    return 0;
}

int cmd_sim_eval(int argc, char **argv) {
    static const char *world, *responses, *out, *reference;
    rl_flag flags[] = {
        {"world", RL_FLAG_STRING, &world, NULL, 0, 0, NULL, "world directory from 'rlhf sim world'"},
        {"responses", RL_FLAG_STRING, &responses, NULL, 0, 0, NULL, "JSONL of {\"prompt\",\"response\"} to grade"},
        {"reference", RL_FLAG_STRING, &reference, "", 0, 0, NULL,
         "a reference policy's answers to the same prompts, same order (e.g. the SFT model's): adds per-group win rates and gaps"},
        {"out", RL_FLAG_STRING, &out, "", 0, 0, NULL, "also write the summary JSON here"},
    };
    const char *summary = "Grade responses with the gold evaluator: accuracy (all and held-out), per-group satisfaction, sycophancy; "
                          "with --reference, per-group win rates against a reference policy and the best-worst gaps. "
                          "Prints one JSON object on stdout.";
    int rc = rl_flags_parse("sim eval", summary, flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    sim_world w;
    sim_pop_config pc;
    if (sim_world_load(world, &w, &pc)) { fprintf(stderr, "rlhf sim eval: %s\n", rl_error()); return 1; }
    sim_eval_summary s;
    sim_ref_outcome ro;
    if (reference[0] ? sim_eval_against(responses, reference, &w, &pc, &s, &ro) : sim_eval_file(responses, &w, &pc, &s)) {
        fprintf(stderr, "rlhf sim eval: %s\n", rl_error());
        return 1;
    }
    char *json = sim_eval_json(&s, &pc, reference[0] ? &ro : NULL);
    if (!json) { fprintf(stderr, "rlhf sim eval: out of memory\n"); return 1; }
    printf("%s\n", json);
    int ret = 0;
    if (out && *out) {
        size_t n = strlen(json);
        char *line = malloc(n + 2);
        if (!line) ret = 1;
        else {
            memcpy(line, json, n);
            line[n] = '\n';
            line[n + 1] = 0;
            if (rl_atomic_write(out, line, n + 1)) { fprintf(stderr, "rlhf sim eval: %s\n", rl_error()); ret = 1; }
            free(line);
        }
    }
    free(json);
    rl_info("n %ld  accuracy %.3f  held-out %.3f (%ld)  sycophancy %.3f (%ld)  parse %.3f", s.n, s.accuracy,
            s.heldout_accuracy, s.n_heldout, s.sycophancy, s.n_wrong_suggestion, s.parse_rate);
    for (int g = 0; g < pc.ngroups; g++) rl_info("  satisfaction %-10s %.3f", pc.groups[g].name, s.satisfaction[g]);
    rl_info("  population-weighted %.3f, pool-weighted %.3f, worst group %.3f", s.pop_satisfaction, s.pool_satisfaction, s.min_satisfaction);
    if (reference[0]) {
        for (int g = 0; g < pc.ngroups; g++)
            rl_info("  vs reference %-10s satisfaction %.3f (reference %.3f), win rate %.3f", pc.groups[g].name, s.satisfaction[g],
                    ro.satisfaction_ref[g], ro.win[g]);
        rl_info("  gap best - worst group: satisfaction %.3f, win rate %.3f", ro.gap_satisfaction, ro.gap_win);
    }
    return ret;
}
