/* gen_gpt.c — GPT checkpoints behind the push adapter of gen.h. See gen_gpt.h. */
#include "gen_gpt.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../data/chat.h"
#include "../model/checkpoint.h"
#include "../model/sampler.h"

typedef struct {
    gpt_model m;
    const tok_tokenizer *t;  /* borrowed */
    int end_id, sep_id;      /* "<|end|>", and "<|endoftext|>" or -1 */
} gpt_backend;

/* ids of the rendered conversation + "<|assistant|>" (malloc'd into *ids). */
static rl_status encode_chat(const tok_tokenizer *t, const chat_turn *ct, int n, int **ids, int *nids) {
    *ids = NULL;
    *nids = 0;
    size_t len;
    char *text = chat_render_alloc(ct, n, 1, &len);
    int nseg = text ? chat_segments(ct, n, 1, CHAT_TRAIN_ALL_ASSISTANT, NULL, 0) : -1;
    if (nseg < 0) { free(text); return rl_fail(RL_EINVAL, "invalid conversation"); }
    chat_segment *seg = malloc(sizeof *seg * (size_t)(nseg + 1));
    if (!seg) { free(text); return rl_fail(RL_ENOMEM, "out of memory"); }
    chat_segments(ct, n, 1, CHAT_TRAIN_ALL_ASSISTANT, seg, nseg);
    rl_status st = RL_OK;
    for (int i = 0; i < nseg && st == RL_OK; i++) {
        if (seg[i].special) {
            char name[32];
            size_t l = seg[i].end - seg[i].start;
            if (l >= sizeof name) { st = rl_fail(RL_EINTERNAL, "special segment too long"); break; }
            memcpy(name, text + seg[i].start, l);
            name[l] = 0;
            int id = tok_special(t, name);
            if (id < 0) { st = rl_fail(RL_EINVAL, "the tokenizer has no %s token", name); break; }
            int *ni = realloc(*ids, sizeof(int) * (size_t)(*nids + 1));
            if (!ni) { st = rl_fail(RL_ENOMEM, "out of memory"); break; }
            *ids = ni;
            (*ids)[(*nids)++] = id;
        } else {
            st = tok_encode(t, text + seg[i].start, seg[i].end - seg[i].start, 0, ids, nids);
        }
    }
    free(seg);
    free(text);
    if (st != RL_OK) { free(*ids); *ids = NULL; *nids = 0; }
    return st;
}

typedef struct {
    gpt_backend *g;
    serve_emit_fn emit;
    void *emit_ctx;
    const volatile int *cancel;
} stream_cb;

/* Sampler callback: a token's bytes become one piece; a nonzero return
 * (consumer gone, Stop) cancels the sampler. */
static int on_token(void *ctx, int row, int token) {
    stream_cb *c = ctx;
    (void)row;
    if (!tok_is_special(c->g->t, token)) {
        int n;
        const unsigned char *b = tok_token_bytes(c->g->t, token, &n);
        if (b && n > 0 && c->emit(c->emit_ctx, (const char *)b, (size_t)n)) return 1;
    }
    return c->cancel && *c->cancel;
}

static rl_status gpt_generate(void *impl, const serve_turn *turns, int nturns, const serve_gen_params *p,
                              serve_emit_fn emit, void *emit_ctx, const volatile int *cancel) {
    gpt_backend *g = impl;
    if (nturns < 1) return rl_fail(RL_EINVAL, "empty conversation");
    chat_turn *ct = malloc(sizeof *ct * (size_t)nturns);
    if (!ct) return rl_fail(RL_ENOMEM, "out of memory");
    for (int i = 0; i < nturns; i++) {
        if (chat_role_parse(turns[i].role, &ct[i].role) != 0) { free(ct); return rl_fail(RL_EINVAL, "bad role '%s'", turns[i].role); }
        ct[i].text = turns[i].content ? turns[i].content : "";
    }
    int *ids = NULL, n = 0;
    rl_status st = encode_chat(g->t, ct, nturns, &ids, &n);
    free(ct);
    if (st != RL_OK) return st;
    /* A conversation longer than the context keeps "<|bos|>" and its end (the
     * latest turns, nearest the answer), leaving room for a quarter of the
     * context (at least one token) to answer in. */
    int maxT = g->m.cfg.maxT, room = maxT / 4 > 1 ? maxT / 4 : 1;
    if (n > maxT - room && n > 1) {
        int keep = maxT - room - 1;
        memmove(ids + 1, ids + n - keep, sizeof(int) * (size_t)keep);
        n = keep + 1;
    }
    sampler_opts o;
    sampler_opts_default(&o);
    o.max_tokens = p->max_tokens > 0 ? p->max_tokens : 1;
    o.temperature = (float)p->temperature;
    o.top_k = p->top_k;
    o.top_p = (float)p->top_p;
    o.seed = p->seed;
    o.stop_tokens[0] = g->end_id;
    o.stop_tokens[1] = g->sep_id;
    stream_cb cb = {g, emit, emit_ctx, cancel};
    sampler_result res;
    const int *prompt = ids;
    st = sampler_generate(&g->m, &prompt, &n, 1, &o, &res, on_token, &cb);
    if (st == RL_OK) sampler_result_free(&res);
    free(ids);
    return st;
}

static void gpt_close(void *impl) {
    gpt_backend *g = impl;
    if (!g) return;
    gpt_free(&g->m);
    free(g);
}

/* 16 hex chars of the file's BLAKE2b: tells two files at one path apart. */
static rl_status file_fingerprint(const char *path, char hex[17]) {
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(RL_ENOTFOUND, "cannot open %s", path);
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 8);
    unsigned char buf[1 << 16], out[8];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) crypto_generichash_update(&h, buf, k);
    int err = ferror(f);
    fclose(f);
    if (err) return rl_fail(RL_EIO, "reading %s failed", path);
    crypto_generichash_final(&h, out, sizeof out);
    for (int i = 0; i < 8; i++) snprintf(hex + 2 * i, 3, "%02x", out[i]);
    return RL_OK;
}

rl_status serve_gpt_open(serve_model **out, const char *path, const tok_tokenizer *t) {
    *out = NULL;
    if (!t) return rl_fail(RL_EINVAL, "serving a checkpoint needs its tokenizer (--tokenizer)");
    ckpt_info info;
    RL_TRY(ckpt_peek(path, &info));
    const char *kind = ckpt_meta_kind(&info.meta);
    if (strcmp(kind, "lm"))
        return rl_fail(RL_EINVAL, "%s is a '%s' checkpoint: it scores text and cannot generate; serve a language model "
                       "(from rlhf pretrain, sft, dpo, kto or ppo)", path, kind);
    char tid[65];
    tok_identity(t, tid);
    if (info.tok_id[0] && strcmp(info.tok_id, tid))
        return rl_fail(RL_EINVAL, "%s was trained with tokenizer %.16s..., not this one (%.16s...): pass the model's --tokenizer",
                       path, info.tok_id, tid);
    if (info.cfg.V != tok_vocab_size(t))
        return rl_fail(RL_EINVAL, "%s has a vocabulary of %d but the tokenizer has %d: pass the model's --tokenizer",
                       path, info.cfg.V, tok_vocab_size(t));
    int end_id = tok_special(t, CHAT_END);
    if (end_id < 0 || tok_special(t, CHAT_BOS) < 0)
        return rl_fail(RL_EINVAL, "the tokenizer has no chat tokens (<|bos|>, <|end|>): use one from 'rlhf tokenizer train'");
    char fp[17];
    RL_TRY(file_fingerprint(path, fp));
    gpt_backend *g = calloc(1, sizeof *g);
    if (!g) return rl_fail(RL_ENOMEM, "out of memory");
    /* The sampler plans its own KV cache; activations for one position suffice. */
    rl_status st = ckpt_load(path, &g->m, 1, 1, NULL, NULL, 0, 0, 0, 0, 0, NULL);
    if (st != RL_OK) { free(g); return st; }
    /* answers are decoded with half-precision weights, as `rlhf sample` does by
     * default (the same tokens for the same seed; ~2x faster than fp32; the
     * server keeps no log-probs, so fp32's exactness buys nothing here) */
    st = gpt_decode_half(&g->m, 1);
    if (st != RL_OK) { gpt_free(&g->m); free(g); return st; }
    g->t = t;
    g->end_id = end_id;
    g->sep_id = tok_special(t, "<|endoftext|>");
    char identity[256];
    snprintf(identity, sizeof identity, "%.200s#%s", path, fp);
    serve_push_backend b = {"gpt", identity, path, g, gpt_generate, gpt_close, 0};
    st = serve_model_from_push(out, &b);
    if (st != RL_OK) gpt_close(g);
    return st;
}

static const tok_tokenizer *registered_tok;

static rl_status open_registered(serve_model **out, const char *path) { return serve_gpt_open(out, path, registered_tok); }

void serve_gpt_register(const tok_tokenizer *t) {
    registered_tok = t;
    serve_set_checkpoint_backend(open_registered);
}
