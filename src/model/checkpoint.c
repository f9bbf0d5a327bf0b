/* checkpoint.c — see checkpoint.h and docs/formats-model.md. */
#include <string.h>
#include <stdlib.h>
#include "checkpoint.h"
#include "../base/binfile.h"

enum { CKPT_HAS_OPTIM = 1, CKPT_HAS_TRAIN = 2 };

static rl_status put(ckpt_sink *s, const void *p, size_t n) { return s->write(s->ctx, p, n); }
static rl_status put_u32(ckpt_sink *s, uint32_t v) { return put(s, &v, 4); }
static rl_status put_u64(ckpt_sink *s, uint64_t v) { return put(s, &v, 8); }

const char *ckpt_meta_get(const ckpt_meta *m, const char *key) {
    if (!m || !key) return NULL;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->key[i], key)) return m->val[i];
    return NULL;
}

rl_status ckpt_meta_set(ckpt_meta *m, const char *key, const char *val) {
    if (!key || !*key || strlen(key) >= sizeof m->key[0])
        return rl_fail(RL_EINVAL, "checkpoint metadata key '%s' must be 1..%zu bytes", key ? key : "(null)", sizeof m->key[0] - 1);
    if (!val || strlen(val) >= sizeof m->val[0])
        return rl_fail(RL_EINVAL, "checkpoint metadata value of '%s' must be under %zu bytes", key, sizeof m->val[0]);
    int i = 0;
    while (i < m->n && strcmp(m->key[i], key)) i++;
    if (i == m->n) {
        if (m->n >= CKPT_META_MAX) return rl_fail(RL_EINVAL, "checkpoint metadata is full (%d keys)", CKPT_META_MAX);
        m->n++;
        strcpy(m->key[i], key);
    }
    strcpy(m->val[i], val);
    return RL_OK;
}

rl_status ckpt_meta_set_f(ckpt_meta *m, const char *key, double val) {
    char b[64];
    snprintf(b, sizeof b, "%.9g", val);
    return ckpt_meta_set(m, key, b);
}

int ckpt_meta_get_f(const ckpt_meta *m, const char *key, double *out) {
    const char *v = ckpt_meta_get(m, key);
    if (!v || !*v) return 0;
    char *end;
    double d = strtod(v, &end);
    if (*end) return 0;
    *out = d;
    return 1;
}

const char *ckpt_meta_kind(const ckpt_meta *m) {
    const char *k = ckpt_meta_get(m, "kind");
    return k ? k : "lm";
}

/* A table is valid when n is in range, keys are non-empty, unique and
 * NUL-terminated within their slots, and values NUL-terminated. */
static rl_status meta_validate(const ckpt_meta *m) {
    if (m->n < 0 || m->n > CKPT_META_MAX) return rl_fail(RL_EINVAL, "checkpoint metadata has %d keys (at most %d)", m->n, CKPT_META_MAX);
    for (int i = 0; i < m->n; i++) {
        size_t kl = strnlen(m->key[i], sizeof m->key[i]), vl = strnlen(m->val[i], sizeof m->val[i]);
        if (kl == 0 || kl == sizeof m->key[i] || vl == sizeof m->val[i])
            return rl_fail(RL_EINVAL, "checkpoint metadata entry %d has an empty or unterminated key/value", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->key[i], m->key[j])) return rl_fail(RL_EINVAL, "checkpoint metadata key '%s' appears twice", m->key[i]);
    }
    return RL_OK;
}

rl_status ckpt_write(ckpt_sink *s, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                     const ckpt_train_state *train) {
    return ckpt_write_meta(s, m, tok_id, opt, train, NULL);
}

rl_status ckpt_write_meta(ckpt_sink *s, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                          const ckpt_train_state *train, const ckpt_meta *meta) {
    if (meta) RL_TRY(meta_validate(meta));
    const gpt_config *c = &m->cfg;
    char tid[64] = {0};
    if (tok_id && *tok_id) {
        size_t n = strlen(tok_id);
        if (n != 64) return rl_fail(RL_EINVAL, "tokenizer identity must be 64 hex characters, got %zu", n);
        memcpy(tid, tok_id, 64);
    }
    if (opt && opt->n != m->num_params) return rl_fail(RL_EINVAL, "optimizer has %zu parameters, model %zu", opt->n, m->num_params);
    uint32_t flags = (opt ? CKPT_HAS_OPTIM : 0) | (train ? CKPT_HAS_TRAIN : 0);
    RL_TRY(put_u32(s, (uint32_t)c->L)); RL_TRY(put_u32(s, (uint32_t)c->NH)); RL_TRY(put_u32(s, (uint32_t)c->C));
    RL_TRY(put_u32(s, (uint32_t)c->V)); RL_TRY(put_u32(s, (uint32_t)c->maxT)); RL_TRY(put_u32(s, flags));
    RL_TRY(put(s, tid, 64));
    RL_TRY(put_u64(s, m->num_params));
    RL_TRY(put(s, m->params, m->num_params * sizeof(float)));
    if (opt) {
        RL_TRY(put_u64(s, (uint64_t)opt->t));
        RL_TRY(put(s, opt->m, opt->n * sizeof(float)));
        RL_TRY(put(s, opt->v, opt->n * sizeof(float)));
    }
    if (train) {
        RL_TRY(put_u64(s, (uint64_t)train->step));
        for (int i = 0; i < 4; i++) RL_TRY(put_u64(s, train->rng.s[i]));
        for (int i = 0; i < 4; i++) RL_TRY(put_u64(s, train->loader[i]));
        for (int i = 0; i < 4; i++) RL_TRY(put_u64(s, train->extra[i]));
    }
    /* version 2: metadata section, u32 count then (u32 len, key, u32 len, value) per entry */
    int n = meta ? meta->n : 0;
    RL_TRY(put_u32(s, (uint32_t)n));
    for (int i = 0; i < n; i++) {
        uint32_t kl = (uint32_t)strlen(meta->key[i]), vl = (uint32_t)strlen(meta->val[i]);
        RL_TRY(put_u32(s, kl)); RL_TRY(put(s, meta->key[i], kl));
        RL_TRY(put_u32(s, vl)); RL_TRY(put(s, meta->val[i], vl));
    }
    return RL_OK;
}

static rl_status writer_sink(void *ctx, const void *data, size_t n) { return rl_writer_write(ctx, data, n); }

rl_status ckpt_save(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                    const ckpt_train_state *train) {
    return ckpt_save_meta(path, m, tok_id, opt, train, NULL);
}

rl_status ckpt_save_meta(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                         const ckpt_train_state *train, const ckpt_meta *meta) {
    if (meta) RL_TRY(meta_validate(meta));
    rl_writer *w;
    RL_TRY(rl_writer_open(&w, path, CKPT_MAGIC, CKPT_VERSION, 0));
    ckpt_sink s = {writer_sink, w};
    rl_status st = ckpt_write_meta(&s, m, tok_id, opt, train, meta);
    if (st != RL_OK) { rl_writer_abort(w); return st; }
    return rl_writer_commit(w);
}

/* Parses the payload; on success the float arrays point into the mapping. */
typedef struct {
    ckpt_info info;
    const float *params, *m, *v;
} parsed;

static rl_status parse(const rl_mapped_file *f, const char *path, parsed *p) {
    memset(p, 0, sizeof *p);
    rl_cursor c = rl_cursor_make(f->payload, f->info.payload_bytes);
    gpt_config *cfg = &p->info.cfg;
    cfg->L = (int)rl_cursor_u32(&c); cfg->NH = (int)rl_cursor_u32(&c); cfg->C = (int)rl_cursor_u32(&c);
    cfg->V = (int)rl_cursor_u32(&c); cfg->maxT = (int)rl_cursor_u32(&c);
    uint32_t flags = rl_cursor_u32(&c);
    rl_cursor_read(&c, p->info.tok_id, 64);
    p->info.tok_id[64] = 0;
    p->info.num_params = rl_cursor_u64(&c);
    if (c.bad || cfg->L < 1 || cfg->NH < 1 || cfg->C < 1 || cfg->C % cfg->NH || cfg->V < 1 || cfg->maxT < 1 ||
        cfg->L > 1024 || cfg->C > 65536 || cfg->V > (1 << 24) || cfg->maxT > (1 << 20))
        return rl_fail(RL_EFORMAT, "%s: checkpoint config is invalid (L=%d NH=%d C=%d V=%d T=%d); the file is damaged", path,
                       cfg->L, cfg->NH, cfg->C, cfg->V, cfg->maxT);
    if (p->info.num_params != gpt_num_params(cfg))
        return rl_fail(RL_EFORMAT, "%s: checkpoint has %llu parameters but its config needs %zu; the file is damaged", path,
                       (unsigned long long)p->info.num_params, gpt_num_params(cfg));
    size_t n = (size_t)p->info.num_params;
    p->params = rl_cursor_take(&c, n * sizeof(float));
    if (flags & CKPT_HAS_OPTIM) {
        p->info.has_optim = 1;
        p->info.adam_t = (long long)rl_cursor_u64(&c);
        p->m = rl_cursor_take(&c, n * sizeof(float));
        p->v = rl_cursor_take(&c, n * sizeof(float));
    }
    if (flags & CKPT_HAS_TRAIN) {
        p->info.has_train = 1;
        p->info.train.step = (long long)rl_cursor_u64(&c);
        for (int i = 0; i < 4; i++) p->info.train.rng.s[i] = rl_cursor_u64(&c);
        for (int i = 0; i < 4; i++) p->info.train.loader[i] = rl_cursor_u64(&c);
        for (int i = 0; i < 4; i++) p->info.train.extra[i] = rl_cursor_u64(&c);
    }
    p->info.version = f->info.version;
    if (f->info.version >= 2) {
        ckpt_meta *mt = &p->info.meta;
        uint32_t nm = rl_cursor_u32(&c);
        if (!c.bad && nm > CKPT_META_MAX)
            return rl_fail(RL_EFORMAT, "%s: checkpoint metadata has %u keys (at most %d); the file is damaged", path, nm, CKPT_META_MAX);
        for (uint32_t i = 0; i < nm && !c.bad; i++) {
            uint32_t kl = rl_cursor_u32(&c);
            if (c.bad || kl == 0 || kl >= sizeof mt->key[0]) return rl_fail(RL_EFORMAT, "%s: checkpoint metadata key %u is invalid; the file is damaged", path, i);
            char key[32], val[256];
            rl_cursor_read(&c, key, kl);
            key[kl] = 0;
            uint32_t vl = rl_cursor_u32(&c);
            if (c.bad || vl >= sizeof mt->val[0]) return rl_fail(RL_EFORMAT, "%s: checkpoint metadata value %u is invalid; the file is damaged", path, i);
            rl_cursor_read(&c, val, vl);
            val[vl] = 0;
            if (c.bad) break;
            if (strlen(key) != kl || strlen(val) != vl || ckpt_meta_get(mt, key))
                return rl_fail(RL_EFORMAT, "%s: checkpoint metadata entry %u is malformed; the file is damaged", path, i);
            ckpt_meta_set(mt, key, val);
        }
    }
    if (c.bad) return rl_fail(RL_EFORMAT, "%s: checkpoint is truncated; the file is damaged, use an earlier checkpoint", path);
    if (c.left) return rl_fail(RL_EFORMAT, "%s: %zu unexpected bytes after the checkpoint data", path, c.left);
    return RL_OK;
}

rl_status ckpt_peek(const char *path, ckpt_info *info) {
    rl_mapped_file f;
    RL_TRY(rl_file_map(&f, path, CKPT_MAGIC, 1, CKPT_VERSION, "model checkpoint"));
    parsed p;
    rl_status st = parse(&f, path, &p);
    if (st == RL_OK) *info = p.info;
    rl_file_unmap(&f);
    return st;
}

rl_status ckpt_load(const char *path, gpt_model *m, int max_B, int max_T, const ops_table *ops,
                    optim_adamw *opt, float beta1, float beta2, float eps, float weight_decay,
                    int decay_embeddings, ckpt_info *info) {
    memset(m, 0, sizeof *m);
    if (opt) memset(opt, 0, sizeof *opt);
    rl_mapped_file f;
    RL_TRY(rl_file_map(&f, path, CKPT_MAGIC, 1, CKPT_VERSION, "model checkpoint"));
    parsed p;
    rl_status st = parse(&f, path, &p);
    if (st == RL_OK) st = gpt_init_empty(m, &p.info.cfg, max_B, max_T > 0 ? max_T : p.info.cfg.maxT, ops);
    if (st == RL_OK) {
        memcpy(m->params, p.params, m->num_params * sizeof(float));
        if (opt) {
            optim_group groups[GPT_NUM_TENSORS];
            int ng = gpt_param_groups(m, groups, decay_embeddings);
            st = optim_adamw_init(opt, m->num_params, groups, ng, beta1, beta2, eps, weight_decay);
            if (st == RL_OK && p.info.has_optim) {
                memcpy(opt->m, p.m, m->num_params * sizeof(float));
                memcpy(opt->v, p.v, m->num_params * sizeof(float));
                opt->t = p.info.adam_t;
            }
            if (st != RL_OK) gpt_free(m);
        }
    }
    if (st == RL_OK && info) *info = p.info;
    rl_file_unmap(&f);
    return st;
}
