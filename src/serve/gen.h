/* gen.h — the generation interface of the feedback server. A model is a small
 * vtable: start a stream for a conversation, pull text pieces one at a time,
 * stop. The server pulls a piece whenever the browser's socket can take more,
 * so streaming needs no extra threads and a stop (button, disconnect,
 * shutdown) takes effect between two pieces.
 *
 * Backends:
 *   "dummy" / "dummy:NAME"  built-in deterministic echo generator (NOT a
 *                           trained model: it repeats the prompt and adds
 *                           seeded filler words). Tests and the UI use it;
 *                           the UI and the API label its answers as dummy.
 *   anything else           a checkpoint path, opened by the backend that
 *                           serve_set_checkpoint_backend() registered
 *                           (`rlhf serve` registers the GPT backend of
 *                           gen_gpt.h at start-up). Until one is registered
 *                           such a --model is refused with a message.
 */
#ifndef RL_SERVE_GEN_H
#define RL_SERVE_GEN_H
#include <stddef.h>
#include <stdint.h>
#include "../base/check.h"

typedef struct {
    int max_tokens;       /* pieces to produce at most, 1..2048 */
    double temperature;   /* >= 0; 0 = greedy */
    int top_k;            /* 0 = off */
    double top_p;         /* (0, 1]; 1 = off */
    uint64_t seed;        /* the same seed, prompt and model give the same answer */
    int realtime;         /* 1: pace output for a person (the dummy sleeps between pieces) */
} serve_gen_params;

/* One conversation turn; role is "user", "assistant" or "system". */
typedef struct {
    const char *role;
    const char *content;
} serve_turn;

typedef struct serve_model serve_model;
struct serve_model {
    const char *kind;      /* "dummy" or "gpt" */
    char identity[256];    /* stored with every generation; hidden from annotators in compare views */
    char path[512];        /* what --model said */
    int is_dummy;
    void *impl;            /* backend state (owned) */
    /* Starts a stream. Must be safe to call from several threads at once
     * (several people generating); each stream is used by one thread at a
     * time. turns: [nturns], the last one a user turn. */
    rl_status (*start)(serve_model *m, const serve_turn *turns, int nturns, const serve_gen_params *p, void **stream);
    /* Next piece: bytes (UTF-8, possibly ending inside a character; the
     * server reassembles) copied to buf[0..*n), *n <= cap. Returns 1 for a
     * piece, 0 when the answer is complete, -1 on error (rl_error()). */
    int (*next)(void *stream, char *buf, size_t cap, size_t *n);
    /* Ends and frees a stream (finished or not). */
    void (*stop)(void *stream);
    /* Frees the model (impl). */
    void (*close)(serve_model *m);
};

/* Opens a model from a --model value ("dummy", "dummy:NAME" or a checkpoint
 * path). dummy_delay_ms: pause per piece of the dummy in realtime mode.
 * RL_EUNSUPPORTED for a checkpoint when no sampler is linked in. */
rl_status serve_model_open(serve_model **out, const char *spec, int dummy_delay_ms);
void serve_model_close(serve_model *m);

/* Registers the opener of checkpoint paths (the GPT sampler): it fills a
 * serve_model whose vtable runs the model. NULL unregisters. Call once at
 * start-up, before any serve_model_open. */
typedef rl_status (*serve_checkpoint_open_fn)(serve_model **out, const char *path);
void serve_set_checkpoint_backend(serve_checkpoint_open_fn fn);

/* ---- push-style backends ------------------------------------------------------
 * A sampler that generates a whole answer in one call and reports each token
 * through a callback (like sampler_generate in src/model/sampler.h) plugs in
 * through this adapter: start() runs generate() on a worker thread, emit()
 * queues the pieces, next() hands them to the server as they arrive, and
 * stop() raises *cancel and joins the thread. */

/* Queues one piece (bytes, may end inside a UTF-8 character). Returns
 * nonzero when the consumer has stopped: generate should return soon. */
typedef int (*serve_emit_fn)(void *emit_ctx, const char *piece, size_t n);

typedef struct {
    const char *kind;          /* e.g. "gpt" */
    const char *identity;      /* stored with generations, e.g. "<path>#<checksum>" */
    const char *path;
    void *impl;                /* owned by the model once serve_model_from_push succeeds */
    /* One whole generation: emit every piece in order and return RL_OK at
     * the end (or early, when emit returns nonzero or *cancel is set). Runs on
     * a worker thread. */
    rl_status (*generate)(void *impl, const serve_turn *turns, int nturns, const serve_gen_params *p,
                          serve_emit_fn emit, void *emit_ctx, const volatile int *cancel);
    void (*close)(void *impl); /* may be NULL */
    /* 0: generate() calls on this model are serialised by a mutex (one KV
     * cache per model); 1: they may run at once. */
    int concurrent;
} serve_push_backend;

/* Wraps a push-style backend into a serve_model. The turns passed to start()
 * are deep-copied for the worker thread. */
rl_status serve_model_from_push(serve_model **out, const serve_push_backend *b);

/* Whole answer without streaming: runs start/next/stop and returns the text
 * (malloc'd, valid UTF-8: invalid bytes become U+FFFD). *cancel (may be NULL)
 * is checked between pieces. */
rl_status serve_generate(serve_model *m, const serve_turn *turns, int nturns, const serve_gen_params *p,
                         const volatile int *cancel, char **text_out);

#endif
