/* rm.c — see rm.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rm.h"
#include "objectives.h"
#include "../diag/diag.h"
#include "../base/log.h"
#include "../base/rng.h"
#include "../optim/adamw.h"
#include "../dist/dp.h"

enum { U_PAIR = 0, U_RANK = 1, U_THUMB = 2 };

typedef struct {
    int kind;
    int start, k;      /* rows [start, start+k) of rm_data.rows */
    int label;         /* pair: +1 first better, -1 second better, 0 tie; thumb: 1 up, 0 down */
    float weight;
} rm_unit;

typedef struct {
    trn_seqs seqs;
    int *rows;         /* (nrows) sequence index of each row */
    int *rank;         /* (nrows) rank within a ranking unit (0 = best) */
    int nrows, rcap;
    rm_unit *units;
    int nunits, ucap;
    int *train, ntrain, *val, nval;
    int has_ties;
    int nskipped[FB_NKINDS], nties_skipped;
} rm_data;

static int group_match(const fb_record *r, const char *group) {
    if (!group) return 1;
    const char *eq = strchr(group, '=');
    size_t kl = eq ? (size_t)(eq - group) : strlen(group);
    for (int i = 0; i < r->n_groups; i++)
        if (strlen(r->groups[i].key) == kl && !strncmp(r->groups[i].key, group, kl) &&
            (!eq || !strcmp(r->groups[i].value, eq + 1)))
            return 1;
    return 0;
}

static int add_row(rm_data *d, const tok_tokenizer *t, const fb_record *r, const char *resp, int rank, int max_len) {
    if (d->nrows == d->rcap) {
        d->rcap = d->rcap ? d->rcap * 2 : 1024;
        d->rows = realloc(d->rows, sizeof(int) * (size_t)d->rcap);
        d->rank = realloc(d->rank, sizeof(int) * (size_t)d->rcap);
        CHECK(d->rows && d->rank, "out of memory");
    }
    int k;
    CHECK_OK(trn_seqs_add(&d->seqs, t, r->prompt, r->n_prompt, resp, CHAT_TRAIN_LAST_ASSISTANT, max_len, &k), "encoding a record");
    d->rows[d->nrows] = k;
    d->rank[d->nrows] = rank;
    return d->nrows++;
}

static void add_unit(rm_data *d, int kind, int start, int k, int label, double w) {
    if (d->nunits == d->ucap) {
        d->ucap = d->ucap ? d->ucap * 2 : 1024;
        d->units = realloc(d->units, sizeof(rm_unit) * (size_t)d->ucap);
        CHECK(d->units, "out of memory");
    }
    d->units[d->nunits++] = (rm_unit){kind, start, k, label, (float)w};
}

static void load(const rm_opts *o, const tok_tokenizer *t, int max_len, int max_rows, rm_data *d) {
    memset(d, 0, sizeof *d);
    trn_seqs_init(&d->seqs);
    fb_set set;
    fb_set_init(&set);
    trn_load_records(&set, o->records, o->format, o->skip_bad, o->quiet);
    trn_apply_annotator_weights(&set, o->annotator_weights, o->missing_weight, o->quiet);
    int skip_ties = !strcmp(o->ties, "skip");
    d->train = rl_xmalloc(sizeof(int) * (size_t)(set.n + 1));
    d->val = rl_xmalloc(sizeof(int) * (size_t)(set.n + 1));
    int ngroup_out = 0;
    for (int64_t i = 0; i < set.n; i++) {
        const fb_record *r = &set.records[i];
        if (!group_match(r, o->group)) { ngroup_out++; continue; }
        int before = d->nunits;
        if (r->kind == FB_PAIR) {
            int tie = r->choice == FB_CHOICE_TIE || r->choice == FB_CHOICE_BOTH_BAD;
            if (tie && skip_ties) { d->nties_skipped++; continue; }
            int a = add_row(d, t, r, r->responses[0], 0, max_len);
            add_row(d, t, r, r->responses[1], 0, max_len);
            add_unit(d, U_PAIR, a, 2, tie ? 0 : r->choice == FB_CHOICE_A ? 1 : -1, r->weight);
            d->has_ties |= tie;
        } else if (r->kind == FB_RANKING) {
            int distinct = 0;
            for (int j = 1; j < r->n_responses; j++) distinct |= r->ranks[j] != r->ranks[0];
            if (!distinct) { d->nskipped[r->kind]++; continue; }
            CHECK(r->n_responses <= max_rows, "a ranking has %d responses but --micro-batch is %d: raise --micro-batch",
                  r->n_responses, max_rows);
            int a = -1;
            for (int j = 0; j < r->n_responses; j++) {
                int row = add_row(d, t, r, r->responses[j], r->ranks[j], max_len);
                if (j == 0) a = row;
            }
            add_unit(d, U_RANK, a, r->n_responses, 0, r->weight);
        } else if ((r->kind == FB_THUMBS || r->kind == FB_RATING) && o->thumbs_weight > 0) {
            int label;
            if (r->kind == FB_THUMBS) label = r->thumb > 0;
            else {
                double mid = 0.5 * (r->scale_lo + r->scale_hi);
                if (r->rating == mid) { d->nskipped[r->kind]++; continue; }
                label = r->rating > mid;
            }
            int a = add_row(d, t, r, r->responses[0], 0, max_len);
            add_unit(d, U_THUMB, a, 1, label, r->weight * o->thumbs_weight);
        } else {
            d->nskipped[r->kind]++;
            continue;
        }
        if (d->nunits > before) {
            if (o->val_fraction > 0 && fb_is_heldout(r, o->val_fraction, o->seed)) d->val[d->nval++] = before;
            else d->train[d->ntrain++] = before;
        }
    }
    fb_set_free(&set);
    if (!o->quiet) {
        int np = 0, nr = 0, nt = 0;
        for (int u = 0; u < d->nunits; u++) np += d->units[u].kind == U_PAIR, nr += d->units[u].kind == U_RANK, nt += d->units[u].kind == U_THUMB;
        rl_info("rm data: %d pairs, %d rankings, %d thumbs (%d train / %d held out); skipped %d demos, %d ratings at the midpoint, "
                "%d rankings without distinct ranks, %d ties (--ties skip), %d records outside --group",
                np, nr, nt, d->ntrain, d->nval, d->nskipped[FB_DEMO], d->nskipped[FB_RATING], d->nskipped[FB_RANKING],
                d->nties_skipped, ngroup_out);
        if (d->seqs.n_cut)
            rl_warn("%d of %d responses were longer than %d tokens (--seq) (%d lost prompt tokens, %d the end of the response)\n"
                    "  raise --seq to read the reward at the real end of each response",
                    d->seqs.n_cut, d->seqs.n, max_len, d->seqs.n_cut_prompt, d->seqs.n_cut_response);
    }
    CHECK(d->ntrain > 0, "no training judgements (pairs, rankings, thumbs) in %s%s", o->records, d->nval ? " outside the held-out split" : "");
}

/* Rewards of rows[0..n) (any number), max_B per forward. Collective: under
 * MPI rank r scores the forwards c with c % world == r and the others' rewards
 * arrive by an all-reduce (a sum with exact zeros), so every rank ends with
 * the same out, the one a single process computes. */
static void rewards_of(gpt_model *m, const trn_seqs *s, const int *rows, int n, int *in, int *pos, float *out) {
    int rank = dist_rank(), world = dist_world();
    for (int i = 0, c = 0; i < n; i += m->max_B, c++) {
        int nb = n - i < m->max_B ? n - i : m->max_B;
        if (c % world != rank) { memset(out + i, 0, sizeof(float) * (size_t)nb); continue; }
        int T = trn_batch_last(s, rows + i, nb, in, pos);
        gpt_forward_hidden(m, in, nb, T);
        gpt_scalar_forward(m, pos, out + i);
    }
    if (world > 1 && n > 0) CHECK_OK(dist_allreduce_sum_f32(out, (size_t)n), "gathering rewards from the ranks");
}

typedef struct {
    double acc, ece, thumbs_acc, thumbs_up, loss;
    int npairs, nthumbs;
    double len_corr; /* Pearson(response tokens, reward) over the held-out responses: the RM's length bias */
} rm_eval;

/* Strict pairs of the given units from rewards r (indexed by row). */
static int collect_pairs(const rm_data *d, const int *units, int nu, const float *r, float *rc, float *rr, float *w) {
    int n = 0;
    for (int i = 0; i < nu; i++) {
        const rm_unit *u = &d->units[units[i]];
        if (u->kind == U_PAIR && u->label != 0) {
            int c = u->label > 0 ? u->start : u->start + 1, l = u->label > 0 ? u->start + 1 : u->start;
            rc[n] = r[c]; rr[n] = r[l]; w[n] = u->weight; n++;
        } else if (u->kind == U_RANK) {
            for (int a = 0; a < u->k; a++)
                for (int b = 0; b < u->k; b++)
                    if (d->rank[u->start + a] < d->rank[u->start + b]) {
                        rc[n] = r[u->start + a]; rr[n] = r[u->start + b]; w[n] = u->weight; n++;
                    }
        }
    }
    return n;
}

static int count_pairs(const rm_data *d, const int *units, int nu) {
    int n = 0;
    for (int i = 0; i < nu; i++) {
        const rm_unit *u = &d->units[units[i]];
        if (u->kind == U_PAIR) n++;
        else if (u->kind == U_RANK) n += u->k * (u->k - 1) / 2;
    }
    return n;
}

static rm_eval evaluate(gpt_model *m, const rm_data *d, int *in, int *pos) {
    rm_eval e = {NAN, NAN, NAN, NAN, NAN, 0, 0, NAN};
    if (!d->nval) return e;
    /* rows of the held-out units are contiguous per unit; score them all */
    int nrows = 0;
    for (int i = 0; i < d->nval; i++) nrows += d->units[d->val[i]].k;
    int *rows = rl_xmalloc(sizeof(int) * (size_t)nrows), *rowid = rl_xmalloc(sizeof(int) * (size_t)nrows);
    int k = 0;
    for (int i = 0; i < d->nval; i++) {
        const rm_unit *u = &d->units[d->val[i]];
        for (int j = 0; j < u->k; j++) { rowid[k] = u->start + j; rows[k++] = d->rows[u->start + j]; }
    }
    float *rv = rl_xmalloc(sizeof(float) * (size_t)nrows);
    rewards_of(m, &d->seqs, rows, nrows, in, pos, rv);
    float *r = rl_xcalloc((size_t)d->nrows, sizeof(float));
    for (int i = 0; i < nrows; i++) r[rowid[i]] = rv[i];
    {
        /* ---- monitors (issue 8): length bias of the held-out rewards ---- */
        double *xl = rl_xmalloc(sizeof(double) * (size_t)(nrows + 1)), *yr = rl_xmalloc(sizeof(double) * (size_t)(nrows + 1));
        for (int i = 0; i < nrows; i++) {
            int q = rows[i], nt = 0;
            for (int64_t j = d->seqs.off[q]; j < d->seqs.off[q + 1]; j++) nt += d->seqs.train[j];
            xl[i] = nt;
            yr[i] = rv[i];
        }
        e.len_corr = diag_pearson(xl, yr, nrows);
        free(xl); free(yr);
    }
    int np = count_pairs(d, d->val, d->nval);
    float *rc = rl_xmalloc(sizeof(float) * (size_t)(np + 1)), *rr = rl_xmalloc(sizeof(float) * (size_t)(np + 1));
    float *w = rl_xmalloc(sizeof(float) * (size_t)(np + 1));
    int n = collect_pairs(d, d->val, d->nval, r, rc, rr, w);
    if (n) {
        e.acc = obj_pair_accuracy(rc, rr, w, n);
        e.ece = obj_pair_ece(rc, rr, w, n, 10, NULL, NULL, NULL);
        e.loss = obj_bt_loss(rc, rr, NULL, w, n, 0, NULL, NULL);
        e.npairs = n;
    }
    double good = 0, tot = 0, up = 0;
    for (int i = 0; i < d->nval; i++) {
        const rm_unit *u = &d->units[d->val[i]];
        if (u->kind != U_THUMB) continue;
        float x = r[u->start];
        good += u->weight * ((x > 0) == (u->label == 1) ? 1.0 : x == 0 ? 0.5 : 0.0);
        tot += u->weight;
        up += u->weight * (u->label == 1);
        e.nthumbs++;
    }
    if (tot > 0) { e.thumbs_acc = good / tot; e.thumbs_up = up / tot; }
    free(rows); free(rowid); free(rv); free(r); free(rc); free(rr); free(w);
    return e;
}

/* Loss and dL/dr for a chunk of units whose rows were scored into r (indexed
 * chunk-locally: unit rows start at row_off[i]). Scales the parts by their
 * share of the step's total weight W. Returns the chunk's contribution. */
typedef struct {
    float *ra, *rb, *da, *db, *pw; int8_t *lab;       /* pairs */
    float *rk, *drk, *kw; int32_t *rank;              /* rankings (P, Kmax) */
    float *rt, *dt, *tl, *tw;                         /* thumbs */
    int *pi, *ti, *ki;                                /* unit positions */
} rm_scratch;

static double chunk_loss(const rm_opts *o, const rm_data *d, const int *units, int nu, const int *row_off,
                         const float *r, float *dr, double W, int davidson, rm_scratch *s, double *acc_num, double *acc_den) {
    int np = 0, nk = 0, nt = 0, Kmax = 2;
    double wp = 0, wk = 0, wt = 0;
    for (int i = 0; i < nu; i++) {
        const rm_unit *u = &d->units[units[i]];
        if (u->kind == U_RANK && u->k > Kmax) Kmax = u->k;
    }
    for (int i = 0; i < nu; i++) {
        const rm_unit *u = &d->units[units[i]];
        int o0 = row_off[i];
        if (u->kind == U_PAIR) {
            if (davidson) { s->ra[np] = r[o0]; s->rb[np] = r[o0 + 1]; s->lab[np] = (int8_t)u->label; }
            else if (u->label > 0) { s->ra[np] = r[o0]; s->rb[np] = r[o0 + 1]; }
            else { s->ra[np] = r[o0 + 1]; s->rb[np] = r[o0]; }
            s->pw[np] = u->weight; wp += u->weight;
            if (u->label != 0) {
                float c = u->label > 0 ? r[o0] : r[o0 + 1], l = u->label > 0 ? r[o0 + 1] : r[o0];
                *acc_num += u->weight * (c > l ? 1.0 : c == l ? 0.5 : 0.0);
                *acc_den += u->weight;
            }
            s->pi[np++] = i;
        } else if (u->kind == U_RANK) {
            for (int j = 0; j < Kmax; j++) {
                s->rk[(size_t)nk * Kmax + j] = j < u->k ? r[o0 + j] : 0.0f;
                s->rank[(size_t)nk * Kmax + j] = j < u->k ? d->rank[u->start + j] : -1;
            }
            for (int a = 0; a < u->k; a++)
                for (int b = 0; b < u->k; b++)
                    if (d->rank[u->start + a] < d->rank[u->start + b]) {
                        *acc_num += u->weight * (r[o0 + a] > r[o0 + b] ? 1.0 : r[o0 + a] == r[o0 + b] ? 0.5 : 0.0);
                        *acc_den += u->weight;
                    }
            s->kw[nk] = u->weight; wk += u->weight;
            s->ki[nk++] = i;
        } else {
            s->rt[nt] = r[o0]; s->tl[nt] = (float)u->label; s->tw[nt] = u->weight; wt += u->weight;
            s->ti[nt++] = i;
        }
    }
    double loss = 0;
    if (np && wp > 0) {
        double l = davidson ? obj_davidson_loss(s->ra, s->rb, s->lab, s->pw, np, o->tie_nu, s->da, s->db, NULL)
                            : obj_bt_loss(s->ra, s->rb, NULL, s->pw, np, o->center_coef, s->da, s->db);
        double f = wp / W;
        loss += f * l;
        for (int j = 0; j < np; j++) {
            const rm_unit *u = &d->units[units[s->pi[j]]];
            int o0 = row_off[s->pi[j]];
            int first_is_a = davidson || u->label > 0;
            dr[o0] = (float)(f * (first_is_a ? s->da[j] : s->db[j]));
            dr[o0 + 1] = (float)(f * (first_is_a ? s->db[j] : s->da[j]));
        }
    }
    if (nk && wk > 0) {
        double l = obj_rank_pairs_loss(s->rk, s->rank, s->kw, nk, Kmax, s->drk);
        double f = wk / W;
        loss += f * l;
        for (int j = 0; j < nk; j++) {
            const rm_unit *u = &d->units[units[s->ki[j]]];
            for (int q = 0; q < u->k; q++) dr[row_off[s->ki[j]] + q] = (float)(f * s->drk[(size_t)j * Kmax + q]);
        }
    }
    if (nt && wt > 0) {
        double l = obj_thumbs_loss(s->rt, s->tl, s->tw, nt, 0.0, s->dt, NULL);
        double f = wt / W;
        loss += f * l;
        for (int j = 0; j < nt; j++) dr[row_off[s->ti[j]]] = (float)(f * s->dt[j]);
    }
    return loss;
}

static void set_meta(const rm_opts *o, ckpt_meta *meta, int davidson, const rm_data *d, double mean, double std, double mn,
                     double mx, const rm_eval *e) {
    memset(meta, 0, sizeof *meta);
    ckpt_meta_set(meta, "kind", "reward");
    ckpt_meta_set(meta, "trainer", "rm");
    ckpt_meta_set(meta, "base", o->model.path && o->model.path[0] ? o->model.path : "(fresh)");
    int has_rank = 0, has_thumb = 0, has_pair = 0;
    for (int u = 0; u < d->nunits; u++) {
        has_pair |= d->units[u].kind == U_PAIR;
        has_rank |= d->units[u].kind == U_RANK;
        has_thumb |= d->units[u].kind == U_THUMB;
    }
    char loss[64] = "";
    if (has_pair) strcat(loss, davidson ? "davidson" : "bt");
    if (has_rank) strcat(loss, loss[0] ? "+rank" : "rank");
    if (has_thumb) strcat(loss, loss[0] ? "+thumbs" : "thumbs");
    ckpt_meta_set(meta, "reward.loss", loss);
    ckpt_meta_set_f(meta, "reward.mean", mean);
    ckpt_meta_set_f(meta, "reward.std", std);
    ckpt_meta_set_f(meta, "reward.min", mn);
    ckpt_meta_set_f(meta, "reward.max", mx);
    if (isfinite(e->acc)) ckpt_meta_set_f(meta, "reward.heldout_acc", e->acc);
    if (isfinite(e->ece)) ckpt_meta_set_f(meta, "reward.heldout_ece", e->ece);
    if (o->group) ckpt_meta_set(meta, "group", o->group);
}

/* Reward statistics over reference samples: up to norm_samples training rows. */
static void norm_stats(gpt_model *m, const rm_data *d, int nsamp, uint64_t seed, int *in, int *pos, double *mean,
                       double *std, double *mn, double *mx) {
    int nrows = 0;
    for (int i = 0; i < d->ntrain; i++) nrows += d->units[d->train[i]].k;
    int *rows = rl_xmalloc(sizeof(int) * (size_t)nrows);
    int k = 0;
    for (int i = 0; i < d->ntrain; i++) {
        const rm_unit *u = &d->units[d->train[i]];
        for (int j = 0; j < u->k; j++) rows[k++] = d->rows[u->start + j];
    }
    rl_rng rng;
    rl_rng_seed(&rng, seed ^ 0x4e0e4ULL);
    rl_rng_shuffle_int(&rng, rows, nrows);
    int n = nrows < nsamp ? nrows : nsamp;
    float *r = rl_xmalloc(sizeof(float) * (size_t)n);
    rewards_of(m, &d->seqs, rows, n, in, pos, r);
    trn_mean_std(r, n, mean, std);
    *mn = INFINITY; *mx = -INFINITY;
    for (int i = 0; i < n; i++) { if (r[i] < *mn) *mn = r[i]; if (r[i] > *mx) *mx = r[i]; }
    free(rows); free(r);
}

int rm_run(const rm_opts *o_in) {
    /* data parallel under mpirun (src/dist): rank 0 alone talks, logs and writes */
    int rank = dist_rank(), world = dist_world(), root = rank == 0;
    rm_opts oq = *o_in;
    oq.quiet = o_in->quiet || !root;
    const rm_opts *o = &oq;
    dist_watchdog(TRN_DIST_TIMEOUT);
    const ops_table *ops = ops_get(o->kernels);
    CHECK(ops, "unknown kernels '%s' (use fast or ref)", o->kernels);
    char tid[65];
    tok_tokenizer *t = trn_open_tokenizer(o->tokenizer, tid);
    int MB = o->micro;
    gpt_model m;
    int T = trn_open_model(&m, &o->model, t, tid, MB, o->seq, ops, "lm|reward", NULL);
    rm_data d;
    load(o, t, T, MB, &d);
    int davidson = d.has_ties && !strcmp(o->ties, "davidson");
    /* --batch is per rank: a step takes batch x world units of one shuffled order */
    optim_schedule sch;
    long long steps = trn_plan_steps(d.ntrain, (long long)o->batch * world, o->steps, o->epochs, o->warmup, 20, 100,
                                     o->lr, o->min_lr_frac, &sch);
    dist_dp dp; /* one process: exactly optim_clip_grad_norm + optim_adamw_step */
    trn_dp_setup(&dp, &m, o->weight_decay);
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, root ? o->log_path : NULL, 0), "cannot open the metrics log");
    /* ---- monitors (issue 8): every held-out evaluation is one update over many
     * responses, so one beyond the threshold warns (patience 1) ---- */
    diag_config dcfg;
    diag_config_default(&dcfg);
    dcfg.patience = 1;
    if (o->warn_len_corr > 0) dcfg.len_corr = o->warn_len_corr;
    dcfg.print = root;
    diag_monitor *dm = rl_xmalloc(sizeof *dm);
    diag_init(dm, &dcfg, &met);
    if (!o->quiet)
        rl_info("rm: L%d NH%d C%d V%d, %.2fM params; %lld steps of %d units (<= %d responses per forward, T <= %d); loss %s",
                m.cfg.L, m.cfg.NH, m.cfg.C, m.cfg.V, m.num_params / 1e6, steps, o->batch, MB, T,
                davidson ? "Davidson (ties present)" : "Bradley-Terry");
    if (!o->quiet && world > 1) rl_info("data parallel: %d ranks x --batch %d units, %d threads per rank", world, o->batch, ops_threads());

    int Bu = o->batch;
    int *in = rl_xmalloc(sizeof(int) * (size_t)MB * T), *pos = rl_xmalloc(sizeof(int) * (size_t)MB);
    int *rowseq = rl_xmalloc(sizeof(int) * (size_t)MB), *row_off = rl_xmalloc(sizeof(int) * (size_t)MB);
    float *r = rl_xmalloc(sizeof(float) * (size_t)MB), *dr = rl_xmalloc(sizeof(float) * (size_t)MB);
    int *bunits = rl_xmalloc(sizeof(int) * (size_t)Bu); /* this rank's units of the step */
    rm_scratch s;
    size_t S = (size_t)MB * MB + 8;
    float **fs[] = {&s.ra, &s.rb, &s.da, &s.db, &s.pw, &s.rk, &s.drk, &s.kw, &s.rt, &s.dt, &s.tl, &s.tw};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) *fs[i] = rl_xmalloc(sizeof(float) * S);
    s.lab = rl_xmalloc(S); s.rank = rl_xmalloc(sizeof(int32_t) * S);
    s.pi = rl_xmalloc(sizeof(int) * S); s.ti = rl_xmalloc(sizeof(int) * S); s.ki = rl_xmalloc(sizeof(int) * S);
    int *order = rl_xmalloc(sizeof(int) * (size_t)d.ntrain);
    memcpy(order, d.train, sizeof(int) * (size_t)d.ntrain);
    rl_rng rng;
    rl_rng_seed(&rng, o->seed ^ 0x7e3ULL);
    rl_rng_shuffle_int(&rng, order, d.ntrain);
    int cursor = 0;
    trn_sigint_install();
    rl_progress bar;
    rl_progress_start(&bar, "rm", steps);
    double t_start = rl_now();
    rm_eval last = {NAN, NAN, NAN, NAN, NAN, 0, 0, NAN};
    long long step = 0;
    double last_loss = NAN;
    int stop = 0; /* trn_stop agreed across ranks: all stop after the same step */
    while (step < steps && !stop) {
        gpt_zero_grad(&m);
        /* every rank draws the step's Bu x world units from the same order and
         * keeps every world-th one (one process: all of them); W is the whole
         * step's weight, so the losses of the ranks add up to the global loss */
        double W = 0;
        for (int b = 0, k = 0; b < Bu * world; b++) {
            if (cursor == d.ntrain) { cursor = 0; rl_rng_shuffle_int(&rng, order, d.ntrain); }
            int u = order[cursor++];
            if (b % world == rank) bunits[k++] = u;
            W += d.units[u].weight;
        }
        double loss = 0, an = 0, ad = 0;
        /* chunks of whole units with at most MB rows: one forward + backward each */
        for (int u0 = 0; u0 < Bu && W > 0;) {
            int nu = 0, nr = 0;
            while (u0 + nu < Bu && nr + d.units[bunits[u0 + nu]].k <= MB) {
                const rm_unit *u = &d.units[bunits[u0 + nu]];
                row_off[nu] = nr;
                for (int j = 0; j < u->k; j++) rowseq[nr + j] = d.rows[u->start + j];
                nr += u->k;
                nu++;
            }
            int Tb = trn_batch_last(&d.seqs, rowseq, nr, in, pos);
            gpt_forward_hidden(&m, in, nr, Tb);
            gpt_scalar_forward(&m, pos, r);
            memset(dr, 0, sizeof(float) * (size_t)nr);
            loss += chunk_loss(o, &d, bunits + u0, nu, row_off, r, dr, W, davidson, &s, &an, &ad);
            gpt_backward_begin(&m);
            gpt_scalar_backward(&m, pos, dr);
            gpt_backward_end(&m, NULL);
            u0 += nu;
        }
        /* the ranks' gradients are parts of one sum (each scaled by 1/W of the
         * whole step): all-reduce gives their mean, x world their sum */
        float norm, lr = optim_lr(&sch, step);
        CHECK_OK(dist_dp_step(&dp, (float)world, (float)o->grad_clip, lr, &norm), "data-parallel step %lld", step + 1);
        step++;
        if (world > 1) {
            double red[4] = {loss, an, ad, trn_stop ? 1.0 : 0.0};
            CHECK_OK(dist_allreduce_sum_f64(red, 4), "summing the loss over ranks");
            loss = red[0]; an = red[1]; ad = red[2];
            stop = red[3] > 0;
        } else stop = trn_stop;
        CHECK(isfinite(loss), "loss became %g at step %lld; lower --lr", loss, step);
        last_loss = loss;
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", step);
        rl_metrics_f(&met, "loss", loss);
        rl_metrics_f(&met, "accuracy", ad > 0 ? an / ad : NAN);
        rl_metrics_f(&met, "lr", lr);
        rl_metrics_f(&met, "grad_norm", norm);
        rl_metrics_f(&met, "epoch", (double)step * Bu * world / d.ntrain);
        rl_metrics_f(&met, "time", rl_now() - t_start);
        rl_metrics_end(&met);
        int lastp = step == steps;
        if (d.nval && ((o->eval_every > 0 && step % o->eval_every == 0) || lastp)) {
            last = evaluate(&m, &d, in, pos);
            diag_step ds;
            diag_step_clear(&ds);
            ds.len_reward_corr = last.len_corr;
            diag_update(dm, step, &ds);
            rl_metrics_begin(&met);
            rl_metrics_i(&met, "step", step);
            rl_metrics_f(&met, "val_accuracy", last.acc);
            rl_metrics_f(&met, "val_ece", last.ece);
            rl_metrics_f(&met, "val_bt_loss", last.loss);
            rl_metrics_i(&met, "val_pairs", last.npairs);
            /* ---- monitors (issue 8) ---- */
            if (isfinite(last.len_corr)) rl_metrics_f(&met, "val_len_reward_corr", last.len_corr);
            if (isfinite(last.acc) && ad > 0) rl_metrics_f(&met, "train_val_acc_gap", an / ad - last.acc);
            if (last.nthumbs) {
                rl_metrics_f(&met, "val_thumbs_accuracy", last.thumbs_acc);
                rl_metrics_f(&met, "val_thumbs_up_fraction", last.thumbs_up); /* the majority-class baseline */
            }
            diag_metrics_fields(dm, &met);
            rl_metrics_i(&met, "warnings", dm->nwarnings_total);
            rl_metrics_end(&met);
            if (!o->quiet && !bar.is_tty) rl_info("step %lld: held-out accuracy %.4f (%d pairs), ECE %.4f", step, last.acc, last.npairs, last.ece);
        }
        if (!o->quiet) rl_progress_update(&bar, step, "loss %.4f acc %.3f | val acc %.3f | lr %.2e", loss, ad > 0 ? an / ad : NAN, last.acc, lr);
        if (o->ckpt_every > 0 && step % o->ckpt_every == 0 && !lastp) {
            ckpt_meta meta;
            set_meta(o, &meta, davidson, &d, 0, 1, 0, 0, &last);
            if (root) CHECK_OK(ckpt_save_meta(o->out, &m, tid, NULL, NULL, &meta), "could not write %s", o->out);
            CHECK_OK(dist_barrier(), "waiting for rank 0's checkpoint");
        }
    }
    if (!o->quiet) rl_progress_end(&bar);
    if (stop) last = evaluate(&m, &d, in, pos);
    double mean, std, mn, mx;
    norm_stats(&m, &d, o->norm_samples, o->seed, in, pos, &mean, &std, &mn, &mx);
    ckpt_meta meta;
    set_meta(o, &meta, davidson, &d, mean, std > 1e-6 ? std : 1.0, mn, mx, &last);
    if (root) CHECK_OK(ckpt_save_meta(o->out, &m, tid, NULL, NULL, &meta), "could not write the checkpoint %s (disk full? directory missing?)", o->out);
    CHECK_OK(dist_barrier(), "waiting for rank 0's checkpoint");
    rl_metrics_begin(&met);
    rl_metrics_i(&met, "step", step);
    rl_metrics_f(&met, "reward_mean", mean);
    rl_metrics_f(&met, "reward_std", std);
    rl_metrics_f(&met, "reward_min", mn);
    rl_metrics_f(&met, "reward_max", mx);
    rl_metrics_end(&met);
    if (!o->quiet)
        rl_info("%s at step %lld: train loss %.4f, held-out accuracy %.4f on %d pairs, ECE %.4f%s; reward mean %.3f std %.3f; %.1f s%s",
                o->out, step, last_loss, last.acc, last.npairs, last.ece,
                last.nthumbs ? "" : "", mean, std, rl_now() - t_start, stop ? " (interrupted)" : "");
    if (!o->quiet && last.nthumbs) rl_info("held-out thumbs accuracy %.4f on %d thumbs (%.0f%% of them up)", last.thumbs_acc, last.nthumbs, 100 * last.thumbs_up);
    int rc = stop ? 130 : 0;
    trn_sigint_restore();
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) free(*fs[i]);
    free(s.lab); free(s.rank); free(s.pi); free(s.ti); free(s.ki);
    free(in); free(pos); free(rowseq); free(row_off); free(r); free(dr); free(bunits); free(order);
    free(d.rows); free(d.rank); free(d.units); free(d.train); free(d.val);
    trn_seqs_free(&d.seqs);
    free(dm);
    rl_metrics_close(&met);
    dist_dp_free(&dp); /* the optimizer too */
    gpt_free(&m);
    tok_free(t);
    return rc;
}

/* ---- scoring ---------------------------------------------------------------- */

rl_status rm_scorer_open(rm_scorer *s, const char *ckpt, const char *tokenizer, int max_B, const ops_table *ops) {
    memset(s, 0, sizeof *s);
    ckpt_info info;
    RL_TRY(ckpt_peek(ckpt, &info));
    const char *kind = ckpt_meta_kind(&info.meta);
    if (strcmp(kind, "reward"))
        return rl_fail(RL_EINVAL, "%s is a '%s' checkpoint, not a reward model: train one with 'rlhf rm'", ckpt, kind);
    RL_TRY(tok_load(&s->tok, tokenizer));
    char tid[65];
    tok_identity(s->tok, tid);
    rl_status st = RL_OK;
    if (info.cfg.V != tok_vocab_size(s->tok))
        st = rl_fail(RL_EINVAL, "%s has a vocabulary of %d but the tokenizer %s has %d: use the reward model's tokenizer", ckpt,
                     info.cfg.V, tokenizer, tok_vocab_size(s->tok));
    else if (info.tok_id[0] && strcmp(info.tok_id, tid))
        st = rl_fail(RL_EINVAL, "%s was trained with another tokenizer (%.16s...) than %s (%.16s...)", ckpt, info.tok_id, tokenizer, tid);
    if (st == RL_OK) st = ckpt_load(ckpt, &s->m, max_B, 0, ops, NULL, 0, 0, 0, 0, 0, NULL);
    if (st != RL_OK) { tok_free(s->tok); s->tok = NULL; return st; }
    s->meta = info.meta;
    s->max_B = max_B;
    s->max_T = info.cfg.maxT;
    if (!ckpt_meta_get_f(&s->meta, "reward.mean", &s->mean)) s->mean = 0;
    if (!ckpt_meta_get_f(&s->meta, "reward.std", &s->std) || !(s->std > 0)) s->std = 1;
    trn_seqs_init(&s->seqs);
    s->inputs = malloc(sizeof(int) * (size_t)max_B * s->max_T);
    s->pos = malloc(sizeof(int) * (size_t)max_B);
    if (!s->inputs || !s->pos) { rm_scorer_close(s); return rl_fail(RL_ENOMEM, "out of memory"); }
    return RL_OK;
}

void rm_scorer_close(rm_scorer *s) {
    if (s->m.params) gpt_free(&s->m);
    tok_free(s->tok);
    trn_seqs_free(&s->seqs);
    free(s->inputs); free(s->pos);
    memset(s, 0, sizeof *s);
}

rl_status rm_score(rm_scorer *s, const chat_turn *const *turns, const int *nturns, const char *const *responses,
                   int n, float *raw, float *norm) {
    if (n < 1 || n > s->max_B) return rl_fail(RL_EINVAL, "rm_score: %d items, at most %d", n, s->max_B);
    trn_seqs_free(&s->seqs);
    trn_seqs_init(&s->seqs);
    int *rows = malloc(sizeof(int) * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)n);
    if (!rows || !out) { free(rows); free(out); return rl_fail(RL_ENOMEM, "out of memory"); }
    rl_status st = RL_OK;
    for (int i = 0; i < n && st == RL_OK; i++)
        st = trn_seqs_add(&s->seqs, s->tok, turns[i], nturns[i], responses[i], CHAT_TRAIN_LAST_ASSISTANT, s->max_T, &rows[i]);
    if (st == RL_OK) {
        int T = trn_batch_last(&s->seqs, rows, n, s->inputs, s->pos);
        gpt_forward_hidden(&s->m, s->inputs, n, T);
        gpt_scalar_forward(&s->m, s->pos, out);
        for (int i = 0; i < n; i++) {
            if (raw) raw[i] = out[i];
            if (norm) norm[i] = (float)((out[i] - s->mean) / s->std);
        }
    }
    free(rows); free(out);
    return st;
}
