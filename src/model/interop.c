/* interop.c — see interop.h and docs/interop.md. */
#include "interop.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "safetensors.h"
#include "../base/binfile.h"

/* Limits on a config read from a foreign file (the same as checkpoint.c). */
static rl_status check_cfg(const gpt_config *c, const char *path) {
    if (c->L < 1 || c->NH < 1 || c->C < 1 || c->V < 1 || c->maxT < 1 || c->L > 1024 || c->C > 65536 ||
        c->V > (1 << 24) || c->maxT > (1 << 20) || c->NH > c->C || c->C % c->NH)
        return rl_fail(RL_EFORMAT, "%s: GPT-2 config L=%d NH=%d C=%d V=%d maxT=%d is invalid or out of range (C must be a multiple of NH)",
                       path, c->L, c->NH, c->C, c->V, c->maxT);
    return RL_OK;
}

/* dst (rows, cols) = transpose of src (cols, rows). */
static void transpose(float *dst, const float *src, size_t rows, size_t cols) {
    for (size_t i = 0; i < cols; i++)
        for (size_t j = 0; j < rows; j++) dst[j * cols + i] = src[i * rows + j];
}

/* ---- safetensors ------------------------------------------------------------ */

/* One GPT-2 tensor as HF names it: per-layer ("h.%d.<suffix>") or global. */
typedef struct {
    const char *suffix;
    int tensor;        /* index in gpt_tensors order */
    int conv1d;        /* stored (in, out): transpose */
} hf_name;

static const hf_name HF_LAYER[] = {
    {"ln_1.weight", 2, 0},          {"ln_1.bias", 3, 0},
    {"attn.c_attn.weight", 4, 1},   {"attn.c_attn.bias", 5, 0},
    {"attn.c_proj.weight", 6, 1},   {"attn.c_proj.bias", 7, 0},
    {"ln_2.weight", 8, 0},          {"ln_2.bias", 9, 0},
    {"mlp.c_fc.weight", 10, 1},     {"mlp.c_fc.bias", 11, 0},
    {"mlp.c_proj.weight", 12, 1},   {"mlp.c_proj.bias", 13, 0},
};
#define HF_NLAYER ((int)(sizeof HF_LAYER / sizeof HF_LAYER[0]))

/* Our shape of tensor `ti` for one layer: (out, in) rows/cols; biases and LN: rows = 1. */
static void layer_shape(const gpt_config *c, int ti, int64_t *rows, int64_t *cols) {
    int64_t C = c->C;
    *rows = 1;
    switch (ti) {
    case 4: *rows = 3 * C; *cols = C; break;
    case 5: *cols = 3 * C; break;
    case 6: *rows = C; *cols = C; break;
    case 10: *rows = 4 * C; *cols = C; break;
    case 11: *cols = 4 * C; break;
    case 12: *rows = C; *cols = 4 * C; break;
    default: *cols = C; break;
    }
}

static float *tensor_ptr(gpt_model *m, int ti) {
    float *p = m->params;
    for (int i = 0; i < ti; i++) p += m->tensor_size[i];
    return p;
}

/* Reads tensor `name` (which must exist with shape (d0[, d1])) into dst as
 * (out, in) floats; conv1d: the file holds (d0 = in, d1 = out). */
static rl_status read_tensor(const st_file *f, const char *name, int ndim, int64_t d0, int64_t d1, int conv1d,
                             float *dst, float *tmp) {
    const st_tensor *t = st_find(f, name);
    if (!t) return rl_fail(RL_EFORMAT, "%s: tensor %s is missing; not a complete GPT-2 checkpoint", f->path, name);
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[96] = "";
        size_t k = 0;
        for (int i = 0; i < t->ndim && k < sizeof got - 24; i++) k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return rl_fail(RL_EFORMAT, "%s: tensor %s has shape (%s), expected (%lld%s%.0lld) for this model's other tensors",
                       f->path, name, got, (long long)d0, ndim == 2 ? "," : "", ndim == 2 ? (long long)d1 : 0LL);
    }
    uint64_t n = (uint64_t)d0 * (uint64_t)(ndim == 2 ? d1 : 1);
    if (!dst) return RL_OK;   /* shape check only */
    if (!conv1d) return st_read_f32(f, t, dst, n);
    RL_TRY(st_read_f32(f, t, tmp, n));
    transpose(dst, tmp, (size_t)d1, (size_t)d0);   /* (in=d0, out=d1) -> (out, in) */
    return RL_OK;
}

/* Index of layer N in "h.N.<rest>" after the prefix, or -1. */
static long layer_index(const char *name, const char *prefix, const char **rest) {
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) || strncmp(name + pl, "h.", 2)) return -1;
    const char *p = name + pl + 2;
    if (*p < '0' || *p > '9') return -1;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || *end != '.' || (p[0] == '0' && end - p > 1)) return -1;
    *rest = end + 1;
    return v;
}

static rl_status import_st(gpt_model *m, st_file *f, int heads, int max_B, int max_T, const ops_table *ops) {
    const char *prefix = st_find(f, "wte.weight") ? "" : st_find(f, "transformer.wte.weight") ? "transformer." : NULL;
    if (!prefix)
        return rl_fail(RL_EFORMAT, "%s: no wte.weight (or transformer.wte.weight) tensor: not a GPT-2 safetensors file", f->path);
    char name[256];
    snprintf(name, sizeof name, "%swte.weight", prefix);
    const st_tensor *wte = st_find(f, name);
    snprintf(name, sizeof name, "%swpe.weight", prefix);
    const st_tensor *wpe = st_find(f, name);
    if (!wpe) return rl_fail(RL_EFORMAT, "%s: tensor %s is missing; not a complete GPT-2 checkpoint", f->path, name);
    if (wte->ndim != 2 || wpe->ndim != 2 || wte->shape[1] != wpe->shape[1])
        return rl_fail(RL_EFORMAT, "%s: wte and wpe must be 2-D with the same width (channels)", f->path);
    gpt_config c = {0, 0, 0, 0, 0};
    if (wte->shape[0] > (1 << 24) || wte->shape[1] > 65536 || wpe->shape[0] > (1 << 20))
        return rl_fail(RL_EFORMAT, "%s: wte/wpe shapes are out of range", f->path);
    c.V = (int)wte->shape[0];
    c.C = (int)wte->shape[1];
    c.maxT = (int)wpe->shape[0];
    /* layers: every tensor name is checked, which also refuses unknown ones */
    long maxl = -1;
    for (int i = 0; i < f->ntensors; i++) {
        const char *n = f->tensors[i].name, *rest;
        long l = layer_index(n, prefix, &rest);
        if (l >= 0) {
            int known = !strcmp(rest, "attn.bias") || !strcmp(rest, "attn.masked_bias");
            for (int k = 0; k < HF_NLAYER && !known; k++) known = !strcmp(rest, HF_LAYER[k].suffix);
            if (!known || l > 1023) return rl_fail(RL_EFORMAT, "%s: unexpected tensor %s (not part of GPT-2); refusing to guess", f->path, n);
            if (l > maxl) maxl = l;
            continue;
        }
        size_t pl = strlen(prefix);
        const char *g = strncmp(n, prefix, pl) ? n : n + pl;
        if (!strcmp(g, "wte.weight") || !strcmp(g, "wpe.weight") || !strcmp(g, "ln_f.weight") || !strcmp(g, "ln_f.bias") ||
            !strcmp(n, "lm_head.weight") || !strcmp(n, "rlhf.head.weight") || !strcmp(n, "rlhf.head.bias"))
            continue;
        return rl_fail(RL_EFORMAT, "%s: unexpected tensor %s (not part of GPT-2); refusing to guess", f->path, n);
    }
    if (maxl < 0) return rl_fail(RL_EFORMAT, "%s: no transformer blocks (h.0.*)", f->path);
    c.L = (int)maxl + 1;
    if (heads > 0) c.NH = heads;
    else {
        const char *nh = st_meta(f, "n_head");
        if (nh) {
            char *end;
            long v = strtol(nh, &end, 10);
            if (*end || v < 1 || v > 65536) return rl_fail(RL_EFORMAT, "%s: __metadata__ n_head '%s' is not a head count", f->path, nh);
            c.NH = (int)v;
        } else if (c.C % 64 == 0) c.NH = c.C / 64;
        else return rl_fail(RL_EINVAL, "%s: channels %d is not a multiple of 64, so the head count cannot be guessed; pass --heads", f->path, c.C);
    }
    RL_TRY(check_cfg(&c, f->path));
    int64_t C = c.C;
    /* every tensor present with its shape before allocating anything: the
     * sizes a hostile header claims are backed by data in the file */
    RL_TRY(read_tensor(f, name, 2, c.maxT, C, 0, NULL, NULL));
    for (int l = 0; l < c.L; l++)
        for (int k = 0; k < HF_NLAYER; k++) {
            int64_t rows, cols;
            layer_shape(&c, HF_LAYER[k].tensor, &rows, &cols);
            char ln[256];
            snprintf(ln, sizeof ln, "%sh.%d.%s", prefix, l, HF_LAYER[k].suffix);
            RL_TRY(rows == 1 ? read_tensor(f, ln, 1, cols, 0, 0, NULL, NULL) : read_tensor(f, ln, 2, cols, rows, 1, NULL, NULL));
        }
    RL_TRY(gpt_init_empty(m, &c, max_B, max_T > 0 ? max_T : c.maxT, ops));
    float *tmp = malloc(sizeof(float) * (size_t)(4 * C * C));
    if (!tmp) { gpt_free(m); return rl_fail(RL_ENOMEM, "out of memory"); }
    rl_status s = read_tensor(f, name, 2, c.maxT, C, 0, m->w.wpe, tmp);
    snprintf(name, sizeof name, "%swte.weight", prefix);
    if (s == RL_OK) s = read_tensor(f, name, 2, c.V, C, 0, m->w.wte, tmp);
    for (int l = 0; l < c.L && s == RL_OK; l++) {
        for (int k = 0; k < HF_NLAYER && s == RL_OK; k++) {
            const hf_name *h = &HF_LAYER[k];
            int64_t rows, cols;
            layer_shape(&c, h->tensor, &rows, &cols);
            float *dst = tensor_ptr(m, h->tensor) + (size_t)l * (size_t)(rows * cols);
            snprintf(name, sizeof name, "%sh.%d.%s", prefix, l, h->suffix);
            if (rows == 1) s = read_tensor(f, name, 1, cols, 0, 0, dst, tmp);
            else s = read_tensor(f, name, 2, cols, rows, 1, dst, tmp);   /* file: (in=cols, out=rows) */
        }
    }
    snprintf(name, sizeof name, "%sln_f.weight", prefix);
    if (s == RL_OK) s = read_tensor(f, name, 1, C, 0, 0, m->w.lnfw, tmp);
    snprintf(name, sizeof name, "%sln_f.bias", prefix);
    if (s == RL_OK) s = read_tensor(f, name, 1, C, 0, 0, m->w.lnfb, tmp);
    if (s == RL_OK && st_find(f, "rlhf.head.weight")) s = read_tensor(f, "rlhf.head.weight", 1, C, 0, 0, m->w.headw, tmp);
    if (s == RL_OK && st_find(f, "rlhf.head.bias")) s = read_tensor(f, "rlhf.head.bias", 1, 1, 0, 0, m->w.headb, tmp);
    if (s == RL_OK && st_find(f, "lm_head.weight")) {
        /* GPT-2 ties the LM head to wte; we cannot represent an untied one */
        float *lm = malloc(sizeof(float) * (size_t)c.V * (size_t)C);
        if (!lm) s = rl_fail(RL_ENOMEM, "out of memory");
        if (s == RL_OK) s = read_tensor(f, "lm_head.weight", 2, c.V, C, 0, lm, tmp);
        if (s == RL_OK && memcmp(lm, m->w.wte, sizeof(float) * (size_t)c.V * (size_t)C) != 0)
            s = rl_fail(RL_EUNSUPPORTED, "%s: lm_head.weight differs from wte.weight; rlhf.c ties the LM head to the token "
                        "embedding (as GPT-2 does) and cannot import an untied head", f->path);
        free(lm);
    }
    free(tmp);
    if (s != RL_OK) gpt_free(m);
    return s;
}

rl_status gptio_import_safetensors(gpt_model *m, const char *path, int heads, int max_B, int max_T, const ops_table *ops) {
    memset(m, 0, sizeof *m);
    st_file f;
    RL_TRY(st_open(&f, path));
    rl_status s = import_st(m, &f, heads, max_B, max_T, ops);
    st_close(&f);
    if (s != RL_OK) memset(m, 0, sizeof *m);
    return s;
}

rl_status gptio_export_safetensors(const gpt_model *m, const char *path, const char *tok_id) {
    const gpt_config *c = &m->cfg;
    int L = c->L;
    int nt = 2 + 12 * L + 2 + 2;
    st_entry *e = calloc((size_t)nt, sizeof *e);
    int64_t *shapes = calloc((size_t)nt * 2, sizeof *shapes);
    char *names = calloc((size_t)nt, 64);
    /* a copy of the weights with the four matmul weights in Conv1D (in, out) order */
    float *tw = malloc(sizeof(float) * m->num_params);
    if (!e || !shapes || !names || !tw) { free(e); free(shapes); free(names); free(tw); return rl_fail(RL_ENOMEM, "out of memory"); }
    memcpy(tw, m->params, sizeof(float) * m->num_params);
    int k = 0;
#define ADD(nm, nd, d0, d1, ptr) do { \
        snprintf(names + 64 * k, 64, "%s", nm); e[k].name = names + 64 * k; e[k].ndim = (nd); \
        shapes[2 * k] = (d0); shapes[2 * k + 1] = (d1); e[k].shape = shapes + 2 * k; e[k].data = (ptr); k++; } while (0)
    int64_t C = c->C;
    ADD("wte.weight", 2, c->V, C, m->w.wte);
    ADD("wpe.weight", 2, c->maxT, C, m->w.wpe);
    for (int l = 0; l < L; l++) {
        for (int j = 0; j < HF_NLAYER; j++) {
            const hf_name *h = &HF_LAYER[j];
            int64_t rows, cols;
            layer_shape(c, h->tensor, &rows, &cols);
            size_t off = (size_t)(tensor_ptr((gpt_model *)m, h->tensor) - m->params) + (size_t)l * (size_t)(rows * cols);
            char nm[64];
            snprintf(nm, sizeof nm, "h.%d.%s", l, h->suffix);
            if (rows == 1) ADD(nm, 1, cols, 0, tw + off);
            else {
                transpose(tw + off, m->params + off, (size_t)cols, (size_t)rows);  /* (out,in) -> (in,out) */
                ADD(nm, 2, cols, rows, tw + off);
            }
        }
    }
    ADD("ln_f.weight", 1, C, 0, m->w.lnfw);
    ADD("ln_f.bias", 1, C, 0, m->w.lnfb);
    int head = m->w.headb[0] != 0;
    for (int64_t i = 0; i < C && !head; i++) head = m->w.headw[i] != 0;
    if (head) {
        ADD("rlhf.head.weight", 1, C, 0, m->w.headw);
        ADD("rlhf.head.bias", 1, 1, 0, m->w.headb);
    }
#undef ADD
    char v[5][24];
    snprintf(v[0], 24, "%d", c->L); snprintf(v[1], 24, "%d", c->NH); snprintf(v[2], 24, "%d", c->C);
    snprintf(v[3], 24, "%d", c->maxT); snprintf(v[4], 24, "%d", c->V);
    const char *meta[14] = {"format", "pt", "n_layer", v[0], "n_head", v[1], "n_embd", v[2], "n_positions", v[3],
                            "vocab_size", v[4], "rlhf.tok_id", tok_id && *tok_id ? tok_id : ""};
    int nmeta = tok_id && *tok_id ? 7 : 6;
    rl_status s = st_write_f32(path, e, k, meta, nmeta);
    free(e); free(shapes); free(names); free(tw);
    return s;
}

/* ---- llm.c ------------------------------------------------------------------- */

static float bf16_at(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return st_bf16_to_f32(h); }

rl_status gptio_import_llmc(gpt_model *m, const char *path, int max_B, int max_T, const ops_table *ops) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "%s: not a regular file", path); }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 1024) { close(fd); return rl_fail(RL_EFORMAT, "%s: %llu bytes, shorter than llm.c's 1024-byte header; not an llm.c model file", path, (unsigned long long)size); }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return rl_fail(RL_EIO, "%s: cannot map: %s", path, strerror(errno));
    const uint8_t *b = map;
    int32_t h[8];
    memcpy(h, b, sizeof h);
    rl_status s = RL_OK;
    if (h[0] != GPTIO_LLMC_MAGIC)
        s = rl_fail(RL_EFORMAT, "%s: bad magic %d (llm.c model files start with %d); not an llm.c model file (a tokenizer or data file?)", path, h[0], GPTIO_LLMC_MAGIC);
    else if (h[1] != 1 && h[1] != 3 && h[1] != 5)
        s = rl_fail(RL_EUNSUPPORTED, "%s: llm.c model version %d; versions 1, 3 (fp32) and 5 (bf16) are supported", path, h[1]);
    gpt_config c = {h[4], h[5], h[6], h[3], h[2]};
    int Vp = h[1] == 1 ? c.V : h[7];
    size_t elt = h[1] == 5 ? 2 : 4;
    if (s == RL_OK) s = check_cfg(&c, path);
    if (s == RL_OK && (Vp < c.V || Vp > (1 << 24)))
        s = rl_fail(RL_EFORMAT, "%s: padded vocabulary %d is smaller than the vocabulary %d", path, Vp, c.V);
    uint64_t n_ours = 0, n_file = 0;
    if (s == RL_OK) {
        n_ours = gpt_num_params(&c) - (uint64_t)c.C - 1;          /* without the scalar head */
        n_file = n_ours + (uint64_t)(Vp - c.V) * (uint64_t)c.C;   /* + padding rows */
        if (size != 1024 + n_file * elt)
            s = rl_fail(RL_EFORMAT, "%s: %llu bytes, but its header (L=%d NH=%d C=%d V=%d Vp=%d maxT=%d, version %d) needs %llu; "
                        "truncated or not an llm.c model file", path, (unsigned long long)size, c.L, c.NH, c.C, c.V, Vp, c.maxT, h[1],
                        (unsigned long long)(1024 + n_file * elt));
    }
    if (s == RL_OK) s = gpt_init_empty(m, &c, max_B, max_T > 0 ? max_T : c.maxT, ops);
    if (s == RL_OK) {
        /* wte: the first V of Vp rows; then every other tensor as is */
        size_t VC = (size_t)c.V * (size_t)c.C, pad = (size_t)(Vp - c.V) * (size_t)c.C;
        const uint8_t *p = b + 1024;
        size_t rest = (size_t)n_ours - VC;
        if (elt == 4) {
            memcpy(m->params, p, VC * 4);
            memcpy(m->params + VC, p + (VC + pad) * 4, rest * 4);
        } else {
            for (size_t i = 0; i < VC; i++) m->params[i] = bf16_at(p + 2 * i);
            for (size_t i = 0; i < rest; i++) m->params[VC + i] = bf16_at(p + 2 * (VC + pad + i));
        }
    }
    munmap(map, (size_t)size);
    if (s != RL_OK) memset(m, 0, sizeof *m);
    return s;
}

rl_status gptio_export_llmc(const gpt_model *m, const char *path) {
    const gpt_config *c = &m->cfg;
    int Vp = (c->V + 127) / 128 * 128;   /* llm.c pads to a multiple of 128 */
    int32_t h[256] = {0};
    h[0] = GPTIO_LLMC_MAGIC; h[1] = 3; h[2] = c->maxT; h[3] = c->V; h[4] = c->L; h[5] = c->NH; h[6] = c->C; h[7] = Vp;
    size_t VC = (size_t)c->V * (size_t)c->C, pad = (size_t)(Vp - c->V) * (size_t)c->C;
    size_t rest = m->num_params - (size_t)c->C - 1 - VC;
    rl_atomic_file af;
    RL_TRY(rl_atomic_open(&af, path));
    float *zeros = calloc(pad ? pad : 1, sizeof(float));
    rl_status s = zeros ? RL_OK : rl_fail(RL_ENOMEM, "out of memory");
    if (s == RL_OK && (fwrite(h, sizeof h, 1, af.fp) != 1 || fwrite(m->params, 4, VC, af.fp) != VC ||
                       (pad && fwrite(zeros, 4, pad, af.fp) != pad) || fwrite(m->params + VC, 4, rest, af.fp) != rest))
        s = rl_fail(RL_EIO, "cannot write %s: %s (disk full?)", af.tmp_path, strerror(errno));
    free(zeros);
    if (s == RL_OK) return rl_atomic_commit(&af);
    rl_atomic_abort(&af);
    return s;
}

rl_status gptio_resize_vocab(gpt_model *m, int newV, int max_B, int max_T) {
    gpt_config c = m->cfg;
    if (newV < 1 || newV > (1 << 24)) return rl_fail(RL_EINVAL, "vocabulary size %d out of range", newV);
    c.V = newV;
    gpt_model n;
    RL_TRY(gpt_init_empty(&n, &c, max_B, max_T > 0 ? max_T : c.maxT, m->ops));
    size_t C = (size_t)c.C, keep = (size_t)(newV < m->cfg.V ? newV : m->cfg.V);
    memcpy(n.w.wte, m->w.wte, sizeof(float) * keep * C);
    for (size_t j = 0; j < C && (size_t)newV > keep; j++) {
        double mean = 0;   /* in double: 50k rows */
        for (size_t i = 0; i < (size_t)m->cfg.V; i++) mean += m->w.wte[i * C + j];
        mean /= m->cfg.V;
        for (size_t i = keep; i < (size_t)newV; i++) n.w.wte[i * C + j] = (float)mean;
    }
    /* everything after wte has the same size and order in both */
    size_t rest = m->num_params - m->tensor_size[0];
    memcpy(n.w.wpe, m->w.wpe, sizeof(float) * rest);
    gpt_free(m);
    *m = n;
    return RL_OK;
}
