/* csv.h — a small, strict CSV reader (RFC 4180 plus the usual leniencies).
 *
 *   csv_reader *r; CHECK_OK(csv_open(&r, "votes.csv"), "...");
 *   int nf; char **f;
 *   while ((s = csv_next(r, &nf, &f)) == RL_OK && nf >= 0) { ... f[0..nf) ... }
 *   csv_close(r);
 *
 * Accepted: fields separated by ','; records ended by LF, CRLF or CR;
 * quoted fields ("...") that may hold commas, newlines and doubled quotes
 * (""); a UTF-8 byte-order mark at the start; a missing final newline.
 * Whitespace is kept as is (no trimming). Blank lines are skipped.
 *
 * Rejected with RL_EFORMAT and a message "file:line:col: what; what to do":
 * a quote inside an unquoted field, text after a closing quote, a quoted
 * field still open at the end of the file, a NUL byte.
 *
 * The whole file is read into memory once (the files we parse are a few MB).
 */
#ifndef RL_ALIGN_CSV_H
#define RL_ALIGN_CSV_H
#include <stddef.h>
#include "../base/check.h"

typedef struct csv_reader csv_reader;

/* Opens and reads `path`. RL_ENOTFOUND / RL_EIO with the reason. On success
 * *r is owned by the caller (csv_close). */
rl_status csv_open(csv_reader **r, const char *path);
/* Parses an in-memory buffer (copied). `name` is used in error messages. */
rl_status csv_open_mem(csv_reader **r, const char *data, size_t n, const char *name);

/* Next record. On RL_OK, *nfields >= 1 and fields[0..nfields) are
 * NUL-terminated, unescaped strings owned by the reader and valid until the
 * next csv_next / csv_close; at end of input *nfields = -1 and *fields = NULL.
 * On RL_EFORMAT the reader is at a dead end (later calls repeat the error). */
rl_status csv_next(csv_reader *r, int *nfields, char ***fields);

/* 1-based line on which the last returned record started (for messages). */
int csv_line(const csv_reader *r);
/* The name given at open (the path). */
const char *csv_name(const csv_reader *r);

void csv_close(csv_reader *r);

/* Index of the field equal to `name` in a header record, -1 if none. */
int csv_find(int nfields, char *const *fields, const char *name);

#endif
