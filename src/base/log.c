#include "log.h"
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int rl_log_level = 1;

double rl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double rl_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void vlog(const char *prefix, const char *fmt, va_list ap) {
    fflush(stdout);
    if (prefix) fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void rl_info(const char *fmt, ...) {
    if (rl_log_level < 1) return;
    va_list ap; va_start(ap, fmt); vlog(NULL, fmt, ap); va_end(ap);
}

void rl_debug(const char *fmt, ...) {
    if (rl_log_level < 2) return;
    va_list ap; va_start(ap, fmt); vlog("debug: ", fmt, ap); va_end(ap);
}

void rl_warn(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); vlog("warning: ", fmt, ap); va_end(ap);
}

/* ---- progress ------------------------------------------------------------ */

static void fmt_duration(char *out, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(out, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, n, "%02ld:%02ld", t / 60, t % 60);
}

void rl_progress_start(rl_progress *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = p->t_last_draw = rl_now();
    p->is_tty = isatty(STDERR_FILENO) && rl_log_level >= 1;
    p->active = rl_log_level >= 1;
}

static void progress_draw(rl_progress *p, int final) {
    double now = rl_now(), el = now - p->t_start;
    char eta[32], ela[32];
    fmt_duration(ela, sizeof ela, el);
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    fmt_duration(eta, sizeof eta, (p->total > 0 && p->done > 0) ? el * (1 - frac) / frac : NAN);
    if (p->is_tty) {
        char bar[25];
        int w = 24, fill = (int)(frac * w);
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        if (p->total > 0)
            fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s<%s %s", p->label, bar, (long long)p->done, (long long)p->total, ela, eta, p->extra);
        else
            fprintf(stderr, "\r\033[K%s %lld %s %s", p->label, (long long)p->done, ela, p->extra);
        if (final) fputc('\n', stderr);
    } else {
        if (p->total > 0)
            fprintf(stderr, "%s %lld/%lld (%.0f%%) elapsed %s eta %s %s\n", p->label, (long long)p->done, (long long)p->total, 100 * frac, ela, eta, p->extra);
        else
            fprintf(stderr, "%s %lld elapsed %s %s\n", p->label, (long long)p->done, ela, p->extra);
    }
    fflush(stderr);
    p->t_last_draw = now;
}

void rl_progress_update(rl_progress *p, int64_t done, const char *fmt, ...) {
    p->done = done;
    if (fmt) {
        va_list ap; va_start(ap, fmt);
        vsnprintf(p->extra, sizeof p->extra, fmt, ap);
        va_end(ap);
    }
    if (!p->active) return;
    double gap = p->is_tty ? 0.1 : 5.0;
    if (rl_now() - p->t_last_draw >= gap) progress_draw(p, 0);
}

void rl_progress_end(rl_progress *p) {
    if (p->active) progress_draw(p, 1);
    p->active = 0;
}

/* ---- JSON + metrics ------------------------------------------------------ */

int rl_json_escape(char *out, int n, const char *s) {
    int k = 0;
#define PUT(c) do { if (k < n - 1) out[k] = (c); k++; } while (0)
    PUT('"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        /* Length of a valid UTF-8 sequence starting here, 0 if invalid. */
        int len = 0;
        if (c < 0x80) len = 1;
        else if ((c & 0xE0) == 0xC0 && c >= 0xC2) len = 2;
        else if ((c & 0xF0) == 0xE0) len = 3;
        else if ((c & 0xF8) == 0xF0 && c <= 0xF4) len = 4;
        for (int i = 1; i < len; i++) if ((p[i] & 0xC0) != 0x80) { len = 0; break; }
        if (len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))) len = 0;
        if (len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))) len = 0;
        if (len == 1) {
            if (c == '"' || c == '\\') { PUT('\\'); PUT((char)c); }
            else if (c == '\n') { PUT('\\'); PUT('n'); }
            else if (c == '\r') { PUT('\\'); PUT('r'); }
            else if (c == '\t') { PUT('\\'); PUT('t'); }
            else if (c < 0x20 || c == 0x7f) { char e[8]; snprintf(e, sizeof e, "\\u%04x", c); for (int i = 0; e[i]; i++) PUT(e[i]); }
            else PUT((char)c);
            p++;
        } else if (len > 1) {
            for (int i = 0; i < len; i++) PUT((char)p[i]);
            p += len;
        } else { /* invalid byte: keep it visible, stay valid JSON */
            char e[8]; snprintf(e, sizeof e, "\\u%04x", c);
            for (int i = 0; e[i]; i++) PUT(e[i]);
            p++;
        }
    }
    PUT('"');
    if (n > 0) out[k < n ? k : n - 1] = 0;
#undef PUT
    return k;
}

rl_status rl_metrics_open(rl_metrics *m, const char *path, int append) {
    memset(m, 0, sizeof *m);
    if (!path || !*path) return RL_OK;
    m->fp = fopen(path, append ? "a" : "w");
    if (!m->fp) return rl_fail(RL_EIO, "cannot open metrics log %s: %m", path);
    return RL_OK;
}

static void mput(rl_metrics *m, const char *s, int n) {
    if (m->len + n >= (int)sizeof m->buf - 2) return; /* row full: drop the field, keep JSON valid */
    memcpy(m->buf + m->len, s, (size_t)n);
    m->len += n;
}

static void mkey(rl_metrics *m, const char *key) {
    char tmp[256];
    if (!m->first) mput(m, ",", 1);
    m->first = 0;
    int n = rl_json_escape(tmp, sizeof tmp, key);
    if (n >= (int)sizeof tmp) n = (int)sizeof tmp - 1;
    mput(m, tmp, n);
    mput(m, ":", 1);
}

void rl_metrics_begin(rl_metrics *m) { m->len = 0; m->first = 1; if (m->fp) mput(m, "{", 1); }

void rl_metrics_i(rl_metrics *m, const char *key, long long v) {
    if (!m->fp) return;
    char t[32]; int n = snprintf(t, sizeof t, "%lld", v);
    int save = m->len, sf = m->first;
    mkey(m, key);
    if (m->len + n >= (int)sizeof m->buf - 2) { m->len = save; m->first = sf; return; }
    mput(m, t, n);
}

void rl_metrics_f(rl_metrics *m, const char *key, double v) {
    if (!m->fp) return;
    char t[40]; int n = isfinite(v) ? snprintf(t, sizeof t, "%.9g", v) : snprintf(t, sizeof t, "null");
    int save = m->len, sf = m->first;
    mkey(m, key);
    if (m->len + n >= (int)sizeof m->buf - 2) { m->len = save; m->first = sf; return; }
    mput(m, t, n);
}

void rl_metrics_s(rl_metrics *m, const char *key, const char *v) {
    if (!m->fp) return;
    char t[1024]; int n = rl_json_escape(t, sizeof t, v);
    int save = m->len, sf = m->first;
    if (n >= (int)sizeof t) return; /* too long for a metrics field: skip it */
    mkey(m, key);
    if (m->len + n >= (int)sizeof m->buf - 2) { m->len = save; m->first = sf; return; }
    mput(m, t, n);
}

void rl_metrics_end(rl_metrics *m) {
    if (!m->fp) return;
    m->buf[m->len++] = '}';
    m->buf[m->len++] = '\n';
    fwrite(m->buf, 1, (size_t)m->len, m->fp);
    fflush(m->fp);
    m->len = 0;
}

void rl_metrics_close(rl_metrics *m) {
    if (m->fp) fclose(m->fp);
    m->fp = NULL;
}
