/* gen.c — model opening and the built-in dummy generator. See gen.h. */
#include "gen.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../base/rng.h"
#include "text.h"

/* ---- dummy generator ---------------------------------------------------------
 * Deterministic in (prompt, seed): it echoes the last user turn, then adds
 * filler words drawn from a seeded RNG, one word per piece. It exists so the
 * whole app (streaming, stop, judgements, export) can be tested without a
 * trained model; the UI labels it. */

typedef struct {
    int delay_ms;
} dummy_model;

typedef struct {
    char *text;      /* the whole answer, decided at start */
    size_t len, pos;
    int pieces, max_pieces;
    int delay_ms;
} dummy_stream;

static const char *const filler[] = {
    "maybe", "indeed", "perhaps", "certainly", "a", "the", "small", "green", "model", "answer",
    "seems", "quite", "reasonable", "although", "another", "view", "is", "possible", "here", "now",
};

static rl_status dummy_start(serve_model *m, const serve_turn *turns, int nturns, const serve_gen_params *p, void **out) {
    dummy_model *dm = m->impl;
    const char *last = "";
    for (int i = 0; i < nturns; i++)
        if (turns[i].role && !strcmp(turns[i].role, "user") && turns[i].content) last = turns[i].content;
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the prompt, mixed with the seed */
    for (const unsigned char *c = (const unsigned char *)last; *c; c++) h = (h ^ *c) * 1099511628211ull;
    rl_rng rng;
    rl_rng_seed(&rng, h ^ p->seed);
    size_t cap = strlen(last) + 64 + 16 * 24;
    dummy_stream *s = calloc(1, sizeof *s);
    if (!s) return rl_fail(RL_ENOMEM, "out of memory");
    s->text = malloc(cap);
    if (!s->text) { free(s); return rl_fail(RL_ENOMEM, "out of memory"); }
    size_t len = (size_t)snprintf(s->text, cap, "You said: %s —", last);
    int extra = 6 + (int)rl_rng_below(&rng, 10);
    for (int i = 0; i < extra && len + 20 < cap; i++)
        len += (size_t)snprintf(s->text + len, cap - len, " %s", filler[rl_rng_below(&rng, (uint32_t)(sizeof filler / sizeof *filler))]);
    len += (size_t)snprintf(s->text + len, cap - len, ".");
    s->len = len;
    s->max_pieces = p->max_tokens > 0 ? p->max_tokens : 64;
    s->delay_ms = p->realtime ? dm->delay_ms : 0;
    *out = s;
    return RL_OK;
}

static int dummy_next(void *stream, char *buf, size_t cap, size_t *n) {
    dummy_stream *s = stream;
    *n = 0;
    if (s->pos >= s->len || s->pieces >= s->max_pieces) return 0;
    if (s->delay_ms > 0) {
        struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* One piece = up to and including the next space; at most 8 bytes at a
     * time so that multi-byte characters get split across pieces sometimes,
     * like byte-level BPE tokens do. */
    size_t end = s->pos;
    while (end < s->len && s->text[end] != ' ' && end - s->pos < 8) end++;
    if (end < s->len && s->text[end] == ' ') end++;
    if (end == s->pos) end++;
    size_t k = end - s->pos;
    if (k > cap) k = cap;
    memcpy(buf, s->text + s->pos, k);
    s->pos += k;
    s->pieces++;
    *n = k;
    return 1;
}

static void dummy_stop(void *stream) {
    dummy_stream *s = stream;
    if (!s) return;
    free(s->text);
    free(s);
}

static void dummy_close(serve_model *m) { free(m->impl); }

/* ---- opening ---------------------------------------------------------------------- */

static serve_checkpoint_open_fn checkpoint_backend;

void serve_set_checkpoint_backend(serve_checkpoint_open_fn fn) { checkpoint_backend = fn; }

rl_status serve_model_open(serve_model **out, const char *spec, int dummy_delay_ms) {
    *out = NULL;
    if (!spec || !*spec) return rl_fail(RL_EINVAL, "empty --model");
    if (!strcmp(spec, "dummy") || !strncmp(spec, "dummy:", 6)) {
        const char *name = spec[5] == ':' ? spec + 6 : "echo";
        if (!*name || strlen(name) > 64 || !text_utf8_valid(name, strlen(name), 0)) return rl_fail(RL_EINVAL, "dummy model name must be 1..64 bytes");
        serve_model *m = calloc(1, sizeof *m);
        dummy_model *dm = calloc(1, sizeof *dm);
        if (!m || !dm) { free(m); free(dm); return rl_fail(RL_ENOMEM, "out of memory"); }
        dm->delay_ms = dummy_delay_ms;
        m->kind = "dummy";
        snprintf(m->identity, sizeof m->identity, "dummy:%s", name);
        snprintf(m->path, sizeof m->path, "%s", spec);
        m->is_dummy = 1;
        m->impl = dm;
        m->start = dummy_start;
        m->next = dummy_next;
        m->stop = dummy_stop;
        m->close = dummy_close;
        *out = m;
        return RL_OK;
    }
    if (!checkpoint_backend)
        return rl_fail(RL_EUNSUPPORTED,
                       "cannot serve %s: this build has no GPT sampler plugged into the server yet; "
                       "use --model dummy (the built-in echo generator, not a trained model)", spec);
    return checkpoint_backend(out, spec);
}

void serve_model_close(serve_model *m) {
    if (!m) return;
    if (m->close) m->close(m);
    free(m);
}

rl_status serve_generate(serve_model *m, const serve_turn *turns, int nturns, const serve_gen_params *p,
                         const volatile int *cancel, char **text_out) {
    *text_out = NULL;
    void *st = NULL;
    RL_TRY(m->start(m, turns, nturns, p, &st));
    size_t cap = 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf) { m->stop(st); return rl_fail(RL_ENOMEM, "out of memory"); }
    rl_status r = RL_OK;
    while (!(cancel && *cancel)) {
        if (cap - len < 512) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { r = rl_fail(RL_ENOMEM, "out of memory"); break; }
            buf = nb;
            cap *= 2;
        }
        size_t n = 0;
        int rc = m->next(st, buf + len, 256, &n);
        if (rc < 0) { r = RL_EINTERNAL; break; }
        if (rc == 0) break;
        len += n;
    }
    m->stop(st);
    if (r == RL_OK) {
        *text_out = text_utf8_sanitize(buf, len);
        if (!*text_out) r = rl_fail(RL_ENOMEM, "out of memory");
    }
    free(buf);
    return r;
}
