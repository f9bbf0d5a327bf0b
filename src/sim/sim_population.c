/* sim_population.c — simulated annotators: groups, beliefs, checking, noise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sim.h"

static const char *belief_names[SIM_NBELIEFS] = {"nocarry", "agree", "tone"};
const char *sim_belief_name(sim_belief b) { return (b >= 0 && b < SIM_NBELIEFS) ? belief_names[b] : "unknown"; }

static const char *choice_names[4] = {"A", "B", "tie", "both_bad"};
const char *sim_choice_name(sim_choice c) { return (c >= 0 && c < 4) ? choice_names[c] : "?"; }

void sim_pop_default(sim_pop_config *c) {
    memset(c, 0, sizeof *c);
    c->ngroups = 2;
    sim_group *t = &c->groups[0], *w = &c->groups[1];
    snprintf(t->name, sizeof t->name, "terse");
    t->style_order[0] = SIM_STYLE_TERSE; t->style_order[1] = SIM_STYLE_SENTENCE; t->style_order[2] = SIM_STYLE_WORKING;
    t->strength = 0.8; t->pool_share = 0.8; t->pop_share = 0.5;
    snprintf(w->name, sizeof w->name, "working");
    w->style_order[0] = SIM_STYLE_WORKING; w->style_order[1] = SIM_STYLE_SENTENCE; w->style_order[2] = SIM_STYLE_TERSE;
    w->strength = 0.8; w->pool_share = 0.2; w->pop_share = 0.5;
    c->checking_rate = 0.2;
    c->checking_spread = 0;
    c->belief_share[SIM_BELIEF_NOCARRY] = 0.5;
    c->belief_share[SIM_BELIEF_AGREE] = 0.3;
    c->belief_share[SIM_BELIEF_TONE] = 0.2;
    c->noise = 0.05;
}

static int prob_ok(double p) { return p >= 0 && p <= 1; }

rl_status sim_pop_validate(const sim_pop_config *c) {
    if (c->ngroups < 1 || c->ngroups > SIM_MAX_GROUPS)
        return rl_fail(RL_EINVAL, "a population needs 1..%d groups (got %d)", SIM_MAX_GROUPS, c->ngroups);
    double pool = 0, pop = 0;
    for (int g = 0; g < c->ngroups; g++) {
        const sim_group *gr = &c->groups[g];
        if (!gr->name[0]) return rl_fail(RL_EINVAL, "group %d has no name", g);
        int seen[SIM_NSTYLES] = {0};
        for (int i = 0; i < SIM_NSTYLES; i++) {
            int s = gr->style_order[i];
            if (s < 0 || s >= SIM_NSTYLES || seen[s]++)
                return rl_fail(RL_EINVAL, "group '%s': style_order must list each style once", gr->name);
        }
        if (!prob_ok(gr->strength) || !prob_ok(gr->pool_share) || !prob_ok(gr->pop_share))
            return rl_fail(RL_EINVAL, "group '%s': strength and shares must lie in [0,1]", gr->name);
        pool += gr->pool_share;
        pop += gr->pop_share;
    }
    if (fabs(pool - 1) > 1e-6 || fabs(pop - 1) > 1e-6)
        return rl_fail(RL_EINVAL, "group shares must sum to 1 (pool sums to %g, population to %g)", pool, pop);
    if (!prob_ok(c->checking_rate) || !prob_ok(c->checking_spread) || !prob_ok(c->noise))
        return rl_fail(RL_EINVAL, "checking_rate, checking_spread and noise must lie in [0,1]");
    double b = 0;
    for (int i = 0; i < SIM_NBELIEFS; i++) {
        if (!prob_ok(c->belief_share[i])) return rl_fail(RL_EINVAL, "belief shares must lie in [0,1]");
        b += c->belief_share[i];
    }
    if (fabs(b - 1) > 1e-6) return rl_fail(RL_EINVAL, "belief shares must sum to 1 (they sum to %g)", b);
    return RL_OK;
}

int sim_pop_group_index(const sim_pop_config *c, const char *name) {
    for (int g = 0; g < c->ngroups; g++) if (!strcmp(c->groups[g].name, name)) return g;
    return -1;
}

static int style_rank(const sim_group *g, sim_style s) {
    for (int i = 0; i < SIM_NSTYLES; i++) if (g->style_order[i] == (int)s) return i;
    return SIM_NSTYLES; /* unknown: below every style */
}

double sim_style_utility(const sim_group *g, sim_style style) {
    int r = style_rank(g, style);
    if (r >= SIM_NSTYLES) return 0.0;
    return 1.0 - g->strength * (double)r / (double)(SIM_NSTYLES - 1);
}

/* Index drawn from a discrete distribution (weights sum to ~1). */
static int draw(rl_rng *rng, const double *w, int n) {
    double u = rl_rng_uniform_d(rng), acc = 0;
    for (int i = 0; i < n; i++) { acc += w[i]; if (u < acc) return i; }
    for (int i = n - 1; i >= 0; i--) if (w[i] > 0) return i;
    return 0;
}

rl_status sim_population_init(sim_population *p, const sim_pop_config *cfg, int n, uint64_t seed) {
    memset(p, 0, sizeof *p);
    RL_TRY(sim_pop_validate(cfg));
    if (n < 1) return rl_fail(RL_EINVAL, "need at least one annotator (got %d)", n);
    p->ann = calloc((size_t)n, sizeof *p->ann);
    if (!p->ann) return rl_fail(RL_ENOMEM, "out of memory for %d annotators", n);
    p->cfg = *cfg;
    p->n = n;
    rl_rng rng;
    rl_rng_seed_stream(&rng, seed, 0xa77);
    double pool[SIM_MAX_GROUPS];
    for (int g = 0; g < cfg->ngroups; g++) pool[g] = cfg->groups[g].pool_share;
    for (int i = 0; i < n; i++) {
        sim_annotator *a = &p->ann[i];
        a->id = i;
        a->group = draw(&rng, pool, cfg->ngroups);
        a->belief = (sim_belief)draw(&rng, cfg->belief_share, SIM_NBELIEFS);
        double r = cfg->checking_rate + cfg->checking_spread * (2 * rl_rng_uniform_d(&rng) - 1);
        a->checking_rate = r < 0 ? 0 : r > 1 ? 1 : r;
    }
    return RL_OK;
}

void sim_population_free(sim_population *p) {
    free(p->ann);
    memset(p, 0, sizeof *p);
}

int sim_perceive(const sim_annotator *a, const sim_item *it, const sim_parsed *p, int checked) {
    if (!p->has_number) return 0;
    if (checked) return p->number == it->gold;
    switch (a->belief) {
    case SIM_BELIEF_NOCARRY: return p->number == sim_nocarry_sum(it->a, it->b);
    case SIM_BELIEF_AGREE:
        if (it->has_suggestion) return p->number == it->suggestion;
        return !p->hedged; /* nothing to agree with: falls back on tone */
    case SIM_BELIEF_TONE:
    default: return !p->hedged;
    }
}

static void info_reset(sim_judge_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->style_pick = -1;
}

sim_choice sim_judge_pair(const sim_population *p, int who, const sim_item *it,
                          const char *resp_a, const char *resp_b, rl_rng *rng, sim_judge_info *info) {
    const sim_annotator *a = &p->ann[who];
    const sim_group *g = &p->cfg.groups[a->group];
    info_reset(info);
    /* Fixed draw order (check, style, noise) so streams stay aligned across outcomes. */
    int checked = rl_rng_uniform_d(rng) < a->checking_rate;
    int pick_pref = rl_rng_uniform_d(rng) < g->strength;
    int flip = rl_rng_uniform_d(rng) < p->cfg.noise;
    sim_parsed pa, pb;
    sim_parse_response(resp_a, &pa);
    sim_parse_response(resp_b, &pb);
    int ca = sim_perceive(a, it, &pa, checked), cb = sim_perceive(a, it, &pb, checked);
    sim_choice c;
    if (ca != cb) c = ca ? SIM_CHOICE_A : SIM_CHOICE_B;
    else if (!ca) c = SIM_CHOICE_BOTH_BAD;
    else {
        int ra = style_rank(g, pa.style), rb = style_rank(g, pb.style);
        if (ra == rb) c = SIM_CHOICE_TIE;
        else {
            int a_better = ra < rb;
            c = (a_better == pick_pref) ? SIM_CHOICE_A : SIM_CHOICE_B;
            if (info) info->style_pick = pick_pref;
        }
    }
    if (flip && (c == SIM_CHOICE_A || c == SIM_CHOICE_B)) c = c == SIM_CHOICE_A ? SIM_CHOICE_B : SIM_CHOICE_A;
    else flip = 0;
    if (info) { info->checked = checked; info->flipped = flip; info->perceived[0] = ca; info->perceived[1] = cb; }
    return c;
}

int sim_judge_thumbs(const sim_population *p, int who, const sim_item *it,
                     const char *resp, rl_rng *rng, sim_judge_info *info) {
    const sim_annotator *a = &p->ann[who];
    const sim_group *g = &p->cfg.groups[a->group];
    info_reset(info);
    int checked = rl_rng_uniform_d(rng) < a->checking_rate;
    double u = rl_rng_uniform_d(rng);
    int flip = rl_rng_uniform_d(rng) < p->cfg.noise;
    sim_parsed pr;
    sim_parse_response(resp, &pr);
    int c = sim_perceive(a, it, &pr, checked);
    int label = (c && u < sim_style_utility(g, pr.style)) ? 1 : -1;
    if (flip) label = -label;
    if (info) { info->checked = checked; info->flipped = flip; info->perceived[0] = c; }
    return label;
}

void sim_judge_ranking(const sim_population *p, int who, const sim_item *it,
                       const char *const *resps, int k, rl_rng *rng, int *order, sim_judge_info *info) {
    const sim_annotator *a = &p->ann[who];
    const sim_group *g = &p->cfg.groups[a->group];
    info_reset(info);
    if (k > SIM_MAX_RANK) k = SIM_MAX_RANK;
    int checked = rl_rng_uniform_d(rng) < a->checking_rate;
    int pick_pref = rl_rng_uniform_d(rng) < g->strength;
    int flip = rl_rng_uniform_d(rng) < p->cfg.noise;
    uint32_t swap_at = k > 1 ? rl_rng_below(rng, (uint32_t)(k - 1)) : 0;
    double key[SIM_MAX_RANK];
    for (int i = 0; i < k; i++) {
        sim_parsed pr;
        sim_parse_response(resps[i], &pr);
        int c = sim_perceive(a, it, &pr, checked);
        int r = style_rank(g, pr.style);
        if (!pick_pref && r < SIM_NSTYLES) r = SIM_NSTYLES - 1 - r;
        /* Believed-right dominates; then style rank; then a random tie-break. */
        key[i] = c * 100.0 - r * 10.0 + rl_rng_uniform_d(rng);
        if (info) info->perceived[i] = c;
        order[i] = i;
    }
    for (int i = 1; i < k; i++) { /* insertion sort, descending key */
        int x = order[i], j = i;
        while (j > 0 && key[order[j - 1]] < key[x]) { order[j] = order[j - 1]; j--; }
        order[j] = x;
    }
    if (flip && k > 1) { int t = order[swap_at]; order[swap_at] = order[swap_at + 1]; order[swap_at + 1] = t; }
    if (info) { info->checked = checked; info->flipped = flip && k > 1; info->style_pick = pick_pref; }
}
