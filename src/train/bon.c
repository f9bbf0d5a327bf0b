/* bon.c — see bon.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bon.h"
#include "monitor.h"
#include "../dist/dist.h"
#include "objectives.h"
#include "ppo.h"
#include "reward.h"
#include "../base/log.h"
#include "../data/feedback.h"
#include "../model/checkpoint.h"
#include "../model/sampler.h"

int bon_argmax(const float *s, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (s[i] > s[best] || (isnan(s[best]) && !isnan(s[i]))) best = i;
    return best;
}

/* Replaces every invalid UTF-8 sequence of s by U+FFFD (a byte-level model can
 * stop inside a character; JSON needs valid UTF-8). Returns a new string. */
static char *utf8_clean(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1);
    CHECK(out, "out of memory");
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        int len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        int ok = len > 0 && i + (size_t)len <= n;
        for (int j = 1; ok && j < len; j++) ok = (p[i + j] & 0xC0) == 0x80;
        if (ok && len >= 3) {
            unsigned d = p[i + 1];
            if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) || (c == 0xF4 && d > 0x8F)) ok = 0;
        }
        if (ok) { memcpy(out + k, p + i, (size_t)len); k += (size_t)len; i += (size_t)len; }
        else { memcpy(out + k, "\xEF\xBF\xBD", 3); k += 3; i++; }
    }
    out[k] = 0;
    return out;
}

/* Response text without special tokens (malloc'd, valid UTF-8). */
static char *text_of(const tok_tokenizer *t, const int *ids, int n) {
    int *keep = malloc(sizeof(int) * (n > 0 ? n : 1)), k = 0;
    CHECK(keep, "out of memory");
    for (int i = 0; i < n; i++) if (!tok_is_special(t, ids[i])) keep[k++] = ids[i];
    char *out = NULL;
    size_t len;
    CHECK_OK(tok_decode(t, keep, k, &out, &len), "decoding a response");
    free(keep);
    char *clean = utf8_clean(out);
    free(out);
    return clean;
}

/* One answer: the JSONL line on stdout and, with --sft-out, a demo record. */
static void emit(const bon_opts *o, const char *prompt, const char *text, float best, double mean, fb_set *sft, int *n_empty) {
    int n = o->n;
    int need = rl_json_escape(NULL, 0, text) + 1, needp = rl_json_escape(NULL, 0, prompt) + 1;
    char *esc = malloc((size_t)need), *escp = malloc((size_t)needp);
    CHECK(esc && escp, "out of memory");
    rl_json_escape(esc, need, text);
    rl_json_escape(escp, needp, prompt);
    printf("{\"prompt\":%s,\"response\":%s,\"reward\":%.6g,\"mean_reward\":%.6g,\"n\":%d}\n", escp, esc, best, mean, n);
    free(esc); free(escp);
    if (o->sft_out && !text[0]) (*n_empty)++;
    if (o->sft_out && text[0]) {
        fb_record rec = fb_record_init(FB_DEMO);
        chat_turn turn = {CHAT_ROLE_USER, prompt};
        const char *resp[1] = {text};
        char rv[32], nv[16];
        snprintf(rv, sizeof rv, "%.6g", best);
        snprintf(nv, sizeof nv, "%d", n);
        fb_kv meta[2] = {{"bon.reward", rv}, {"bon.n", nv}};
        rec.source = "bon";
        rec.annotator = "rlhf-bon";
        rec.prompt = &turn;
        rec.n_prompt = 1;
        rec.responses = resp;
        rec.n_responses = 1;
        rec.meta = meta;
        rec.n_meta = 2;
        CHECK_OK(fb_set_add(sft, &rec), "adding a prompt to the SFT set");
    }
}

/* A rank's answers under MPI, serialised for the gather to rank 0:
 * per prompt the text (NUL-terminated), then the best reward (float) and the
 * mean reward (double), raw. */
typedef struct { char *data; size_t len, cap; } bon_buf;

static void bon_put(bon_buf *b, const char *text, float best, double mean) {
    size_t tl = strlen(text) + 1, need = b->len + tl + sizeof best + sizeof mean;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < need) cap *= 2;
        char *d = realloc(b->data, cap);
        CHECK(d, "out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, tl);
    memcpy(b->data + b->len + tl, &best, sizeof best);
    memcpy(b->data + b->len + tl + sizeof best, &mean, sizeof mean);
    b->len = need;
}

/* Next record of a gathered buffer; 0 when it is exhausted or malformed. */
static int bon_get(const char *buf, size_t len, size_t *at, const char **text, float *best, double *mean) {
    const char *p = buf + *at;
    size_t left = len - *at;
    const char *nul = memchr(p, 0, left);
    if (!nul || (size_t)(nul - p) + 1 + sizeof *best + sizeof *mean > left) return 0;
    *text = p;
    memcpy(best, nul + 1, sizeof *best);
    memcpy(mean, nul + 1 + sizeof *best, sizeof *mean);
    *at += (size_t)(nul - p) + 1 + sizeof *best + sizeof *mean;
    return 1;
}

int bon_run(const bon_opts *o) {
    tok_tokenizer *tok = NULL;
    CHECK_OK(tok_load(&tok, o->tokenizer_path), "loading the tokenizer %s", o->tokenizer_path);
    char tid[65];
    tok_identity(tok, tid);
    gpt_model m;
    ckpt_info info;
    CHECK_OK(ckpt_load(o->policy_path, &m, 1, 1, NULL, NULL, 0, 0, 0, 0, 0, &info), "loading the policy %s", o->policy_path);
    CHECK(!info.tok_id[0] || !strcmp(info.tok_id, tid), "%s was trained with another tokenizer; pass the right --tokenizer",
          o->policy_path);
    CHECK(m.cfg.V == tok_vocab_size(tok), "the tokenizer has %d ids, the policy %d", tok_vocab_size(tok), m.cfg.V);
    ppo_prompts pr;
    CHECK_OK(ppo_prompts_load(&pr, o->prompts_path, tok, o->chat, m.cfg.maxT - 1), "reading the prompts");
    int maxp = 0;
    for (int i = 0; i < pr.n; i++) if (pr.len[i] > maxp) maxp = pr.len[i];
    int Tp = ppo_plan_T(&m.cfg, maxp, o->max_new);
    int PB = o->batch < pr.n ? o->batch : pr.n, n = o->n, R = PB * n;
    reward_fn *rw = NULL;
    reward_agg agg = {o->aggregate, o->alpha};
    CHECK_OK(reward_open(&rw, o->reward_spec, tok, R, Tp, &agg), "opening the reward '%s'", o->reward_spec);
    sampler_ws ws;
    CHECK_OK(sampler_ws_init(&ws, &m, R, o->max_new), "planning the sampler");
    sampler_opts so;
    sampler_opts_default(&so);
    so.max_tokens = o->max_new;
    so.temperature = (float)o->temperature;
    int end = tok_special(tok, "<|end|>"), sep = tok_special(tok, "<|endoftext|>");
    if (sep < 0) sep = tok_special(tok, "<|bos|>");
    so.stop_tokens[0] = end;
    so.stop_tokens[1] = sep;
    const int **rp = malloc(sizeof(int *) * R);
    int *rl = malloc(sizeof(int) * R);
    float *score = malloc(sizeof(float) * R);
    reward_item *items = malloc(sizeof(reward_item) * R);
    CHECK(rp && rl && score && items, "out of memory");
    fb_set sft;
    fb_set_init(&sft);
    /* ---- monitors (issue 8): per block, on the chosen answers of this rank's blocks; rank 0 logs ---- */
    rl_metrics met;
    CHECK_OK(rl_metrics_open(&met, dist_is_root() ? o->log_path : NULL, 0), "cannot open the metrics log %s", o->log_path);
    diag_config dcfg;
    diag_config_default(&dcfg);
    if (o->warn_kl_budget > 0) dcfg.kl_budget = o->warn_kl_budget;
    dcfg.print = dist_is_root();
    trn_monitor mon;
    CHECK_OK(trn_mon_init(&mon, &dcfg, &met, tok, rw, dist_is_root() ? o->gold_spec : NULL, PB, Tp), "opening the gold reward '%s'",
             o->gold_spec ? o->gold_spec : "");
    reward_item *chosen = malloc(sizeof(reward_item) * PB);
    float *chosen_s = malloc(sizeof(float) * PB);
    CHECK(chosen && chosen_s, "out of memory");
    double gold_sum = 0;
    long gold_n = 0, block = 0;
    /* Data parallelism: prompt block k (PB prompts from p0 = k*PB) goes to rank
     * k % world. A block's seed depends only on p0, so every answer is the one
     * a single process would give; rank 0 prints them in prompt order. */
    int rank = dist_rank(), world = dist_world();
    double t0 = rl_now();
    bon_buf mine = {0}; /* world > 1: this rank's per-prompt records (bon_put) */
    /* mean reward (all samples), best reward, tokens; then per group (groups: rewards,
     * G > 1): the mean over all samples and the chosen answer's, summed over prompts */
    int G = reward_num_groups(rw), nsum = 3 + (G > 1 ? 2 * G : 0);
    double *sums = calloc((size_t)nsum, sizeof(double));
    CHECK(sums, "out of memory");
    int n_empty = 0;
    for (int p0 = rank * PB; p0 < pr.n; p0 += PB * world) {
        int np = pr.n - p0 < PB ? pr.n - p0 : PB, rows = np * n;
        for (int r = 0; r < rows; r++) { rp[r] = pr.ids[p0 + r / n]; rl[r] = pr.len[p0 + r / n]; }
        so.seed = o->seed + (uint64_t)p0 * 1000003u; /* a prompt's samples do not depend on --batch only through p0 */
        CHECK_OK(sampler_generate_ws(&m, &ws, rp, rl, rows, &so, NULL, NULL), "sampling");
        const sampler_result *res = &ws.res;
        for (int r = 0; r < rows; r++) {
            items[r] = (reward_item){rp[r], rl[r], res->tokens + (size_t)r * res->cap, res->len[r]};
            sums[2] += res->len[r];
        }
        CHECK_OK(reward_score(rw, items, rows, score, NULL), "scoring");
        const float *gs = G > 1 ? reward_group_scores(rw, NULL) : NULL;
        for (int p = 0; p < np; p++) {
            const float *s = score + (size_t)p * n;
            int b = bon_argmax(s, n), r = p * n + b;
            for (int g = 0; gs && g < G; g++) {
                for (int i = 0; i < n; i++) sums[3 + g] += gs[(size_t)(p * n + i) * G + g] / n;
                sums[3 + G + g] += gs[(size_t)r * G + g];
            }
            double mean = 0;
            for (int i = 0; i < n; i++) mean += s[i];
            mean /= n;
            sums[0] += mean;
            sums[1] += s[b];
            chosen[p] = items[r];
            chosen_s[p] = s[b];
            char *text = text_of(tok, res->tokens + (size_t)r * res->cap, res->len[r]);
            if (world == 1) emit(o, pr.text[p0 + p], text, s[b], mean, &sft, &n_empty);
            else bon_put(&mine, text, s[b], mean);
            free(text);
        }
        /* ---- monitors (issue 8) ---- */
        if (dist_is_root()) {
            diag_step ds;
            diag_step_clear(&ds);
            double pm = 0, cm = 0;
            for (int r = 0; r < rows; r++) pm += score[r];
            for (int p = 0; p < np; p++) cm += chosen_s[p];
            ds.kl = obj_bon_kl(n);
            ds.proxy = cm / np;
            CHECK_OK(trn_mon_rollout(&mon, chosen, chosen_s, np, &ds), "monitors");
            diag_update(&mon.dm, block, &ds);
            if (isfinite(ds.gold)) { gold_sum += ds.gold * np; gold_n += np; }
            rl_metrics_begin(&met);
            rl_metrics_i(&met, "step", block);
            rl_metrics_i(&met, "prompts", np);
            rl_metrics_f(&met, "reward_best", cm / np);
            rl_metrics_f(&met, "reward_mean", pm / rows);
            rl_metrics_f(&met, "kl", ds.kl);
            rl_metrics_f(&met, "resp_len", ds.length);
            if (isfinite(ds.len_reward_corr)) rl_metrics_f(&met, "len_reward_corr", ds.len_reward_corr);
            if (isfinite(ds.distinct)) rl_metrics_f(&met, "distinct3", ds.distinct);
            if (isfinite(ds.above_range)) rl_metrics_f(&met, "reward_above_range", ds.above_range);
            if (isfinite(ds.ens_std)) rl_metrics_f(&met, "ensemble_std", ds.ens_std);
            if (isfinite(ds.gold)) rl_metrics_f(&met, "gold", ds.gold);
            if (isfinite(ds.sycophancy)) rl_metrics_f(&met, "sycophancy", ds.sycophancy);
            diag_metrics_fields(&mon.dm, &met);
            rl_metrics_i(&met, "warnings", mon.dm.nwarnings_total);
            rl_metrics_end(&met);
        }
        block++;
    }
    if (world > 1) {
        /* Rank 0 gathers every rank's records and emits them block by block in
         * prompt order; ranks processed their blocks in increasing order. */
        uint64_t *sizes = malloc(sizeof(uint64_t) * (size_t)world);
        size_t *counts = malloc(sizeof(size_t) * (size_t)world), *displs = malloc(sizeof(size_t) * (size_t)world);
        CHECK(sizes && counts && displs, "out of memory");
        CHECK_OK(dist_allgather_u64(mine.len, sizes), "gathering the answer sizes");
        size_t total = 0;
        for (int r = 0; r < world; r++) { counts[r] = sizes[r]; displs[r] = total; total += sizes[r]; }
        char *all = rank == 0 ? malloc(total ? total : 1) : NULL;
        CHECK(rank != 0 || all, "out of memory");
        CHECK_OK(dist_gatherv_bytes(mine.data, all, counts, displs, 0), "gathering the answers");
        if (rank == 0) {
            size_t *at = calloc((size_t)world, sizeof(size_t));
            CHECK(at, "out of memory");
            for (int k = 0, p0 = 0; p0 < pr.n; k++, p0 += PB) {
                int src = k % world, np = pr.n - p0 < PB ? pr.n - p0 : PB;
                for (int p = 0; p < np; p++) {
                    const char *text;
                    float best;
                    double mean;
                    CHECK(bon_get(all + displs[src], counts[src], &at[src], &text, &best, &mean),
                          "rank %d sent fewer answers than prompts it was given", src);
                    emit(o, pr.text[p0 + p], text, best, mean, &sft, &n_empty);
                }
            }
            free(at);
        }
        free(all); free(sizes); free(counts); free(displs);
        CHECK_OK(dist_allreduce_sum_f64(sums, nsum), "summing the rewards");
    }
    free(mine.data);
    double sum_all = sums[0], sum_best = sums[1];
    long long ntok = (long long)sums[2];
    fflush(stdout);
    double dt = rl_now() - t0;
    if (n_empty && rank == 0) rl_warn("%d prompts whose best answer is empty were left out of the SFT set\nan empty demonstration teaches nothing", n_empty);
    if (o->sft_out && rank == 0) CHECK_OK(fb_export_jsonl(&sft, o->sft_out), "writing %s", o->sft_out);
    if (!o->quiet && rank == 0) {
        rl_info("best-of-%d over %d prompts: mean reward %.4f (all samples) -> %.4f (best); analytic KL log n - (n-1)/n = %.4f nats",
                n, pr.n, sum_all / pr.n, sum_best / pr.n, obj_bon_kl(n));
        for (int g = 0; G > 1 && g < G; g++)
            rl_info("  group %d: mean reward %.4f (all samples) -> %.4f (best by the aggregate)", g, sums[3 + g] / pr.n,
                    sums[3 + G + g] / pr.n);
        rl_info("%lld tokens in %.2f s (%.0f tokens/s, batch %d rows x %d ranks)%s%s", ntok, dt, ntok / (dt > 0 ? dt : 1e-9), R, world,
                o->sft_out ? "; SFT set: " : "", o->sft_out ? o->sft_out : "");
    }
    if (gold_n && rank == 0 && !o->quiet)
        rl_info("gold of the chosen answers (%s): %.4f", reward_describe(mon.gold), gold_sum / gold_n);
    trn_mon_free(&mon);
    rl_metrics_close(&met);
    free(chosen); free(chosen_s);
    fb_set_free(&sft);
    free(sums);
    free(rp); free(rl); free(score); free(items);
    sampler_ws_free(&ws);
    reward_close(rw);
    ppo_prompts_free(&pr);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}
