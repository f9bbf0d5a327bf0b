/* sft.c — see sft.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sft.h"
#include "../base/log.h"
#include "../base/rng.h"
#include "../optim/adamw.h"
#include "../dist/dp.h"

typedef struct {
    trn_seqs seqs;
    float *weight;   /* (n) record weight of each sequence */
    int *train_idx, ntrain;
    int *val_idx, nval;
} sft_data;

static void load_data(const sft_opts *o, const tok_tokenizer *t, int max_len, sft_data *d) {
    fb_set set;
    fb_set_init(&set);
    if (o->data) trn_load_records(&set, o->data, o->format, o->skip_bad, o->quiet);
    if (o->records) trn_load_records(&set, o->records, "jsonl", o->skip_bad, o->quiet);
    fb_demo *demos = NULL;
    int64_t n = 0;
    CHECK_OK(fb_to_demos(&set, o->winners ? FB_DEMOS_FROM_WINNERS : 0, &demos, &n), "expanding demonstrations");
    CHECK(n > 0, "no demonstrations in the data (%lld records): SFT needs demo records ({prompt, response}) or --winners",
          (long long)set.n);
    trn_seqs_init(&d->seqs);
    d->weight = rl_xmalloc(sizeof(float) * (size_t)n);
    d->train_idx = rl_xmalloc(sizeof(int) * (size_t)n);
    d->val_idx = rl_xmalloc(sizeof(int) * (size_t)n);
    d->ntrain = d->nval = 0;
    for (int64_t i = 0; i < n; i++) {
        int k;
        CHECK_OK(trn_seqs_add(&d->seqs, t, demos[i].turns, demos[i].n_turns, demos[i].response,
                              o->all_turns ? CHAT_TRAIN_ALL_ASSISTANT : CHAT_TRAIN_LAST_ASSISTANT, max_len, &k),
                 "record %lld", (long long)demos[i].record);
        d->weight[k] = (float)demos[i].weight;
        if (o->val_fraction > 0 && fb_is_heldout(&set.records[demos[i].record], o->val_fraction, o->seed))
            d->val_idx[d->nval++] = k;
        else
            d->train_idx[d->ntrain++] = k;
    }
    free(demos);
    fb_set_free(&set);
    CHECK(d->ntrain > 0, "every demonstration fell in the validation split; lower --val-fraction");
    if (d->seqs.n_cut)
        rl_warn("%d of %d demonstrations were longer than %d tokens (--seq): %d lost the start of their prompt, %d the end of their response\n"
                "  raise --seq (up to the model's context) to keep them whole",
                d->seqs.n_cut, d->seqs.n, max_len, d->seqs.n_cut_prompt, d->seqs.n_cut_response);
}

int sft_batch(const trn_seqs *s, const float *seq_weight, const int *idx, int B, int *inputs, int *targets, float *w) {
    int T = trn_batch_lm(s, idx, B, inputs, targets, w);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) w[(size_t)b * T + t] *= seq_weight[idx[b]];
    return T;
}

/* Token-mean validation loss over every held-out sequence. */
/* Token-weighted held-out loss. Collective: under MPI rank r takes the
 * batches c with c % world == r and the (loss x weight, weight) sums are
 * all-reduced, so every rank gets the same global mean. */
static double evaluate(gpt_model *m, const sft_data *d, int B, int *in, int *tg, float *w, int *idx) {
    double ls = 0, ws = 0;
    int rank = dist_rank(), world = dist_world();
    for (int s = 0, c = 0; s < d->nval; s += B, c++) {
        if (c % world != rank) continue;
        int nb = d->nval - s < B ? d->nval - s : B;
        memcpy(idx, d->val_idx + s, sizeof(int) * (size_t)nb);
        int T = sft_batch(&d->seqs, d->weight, idx, nb, in, tg, w);
        float l = gpt_forward(m, in, tg, w, nb, T);
        ls += (double)l * m->weight_sum;
        ws += m->weight_sum;
    }
    if (world > 1) {
        double red[2] = {ls, ws};
        CHECK_OK(dist_allreduce_sum_f64(red, 2), "summing the held-out loss over ranks");
        ls = red[0]; ws = red[1];
    }
    return ws > 0 ? ls / ws : NAN;
}

static void save(const sft_opts *o, const gpt_model *m, const char *tid, long long step, const rl_rng *rng) {
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "lm");
    ckpt_meta_set(&meta, "trainer", "sft");
    ckpt_meta_set(&meta, "base", o->model.path && o->model.path[0] ? o->model.path : "(fresh)");
    ckpt_train_state st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.rng = *rng;
    if (dist_is_root()) CHECK_OK(ckpt_save_meta(o->out, m, tid, NULL, &st, &meta), "could not write the checkpoint %s (disk full? directory missing?)", o->out);
    CHECK_OK(dist_barrier(), "waiting for rank 0's checkpoint");
}

int sft_run(const sft_opts *o_in) {
    /* data parallel under mpirun (src/dist): rank 0 alone talks, logs and writes */
    int rank = dist_rank(), world = dist_world(), root = rank == 0;
    sft_opts oq = *o_in;
    oq.quiet = o_in->quiet || !root;
    const sft_opts *o = &oq;
    dist_watchdog(TRN_DIST_TIMEOUT);
    const ops_table *ops = ops_get(o->kernels);
    CHECK(ops, "unknown kernels '%s' (use fast or ref)", o->kernels);
    CHECK(o->data || o->records, "give --data FILE or --records FILE");
    char tid[65];
    tok_tokenizer *t = trn_open_tokenizer(o->tokenizer, tid);
    int B = o->batch;
    gpt_model m;
    int T = trn_open_model(&m, &o->model, t, tid, B, o->seq, ops, "lm", NULL);
    sft_data d;
    /* sequences of T+1 tokens give T (input, target) positions */
    load_data(o, t, T + 1, &d);
    /* --batch is per rank: a micro-batch takes B x world sequences of one shuffled order */
    optim_schedule sch;
    long long steps = trn_plan_steps(d.ntrain, (long long)B * o->accum * world, o->steps, o->epochs, o->warmup, 20, 100,
                                     o->lr, o->min_lr_frac, &sch);
    dist_dp dp; /* one process: exactly optim_clip_grad_norm + optim_adamw_step */
    trn_dp_setup(&dp, &m, o->weight_decay);
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, root ? o->log_path : NULL, 0), "cannot open the metrics log");
    if (!o->quiet)
        rl_info("sft: L%d NH%d C%d V%d, %.2fM params; %d train / %d val demonstrations, %lld steps of %d x %d (T <= %d)",
                m.cfg.L, m.cfg.NH, m.cfg.C, m.cfg.V, m.num_params / 1e6, d.ntrain, d.nval, steps, o->accum, B, T);
    if (!o->quiet && world > 1) rl_info("data parallel: %d ranks x --batch %d, %d threads per rank", world, B, ops_threads());

    size_t BT = (size_t)B * T;
    int *in = rl_xmalloc(sizeof(int) * BT), *tg = rl_xmalloc(sizeof(int) * BT), *idx = rl_xmalloc(sizeof(int) * (size_t)B);
    float *w = rl_xmalloc(sizeof(float) * BT);
    int *order = rl_xmalloc(sizeof(int) * (size_t)d.ntrain);
    memcpy(order, d.train_idx, sizeof(int) * (size_t)d.ntrain);
    rl_rng rng;
    rl_rng_seed(&rng, o->seed ^ 0x5f7ULL);
    rl_rng_shuffle_int(&rng, order, d.ntrain);
    int cursor = 0;
    trn_sigint_install();
    rl_progress bar;
    rl_progress_start(&bar, "sft", steps);
    double t_start = rl_now(), last_val = NAN, last_loss = NAN;
    long long step = 0;
    int stop = 0; /* trn_stop agreed across ranks: all stop after the same step */
    while (step < steps && !stop) {
        double t0 = rl_now();
        gpt_zero_grad(&m);
        double loss = 0, toks = 0;
        for (int a = 0; a < o->accum; a++) {
            /* B x world sequences of one order; this rank keeps every world-th */
            for (int b = 0, k = 0; b < B * world; b++) {
                if (cursor == d.ntrain) { cursor = 0; rl_rng_shuffle_int(&rng, order, d.ntrain); }
                int u = order[cursor++];
                if (b % world == rank) idx[k++] = u;
            }
            int Tb = sft_batch(&d.seqs, d.weight, idx, B, in, tg, w);
            loss += gpt_forward(&m, in, tg, w, B, Tb);
            toks += m.weight_sum;
            gpt_backward(&m);
        }
        loss /= o->accum;
        /* each rank's gradient is the token-weighted mean over its sequences;
         * their mean over ranks (as DDP does), global-norm clip, one AdamW step */
        float norm, lr = optim_lr(&sch, step);
        CHECK_OK(dist_dp_step(&dp, 1.0f / o->accum, (float)o->grad_clip, lr, &norm), "data-parallel step %lld", step + 1);
        step++;
        if (world > 1) {
            double red[3] = {loss, toks, trn_stop ? 1.0 : 0.0};
            CHECK_OK(dist_allreduce_sum_f64(red, 3), "averaging the loss over ranks");
            loss = red[0] / world; toks = red[1];
            stop = red[2] > 0;
        } else stop = trn_stop;
        CHECK(isfinite(loss), "loss became %g at step %lld; lower --lr", loss, step);
        last_loss = loss;
        double dt = rl_now() - t0;
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", step);
        rl_metrics_f(&met, "loss", loss);
        rl_metrics_f(&met, "lr", lr);
        rl_metrics_f(&met, "grad_norm", norm);
        rl_metrics_f(&met, "epoch", (double)step * B * o->accum * world / d.ntrain);
        rl_metrics_f(&met, "trained_tokens_per_s", toks / dt);
        rl_metrics_f(&met, "time", rl_now() - t_start);
        rl_metrics_end(&met);
        int last = step == steps;
        if (d.nval && ((o->eval_every > 0 && step % o->eval_every == 0) || last)) {
            last_val = evaluate(&m, &d, B, in, tg, w, idx);
            rl_metrics_begin(&met);
            rl_metrics_i(&met, "step", step);
            rl_metrics_f(&met, "val_loss", last_val);
            rl_metrics_end(&met);
            if (!o->quiet && !bar.is_tty) rl_info("step %lld: val loss %.4f", step, last_val);
        }
        if (!o->quiet) rl_progress_update(&bar, step, "loss %.4f val %.4f | lr %.2e", loss, last_val, lr);
        if (o->ckpt_every > 0 && step % o->ckpt_every == 0 && !last) save(o, &m, tid, step, &rng);
    }
    if (!o->quiet) rl_progress_end(&bar);
    if (stop && d.nval) last_val = evaluate(&m, &d, B, in, tg, w, idx);
    save(o, &m, tid, step, &rng);
    if (!o->quiet)
        rl_info("%s at step %lld: train loss %.4f, val loss %.4f, %.1f s%s", o->out, step, last_loss, last_val,
                rl_now() - t_start, stop ? " (interrupted)" : "");
    int rc = stop ? 130 : 0;
    trn_sigint_restore();
    free(in); free(tg); free(idx); free(w); free(order);
    free(d.weight); free(d.train_idx); free(d.val_idx);
    trn_seqs_free(&d.seqs);
    rl_metrics_close(&met);
    dist_dp_free(&dp); /* the optimizer too */
    gpt_free(&m);
    tok_free(t);
    return rc;
}
