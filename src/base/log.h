/* log.h — messages, progress bars, JSONL metrics and time.
 *
 * Messages go to stderr so stdout stays clean for data (`tokenizer encode`,
 * `sample`, `score`). Progress bars redraw in place on a terminal and print a
 * plain line every few seconds otherwise (logs, CI). The metrics logger writes
 * one JSON object per line, flushed per row, so a crashed run keeps its log.
 */
#ifndef RL_LOG_H
#define RL_LOG_H
#include <stdint.h>
#include <stdio.h>
#include "check.h"

/* Monotonic seconds. */
double rl_now(void);
/* Wall-clock seconds since the epoch (for timestamps in records). */
double rl_wall_time(void);

/* 0 = errors only, 1 = normal (default), 2 = verbose. From RLHF_LOG_LEVEL or --quiet/--verbose. */
extern int rl_log_level;
void rl_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rl_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning: what happened, then why it matters / what to try on its own line. */
void rl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress bar. No allocation; safe to call update every step. */
typedef struct {
    char label[48];
    int64_t total;      /* units of work (steps, bytes, ...); 0 = unknown */
    int64_t done;
    double t_start, t_last_draw;
    int is_tty;
    int active;
    char extra[160];    /* caller's text after the bar (loss, tokens/s ...) */
} rl_progress;

void rl_progress_start(rl_progress *p, const char *label, int64_t total);
/* Sets progress to `done` and an optional extra text (printf-style, may be NULL).
 * Draws at most ~10 times a second on a TTY, every 5 s otherwise. */
void rl_progress_update(rl_progress *p, int64_t done, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Final draw and newline. */
void rl_progress_end(rl_progress *p);

/* JSONL metrics logger: one object per row.
 *   rl_metrics_begin(m); rl_metrics_i(m, "step", s); rl_metrics_f(m, "loss", l); rl_metrics_end(m);
 * Rows are built in a fixed buffer (no allocation per row). Non-finite floats
 * are written as null (JSON has no NaN). */
typedef struct {
    FILE *fp;           /* owned; NULL = disabled (all calls are no-ops) */
    char buf[8192];
    int len;
    int first;
} rl_metrics;

/* path NULL or "" disables logging. `append` keeps existing rows (resume). */
rl_status rl_metrics_open(rl_metrics *m, const char *path, int append);
void rl_metrics_begin(rl_metrics *m);
void rl_metrics_i(rl_metrics *m, const char *key, long long v);
void rl_metrics_f(rl_metrics *m, const char *key, double v);
void rl_metrics_s(rl_metrics *m, const char *key, const char *v);  /* JSON-escaped */
void rl_metrics_end(rl_metrics *m);
void rl_metrics_close(rl_metrics *m);

/* Writes `s` as a JSON string literal (quotes included, escaped; invalid UTF-8
 * bytes as \u00XX) into out (size n). Returns the length it needed. */
int rl_json_escape(char *out, int n, const char *s);

#endif
