#include "check.h"
#include <string.h>

static _Thread_local char rl__errbuf[1024];

const char *rl_status_name(rl_status s) {
    switch (s) {
    case RL_OK: return "ok";
    case RL_EINVAL: return "invalid argument";
    case RL_EIO: return "i/o error";
    case RL_EFORMAT: return "format error";
    case RL_ENOMEM: return "out of memory";
    case RL_ENOTFOUND: return "not found";
    case RL_EUNSUPPORTED: return "not supported in this build";
    case RL_EAUTH: return "authentication failed";
    case RL_EINTERNAL: return "internal error";
    }
    return "unknown status";
}

rl_status rl_fail(rl_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rl__errbuf, sizeof rl__errbuf, fmt, ap);
    va_end(ap);
    return s;
}

const char *rl_error(void) { return rl__errbuf; }

void rl_die_at(const char *file, int line, const char *what, const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: error: %s\n", file, line, what);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "  hint: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    exit(1);
}

void *rl_xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) rl_die_at(file, line, "malloc failed", "asked for %zu bytes; use a smaller model or batch", n);
    return p;
}

void *rl_xcalloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) rl_die_at(file, line, "calloc failed", "asked for %zu x %zu bytes; use a smaller model or batch", n, size);
    return p;
}
