/* pretrain.c — see pretrain.h. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pretrain.h"
#include "../base/check.h"
#include "../base/log.h"
#include "../base/rng.h"
#include "../data/shard.h"
#include "../model/checkpoint.h"
#include "../model/gpt.h"
#include "../optim/adamw.h"

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C kills at once */
}

/* (B, T+1) windows -> inputs (B,T) and targets (B,T) shifted by one. */
static void split_batch(const int *tok, int *in, int *tg, int B, int T) {
    for (int b = 0; b < B; b++) {
        memcpy(in + (size_t)b * T, tok + (size_t)b * (T + 1), sizeof(int) * T);
        memcpy(tg + (size_t)b * T, tok + (size_t)b * (T + 1) + 1, sizeof(int) * T);
    }
}

static float evaluate(gpt_model *m, data_loader *val, int nb, int *tok, int *in, int *tg) {
    int B = m->max_B, T = m->max_T;
    data_loader_reset(val);
    double s = 0;
    for (int i = 0; i < nb; i++) {
        CHECK_OK(data_loader_next(val, tok), "reading the validation split");
        split_batch(tok, in, tg, B, T);
        s += gpt_forward(m, in, tg, NULL, B, T);
    }
    return (float)(s / nb);
}

static void save(const pretrain_opts *o, gpt_model *m, const char *tid, optim_adamw *opt, data_loader *tl,
                 long long step, const rl_rng *rng) {
    ckpt_train_state st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.rng = *rng;
    data_loader_state(tl, st.loader);
    st.extra[0] = (uint64_t)o->batch;
    st.extra[1] = (uint64_t)o->seq;
    st.extra[2] = (uint64_t)o->accum;
    st.extra[3] = o->seed;
    CHECK_OK(ckpt_save(o->out, m, tid, opt, &st), "could not write the checkpoint %s (disk full? directory missing?)", o->out);
}

int pretrain_run(const pretrain_opts *o) {
    const ops_table *ops = ops_get(o->kernels);
    CHECK(ops, "unknown kernels '%s' (use fast or ref)", o->kernels);
    int B = o->batch, T = o->seq;
    data_loader *tl = NULL, *vl = NULL;
    CHECK_OK(data_loader_open(&tl, o->data_dir, "train", B, T, 0, 1, o->seed), "prepare data with 'rlhf data prepare'");
    if (data_loader_open(&vl, o->data_dir, "val", B, T, 0, 1, 0) != RL_OK) {
        rl_warn("no validation loss: %s\n  use more data or a larger --val-fraction in 'rlhf data prepare'", rl_error());
        vl = NULL;
    }
    int V = data_loader_vocab_size(tl);
    char tid[65];
    data_loader_identity(tl, tid);

    gpt_model m;
    optim_adamw opt;
    rl_rng rng;
    long long step = 0;
    if (o->resume) {
        ckpt_info info;
        CHECK_OK(ckpt_load(o->resume, &m, B, T, ops, &opt, (float)o->beta1, (float)o->beta2, (float)o->eps,
                           (float)o->weight_decay, o->decay_embeddings, &info), "cannot resume from %s", o->resume);
        CHECK(info.has_optim && info.has_train, "%s has no optimizer/training state (a weights-only checkpoint); start a new run instead", o->resume);
        CHECK(info.cfg.V == V, "checkpoint vocabulary %d != data vocabulary %d: the data was made with another tokenizer", info.cfg.V, V);
        CHECK(!info.tok_id[0] || !tid[0] || !strcmp(info.tok_id, tid), "checkpoint tokenizer %.16s... != data tokenizer %.16s...", info.tok_id, tid);
        CHECK(info.train.extra[0] == (uint64_t)B && info.train.extra[1] == (uint64_t)T && info.train.extra[2] == (uint64_t)o->accum &&
                  info.train.extra[3] == o->seed,
              "resume needs the same --batch %llu --seq %llu --accum %llu --seed %llu as the run that wrote the checkpoint",
              (unsigned long long)info.train.extra[0], (unsigned long long)info.train.extra[1],
              (unsigned long long)info.train.extra[2], (unsigned long long)info.train.extra[3]);
        CHECK_OK(data_loader_set_state(tl, info.train.loader), "the data changed since the checkpoint was written");
        step = info.train.step;
        rng = info.train.rng;
        CHECK(step <= o->steps, "checkpoint is at step %lld, beyond --steps %lld", step, o->steps);
    } else {
        gpt_config cfg = {0, 0, 0, V, o->context > 0 ? o->context : T};
        CHECK_OK(gpt_config_named(&cfg, o->config), "use --config tiny, small or gpt2");
        if (o->layers > 0) cfg.L = o->layers;
        if (o->heads > 0) cfg.NH = o->heads;
        if (o->channels > 0) cfg.C = o->channels;
        CHECK(T <= cfg.maxT, "--seq %d is longer than --context %d", T, cfg.maxT);
        CHECK_OK(gpt_init(&m, &cfg, B, T, ops, o->seed), "check --layers/--heads/--channels (channels must divide by heads)");
        optim_group g[GPT_NUM_TENSORS];
        CHECK_OK(optim_adamw_init(&opt, m.num_params, g, gpt_param_groups(&m, g, o->decay_embeddings), (float)o->beta1,
                                  (float)o->beta2, (float)o->eps, (float)o->weight_decay), "optimizer");
        rl_rng_seed(&rng, o->seed ^ 0x5eedULL);
    }
    long long warmup = o->warmup >= 0 ? o->warmup : (o->steps / 20 < 100 ? o->steps / 20 : 100);
    optim_schedule sch = {(float)o->lr, warmup, o->steps, (float)o->min_lr_frac};
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, o->log_path, o->resume != NULL), "cannot open the metrics log");
    const gpt_config *c = &m.cfg;
    if (!o->quiet)
        rl_info("pretrain: L%d NH%d C%d V%d T%d, %.2fM params, %d x %d x %d tokens/step, kernels %s, %d threads, BLAS core %s%s",
                c->L, c->NH, c->C, c->V, c->maxT, m.num_params / 1e6, o->accum, B, T, ops->name, ops_threads(), ops_blas_core(),
                o->resume ? ", resumed" : "");

    int *tok = rl_xmalloc(sizeof(int) * (size_t)B * (T + 1));
    int *in = rl_xmalloc(sizeof(int) * (size_t)B * T), *tg = rl_xmalloc(sizeof(int) * (size_t)B * T);
    g_stop = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    rl_progress bar;
    rl_progress_start(&bar, "pretrain", o->steps - step);
    long long start = step;
    double t_start = rl_now();
    float last_loss = NAN, last_val = NAN;
    while (step < o->steps && !g_stop && !(o->stop_after > 0 && step - start >= o->stop_after)) {
        double t0 = rl_now();
        gpt_zero_grad(&m);
        double loss = 0;
        for (int a = 0; a < o->accum; a++) {
            CHECK_OK(data_loader_next(tl, tok), "reading the training split");
            split_batch(tok, in, tg, B, T);
            loss += gpt_forward(&m, in, tg, NULL, B, T);
            gpt_backward(&m);
        }
        loss /= o->accum;
        float norm = optim_clip_grad_norm(m.grads, m.num_params, 1.0f / o->accum, (float)o->grad_clip);
        float lr = optim_lr(&sch, step);
        optim_adamw_step(&opt, m.params, m.grads, lr);
        step++;
        double dt = rl_now() - t0;
        double tps = (double)o->accum * B * T / dt;
        last_loss = (float)loss;
        CHECK(isfinite(loss), "loss became %g at step %lld; lower --lr or raise --grad-clip's strictness", loss, step);
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", step);
        rl_metrics_f(&met, "loss", loss);
        rl_metrics_f(&met, "lr", lr);
        rl_metrics_f(&met, "grad_norm", norm);
        rl_metrics_f(&met, "tokens_per_s", tps);
        rl_metrics_f(&met, "time", rl_now() - t_start);
        rl_metrics_end(&met);
        int last = step == o->steps;
        if (vl && ((o->eval_every > 0 && step % o->eval_every == 0) || last)) {
            last_val = evaluate(&m, vl, o->eval_batches, tok, in, tg);
            rl_metrics_begin(&met);
            rl_metrics_i(&met, "step", step);
            rl_metrics_f(&met, "val_loss", last_val);
            rl_metrics_end(&met);
            if (!o->quiet && !bar.is_tty) rl_info("step %lld: val loss %.4f", step, last_val);
        }
        if (!o->quiet)
            rl_progress_update(&bar, step - start, "loss %.4f val %.4f | %.0f tok/s | lr %.2e", loss, last_val, tps, lr);
        if (o->ckpt_every > 0 && step % o->ckpt_every == 0 && !last) save(o, &m, tid, &opt, tl, step, &rng);
    }
    if (!o->quiet) rl_progress_end(&bar);
    save(o, &m, tid, &opt, tl, step, &rng);
    if (!o->quiet)
        rl_info("%s at step %lld: train loss %.4f, val loss %.4f, %.1f s%s", o->out, step, last_loss, last_val,
                rl_now() - t_start, g_stop ? " (interrupted)" : "");
    signal(SIGINT, SIG_DFL);
    free(tok); free(in); free(tg);
    rl_metrics_close(&met);
    optim_adamw_free(&opt);
    gpt_free(&m);
    data_loader_close(tl);
    data_loader_close(vl);
    return g_stop ? 130 : 0;
}
