/* csv.c — see csv.h. A single pass over a buffer: each record is unescaped
 * into `out` (fields separated by NULs), then field pointers are set. */
#include "csv.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct csv_reader {
    char *name;
    char *data;      /* owned copy of the input */
    size_t n, pos;
    int line;        /* current line (1-based) */
    int rec_line;    /* line the last record started on */
    char *out;       /* unescaped fields, NUL-separated */
    size_t out_cap;
    size_t *off;     /* field start offsets into out */
    char **fields;   /* pointers handed to the caller */
    int f_cap;
    rl_status dead;  /* sticky error */
    char dead_msg[512];
};

static rl_status grow_out(csv_reader *r, size_t need) {
    if (need <= r->out_cap) return RL_OK;
    size_t cap = r->out_cap ? r->out_cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(r->out, cap);
    if (!p) return rl_fail(RL_ENOMEM, "%s: out of memory for a %zu-byte CSV record", r->name, need);
    r->out = p; r->out_cap = cap;
    return RL_OK;
}

static rl_status grow_fields(csv_reader *r, int need) {
    if (need <= r->f_cap) return RL_OK;
    int cap = r->f_cap ? r->f_cap : 16;
    while (cap < need) cap *= 2;
    size_t *o = realloc(r->off, (size_t)cap * sizeof *o);
    if (!o) return rl_fail(RL_ENOMEM, "%s: out of memory", r->name);
    r->off = o;
    char **f = realloc(r->fields, (size_t)cap * sizeof *f);
    if (!f) return rl_fail(RL_ENOMEM, "%s: out of memory", r->name);
    r->fields = f; r->f_cap = cap;
    return RL_OK;
}

rl_status csv_open_mem(csv_reader **rp, const char *data, size_t n, const char *name) {
    *rp = NULL;
    csv_reader *r = calloc(1, sizeof *r);
    if (!r) return rl_fail(RL_ENOMEM, "out of memory");
    r->name = strdup(name ? name : "<csv>");
    r->data = malloc(n + 1);
    if (!r->name || !r->data) { csv_close(r); return rl_fail(RL_ENOMEM, "out of memory for %zu bytes of CSV", n); }
    memcpy(r->data, data, n);
    r->data[n] = 0;
    r->n = n;
    r->line = 1;
    if (n >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB && (unsigned char)data[2] == 0xBF)
        r->pos = 3; /* UTF-8 byte-order mark */
    *rp = r;
    return RL_OK;
}

rl_status csv_open(csv_reader **rp, const char *path) {
    *rp = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(fp); return rl_fail(RL_ENOMEM, "out of memory reading %s", path); }
    for (;;) {
        if (n == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) { free(buf); fclose(fp); return rl_fail(RL_ENOMEM, "out of memory reading %s", path); }
            buf = p; cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) { free(buf); return rl_fail(RL_EIO, "read error on %s", path); }
    rl_status s = csv_open_mem(rp, buf, n, path);
    free(buf);
    return s;
}

static rl_status die(csv_reader *r, int line, int col, const char *what, const char *todo) {
    snprintf(r->dead_msg, sizeof r->dead_msg, "%s:%d:%d: %s; %s", r->name, line, col, what, todo);
    r->dead = RL_EFORMAT;
    return rl_fail(RL_EFORMAT, "%s", r->dead_msg);
}

rl_status csv_next(csv_reader *r, int *nfields, char ***fields) {
    *nfields = -1;
    *fields = NULL;
    if (r->dead) return rl_fail(r->dead, "%s", r->dead_msg);
    const char *d = r->data;
    /* Skip blank lines between records. */
    while (r->pos < r->n && (d[r->pos] == '\n' || d[r->pos] == '\r')) {
        if (d[r->pos] == '\r' && r->pos + 1 < r->n && d[r->pos + 1] == '\n') r->pos++;
        r->pos++;
        r->line++;
    }
    if (r->pos >= r->n) return RL_OK;
    r->rec_line = r->line;
    size_t o = 0;     /* bytes used in out */
    int nf = 0;
    size_t line_start = r->pos;
    for (;;) { /* one field per iteration */
        RL_TRY(grow_fields(r, nf + 1));
        r->off[nf++] = o;
        if (r->pos < r->n && d[r->pos] == '"') {
            int qline = r->line, qcol = (int)(r->pos - line_start) + 1;
            r->pos++;
            for (;;) {
                if (r->pos >= r->n)
                    return die(r, qline, qcol, "quoted field is never closed", "add the closing '\"' (a quote inside a quoted field is written \"\")");
                char c = d[r->pos];
                if (c == 0) return die(r, r->line, (int)(r->pos - line_start) + 1, "NUL byte in the data", "is this a text CSV file?");
                if (c == '"') {
                    if (r->pos + 1 < r->n && d[r->pos + 1] == '"') { RL_TRY(grow_out(r, o + 1)); r->out[o++] = '"'; r->pos += 2; continue; }
                    r->pos++;
                    break;
                }
                if (c == '\n' || (c == '\r' && !(r->pos + 1 < r->n && d[r->pos + 1] == '\n'))) { r->line++; line_start = r->pos + 1; }
                RL_TRY(grow_out(r, o + 1));
                r->out[o++] = c;
                r->pos++;
            }
            if (r->pos < r->n && d[r->pos] != ',' && d[r->pos] != '\n' && d[r->pos] != '\r')
                return die(r, r->line, (int)(r->pos - line_start) + 1, "text after the closing quote of a field",
                           "quote the whole field and double the quotes inside it");
        } else {
            while (r->pos < r->n && d[r->pos] != ',' && d[r->pos] != '\n' && d[r->pos] != '\r') {
                char c = d[r->pos];
                if (c == '"') return die(r, r->line, (int)(r->pos - line_start) + 1, "quote inside an unquoted field",
                                         "quote the whole field and write the quote as \"\"");
                if (c == 0) return die(r, r->line, (int)(r->pos - line_start) + 1, "NUL byte in the data", "is this a text CSV file?");
                RL_TRY(grow_out(r, o + 1));
                r->out[o++] = c;
                r->pos++;
            }
        }
        RL_TRY(grow_out(r, o + 1));
        r->out[o++] = 0;
        if (r->pos < r->n && d[r->pos] == ',') { r->pos++; continue; }
        /* end of record: newline or end of input */
        if (r->pos < r->n) {
            if (d[r->pos] == '\r' && r->pos + 1 < r->n && d[r->pos + 1] == '\n') r->pos++;
            r->pos++;
            r->line++;
        }
        break;
    }
    for (int i = 0; i < nf; i++) r->fields[i] = r->out + r->off[i];
    *nfields = nf;
    *fields = r->fields;
    return RL_OK;
}

int csv_line(const csv_reader *r) { return r->rec_line; }
const char *csv_name(const csv_reader *r) { return r->name; }

void csv_close(csv_reader *r) {
    if (!r) return;
    free(r->name); free(r->data); free(r->out); free(r->off); free(r->fields);
    free(r);
}

int csv_find(int nfields, char *const *fields, const char *name) {
    for (int i = 0; i < nfields; i++)
        if (!strcmp(fields[i], name)) return i;
    return -1;
}
