/* test_align_population.c — "aligned with whom", end to end on a simulated
 * population (issue 7's acceptance test; docs/align.md §7 has the table).
 *
 * Two groups of evaluators with conflicting style preferences (src/sim):
 * `terse` (terse > sentence > working, strength 0.9) and `working`
 * (working > sentence > terse, strength 0.8), 80/20 among the evaluators,
 * 50/50 in the population. Every annotator checks the arithmetic and every
 * candidate is correct, so the only thing judged is style. The judgements go
 * through the real feedback path: sim_feedback_write → JSONL →
 * fb_import_file → fb_to_pairs. Reward models are the linear Bradley–Terry
 * feature model (src/align/linbt.h). Measured and asserted:
 *   (a) one reward model on the raw feedback favours the majority: the
 *       minority's win rate on disagreement pairs is below 50 %;
 *   (b) with raking weights (target 50/50) its preference moves to the
 *       population's: the minority's win rate rises by >= 0.1 and ends
 *       closer to the population's preference;
 *   (c) the EM mixture (K = 2, 5 seeds) puts >= 90 % of annotators in their
 *       group (up to label permutation);
 *   (d) a small policy over answer styles, optimised against the per-group
 *       reward models of (c) with the group-level maximin rule, gives the
 *       worse-off group a higher win rate (against the reference policy, by
 *       the group's true preference) than the utilitarian mean with the
 *       population's weights, by >= 0.1.
 * The strengths differ (0.9 vs 0.8) on purpose: with equal strengths the
 * population-weighted mean of the two groups' rewards is flat across styles
 * and the utilitarian choice would be decided by noise; with a more strongly
 * opinionated majority the utilitarian optimum sides with it even at 50/50,
 * which is exactly where maximin and utilitarian differ. */
#include "test.h"
#include <math.h>
#include <unistd.h>
#include "../../src/align/aggregate.h"
#include "../../src/align/linbt.h"
#include "../../src/align/mixture.h"
#include "../../src/align/weights.h"
#include "../../src/base/rng.h"
#include "../../src/data/feedback.h"
#include "../../src/sim/sim.h"

enum { N_ANNOT = 60, N_JUDGE = 4000, N_EVAL = 300, G = 2, N_SEEDS = 5 };
enum { T = 0, W = 1 };   /* group indices: terse (majority among evaluators), working (minority) */

static sim_world world;
static sim_pop_config pc;
static sim_item eval_items[N_EVAL];

/* answer of item it in style s */
static void answer(const sim_item *it, int s, char *buf, size_t n) { sim_format_answer(it, it->gold, (sim_style)s, 0, buf, n); }

/* Mean over the evaluation items of σ(r(minority's pick) − r(majority's
 * pick)) (soft) and of [r(min) > r(maj)] + ½[=] (hard) over every pair of
 * different styles (all of them are disagreement pairs here). */
static void minority_win(const align_linbt *m, int k, double *soft, double *hard) {
    double s = 0, h = 0;
    int n = 0;
    char a[256], b[256];
    for (int i = 0; i < N_EVAL; i++)
        for (int x = 0; x < 3; x++)
            for (int y = x + 1; y < 3; y++) {
                /* the working group prefers the style later in terse<sentence<working */
                answer(&eval_items[i], y, a, sizeof a);
                answer(&eval_items[i], x, b, sizeof b);
                double d = align_linbt_score(m, k, a) - align_linbt_score(m, k, b);
                s += 1 / (1 + exp(-d));
                h += d > 0 ? 1 : d == 0 ? 0.5 : 0;
                n++;
            }
    *soft = s / n;
    *hard = h / n;
}

/* P(a member of group g picks its preferred style of two) under the sim. */
static double p_pref(int g) { double s = pc.groups[g].strength, e = pc.noise; return s * (1 - e) + (1 - s) * e; }

/* ---- the policy over answer styles -------------------------------------------- */

static const double REF[3] = {0.4, 0.3, 0.3}; /* the world's SFT style mix: the reference policy */

typedef struct {
    const align_linbt *m;   /* reward models */
    int k[G];               /* model index of each utility column */
    int ng;                 /* columns: 1 (single RM) or G */
    double mu[G], sd[G];    /* r = (score − mu)/sd; sd stays 1 (see normalise) */
    double spread[G];       /* std over reference samples (reported) */
} rm_set;

static double z(const rm_set *r, int j, const char *resp) { return (align_linbt_score(r->m, r->k[j], resp) - r->mu[j]) / r->sd[j]; }

/* Centring (the mean part of Ziegler's normalisation): reference samples
 * have mean reward 0. No division by the std: Bradley–Terry rewards are in
 * log-odds units of the group's own choices, so a group that prefers more
 * strongly keeps a larger spread. Scaling each group to std 1 would erase
 * that intensity (and, here, make the population-weighted mean flat). */
static void normalise(rm_set *r) {
    char buf[256];
    for (int j = 0; j < r->ng; j++) {
        double s = 0, ss = 0, wt = 0;
        r->mu[j] = 0; r->sd[j] = 1;
        for (int i = 0; i < N_EVAL; i++)
            for (int st = 0; st < 3; st++) {
                answer(&eval_items[i], st, buf, sizeof buf);
                double v = align_linbt_score(r->m, r->k[j], buf);
                s += REF[st] * v; ss += REF[st] * v * v; wt += REF[st];
            }
        double mu = s / wt, var = ss / wt - mu * mu;
        r->mu[j] = mu;
        r->sd[j] = 1;
        r->spread[j] = var > 0 ? sqrt(var) : 0;
    }
}

static void softmax3(const double *th, double *p) {
    double mx = fmax(th[0], fmax(th[1], th[2])), s = 0;
    for (int i = 0; i < 3; i++) { p[i] = exp(th[i] - mx); s += p[i]; }
    for (int i = 0; i < 3; i++) p[i] /= s;
}

/* REINFORCE on a categorical policy over the three styles, reward = the
 * rule's aggregate (align_aggregate) of the group rewards of a batch, minus
 * β·KL(π‖ref) (exact gradient). For maxmin the rule picks the batch's
 * worst-off group each step (MaxMin-RLHF Algorithm 1). */
static void optimise(const rm_set *r, align_rule rule, const align_agg_params *ap, uint64_t seed, double *pi) {
    enum { B = 64, STEPS = 300 };
    const double lr = 0.5, beta = 0.02;
    double th[3];
    for (int i = 0; i < 3; i++) th[i] = log(REF[i]);
    rl_rng rng;
    rl_rng_seed(&rng, seed);
    float u[B * G], out[B];
    int st[B];
    char buf[256];
    for (int step = 0; step < STEPS; step++) {
        softmax3(th, pi);
        for (int b = 0; b < B; b++) {
            sim_item it;
            sim_sample_item(&world, &rng, 0, &it);
            double v = rl_rng_uniform_d(&rng);
            st[b] = v < pi[0] ? 0 : v < pi[0] + pi[1] ? 1 : 2;
            answer(&it, st[b], buf, sizeof buf);
            for (int j = 0; j < r->ng; j++) u[b * r->ng + j] = (float)z(r, j, buf);
        }
        int chosen;
        if (align_aggregate(rule, ap, B, r->ng, u, out, NULL, &chosen) != RL_OK) { fprintf(stderr, "aggregate: %s\n", rl_error()); return; }
        double mean = 0, g[3] = {0, 0, 0};
        for (int b = 0; b < B; b++) mean += out[b] / B;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < 3; i++) g[i] += (out[b] - mean) * ((i == st[b]) - pi[i]) / B;
        double kl = 0;
        for (int i = 0; i < 3; i++) kl += pi[i] * log(pi[i] / REF[i]);
        for (int i = 0; i < 3; i++) th[i] += lr * (g[i] - beta * pi[i] * (log(pi[i] / REF[i]) - kl));
    }
    softmax3(th, pi);
}

/* Group g's win rate of policy pi against the reference, by the group's true
 * utility (sim_style_utility; every answer is correct): exact over styles. */
static double win_rate(int g, const double *pi) {
    double w = 0;
    for (int s = 0; s < 3; s++)
        for (int t = 0; t < 3; t++) {
            double us = sim_style_utility(&pc.groups[g], (sim_style)s), ut = sim_style_utility(&pc.groups[g], (sim_style)t);
            w += pi[s] * REF[t] * (us > ut ? 1 : us == ut ? 0.5 : 0);
        }
    return w;
}

static double true_util(int g, const double *pi) {
    double u = 0;
    for (int s = 0; s < 3; s++) u += pi[s] * sim_style_utility(&pc.groups[g], (sim_style)s);
    return u;
}

/* E_π of group g's normalised reward-model score over the evaluation items. */
static double rm_reward(const rm_set *grm, int g, const double *pi) {
    char buf[256];
    double s = 0;
    for (int i = 0; i < N_EVAL; i++)
        for (int st = 0; st < 3; st++) {
            answer(&eval_items[i], st, buf, sizeof buf);
            s += pi[st] * z(grm, g, buf);
        }
    return s / N_EVAL;
}

TEST(simulated_population_whose_preferences) {
    /* ---- the population and its feedback ---- */
    sim_world_default(&world);
    sim_pop_default(&pc);
    pc.checking_rate = 1;            /* everyone checks: only style is judged */
    pc.groups[T].strength = 0.9;
    pc.groups[W].strength = 0.8;
    REQUIRE(!strcmp(pc.groups[T].name, "terse") && !strcmp(pc.groups[W].name, "working"));
    REQUIRE(pc.groups[T].pool_share == 0.8 && pc.groups[W].pool_share == 0.2);
    REQUIRE(pc.groups[T].pop_share == 0.5 && pc.groups[W].pop_share == 0.5);
    sim_feedback_mix mix;
    sim_feedback_mix_default(&mix);
    mix.pair_frac = 1; mix.thumbs_frac = 0; mix.ranking_frac = 0;
    mix.cand_correct = 1; mix.cand_nocarry = mix.cand_sycophantic = mix.cand_offby = mix.cand_hedged = 0;
    char path[64];
    snprintf(path, sizeof path, "/tmp/rlhf_test_pop_%d.jsonl", (int)getpid());
    REQUIRE(sim_feedback_write(path, &world, &pc, &mix, N_ANNOT, N_JUDGE, 11, NULL, NULL) == RL_OK);
    fb_set set;
    fb_set_init(&set);
    rl_status ist = fb_import_file(&set, path, FB_FMT_AUTO, NULL, NULL);
    unlink(path);
    REQUIRE(ist == RL_OK && set.n == N_JUDGE);
    rl_rng er;
    rl_rng_seed(&er, 99);
    for (int i = 0; i < N_EVAL; i++) REQUIRE(sim_sample_item(&world, &er, 1, &eval_items[i]) == RL_OK);

    /* ---- one reward model: raw (model 0) and raked (model 1) ---- */
    align_linbt single;
    align_fb_cmps c;
    REQUIRE(align_linbt_init(&single, 2, NULL) == RL_OK);
    REQUIRE(align_linbt_from_feedback(&single, &set, &c) == RL_OK);
    int truth[N_ANNOT + 8], n_in[G] = {0, 0};
    REQUIRE(c.n_annot <= N_ANNOT);
    for (int h = 0; h < c.n_annot; h++) {
        const fb_record *r = &set.records[c.annot_first[h]];
        REQUIRE(r->n_groups == 1 && !strcmp(r->groups[0].key, "group"));
        truth[h] = !strcmp(r->groups[0].value, "working") ? W : T;
        n_in[truth[h]]++;
    }
    double *ones = malloc(sizeof(double) * (size_t)c.n_cmp), *ex_w = malloc(sizeof(double) * (size_t)c.n_cmp);
    for (int i = 0; i < c.n_cmp; i++) ones[i] = 1;
    REQUIRE(align_linbt_fit(&single, 0, ones) == RL_OK);
    double target[G] = {pc.groups[T].pop_share, pc.groups[W].pop_share}, annot_w[N_ANNOT + 8];
    int ncat = G;
    align_rake_report rep;
    REQUIRE(align_rake(c.n_annot, 1, truth, &ncat, target, NULL, NULL, annot_w, &rep) == RL_OK);
    REQUIRE(rep.converged);
    REQUIRE(align_example_weights(c.n_cmp, c.annot, c.n_annot, annot_w, NULL, ex_w) == RL_OK);
    REQUIRE(align_linbt_fit(&single, 1, ex_w) == RL_OK);
    double soft_raw, hard_raw, soft_rk, hard_rk;
    minority_win(&single, 0, &soft_raw, &hard_raw);
    minority_win(&single, 1, &soft_rk, &hard_rk);
    double p_pop = target[W] * p_pref(W) + target[T] * (1 - p_pref(T));
    double p_pool = pc.groups[W].pool_share * p_pref(W) + pc.groups[T].pool_share * (1 - p_pref(T));
    printf("\npopulation: %d annotators (%d terse, %d working), %d pair judgements (%d comparisons); raking: ESS %.1f, weights %.3f..%.3f\n",
           c.n_annot, n_in[T], n_in[W], N_JUDGE, c.n_cmp, rep.ess, rep.w_min, rep.w_max);
    printf("minority (working) win rate on disagreement pairs      soft (BT prob.)  hard (argmax)\n");
    printf("  true preference of the evaluator pool (80/20)        %.3f\n", p_pool);
    printf("  true preference of the population (50/50)            %.3f\n", p_pop);
    printf("  single RM, raw feedback                               %.3f            %.3f\n", soft_raw, hard_raw);
    printf("  single RM, raking weights (target 50/50)              %.3f            %.3f\n", soft_rk, hard_rk);
    /* (a) */
    EXPECT_MSG(soft_raw < 0.5 && hard_raw < 0.5, "raw: soft %.3f hard %.3f", soft_raw, hard_raw);
    /* (b) */
    EXPECT_MSG(soft_rk >= soft_raw + 0.1, "raked %.3f vs raw %.3f", soft_rk, soft_raw);
    EXPECT(fabs(soft_rk - p_pop) < fabs(soft_raw - p_pop));
    EXPECT_MSG(fabs(soft_raw - p_pool) < 0.06 && fabs(soft_rk - p_pop) < 0.06,
               "the fitted preferences are near the true ones: raw %.3f vs %.3f, raked %.3f vs %.3f", soft_raw, p_pool, soft_rk, p_pop);

    /* ---- (c) the EM mixture discovers the two groups ---- */
    align_linbt mixm;
    align_fb_cmps c2;
    REQUIRE(align_linbt_init(&mixm, G, NULL) == RL_OK);
    REQUIRE(align_linbt_from_feedback(&mixm, &set, &c2) == RL_OK);
    align_mix_model mm = align_linbt_model(&mixm);
    align_mix_opts mo = align_mix_defaults();
    mo.K = G; mo.seed = 5;
    align_mix_result res[N_SEEDS];
    align_mix_stability stab;
    REQUIRE(align_mixture_seeds(&mm, c2.annot, c2.w, c2.n_annot, &mo, N_SEEDS, res, &stab) == RL_OK);
    int map[G];
    double agree_best = align_match_agreement(c2.n_annot, truth, G, res[stab.best].assign, G, map);
    printf("EM mixture K=2, %d seeds x %d restarts: best seed %d, accuracy vs true groups %.3f; across seeds ARI mean %.3f min %.3f, agreement with best mean %.3f min %.3f\n",
           N_SEEDS, mo.restarts, stab.best, agree_best, stab.ari_mean, stab.ari_min, stab.agree_mean, stab.agree_min);
    for (int s = 0; s < N_SEEDS; s++)
        printf("  seed %d: sizes %d/%d, loglik/comparison %.4f, accuracy %.3f, %d iterations\n", s, res[s].size[0], res[s].size[1],
               res[s].loglik / res[s].weight, align_match_agreement(c2.n_annot, truth, G, res[s].assign, G, NULL), res[s].iterations);
    EXPECT_MSG(agree_best >= 0.9, "mixture accuracy %.3f", agree_best);
    for (int s = 0; s < N_SEEDS; s++) EXPECT(align_match_agreement(c2.n_annot, truth, G, res[s].assign, G, NULL) >= 0.9);
    REQUIRE(map[0] >= 0 && map[1] >= 0 && map[0] != map[1]);

    /* ---- (d) optimise a policy over styles under each rule ---- */
    rm_set grm = {&mixm, {0, 0}, G, {0, 0}, {1, 1}, {0, 0}};
    for (int k = 0; k < G; k++) grm.k[map[k]] = k;  /* column g = the cluster matched to group g */
    normalise(&grm);
    rm_set raw = {&single, {0}, 1, {0}, {1}, {0}}, rk = {&single, {1}, 1, {0}, {1}, {0}};
    normalise(&raw); normalise(&rk);
    /* disagreement point: just below each group's worst reward among the
     * candidates, so every utility is positive for nash/isoelastic */
    double dis[G];
    for (int g = 0; g < G; g++) {
        double mn = INFINITY;
        char buf[256];
        for (int i = 0; i < N_EVAL; i++)
            for (int s = 0; s < 3; s++) { answer(&eval_items[i], s, buf, sizeof buf); mn = fmin(mn, z(&grm, g, buf)); }
        dis[g] = mn - 0.25;
    }
    double popw[G] = {0.5, 0.5}, poolw[G] = {0.8, 0.2};
    struct { const char *name; const rm_set *r; align_rule rule; const double *w; double alpha; } rows[] = {
        {"single RM, raw feedback", &raw, ALIGN_AGG_MEAN, NULL, 0},
        {"single RM, raked 50/50", &rk, ALIGN_AGG_MEAN, NULL, 0},
        {"mean, pool weights 80/20", &grm, ALIGN_AGG_MEAN, poolw, 0},
        {"mean, population 50/50", &grm, ALIGN_AGG_MEAN, popw, 0},
        {"nash (50/50)", &grm, ALIGN_AGG_NASH, popw, 0},
        {"isoelastic a=2 (50/50)", &grm, ALIGN_AGG_ISOELASTIC, popw, 2},
        {"min (per sample)", &grm, ALIGN_AGG_MIN, popw, 0},
        {"maxmin (group level)", &grm, ALIGN_AGG_MAXMIN, popw, 0},
    };
    enum { NR = sizeof rows / sizeof rows[0] };
    double pis[NR][3], wr[NR][G];
    printf("\npolicy over answer styles (REINFORCE, 300 steps x 64, KL 0.02 to the reference 40/30/30); win rate vs the reference by each group's true preference\n");
    printf("%-26s  pi(terse,sentence,working)  | terse: win  util  RM   | working: win  util  RM   | worst win\n", "rule");
    for (int r = 0; r < NR; r++) {
        align_agg_params ap = {rows[r].w, rows[r].r == &grm ? dis : NULL, rows[r].alpha, 0};
        optimise(rows[r].r, rows[r].rule, &ap, 1000 + (uint64_t)r, pis[r]);
        for (int g = 0; g < G; g++) wr[r][g] = win_rate(g, pis[r]);
        printf("%-26s  %.2f %.2f %.2f              |        %.3f %.3f %+.2f |          %.3f %.3f %+.2f | %.3f\n", rows[r].name,
               pis[r][0], pis[r][1], pis[r][2], wr[r][T], true_util(T, pis[r]), rm_reward(&grm, T, pis[r]),
               wr[r][W], true_util(W, pis[r]), rm_reward(&grm, W, pis[r]), fmin(wr[r][T], wr[r][W]));
    }
    printf("(util = the group's true expected satisfaction; RM = its reward model's score centred on the reference (mean 0); "
           "reference std of the group RMs: terse %.2f, working %.2f)\n\n", grm.spread[T], grm.spread[W]);
    int UT = 3, MM = 7;
    double worst_ut = fmin(wr[UT][T], wr[UT][W]), worst_mm = fmin(wr[MM][T], wr[MM][W]);
    /* (d) */
    EXPECT_MSG(worst_mm >= worst_ut + 0.1, "worst-off win rate: maxmin %.3f, utilitarian %.3f", worst_mm, worst_ut);
    /* and the single RM on raw feedback leaves the minority worst off */
    EXPECT(wr[0][W] < wr[0][T] && wr[0][W] < 0.5);

    for (int s = 0; s < N_SEEDS; s++) align_mix_result_free(&res[s]);
    align_fb_cmps_free(&c); align_fb_cmps_free(&c2);
    align_linbt_free(&single); align_linbt_free(&mixm);
    free(ones); free(ex_w);
    fb_set_free(&set);
}

TEST_MAIN()
