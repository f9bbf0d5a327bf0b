/* sft.c — see sft.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sft.h"
#include "../base/log.h"
#include "../base/rng.h"
#include "../optim/adamw.h"

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
    if (d->seqs.n_cut_prompt || d->seqs.n_cut_response)
        rl_warn("%d of %d demonstrations were longer than --seq %d: %d lost the start of their prompt, %d the end of their response\n"
                "  raise --seq (up to the model's context) to keep them whole",
                d->seqs.n_cut_prompt + d->seqs.n_cut_response, d->seqs.n, max_len, d->seqs.n_cut_prompt, d->seqs.n_cut_response);
}

/* Token-mean validation loss over every held-out sequence. */
static double evaluate(gpt_model *m, const sft_data *d, int B, int *in, int *tg, float *w, int *idx) {
    double ls = 0, ws = 0;
    for (int s = 0; s < d->nval; s += B) {
        int nb = d->nval - s < B ? d->nval - s : B;
        memcpy(idx, d->val_idx + s, sizeof(int) * (size_t)nb);
        int T = trn_batch_lm(&d->seqs, idx, nb, in, tg, w);
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < T; t++) w[(size_t)b * T + t] *= d->weight[idx[b]];
        float l = gpt_forward(m, in, tg, w, nb, T);
        ls += (double)l * m->weight_sum;
        ws += m->weight_sum;
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
    CHECK_OK(ckpt_save_meta(o->out, m, tid, NULL, &st, &meta), "could not write the checkpoint %s (disk full? directory missing?)", o->out);
}

int sft_run(const sft_opts *o) {
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
    long long per_epoch = (d.ntrain + (long long)B * o->accum - 1) / ((long long)B * o->accum);
    long long steps = o->steps > 0 ? o->steps : (long long)ceil(o->epochs * per_epoch);
    if (steps < 1) steps = 1;
    long long warmup = o->warmup >= 0 ? o->warmup : (steps / 20 < 100 ? steps / 20 : 100);
    optim_schedule sch = {(float)o->lr, warmup, steps, (float)o->min_lr_frac};
    optim_adamw opt;
    optim_group g[GPT_NUM_TENSORS];
    CHECK_OK(optim_adamw_init(&opt, m.num_params, g, gpt_param_groups(&m, g, 0), 0.9f, 0.95f, 1e-8f, (float)o->weight_decay), "optimizer");
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, o->log_path, 0), "cannot open the metrics log");
    if (!o->quiet)
        rl_info("sft: L%d NH%d C%d V%d, %.2fM params; %d train / %d val demonstrations, %lld steps of %d x %d (T <= %d)",
                m.cfg.L, m.cfg.NH, m.cfg.C, m.cfg.V, m.num_params / 1e6, d.ntrain, d.nval, steps, o->accum, B, T);

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
    while (step < steps && !trn_stop) {
        double t0 = rl_now();
        gpt_zero_grad(&m);
        double loss = 0, toks = 0;
        for (int a = 0; a < o->accum; a++) {
            for (int b = 0; b < B; b++) {
                if (cursor == d.ntrain) { cursor = 0; rl_rng_shuffle_int(&rng, order, d.ntrain); }
                idx[b] = order[cursor++];
            }
            int Tb = trn_batch_lm(&d.seqs, idx, B, in, tg, w);
            for (int b = 0; b < B; b++)
                for (int tt = 0; tt < Tb; tt++) w[(size_t)b * Tb + tt] *= d.weight[idx[b]];
            loss += gpt_forward(&m, in, tg, w, B, Tb);
            toks += m.weight_sum;
            gpt_backward(&m);
        }
        loss /= o->accum;
        float norm = optim_clip_grad_norm(m.grads, m.num_params, 1.0f / o->accum, (float)o->grad_clip);
        float lr = optim_lr(&sch, step);
        optim_adamw_step(&opt, m.params, m.grads, lr);
        step++;
        CHECK(isfinite(loss), "loss became %g at step %lld; lower --lr", loss, step);
        last_loss = loss;
        double dt = rl_now() - t0;
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", step);
        rl_metrics_f(&met, "loss", loss);
        rl_metrics_f(&met, "lr", lr);
        rl_metrics_f(&met, "grad_norm", norm);
        rl_metrics_f(&met, "epoch", (double)step * B * o->accum / d.ntrain);
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
    if (trn_stop && d.nval) last_val = evaluate(&m, &d, B, in, tg, w, idx);
    save(o, &m, tid, step, &rng);
    if (!o->quiet)
        rl_info("%s at step %lld: train loss %.4f, val loss %.4f, %.1f s%s", o->out, step, last_loss, last_val,
                rl_now() - t_start, trn_stop ? " (interrupted)" : "");
    int rc = trn_stop ? 130 : 0;
    trn_sigint_restore();
    free(in); free(tg); free(idx); free(w); free(order);
    free(d.weight); free(d.train_idx); free(d.val_idx);
    trn_seqs_free(&d.seqs);
    rl_metrics_close(&met);
    optim_adamw_free(&opt);
    gpt_free(&m);
    tok_free(t);
    return rc;
}
