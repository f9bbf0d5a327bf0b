/* gen.c — model opening and the built-in dummy generator. See gen.h. */
#include "gen.h"
#include <pthread.h>
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

/* ---- push adapter ---------------------------------------------------------------- */

typedef struct {
    serve_push_backend b;
    pthread_mutex_t run_mu;   /* held around generate() unless b.concurrent */
} push_model;

typedef struct {
    push_model *pm;
    serve_turn *turns;        /* deep copies */
    char **strings;
    int nturns;
    serve_gen_params p;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf;                /* queued bytes [head, len) */
    size_t head, len, cap;
    int done;                 /* generate() returned */
    rl_status status;
    char error[256];
    int cancel;               /* set by stop(); read by generate through a pointer */
} push_stream;

static int push_emit(void *ctx, const char *piece, size_t n) {
    push_stream *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (!s->cancel && n) {
        if (s->head > 0 && s->head == s->len) s->head = s->len = 0;
        if (s->len + n > s->cap) {
            size_t cap = (s->len + n) * 2 + 256;
            char *nb = realloc(s->buf, cap);
            if (nb) { s->buf = nb; s->cap = cap; }
        }
        if (s->len + n <= s->cap) {
            memcpy(s->buf + s->len, piece, n);
            s->len += n;
        }
        pthread_cond_signal(&s->cv);
    }
    int stop = s->cancel;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void *push_worker(void *arg) {
    push_stream *s = arg;
    push_model *pm = s->pm;
    if (!pm->b.concurrent) pthread_mutex_lock(&pm->run_mu);
    rl_status r = pm->b.generate(pm->b.impl, s->turns, s->nturns, &s->p, push_emit, s, &s->cancel);
    if (!pm->b.concurrent) pthread_mutex_unlock(&pm->run_mu);
    pthread_mutex_lock(&s->mu);
    s->status = r;
    if (r != RL_OK) snprintf(s->error, sizeof s->error, "%s", rl_error());
    s->done = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void push_stream_free(push_stream *s) {
    for (int i = 0; i < 2 * s->nturns; i++) free(s->strings[i]);
    free(s->strings);
    free(s->turns);
    free(s->buf);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

static rl_status push_start(serve_model *m, const serve_turn *turns, int nturns, const serve_gen_params *p, void **out) {
    push_stream *s = calloc(1, sizeof *s);
    if (!s) return rl_fail(RL_ENOMEM, "out of memory");
    s->pm = m->impl;
    s->p = *p;
    s->nturns = nturns;
    s->turns = calloc((size_t)(nturns > 0 ? nturns : 1), sizeof *s->turns);
    s->strings = calloc((size_t)(2 * nturns + 1), sizeof *s->strings);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int ok = s->turns && s->strings;
    for (int i = 0; ok && i < nturns; i++) {
        s->strings[2 * i] = strdup(turns[i].role ? turns[i].role : "user");
        s->strings[2 * i + 1] = strdup(turns[i].content ? turns[i].content : "");
        ok = s->strings[2 * i] && s->strings[2 * i + 1];
        s->turns[i].role = s->strings[2 * i];
        s->turns[i].content = s->strings[2 * i + 1];
    }
    if (!ok || pthread_create(&s->th, NULL, push_worker, s) != 0) {
        push_stream_free(s);
        return rl_fail(ok ? RL_EINTERNAL : RL_ENOMEM, "cannot start the generation thread");
    }
    *out = s;
    return RL_OK;
}

static int push_next(void *stream, char *buf, size_t cap, size_t *n) {
    push_stream *s = stream;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    while (s->head == s->len && !s->done) pthread_cond_wait(&s->cv, &s->mu);
    int rc;
    if (s->head < s->len) {
        size_t k = s->len - s->head;
        if (k > cap) k = cap;
        memcpy(buf, s->buf + s->head, k);
        s->head += k;
        *n = k;
        rc = 1;
    } else if (s->status != RL_OK) {
        rl_fail(s->status, "%s", s->error);
        rc = -1;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void push_stop(void *stream) {
    push_stream *s = stream;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->cancel = 1;
    pthread_mutex_unlock(&s->mu);
    /* generate() sees the cancel at its next emit (or by polling *cancel). */
    pthread_join(s->th, NULL);
    push_stream_free(s);
}

static void push_close(serve_model *m) {
    push_model *pm = m->impl;
    if (!pm) return;
    if (pm->b.close) pm->b.close(pm->b.impl);
    pthread_mutex_destroy(&pm->run_mu);
    free(pm);
}

rl_status serve_model_from_push(serve_model **out, const serve_push_backend *b) {
    *out = NULL;
    if (!b || !b->generate || !b->identity || !*b->identity) return rl_fail(RL_EINVAL, "a push backend needs generate() and an identity");
    serve_model *m = calloc(1, sizeof *m);
    push_model *pm = calloc(1, sizeof *pm);
    if (!m || !pm) { free(m); free(pm); return rl_fail(RL_ENOMEM, "out of memory"); }
    pm->b = *b;
    pthread_mutex_init(&pm->run_mu, NULL);
    m->kind = b->kind ? b->kind : "push";
    snprintf(m->identity, sizeof m->identity, "%s", b->identity);
    snprintf(m->path, sizeof m->path, "%s", b->path ? b->path : b->identity);
    m->impl = pm;
    m->start = push_start;
    m->next = push_next;
    m->stop = push_stop;
    m->close = push_close;
    *out = m;
    return RL_OK;
}
