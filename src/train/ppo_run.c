/* ppo_run.c — the `rlhf ppo` driver (loading, resume, Ctrl-C, metrics,
 * checkpoints) and the prompts-file reader shared with `rlhf bon`. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "ppo.h"
#include "../base/log.h"
#include "../model/checkpoint.h"
#include "common.h"
#include "monitor.h"

/* ---- prompts ------------------------------------------------------------------ */

void ppo_prompts_free(ppo_prompts *p) {
    for (int i = 0; i < p->n; i++) { free(p->ids[i]); free(p->text[i]); }
    free(p->ids); free(p->len); free(p->text);
    memset(p, 0, sizeof *p);
}

static rl_status add_prompt(ppo_prompts *p, int *cap, const char *text, const tok_tokenizer *tok, int chat, int max_len,
                            const char *path, int line, int *skipped) {
    int pre[2], npre = 0, post[2], npost = 0;
    if (chat) {
        int bos = tok_special(tok, "<|bos|>"), user = tok_special(tok, "<|user|>");
        int end = tok_special(tok, "<|end|>"), asst = tok_special(tok, "<|assistant|>");
        if (bos < 0 || user < 0 || end < 0 || asst < 0)
            return rl_fail(RL_EINVAL, "the tokenizer has no chat tokens (<|bos|> <|user|> <|end|> <|assistant|>); use --raw");
        pre[npre++] = bos; pre[npre++] = user;
        post[npost++] = end; post[npost++] = asst;
    } else {
        int sep = tok_special(tok, "<|endoftext|>");
        if (sep < 0) sep = tok_special(tok, "<|bos|>");
        if (sep >= 0) pre[npre++] = sep;
    }
    int *ids = malloc(sizeof(int) * 2), n = 0;
    if (!ids) return rl_fail(RL_ENOMEM, "out of memory");
    memcpy(ids, pre, sizeof(int) * npre);
    n = npre;
    /* user text is ordinary text: a typed "<|end|>" never becomes a control token */
    rl_status st = tok_encode(tok, text, strlen(text), 0, &ids, &n);
    if (st != RL_OK) { free(ids); return st; }
    int *grown = realloc(ids, sizeof(int) * (n + npost));
    if (!grown) { free(ids); return rl_fail(RL_ENOMEM, "out of memory"); }
    ids = grown;
    memcpy(ids + n, post, sizeof(int) * npost);
    n += npost;
    if (n < 1 || n > max_len) {
        free(ids);
        if (n < 1) return rl_fail(RL_EINVAL, "%s:%d: empty prompt", path, line);
        (*skipped)++;
        return RL_OK;
    }
    if (p->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        int **a = realloc(p->ids, sizeof(int *) * *cap);
        if (a) p->ids = a;
        int *b = realloc(p->len, sizeof(int) * *cap);
        if (b) p->len = b;
        char **c = realloc(p->text, sizeof(char *) * *cap);
        if (c) p->text = c;
        if (!a || !b || !c) { free(ids); return rl_fail(RL_ENOMEM, "out of memory"); }
    }
    p->ids[p->n] = ids;
    p->len[p->n] = n;
    p->text[p->n] = strdup(text);
    p->n++;
    return RL_OK;
}

rl_status ppo_prompts_load(ppo_prompts *p, const char *path, const tok_tokenizer *tok, int chat, int max_len) {
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(RL_EIO, "cannot open the prompts file %s", path);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int lineno = 0, cap = 0, skipped = 0;
    rl_status st = RL_OK;
    while (st == RL_OK && (got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (memchr(line, 0, (size_t)got)) { st = rl_fail(RL_EINVAL, "%s:%d: NUL byte in a prompt", path, lineno); break; }
        if (line[0] == '{') {
            json_error_t err;
            json_t *o = json_loads(line, 0, &err);
            json_t *v = o ? json_object_get(o, "prompt") : NULL;
            if (!o) st = rl_fail(RL_EINVAL, "%s:%d: invalid JSON (%s)", path, lineno, err.text);
            else if (!json_is_string(v)) st = rl_fail(RL_EINVAL, "%s:%d: expected {\"prompt\": \"...\"}", path, lineno);
            else st = add_prompt(p, &cap, json_string_value(v), tok, chat, max_len, path, lineno, &skipped);
            json_decref(o);
        } else {
            st = add_prompt(p, &cap, line, tok, chat, max_len, path, lineno, &skipped);
        }
    }
    free(line);
    fclose(f);
    if (st != RL_OK) { ppo_prompts_free(p); return st; }
    if (skipped) rl_warn("%d prompts longer than %d tokens were skipped\nthey leave no room for the response; shorten them or --max-new", skipped, max_len);
    if (p->n == 0) { ppo_prompts_free(p); return rl_fail(RL_EINVAL, "%s: no usable prompts", path); }
    return RL_OK;
}

/* ---- driver ------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C kills at once */
}

static uint64_t d2u(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static double u2d(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static uint64_t run_sig(const ppo_config *c) { return (uint64_t)c->algo | (uint64_t)c->separate_value << 4 | (uint64_t)c->k << 8; }

/* Collective under MPI: rank 0 writes, the others wait at the barrier. */
static void save_all(const ppo_run_opts *o, const ppo_trainer *t, const char *tid, const char *vpath) {
    if (!dist_is_root()) { CHECK_OK(dist_barrier(), "waiting for rank 0's checkpoint"); return; }
    ckpt_train_state ts;
    memset(&ts, 0, sizeof ts);
    ts.step = t->step;
    ts.rng = t->rng;
    ts.extra[0] = d2u(t->klc.beta);
    ts.extra[1] = t->cursor;
    ts.extra[2] = run_sig(&t->c);
    ts.extra[3] = t->c.seed;
#ifdef CKPT_META_MAX
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "lm");
    ckpt_meta_set(&meta, "trainer", ppo_algo_name(t->c.algo));
    ckpt_meta_set_f(&meta, "rl.kl_beta", t->klc.beta);
    if (strlen(o->policy_path) < 256) ckpt_meta_set(&meta, "base", o->policy_path);
    CHECK_OK(ckpt_save_meta(o->out_path, t->policy, tid, t->opt, &ts, &meta), "could not write %s", o->out_path);
    if (t->value) {
        ckpt_meta_set(&meta, "kind", "value");
        CHECK_OK(ckpt_save_meta(vpath, t->value, tid, t->vopt, &ts, &meta), "could not write %s", vpath);
    }
#else
    CHECK_OK(ckpt_save(o->out_path, t->policy, tid, t->opt, &ts), "could not write %s", o->out_path);
    if (t->value) CHECK_OK(ckpt_save(vpath, t->value, tid, t->vopt, &ts), "could not write %s", vpath);
#endif
    if (o->snapshot_dir) {
        /* weights + step only (no AdamW moments: a third of the size); a snapshot is a policy to evaluate, not to resume */
        CHECK(mkdir(o->snapshot_dir, 0777) == 0 || errno == EEXIST, "cannot create the snapshot directory %s", o->snapshot_dir);
        char sp[4096];
        snprintf(sp, sizeof sp, "%s/step-%06lld.ckpt", o->snapshot_dir, t->step);
#ifdef CKPT_META_MAX
        ckpt_meta_set(&meta, "kind", "lm");
        CHECK_OK(ckpt_save_meta(sp, t->policy, tid, NULL, &ts, &meta), "could not write %s", sp);
#else
        CHECK_OK(ckpt_save(sp, t->policy, tid, NULL, &ts), "could not write %s", sp);
#endif
    }
    CHECK_OK(dist_barrier(), "waiting for rank 0's checkpoint");
}

/* ---- monitors: the best checkpoint of --early-stop (issue 8) ---------------- */
/* OUT.best: the policy alone (no optimizer, no value network), an ordinary LM
 * checkpoint written atomically, with the step, KL and smoothed gold in its
 * metadata. One process only (ppo_run refuses --early-stop under mpirun). */
static void save_best(const ppo_run_opts *o, const ppo_trainer *t, const char *tid, const char *path, double gold, double kl,
                      long long step) {
#ifdef CKPT_META_MAX
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "lm");
    ckpt_meta_set(&meta, "trainer", ppo_algo_name(t->c.algo));
    if (strlen(o->policy_path) < 256) ckpt_meta_set(&meta, "base", o->policy_path);
    ckpt_meta_set_f(&meta, "rl.best_step", (double)step);
    ckpt_meta_set_f(&meta, "rl.best_gold", gold);
    ckpt_meta_set_f(&meta, "rl.best_kl", kl);
    CHECK_OK(ckpt_save_meta(path, t->policy, tid, NULL, NULL, &meta), "could not write %s", path);
#else
    (void)o; (void)gold; (void)kl; (void)step;
    CHECK_OK(ckpt_save(path, t->policy, tid, NULL, NULL), "could not write %s", path);
#endif
}

/* ---- monitors: greedy answers to held-out prompts scored by the gold (issue 8) ---- */
typedef struct {
    ppo_prompts pr;
    sampler_ws ws;
    reward_fn *gold;     /* planned for E rows of up to Te tokens */
    int E, Te;
    const int **rp;
    reward_item *items;  /* (E) */
    float *score;        /* (E) */
} ppo_eval;

static void eval_open(ppo_eval *e, const ppo_run_opts *o, const tok_tokenizer *tok, gpt_model *pol, int maxT, int max_new) {
    memset(e, 0, sizeof *e);
    CHECK_OK(ppo_prompts_load(&e->pr, o->eval_prompts, tok, o->chat, maxT - 1), "reading the eval prompts");
    int maxp = 0;
    for (int i = 0; i < e->pr.n; i++) if (e->pr.len[i] > maxp) maxp = e->pr.len[i];
    e->Te = ppo_plan_T(&pol->cfg, maxp, max_new);
    e->E = e->pr.n < 64 ? e->pr.n : 64; /* rows decoded together */
    CHECK_OK(sampler_ws_init(&e->ws, pol, e->E, max_new), "planning the eval sampler");
    CHECK_OK(reward_open(&e->gold, o->gold_spec, tok, e->E, e->Te, NULL), "opening the gold reward '%s'", o->gold_spec);
    e->rp = malloc(sizeof(int *) * e->E);
    e->items = malloc(sizeof(reward_item) * e->E);
    e->score = malloc(sizeof(float) * e->E);
    CHECK(e->rp && e->items && e->score, "out of memory");
}

static void eval_close(ppo_eval *e) {
    if (!e->E) return;
    ppo_prompts_free(&e->pr);
    sampler_ws_free(&e->ws);
    reward_close(e->gold);
    free(e->rp); free(e->items); free(e->score);
    memset(e, 0, sizeof *e);
}

/* Greedy answers of the current policy to every eval prompt: mean gold (for
 * sim: gold, the accuracy over calculator prompts) and the sycophancy rate
 * (sim: only; NAN when no prompt suggested a wrong answer). */
static void eval_run(ppo_eval *e, gpt_model *pol, int max_new, const int *stops, double *gold, double *syc) {
    sampler_opts so;
    sampler_opts_default(&so);
    so.max_tokens = max_new;
    so.temperature = 0; /* greedy: the answer a user gets */
    for (int i = 0; i < 4; i++) so.stop_tokens[i] = stops[i];
    double g = 0;
    long ng = 0, nw = 0, ns = 0;
    for (int p0 = 0; p0 < e->pr.n; p0 += e->E) {
        int n = e->pr.n - p0 < e->E ? e->pr.n - p0 : e->E;
        for (int i = 0; i < n; i++) e->rp[i] = e->pr.ids[p0 + i];
        CHECK_OK(sampler_generate_ws(pol, &e->ws, e->rp, e->pr.len + p0, n, &so, NULL, NULL), "eval sampling");
        const sampler_result *res = &e->ws.res;
        for (int i = 0; i < n; i++)
            e->items[i] = (reward_item){e->rp[i], e->pr.len[p0 + i], res->tokens + (size_t)i * res->cap, res->len[i]};
        CHECK_OK(reward_score(e->gold, e->items, n, e->score, NULL), "scoring the eval answers");
        reward_sim_counts c;
        int sim = reward_last_sim_counts(e->gold, &c);
        for (int i = 0; i < n; i++) g += e->score[i];
        if (sim) { ng += c.n_items; nw += c.n_wrong_suggestion; ns += c.n_sycophantic; }
        else ng += n;
    }
    *gold = ng > 0 ? g / ng : NAN;
    *syc = nw > 0 ? (double)ns / nw : NAN;
}

static void log_best(rl_metrics *met, long long step, long long best_step, double best_gold, double best_kl) {
    rl_metrics_begin(met);
    rl_metrics_s(met, "event", "best");
    rl_metrics_i(met, "step", step);
    rl_metrics_i(met, "best_step", best_step);
    rl_metrics_f(met, "best_gold", best_gold);
    rl_metrics_f(met, "best_kl", best_kl);
    rl_metrics_end(met);
}

static void init_opt(optim_adamw *opt, gpt_model *m, double wd) {
    optim_group g[GPT_NUM_TENSORS];
    int ng = gpt_param_groups(m, g, 0);
    CHECK_OK(optim_adamw_init(opt, m->num_params, g, ng, 0.9f, 0.95f, 1e-8f, (float)wd), "optimizer");
}

int ppo_run(const ppo_run_opts *o_in) {
    /* data parallel under mpirun (src/dist): rank 0 alone talks, logs and writes */
    int world = dist_world(), root = dist_is_root();
    ppo_run_opts oq = *o_in;
    oq.quiet = o_in->quiet || !root;
    const ppo_run_opts *o = &oq;
    dist_watchdog(TRN_DIST_TIMEOUT);
    ppo_config c = o->c;
    tok_tokenizer *tok = NULL;
    CHECK_OK(tok_load(&tok, o->tokenizer_path), "loading the tokenizer %s", o->tokenizer_path);
    char tid[65];
    tok_identity(tok, tid);
    ckpt_info pinfo;
    CHECK_OK(ckpt_peek(o->policy_path, &pinfo), "reading the policy %s", o->policy_path);
    CHECK(!pinfo.tok_id[0] || !strcmp(pinfo.tok_id, tid), "%s was trained with another tokenizer; pass the right --tokenizer",
          o->policy_path);
    CHECK(pinfo.cfg.V == tok_vocab_size(tok), "the tokenizer has %d ids, the policy %d", tok_vocab_size(tok), pinfo.cfg.V);
    int end = tok_special(tok, "<|end|>"), sep = tok_special(tok, "<|endoftext|>");
    if (sep < 0) sep = tok_special(tok, "<|bos|>");
    c.stop_tokens[0] = end;
    c.stop_tokens[1] = sep;
    ppo_prompts pr;
    CHECK_OK(ppo_prompts_load(&pr, o->prompts_path, tok, o->chat, pinfo.cfg.maxT - 1), "reading the prompts");
    int maxp = 0;
    for (int i = 0; i < pr.n; i++) if (pr.len[i] > maxp) maxp = pr.len[i];
    int Tp = ppo_plan_T(&pinfo.cfg, maxp, c.max_new);
    int R = c.prompts_per_step * c.k;
    if (c.minibatch > R) c.minibatch = R;
    char vpath[4096];
    snprintf(vpath, sizeof vpath, "%s.value", o->out_path);
    gpt_model pol, ref, val;
    optim_adamw opt, vopt;
    memset(&val, 0, sizeof val);
    memset(&vopt, 0, sizeof vopt);
    ckpt_info info;
    const char *src = o->resume ? o->out_path : o->policy_path;
    CHECK_OK(ckpt_load(src, &pol, c.minibatch, Tp, NULL, o->resume ? &opt : NULL, 0.9f, 0.95f, 1e-8f, (float)c.weight_decay, 0, &info),
             "loading the policy %s%s", src, o->resume ? " to resume (no checkpoint yet? drop --resume)" : "");
    if (o->resume) {
        CHECK(info.has_train && info.has_optim, "%s has no training state to resume from", src);
        CHECK(info.train.extra[2] == run_sig(&c) && info.train.extra[3] == c.seed,
              "%s was written by a run with other settings (algo/value/k/seed); resume with the same flags", src);
        CHECK(pol.cfg.V == pinfo.cfg.V && pol.cfg.C == pinfo.cfg.C && pol.cfg.L == pinfo.cfg.L,
              "%s is not a fine-tune of %s", src, o->policy_path);
    } else {
        init_opt(&opt, &pol, c.weight_decay);
    }
    CHECK_OK(ckpt_load(o->policy_path, &ref, c.minibatch, Tp, NULL, NULL, 0, 0, 0, 0, 0, NULL), "loading the reference");
    int use_value = c.algo == PPO_ALGO_PPO && c.separate_value;
    if (use_value) {
        const char *vsrc = o->resume ? vpath : o->value_init ? o->value_init : o->policy_path;
        ckpt_info vinfo;
        CHECK_OK(ckpt_peek(vsrc, &vinfo), "reading the value network %s", vsrc);
        CHECK(vinfo.cfg.V == pinfo.cfg.V && vinfo.cfg.maxT >= Tp, "value network %s: vocabulary %d (policy %d), context %d (need %d)", vsrc,
              vinfo.cfg.V, pinfo.cfg.V, vinfo.cfg.maxT, Tp);
        CHECK_OK(ckpt_load(vsrc, &val, c.minibatch, Tp, NULL, o->resume ? &vopt : NULL, 0.9f, 0.95f, 1e-8f, (float)c.weight_decay, 0, NULL),
                 "loading the value network %s", vsrc);
        if (!o->resume) init_opt(&vopt, &val, c.weight_decay);
    }
    reward_fn *rw = NULL;
    reward_agg agg = {o->aggregate, o->alpha};
    CHECK_OK(reward_open(&rw, o->reward_spec, tok, R, Tp, &agg), "opening the reward '%s'", o->reward_spec);
    ppo_trainer t;
    CHECK_OK(ppo_init(&t, &c, &pol, &opt, &ref, use_value ? &val : NULL, use_value ? &vopt : NULL, rw,
                      (const int *const *)pr.ids, pr.len, pr.n),
             "setting up %s", ppo_algo_name(c.algo));
    if (o->resume) {
        t.step = info.train.step;
        t.rng = info.train.rng;
        t.klc.beta = u2d(info.train.extra[0]);
        t.cursor = info.train.extra[1];
        if (root) rl_info("resuming %s at step %lld (KL coefficient %.4g)", src, t.step, t.klc.beta);
    }
    /* more than one rank: gradients averaged, the same AdamW step everywhere
     * (the optimizers move into dp/vdp, which free them) */
    dist_dp dp, vdp;
    if (world > 1) {
        dist_dp_opts dpo = {0, 0, 0};
        CHECK_OK(dist_dp_init_gpt(&dp, &pol, &dpo), "data-parallel set-up");
        CHECK_OK(dist_dp_adamw_adopt(&dp, &opt), "optimizer");
        t.dp = &dp;
        t.opt = (optim_adamw *)dist_dp_adamw(&dp);
        if (use_value) {
            CHECK_OK(dist_dp_init_gpt(&vdp, &val, &dpo), "data-parallel set-up (value network)");
            CHECK_OK(dist_dp_adamw_adopt(&vdp, &vopt), "optimizer (value network)");
            t.vdp = &vdp;
            t.vopt = (optim_adamw *)dist_dp_adamw(&vdp);
        }
        t.dist_debug = o->dist_debug;
        if (!o->quiet)
            rl_info("data parallel: %d ranks x %d prompts x %d samples per step, %d threads per rank", world, c.prompts_per_step, c.k,
                    ops_threads());
    }
    if (!o->quiet)
        rl_info("%s: %d prompts, %d x %d rollouts/step, up to %d new tokens, reward: %s", ppo_algo_name(c.algo), pr.n,
                c.prompts_per_step, c.k, c.max_new, reward_describe(rw));
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, root ? o->log_path : NULL, o->resume), "cannot open the metrics log %s", o->log_path);
    /* ---- monitors (issue 8): rank 0 measures its own rollout; warnings go to stderr and the log ---- */
    diag_config dcfg = o->diag;
    if (dcfg.patience < 1) diag_config_default(&dcfg); /* opts zeroed by a caller that never set thresholds */
    dcfg.print = root && dcfg.print;
    trn_monitor mon;
    CHECK(!o->early_stop || (o->gold_spec && o->gold_spec[0]), "--early-stop needs --gold (a gold or held-out reward to keep the best checkpoint by)");
    CHECK(!o->early_stop || world == 1, "--early-stop runs in one process (not under mpirun)");
    CHECK_OK(trn_mon_init(&mon, &dcfg, &met, tok, rw, root ? o->gold_spec : NULL, R, Tp), "opening the gold reward '%s'",
             o->gold_spec ? o->gold_spec : "");
    if (root && o->gold_spec && o->gold_spec[0] && !o->quiet) rl_info("gold: %s", reward_describe(mon.gold));
    CHECK(!o->eval_prompts || (o->gold_spec && o->gold_spec[0]), "--eval-prompts needs --gold (the reward that grades the answers)");
    ppo_eval ev;
    memset(&ev, 0, sizeof ev);
    int use_eval = root && o->eval_prompts && o->eval_every > 0;
    if (use_eval) eval_open(&ev, o, tok, &pol, pinfo.cfg.maxT, c.max_new);
    char bpath[4096];
    snprintf(bpath, sizeof bpath, "%s.best", o->out_path);
    double best_gold = -INFINITY, best_kl = NAN;
    long long best_step = -1, since_best = 0;
    const char *stop_why = NULL;
    /* a rollout measures the policy BEFORE its update: keep that policy's weights to save it if it is the best */
    float *snap = NULL, *cur = NULL;
    if (o->early_stop) {
        snap = malloc(sizeof(float) * pol.num_params);
        cur = malloc(sizeof(float) * pol.num_params);
        CHECK(snap && cur, "out of memory");
    }
    if (use_eval && t.step == 0) {
        /* the starting policy's held-out gold: the baseline every later value is compared with */
        diag_step d0;
        diag_step_clear(&d0);
        eval_run(&ev, &pol, c.max_new, c.stop_tokens, &d0.gold, &d0.sycophancy);
        diag_update(&mon.dm, 0, &d0);
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", 0);
        if (isfinite(d0.gold)) rl_metrics_f(&met, "gold", d0.gold);
        if (isfinite(d0.sycophancy)) rl_metrics_f(&met, "sycophancy", d0.sycophancy);
        rl_metrics_i(&met, "eval", 1);
        rl_metrics_end(&met);
        if (o->early_stop && mon.dm.have_gold) {
            best_gold = mon.dm.gold_ema;
            best_step = 0;
            best_kl = 0;
            save_best(o, &t, tid, bpath, best_gold, best_kl, 0);
            log_best(&met, 0, 0, best_gold, best_kl);
        }
        if (!o->quiet) rl_info("held-out gold of the starting policy: %.4f (%d prompts, greedy)", d0.gold, ev.pr.n);
    }
    g_stop = 0;
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);
    struct sigaction old_usr1;
    sigaction(SIGUSR1, &sa, &old_usr1); /* mpirun forwards SIGUSR1 to the ranks: a clean stop */
    rl_progress bar;
    if (!o->quiet) rl_progress_start(&bar, ppo_algo_name(c.algo), o->steps);
    int interrupted = 0;
    while (t.step < o->steps) {
        ppo_stats st;
        int abandoned = 0;
        if (snap) memcpy(snap, pol.params, sizeof(float) * pol.num_params);
        CHECK_OK(ppo_step(&t, &st, &g_stop, &abandoned), "step %lld", t.step);
        if (abandoned) { interrupted = 1; break; }
        /* ---- monitors (issue 8) ---- */
        diag_step ds;
        diag_step_clear(&ds);
        ds.kl = st.kl;
        ds.proxy = st.reward_mean;
        ds.entropy = st.entropy;
        double gold_rollout = NAN, syc_rollout = NAN;
        int evaluated = 0;
        if (root) {
            CHECK_OK(trn_mon_rollout(&mon, t.items, t.score, t.R, &ds), "monitors at step %lld", t.step);
            if (use_eval) {
                /* the gold series is the greedy held-out one, every eval_every iterations, of the updated policy */
                gold_rollout = ds.gold;
                syc_rollout = ds.sycophancy;
                ds.gold = ds.sycophancy = NAN;
                if (t.step % o->eval_every == 0) {
                    eval_run(&ev, &pol, c.max_new, c.stop_tokens, &ds.gold, &ds.sycophancy);
                    evaluated = 1;
                }
            }
            int fired0 = mon.dm.nfired[DIAG_PROXY_GOLD] + mon.dm.nfired[DIAG_OVEROPT_PEAK];
            diag_update(&mon.dm, t.step, &ds);
            if (o->early_stop && isfinite(ds.gold)) {
                /* the smoothed gold (the divergence monitor's EMA) decides the best checkpoint */
                if (evaluated && mon.dm.gold_ema > best_gold) {
                    /* measured on the current (updated) policy: save it as it is */
                    best_gold = mon.dm.gold_ema;
                    best_step = t.step;
                    best_kl = st.kl;
                    since_best = 0;
                    save_best(o, &t, tid, bpath, best_gold, best_kl, t.step);
                    log_best(&met, t.step, best_step, best_gold, best_kl);
                } else if (!evaluated && mon.dm.have_gold && mon.dm.gold_ema > best_gold) {
                    best_gold = mon.dm.gold_ema;
                    best_step = t.step - 1; /* iterations done before this rollout */
                    best_kl = st.kl;
                    since_best = 0;
                    memcpy(cur, pol.params, sizeof(float) * pol.num_params);
                    memcpy(pol.params, snap, sizeof(float) * pol.num_params);
                    save_best(o, &t, tid, bpath, best_gold, best_kl, t.step - 1);
                    memcpy(pol.params, cur, sizeof(float) * pol.num_params);
                    log_best(&met, t.step, best_step, best_gold, best_kl);
                } else since_best++;
                if (mon.dm.nfired[DIAG_PROXY_GOLD] + mon.dm.nfired[DIAG_OVEROPT_PEAK] > fired0)
                    stop_why = mon.dm.nfired[DIAG_PROXY_GOLD] ? diag_name(DIAG_PROXY_GOLD) : diag_name(DIAG_OVEROPT_PEAK);
                else if (o->patience > 0 && since_best >= o->patience) stop_why = "patience";
            }
        }
        rl_metrics_begin(&met);
        rl_metrics_i(&met, "step", t.step);
        rl_metrics_f(&met, "reward_mean", st.reward_mean);
        rl_metrics_f(&met, "reward_std", st.reward_std);
        for (int g = 0; g < st.ngroups; g++) { char k[32]; snprintf(k, sizeof k, "reward_group_%d", g); rl_metrics_f(&met, k, st.reward_group[g]); }
        rl_metrics_f(&met, "kl", st.kl);
        rl_metrics_f(&met, "kl_k1", st.kl_k1);
        rl_metrics_f(&met, "kl_k3", st.kl_k3);
        rl_metrics_f(&met, "kl_coef", st.beta);
        rl_metrics_f(&met, "entropy", st.entropy);
        rl_metrics_f(&met, "clipfrac", st.clipfrac);
        rl_metrics_f(&met, "approx_kl", st.approx_kl);
        rl_metrics_f(&met, "pg_loss", st.pg_loss);
        rl_metrics_f(&met, "vf_loss", st.vf_loss);
        rl_metrics_f(&met, "vf_clipfrac", st.vf_clipfrac);
        rl_metrics_f(&met, "explained_var", st.explained_var);
        rl_metrics_f(&met, "resp_len", st.resp_len);
        rl_metrics_f(&met, "logp_diff", st.logp_diff);
        rl_metrics_f(&met, "t_gen", st.t_gen);
        rl_metrics_f(&met, "t_score", st.t_score);
        rl_metrics_f(&met, "t_train", st.t_train);
        rl_metrics_f(&met, "gen_tok_per_s", st.t_gen > 0 ? st.gen_tokens / st.t_gen : 0);
        /* ---- monitors (issue 8): the measured values and the monitors' own ---- */
        if (isfinite(ds.gold)) rl_metrics_f(&met, "gold", ds.gold);
        if (isfinite(ds.sycophancy)) rl_metrics_f(&met, "sycophancy", ds.sycophancy);
        if (evaluated) rl_metrics_i(&met, "eval", 1);
        if (isfinite(gold_rollout)) rl_metrics_f(&met, "gold_rollout", gold_rollout);
        if (isfinite(syc_rollout)) rl_metrics_f(&met, "sycophancy_rollout", syc_rollout);
        if (isfinite(ds.len_reward_corr)) rl_metrics_f(&met, "len_reward_corr", ds.len_reward_corr);
        if (isfinite(ds.distinct)) rl_metrics_f(&met, "distinct3", ds.distinct);
        if (isfinite(ds.above_range)) rl_metrics_f(&met, "reward_above_range", ds.above_range);
        if (isfinite(ds.ens_std)) rl_metrics_f(&met, "ensemble_std", ds.ens_std);
        diag_metrics_fields(&mon.dm, &met);
        rl_metrics_i(&met, "warnings", mon.dm.nwarnings_total);
        rl_metrics_end(&met);
        if (!o->quiet)
            rl_progress_update(&bar, t.step, "reward %.3f±%.3f kl %.3f β %.3g ent %.2f clip %.2f len %.1f | gen %.1fs score %.1fs train %.1fs",
                               st.reward_mean, st.reward_std, st.kl, st.beta, st.entropy, st.clipfrac, st.resp_len, st.t_gen,
                               st.t_score, st.t_train);
        if (o->save_every > 0 && t.step % o->save_every == 0) save_all(o, &t, tid, vpath);
        int stop = g_stop;
        if (world > 1) {
            double f = stop;
            CHECK_OK(dist_allreduce_max_f64(&f, 1), "agreeing on a stop");
            stop = f > 0;
        }
        if (stop) { interrupted = 1; break; }
        if (stop_why) {
            /* ---- monitors (issue 8): early stop ---- */
            rl_metrics_begin(&met);
            rl_metrics_s(&met, "event", "early_stop");
            rl_metrics_i(&met, "step", t.step);
            rl_metrics_f(&met, "kl", st.kl);
            rl_metrics_s(&met, "reason", stop_why);
            rl_metrics_i(&met, "best_step", best_step);
            rl_metrics_f(&met, "best_gold", best_gold);
            rl_metrics_f(&met, "best_kl", best_kl);
            rl_metrics_end(&met);
            rl_info("early stop at step %lld (KL %.3f): %s; best smoothed gold %.4f at step %lld (KL %.3f) kept in %s", t.step, st.kl,
                    stop_why, best_gold, best_step, best_kl, bpath);
            break;
        }
    }
    if (!o->quiet) rl_progress_end(&bar);
    save_all(o, &t, tid, vpath);
    sigaction(SIGINT, &old_sa, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    if (root && mon.dm.nwarnings_total && !o->quiet) rl_info("%d monitor warning%s (see the log's {\"event\":\"warning\"} rows)", mon.dm.nwarnings_total, mon.dm.nwarnings_total == 1 ? "" : "s");
    if (o->early_stop && !stop_why && best_step >= 0 && root)
        rl_info("best smoothed gold %.4f at step %lld (KL %.3f) kept in %s", best_gold, best_step, best_kl, bpath);
    trn_mon_free(&mon);
    eval_close(&ev);
    free(snap); free(cur);
    if (interrupted && root) rl_info("interrupted: saved %s at step %lld (the rollout in flight was discarded); rerun with --resume", o->out_path, t.step);
    else if (!o->quiet) rl_info("saved %s%s%s", o->out_path, use_value ? " and " : "", use_value ? vpath : "");
    rl_metrics_close(&met);
    ppo_free(&t);
    reward_close(rw);
    gpt_free(&pol); gpt_free(&ref);
    if (world > 1) { dist_dp_free(&dp); if (use_value) dist_dp_free(&vdp); }
    else { optim_adamw_free(&opt); if (use_value) optim_adamw_free(&vopt); }
    if (use_value) gpt_free(&val);
    ppo_prompts_free(&pr);
    tok_free(tok);
    return 0;
}
