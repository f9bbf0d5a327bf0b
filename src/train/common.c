/* common.c — see common.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "../base/log.h"
#include "../serve/store.h"
#include "../align/reliability.h"
#include "../dist/dist.h"

void trn_seqs_init(trn_seqs *s) { memset(s, 0, sizeof *s); }

void trn_seqs_free(trn_seqs *s) {
    free(s->off); free(s->ids); free(s->train);
    memset(s, 0, sizeof *s);
}

static rl_status grow(trn_seqs *s, int64_t need) {
    if (s->n + 2 > s->ncap) {
        int nc = s->ncap ? s->ncap * 2 : 256;
        int64_t *o = realloc(s->off, sizeof(int64_t) * (size_t)nc);
        if (!o) return rl_fail(RL_ENOMEM, "out of memory for %d sequences", nc);
        if (s->ncap == 0) o[0] = 0;
        s->off = o; s->ncap = nc;
    }
    if (s->total + need > s->cap) {
        int64_t nc = s->cap ? s->cap * 2 : 1 << 16;
        while (nc < s->total + need) nc *= 2;
        int *ids = realloc(s->ids, sizeof(int) * (size_t)nc);
        if (!ids) return rl_fail(RL_ENOMEM, "out of memory for %lld tokens", (long long)nc);
        s->ids = ids;
        uint8_t *tr = realloc(s->train, (size_t)nc);
        if (!tr) return rl_fail(RL_ENOMEM, "out of memory for %lld tokens", (long long)nc);
        s->train = tr; s->cap = nc;
    }
    return RL_OK;
}

rl_status trn_seqs_add(trn_seqs *s, const tok_tokenizer *t, const chat_turn *turns, int nturns,
                       const char *response, int which, int max_len, int *index) {
    if (max_len < 2) return rl_fail(RL_EINVAL, "max_len %d < 2", max_len);
    int nt = nturns + (response ? 1 : 0);
    chat_turn *all = malloc(sizeof(chat_turn) * (size_t)nt);
    if (!all) return rl_fail(RL_ENOMEM, "out of memory");
    memcpy(all, turns, sizeof(chat_turn) * (size_t)nturns);
    if (response) { all[nturns].role = CHAT_ROLE_ASSISTANT; all[nturns].text = response; }
    rl_status st = RL_OK;
    char *text = NULL;
    chat_segment *seg = NULL;
    int *ids = NULL, nids = 0;
    uint8_t *tr = NULL;
    size_t tlen;
    text = chat_render_alloc(all, nt, 0, &tlen);
    int nseg = text ? chat_segments(all, nt, 0, which, NULL, 0) : -1;
    if (nseg < 0) { st = rl_fail(RL_EINVAL, "invalid conversation (a role or text is missing)"); goto done; }
    seg = malloc(sizeof *seg * (size_t)(nseg + 1));
    if (!seg) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    chat_segments(all, nt, 0, which, seg, nseg);
    for (int i = 0; i < nseg; i++) {
        int before = nids;
        if (seg[i].special) {
            char name[32];
            size_t len = seg[i].end - seg[i].start;
            if (len >= sizeof name) { st = rl_fail(RL_EINTERNAL, "special segment too long"); goto done; }
            memcpy(name, text + seg[i].start, len);
            name[len] = 0;
            int id = tok_special(t, name);
            if (id < 0) { st = rl_fail(RL_EINVAL, "the tokenizer has no %s token: chat training needs a tokenizer made by 'rlhf tokenizer train' or 'import-gpt2'", name); goto done; }
            int *ni = realloc(ids, sizeof(int) * (size_t)(nids + 1));
            if (!ni) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
            ids = ni;
            ids[nids++] = id;
        } else {
            st = tok_encode(t, text + seg[i].start, seg[i].end - seg[i].start, 0, &ids, &nids);
            if (st != RL_OK) goto done;
        }
        uint8_t *nt2 = realloc(tr, (size_t)nids + 1);
        if (!nt2) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        tr = nt2;
        for (int k = before; k < nids; k++) tr[k] = (uint8_t)seg[i].train;
    }
    /* truncation: drop prompt tokens after <|bos|>, then cut the end */
    int start = 0, end = nids;
    if (nids > max_len) {
        s->n_cut++;
        int first_train = 0;
        while (first_train < nids && !tr[first_train]) first_train++;
        int excess = nids - max_len;
        int droppable = first_train - 1 > 0 ? first_train - 1 : 0; /* keep ids[0] = <|bos|> */
        int drop = excess < droppable ? excess : droppable;
        if (drop > 0) {
            memmove(ids + 1, ids + 1 + drop, sizeof(int) * (size_t)(nids - 1 - drop));
            memmove(tr + 1, tr + 1 + drop, (size_t)(nids - 1 - drop));
            end -= drop;
            s->n_cut_prompt++;
        }
        if (end > max_len) { end = max_len; s->n_cut_response++; }
    }
    int len = end - start;
    int any = 0;
    for (int k = 0; k < len; k++) any |= tr[k];
    if (!any) s->n_empty++;
    st = grow(s, len);
    if (st != RL_OK) goto done;
    memcpy(s->ids + s->total, ids, sizeof(int) * (size_t)len);
    memcpy(s->train + s->total, tr, (size_t)len);
    s->total += len;
    s->off[s->n + 1] = s->total;
    if (index) *index = s->n;
    s->n++;
done:
    free(all); free(text); free(seg); free(ids); free(tr);
    return st;
}

int trn_batch_lm(const trn_seqs *s, const int *idx, int B, int *inputs, int *targets, float *mask) {
    int T = 1;
    for (int b = 0; b < B; b++) {
        int l = trn_seq_len(s, idx[b]) - 1;
        if (l > T) T = l;
    }
    for (int b = 0; b < B; b++) {
        const int *ids = s->ids + s->off[idx[b]];
        const uint8_t *tr = s->train + s->off[idx[b]];
        int l = trn_seq_len(s, idx[b]) - 1;
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)b * T + t;
            int ok = t < l && tr[t + 1];
            inputs[k] = t < l ? ids[t] : 0;
            targets[k] = ok ? ids[t + 1] : -1;
            if (mask) mask[k] = ok ? 1.0f : 0.0f;
        }
    }
    return T;
}

int trn_batch_last(const trn_seqs *s, const int *idx, int B, int *inputs, int *pos) {
    int T = 1;
    for (int b = 0; b < B; b++) {
        int l = trn_seq_len(s, idx[b]);
        if (l > T) T = l;
    }
    for (int b = 0; b < B; b++) {
        const int *ids = s->ids + s->off[idx[b]];
        int l = trn_seq_len(s, idx[b]);
        for (int t = 0; t < T; t++) inputs[(size_t)b * T + t] = t < l ? ids[t] : 0;
        pos[b] = l - 1;
    }
    return T;
}

static int kind_allowed(const char *kinds, const char *kind) {
    size_t n = strlen(kind);
    const char *p = kinds;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, kind, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

int trn_open_model(gpt_model *m, const trn_model_src *src, const tok_tokenizer *t, const char *tok_id,
                   int max_B, int max_T, const ops_table *ops, const char *kinds, ckpt_meta *meta) {
    int V = tok_vocab_size(t);
    if (meta) memset(meta, 0, sizeof *meta);
    if (src->path && src->path[0]) {
        ckpt_info info;
        CHECK_OK(ckpt_peek(src->path, &info), "give a checkpoint written by rlhf pretrain/sft/rm/dpo/kto");
        const char *kind = ckpt_meta_kind(&info.meta);
        CHECK(kind_allowed(kinds, kind), "%s is a '%s' checkpoint; this command needs a '%s' checkpoint", src->path, kind, kinds);
        CHECK(info.cfg.V == V, "%s has a vocabulary of %d but the tokenizer has %d: use the tokenizer the model was trained with",
              src->path, info.cfg.V, V);
        CHECK(!info.tok_id[0] || !tok_id || !tok_id[0] || !strcmp(info.tok_id, tok_id),
              "%s was trained with tokenizer %.16s..., not this one (%.16s...): use the same tokenizer", src->path, info.tok_id, tok_id);
        if (max_T > info.cfg.maxT) max_T = info.cfg.maxT;
        CHECK_OK(ckpt_load(src->path, m, max_B, max_T, ops, NULL, 0, 0, 0, 0, 0, NULL), "loading %s", src->path);
        if (meta) *meta = info.meta;
    } else {
        gpt_config cfg = {0, 0, 0, V, src->context > 0 ? src->context : max_T};
        CHECK_OK(gpt_config_named(&cfg, src->config ? src->config : "tiny"), "use --config tiny, small or gpt2");
        if (src->layers > 0) cfg.L = src->layers;
        if (src->heads > 0) cfg.NH = src->heads;
        if (src->channels > 0) cfg.C = src->channels;
        if (max_T > cfg.maxT) max_T = cfg.maxT;
        CHECK_OK(gpt_init(m, &cfg, max_B, max_T, ops, src->seed), "check --layers/--heads/--channels (channels must divide by heads)");
    }
    return max_T;
}

tok_tokenizer *trn_open_tokenizer(const char *path, char tok_id[65]) {
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_load(&t, path), "give a tokenizer file from 'rlhf tokenizer train' or 'rlhf tokenizer import-gpt2'");
    tok_identity(t, tok_id);
    return t;
}

/* The feedback database: every judgement exported as JSONL into memory (the
 * same bytes `rlhf feedback export --db` writes), then imported like a file,
 * so annotators and groups come along exactly as in an export. */
static void import_db(fb_set *s, const char *path, const fb_import_opts *o, fb_import_stats *st) {
    store *db;
    store_opts so = {0};
    so.readonly = 1; /* never create or change the file a trainer reads */
    CHECK_OK(store_open(&db, path, &so), "give --db a feedback database written by 'rlhf serve' or 'rlhf annotators add'");
    char *buf = NULL;
    size_t n = 0;
    FILE *mf = open_memstream(&buf, &n);
    CHECK(mf, "out of memory reading %s", path);
    int64_t written = 0;
    rl_status r = store_export(db, STORE_EXPORT_JSONL, mf, &written, NULL);
    fclose(mf);
    store_close(db);
    CHECK_OK(r, "reading the judgements of %s", path);
    r = fb_import_mem(s, path, buf, n, FB_FMT_JSONL, o, st);
    free(buf);
    CHECK_OK(r, "the database export of %s did not import; report this", path);
}

void trn_load_records(fb_set *s, const char *path, const char *format, int skip_bad, int quiet) {
    fb_import_opts o = {skip_bad};
    fb_import_stats st;
    if (!strcmp(format, "db")) {
        import_db(s, path, &o, &st);
        if (!quiet) rl_info("%s: %lld judgements from the feedback database", path, (long long)st.lines);
    } else {
        fb_format fmt;
        CHECK(fb_format_parse(format, &fmt) == 0, "unknown format '%s' (auto, jsonl, hh, oasst)", format);
        CHECK_OK(fb_import_file(s, path, fmt, &o, &st), "fix the line or pass --skip-bad");
    }
    if (!quiet)
        for (int i = 0; i < st.n_notes; i++) rl_info("note: %s", st.notes[i]);
    if (st.bad) rl_warn("%s: skipped %lld malformed line(s); the first: %s", path, (long long)st.bad, st.first_error);
}

volatile sig_atomic_t trn_stop;
static void on_sigint(int sig) {
    (void)sig;
    trn_stop = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C kills at once */
}

void trn_sigint_install(void) {
    trn_stop = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    /* SIGUSR1 too: mpirun kills the ranks on Ctrl-C but forwards SIGUSR1, the
     * way to stop a data-parallel run cleanly (the ranks agree on the flag) */
    sigaction(SIGUSR1, &sa, NULL);
}

void trn_sigint_restore(void) { signal(SIGINT, SIG_DFL); signal(SIGUSR1, SIG_DFL); }

void trn_mean_std(const float *x, int n, double *mean, double *std) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double mu = n ? s / n : 0;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *std = n ? sqrt(ss / n) : 0;
}

long long trn_plan_steps(long long n, long long per_step, long long steps_flag, double epochs, long long warmup_flag,
                         int warm_div, int warm_cap, double lr, double min_lr_frac, optim_schedule *sch) {
    long long per_epoch = (n + per_step - 1) / per_step;
    long long steps = steps_flag > 0 ? steps_flag : (long long)ceil(epochs * per_epoch);
    if (steps < 1) steps = 1;
    long long warmup = warmup_flag >= 0 ? warmup_flag : (steps / warm_div < warm_cap ? steps / warm_div : warm_cap);
    sch->lr = (float)lr;
    sch->warmup = warmup;
    sch->total = steps;
    sch->min_frac = (float)min_lr_frac;
    return steps;
}

void trn_dp_setup(dist_dp *dp, gpt_model *m, double weight_decay) {
    optim_group g[GPT_NUM_TENSORS];
    dist_dp_opts dpo = {0, 0, 0};
    CHECK_OK(dist_dp_init_gpt(dp, m, &dpo), "data-parallel set-up"); /* rank 0's weights everywhere */
    CHECK_OK(dist_dp_adamw_init(dp, g, gpt_param_groups(m, g, 0), 0.9f, 0.95f, 1e-8f, (float)weight_decay), "optimizer");
}

void trn_apply_annotator_weights(fb_set *s, const char *path, double missing_weight, int quiet) {
    if (!path || !path[0]) return;
    align_id_weights w;
    CHECK_OK(align_id_weights_load(path, &w), "reading the annotator weights");
    align_apply_report rep;
    rl_status st = align_apply_annotator_weights(s, &w, missing_weight, &rep);
    align_id_weights_free(&w);
    CHECK_OK(st, "applying the annotator weights %s", path);
    if (quiet || dist_rank() != 0) return;
    rl_info("annotator weights %s: %d annotators in the records (%d missing from the file%s), %d ids unused; "
            "record weights %.3g..%.3g, Kish effective sample size %.1f of %lld records (%.0f%%)",
            path, rep.n_annot, rep.n_annot_missing, rep.n_annot_missing ? ", given --missing-weight" : "", rep.n_unused,
            rep.w_min, rep.w_max, rep.ess, (long long)rep.n_records, 100.0 * rep.ess / (double)rep.n_records);
    if (rep.ess < 0.5 * (double)rep.n_records)
        rl_warn("the annotator weights halve the effective sample size (ESS %.1f of %lld)\n"
                "  a few annotators carry most of the loss; consider capping the weights ('rlhf align report --cap')",
                rep.ess, (long long)rep.n_records);
}
