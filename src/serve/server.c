/* server.c — the feedback web app. See server.h and docs/serve.md. */
#include "server.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include "../base/log.h"
#include "text.h"
#include "web_assets.h"

#define MAX_SESSIONS 4096
#define MAX_BUCKETS 2048
#define MAX_TURNS 64
#define MAX_TURN_BYTES 8000
#define MAX_ANSWER_BYTES (64 * 1024)
#define COOKIE "rlhf_session"

/* ---- state ------------------------------------------------------------------- */

typedef struct {
    char id[65];     /* random hex; the cookie value */
    char csrf[65];   /* random hex; must come back in X-CSRF-Token on writes */
    int64_t annotator_id;
    store_role role;
    char name[STORE_NAME_MAX + 1];
    double expires;  /* rl_now() seconds */
} session;

typedef struct {
    char key[80];    /* "a:<annotator id>" or "ip:<address>" */
    double tokens, last;
} bucket;

typedef struct stream_ctx stream_ctx;

struct serve_server {
    serve_config cfg;
    struct MHD_Daemon *d;
    int port;
    int64_t *model_ids;           /* [nmodels] ids in the models table */
    char hosts[4][300];           /* allowed Host header values */
    int nhosts;
    int any_host;                 /* bound to 0.0.0.0 without a public origin: Host not checked */
    pthread_mutex_t mu;           /* sessions, buckets, streams */
    session *sessions;            /* [MAX_SESSIONS]; id[0] == 0 = free */
    bucket *buckets;              /* [MAX_BUCKETS] */
    stream_ctx *streams;          /* running streams (for /api/stop and shutdown) */
    int nstreams;
    int stopping;                 /* read/written with __atomic */
};

typedef struct {
    char *body;
    size_t len, cap;
    int too_big;
} req;

/* A streaming generation (one per POST /api/generate). Output is produced
 * on demand by the MHD reader callback: one model piece per call. */
struct stream_ctx {
    serve_server *srv;
    char id[33];
    int64_t annotator_id, model_id;
    serve_model *model;
    void *st;                    /* the model's stream */
    int cancel;                  /* __atomic: set by /api/stop or shutdown */
    char *conv_json, *params_json;
    uint64_t seed;
    char *text;                  /* raw answer bytes */
    size_t tlen, tcap, emitted;  /* bytes so far / capacity / already sent */
    char *out;                   /* pending SSE bytes */
    size_t olen, opos, ocap;
    int phase;                   /* 0 start event, 1 generating, 2 end of stream */
    int stored;
    int pieces, max_pieces;
    stream_ctx *next;
};

serve_config serve_config_default(void) {
    serve_config c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = 8080;
    c.threads = 4;
    c.max_body = 64 * 1024;
    c.rate = 10;
    c.burst = 40;
    c.session_hours = 12;
    return c;
}

static int stopping(serve_server *s) { return __atomic_load_n(&s->stopping, __ATOMIC_SEQ_CST); }

static void random_hex(char *out, size_t bytes) {
    unsigned char b[64];
    randombytes_buf(b, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, b, bytes);
}

/* ---- responses ------------------------------------------------------------------ */

static void security_headers(struct MHD_Response *r, int html) {
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    /* No inline script or style anywhere, nothing from other origins. */
    MHD_add_response_header(r, "Content-Security-Policy",
        html ? "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
             : "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type, const void *data, size_t n,
                                int copy, const char *cookie, int html) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", html ? "no-cache" : "no-store");
    if (cookie) MHD_add_response_header(r, "Set-Cookie", cookie);
    security_headers(r, html);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends obj (reference stolen) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *obj, const char *cookie) {
    char *txt = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!txt) return send_buf(c, 500, "application/json", "{\"error\":\"out of memory\"}", 25, 0, NULL, 0);
    enum MHD_Result r = send_buf(c, status, "application/json; charset=utf-8", txt, strlen(txt), 1, cookie, 0);
    free(txt);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    /* msg may quote user input: json_string escapes it; invalid UTF-8 is repaired first. */
    char *clean = text_utf8_sanitize(msg, strlen(msg));
    json_object_set_new(o, "error", json_string(clean ? clean : "error"));
    free(clean);
    return send_json(c, status, o, NULL);
}

/* A JSON string of s, repairing invalid UTF-8. */
static json_t *jstr_or_empty(const char *s) {
    json_t *j = json_string(s);
    if (j) return j;
    char *clean = text_utf8_sanitize(s, strlen(s));
    j = json_string(clean ? clean : "");
    free(clean);
    return j;
}

/* ---- sessions, rate limits -------------------------------------------------------- */

static const char *header(struct MHD_Connection *c, const char *name) {
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Finds the caller's session; copies it to *out. 0 if none. */
static int find_session(serve_server *s, struct MHD_Connection *c, session *out) {
    const char *sid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
    if (!sid || strlen(sid) != 64) return 0;
    int found = 0;
    double now = rl_now();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_SESSIONS; i++) {
        session *x = &s->sessions[i];
        if (!x->id[0]) continue;
        if (sodium_memcmp(x->id, sid, 64) == 0) {
            if (x->expires < now) { memset(x, 0, sizeof *x); break; }
            *out = *x;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

static void new_session(serve_server *s, const store_annotator *a, session *out) {
    session x;
    memset(&x, 0, sizeof x);
    random_hex(x.id, 32);
    random_hex(x.csrf, 32);
    x.annotator_id = a->id;
    x.role = a->role;
    snprintf(x.name, sizeof x.name, "%s", a->name);
    x.expires = rl_now() + s->cfg.session_hours * 3600.0;
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    double oldest = INFINITY;
    double now = rl_now();
    for (int i = 0; i < MAX_SESSIONS; i++) {
        session *y = &s->sessions[i];
        if (!y->id[0] || y->expires < now) { slot = i; break; }
        if (y->expires < oldest) { oldest = y->expires; slot = i; }
    }
    s->sessions[slot] = x;
    pthread_mutex_unlock(&s->mu);
    *out = x;
}

static void drop_session(serve_server *s, const char *id) {
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (s->sessions[i].id[0] && sodium_memcmp(s->sessions[i].id, id, 64) == 0) memset(&s->sessions[i], 0, sizeof s->sessions[i]);
    pthread_mutex_unlock(&s->mu);
}

/* Token bucket: 1 if a request under `key` may proceed now. */
static int take_token(serve_server *s, const char *key, double rate, double burst) {
    double now = rl_now();
    int ok = 0;
    pthread_mutex_lock(&s->mu);
    int slot = -1, oldest = 0;
    for (int i = 0; i < MAX_BUCKETS; i++) {
        if (!strcmp(s->buckets[i].key, key)) { slot = i; break; }
        if (s->buckets[i].last < s->buckets[oldest].last) oldest = i;
    }
    if (slot < 0) {
        slot = oldest;
        snprintf(s->buckets[slot].key, sizeof s->buckets[slot].key, "%s", key);
        s->buckets[slot].tokens = burst;
        s->buckets[slot].last = now;
    }
    bucket *b = &s->buckets[slot];
    b->tokens = fmin(burst, b->tokens + (now - b->last) * rate);
    b->last = now;
    if (b->tokens >= 1.0) { b->tokens -= 1.0; ok = 1; }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void client_ip(struct MHD_Connection *c, char *out, size_t n) {
    snprintf(out, n, "?");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, out, (socklen_t)n);
}

/* ---- request checks ------------------------------------------------------------------ */

static int host_ok(serve_server *s, struct MHD_Connection *c) {
    if (s->any_host) return 1;
    const char *h = header(c, "Host");
    if (!h) return 0;
    for (int i = 0; i < s->nhosts; i++)
        if (!strcmp(h, s->hosts[i])) return 1;
    return 0;
}

/* Same-origin check for writes: Origin (when the browser sends one, which
 * it does for every fetch POST) must be this server; Sec-Fetch-Site, when
 * present, must not say cross-site. */
static int origin_ok(serve_server *s, struct MHD_Connection *c) {
    const char *sfs = header(c, "Sec-Fetch-Site");
    if (sfs && strcmp(sfs, "same-origin") && strcmp(sfs, "none")) return 0;
    const char *o = header(c, "Origin");
    if (!o) return 1;
    if (s->cfg.public_origin && !strcmp(o, s->cfg.public_origin)) return 1;
    const char *h = header(c, "Host");
    if (!h || strncmp(o, "http://", 7) || strcmp(o + 7, h)) return 0;
    return 1;
}

static int is_json(struct MHD_Connection *c) {
    const char *t = header(c, "Content-Type");
    return t && !strncasecmp(t, "application/json", 16) && (t[16] == 0 || t[16] == ';');
}

/* Parses the body as one JSON object whose keys are all in `allowed`
 * ("a,b,c"). On failure writes the reason to err and returns NULL. */
static json_t *parse_body(const req *rq, const char *allowed, char *err, size_t n) {
    json_error_t je;
    json_t *o = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &je);
    if (!o) { snprintf(err, n, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text); return NULL; }
    if (!json_is_object(o)) { snprintf(err, n, "the body must be a JSON object"); json_decref(o); return NULL; }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        size_t kl = strlen(k);
        const char *p = allowed;
        int ok = 0;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t l = comma ? (size_t)(comma - p) : strlen(p);
            if (l == kl && !strncmp(p, k, l)) { ok = 1; break; }
            if (!comma) break;
            p = comma + 1;
        }
        if (!ok) {
            char *clean = text_utf8_sanitize(k, kl > 60 ? 60 : kl);
            snprintf(err, n, "unknown field '%s' (allowed: %s)", clean ? clean : "?", allowed);
            free(clean);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Optional string field: 1 ok (*out NULL if absent), 0 wrong type/too long/bad UTF-8. */
static int opt_string(json_t *o, const char *key, size_t max, int newlines, const char **out, char *err, size_t n) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 1;
    if (!json_is_string(v)) { snprintf(err, n, "'%s' must be a string", key); return 0; }
    const char *sv = json_string_value(v);
    size_t l = json_string_length(v);
    if (l > max) { snprintf(err, n, "'%s' is longer than %zu bytes", key, max); return 0; }
    if (strlen(sv) != l || !text_utf8_valid(sv, l, newlines)) { snprintf(err, n, "'%s' contains control characters or NUL", key); return 0; }
    *out = sv;
    return 1;
}

/* Integer field in [lo, hi]; required unless def_ok. */
static int get_int(json_t *o, const char *key, long long lo, long long hi, int required, long long def, long long *out, char *err, size_t n) {
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required) { snprintf(err, n, "missing field '%s'", key); return 0; }
        *out = def;
        return 1;
    }
    if (!json_is_integer(v)) { snprintf(err, n, "'%s' must be an integer", key); return 0; }
    long long x = json_integer_value(v);
    if (x < lo || x > hi) { snprintf(err, n, "'%s' must be in [%lld, %lld]", key, lo, hi); return 0; }
    *out = x;
    return 1;
}

static int get_num(json_t *o, const char *key, double lo, double hi, double def, double *out, char *err, size_t n) {
    json_t *v = json_object_get(o, key);
    if (!v) { *out = def; return 1; }
    if (!json_is_number(v)) { snprintf(err, n, "'%s' must be a number", key); return 0; }
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) { snprintf(err, n, "'%s' must be in [%g, %g]", key, lo, hi); return 0; }
    *out = x;
    return 1;
}

/* messages: [{role, content}] with the last one from the user. Fills turns
 * (pointing into o) and returns the count, or -1 with err. Also accepts
 * {"prompt": "..."} as a single user turn. */
static int get_turns(json_t *o, serve_turn *turns, char *err, size_t n) {
    json_t *prompt = json_object_get(o, "prompt"), *msgs = json_object_get(o, "messages");
    if (prompt && msgs) { snprintf(err, n, "give either 'prompt' or 'messages', not both"); return -1; }
    if (prompt) {
        const char *p;
        if (!opt_string(o, "prompt", MAX_TURN_BYTES, 1, &p, err, n)) return -1;
        if (!p || !*p) { snprintf(err, n, "'prompt' must not be empty"); return -1; }
        turns[0].role = "user";
        turns[0].content = p;
        return 1;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) < 1 || json_array_size(msgs) > MAX_TURNS) {
        snprintf(err, n, "'messages' must be an array of 1..%d {role, content} objects", MAX_TURNS);
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || json_object_size(m) != 2) { snprintf(err, n, "messages[%zu] must be {\"role\": ..., \"content\": ...}", i); return -1; }
        const char *role, *content;
        if (!opt_string(m, "role", 16, 0, &role, err, n) || !opt_string(m, "content", MAX_TURN_BYTES, 1, &content, err, n)) return -1;
        if (!role || !content) { snprintf(err, n, "messages[%zu] must be {\"role\": ..., \"content\": ...}", i); return -1; }
        if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system")) {
            snprintf(err, n, "messages[%zu].role must be user, assistant or system", i);
            return -1;
        }
        turns[i].role = role;
        turns[i].content = content;
    }
    int nt = (int)json_array_size(msgs);
    if (strcmp(turns[nt - 1].role, "user") || !*turns[nt - 1].content) { snprintf(err, n, "the last message must be a non-empty user message"); return -1; }
    return nt;
}

static int get_params(json_t *o, serve_gen_params *p, char *err, size_t n) {
    json_t *pj = json_object_get(o, "params");
    memset(p, 0, sizeof *p);
    p->max_tokens = 128;
    p->temperature = 0.8;
    p->top_p = 1.0;
    randombytes_buf(&p->seed, sizeof p->seed);
    p->seed &= (1ull << 53) - 1; /* stays exact in JSON numbers */
    if (!pj) return 1;
    if (!json_is_object(pj)) { snprintf(err, n, "'params' must be an object"); return 0; }
    const char *k;
    json_t *v;
    json_object_foreach(pj, k, v) {
        if (strcmp(k, "max_tokens") && strcmp(k, "temperature") && strcmp(k, "top_k") && strcmp(k, "top_p") && strcmp(k, "seed")) {
            snprintf(err, n, "unknown sampling parameter (allowed: max_tokens, temperature, top_k, top_p, seed)");
            return 0;
        }
    }
    long long mt, tk, seed;
    if (!get_int(pj, "max_tokens", 1, 1024, 0, 128, &mt, err, n)) return 0;
    if (!get_int(pj, "top_k", 0, 100000, 0, 0, &tk, err, n)) return 0;
    if (!get_int(pj, "seed", 0, (1ll << 53) - 1, 0, (long long)p->seed, &seed, err, n)) return 0;
    if (!get_num(pj, "temperature", 0, 5, 0.8, &p->temperature, err, n)) return 0;
    if (!get_num(pj, "top_p", 1e-6, 1, 1, &p->top_p, err, n)) return 0;
    p->max_tokens = (int)mt;
    p->top_k = (int)tk;
    p->seed = (uint64_t)seed;
    return 1;
}

static char *params_json(const serve_gen_params *p) {
    json_t *o = json_object();
    json_object_set_new(o, "max_tokens", json_integer(p->max_tokens));
    json_object_set_new(o, "temperature", json_real(p->temperature));
    json_object_set_new(o, "top_k", json_integer(p->top_k));
    json_object_set_new(o, "top_p", json_real(p->top_p));
    json_object_set_new(o, "seed", json_integer((json_int_t)p->seed));
    char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return t;
}

static char *turns_json(const serve_turn *t, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_pack("{s:s,s:s}", "role", t[i].role, "content", t[i].content));
    char *s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(a);
    return s;
}

/* ---- streaming generation ------------------------------------------------------------ */

static void out_append(stream_ctx *x, const char *s, size_t n) {
    if (x->olen + n > x->ocap) {
        size_t cap = (x->olen + n) * 2 + 256;
        char *nb = realloc(x->out, cap);
        if (!nb) return; /* out of memory: the event is dropped, the stream ends below */
        x->out = nb;
        x->ocap = cap;
    }
    memcpy(x->out + x->olen, s, n);
    x->olen += n;
}

/* "event: <name>\ndata: <json>\n\n"; obj stolen. */
static void out_event(stream_ctx *x, const char *name, json_t *obj) {
    char *t = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!t) return;
    char head[64];
    int hl = snprintf(head, sizeof head, "event: %s\ndata: ", name);
    out_append(x, head, (size_t)hl);
    out_append(x, t, strlen(t));
    out_append(x, "\n\n", 2);
    free(t);
}

/* Sends text[emitted..upto) as a token event (invalid bytes repaired). */
static void emit_text(stream_ctx *x, size_t upto) {
    if (upto <= x->emitted) return;
    char *clean = text_utf8_sanitize(x->text + x->emitted, upto - x->emitted);
    x->emitted = upto;
    if (!clean) return;
    out_event(x, "token", json_pack("{s:s}", "text", clean));
    free(clean);
}

/* Stores the generation (also when stopped early) and queues the done event. */
static void stream_finish(stream_ctx *x, int stopped, const char *error) {
    emit_text(x, x->tlen);
    char *answer = text_utf8_sanitize(x->text ? x->text : "", x->tlen);
    int64_t gid = 0;
    rl_status r = RL_ENOMEM;
    if (answer) {
        store_generation g = {x->model_id, x->annotator_id, x->conv_json, answer, x->params_json, x->seed, stopped || error};
        r = store_generation_add(x->srv->cfg.db, &g, &gid);
    }
    x->stored = 1;
    if (r != RL_OK) {
        out_event(x, "error", json_pack("{s:s}", "error", "the answer could not be stored"));
    } else {
        if (error) out_event(x, "error", json_pack("{s:s}", "error", error));
        out_event(x, "done", json_pack("{s:I,s:b,s:s,s:b}", "id", (json_int_t)gid, "stopped", stopped || error != NULL,
                                       "text", answer, "dummy", x->model->is_dummy));
    }
    free(answer);
    x->phase = 2;
}

static void stream_advance(stream_ctx *x) {
    if (x->phase == 0) {
        out_event(x, "start", json_pack("{s:s,s:b,s:s}", "stream", x->id, "dummy", x->model->is_dummy,
                                        "generator", x->model->is_dummy ? "dummy echo generator (not a trained model)" : x->model->kind));
        x->phase = 1;
        return;
    }
    if (x->phase != 1) return;
    if (__atomic_load_n(&x->cancel, __ATOMIC_SEQ_CST) || stopping(x->srv)) { stream_finish(x, 1, NULL); return; }
    if (x->pieces >= x->max_pieces || x->tlen >= MAX_ANSWER_BYTES) { stream_finish(x, 0, NULL); return; }
    if (x->tcap - x->tlen < 1024) {
        size_t cap = x->tcap * 2 + 4096;
        char *nb = realloc(x->text, cap);
        if (!nb) { stream_finish(x, 1, "out of memory"); return; }
        x->text = nb;
        x->tcap = cap;
    }
    size_t n = 0;
    int rc = x->model->next(x->st, x->text + x->tlen, 1000, &n);
    if (rc < 0) { stream_finish(x, 1, "the model failed while generating"); return; }
    if (rc == 0) { stream_finish(x, 0, NULL); return; }
    x->tlen += n;
    x->pieces++;
    /* Hold back an incomplete UTF-8 character until the next piece completes it. */
    emit_text(x, x->emitted + text_utf8_complete_prefix(x->text + x->emitted, x->tlen - x->emitted));
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *x = cls;
    while (x->opos >= x->olen) {
        x->opos = x->olen = 0;
        if (x->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        stream_advance(x);
    }
    size_t k = x->olen - x->opos;
    if (k > max) k = max;
    memcpy(buf, x->out + x->opos, k);
    x->opos += k;
    return (ssize_t)k;
}

static void stream_free(void *cls) {
    stream_ctx *x = cls;
    serve_server *s = x->srv;
    /* The browser went away mid-answer: keep what was generated. */
    if (!x->stored && x->phase == 1) stream_finish(x, 1, NULL);
    pthread_mutex_lock(&s->mu);
    for (stream_ctx **p = &s->streams; *p; p = &(*p)->next)
        if (*p == x) { *p = x->next; s->nstreams--; break; }
    pthread_mutex_unlock(&s->mu);
    if (x->st) x->model->stop(x->st);
    free(x->conv_json);
    free(x->params_json);
    free(x->text);
    free(x->out);
    free(x);
}

/* ---- handlers ------------------------------------------------------------------------------ */

typedef struct {
    serve_server *s;
    struct MHD_Connection *c;
    req *rq;
    session ses;
} call;

#define ERRBUF char err[400] = ""

static int pick_model(serve_server *s, json_t *o, int *idx, char *err, size_t n) {
    long long m;
    if (!get_int(o, "model", 0, s->cfg.nmodels - 1, 0, 0, &m, err, n)) return 0;
    *idx = (int)m;
    return 1;
}

static enum MHD_Result h_generate(call *k) {
    ERRBUF;
    json_t *o = parse_body(k->rq, "messages,prompt,params,model", err, sizeof err);
    if (!o) return send_error(k->c, 400, "%s", err);
    serve_turn turns[MAX_TURNS];
    serve_gen_params p;
    int mi = 0;
    int nt = get_turns(o, turns, err, sizeof err);
    if (nt < 0 || !get_params(o, &p, err, sizeof err) || !pick_model(k->s, o, &mi, err, sizeof err)) {
        json_decref(o);
        return send_error(k->c, 400, "%s", err);
    }
    p.realtime = 1;
    stream_ctx *x = calloc(1, sizeof *x);
    if (!x) { json_decref(o); return send_error(k->c, 500, "out of memory"); }
    x->srv = k->s;
    random_hex(x->id, 16);
    x->annotator_id = k->ses.annotator_id;
    x->model = k->s->cfg.models[mi];
    x->model_id = k->s->model_ids[mi];
    x->seed = p.seed;
    x->max_pieces = p.max_tokens;
    x->conv_json = turns_json(turns, nt);
    x->params_json = params_json(&p);
    rl_status r = x->model->start(x->model, turns, nt, &p, &x->st);
    json_decref(o);
    if (r != RL_OK || !x->conv_json || !x->params_json) {
        x->stored = 1;
        stream_free(x);
        return send_error(k->c, 500, "the model could not start: %s", rl_error());
    }
    pthread_mutex_lock(&k->s->mu);
    x->next = k->s->streams;
    k->s->streams = x;
    k->s->nstreams++;
    pthread_mutex_unlock(&k->s->mu);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, x, stream_free);
    if (!resp) { stream_free(x); return MHD_NO; }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    security_headers(resp, 0);
    enum MHD_Result ret = MHD_queue_response(k->c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result h_stop(call *k) {
    ERRBUF;
    json_t *o = parse_body(k->rq, "stream", err, sizeof err);
    if (!o) return send_error(k->c, 400, "%s", err);
    const char *id;
    if (!opt_string(o, "stream", 32, 0, &id, err, sizeof err) || !id) {
        json_decref(o);
        return send_error(k->c, 400, "%s", err[0] ? err : "missing field 'stream'");
    }
    int found = 0;
    pthread_mutex_lock(&k->s->mu);
    for (stream_ctx *x = k->s->streams; x; x = x->next)
        if (strlen(id) == 32 && sodium_memcmp(x->id, id, 32) == 0 && x->annotator_id == k->ses.annotator_id) {
            __atomic_store_n(&x->cancel, 1, __ATOMIC_SEQ_CST);
            found = 1;
        }
    pthread_mutex_unlock(&k->s->mu);
    json_decref(o);
    if (!found) return send_error(k->c, 404, "no running stream with that id (it may have finished)");
    return send_json(k->c, 200, json_pack("{s:b}", "stopped", 1), NULL);
}

/* Reads generations: [ids] into items; n in [lo, hi]. */
static int get_ids(json_t *o, const char *key, int64_t *items, int lo, int hi, char *err, size_t n) {
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a) || (int)json_array_size(a) < lo || (int)json_array_size(a) > hi) {
        snprintf(err, n, "'%s' must be an array of %d..%d generation ids", key, lo, hi);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) { snprintf(err, n, "'%s'[%zu] must be a positive integer", key, i); return -1; }
        items[i] = json_integer_value(v);
    }
    return (int)json_array_size(a);
}

static enum MHD_Result store_and_reply(call *k, store_judgement *j) {
    int64_t id = 0;
    rl_status r = store_judgement_add(k->s->cfg.db, j, &id);
    if (r == RL_EINVAL) return send_error(k->c, 400, "%s", rl_error());
    if (r != RL_OK) {
        rl_warn("storing a judgement failed: %s", rl_error());
        return send_error(k->c, 503, "the judgement could not be stored; retry");
    }
    /* 201 only now: the row is committed. */
    return send_json(k->c, 201, json_pack("{s:I}", "id", (json_int_t)id), NULL);
}

static enum MHD_Result h_judge(call *k, store_kind kind) {
    ERRBUF;
    static const char *const allowed[] = {
        "generation,thumb,comment,client_key",
        "generations,choice,comment,client_key",
        "generations,order,comment,client_key",
        "generation,rating,scale,comment,client_key",
    };
    json_t *o = parse_body(k->rq, allowed[kind], err, sizeof err);
    if (!o) return send_error(k->c, 400, "%s", err);
    store_judgement j;
    memset(&j, 0, sizeof j);
    j.kind = kind;
    j.annotator_id = k->ses.annotator_id;
    int64_t items[STORE_MAX_ITEMS];
    int order[STORE_MAX_ITEMS];
    int ok = opt_string(o, "comment", 4000, 1, &j.comment, err, sizeof err) &&
             opt_string(o, "client_key", 64, 0, &j.client_key, err, sizeof err);
    long long v = 0;
    if (ok && (kind == STORE_THUMBS || kind == STORE_RATING)) {
        ok = get_int(o, "generation", 1, INT64_MAX, 1, 0, &v, err, sizeof err);
        items[0] = v;
        j.nitems = 1;
    }
    if (ok && kind == STORE_THUMBS) {
        ok = get_int(o, "thumb", -1, 1, 1, 0, &v, err, sizeof err);
        if (ok && v == 0) { ok = 0; snprintf(err, sizeof err, "'thumb' must be 1 (up) or -1 (down)"); }
        j.thumb = (int)v;
    }
    if (ok && kind == STORE_RATING) {
        json_t *sc = json_object_get(o, "scale");
        j.rating_lo = 1;
        j.rating_hi = 7;
        if (sc) {
            if (!json_is_array(sc) || json_array_size(sc) != 2 || !json_is_number(json_array_get(sc, 0)) || !json_is_number(json_array_get(sc, 1))) {
                ok = 0;
                snprintf(err, sizeof err, "'scale' must be [lo, hi]");
            } else {
                j.rating_lo = json_number_value(json_array_get(sc, 0));
                j.rating_hi = json_number_value(json_array_get(sc, 1));
            }
        }
        if (ok) ok = get_num(o, "rating", -1e9, 1e9, NAN, &j.rating, err, sizeof err);
        if (ok && !json_object_get(o, "rating")) { ok = 0; snprintf(err, sizeof err, "missing field 'rating'"); }
    }
    if (ok && kind == STORE_PAIR) {
        ok = get_ids(o, "generations", items, 2, 2, err, sizeof err) == 2;
        j.nitems = 2;
        const char *ch;
        if (ok) ok = opt_string(o, "choice", 16, 0, &ch, err, sizeof err);
        if (ok && (!ch || store_choice_parse(ch, &j.choice))) { ok = 0; snprintf(err, sizeof err, "'choice' must be \"A\", \"B\", \"tie\" or \"both_bad\""); }
    }
    if (ok && kind == STORE_RANKING) {
        int n = get_ids(o, "generations", items, 2, STORE_MAX_ITEMS, err, sizeof err);
        ok = n >= 2;
        j.nitems = n;
        json_t *ord = json_object_get(o, "order");
        if (ok && (!json_is_array(ord) || (int)json_array_size(ord) != n)) { ok = 0; snprintf(err, sizeof err, "'order' must list every position 0..%d once, best first", n - 1); }
        for (int i = 0; ok && i < n; i++) {
            json_t *e = json_array_get(ord, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= n) { ok = 0; snprintf(err, sizeof err, "'order'[%d] must be a position in 0..%d", i, n - 1); }
            else order[i] = (int)json_integer_value(e);
        }
        j.order = order;
    }
    j.items = items;
    enum MHD_Result ret = ok ? store_and_reply(k, &j) : send_error(k->c, 400, "%s", err);
    json_decref(o);
    return ret;
}

/* K answers to one prompt for the compare (K = 2) and rank views: from K
 * different models when there are that many, otherwise from the same
 * model(s) with different seeds; stored, shuffled, with no model identity. */
static enum MHD_Result h_compare(call *k) {
    ERRBUF;
    json_t *o = parse_body(k->rq, "messages,prompt,k,params", err, sizeof err);
    if (!o) return send_error(k->c, 400, "%s", err);
    serve_turn turns[MAX_TURNS];
    serve_gen_params p;
    long long kk;
    int nt = get_turns(o, turns, err, sizeof err);
    if (nt < 0 || !get_params(o, &p, err, sizeof err) || !get_int(o, "k", 2, 6, 0, 2, &kk, err, sizeof err)) {
        json_decref(o);
        return send_error(k->c, 400, "%s", err);
    }
    int K = (int)kk, nm = k->s->cfg.nmodels;
    int idx[8];
    for (int i = 0; i < nm && i < 8; i++) idx[i] = i;
    /* Distinct models if possible (partial Fisher–Yates), else cycle through them. */
    for (int i = 0; i < K; i++) {
        if (i < nm && i < 8) {
            int r = i + (int)randombytes_uniform((uint32_t)(nm < 8 ? nm : 8) - (uint32_t)i);
            int t = idx[i]; idx[i] = idx[r]; idx[r] = t;
        } else {
            idx[i] = (int)randombytes_uniform((uint32_t)nm);
        }
    }
    char *conv = turns_json(turns, nt);
    json_t *items = json_array();
    int any_dummy = 0;
    rl_status r = conv ? RL_OK : RL_ENOMEM;
    int64_t gids[8];
    char *texts[8] = {0};
    for (int i = 0; i < K && r == RL_OK; i++) {
        serve_model *m = k->s->cfg.models[idx[i]];
        serve_gen_params pi = p;
        randombytes_buf(&pi.seed, sizeof pi.seed);
        pi.seed &= (1ull << 53) - 1;
        pi.realtime = 0;
        any_dummy |= m->is_dummy;
        r = serve_generate(m, turns, nt, &pi, &k->s->stopping, &texts[i]);
        char *pj = params_json(&pi);
        if (r == RL_OK && pj) {
            store_generation g = {k->s->model_ids[idx[i]], k->ses.annotator_id, conv, texts[i], pj, pi.seed, 0};
            r = store_generation_add(k->s->cfg.db, &g, &gids[i]);
        }
        free(pj);
    }
    if (r == RL_OK) {
        int perm[8];
        for (int i = 0; i < K; i++) perm[i] = i;
        for (int i = K - 1; i > 0; i--) {
            int j = (int)randombytes_uniform((uint32_t)i + 1);
            int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        for (int i = 0; i < K; i++) {
            char label[2] = {(char)('A' + i), 0};
            json_array_append_new(items, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)gids[perm[i]], "label", label, "text", texts[perm[i]]));
        }
    }
    for (int i = 0; i < K; i++) free(texts[i]);
    free(conv);
    json_decref(o);
    if (r != RL_OK) {
        json_decref(items);
        return send_error(k->c, 500, "generation failed: %s", rl_error());
    }
    return send_json(k->c, 200, json_pack("{s:o,s:b}", "items", items, "dummy", any_dummy), NULL);
}

static enum MHD_Result h_profile_get(call *k) {
    char *js = NULL;
    if (store_profile_json(k->s->cfg.db, k->ses.annotator_id, &js) != RL_OK) return send_error(k->c, 500, "%s", rl_error());
    enum MHD_Result r = send_buf(k->c, 200, "application/json; charset=utf-8", js, strlen(js), 1, NULL, 0);
    free(js);
    return r;
}

static enum MHD_Result h_profile_set(call *k) {
    ERRBUF;
    json_t *o = parse_body(k->rq, "consent,answers", err, sizeof err);
    if (!o) return send_error(k->c, 400, "%s", err);
    json_t *cons = json_object_get(o, "consent"), *ans = json_object_get(o, "answers");
    if (!json_is_boolean(cons)) { json_decref(o); return send_error(k->c, 400, "'consent' must be true or false"); }
    if (ans && !json_is_object(ans)) { json_decref(o); return send_error(k->c, 400, "'answers' must be an object"); }
    const char *keys[64], *vals[64];
    int n = 0;
    const char *key;
    json_t *v;
    if (json_is_true(cons) && ans) {
        json_object_foreach(ans, key, v) {
            if (n >= 64 || !json_is_string(v)) { json_decref(o); return send_error(k->c, 400, "answers must be at most 64 strings"); }
            keys[n] = key;
            vals[n] = json_string_value(v);
            n++;
        }
    }
    rl_status r = store_profile_set(k->s->cfg.db, k->ses.annotator_id, json_is_true(cons), keys, vals, n);
    json_decref(o);
    if (r == RL_EINVAL) return send_error(k->c, 400, "%s", rl_error());
    if (r != RL_OK) return send_error(k->c, 503, "%s", rl_error());
    return send_json(k->c, 200, json_pack("{s:b}", "saved", 1), NULL);
}

/* ---- operator charts (server-side SVG) ----------------------------------------------------- */

static void svg_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void svg_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) { *len += (size_t)n; return; }
        size_t nc = *cap * 2 + (size_t)(n > 0 ? n : 0);
        char *nb = realloc(*buf, nc);
        if (!nb) return;
        *buf = nb;
        *cap = nc;
    }
}

/* Horizontal bar chart of (label, count) rows. Labels are escaped. */
static char *svg_bars(const char *title, const char *const *labels, const long long *values, int n) {
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    b[0] = 0;
    long long vmax = 1;
    for (int i = 0; i < n; i++) if (values[i] > vmax) vmax = values[i];
    int rowh = 22, top = 34, W = 640, lw = 200, bw = W - lw - 70;
    int H = top + (n ? n : 1) * rowh + 10;
    char esc[400];
    size_t el = 0;
    text_xml_escape(esc, sizeof esc, &el, title);
    svg_add(&b, &len, &cap,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/><text x=\"8\" y=\"20\" font-weight=\"bold\">%s</text>",
            W, H, W, H, esc);
    if (!n) svg_add(&b, &len, &cap, "<text x=\"8\" y=\"%d\" fill=\"#666\">no judgements yet</text>", top + 14);
    for (int i = 0; i < n; i++) {
        int y = top + i * rowh;
        int w = (int)((double)values[i] / (double)vmax * bw);
        el = 0;
        /* Cut long labels at a character boundary before escaping. */
        char cut[64];
        snprintf(cut, sizeof cut, "%s", labels[i]);
        cut[text_utf8_complete_prefix(cut, strlen(cut))] = 0;
        char *clean = text_utf8_sanitize(cut, strlen(cut));
        text_xml_escape(esc, sizeof esc, &el, clean ? clean : "?");
        free(clean);
        svg_add(&b, &len, &cap,
                "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#4a7bd0\"/>"
                "<text x=\"%d\" y=\"%d\">%lld</text>",
                lw - 6, y + 15, esc, lw, y + 3, w > 0 ? w : 1, rowh - 6, lw + w + 6, y + 15, values[i]);
    }
    svg_add(&b, &len, &cap, "</svg>");
    return b;
}

static enum MHD_Result h_chart(call *k) {
    const char *by = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "by");
    if (!by) by = "kind";
    const char *key, *label, *title;
    if (!strcmp(by, "kind")) { key = "by_kind"; label = "kind"; title = "Judgements by kind"; }
    else if (!strcmp(by, "annotator")) { key = "by_annotator"; label = "annotator"; title = "Judgements by annotator"; }
    else if (!strcmp(by, "group")) { key = "by_group"; label = "group"; title = "Judgements by group"; }
    else if (!strcmp(by, "day")) { key = "by_day"; label = "day"; title = "Judgements per day (UTC)"; }
    else return send_error(k->c, 400, "'by' must be kind, annotator, group or day");
    char *js = NULL;
    if (store_stats_json(k->s->cfg.db, &js) != RL_OK) return send_error(k->c, 500, "%s", rl_error());
    json_error_t je;
    json_t *st = json_loads(js, 0, &je);
    free(js);
    json_t *arr = json_object_get(st, key);
    int n = 0;
    const char *labels[256];
    long long values[256];
    size_t i;
    json_t *row;
    json_array_foreach(arr, i, row) {
        const char *l = json_string_value(json_object_get(row, label));
        long long v = json_integer_value(json_object_get(row, "count"));
        if (!l) continue;
        /* by_day has one row per (day, kind): sum them per day. */
        if (n > 0 && !strcmp(labels[n - 1], l)) { values[n - 1] += v; continue; }
        if (n >= 256) break;
        labels[n] = l;
        values[n] = v;
        n++;
    }
    char *svg = svg_bars(title, labels, values, n);
    json_decref(st);
    if (!svg) return send_error(k->c, 500, "out of memory");
    enum MHD_Result r = send_buf(k->c, 200, "image/svg+xml", svg, strlen(svg), 1, NULL, 0);
    free(svg);
    return r;
}

/* ---- training-run plots (operator) ------------------------------------------------------------
 * The operator passes JSONL metric logs (one object per line, as rl_metrics
 * writes them) with --runs; they are addressed by index only, never by a
 * path from the request. */

#define RUN_MAX_BYTES (64 << 20)
#define RUN_MAX_POINTS 2000

/* Numeric keys of the first lines of run i (excluding "step"): a JSON array. */
static json_t *run_keys(const char *path) {
    json_t *keys = json_array();
    FILE *f = fopen(path, "r");
    if (!f) return keys;
    char *line = NULL;
    size_t cap = 0;
    for (int n = 0; n < 50 && getline(&line, &cap, f) > 0; n++) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            if (!json_is_number(v) || !strcmp(k, "step")) continue;
            int seen = 0;
            size_t i;
            json_t *e;
            json_array_foreach(keys, i, e) if (!strcmp(json_string_value(e), k)) seen = 1;
            if (!seen && json_array_size(keys) < 64) json_array_append_new(keys, jstr_or_empty(k));
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return keys;
}

static enum MHD_Result h_runs(call *k) {
    json_t *arr = json_array();
    for (int i = 0; i < k->s->cfg.nruns; i++) {
        const char *p = k->s->cfg.runs[i];
        const char *base = strrchr(p, '/');
        json_array_append_new(arr, json_pack("{s:i,s:o,s:o}", "index", i, "name", jstr_or_empty(base ? base + 1 : p), "keys", run_keys(p)));
    }
    return send_json(k->c, 200, json_pack("{s:o}", "runs", arr), NULL);
}

static enum MHD_Result h_run_svg(call *k) {
    const char *rs = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "run");
    const char *key = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "key");
    char *end = NULL;
    long ri = rs ? strtol(rs, &end, 10) : -1;
    if (!rs || *end || ri < 0 || ri >= k->s->cfg.nruns) return send_error(k->c, 400, "'run' must be an index in [0, %d)", k->s->cfg.nruns);
    if (!key || !*key || strlen(key) > 64) return send_error(k->c, 400, "'key' must name a metric");
    FILE *f = fopen(k->s->cfg.runs[ri], "r");
    if (!f) return send_error(k->c, 404, "run log cannot be read");
    size_t n = 0, cap = 1024, bytes = 0;
    double *xs = malloc(cap * sizeof *xs), *ys = malloc(cap * sizeof *ys);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    long lineno = 0;
    while (xs && ys && (got = getline(&line, &lcap, f)) > 0 && bytes < RUN_MAX_BYTES) {
        bytes += (size_t)got;
        lineno++;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        json_t *v = json_object_get(o, key), *st = json_object_get(o, "step");
        if (json_is_number(v) && isfinite(json_number_value(v))) {
            if (n == cap) {
                cap *= 2;
                double *nx = realloc(xs, cap * sizeof *xs), *ny = nx ? realloc(ys, cap * sizeof *ys) : NULL;
                if (nx) xs = nx;
                if (!nx || !ny) { json_decref(o); break; }
                ys = ny;
            }
            xs[n] = json_is_number(st) ? json_number_value(st) : (double)lineno;
            ys[n] = json_number_value(v);
            n++;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    size_t scap = 8192, len = 0;
    char *b = malloc(scap);
    if (!b || !xs || !ys) { free(b); free(xs); free(ys); return send_error(k->c, 500, "out of memory"); }
    b[0] = 0;
    int W = 640, H = 260, L = 60, R = 12, T = 30, B = 28;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        x0 = fmin(x0, xs[i]); x1 = fmax(x1, xs[i]);
        y0 = fmin(y0, ys[i]); y1 = fmax(y1, ys[i]);
    }
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) { y1 = y0 + 1; y0 -= 1; }
    char esc[300], title[200];
    size_t el = 0;
    const char *base = strrchr(k->s->cfg.runs[ri], '/');
    snprintf(title, sizeof title, "%s: %s", base ? base + 1 : k->s->cfg.runs[ri], key);
    char *clean = text_utf8_sanitize(title, strlen(title));
    text_xml_escape(esc, sizeof esc, &el, clean ? clean : "");
    free(clean);
    svg_add(&b, &len, &scap,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/><text x=\"8\" y=\"18\" font-weight=\"bold\">%s</text>"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>",
            W, H, W, H, esc, L, H - B, W - R, H - B, L, T, L, H - B);
    if (!n) svg_add(&b, &len, &scap, "<text x=\"%d\" y=\"%d\" fill=\"#666\">no values of this key</text>", L + 10, T + 20);
    else {
        svg_add(&b, &len, &scap,
                "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.4g</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.4g</text>"
                "<text x=\"%d\" y=\"%d\">%.6g</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.6g</text><polyline fill=\"none\" stroke=\"#4a7bd0\" stroke-width=\"1.5\" points=\"",
                L - 4, T + 4, y1, L - 4, H - B, y0, L, H - 8, x0, W - R, H - 8, x1);
        /* At most RUN_MAX_POINTS points: take every stride-th value (and the last). */
        size_t stride = n > RUN_MAX_POINTS ? (n + RUN_MAX_POINTS - 1) / RUN_MAX_POINTS : 1;
        for (size_t i = 0; i < n; i += stride) {
            size_t j = i + stride >= n ? n - 1 : i;
            double px = L + (xs[j] - x0) / (x1 - x0) * (W - L - R), py = (H - B) - (ys[j] - y0) / (y1 - y0) * (H - B - T);
            svg_add(&b, &len, &scap, "%.1f,%.1f ", px, py);
        }
        svg_add(&b, &len, &scap, "\"/>");
    }
    svg_add(&b, &len, &scap, "</svg>");
    free(xs);
    free(ys);
    enum MHD_Result r = send_buf(k->c, 200, "image/svg+xml", b, strlen(b), 1, NULL, 0);
    free(b);
    return r;
}

/* ---- login ----------------------------------------------------------------------------------- */

static enum MHD_Result h_login(call *k) {
    ERRBUF;
    char ip[64], key[80];
    client_ip(k->c, ip, sizeof ip);
    snprintf(key, sizeof key, "ip:%s", ip);
    /* Guessing a 256-bit token is hopeless anyway; this keeps it from being a CPU sink. */
    if (!take_token(k->s, key, 20, 100)) return send_error(k->c, 429, "too many login attempts; wait a few seconds");
    json_t *o = parse_body(k->rq, "token", err, sizeof err);
    if (!o) return send_error(k->c, 400, "%s", err);
    const char *tok;
    if (!opt_string(o, "token", STORE_TOKEN_MAX, 0, &tok, err, sizeof err)) { json_decref(o); return send_error(k->c, 400, "%s", err); }
    store_annotator a;
    rl_status r;
    if ((!tok || !*tok) && k->s->cfg.open_mode) r = store_annotator_local(k->s->cfg.db, &a);
    else if (!tok || !*tok) r = rl_fail(RL_EAUTH, "a token is required");
    else r = store_annotator_auth(k->s->cfg.db, tok, &a);
    json_decref(o);
    if (r == RL_EAUTH) return send_error(k->c, 401, "invalid token");
    if (r != RL_OK) return send_error(k->c, 503, "%s", rl_error());
    session ses;
    new_session(k->s, &a, &ses);
    char cookie[256];
    snprintf(cookie, sizeof cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", ses.id, (int)(k->s->cfg.session_hours * 3600));
    return send_json(k->c, 200, json_pack("{s:s,s:s,s:s}", "name", a.name, "role", a.role == STORE_ROLE_OPERATOR ? "operator" : "annotator", "csrf", ses.csrf), cookie);
}

static enum MHD_Result h_me(call *k) {
    int any_dummy = 0;
    for (int i = 0; i < k->s->cfg.nmodels; i++) any_dummy |= k->s->cfg.models[i]->is_dummy;
    return send_json(k->c, 200,
                     json_pack("{s:s,s:s,s:s,s:i,s:b,s:b}", "name", k->ses.name, "role", k->ses.role == STORE_ROLE_OPERATOR ? "operator" : "annotator",
                               "csrf", k->ses.csrf, "models", k->s->cfg.nmodels, "dummy", any_dummy, "open_mode", k->s->cfg.open_mode),
                     NULL);
}

/* ---- routing ----------------------------------------------------------------------------------- */

static const struct { const char *url, *file; } pages[] = {
    {"/", "login.html"}, {"/chat", "chat.html"}, {"/compare", "compare.html"}, {"/rank", "rank.html"},
    {"/operator", "operator.html"}, {"/profile", "profile.html"},
};

static enum MHD_Result serve_static(struct MHD_Connection *c, const char *url) {
    const char *file = NULL;
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++)
        if (!strcmp(url, pages[i].url)) file = pages[i].file;
    if (!file && !strncmp(url, "/static/", 8)) file = url + 8;
    /* Only names compiled into the binary exist; there is no file system path to traverse. */
    const serve_asset *a = file ? serve_asset_find(file) : NULL;
    if (!a) return send_error(c, 404, "not found");
    return send_buf(c, 200, a->type, a->data, a->len, 0, NULL, 1);
}

static enum MHD_Result dispatch(serve_server *s, struct MHD_Connection *c, const char *url, const char *method, req *rq) {
    if (!host_ok(s, c)) return send_error(c, 421, "unexpected Host header (this server answers only to its own address)");
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int is_post = !strcmp(method, "POST");
    if (strncmp(url, "/api/", 5)) {
        if (!is_get) return send_error(c, 405, "method not allowed");
        return serve_static(c, url);
    }
    if (!strcmp(url, "/api/health") && is_get) return send_json(c, 200, json_pack("{s:b,s:b}", "ok", 1, "stopping", stopping(s)), NULL);
    call k;
    memset(&k, 0, sizeof k);
    k.s = s;
    k.c = c;
    k.rq = rq;
    if (is_post) {
        if (!origin_ok(s, c)) return send_error(c, 403, "cross-origin request refused");
        if (!is_json(c)) return send_error(c, 415, "Content-Type must be application/json");
        if (stopping(s)) return send_error(c, 503, "the server is shutting down");
        if (!strcmp(url, "/api/login")) return h_login(&k);
    } else if (!is_get) {
        return send_error(c, 405, "method not allowed");
    }
    if (!find_session(s, c, &k.ses)) return send_error(c, 401, "not logged in");
    if (is_get) {
        if (!strcmp(url, "/api/me")) return h_me(&k);
        if (!strcmp(url, "/api/profile")) return h_profile_get(&k);
        if (!strcmp(url, "/api/stats") || !strcmp(url, "/api/chart.svg") || !strcmp(url, "/api/runs") || !strcmp(url, "/api/run.svg")) {
            if (k.ses.role != STORE_ROLE_OPERATOR) return send_error(c, 403, "operators only");
            if (!strcmp(url, "/api/chart.svg")) return h_chart(&k);
            if (!strcmp(url, "/api/runs")) return h_runs(&k);
            if (!strcmp(url, "/api/run.svg")) return h_run_svg(&k);
            char *js = NULL;
            if (store_stats_json(s->cfg.db, &js) != RL_OK) return send_error(c, 500, "%s", rl_error());
            enum MHD_Result r = send_buf(c, 200, "application/json; charset=utf-8", js, strlen(js), 1, NULL, 0);
            free(js);
            return r;
        }
        return send_error(c, 404, "no such endpoint");
    }
    const char *csrf = header(c, "X-CSRF-Token");
    if (!csrf || strlen(csrf) != 64 || sodium_memcmp(csrf, k.ses.csrf, 64) != 0) return send_error(c, 403, "missing or wrong CSRF token");
    if (!strcmp(url, "/api/logout")) {
        drop_session(s, k.ses.id);
        return send_json(c, 200, json_pack("{s:b}", "ok", 1), COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    }
    if (!strcmp(url, "/api/stop")) return h_stop(&k); /* never rate limited: stopping must always work */
    char key[80];
    snprintf(key, sizeof key, "a:%lld", (long long)k.ses.annotator_id);
    if (!take_token(s, key, s->cfg.rate, s->cfg.burst)) {
        return send_error(c, 429, "too many requests: at most %g per second (burst %g); slow down", s->cfg.rate, s->cfg.burst);
    }
    if (!strcmp(url, "/api/generate")) return h_generate(&k);
    if (!strcmp(url, "/api/compare")) return h_compare(&k);
    if (!strcmp(url, "/api/thumbs")) return h_judge(&k, STORE_THUMBS);
    if (!strcmp(url, "/api/pair")) return h_judge(&k, STORE_PAIR);
    if (!strcmp(url, "/api/ranking")) return h_judge(&k, STORE_RANKING);
    if (!strcmp(url, "/api/rating")) return h_judge(&k, STORE_RATING);
    if (!strcmp(url, "/api/profile")) return h_profile_set(&k);
    return send_error(c, 404, "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls) {
    serve_server *s = cls;
    req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        const char *cl = header(c, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end || n > s->cfg.max_body) {
                rq->too_big = 1;
                return send_error(c, 413, "request body larger than %zu bytes", s->cfg.max_body);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big || rq->len + n > s->cfg.max_body) { rq->too_big = 1; return MHD_YES; }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = (rq->len + n + 1) * 2;
            if (cap > s->cfg.max_body + 1) cap = s->cfg.max_body + 1;
            char *nb = realloc(rq->body, cap);
            if (!nb) return MHD_NO;
            rq->body = nb;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        rq->body[rq->len] = 0;
        return MHD_YES;
    }
    if (rq->too_big) return send_error(c, 413, "request body larger than %zu bytes", s->cfg.max_body);
    return dispatch(s, c, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    req *rq = *con_cls;
    if (!rq) return;
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    rl_debug("libmicrohttpd: %s", msg);
}

/* ---- start / stop ------------------------------------------------------------------------------ */

rl_status serve_start(serve_server **out, const serve_config *cfg) {
    *out = NULL;
    if (!cfg->db || !cfg->models || cfg->nmodels < 1) return rl_fail(RL_EINVAL, "serve needs a database and at least one model");
    if (cfg->threads < 1 || cfg->threads > 256) return rl_fail(RL_EINVAL, "threads must be in [1, 256]");
    if (cfg->port < 0 || cfg->port > 65535) return rl_fail(RL_EINVAL, "port must be in [0, 65535]");
    if (cfg->max_body < 1024) return rl_fail(RL_EINVAL, "max body must be at least 1024 bytes");
    if (!(cfg->rate > 0) || !(cfg->burst >= 1)) return rl_fail(RL_EINVAL, "rate must be > 0 and burst >= 1");
    if (sodium_init() < 0) return rl_fail(RL_EINTERNAL, "libsodium failed to initialise");
    const char *host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return rl_fail(RL_EINVAL, "--host %s: give an IPv4 address such as 127.0.0.1 or 0.0.0.0", host);
    serve_server *s = calloc(1, sizeof *s);
    if (!s) return rl_fail(RL_ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->cfg.host = host;
    s->sessions = calloc(MAX_SESSIONS, sizeof *s->sessions);
    s->buckets = calloc(MAX_BUCKETS, sizeof *s->buckets);
    s->model_ids = calloc((size_t)cfg->nmodels, sizeof *s->model_ids);
    if (!s->sessions || !s->buckets || !s->model_ids) {
        free(s->sessions); free(s->buckets); free(s->model_ids); free(s);
        return rl_fail(RL_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    rl_status r = RL_OK;
    for (int i = 0; i < cfg->nmodels && r == RL_OK; i++) r = store_model_ensure(cfg->db, cfg->models[i]->path, cfg->models[i]->identity, &s->model_ids[i]);
    if (r == RL_OK) {
        s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                on_request, s,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                MHD_OPTION_END);
        if (!s->d) r = rl_fail(RL_EIO, "cannot listen on %s:%d (in use? permission?)", host, cfg->port);
    }
    if (r != RL_OK) {
        pthread_mutex_destroy(&s->mu);
        free(s->sessions); free(s->buckets); free(s->model_ids); free(s);
        return r;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    if (!strcmp(host, "0.0.0.0") && !cfg->public_origin) {
        s->any_host = 1;
        rl_warn("listening on all interfaces without --public-origin: the Host header is not checked\n"
                "  anyone on the network who can reach this port can try tokens; prefer 127.0.0.1 behind a TLS proxy");
    }
    snprintf(s->hosts[s->nhosts++], sizeof s->hosts[0], "%s:%d", host, s->port);
    if (!strcmp(host, "127.0.0.1")) snprintf(s->hosts[s->nhosts++], sizeof s->hosts[0], "localhost:%d", s->port);
    if (cfg->public_origin) {
        const char *p = strstr(cfg->public_origin, "://");
        snprintf(s->hosts[s->nhosts++], sizeof s->hosts[0], "%s", p ? p + 3 : cfg->public_origin);
    }
    *out = s;
    return RL_OK;
}

int serve_port(const serve_server *s) { return s->port; }

void serve_stop(serve_server *s) {
    if (!s) return;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    /* Streams see the flag at their next piece, store the partial answer and
     * send "done"; give them a moment to flush before connections close. */
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&s->mu);
        int n = s->nstreams;
        pthread_mutex_unlock(&s->mu);
        if (!n) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Joins the pool threads: every handler that started has finished (and
     * committed) when this returns; stream_free stores any answer left. */
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s->sessions);
    free(s->buckets);
    free(s->model_ids);
    free(s);
}
