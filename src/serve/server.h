/* server.h — `rlhf serve`: the feedback web app on libmicrohttpd.
 *
 * One process serves the pages (compiled into the binary: src/serve/web/,
 * embedded as src/serve/web_assets.c), a JSON API, and token streams over
 * server-sent events. docs/serve.md lists every endpoint and the security
 * measures; in short:
 *  - loopback by default; Host header checked against the bound address
 *    (DNS-rebinding), Origin checked on every write, plus a per-session CSRF
 *    token in X-CSRF-Token;
 *  - login with a one-time annotator token → HttpOnly, SameSite=Strict
 *    session cookie (sessions live in memory: a restart logs everyone out);
 *  - strict JSON (unknown fields, wrong types, duplicates → 400 with the
 *    reason), request bodies capped (413), per-annotator write rate limits
 *    (429), per-address login rate limits;
 *  - pages never insert text as HTML (textContent only) and carry a strict
 *    Content-Security-Policy with no inline script; SVG charts are escaped;
 *  - a judgement is answered 201 only after its COMMIT; serve_stop finishes
 *    streams (storing partial answers) and in-flight writes before closing.
 * Library code: returns rl_status, never exits.
 */
#ifndef RL_SERVE_SERVER_H
#define RL_SERVE_SERVER_H
#include <stddef.h>
#include "../base/check.h"
#include "gen.h"
#include "store.h"

typedef struct {
    store *db;                 /* borrowed; must outlive the server */
    serve_model *const *models;/* [nmodels] >= 1, borrowed; compare views pick among them */
    int nmodels;
    const char *host;          /* IPv4 literal or "localhost"; default "127.0.0.1" */
    int port;                  /* 0 = any free port (see serve_port) */
    int threads;               /* libmicrohttpd thread pool size, >= 1 */
    int open_mode;             /* 1: login without a token as the single local operator "local" */
    size_t max_body;           /* request body limit in bytes */
    double rate;               /* writes per second per annotator (token bucket) */
    double burst;              /* bucket size */
    double session_hours;      /* session lifetime */
    const char *public_origin; /* NULL or an extra allowed origin, e.g. "https://label.example.org" */
    const char *const *runs;   /* [nruns] JSONL metric logs of training runs (rl_metrics) to plot on /operator */
    int nruns;
} serve_config;

/* Defaults: 127.0.0.1:8080, 4 threads, 64 KiB bodies, 10 writes/s burst 40, 12 h sessions. */
serve_config serve_config_default(void);

typedef struct serve_server serve_server;

/* Registers the models in the database and starts listening. RL_EIO if the
 * address cannot be bound, RL_EINVAL for a bad config. */
rl_status serve_start(serve_server **out, const serve_config *cfg);
/* The port actually bound (useful with port 0). */
int serve_port(const serve_server *s);
/* Graceful stop: refuses new writes (503), lets running streams finish and
 * store what they produced, waits for in-flight requests, then frees s. */
void serve_stop(serve_server *s);

#endif
