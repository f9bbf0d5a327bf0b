/* test_tok.c — tokenizer: pre-split, round trips, training vs a naive
 * reference, encode vs a naive reference, files, specials. */
#include "test.h"
#include <stdint.h>
#include <pthread.h>
#include <unistd.h>
#include "../../src/tok/tok.h"
#include "../../src/base/binfile.h"
#include "../../src/base/rng.h"

static char tmpdir[256];
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    if (!tmpdir[0]) { snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_test_tok_XXXXXX"); if (!mkdtemp(tmpdir)) abort(); }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static char *shakespeare(size_t *n) {
    const char *sh = getenv("RLHF_SHARED");
    char p[1024];
    snprintf(p, sizeof p, "%s/data/tinyshakespeare.txt", sh ? sh : "../shared");
    return read_all(p, n);
}

/* Splits s with tok_pretok_next and joins the pieces with '|'. */
static const char *split(const char *s) {
    static char out[4096];
    size_t n = strlen(s), pos = 0, o = 0;
    while (pos < n) {
        size_t k = tok_pretok_next((const unsigned char *)s + pos, n - pos);
        if (o) out[o++] = '|';
        memcpy(out + o, s + pos, k);
        o += k; pos += k;
    }
    out[o] = 0;
    return out;
}

TEST(pretok_gpt2_regex) {
    EXPECT_STREQ(split("Hello world"), "Hello| world");
    EXPECT_STREQ(split("it's we'll they've I'm he'd you're can't"), "it|'s| we|'ll| they|'ve| I|'m| he|'d| you|'re| can|'t");
    EXPECT_STREQ(split("'S 'LL"), "'|S| '|LL");                 /* contractions are case-sensitive */
    EXPECT_STREQ(split("a   b"), "a|  | b");                    /* \s+(?!\S) leaves one space for " b" */
    EXPECT_STREQ(split("a\n\nb"), "a|\n|\n|b");
    EXPECT_STREQ(split("end   "), "end|   ");                   /* trailing run kept whole */
    EXPECT_STREQ(split("x \ty"), "x| |\t|y");                   /* only U+0020 joins a word */
    EXPECT_STREQ(split("123abc 45 6.7"), "123|abc| 45| 6|.|7");
    EXPECT_STREQ(split("hi!!! ...ok"), "hi|!!!| ...|ok");
    EXPECT_STREQ(split("h\xc3\xa9llo w\xc3\xb6rld"), "h\xc3\xa9llo| w\xc3\xb6rld");         /* héllo wörld */
    EXPECT_STREQ(split("\xe6\x97\xa5\xe6\x9c\xac 42"), "\xe6\x97\xa5\xe6\x9c\xac| 42");     /* CJK letters */
    EXPECT_STREQ(split("\xd9\xa3\xd9\xa4x"), "\xd9\xa3\xd9\xa4|x");                        /* Arabic-Indic digits are \p{N} */
    EXPECT_STREQ(split("a\xc2\xa0" "b"), "a|\xc2\xa0|b");                                   /* NBSP is \s, not ' ' */
    EXPECT_STREQ(split("ok \xf0\x9f\x98\x80!"), "ok| \xf0\x9f\x98\x80!");                  /* emoji is "other" */
    EXPECT_STREQ(split("a\xff\xfe" "b"), "a|\xff\xfe|b");                                   /* invalid bytes are "other" */
    EXPECT_STREQ(split("\xed\xa0\x80x"), "\xed\xa0\x80|x");                                 /* UTF-8 surrogate: 3 invalid bytes */
}

static tok_tokenizer *train_on(const char *text, size_t n, int vocab) {
    tok_tokenizer *t = NULL;
    const char *texts[1] = {text};
    tok_train_opts o = {vocab, 2, 0};
    rl_status s = tok_train(&t, texts, &n, 1, &o);
    if (s != RL_OK) fprintf(stderr, "  train: %s\n", rl_error());
    return t;
}

static tok_tokenizer *shakespeare_tok(int vocab) {
    size_t n;
    char *text = shakespeare(&n);
    if (!text) return NULL;
    tok_tokenizer *t = train_on(text, n > 300000 ? 300000 : n, vocab);
    free(text);
    return t;
}

static int roundtrip(const tok_tokenizer *t, const char *s, size_t n, int allow_special) {
    int *ids = NULL, k = 0;
    if (tok_encode(t, s, n, allow_special, &ids, &k) != RL_OK) { free(ids); return 0; }
    char *back; size_t bn;
    int ok = tok_decode(t, ids, k, &back, &bn) == RL_OK && bn == n && !memcmp(back, s, n);
    free(ids); free(back);
    return ok;
}

TEST(roundtrip_random_bytes_and_invalid_utf8) {
    tok_tokenizer *t = shakespeare_tok(256 + 500 + 4);
    REQUIRE(t);
    rl_rng r;
    rl_rng_seed(&r, 7);
    char buf[4096];
    int bad = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = rl_rng_below(&r, sizeof buf);
        int mode = trial % 3;
        for (size_t i = 0; i < n; i++) {
            if (mode == 0) buf[i] = (char)rl_rng_below(&r, 256);                     /* any bytes */
            else if (mode == 1) buf[i] = " etaoinshrdlu\n'\xc3\xa9\x80"[rl_rng_below(&r, 17)]; /* text-like, broken UTF-8 */
            else buf[i] = "<|end>\xf0\x9f"[rl_rng_below(&r, 8)];                      /* special-looking */
        }
        if (!roundtrip(t, buf, n, 0)) bad++;
    }
    EXPECT(bad == 0);
    EXPECT(roundtrip(t, "", 0, 0));
    EXPECT(roundtrip(t, "\0\0a\0", 4, 0));
    tok_free(t);
}

TEST(training_is_deterministic_and_makes_the_merges_asked) {
    size_t n;
    char *text = shakespeare(&n);
    REQUIRE(text);
    if (n > 200000) n = 200000;
    tok_tokenizer *a = train_on(text, n, 256 + 1000 + 4), *b = train_on(text, n, 256 + 1000 + 4);
    REQUIRE(a && b);
    EXPECT(tok_num_merges(a) == 1000);
    EXPECT(tok_vocab_size(a) == 256 + 1000 + 4);
    char ia[65], ib[65];
    tok_identity(a, ia); tok_identity(b, ib);
    EXPECT_STREQ(ia, ib);
    EXPECT(strlen(ia) == 64);
    /* merged tokens are byte strings of their parts; ids after merges are the specials */
    int l, r;
    EXPECT(tok_merge(a, 0, &l, &r) == 256);
    EXPECT(tok_merge(a, 1000, &l, &r) == -1);
    EXPECT(tok_special(a, "<|bos|>") == 1256 && tok_special(a, "<|end|>") == 1259 && tok_special(a, "<|endoftext|>") == -1);
    tok_free(a); tok_free(b);
    free(text);
}

/* Naive BPE training: recount every pair over every word before each merge. */
typedef struct { int *sym; int n; long long f; } nword;

TEST(training_matches_naive_rescan_reference) {
    size_t n;
    char *text = shakespeare(&n);
    REQUIRE(text);
    n = 60000;
    int want = 300;
    tok_tokenizer *t = train_on(text, n, 256 + want + 4);
    REQUIRE(t);
    /* words */
    nword *w = calloc(n, sizeof *w);
    int nw = 0;
    for (size_t pos = 0; pos < n;) {
        size_t k = tok_pretok_next((const unsigned char *)text + pos, n - pos);
        int found = -1;
        for (int i = nw - 1; i >= 0 && found < 0; i--) {
            if (w[i].n != (int)k) continue;
            int same = 1;
            for (size_t j = 0; j < k && same; j++) same = w[i].sym[j] == (unsigned char)text[pos + j];
            if (same) found = i;
        }
        if (found >= 0) w[found].f++;
        else {
            w[nw].sym = malloc(k * sizeof(int)); w[nw].n = (int)k; w[nw].f = 1;
            for (size_t j = 0; j < k; j++) w[nw].sym[j] = (unsigned char)text[pos + j];
            nw++;
        }
        pos += k;
    }
    int V = 256 + want;
    long long *cnt = malloc((size_t)V * V * sizeof *cnt);
    int mism = 0, made = 0;
    for (int m = 0; m < want; m++) {
        memset(cnt, 0, (size_t)V * V * sizeof *cnt);
        for (int i = 0; i < nw; i++) for (int j = 0; j + 1 < w[i].n; j++) cnt[(size_t)w[i].sym[j] * V + w[i].sym[j + 1]] += w[i].f;
        long long best = 0; int ba = -1, bb = -1;
        for (int a = 0; a < V; a++) for (int b = 0; b < V; b++) if (cnt[(size_t)a * V + b] > best) { best = cnt[(size_t)a * V + b]; ba = a; bb = b; }
        if (best < 2) break;
        int l, r;
        int c = tok_merge(t, m, &l, &r);
        if (c != 256 + m || l != ba || r != bb) mism++;
        made++;
        for (int i = 0; i < nw; i++) {
            int o = 0;
            for (int j = 0; j < w[i].n;) {
                if (j + 1 < w[i].n && w[i].sym[j] == ba && w[i].sym[j + 1] == bb) { w[i].sym[o++] = 256 + m; j += 2; }
                else w[i].sym[o++] = w[i].sym[j++];
            }
            w[i].n = o;
        }
    }
    EXPECT(made == want);
    EXPECT_MSG(mism == 0, "%d of %d merges differ from the naive trainer", mism, made);
    for (int i = 0; i < nw; i++) free(w[i].sym);
    free(w); free(cnt); free(text);
    tok_free(t);
}

/* Naive encoder: per piece, GPT-2's loop (find the lowest-rank pair, merge
 * every occurrence left to right, repeat). */
static int naive_encode(const tok_tokenizer *t, const unsigned char *s, size_t n, int *out) {
    int k = 0;
    int *w = malloc((n + 1) * sizeof *w);
    for (size_t pos = 0; pos < n;) {
        size_t len = tok_pretok_next(s + pos, n - pos);
        int m = 0;
        for (size_t i = 0; i < len; i++) {
            /* id of the one-byte token */
            for (int id = 0; id < tok_vocab_size(t); id++) {
                int bl; const unsigned char *b = tok_token_bytes(t, id, &bl);
                if (bl == 1 && b[0] == s[pos + i] && !tok_is_special(t, id)) { w[m++] = id; break; }
            }
        }
        for (;;) {
            int best = -1;
            for (int j = 0; j + 1 < m; j++) {
                for (int r = 0; r < tok_num_merges(t) && (best < 0 || r < best); r++) {
                    int a, b; tok_merge(t, r, &a, &b);
                    if (a == w[j] && b == w[j + 1]) { best = r; break; }
                }
            }
            if (best < 0) break;
            int a, b, c = tok_merge(t, best, &a, &b), o = 0;
            for (int j = 0; j < m;) {
                if (j + 1 < m && w[j] == a && w[j + 1] == b) { w[o++] = c; j += 2; }
                else w[o++] = w[j++];
            }
            m = o;
        }
        memcpy(out + k, w, (size_t)m * sizeof *w);
        k += m;
        pos += len;
    }
    free(w);
    return k;
}

TEST(encode_matches_naive_reference) {
    tok_tokenizer *t = shakespeare_tok(256 + 200 + 4);
    REQUIRE(t);
    const char *cases[] = {
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "the the the thethethe  theee   e e e ",
        "                                                                         x",
        "What's this? I'll tell thee, 'tis nought! \xff\xfe ok",
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t n = strlen(cases[c]);
        int *ids = NULL, k = 0;
        int *ref = malloc((n + 1) * sizeof *ref);
        REQUIRE(tok_encode(t, cases[c], n, 0, &ids, &k) == RL_OK);
        int rk = naive_encode(t, (const unsigned char *)cases[c], n, ref);
        int same = rk == k;
        for (int i = 0; same && i < k; i++) same = ids[i] == ref[i];
        EXPECT_MSG(same, "case %zu: %d ids vs naive %d", c, k, rk);
        free(ids); free(ref);
    }
    tok_free(t);
}

TEST(encode_is_stable_across_calls_and_appends) {
    tok_tokenizer *t = shakespeare_tok(256 + 300 + 4);
    REQUIRE(t);
    size_t n;
    char *text = shakespeare(&n);
    REQUIRE(text);
    n = 100000;
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    REQUIRE(tok_encode(t, text, n, 0, &a, &na) == RL_OK);   /* fills the cache */
    REQUIRE(tok_encode(t, text, n, 0, &b, &nb) == RL_OK);   /* uses it */
    EXPECT(na == nb && !memcmp(a, b, (size_t)na * sizeof *a));
    EXPECT(na < (int)n / 2);                                /* it compresses */
    /* appending: ids of "x" then "y" follow the earlier ones */
    int before = nb;
    REQUIRE(tok_encode(t, "hello", 5, 0, &b, &nb) == RL_OK);
    EXPECT(nb > before && !memcmp(a, b, (size_t)na * sizeof *a));
    free(a); free(b); free(text);
    tok_free(t);
}

TEST(special_tokens_only_when_allowed) {
    tok_tokenizer *t = shakespeare_tok(256 + 100 + 4);
    REQUIRE(t);
    int end = tok_special(t, "<|end|>"), user = tok_special(t, "<|user|>");
    REQUIRE(end > 0 && user > 0);
    const char *s = "<|user|>hi<|end|><|end|x";
    int *ids = NULL, n = 0;
    REQUIRE(tok_encode(t, s, strlen(s), 0, &ids, &n) == RL_OK);
    int found = 0;
    for (int i = 0; i < n; i++) found += tok_is_special(t, ids[i]);
    EXPECT(found == 0);
    free(ids); ids = NULL; n = 0;
    REQUIRE(tok_encode(t, s, strlen(s), 1, &ids, &n) == RL_OK);
    EXPECT(n >= 3 && ids[0] == user);
    int ends = 0;
    for (int i = 0; i < n; i++) ends += ids[i] == end;
    EXPECT(ends == 1);   /* "<|end|x" is not a special */
    char *back; size_t bn;
    REQUIRE(tok_decode(t, ids, n, &back, &bn) == RL_OK);
    EXPECT(bn == strlen(s) && !memcmp(back, s, bn));
    free(back); free(ids);
    int bad[2] = {1, tok_vocab_size(t)};
    EXPECT(tok_decode(t, bad, 2, &back, &bn) == RL_EINVAL && strstr(rl_error(), "outside"));
    int len;
    EXPECT(tok_token_bytes(t, -1, &len) == NULL && len == 0);
    tok_free(t);
}

TEST(save_load_roundtrip) {
    tok_tokenizer *t = shakespeare_tok(256 + 200 + 4), *u = NULL;
    REQUIRE(t);
    const char *p = tmp_path("a.tok");
    REQUIRE(tok_save(t, p) == RL_OK);
    REQUIRE(tok_load(&u, p) == RL_OK);
    char ia[65], ib[65];
    tok_identity(t, ia); tok_identity(u, ib);
    EXPECT_STREQ(ia, ib);
    EXPECT(tok_vocab_size(u) == tok_vocab_size(t) && tok_num_merges(u) == 200);
    const char *s = "Romeo, Romeo! wherefore art thou Romeo?";
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    tok_encode(t, s, strlen(s), 0, &a, &na);
    tok_encode(u, s, strlen(s), 0, &b, &nb);
    EXPECT(na == nb && !memcmp(a, b, (size_t)na * sizeof *a));
    free(a); free(b);
    tok_free(t); tok_free(u);
}

static void write_bytes(const char *p, const void *d, size_t n) { FILE *f = fopen(p, "wb"); fwrite(d, 1, n, f); fclose(f); }

TEST(bad_files_are_rejected_with_a_message) {
    tok_tokenizer *t = shakespeare_tok(256 + 50 + 4), *u = NULL;
    REQUIRE(t);
    const char *good = tmp_path("good.tok");
    REQUIRE(tok_save(t, good) == RL_OK);
    size_t n;
    char *data = read_all(good, &n);
    REQUIRE(data && n > 200);

    EXPECT(tok_load(&u, tmp_path("missing.tok")) == RL_ENOTFOUND && u == NULL);

    const char *trunc = tmp_path("trunc.tok");
    write_bytes(trunc, data, n - 10);
    EXPECT(tok_load(&u, trunc) == RL_EFORMAT && strstr(rl_error(), "truncated"));

    const char *corrupt = tmp_path("corrupt.tok");
    data[n - 5] ^= 1;
    write_bytes(corrupt, data, n);
    data[n - 5] ^= 1;
    EXPECT(tok_load(&u, corrupt) == RL_EFORMAT && strstr(rl_error(), "checksum"));

    const char *text = tmp_path("text.tok");
    write_bytes(text, "just some text, not a tokenizer at all..............................................", 80);
    EXPECT(tok_load(&u, text) == RL_EFORMAT && strstr(rl_error(), "not an rlhf.c"));

    /* a valid rlhf.c file of another kind */
    const char *other = tmp_path("other.bin");
    rl_writer *w;
    REQUIRE(rl_writer_open(&w, other, "RLHFSHRD", 1, 0) == RL_OK);
    rl_writer_write(w, "xxxx", 4);
    REQUIRE(rl_writer_commit(w) == RL_OK);
    EXPECT(tok_load(&u, other) == RL_EFORMAT && strstr(rl_error(), "not a tokenizer file"));

    /* right kind and checksum, inconsistent vocabulary: merge 0 claims bytes it does not have */
    const char *lie = tmp_path("lie.tok");
    REQUIRE(rl_writer_open(&w, lie, "RLHFTOK\0", 1, 0) == RL_OK);
    char *payload = data + 64;
    size_t plen = n - 64;
    /* payload: V M S pre | byte_id[256] | tok_len[V] | bytes | merges (M x 3) | specials */
    uint32_t V, M;
    memcpy(&V, payload, 4); memcpy(&M, payload + 4, 4);
    size_t total = 0;
    for (uint32_t i = 0; i < V; i++) { uint32_t l; memcpy(&l, payload + 16 + 1024 + 4 * i, 4); total += l; }
    size_t moff = 16 + 1024 + 4 * (size_t)V + ((total + 3) & ~(size_t)3);
    uint32_t right; memcpy(&right, payload + moff + 4, 4);
    right ^= 1;                         /* merge 0 now joins different tokens */
    memcpy(payload + moff + 4, &right, 4);
    rl_writer_write(w, payload, plen);
    REQUIRE(rl_writer_commit(w) == RL_OK);
    EXPECT(tok_load(&u, lie) == RL_EFORMAT && strstr(rl_error(), "merge 0"));

    /* newer version */
    const char *newer = tmp_path("newer.tok");
    REQUIRE(rl_writer_open(&w, newer, "RLHFTOK\0", 99, 0) == RL_OK);
    rl_writer_write(w, data + 64, n - 64);
    REQUIRE(rl_writer_commit(w) == RL_OK);
    EXPECT(tok_load(&u, newer) == RL_EFORMAT && strstr(rl_error(), "upgrade"));
    EXPECT(u == NULL);
    free(data);
    tok_free(t);
}

TEST(train_rejects_tiny_vocab_and_stops_when_out_of_pairs) {
    tok_tokenizer *t = NULL;
    const char *texts[1] = {"abab"};
    size_t lens[1] = {4};
    tok_train_opts o = {100, 2, 0};
    EXPECT(tok_train(&t, texts, lens, 1, &o) == RL_EINVAL && t == NULL);
    o.vocab_size = 1000;
    REQUIRE(tok_train(&t, texts, lens, 1, &o) == RL_OK);
    EXPECT(tok_num_merges(t) == 1);   /* "ab" x2, then "abab" occurs once < min_frequency */
    EXPECT(tok_vocab_size(t) == 256 + 1 + 4);
    tok_free(t);
}

/* Threads share one tokenizer: the cache is taken with trylock, the losers
 * encode without it; every thread must get the same ids. */
typedef struct { const tok_tokenizer *t; const char *text; size_t n; int *ids; int k; } enc_job;
static void *enc_thread(void *arg) {
    enc_job *j = arg;
    for (int r = 0; r < 3; r++) { free(j->ids); j->ids = NULL; j->k = 0; tok_encode(j->t, j->text, j->n, 0, &j->ids, &j->k); }
    return NULL;
}

TEST(concurrent_encodes_agree) {
    tok_tokenizer *t = shakespeare_tok(256 + 300 + 4);
    REQUIRE(t);
    size_t n;
    char *text = shakespeare(&n);
    REQUIRE(text);
    n = 200000;
    enc_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) { jobs[i] = (enc_job){t, text, n, NULL, 0}; pthread_create(&th[i], NULL, enc_thread, &jobs[i]); }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 1; i < 4; i++) EXPECT(jobs[i].k == jobs[0].k && !memcmp(jobs[i].ids, jobs[0].ids, (size_t)jobs[0].k * sizeof(int)));
    for (int i = 0; i < 4; i++) free(jobs[i].ids);
    free(text);
    tok_free(t);
}

TEST(cleanup) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (tmpdir[0]) EXPECT(system(cmd) == 0);
}

TEST_MAIN()
