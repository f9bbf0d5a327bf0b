/* dpo.c — see dpo.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "dpo.h"
#include "../diag/diag.h"
#include "objectives.h"
#include "../base/log.h"
#include "../base/rng.h"
#include "../model/sampler.h"
#include "../optim/adamw.h"
#include "../dist/dp.h"

typedef struct {
    trn_seqs seqs;
    float *ref, *len;          /* (seqs.n) reference sequence log-prob, trained-token count */
    /* pairs: DPO training units and every held-out pair */
    int np, *pc, *pr;          /* chosen / rejected sequence of pair i */
    float *pw;
    /* thumbs: KTO training units */
    int nt, *ts, *tmm;         /* sequence, mismatched sequence (-1 = none) */
    uint8_t *tl;
    float *tw;
    int *tr, ntr;              /* training units (pairs for DPO, thumbs for KTO) */
    int *vp, nvp;              /* held-out pairs */
    int *vt, nvt;              /* held-out thumbs (KTO) */
} pref_data;

static void push_i(int **a, int n, int v) {
    if ((n & (n - 1)) == 0) { *a = realloc(*a, sizeof(int) * (size_t)(n ? 2 * n : 1)); CHECK(*a, "out of memory"); }
    (*a)[n] = v;
}
static void push_f(float **a, int n, float v) {
    if ((n & (n - 1)) == 0) { *a = realloc(*a, sizeof(float) * (size_t)(n ? 2 * n : 1)); CHECK(*a, "out of memory"); }
    (*a)[n] = v;
}
static void push_u8(uint8_t **a, int n, uint8_t v) {
    if ((n & (n - 1)) == 0) { *a = realloc(*a, (size_t)(n ? 2 * n : 1)); CHECK(*a, "out of memory"); }
    (*a)[n] = v;
}

static int add_seq(pref_data *d, const tok_tokenizer *t, const chat_turn *turns, int n, const char *resp, int max_len) {
    int k;
    CHECK_OK(trn_seqs_add(&d->seqs, t, turns, n, resp, CHAT_TRAIN_LAST_ASSISTANT, max_len, &k), "encoding a record");
    return k;
}

static void load(const dpo_opts *o, const tok_tokenizer *t, int max_len, pref_data *d) {
    memset(d, 0, sizeof *d);
    trn_seqs_init(&d->seqs);
    fb_set set;
    fb_set_init(&set);
    trn_load_records(&set, o->records, o->format, o->skip_bad, o->quiet);
    trn_apply_annotator_weights(&set, o->annotator_weights, o->missing_weight, o->quiet);
    fb_pair *pairs = NULL;
    int64_t npairs = 0;
    CHECK_OK(fb_to_pairs(&set, &pairs, &npairs), "expanding pairs");
    int nties = 0;
    for (int64_t i = 0; i < npairs; i++) {
        const fb_pair *p = &pairs[i];
        if (p->tie) { nties++; continue; }
        int held = o->val_fraction > 0 && fb_is_heldout(&set.records[p->record], o->val_fraction, o->seed);
        if (o->kto && !held) continue; /* KTO trains on thumbs; its pairs are for evaluation */
        int c = add_seq(d, t, p->turns, p->n_turns, p->chosen, max_len);
        int r = add_seq(d, t, p->turns, p->n_turns, p->rejected, max_len);
        push_i(&d->pc, d->np, c); push_i(&d->pr, d->np, r); push_f(&d->pw, d->np, (float)p->weight);
        if (held) push_i(&d->vp, d->nvp++, d->np);
        else push_i(&d->tr, d->ntr++, d->np);
        d->np++;
    }
    free(pairs);
    if (o->kto) {
        fb_thumb *th = NULL;
        int64_t nth = 0;
        CHECK_OK(fb_to_thumbs(&set, o->from_pairs ? FB_THUMBS_FROM_PAIRS : 0, &th, &nth), "expanding thumbs");
        int *train_th = rl_xmalloc(sizeof(int) * (size_t)(nth + 1));
        int ntrain_th = 0;
        for (int64_t i = 0; i < nth; i++) {
            int held = o->val_fraction > 0 && fb_is_heldout(&set.records[th[i].record], o->val_fraction, o->seed);
            int s = add_seq(d, t, th[i].turns, th[i].n_turns, th[i].response, max_len);
            push_i(&d->ts, d->nt, s); push_u8(&d->tl, d->nt, (uint8_t)th[i].label);
            push_f(&d->tw, d->nt, (float)th[i].weight); push_i(&d->tmm, d->nt, -1);
            if (held) push_i(&d->vt, d->nvt++, d->nt);
            else { push_i(&d->tr, d->ntr++, d->nt); train_th[ntrain_th++] = (int)i; }
            d->nt++;
        }
        /* mismatched pairs for the KL reference point: a fixed derangement of the
         * training thumbs (x_i with the response of the next one in a shuffled order) */
        if (d->ntr >= 2) {
            int *perm = rl_xmalloc(sizeof(int) * (size_t)d->ntr);
            for (int k = 0; k < d->ntr; k++) perm[k] = k;
            rl_rng rng;
            rl_rng_seed(&rng, o->seed ^ 0x6b70ULL);
            rl_rng_shuffle_int(&rng, perm, d->ntr);
            for (int k = 0; k < d->ntr; k++) {
                int a = perm[k], b = perm[(k + 1) % d->ntr];
                const fb_thumb *x = &th[train_th[a]], *y = &th[train_th[b]];
                d->tmm[d->tr[a]] = add_seq(d, t, x->turns, x->n_turns, y->response, max_len);
            }
            free(perm);
        }
        free(th);
        free(train_th);
        if (!o->quiet)
            rl_info("kto data: %d train / %d held-out thumbs%s, %d held-out pairs for the preference metrics",
                    d->ntr, d->nvt, o->from_pairs ? " (pairs give a desirable + an undesirable example)" : "", d->nvp);
        CHECK(d->ntr > 0, "no thumbs to train on in %s (thumbs records, ratings%s)", o->records,
              o->from_pairs ? " or strict pairs" : "; pass --from-pairs to use pairs");
    } else {
        if (!o->quiet) rl_info("dpo data: %d train / %d held-out pairs (%d ties skipped)", d->ntr, d->nvp, nties);
        CHECK(d->ntr > 0, "no strict preference pairs to train on in %s", o->records);
    }
    fb_set_free(&set);
    if (d->seqs.n_cut)
        rl_warn("%d of %d sequences were longer than %d tokens (--seq) (%d lost prompt tokens, %d the end of the response)",
                d->seqs.n_cut, d->seqs.n, max_len, d->seqs.n_cut_prompt, d->seqs.n_cut_response);
}

typedef struct {
    int *in, *tg, *rows;       /* (R*T), (R*T), (R) */
    float *mask, *seq, *len, *dseq, *dlogp;
} bufs;

/* Sequence log-probs of rows[0..n) under m, m->max_B rows per forward. */
static void seq_logps(gpt_model *m, const trn_seqs *s, const int *rows, int n, bufs *b, float *out, float *len) {
    for (int i = 0; i < n; i += m->max_B) {
        int nb = n - i < m->max_B ? n - i : m->max_B;
        int T = trn_batch_lm(s, rows + i, nb, b->in, b->tg, b->mask);
        gpt_forward(m, b->in, b->tg, NULL, nb, T);
        obj_seq_logprobs(m->a.logp, b->mask, nb, T, out + i, len ? len + i : NULL);
    }
}

/* seq_logps of rows every rank needs (reference log-probs, held-out sets).
 * Collective: under MPI rank r computes the forwards c with c % world == r,
 * the rest arrives by an all-reduce (a sum with exact zeros), so every rank
 * ends with what one process computes. */
static void seq_logps_shared(gpt_model *m, const trn_seqs *s, const int *rows, int n, bufs *b, float *out, float *len) {
    int rank = dist_rank(), world = dist_world();
    if (world == 1) { seq_logps(m, s, rows, n, b, out, len); return; }
    for (int i = 0, c = 0; i < n; i += m->max_B, c++) {
        int nb = n - i < m->max_B ? n - i : m->max_B;
        if (c % world == rank) seq_logps(m, s, rows + i, nb, b, out + i, len ? len + i : NULL);
        else {
            memset(out + i, 0, sizeof(float) * (size_t)nb);
            if (len) memset(len + i, 0, sizeof(float) * (size_t)nb);
        }
    }
    if (n > 0) {
        CHECK_OK(dist_allreduce_sum_f32(out, (size_t)n), "gathering log-probs from the ranks");
        if (len) CHECK_OK(dist_allreduce_sum_f32(len, (size_t)n), "gathering log-probs from the ranks");
    }
}

typedef struct {
    double pref_acc, pref_prob, reward_acc, lr_chosen, lr_rejected, kl_sampled, thumbs_acc;
} pref_eval;

/* KL(π || π_ref) on samples from π for held-out prompts (see dpo.h). */
static double sampled_kl(gpt_model *m, gpt_model *ref, const pref_data *d, const dpo_opts *o, const tok_tokenizer *t, bufs *b) {
    int n = o->kl_samples < d->nvp ? o->kl_samples : d->nvp;
    if (n <= 0 || o->kl_tokens <= 0) return NAN;
    const int **prompts = rl_xmalloc(sizeof(int *) * (size_t)n);
    int *plen = rl_xmalloc(sizeof(int) * (size_t)n);
    int maxT = m->cfg.maxT < ref->max_T + 1 ? m->cfg.maxT : ref->max_T + 1;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int s = d->pc[d->vp[i]];
        const int *ids = d->seqs.ids + d->seqs.off[s];
        const uint8_t *tr = d->seqs.train + d->seqs.off[s];
        int L = trn_seq_len(&d->seqs, s), p = 0;
        while (p < L && !tr[p]) p++;
        if (p < 1 || p + 1 >= maxT) continue;
        prompts[kept] = ids;
        plen[kept++] = p;
    }
    double kl = NAN;
    if (kept) {
        sampler_opts so;
        sampler_opts_default(&so);
        so.max_tokens = o->kl_tokens;
        so.seed = o->seed ^ 0x4b4cULL;
        so.stop_tokens[0] = tok_special(t, CHAT_END);
        sampler_result res;
        CHECK_OK(sampler_generate(m, prompts, plen, kept, &so, &res, NULL, NULL), "sampling for the KL estimate");
        double sum = 0;
        int cnt = 0;
        for (int i = 0; i < kept; i += ref->max_B) {
            int nb = kept - i < ref->max_B ? kept - i : ref->max_B;
            int T = 1;
            for (int r = 0; r < nb; r++) {
                int l = plen[i + r] + res.len[i + r] - 1;
                if (l > maxT - 1) l = maxT - 1;
                if (l > T) T = l;
            }
            for (int r = 0; r < nb; r++) {
                int pl = plen[i + r], gl = res.len[i + r];
                const int *gen = res.tokens + (size_t)(i + r) * res.cap;
                for (int tt = 0; tt < T; tt++) {
                    int pos1 = tt + 1; /* target position in prompt ++ gen */
                    int x = tt < pl ? prompts[i + r][tt] : (tt - pl < gl ? gen[tt - pl] : 0);
                    int y = pos1 < pl ? -1 : (pos1 - pl < gl ? gen[pos1 - pl] : -1);
                    b->in[(size_t)r * T + tt] = x;
                    b->tg[(size_t)r * T + tt] = y;
                    b->mask[(size_t)r * T + tt] = y >= 0;
                }
            }
            gpt_forward(ref, b->in, b->tg, NULL, nb, T);
            for (int r = 0; r < nb; r++) {
                double lp = 0, lr = 0;
                int pl = plen[i + r], gl = res.len[i + r];
                for (int g = 0; g < gl; g++) {
                    int tt = pl - 1 + g;
                    if (tt >= T) break;
                    lp += res.logp[(size_t)(i + r) * res.cap + g];
                    lr += ref->a.logp[(size_t)r * T + tt];
                }
                sum += lp - lr;
                cnt++;
            }
        }
        sampler_result_free(&res);
        kl = cnt ? sum / cnt : NAN;
    }
    free(prompts); free(plen);
    return kl;
}

static pref_eval evaluate(gpt_model *m, gpt_model *ref, const pref_data *d, const dpo_opts *o, const tok_tokenizer *t, bufs *b,
                          int *rows, float *pol) {
    pref_eval e = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    if (d->nvp) {
        for (int i = 0; i < d->nvp; i++) { rows[i] = d->pc[d->vp[i]]; rows[d->nvp + i] = d->pr[d->vp[i]]; }
        seq_logps_shared(m, &d->seqs, rows, 2 * d->nvp, b, pol, NULL);
        double pa = 0, pp = 0, ra = 0, lc = 0, lr = 0, w = 0;
        for (int i = 0; i < d->nvp; i++) {
            int p = d->vp[i];
            double wi = d->pw[p];
            float c = pol[i], r = pol[d->nvp + i];
            double hc = c - d->ref[d->pc[p]], hr = r - d->ref[d->pr[p]];
            pa += wi * (c > r ? 1.0 : c == r ? 0.5 : 0.0);
            pp += wi * obj_sigmoid((double)c - r);
            ra += wi * (hc > hr ? 1.0 : hc == hr ? 0.5 : 0.0);
            lc += wi * hc; lr += wi * hr; w += wi;
        }
        if (w > 0) { e.pref_acc = pa / w; e.pref_prob = pp / w; e.reward_acc = ra / w; e.lr_chosen = lc / w; e.lr_rejected = lr / w; }
        e.kl_sampled = sampled_kl(m, ref, d, o, t, b);
    }
    if (d->nvt) {
        for (int i = 0; i < d->nvt; i++) rows[i] = d->ts[d->vt[i]];
        seq_logps_shared(m, &d->seqs, rows, d->nvt, b, pol, NULL);
        double good = 0, w = 0;
        for (int i = 0; i < d->nvt; i++) {
            int k = d->vt[i];
            double h = pol[i] - d->ref[d->ts[k]];
            good += d->tw[k] * ((h > 0) == (d->tl[k] == 1));
            w += d->tw[k];
        }
        if (w > 0) e.thumbs_acc = good / w;
    }
    return e;
}

/* ---- monitors (issue 8): every held-out evaluation feeds the live monitors ----
 * chosen/rejected: the held-out log-ratios log pi - log pi_ref (the reference
 * sets them at 0, so a fall is a fall of the log-probs themselves); kl: the
 * sampled KL(pi || ref) estimate when --kl-samples > 0. Warnings are written
 * to the log (and stderr) before the evaluation row. */
static void monitor_eval(diag_monitor *dm, long long step, const pref_eval *e) {
    diag_step s;
    diag_step_clear(&s);
    s.chosen_logp = e->lr_chosen;
    s.rejected_logp = e->lr_rejected;
    if (isfinite(e->kl_sampled) && e->kl_sampled != 0) s.kl = e->kl_sampled;
    diag_update(dm, step, &s);
}

static void log_eval(rl_metrics *met, long long step, const pref_eval *e, diag_monitor *dm) {
    monitor_eval(dm, step, e);
    rl_metrics_begin(met);
    rl_metrics_i(met, "step", step);
    rl_metrics_f(met, "val_pref_accuracy", e->pref_acc);
    rl_metrics_f(met, "val_pref_prob", e->pref_prob);
    rl_metrics_f(met, "val_reward_accuracy", e->reward_acc);
    rl_metrics_f(met, "val_logratio_chosen", e->lr_chosen);
    rl_metrics_f(met, "val_logratio_rejected", e->lr_rejected);
    rl_metrics_f(met, "val_kl_sampled", e->kl_sampled);
    if (isfinite(e->thumbs_acc)) rl_metrics_f(met, "val_thumbs_accuracy", e->thumbs_acc);
    diag_metrics_fields(dm, met);
    rl_metrics_i(met, "warnings", dm->nwarnings_total);
    rl_metrics_end(met);
}

static void save(const dpo_opts *o, const gpt_model *m, const char *tid) {
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "lm");
    ckpt_meta_set(&meta, "trainer", o->kto ? "kto" : "dpo");
    ckpt_meta_set(&meta, "base", o->model.path && o->model.path[0] ? o->model.path : "(fresh)");
    if (o->kto) {
        ckpt_meta_set_f(&meta, "kto.beta", o->beta);
    } else {
        ckpt_meta_set(&meta, "dpo.loss", o->loss);
        ckpt_meta_set_f(&meta, "dpo.beta", o->beta);
    }
    if (dist_is_root()) CHECK_OK(ckpt_save_meta(o->out, m, tid, NULL, NULL, &meta), "could not write the checkpoint %s (disk full? directory missing?)", o->out);
    CHECK_OK(dist_barrier(), "waiting for rank 0's checkpoint");
}

int dpo_run(const dpo_opts *o_in) {
    /* data parallel under mpirun (src/dist): rank 0 alone talks, logs and writes */
    int rank = dist_rank(), world = dist_world(), root = rank == 0;
    dpo_opts oq = *o_in;
    oq.quiet = o_in->quiet || !root;
    const dpo_opts *o = &oq;
    dist_watchdog(TRN_DIST_TIMEOUT);
    const ops_table *ops = ops_get(o->kernels);
    CHECK(ops, "unknown kernels '%s' (use fast or ref)", o->kernels);
    char tid[65];
    tok_tokenizer *t = trn_open_tokenizer(o->tokenizer, tid);
    int B = o->batch, R = o->kto ? B : 2 * B; /* rows per forward */
    gpt_model m, ref;
    int T = trn_open_model(&m, &o->model, t, tid, R, o->seq, ops, "lm", NULL);
    trn_model_src rs = o->model;
    if (o->ref) rs.path = o->ref;
    int Tr = trn_open_model(&ref, &rs, t, tid, R, T, ops, "lm", NULL);
    CHECK(Tr == T, "the reference model's context (%d) is shorter than the policy's (%d)", Tr, T);
    if (!(o->ref || (o->model.path && o->model.path[0]))) memcpy(ref.params, m.params, m.num_params * sizeof(float));
    pref_data d;
    load(o, t, T + 1, &d);

    int n = d.seqs.n;
    d.ref = rl_xmalloc(sizeof(float) * (size_t)n);
    d.len = rl_xmalloc(sizeof(float) * (size_t)n);
    bufs b;
    size_t RT = (size_t)R * T;
    b.in = rl_xmalloc(sizeof(int) * RT); b.tg = rl_xmalloc(sizeof(int) * RT);
    b.mask = rl_xmalloc(sizeof(float) * RT); b.dlogp = rl_xmalloc(sizeof(float) * RT);
    b.rows = rl_xmalloc(sizeof(int) * (size_t)R);
    b.seq = rl_xmalloc(sizeof(float) * (size_t)R); b.len = rl_xmalloc(sizeof(float) * (size_t)R);
    b.dseq = rl_xmalloc(sizeof(float) * (size_t)R);
    int *all = rl_xmalloc(sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) all[i] = i;
    double t_ref = rl_now();
    seq_logps_shared(&ref, &d.seqs, all, n, &b, d.ref, d.len);
    if (!o->quiet) rl_info("reference log-probs of %d sequences in %.1f s", n, rl_now() - t_ref);

    obj_dpo_type dt = OBJ_DPO_SIGMOID;
    double eps = o->label_smoothing;
    if (!strcmp(o->loss, "rdpo")) dt = OBJ_DPO_ROBUST;
    else if (!strcmp(o->loss, "ipo")) dt = OBJ_DPO_IPO;
    CHECK(strcmp(o->loss, "cdpo") || eps > 0, "--loss cdpo needs --label-smoothing > 0 (0.1 is typical)");
    CHECK(strcmp(o->loss, "rdpo") || eps < 0.5, "--loss rdpo needs --label-smoothing < 0.5");
    int orpo = !strcmp(o->loss, "orpo"), simpo = !strcmp(o->loss, "simpo");

    /* --batch is per rank: a micro-batch takes B x world units of one shuffled order */
    optim_schedule sch;
    long long steps = trn_plan_steps(d.ntr, (long long)B * o->accum * world, o->steps, o->epochs, o->warmup, 10, 150,
                                     o->lr, o->min_lr_frac, &sch);
    dist_dp dp; /* one process: exactly optim_clip_grad_norm + optim_adamw_step */
    trn_dp_setup(&dp, &m, o->weight_decay);
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, root ? o->log_path : NULL, 0), "cannot open the metrics log");
    const char *name = o->kto ? "kto" : "dpo";
    if (!o->quiet)
        rl_info("%s: L%d NH%d C%d V%d, %.2fM params; loss %s beta %g; %lld steps of %d x %d %s (T <= %d)", name, m.cfg.L,
                m.cfg.NH, m.cfg.C, m.cfg.V, m.num_params / 1e6, o->kto ? "kto" : o->loss, o->beta, steps, o->accum, B,
                o->kto ? "examples" : "pairs", T);
    if (!o->quiet && world > 1) rl_info("data parallel: %d ranks x --batch %d, %d threads per rank", world, B, ops_threads());

    int evn = 2 * d.nvp > d.nvt ? 2 * d.nvp : d.nvt;
    int *erows = rl_xmalloc(sizeof(int) * (size_t)(evn + 1));
    float *epol = rl_xmalloc(sizeof(float) * (size_t)(evn + 1));
    diag_config dcfg;
    diag_config_default(&dcfg);
    if (o->warn_dpo_drop > 0) dcfg.dpo_drop = o->warn_dpo_drop;
    if (o->warn_kl_budget > 0) dcfg.kl_budget = o->warn_kl_budget;
    dcfg.print = root;
    diag_monitor *dm = malloc(sizeof *dm);
    CHECK(dm, "out of memory");
    diag_init(dm, &dcfg, &met);
    if (!orpo && !simpo) {
        diag_step r0;
        diag_step_clear(&r0);
        r0.chosen_logp = r0.rejected_logp = 0; /* the reference policy's log-ratios */
        diag_set_reference(dm, &r0);
    }
    pref_eval ev = evaluate(&m, &ref, &d, o, t, &b, erows, epol);
    log_eval(&met, 0, &ev, dm);
    if (!o->quiet)
        rl_info("step 0: held-out preference accuracy %.4f (log pi(chosen) > log pi(rejected)), preference probability %.4f, "
                "sampled KL %.4f", ev.pref_acc, ev.pref_prob, ev.kl_sampled);
    double acc0 = ev.pref_acc, prob0 = ev.pref_prob;

    int *order = rl_xmalloc(sizeof(int) * (size_t)d.ntr);
    memcpy(order, d.tr, sizeof(int) * (size_t)d.ntr);
    rl_rng rng;
    rl_rng_seed(&rng, o->seed ^ 0xd90ULL);
    rl_rng_shuffle_int(&rng, order, d.ntr);
    int cursor = 0;
    float *rc = rl_xmalloc(sizeof(float) * (size_t)B), *rr = rl_xmalloc(sizeof(float) * (size_t)B), *w = rl_xmalloc(sizeof(float) * (size_t)B);
    float *mm = rl_xmalloc(sizeof(float) * (size_t)B), *mmr = rl_xmalloc(sizeof(float) * (size_t)B);
    uint8_t *lab = rl_xmalloc((size_t)B);
    int *units = rl_xmalloc(sizeof(int) * (size_t)B);
    trn_sigint_install();
    rl_progress bar;
    rl_progress_start(&bar, name, steps);
    double t_start = rl_now();
    long long step = 0;
    double last_loss = NAN;
    int stop = 0; /* trn_stop agreed across ranks: all stop after the same step */
    while (step < steps && !stop) {
        gpt_zero_grad(&m);
        obj_pref_stats acc_st;
        memset(&acc_st, 0, sizeof acc_st);
        double z0s = 0;
        for (int a = 0; a < o->accum; a++) {
            /* every rank draws B x world units from the same order and keeps
             * every world-th one (one process: all of them) */
            for (int i = 0, k = 0; i < B * world; i++) {
                if (cursor == d.ntr) { cursor = 0; rl_rng_shuffle_int(&rng, order, d.ntr); }
                int u = order[cursor++];
                if (i % world == rank) units[k++] = u;
            }
            obj_pref_stats st;
            memset(&st, 0, sizeof st);
            int rows_n;
            if (!o->kto) {
                for (int i = 0; i < B; i++) {
                    int p = units[i];
                    b.rows[i] = d.pc[p]; b.rows[B + i] = d.pr[p];
                    rc[i] = d.ref[d.pc[p]]; rr[i] = d.ref[d.pr[p]]; w[i] = d.pw[p];
                }
                rows_n = 2 * B;
            } else {
                /* reference point from the mismatched pairs (forward only, detached) */
                int nm = 0;
                for (int i = 0; i < B; i++)
                    if (d.tmm[units[i]] >= 0) { b.rows[nm] = d.tmm[units[i]]; mmr[nm] = d.ref[b.rows[nm]]; nm++; }
                double z0 = 0;
                if (nm) {
                    seq_logps(&m, &d.seqs, b.rows, nm, &b, mm, NULL);
                    z0 = obj_kto_kl_estimate(mm, mmr, nm);
                }
                /* one reference point for the whole micro-batch: the mean of the
                 * ranks' estimates (each from its own B mismatched pairs) */
                if (world > 1) z0 = dist_mean(z0);
                z0s += z0;
                for (int i = 0; i < B; i++) {
                    int k = units[i];
                    b.rows[i] = d.ts[k]; rc[i] = d.ref[d.ts[k]]; lab[i] = d.tl[k]; w[i] = d.tw[k];
                }
                rows_n = B;
                int Tb = trn_batch_lm(&d.seqs, b.rows, rows_n, b.in, b.tg, b.mask);
                gpt_forward(&m, b.in, b.tg, NULL, rows_n, Tb);
                obj_seq_logprobs(m.a.logp, b.mask, rows_n, Tb, b.seq, b.len);
                st.loss = obj_kto_loss(b.seq, rc, lab, w, B, o->beta, z0, o->lambda_d, o->lambda_u, b.dseq, &st);
                obj_seq_logprobs_backward(b.dseq, b.mask, rows_n, Tb, b.dlogp);
                gpt_backward_begin(&m);
                gpt_backward_end(&m, b.dlogp);
                /* policy log-probs by label, for the log */
                double lpd = 0, lpu = 0, nd = 0, nu = 0;
                for (int i = 0; i < B; i++) {
                    if (lab[i]) { lpd += b.seq[i]; nd++; } else { lpu += b.seq[i]; nu++; }
                }
                st.logp_chosen = nd ? lpd / nd : NAN;
                st.logp_rejected = nu ? lpu / nu : NAN;
            }
            if (!o->kto) {
                int Tb = trn_batch_lm(&d.seqs, b.rows, rows_n, b.in, b.tg, b.mask);
                gpt_forward(&m, b.in, b.tg, NULL, rows_n, Tb);
                obj_seq_logprobs(m.a.logp, b.mask, rows_n, Tb, b.seq, b.len);
                obj_pref_batch pb = {b.seq, b.seq + B, rc, rr, b.len, b.len + B, w, B};
                if (orpo) st.loss = obj_orpo_loss(&pb, o->beta, b.dseq, b.dseq + B, &st);
                else if (simpo) st.loss = obj_simpo_loss(&pb, o->beta, o->simpo_gamma, b.dseq, b.dseq + B, &st);
                else st.loss = obj_dpo_loss(&pb, dt, o->beta, eps, o->ipo_per_token, b.dseq, b.dseq + B, &st);
                obj_seq_logprobs_backward(b.dseq, b.mask, rows_n, Tb, b.dlogp);
                gpt_backward_begin(&m);
                gpt_backward_end(&m, b.dlogp);
            }
            acc_st.loss += st.loss / o->accum;
            acc_st.reward_chosen += st.reward_chosen / o->accum;
            acc_st.reward_rejected += st.reward_rejected / o->accum;
            acc_st.margin += st.margin / o->accum;
            acc_st.accuracy += st.accuracy / o->accum;
            acc_st.logp_chosen += st.logp_chosen / o->accum;
            acc_st.logp_rejected += st.logp_rejected / o->accum;
            acc_st.nll += st.nll / o->accum;
        }
        /* mean gradient over ranks (each rank's is the mean over its B
         * units), global-norm clip, the same AdamW step everywhere */
        float norm, lr = optim_lr(&sch, step);
        CHECK_OK(dist_dp_step(&dp, 1.0f / o->accum, (float)o->grad_clip, lr, &norm), "data-parallel step %lld", step + 1);
        step++;
        if (world > 1) {
            /* every rank's statistics are means over B units: equal shares */
            double red[10] = {acc_st.loss, acc_st.reward_chosen, acc_st.reward_rejected, acc_st.margin, acc_st.accuracy,
                              acc_st.logp_chosen, acc_st.logp_rejected, acc_st.nll, z0s, trn_stop ? 1.0 : 0.0};
            CHECK_OK(dist_allreduce_sum_f64(red, 10), "averaging the statistics over ranks");
            acc_st.loss = red[0] / world; acc_st.reward_chosen = red[1] / world; acc_st.reward_rejected = red[2] / world;
            acc_st.margin = red[3] / world; acc_st.accuracy = red[4] / world; acc_st.logp_chosen = red[5] / world;
            acc_st.logp_rejected = red[6] / world; acc_st.nll = red[7] / world; z0s = red[8] / world;
            stop = red[9] > 0;
        } else stop = trn_stop;
        CHECK(isfinite(acc_st.loss), "loss became %g at step %lld; lower --lr", acc_st.loss, step);
        last_loss = acc_st.loss;
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", step);
        rl_metrics_f(&met, "loss", acc_st.loss);
        rl_metrics_f(&met, o->kto ? "reward_desirable" : "reward_chosen", acc_st.reward_chosen);
        rl_metrics_f(&met, o->kto ? "reward_undesirable" : "reward_rejected", acc_st.reward_rejected);
        rl_metrics_f(&met, "margin", acc_st.margin);
        rl_metrics_f(&met, "accuracy", acc_st.accuracy);
        rl_metrics_f(&met, o->kto ? "logp_desirable" : "logp_chosen", acc_st.logp_chosen);
        rl_metrics_f(&met, o->kto ? "logp_undesirable" : "logp_rejected", acc_st.logp_rejected);
        if (o->kto) rl_metrics_f(&met, "kl_z0", z0s / o->accum);
        if (orpo) rl_metrics_f(&met, "nll", acc_st.nll);
        rl_metrics_f(&met, "lr", lr);
        rl_metrics_f(&met, "grad_norm", norm);
        rl_metrics_f(&met, "time", rl_now() - t_start);
        rl_metrics_end(&met);
        int lastp = step == steps;
        if ((o->eval_every > 0 && step % o->eval_every == 0) || lastp) {
            ev = evaluate(&m, &ref, &d, o, t, &b, erows, epol);
            log_eval(&met, step, &ev, dm);
            if (!o->quiet && !bar.is_tty)
                rl_info("step %lld: held-out preference accuracy %.4f, preference probability %.4f, reward accuracy %.4f, sampled KL %.4f",
                        step, ev.pref_acc, ev.pref_prob, ev.reward_acc, ev.kl_sampled);
        }
        if (!o->quiet)
            rl_progress_update(&bar, step, "loss %.4f acc %.2f margin %.3f | val pref %.3f kl %.3f", acc_st.loss, acc_st.accuracy,
                               acc_st.margin, ev.pref_acc, ev.kl_sampled);
        if (o->ckpt_every > 0 && step % o->ckpt_every == 0 && !lastp) save(o, &m, tid);
    }
    if (!o->quiet) rl_progress_end(&bar);
    if (stop) { ev = evaluate(&m, &ref, &d, o, t, &b, erows, epol); log_eval(&met, step, &ev, dm); }
    save(o, &m, tid);
    if (!o->quiet)
        rl_info("%s at step %lld: loss %.4f; held-out preference accuracy %.4f -> %.4f, probability %.4f -> %.4f, reward accuracy %.4f, log-ratio chosen %.3f "
                "rejected %.3f, sampled KL %.4f; %.1f s%s",
                o->out, step, last_loss, acc0, ev.pref_acc, prob0, ev.pref_prob, ev.reward_acc, ev.lr_chosen, ev.lr_rejected, ev.kl_sampled,
                rl_now() - t_start, stop ? " (interrupted)" : "");
    int rc_ = stop ? 130 : 0;
    trn_sigint_restore();
    free(rc); free(rr); free(w); free(mm); free(mmr); free(lab); free(units); free(order); free(erows); free(epol); free(all);
    free(b.in); free(b.tg); free(b.mask); free(b.dlogp); free(b.rows); free(b.seq); free(b.len); free(b.dseq);
    free(d.ref); free(d.len); free(d.pc); free(d.pr); free(d.pw); free(d.ts); free(d.tmm); free(d.tl); free(d.tw);
    free(d.tr); free(d.vp); free(d.vt);
    trn_seqs_free(&d.seqs);
    if (root && dm->nwarnings_total && !o->quiet)
        rl_info("%d monitor warning%s (see the log's {\"event\":\"warning\"} rows)", dm->nwarnings_total, dm->nwarnings_total == 1 ? "" : "s");
    free(dm);
    rl_metrics_close(&met);
    dist_dp_free(&dp); /* the optimizer too */
    gpt_free(&m);
    gpt_free(&ref);
    tok_free(t);
    return rc_;
}
