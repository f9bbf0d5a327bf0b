/* check.h — the two error regimes of rlhf.c.
 *
 * 1. Trainers and CLI commands fail fast: CHECK(cond, hint...) prints
 *    "file:line: error: <cond>\n  hint: <hint>" to stderr and exits with
 *    status 1. Use it where there is nothing sensible to return to.
 * 2. Library and server code never exit(): functions return an rl_status and
 *    leave a human-readable message in a thread-local buffer that the caller
 *    reads with rl_error(). RL_TRY(expr) propagates a non-OK status.
 *
 * Exit codes used by the CLI: 0 success, 1 runtime failure, 2 usage error
 * (bad flag, out-of-range value, unknown command).
 */
#ifndef RL_CHECK_H
#define RL_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>

typedef enum {
    RL_OK = 0,
    RL_EINVAL = 1,   /* bad argument or malformed input */
    RL_EIO = 2,      /* a read or write failed (errno in the message) */
    RL_EFORMAT = 3,  /* a file is not what it should be: magic, version, size, checksum */
    RL_ENOMEM = 4,   /* allocation failed */
    RL_ENOTFOUND = 5,/* a file, key or record does not exist */
    RL_EUNSUPPORTED = 6, /* feature not built in (missing optional dependency) */
    RL_EAUTH = 7,    /* signature, key or token rejected */
    RL_EINTERNAL = 8
} rl_status;

/* Short name of a status ("format error", ...). Never NULL. */
const char *rl_status_name(rl_status s);

/* Sets the calling thread's error message (printf-style) and returns `s`,
 * so library code can write: return rl_fail(RL_EIO, "cannot open %s", p); */
rl_status rl_fail(rl_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last error message ("" if none). Valid until the next
 * rl_fail on this thread. */
const char *rl_error(void);

/* Fatal error with location; used by the CHECK macros. Never returns. */
void rl_die_at(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

#define CHECK(cond, ...) \
    do { if (!(cond)) rl_die_at(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

/* CHECK_OK(status_expr, hint...): fail fast if a library call did not return
 * RL_OK; prints the library's message from rl_error() and the hint. */
#define CHECK_OK(expr, ...) \
    do { rl_status rl__s = (expr); \
         if (rl__s != RL_OK) rl_die_at(__FILE__, __LINE__, rl_error(), __VA_ARGS__); } while (0)

#define RL_TRY(expr) do { rl_status rl__s = (expr); if (rl__s != RL_OK) return rl__s; } while (0)

/* Checked allocation for trainers (fail fast with the size asked for). */
void *rl_xmalloc_at(size_t n, const char *file, int line);
void *rl_xcalloc_at(size_t n, size_t size, const char *file, int line);
#define rl_xmalloc(n) rl_xmalloc_at((n), __FILE__, __LINE__)
#define rl_xcalloc(n, s) rl_xcalloc_at((n), (s), __FILE__, __LINE__)

#endif
