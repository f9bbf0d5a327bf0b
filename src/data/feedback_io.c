/* feedback_io.c — importers (canonical/generic JSONL, HH-RLHF, OpenAssistant
 * trees) and exporters (canonical JSONL, HH) for feedback records.
 *
 * Every input line is parsed on its own with jansson; its records are
 * built in a per-line scratch area (strings point into the parsed JSON or
 * into scratch copies) and deep-copied into the set by fb_set_add. A line is
 * all or nothing: if anything in it is malformed, the records it already
 * added are truncated away before the error is reported or skipped. */
#include "feedback.h"
#include "../base/binfile.h"
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- names -------------------------------------------------------------- */

static const char *format_names[] = {"auto", "jsonl", "hh", "oasst"};

const char *fb_format_name(fb_format f) { return (unsigned)f < 4 ? format_names[f] : "?"; }
int fb_format_parse(const char *s, fb_format *f) {
    for (int i = 0; s && i < 4; i++) if (!strcmp(s, format_names[i])) { *f = (fb_format)i; return 0; }
    return -1;
}

/* ---- per-line scratch memory -------------------------------------------- */

typedef struct {
    void **p;
    int n, cap;
    int oom;
} scratch;

static void *scr_alloc(scratch *sc, size_t n) {
    if (sc->n == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 32;
        void **np = realloc(sc->p, (size_t)cap * sizeof *np);
        if (!np) { sc->oom = 1; return NULL; }
        sc->p = np;
        sc->cap = cap;
    }
    void *m = calloc(1, n ? n : 1);
    if (!m) { sc->oom = 1; return NULL; }
    sc->p[sc->n++] = m;
    return m;
}

static char *scr_strndup(scratch *sc, const char *s, size_t n) {
    char *d = scr_alloc(sc, n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

static char *scr_printf(scratch *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *scr_printf(scratch *sc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *d = scr_alloc(sc, (size_t)n + 1);
    if (!d) return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

static void scr_reset(scratch *sc) {
    for (int i = 0; i < sc->n; i++) free(sc->p[i]);
    sc->n = 0;
    sc->oom = 0;
}

static void scr_free(scratch *sc) {
    scr_reset(sc);
    free(sc->p);
    memset(sc, 0, sizeof *sc);
}

/* ---- import context ------------------------------------------------------ */

typedef struct {
    fb_set *set;
    const char *name;       /* file name for messages */
    int64_t lineno;
    fb_format fmt;
    fb_import_stats *st;
    int64_t added[FB_NKINDS]; /* this line's additions, merged on success */
    scratch sc;
    char err[480];          /* this line's error (without the name:line prefix) */
} ictx;

/* Records this line's error and returns -1 (so parsers can `return bad(...)`). */
static int bad(ictx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(ictx *c, const char *fmt, ...) {
    if (c->err[0]) return -1; /* keep the first (innermost) reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

static void add_note(fb_import_stats *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_note(fb_import_stats *st, const char *fmt, ...) {
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (int i = 0; i < st->n_notes; i++) if (!strcmp(st->notes[i], buf)) return;
    if (st->n_notes < FB_MAX_NOTES) snprintf(st->notes[st->n_notes++], sizeof st->notes[0], "%s", buf);
}

static int add_record(ictx *c, const fb_record *r) {
    if (c->sc.oom) return bad(c, "out of memory");
    if (fb_set_add(c->set, r) != RL_OK) return bad(c, "%s", rl_error());
    c->added[r->kind]++;
    return 0;
}

/* ---- time ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil; exact for every year, no time zone involved). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "YYYY-MM-DD[T| ]HH:MM:SS[.fff…][Z|±HH:MM|±HHMM]" → ms since the epoch.
 * No zone means UTC. Fractions beyond milliseconds are truncated. */
static int parse_iso_time(const char *s, int64_t *ms) {
    int Y, M, D, h, mi, sec;
    size_t n = strlen(s);
    if (n < 19 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' || digits(s + 8, 2, &D) ||
        (s[10] != 'T' && s[10] != ' ' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
        digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60 || Y < 1) return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (D > mdays[M - 1]) return -1;
    if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0)) return -1;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3) frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0) return -1;
        for (int i = nd; i < 3; i++) frac_ms *= 10;
    }
    int64_t off_min = 0;
    if (*p == 'Z' || *p == 'z') p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(p, 2, &oh)) return -1;
        p += 2;
        if (*p == ':') p++;
        if (digits(p, 2, &om)) return -1;
        p += 2;
        if (oh > 23 || om > 59) return -1;
        off_min = sign * (oh * 60 + om);
    }
    if (*p) return -1;
    int64_t days = days_from_civil(Y, M, D);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - off_min * 60) * 1000 + frac_ms;
    return 0;
}

/* ms → "YYYY-MM-DDTHH:MM:SS.mmmZ" (out: at least 32 bytes). */
static void format_iso_time(int64_t ms, char *out, size_t n) {
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, n, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), frac);
}

/* ---- JSON field helpers ------------------------------------------------------ */

/* Optional string field: 0 ok (*out NULL if absent or null), -1 wrong type. */
static int opt_string(ictx *c, json_t *o, const char *key, const char **out) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return bad(c, "field '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

static int req_string(ictx *c, json_t *o, const char *key, const char **out, const char *shape) {
    json_t *v = json_object_get(o, key);
    if (!v) return bad(c, "missing field '%s' (expected %s)", key, shape);
    if (!json_is_string(v)) return bad(c, "field '%s' must be a string (expected %s)", key, shape);
    *out = json_string_value(v);
    return 0;
}

/* An object of string values → kv list (in the object's order). */
static int kv_object(ictx *c, json_t *o, const char *key, const fb_kv **out, int32_t *n) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) return bad(c, "field '%s' must be an object of strings, e.g. {\"group\": \"a\"}", key);
    size_t sz = json_object_size(v);
    if (sz == 0) return 0;
    fb_kv *kv = scr_alloc(&c->sc, sz * sizeof *kv);
    if (!kv) return bad(c, "out of memory");
    const char *k;
    json_t *val;
    int32_t i = 0;
    json_object_foreach(v, k, val) {
        if (!json_is_string(val)) return bad(c, "field '%s': value of '%s' must be a string", key, k);
        kv[i].key = k;
        kv[i].value = json_string_value(val);
        i++;
    }
    *out = kv;
    *n = i;
    return 0;
}

/* A conversation: a string (one user turn) or an array of {role, text|content}. */
static int parse_turns(ictx *c, json_t *v, const char *key, const chat_turn **out, int32_t *n) {
    if (json_is_string(v)) {
        chat_turn *t = scr_alloc(&c->sc, sizeof *t);
        if (!t) return bad(c, "out of memory");
        t->role = CHAT_ROLE_USER;
        t->text = json_string_value(v);
        *out = t;
        *n = 1;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(c, "field '%s' must be a string or a non-empty array of {\"role\", \"text\"} turns", key);
    size_t m = json_array_size(v);
    chat_turn *t = scr_alloc(&c->sc, m * sizeof *t);
    if (!t) return bad(c, "out of memory");
    for (size_t i = 0; i < m; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_object(e)) return bad(c, "%s[%zu] must be an object {\"role\", \"text\"}", key, i);
        json_t *role = json_object_get(e, "role");
        json_t *text = json_object_get(e, "text");
        if (!text) text = json_object_get(e, "content");
        if (!json_is_string(role) || chat_role_parse(json_string_value(role), &t[i].role) != 0)
            return bad(c, "%s[%zu].role must be \"user\", \"assistant\" or \"system\"", key, i);
        if (!json_is_string(text)) return bad(c, "%s[%zu] needs a string \"text\" (or \"content\")", key, i);
        t[i].text = json_string_value(text);
    }
    *out = t;
    *n = (int32_t)m;
    return 0;
}

/* A response: a string, or (TRL's conversational form) an array holding one
 * assistant message. */
static int parse_response(ictx *c, json_t *v, const char *key, const char **out) {
    if (json_is_string(v)) { *out = json_string_value(v); return 0; }
    if (json_is_array(v) && json_array_size(v) == 1) {
        json_t *e = json_array_get(v, 0);
        json_t *role = json_object_get(e, "role");
        json_t *text = json_object_get(e, "text");
        if (!text) text = json_object_get(e, "content");
        chat_role r;
        if (json_is_string(role) && chat_role_parse(json_string_value(role), &r) == 0 && r == CHAT_ROLE_ASSISTANT &&
            json_is_string(text)) {
            *out = json_string_value(text);
            return 0;
        }
    }
    return bad(c, "field '%s' must be a string (or [{\"role\": \"assistant\", \"content\": ...}])", key);
}

/* Fields every canonical and generic line may carry. `def_annot`: the
 * annotator to use when absent (NULL = required). */
static int common_fields(ictx *c, json_t *o, fb_record *r, const char *def_source, const char *def_annot) {
    json_t *id = json_object_get(o, "id");
    if (json_is_string(id)) r->id = json_string_value(id);
    else if (json_is_integer(id)) r->id = scr_printf(&c->sc, "%lld", (long long)json_integer_value(id));
    else if (id && !json_is_null(id)) return bad(c, "field 'id' must be a string or an integer");
    if (opt_string(c, o, "source", &r->source)) return -1;
    if (!r->source) r->source = def_source;
    if (opt_string(c, o, "annotator", &r->annotator)) return -1;
    if (!r->annotator) {
        if (!def_annot) return bad(c, "missing field 'annotator': canonical records must say who judged");
        r->annotator = def_annot;
        add_note(c->st, "%s: lines without an 'annotator' were attributed to \"%s\"", c->name, def_annot);
    } else if (!r->annotator[0]) {
        return bad(c, "field 'annotator' is empty");
    }
    if (kv_object(c, o, "groups", &r->groups, &r->n_groups)) return -1;
    if (kv_object(c, o, "meta", &r->meta, &r->n_meta)) return -1;
    json_t *t = json_object_get(o, "time");
    if (json_is_string(t)) {
        if (parse_iso_time(json_string_value(t), &r->time_ms))
            return bad(c, "field 'time' (\"%.40s\") is not an ISO-8601 time like \"2024-05-01T12:00:00.000Z\"", json_string_value(t));
    } else if (json_is_number(t)) {
        double sec = json_number_value(t);
        if (!(sec > -6.2e10 && sec < 2.5e11)) return bad(c, "field 'time' (%g s since the epoch) is out of range", sec);
        r->time_ms = (int64_t)llround(sec * 1000.0);
    } else if (t && !json_is_null(t)) {
        return bad(c, "field 'time' must be an ISO-8601 string or seconds since the epoch");
    }
    json_t *w = json_object_get(o, "weight");
    if (w && !json_is_null(w)) {
        if (!json_is_number(w)) return bad(c, "field 'weight' must be a number");
        r->weight = json_number_value(w);
    }
    if (opt_string(c, o, "comment", &r->comment)) return -1;
    return 0;
}

/* ---- canonical JSONL ------------------------------------------------------------ */

static const char *canonical_keys[] = {"v", "kind", "id", "source", "annotator", "groups", "time", "weight", "prompt",
                                       "responses", "choice", "thumb", "ranks", "rating", "scale", "comment", "meta", NULL};

static int import_canonical(ictx *c, json_t *o) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int known = 0;
        for (int i = 0; canonical_keys[i]; i++) if (!strcmp(k, canonical_keys[i])) known = 1;
        if (!known) return bad(c, "unknown field '%s' in a canonical record (see docs/formats-feedback.md)", k);
    }
    json_t *ver = json_object_get(o, "v");
    if (ver && !(json_is_integer(ver) && json_integer_value(ver) == 1))
        return bad(c, "canonical record version 'v' must be 1 (this line was written by a newer rlhf, or is damaged)");
    const char *kind_s = NULL;
    if (req_string(c, o, "kind", &kind_s, "a canonical record")) return -1;
    fb_record r = fb_record_init(FB_DEMO);
    if (fb_kind_parse(kind_s, &r.kind)) return bad(c, "field 'kind' is \"%.40s\"; expected demo, thumbs, pair, ranking or rating", kind_s);
    if (common_fields(c, o, &r, "jsonl", NULL)) return -1;
    json_t *p = json_object_get(o, "prompt");
    if (!p) return bad(c, "missing field 'prompt'");
    if (parse_turns(c, p, "prompt", &r.prompt, &r.n_prompt)) return -1;
    json_t *rs = json_object_get(o, "responses");
    if (!json_is_array(rs) || json_array_size(rs) == 0) return bad(c, "field 'responses' must be a non-empty array of strings");
    size_t nr = json_array_size(rs);
    const char **resp = scr_alloc(&c->sc, nr * sizeof *resp);
    if (!resp) return bad(c, "out of memory");
    for (size_t i = 0; i < nr; i++) {
        json_t *e = json_array_get(rs, i);
        if (!json_is_string(e)) return bad(c, "responses[%zu] must be a string", i);
        resp[i] = json_string_value(e);
    }
    r.responses = resp;
    r.n_responses = (int32_t)nr;
    const char *s = NULL;
    if (r.kind == FB_PAIR) {
        if (req_string(c, o, "choice", &s, "\"a\", \"b\", \"tie\" or \"both_bad\"")) return -1;
        if (fb_choice_parse(s, &r.choice)) return bad(c, "field 'choice' is \"%.40s\"; expected a, b, tie or both_bad", s);
    } else if (json_object_get(o, "choice")) return bad(c, "field 'choice' belongs to pair records only");
    if (r.kind == FB_THUMBS) {
        if (req_string(c, o, "thumb", &s, "\"up\" or \"down\"")) return -1;
        if (!strcmp(s, "up")) r.thumb = 1;
        else if (!strcmp(s, "down")) r.thumb = -1;
        else return bad(c, "field 'thumb' is \"%.40s\"; expected up or down", s);
    } else if (json_object_get(o, "thumb")) return bad(c, "field 'thumb' belongs to thumbs records only");
    json_t *rk = json_object_get(o, "ranks");
    if (r.kind == FB_RANKING) {
        if (!json_is_array(rk) || json_array_size(rk) != nr)
            return bad(c, "field 'ranks' must be an array of %zu integers (one per response, 0 = best)", nr);
        int32_t *ranks = scr_alloc(&c->sc, nr * sizeof *ranks);
        if (!ranks) return bad(c, "out of memory");
        for (size_t i = 0; i < nr; i++) {
            json_t *e = json_array_get(rk, i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX)
                return bad(c, "ranks[%zu] must be an integer >= 0", i);
            ranks[i] = (int32_t)json_integer_value(e);
        }
        r.ranks = ranks;
    } else if (rk) return bad(c, "field 'ranks' belongs to ranking records only");
    json_t *rt = json_object_get(o, "rating"), *sc = json_object_get(o, "scale");
    if (r.kind == FB_RATING) {
        if (!json_is_number(rt)) return bad(c, "field 'rating' must be a number");
        if (!json_is_array(sc) || json_array_size(sc) != 2 || !json_is_number(json_array_get(sc, 0)) ||
            !json_is_number(json_array_get(sc, 1)))
            return bad(c, "field 'scale' must be [lo, hi]");
        r.rating = json_number_value(rt);
        r.scale_lo = json_number_value(json_array_get(sc, 0));
        r.scale_hi = json_number_value(json_array_get(sc, 1));
    } else if (rt || sc) return bad(c, "fields 'rating'/'scale' belong to rating records only");
    return add_record(c, &r);
}

/* ---- generic JSONL --------------------------------------------------------------- */

/* `ranking`: response indices from best to worst; an element that is an
 * array of indices is a group of equally good responses. Fills ranks[]. */
static int parse_ranking(ictx *c, json_t *v, size_t nr, int32_t *ranks) {
    if (!json_is_array(v)) return bad(c, "field 'ranking' must be an array of response indices, best first (e.g. [2, 0, 1])");
    for (size_t i = 0; i < nr; i++) ranks[i] = -1;
    size_t seen = 0;
    for (size_t pos = 0; pos < json_array_size(v); pos++) {
        json_t *e = json_array_get(v, pos);
        size_t m = json_is_array(e) ? json_array_size(e) : 1;
        if (json_is_array(e) && m == 0) return bad(c, "ranking[%zu] is an empty tie group", pos);
        for (size_t j = 0; j < m; j++) {
            json_t *x = json_is_array(e) ? json_array_get(e, j) : e;
            if (!json_is_integer(x)) return bad(c, "ranking[%zu] must be a response index or an array of indices (a tie)", pos);
            json_int_t idx = json_integer_value(x);
            if (idx < 0 || (size_t)idx >= nr) return bad(c, "ranking[%zu]: index %lld is not a response (there are %zu)", pos, (long long)idx, nr);
            if (ranks[idx] >= 0) return bad(c, "ranking: response %lld appears twice", (long long)idx);
            ranks[idx] = (int32_t)pos;
            seen++;
        }
    }
    if (seen != nr) return bad(c, "ranking lists %zu of the %zu responses; every response must be ranked", seen, nr);
    return 0;
}

static const char *generic_shapes =
    "{prompt, response}, {prompt, chosen, rejected}, {prompt, completion, label}, {prompt, responses, ranking} "
    "or {prompt, response, rating, scale}";

static int import_generic(ictx *c, json_t *o) {
    fb_record r = fb_record_init(FB_DEMO);
    json_t *has_chosen = json_object_get(o, "chosen"), *has_rej = json_object_get(o, "rejected");
    json_t *has_label = json_object_get(o, "label"), *has_ranking = json_object_get(o, "ranking");
    json_t *has_rating = json_object_get(o, "rating");
    json_t *resp = json_object_get(o, "response");
    const char *resp_key = "response";
    if (!resp) { resp = json_object_get(o, "completion"); resp_key = "completion"; }
    if (has_chosen || has_rej) r.kind = FB_PAIR;
    else if (has_ranking || json_object_get(o, "responses")) r.kind = FB_RANKING;
    else if (has_label) r.kind = FB_THUMBS;
    else if (has_rating) r.kind = FB_RATING;
    else if (resp) r.kind = FB_DEMO;
    else return bad(c, "a generic line needs one of %s", generic_shapes);
    if (common_fields(c, o, &r, "jsonl", "jsonl:unknown")) return -1;
    if (parse_turns(c, json_object_get(o, "prompt"), "prompt", &r.prompt, &r.n_prompt)) return -1;
    const char **rs = NULL;
    switch (r.kind) {
    case FB_PAIR: {
        if (!has_chosen || !has_rej) return bad(c, "a pair needs both 'chosen' and 'rejected'");
        rs = scr_alloc(&c->sc, 2 * sizeof *rs);
        if (!rs) return bad(c, "out of memory");
        if (parse_response(c, has_chosen, "chosen", &rs[0]) || parse_response(c, has_rej, "rejected", &rs[1])) return -1;
        r.responses = rs;
        r.n_responses = 2;
        r.choice = FB_CHOICE_A;
        break;
    }
    case FB_RANKING: {
        json_t *arr = json_object_get(o, "responses");
        if (!json_is_array(arr) || json_array_size(arr) < 2) return bad(c, "a ranking needs 'responses': an array of at least 2 strings");
        if (!has_ranking) return bad(c, "a ranking needs 'ranking': response indices, best first");
        size_t nr = json_array_size(arr);
        rs = scr_alloc(&c->sc, nr * sizeof *rs);
        int32_t *ranks = scr_alloc(&c->sc, nr * sizeof *ranks);
        if (!rs || !ranks) return bad(c, "out of memory");
        for (size_t i = 0; i < nr; i++) {
            char key[32];
            snprintf(key, sizeof key, "responses[%zu]", i);
            if (parse_response(c, json_array_get(arr, i), key, &rs[i])) return -1;
        }
        if (parse_ranking(c, has_ranking, nr, ranks)) return -1;
        r.responses = rs;
        r.n_responses = (int32_t)nr;
        r.ranks = ranks;
        break;
    }
    case FB_THUMBS:
    case FB_RATING:
    case FB_DEMO: {
        if (!resp) return bad(c, "missing field 'completion' (or 'response'): expected %s", generic_shapes);
        rs = scr_alloc(&c->sc, sizeof *rs);
        if (!rs) return bad(c, "out of memory");
        if (parse_response(c, resp, resp_key, &rs[0])) return -1;
        r.responses = rs;
        r.n_responses = 1;
        if (r.kind == FB_THUMBS) {
            if (json_is_boolean(has_label)) r.thumb = json_is_true(has_label) ? 1 : -1;
            else if (json_is_integer(has_label) && (json_integer_value(has_label) == 0 || json_integer_value(has_label) == 1))
                r.thumb = json_integer_value(has_label) ? 1 : -1;
            else return bad(c, "field 'label' must be true (desirable) or false (undesirable)");
        } else if (r.kind == FB_RATING) {
            json_t *sc = json_object_get(o, "scale");
            if (!json_is_number(has_rating)) return bad(c, "field 'rating' must be a number");
            if (!json_is_array(sc) || json_array_size(sc) != 2 || !json_is_number(json_array_get(sc, 0)) ||
                !json_is_number(json_array_get(sc, 1)))
                return bad(c, "a rating needs 'scale': [lo, hi]");
            r.rating = json_number_value(has_rating);
            r.scale_lo = json_number_value(json_array_get(sc, 0));
            r.scale_hi = json_number_value(json_array_get(sc, 1));
        }
        break;
    }
    }
    return add_record(c, &r);
}

/* ---- HH-RLHF ----------------------------------------------------------------------- */

#define HH_HUMAN "\n\nHuman:"
#define HH_ASSIST "\n\nAssistant:"

typedef struct {
    chat_role role;
    size_t marker;   /* offset of the marker ("\n\nHuman:" ...) */
    size_t start;    /* offset of the text (after the marker and one space) */
    size_t end;      /* end of the text */
} hh_turn;

/* Splits an HH dialogue into turns. Returns the number of turns (into *out,
 * scratch-allocated), or -1 with the reason in c->err. */
static int hh_split(ictx *c, const char *s, const char *key, hh_turn **out) {
    size_t n = strlen(s), hl = strlen(HH_HUMAN), al = strlen(HH_ASSIST);
    if (strncmp(s, HH_HUMAN, hl) != 0)
        return bad(c, "field '%s' must start with \"\\n\\nHuman: \" (an HH dialogue)", key);
    int count = 0;
    for (const char *p = s; (p = strstr(p, "\n\n")); p++)
        if (!strncmp(p, HH_HUMAN, hl) || !strncmp(p, HH_ASSIST, al)) count++;
    hh_turn *t = scr_alloc(&c->sc, (size_t)count * sizeof *t);
    if (!t) return bad(c, "out of memory");
    int k = 0;
    for (const char *p = s; (p = strstr(p, "\n\n"));) {
        int human = !strncmp(p, HH_HUMAN, hl);
        if (!human && strncmp(p, HH_ASSIST, al)) { p++; continue; }
        if (k > 0) t[k - 1].end = (size_t)(p - s);
        t[k].role = human ? CHAT_ROLE_USER : CHAT_ROLE_ASSISTANT;
        t[k].marker = (size_t)(p - s);
        t[k].start = t[k].marker + (human ? hl : al);
        if (s[t[k].start] == ' ') t[k].start++;
        p = s + t[k].start;
        k++;
    }
    t[k - 1].end = n;
    *out = t;
    return k;
}

static int hh_turn_eq(const char *a, const hh_turn *ta, const char *b, const hh_turn *tb) {
    return ta->role == tb->role && ta->end - ta->start == tb->end - tb->start &&
           !memcmp(a + ta->start, b + tb->start, ta->end - ta->start);
}

/* Splits chosen/rejected dialogues into the shared prompt and two responses.
 * The prompt is the longest run of identical leading turns that ends with a
 * Human turn and is followed by an Assistant turn on both sides; each
 * response is the rest of its dialogue after that Assistant marker, verbatim
 * (normally one final Assistant turn; in a few HH lines it runs on over
 * later turns). Fills r->prompt (scratch) and returns the response offsets. */
static int hh_pair(ictx *c, const char *ch, const char *rj, fb_record *r, const char **resp_c, const char **resp_r, int *multi) {
    hh_turn *tc, *tr;
    int nc = hh_split(c, ch, "chosen", &tc);
    if (nc < 0) return -1;
    int nr = hh_split(c, rj, "rejected", &tr);
    if (nr < 0) return -1;
    int m = 0;
    while (m < nc && m < nr && hh_turn_eq(ch, &tc[m], rj, &tr[m])) m++;
    if (m > nc - 1) m = nc - 1;
    if (m > nr - 1) m = nr - 1;
    while (m > 0 && !(tc[m].role == CHAT_ROLE_ASSISTANT && tr[m].role == CHAT_ROLE_ASSISTANT && tc[m - 1].role == CHAT_ROLE_USER))
        m--;
    if (m == 0) return bad(c, "'chosen' and 'rejected' share no Human turn followed by an Assistant turn in both");
    chat_turn *pt = scr_alloc(&c->sc, (size_t)m * sizeof *pt);
    if (!pt) return bad(c, "out of memory");
    for (int i = 0; i < m; i++) {
        pt[i].role = tc[i].role;
        pt[i].text = scr_strndup(&c->sc, ch + tc[i].start, tc[i].end - tc[i].start);
    }
    r->prompt = pt;
    r->n_prompt = m;
    *resp_c = ch + tc[m].start;
    *resp_r = rj + tr[m].start;
    *multi = (m != nc - 1) + (m != nr - 1);
    return 0;
}

static int import_hh(ictx *c, json_t *o) {
    const char *ch = NULL, *rj = NULL;
    const char *shape = "an HH line {\"chosen\": \"\\n\\nHuman: ...\\n\\nAssistant: ...\", \"rejected\": ...}";
    if (req_string(c, o, "chosen", &ch, shape) || req_string(c, o, "rejected", &rj, shape)) return -1;
    fb_record r = fb_record_init(FB_PAIR);
    const char *rs[2];
    int multi;
    if (hh_pair(c, ch, rj, &r, &rs[0], &rs[1], &multi)) return -1;
    r.responses = rs;
    r.n_responses = 2;
    r.choice = FB_CHOICE_A;
    r.source = "hh";
    r.annotator = "hh:unknown";
    if (add_record(c, &r)) return -1;
    add_note(c->st, "%s: HH-RLHF has no annotator ids; records attributed to \"hh:unknown\"", c->name);
    c->st->hh_multi_turn_responses += multi;
    return 0;
}

/* ---- OpenAssistant trees ------------------------------------------------------------- */

typedef struct {
    chat_turn *path;   /* the conversation from the root to the current message */
    int depth, cap;
    const char *tree_id;
    fb_import_stats local; /* counts for this line, merged on success */
} oa_walk;

static int json_flag(json_t *m, const char *key) { return json_is_true(json_object_get(m, key)); }

/* Counts the messages of a dropped subtree. */
static int64_t oa_count(json_t *m) {
    int64_t n = 1;
    json_t *rep = json_object_get(m, "replies");
    for (size_t i = 0; json_is_array(rep) && i < json_array_size(rep); i++) n += oa_count(json_array_get(rep, i));
    return n;
}

/* 1 if the message is dropped (synthetic, deleted or failed review), with
 * its subtree counted. */
static int oa_dropped(json_t *m, oa_walk *w) {
    json_t *rv = json_object_get(m, "review_result");
    int64_t *ctr = json_flag(m, "synthetic") ? &w->local.oasst_dropped_synthetic
                 : json_flag(m, "deleted") ? &w->local.oasst_dropped_deleted
                 : json_is_false(rv) ? &w->local.oasst_dropped_review : NULL;
    if (!ctr) return 0;
    int64_t n = oa_count(m);
    *ctr += n;
    w->local.oasst_messages += n;
    return 1;
}

static int oa_message(ictx *c, json_t *m, oa_walk *w);

static int oa_fields(ictx *c, json_t *m, const char **id, const char **text, chat_role *role) {
    const char *rs = NULL;
    if (!json_is_object(m)) return bad(c, "a message must be an object");
    if (req_string(c, m, "message_id", id, "an OpenAssistant message") || req_string(c, m, "text", text, "an OpenAssistant message") ||
        req_string(c, m, "role", &rs, "an OpenAssistant message"))
        return -1;
    if (!strcmp(rs, "prompter")) *role = CHAT_ROLE_USER;
    else if (!strcmp(rs, "assistant")) *role = CHAT_ROLE_ASSISTANT;
    else return bad(c, "message %.40s: role \"%.20s\" is neither \"prompter\" nor \"assistant\"", *id, rs);
    json_t *rep = json_object_get(m, "replies");
    if (rep && !json_is_array(rep)) return bad(c, "message %.40s: 'replies' must be an array", *id);
    json_t *em = json_object_get(m, "emojis");
    if (em && !json_is_null(em) && !json_is_object(em)) return bad(c, "message %.40s: 'emojis' must be an object of counts", *id);
    json_t *rk = json_object_get(m, "rank");
    if (rk && !json_is_null(rk) && !(json_is_integer(rk) && json_integer_value(rk) >= 0 && json_integer_value(rk) <= INT32_MAX))
        return bad(c, "message %.40s: 'rank' must be an integer >= 0 or null", *id);
    for (const char *const *k = (const char *const[]){"synthetic", "deleted", "review_result", NULL}; *k; k++) {
        json_t *b = json_object_get(m, *k);
        if (b && !json_is_boolean(b) && !json_is_null(b)) return bad(c, "message %.40s: '%s' must be true, false or null", *id, *k);
    }
    return 0;
}

static int oa_time(ictx *c, json_t *m, const char *id, int64_t *t) {
    const char *s;
    if (opt_string(c, m, "created_date", &s)) return -1;
    if (s && parse_iso_time(s, t)) return bad(c, "message %.40s: 'created_date' is not an ISO-8601 time", id);
    return 0;
}

static int emoji_count(ictx *c, json_t *em, const char *key, const char *id, int64_t *n) {
    json_t *v = json_object_get(em, key);
    *n = 0;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) return bad(c, "message %.40s: emoji count '%s' must be an integer >= 0", id, key);
    *n = json_integer_value(v);
    return 0;
}

/* Records for one kept assistant message: its demonstration and thumbs. */
static int oa_assistant(ictx *c, json_t *m, oa_walk *w, const char *id, const char *text) {
    const char *user;
    if (opt_string(c, m, "user_id", &user)) return -1;
    fb_record r = fb_record_init(FB_DEMO);
    if (oa_time(c, m, id, &r.time_ms)) return -1;
    r.id = id;
    r.source = "oasst";
    r.prompt = w->path;
    r.n_prompt = w->depth;
    r.responses = &text;
    r.n_responses = 1;
    fb_kv meta[2];
    meta[0].key = "tree";
    meta[0].value = w->tree_id;
    r.meta = meta;
    r.n_meta = 1;
    json_t *rk = json_object_get(m, "rank");
    if (json_is_integer(rk)) {
        meta[1].key = "rank";
        meta[1].value = scr_printf(&c->sc, "%lld", (long long)json_integer_value(rk));
        r.n_meta = 2;
    }
    if (user) {
        r.annotator = scr_printf(&c->sc, "oasst:%s", user);
    } else {
        r.annotator = "oasst:unknown";
        add_note(c->st, "%s: OASST messages without user_id: demonstrations attributed to \"oasst:unknown\"", c->name);
    }
    if (add_record(c, &r)) return -1;

    json_t *em = json_object_get(m, "emojis");
    if (!json_is_object(em)) return 0;
    int64_t up, down;
    if (emoji_count(c, em, "+1", id, &up) || emoji_count(c, em, "-1", id, &down)) return -1;
    if (!json_object_get(em, "+1") && !json_object_get(em, "-1")) return 0;
    w->local.oasst_thumbs_messages++;
    if (up == down) { w->local.oasst_thumbs_tied++; return 0; }
    /* The crowd's votes on one message become one thumbs record with the
     * net direction; the raw counts stay in meta. */
    fb_record t = fb_record_init(FB_THUMBS);
    t.id = id;
    t.source = "oasst";
    t.annotator = "oasst:crowd";
    t.time_ms = r.time_ms;
    t.prompt = w->path;
    t.n_prompt = w->depth;
    t.responses = &text;
    t.n_responses = 1;
    t.thumb = up > down ? 1 : -1;
    fb_kv tm[3] = {{"tree", w->tree_id},
                   {"votes_up", scr_printf(&c->sc, "%lld", (long long)up)},
                   {"votes_down", scr_printf(&c->sc, "%lld", (long long)down)}};
    t.meta = tm;
    t.n_meta = 3;
    add_note(c->st, "%s: OASST rankings and thumbs are crowd aggregates without rater ids: attributed to \"oasst:crowd\"", c->name);
    return add_record(c, &t);
}

/* The ranking among m's kept, ranked assistant replies (if >= 2). */
static int oa_ranking(ictx *c, json_t *m, oa_walk *w, const char *id) {
    json_t *rep = json_object_get(m, "replies");
    size_t nrep = json_is_array(rep) ? json_array_size(rep) : 0;
    if (nrep < 2) return 0;
    const char **resp = scr_alloc(&c->sc, nrep * sizeof *resp);
    int32_t *ranks = scr_alloc(&c->sc, nrep * sizeof *ranks);
    const char **ids = scr_alloc(&c->sc, nrep * sizeof *ids);
    if (!resp || !ranks || !ids) return bad(c, "out of memory");
    int32_t k = 0;
    size_t ids_len = 0;
    for (size_t i = 0; i < nrep; i++) {
        json_t *x = json_array_get(rep, i);
        json_t *rk = json_object_get(x, "rank");
        if (!json_is_integer(rk)) continue;
        if (json_flag(x, "synthetic") || json_flag(x, "deleted") || json_is_false(json_object_get(x, "review_result"))) continue;
        json_t *role = json_object_get(x, "role");
        if (!json_is_string(role) || strcmp(json_string_value(role), "assistant")) continue; /* ranked prompts: not responses */
        resp[k] = json_string_value(json_object_get(x, "text"));
        ids[k] = json_string_value(json_object_get(x, "message_id"));
        if (!resp[k] || !ids[k]) return bad(c, "message %.40s: reply %zu needs string 'message_id' and 'text'", id, i);
        ranks[k] = (int32_t)json_integer_value(rk);
        ids_len += strlen(ids[k]) + 1;
        k++;
    }
    if (k < 2) return 0;
    char *joined = scr_alloc(&c->sc, ids_len + 1);
    if (!joined) return bad(c, "out of memory");
    for (int32_t i = 0; i < k; i++) {
        if (i) strcat(joined, ",");
        strcat(joined, ids[i]);
    }
    fb_record r = fb_record_init(FB_RANKING);
    if (oa_time(c, m, id, &r.time_ms)) return -1;
    r.id = id;
    r.source = "oasst";
    r.annotator = "oasst:crowd";
    r.prompt = w->path;
    r.n_prompt = w->depth;
    r.responses = resp;
    r.n_responses = k;
    r.ranks = ranks;
    fb_kv meta[2] = {{"tree", w->tree_id}, {"reply_ids", joined}};
    r.meta = meta;
    r.n_meta = 2;
    w->local.oasst_rank_groups++;
    return add_record(c, &r);
}

static int oa_message(ictx *c, json_t *m, oa_walk *w) {
    const char *id = NULL, *text = NULL;
    chat_role role = CHAT_ROLE_USER;
    if (oa_fields(c, m, &id, &text, &role)) return -1;
    if (oa_dropped(m, w)) return 0;
    w->local.oasst_messages++;
    if (w->depth == 0 && role != CHAT_ROLE_USER) return bad(c, "message %.40s: a tree must start with a prompter message", id);
    if (role == CHAT_ROLE_ASSISTANT && oa_assistant(c, m, w, id, text)) return -1;
    if (w->depth == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        chat_turn *np = realloc(w->path, (size_t)cap * sizeof *np);
        if (!np) return bad(c, "out of memory");
        w->path = np;
        w->cap = cap;
    }
    w->path[w->depth].role = role;
    w->path[w->depth].text = text;
    w->depth++;
    if (role == CHAT_ROLE_USER && oa_ranking(c, m, w, id)) return -1;
    json_t *rep = json_object_get(m, "replies");
    for (size_t i = 0; json_is_array(rep) && i < json_array_size(rep); i++)
        if (oa_message(c, json_array_get(rep, i), w)) return -1;
    w->depth--;
    return 0;
}

static int import_oasst(ictx *c, json_t *o) {
    oa_walk w;
    memset(&w, 0, sizeof w);
    json_t *root = json_object_get(o, "prompt");
    if (!json_is_object(root)) return bad(c, "expected an OpenAssistant tree {\"message_tree_id\", \"prompt\": {message...}}");
    if (opt_string(c, o, "message_tree_id", &w.tree_id)) return -1;
    if (!w.tree_id) w.tree_id = json_string_value(json_object_get(root, "message_id"));
    if (!w.tree_id) w.tree_id = "";
    int rc = oa_message(c, root, &w);
    free(w.path);
    if (rc) return -1;
    fb_import_stats *st = c->st;
    st->oasst_messages += w.local.oasst_messages;
    st->oasst_dropped_synthetic += w.local.oasst_dropped_synthetic;
    st->oasst_dropped_deleted += w.local.oasst_dropped_deleted;
    st->oasst_dropped_review += w.local.oasst_dropped_review;
    st->oasst_thumbs_messages += w.local.oasst_thumbs_messages;
    st->oasst_thumbs_tied += w.local.oasst_thumbs_tied;
    st->oasst_rank_groups += w.local.oasst_rank_groups;
    return 0;
}

/* ---- line dispatch ----------------------------------------------------------------- */

typedef enum { SHAPE_CANONICAL, SHAPE_GENERIC, SHAPE_HH, SHAPE_OASST, SHAPE_UNKNOWN } shape;

static shape line_shape(json_t *o) {
    json_t *p = json_object_get(o, "prompt");
    if (json_object_get(o, "message_tree_id") || (json_is_object(p) && json_object_get(p, "replies"))) return SHAPE_OASST;
    if (json_object_get(o, "kind")) return SHAPE_CANONICAL;
    if (!p && json_object_get(o, "chosen") && json_object_get(o, "rejected")) return SHAPE_HH;
    if (p) return SHAPE_GENERIC;
    return SHAPE_UNKNOWN;
}

static const char *shape_names[] = {"a canonical record", "a generic JSONL line", "an HH-RLHF line", "an OpenAssistant tree", "nothing known"};

/* One line: 0 ok (or blank), -1 malformed (c->err says why). */
static int import_line(ictx *c, const char *line, size_t len) {
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return 0;
    c->st->lines++;
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return bad(c, "not valid JSON (column %d: %s)", je.column, je.text);
    int rc;
    if (!json_is_object(o)) {
        rc = bad(c, "expected a JSON object, found %s", json_is_array(o) ? "an array" : "a scalar");
    } else {
        shape sh = line_shape(o);
        fb_format want = c->fmt;
        if (want == FB_FMT_JSONL && sh != SHAPE_CANONICAL && sh != SHAPE_GENERIC)
            rc = bad(c, "expected a JSONL feedback line (%s, or a canonical record with 'kind'); this line looks like %s",
                     generic_shapes, shape_names[sh]);
        else if (want == FB_FMT_HH && sh != SHAPE_HH)
            rc = bad(c, "expected an HH-RLHF line {\"chosen\": \"\\n\\nHuman: ...\", \"rejected\": ...}; this line looks like %s", shape_names[sh]);
        else if (want == FB_FMT_OASST && sh != SHAPE_OASST)
            rc = bad(c, "expected an OpenAssistant tree {\"message_tree_id\", \"prompt\": {...}}; this line looks like %s", shape_names[sh]);
        else switch (sh) {
            case SHAPE_CANONICAL: rc = import_canonical(c, o); break;
            case SHAPE_GENERIC: rc = import_generic(c, o); break;
            case SHAPE_HH: rc = import_hh(c, o); break;
            case SHAPE_OASST: rc = import_oasst(c, o); break;
            default:
                rc = bad(c, "line matches no known shape: expected a canonical record, %s, an HH {chosen, rejected} "
                            "line or an OpenAssistant tree", generic_shapes);
        }
    }
    json_decref(o);
    return rc;
}

/* Runs one line with all-or-nothing semantics. Returns RL_OK, or the error
 * (when not skipping). */
static rl_status run_line(ictx *c, const fb_import_opts *o, const char *line, size_t len) {
    int64_t n0 = c->set->n;
    memset(c->added, 0, sizeof c->added);
    c->err[0] = 0;
    int rc = import_line(c, line, len);
    scr_reset(&c->sc);
    if (rc == 0) {
        for (int k = 0; k < FB_NKINDS; k++) c->st->added[k] += c->added[k];
        return RL_OK;
    }
    fb_set_truncate(c->set, n0);
    char msg[600];
    snprintf(msg, sizeof msg, "%s:%lld: %s", c->name, (long long)c->lineno, c->err);
    if (!c->st->first_error[0]) {
        size_t m = strlen(msg), cap = sizeof c->st->first_error - 1;
        memcpy(c->st->first_error, msg, m < cap ? m : cap);
        c->st->first_error[m < cap ? m : cap] = 0;
    }
    if (o && o->skip_bad) { c->st->bad++; return RL_OK; }
    return rl_fail(RL_EFORMAT, "%s", msg);
}

static void ctx_init(ictx *c, fb_set *s, const char *name, fb_format fmt, fb_import_stats *st) {
    memset(c, 0, sizeof *c);
    c->set = s;
    c->name = name;
    c->fmt = fmt;
    c->st = st;
    memset(st, 0, sizeof *st);
}

rl_status fb_import_mem(fb_set *s, const char *name, const char *data, size_t n, fb_format fmt,
                        const fb_import_opts *opts, fb_import_stats *st) {
    fb_import_stats local;
    if (!st) st = &local;
    if ((unsigned)fmt > FB_FMT_OASST) return rl_fail(RL_EINVAL, "unknown import format %d", (int)fmt);
    ictx c;
    ctx_init(&c, s, name ? name : "(memory)", fmt, st);
    rl_status rc = RL_OK;
    size_t pos = 0;
    while (pos < n && rc == RL_OK) {
        const char *nl = memchr(data + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - data) : n;
        c.lineno++;
        rc = run_line(&c, opts, data + pos, end - pos);
        pos = end + 1;
    }
    scr_free(&c.sc);
    return rc;
}

rl_status fb_import_file(fb_set *s, const char *path, fb_format fmt, const fb_import_opts *opts, fb_import_stats *st) {
    fb_import_stats local;
    if (!st) st = &local;
    if ((unsigned)fmt > FB_FMT_OASST) return rl_fail(RL_EINVAL, "unknown import format %d", (int)fmt);
    FILE *probe = fopen(path, "rb");
    if (!probe) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "cannot open %s: %s", path, strerror(errno));
    fclose(probe);
    gzFile f = gzopen(path, "rb"); /* reads plain files as they are */
    if (!f) return rl_fail(RL_EIO, "cannot open %s: %s", path, strerror(errno));
    ictx c;
    ctx_init(&c, s, path, fmt, st);
    /* buf[0, have) holds unread bytes; lines are cut at '\n' with memchr so
     * a NUL byte inside a line stays in it (and jansson rejects it). */
    size_t cap = 1 << 16, have = 0, scanned = 0;
    char *buf = malloc(cap);
    rl_status rc = buf ? RL_OK : rl_fail(RL_ENOMEM, "out of memory reading %s", path);
    int eof = 0;
    while (rc == RL_OK) {
        char *nl = memchr(buf + scanned, '\n', have - scanned);
        if (!nl && !eof) {
            scanned = have;
            if (have == cap) {
                if (cap >= ((size_t)1 << 30)) { rc = rl_fail(RL_EFORMAT, "%s:%lld: line longer than 1 GiB", path, (long long)c.lineno + 1); break; }
                char *nb = realloc(buf, cap * 2);
                if (!nb) { rc = rl_fail(RL_ENOMEM, "out of memory reading %s", path); break; }
                buf = nb;
                cap *= 2;
            }
            int got = gzread(f, buf + have, (unsigned)(cap - have > (1u << 30) ? (1u << 30) : cap - have));
            if (got < 0) {
                int zerr;
                const char *m = gzerror(f, &zerr);
                rc = rl_fail(RL_EIO, "%s: read error after line %lld: %s (a truncated or damaged .gz file?)", path, (long long)c.lineno, m);
                break;
            }
            if (got == 0) {
                /* zlib reports a truncated gzip stream at the end as an error. */
                int zerr;
                const char *m = gzerror(f, &zerr);
                if (zerr != Z_OK && zerr != Z_STREAM_END) {
                    rc = rl_fail(RL_EIO, "%s: read error after line %lld: %s (a truncated or damaged .gz file?)", path, (long long)c.lineno, m);
                    break;
                }
                eof = 1;
            }
            have += (size_t)got;
            continue;
        }
        size_t len = nl ? (size_t)(nl - buf) : have;
        if (!nl && have == 0) break; /* end of file */
        c.lineno++;
        rc = run_line(&c, opts, buf, len);
        size_t used = nl ? len + 1 : have;
        memmove(buf, buf + used, have - used);
        have -= used;
        scanned = 0;
    }
    free(buf);
    scr_free(&c.sc);
    gzclose(f);
    return rc;
}

/* ---- export: canonical JSONL -------------------------------------------------------- */

/* Fewest significant digits (<= 17) that print x so it reads back exactly. */
static int shortest_precision(double x) {
    char b[40];
    for (int p = 1; p < 17; p++) {
        snprintf(b, sizeof b, "%.*g", p, x);
        if (strtod(b, NULL) == x) return p;
    }
    return 17;
}

static json_t *kv_json(const fb_kv *kv, int32_t n) {
    json_t *o = json_object();
    for (int32_t i = 0; i < n; i++) json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    return o;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* Integral doubles go out as JSON integers (when exactly representable),
 * others as reals; both read back to the same double. */
static json_t *num_json(double x) {
    if (x == floor(x) && fabs(x) < 9007199254740992.0 && !(x == 0 && signbit(x))) return json_integer((json_int_t)x);
    return json_real(x);
}

char *fb_record_to_json(const fb_record *r) {
    if (fb_record_validate(r) != RL_OK) return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "kind", json_string(fb_kind_name(r->kind)));
    json_object_set_new(o, "id", str_or_null(r->id));
    json_object_set_new(o, "source", json_string(r->source));
    json_object_set_new(o, "annotator", json_string(r->annotator));
    json_object_set_new(o, "groups", kv_json(r->groups, r->n_groups));
    if (r->time_ms == FB_TIME_UNKNOWN) json_object_set_new(o, "time", json_null());
    else {
        char t[48];
        format_iso_time(r->time_ms, t, sizeof t);
        json_object_set_new(o, "time", json_string(t));
    }
    json_object_set_new(o, "weight", num_json(r->weight));
    json_t *p = json_array();
    for (int32_t i = 0; i < r->n_prompt; i++) {
        json_t *t = json_object();
        json_object_set_new(t, "role", json_string(chat_role_name(r->prompt[i].role)));
        json_object_set_new(t, "text", json_string(r->prompt[i].text));
        json_array_append_new(p, t);
    }
    json_object_set_new(o, "prompt", p);
    json_t *rs = json_array();
    for (int32_t i = 0; i < r->n_responses; i++) json_array_append_new(rs, json_string(r->responses[i]));
    json_object_set_new(o, "responses", rs);
    int prec = shortest_precision(r->weight);
    switch (r->kind) {
    case FB_PAIR: json_object_set_new(o, "choice", json_string(fb_choice_name(r->choice))); break;
    case FB_THUMBS: json_object_set_new(o, "thumb", json_string(r->thumb > 0 ? "up" : "down")); break;
    case FB_RANKING: {
        json_t *rk = json_array();
        for (int32_t i = 0; i < r->n_responses; i++) json_array_append_new(rk, json_integer(r->ranks[i]));
        json_object_set_new(o, "ranks", rk);
        break;
    }
    case FB_RATING: {
        json_object_set_new(o, "rating", num_json(r->rating));
        json_t *sc = json_array();
        json_array_append_new(sc, num_json(r->scale_lo));
        json_array_append_new(sc, num_json(r->scale_hi));
        json_object_set_new(o, "scale", sc);
        double xs[3] = {r->rating, r->scale_lo, r->scale_hi};
        for (int i = 0; i < 3; i++) { int q = shortest_precision(xs[i]); if (q > prec) prec = q; }
        break;
    }
    default: break;
    }
    json_object_set_new(o, "comment", str_or_null(r->comment));
    json_object_set_new(o, "meta", kv_json(r->meta, r->n_meta));
    /* One precision for the record: the fewest digits that keep every
     * number exact (so 0.1 prints as 0.1, not 0.10000000000000001). */
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(prec));
    json_decref(o);
    return s;
}

typedef struct {
    rl_atomic_file af;
    FILE *fp;
    int is_stdout;
} out_file;

static rl_status out_open(out_file *o, const char *path) {
    memset(o, 0, sizeof *o);
    if (!strcmp(path, "-")) { o->fp = stdout; o->is_stdout = 1; return RL_OK; }
    RL_TRY(rl_atomic_open(&o->af, path));
    o->fp = o->af.fp;
    return RL_OK;
}

static rl_status out_close(out_file *o, rl_status st) {
    if (o->is_stdout) {
        if (fflush(stdout) != 0 && st == RL_OK) return rl_fail(RL_EIO, "writing to stdout failed");
        return st;
    }
    if (st != RL_OK) { rl_atomic_abort(&o->af); return st; }
    return rl_atomic_commit(&o->af);
}

rl_status fb_export_jsonl(const fb_set *s, const char *path) {
    out_file o;
    RL_TRY(out_open(&o, path));
    rl_status st = RL_OK;
    for (int64_t i = 0; i < s->n && st == RL_OK; i++) {
        char *line = fb_record_to_json(&s->records[i]);
        if (!line) { st = rl_fail(RL_EINTERNAL, "record %lld cannot be written: %s", (long long)i, rl_error()); break; }
        if (fputs(line, o.fp) < 0 || fputc('\n', o.fp) < 0) st = rl_fail(RL_EIO, "writing %s failed: %s", path, strerror(errno));
        free(line);
    }
    return out_close(&o, st);
}

/* ---- export: HH ------------------------------------------------------------------------ */

/* Appends s to a growing buffer. */
typedef struct { char *p; size_t n, cap; int oom; } sbuf;
static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void hh_render(sbuf *b, const chat_turn *t, int32_t n, const char *resp) {
    b->n = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *m = t[i].role == CHAT_ROLE_USER ? HH_HUMAN " " : HH_ASSIST " ";
        sb_put(b, m, strlen(m));
        sb_put(b, t[i].text, strlen(t[i].text));
    }
    sb_put(b, HH_ASSIST " ", strlen(HH_ASSIST) + 1);
    sb_put(b, resp, strlen(resp));
}

/* 1 if the HH importer would read (ch, rj) back as exactly this pair. */
static int hh_reads_back(const fb_pair *p, const char *ch, const char *rj) {
    ictx c;
    fb_import_stats st;
    memset(&c, 0, sizeof c);
    c.st = &st;
    memset(&st, 0, sizeof st);
    fb_record r = fb_record_init(FB_PAIR);
    const char *rc_, *rr_;
    int multi, ok = 0;
    if (hh_pair(&c, ch, rj, &r, &rc_, &rr_, &multi) == 0 && !c.sc.oom && r.n_prompt == p->n_turns &&
        !strcmp(rc_, p->chosen) && !strcmp(rr_, p->rejected)) {
        ok = 1;
        for (int32_t i = 0; i < r.n_prompt; i++)
            if (r.prompt[i].role != p->turns[i].role || strcmp(r.prompt[i].text, p->turns[i].text)) ok = 0;
    }
    scr_free(&c.sc);
    return ok;
}

rl_status fb_export_hh(const fb_set *s, const char *path, int64_t *written, int64_t *skipped) {
    fb_pair *pairs;
    int64_t np, nw = 0, ns = 0;
    RL_TRY(fb_to_pairs(s, &pairs, &np));
    out_file o;
    rl_status st = out_open(&o, path);
    if (st != RL_OK) { free(pairs); return st; }
    sbuf bc = {0}, br = {0};
    for (int64_t i = 0; i < np && st == RL_OK; i++) {
        const fb_pair *p = &pairs[i];
        if (p->tie) { ns++; continue; }
        int sys = 0;
        for (int32_t t = 0; t < p->n_turns; t++) sys |= p->turns[t].role == CHAT_ROLE_SYSTEM;
        if (sys) { ns++; continue; }
        hh_render(&bc, p->turns, p->n_turns, p->chosen);
        hh_render(&br, p->turns, p->n_turns, p->rejected);
        if (bc.oom || br.oom) { st = rl_fail(RL_ENOMEM, "out of memory writing %s", path); break; }
        if (!hh_reads_back(p, bc.p, br.p)) { ns++; continue; }
        json_t *obj = json_object();
        json_object_set_new(obj, "chosen", json_string(bc.p));
        json_object_set_new(obj, "rejected", json_string(br.p));
        /* JSON_INDENT(0) without COMPACT writes ", " and ": " on one line:
         * the layout of the original HH files. */
        char *line = json_dumps(obj, JSON_INDENT(0) | JSON_PRESERVE_ORDER);
        json_decref(obj);
        if (!line) { st = rl_fail(RL_ENOMEM, "out of memory writing %s", path); break; }
        if (fputs(line, o.fp) < 0 || fputc('\n', o.fp) < 0) st = rl_fail(RL_EIO, "writing %s failed: %s", path, strerror(errno));
        free(line);
        nw++;
    }
    free(bc.p);
    free(br.p);
    free(pairs);
    if (written) *written = nw;
    if (skipped) *skipped = ns;
    return out_close(&o, st);
}
