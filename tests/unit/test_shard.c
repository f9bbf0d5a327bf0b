/* test_shard.c — token shards: prepare, manifest, chunking invariance, the
 * (B, T+1) loader: window contents, rank disjointness, shuffling, resume. */
#include "test.h"
#include <stdint.h>
#include <unistd.h>
#include "../../src/data/shard.h"
#include "../../src/tok/tok_internal.h"
#include "../../src/base/binfile.h"

static char tmpdir[256];
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    if (!tmpdir[0]) { snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_test_shard_XXXXXX"); if (!mkdtemp(tmpdir)) abort(); }
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

static const char *shakespeare_path(void) {
    static char p[1024];
    const char *sh = getenv("RLHF_SHARED");
    snprintf(p, sizeof p, "%s/data/tinyshakespeare.txt", sh ? sh : "../shared");
    return p;
}

static tok_tokenizer *tok;          /* trained once */
static int *stream; static int nstream;   /* the expected train stream */

static tok_tokenizer *get_tok(void) {
    if (tok) return tok;
    size_t n;
    char *text = read_all(shakespeare_path(), &n);
    if (!text) return NULL;
    const char *texts[1] = {text};
    n = 200000;
    tok_train_opts o = {256 + 300 + 4, 2, 0};
    if (tok_train(&tok, texts, &n, 1, &o) != RL_OK) tok = NULL;
    free(text);
    return tok;
}

/* small input: the first 100 KB of Shakespeare */
static const char *small_input(void) {
    const char *p = tmp_path("small.txt");
    if (access(p, F_OK) != 0) {
        size_t n;
        char *text = read_all(shakespeare_path(), &n);
        FILE *f = fopen(p, "wb");
        fwrite(text, 1, 100000, f);
        fclose(f);
        free(text);
    }
    return p;
}

TEST(prepare_writes_manifest_and_expected_tokens) {
    tok_tokenizer *t = get_tok();
    REQUIRE(t);
    const char *in[1] = {small_input()};
    const char *dir = tmp_path("d1");
    data_prepare_opts o = {0.1, 1 << 20, 0, 0};
    data_prepare_stats s;
    REQUIRE(data_prepare(t, in, 1, dir, &o, &s) == RL_OK);
    data_info info;
    REQUIRE(data_read_info(dir, &info) == RL_OK);
    EXPECT(info.vocab_size == tok_vocab_size(t) && info.token_bytes == 2);
    char id[65];
    tok_identity(t, id);
    EXPECT_STREQ(info.identity, id);
    EXPECT(info.train_tokens == s.train_tokens && info.val_tokens == s.val_tokens && info.train_shards == 1 && info.val_shards == 1);
    /* expected: <|bos|> + ids of the first ~90% (cut after a newline), <|bos|> + the rest */
    size_t n = 0;
    char *text = read_all(in[0], &n);
    REQUIRE(text);
    size_t cut = n - (size_t)(n * 0.1);
    while (text[cut - 1] != '\n') cut++;
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    tok_encode(t, text, cut, 0, &a, &na);
    tok_encode(t, text + cut, n - cut, 0, &b, &nb);
    EXPECT(s.train_tokens == na + 1 && s.val_tokens == nb + 1);
    /* the loader with T = everything - 1 returns exactly the stream */
    data_loader *l;
    REQUIRE(data_loader_open(&l, dir, "train", 1, (int)s.train_tokens - 1, 0, 1, 0) == RL_OK);
    int *row = malloc((size_t)s.train_tokens * sizeof *row);
    data_loader_next(l, row);
    EXPECT(row[0] == tok_special(t, "<|bos|>"));
    EXPECT(!memcmp(row + 1, a, (size_t)na * sizeof *a));
    data_loader_close(l);
    stream = row; nstream = (int)s.train_tokens;
    free(a); free(b); free(text);
}

TEST(chunking_and_shard_size_do_not_change_the_stream) {
    tok_tokenizer *t = get_tok();
    REQUIRE(t && stream);
    const char *in[1] = {small_input()};
    const char *dir = tmp_path("d2");
    data_prepare_opts o = {0.1, 1024, 997, 0};  /* tiny chunks, many shards */
    data_prepare_stats s;
    REQUIRE(data_prepare(t, in, 1, dir, &o, &s) == RL_OK);
    EXPECT(s.train_tokens == nstream);
    EXPECT(s.train_shards == (int)((nstream + 1023) / 1024));
    data_loader *l;
    REQUIRE(data_loader_open(&l, dir, "train", 1, nstream - 1, 0, 1, 0) == RL_OK);
    int *row = malloc((size_t)nstream * sizeof *row);
    data_loader_next(l, row);
    EXPECT(!memcmp(row, stream, (size_t)nstream * sizeof *row));   /* crosses every shard boundary */
    free(row);
    data_loader_close(l);
}

TEST(loader_windows_ranks_shuffle_resume) {
    REQUIRE(stream);
    const char *dir = tmp_path("d2");   /* multi-shard copy */
    int B = 3, T = 64, world = 3;
    long long nwin = (nstream - 1) / T, batches = nwin / (B * world);
    int *buf = malloc((size_t)B * (T + 1) * sizeof *buf);
    for (int seed = 0; seed < 2; seed++) {
        char *seen = calloc((size_t)nwin, 1);
        int bad_content = 0, dup = 0;
        for (int r = 0; r < world; r++) {
            data_loader *l;
            REQUIRE(data_loader_open(&l, dir, "train", B, T, r, world, (uint64_t)seed * 1234) == RL_OK);
            EXPECT(data_loader_batches_per_epoch(l) == batches);
            EXPECT(data_loader_tokens(l) == nstream && data_loader_vocab_size(l) == 256 + 300 + 4);
            for (long long k = 0; k < batches; k++) {
                data_loader_next(l, buf);
                for (int b = 0; b < B; b++) {
                    int *row = buf + b * (T + 1);
                    /* locate the window: rows are exact slices of the stream at a multiple of T */
                    long long w = -1;
                    for (long long c = 0; c < nwin && w < 0; c++)
                        if (!memcmp(row, stream + c * T, (size_t)(T + 1) * sizeof *row) && !seen[c]) w = c;
                    if (w < 0) { bad_content++; continue; }
                    if (seed == 0 && w != (k * B + b) * world + r) bad_content++;  /* natural order */
                    if (seen[w]) dup++;
                    seen[w] = 1;
                }
            }
            data_loader_close(l);
        }
        long long covered = 0;
        for (long long c = 0; c < nwin; c++) covered += seen[c];
        EXPECT_MSG(bad_content == 0 && dup == 0, "seed %d: %d bad windows, %d repeated", seed, bad_content, dup);
        EXPECT(covered == batches * B * world);  /* disjoint and complete */
        free(seen);
    }
    /* same seed -> same batches; next epoch -> a different order; state resumes exactly */
    data_loader *a, *b;
    REQUIRE(data_loader_open(&a, dir, "train", B, T, 1, 2, 99) == RL_OK);
    REQUIRE(data_loader_open(&b, dir, "train", B, T, 1, 2, 99) == RL_OK);
    long long bpe = data_loader_batches_per_epoch(a);
    int *x = malloc((size_t)B * (T + 1) * sizeof *x), *first = malloc((size_t)B * (T + 1) * sizeof *x);
    data_loader_next(a, first);
    data_loader_next(b, x);
    EXPECT(!memcmp(first, x, (size_t)B * (T + 1) * sizeof *x));
    for (long long k = 1; k < bpe; k++) data_loader_next(a, x);
    data_loader_next(a, x);   /* epoch 1, batch 0 */
    EXPECT(memcmp(first, x, (size_t)B * (T + 1) * sizeof *x) != 0);
    for (int k = 0; k < 5; k++) data_loader_next(a, x);
    uint64_t st[4];
    data_loader_state(a, st);
    EXPECT(st[0] == 1 && st[1] == 6 && st[2] == 99);
    data_loader_next(a, x);
    REQUIRE(data_loader_set_state(b, st) == RL_OK);
    data_loader_next(b, first);
    EXPECT(!memcmp(first, x, (size_t)B * (T + 1) * sizeof *x));
    data_loader_reset(b);
    data_loader_state(b, st);
    EXPECT(st[0] == 0 && st[1] == 0);
    st[2] = 98;
    EXPECT(data_loader_set_state(b, st) == RL_EINVAL && strstr(rl_error(), "seed"));
    data_loader_close(a); data_loader_close(b);
    free(x); free(first); free(buf);
}

TEST(loader_rejects_bad_dirs_and_shapes) {
    data_loader *l = NULL;
    EXPECT(data_loader_open(&l, tmp_path("nothing"), "train", 1, 8, 0, 1, 0) == RL_ENOTFOUND && strstr(rl_error(), "data prepare"));
    const char *dir = tmp_path("d1");
    EXPECT(data_loader_open(&l, dir, "test", 1, 8, 0, 1, 0) == RL_EINVAL);
    EXPECT(data_loader_open(&l, dir, "train", 1, 8, 2, 2, 0) == RL_EINVAL);
    EXPECT(data_loader_open(&l, dir, "val", 1000, 1000, 0, 1, 0) == RL_EINVAL && strstr(rl_error(), "tokens"));
    EXPECT(l == NULL);
    /* a shard from another directory (different split sizes) is caught */
    char a[600], b[600], cmd[1400];
    snprintf(a, sizeof a, "%s/train_000000.bin", tmp_path("d2"));
    snprintf(b, sizeof b, "%s/train_000000.bin", tmp_path("d1"));
    snprintf(cmd, sizeof cmd, "cp %s %s", a, b);
    REQUIRE(system(cmd) == 0);
    EXPECT(data_loader_open(&l, dir, "train", 1, 8, 0, 1, 0) == RL_EFORMAT && strstr(rl_error(), "does not belong"));
    /* truncated shard */
    snprintf(cmd, sizeof cmd, "truncate -s -7 %s", b);
    REQUIRE(system(cmd) == 0);
    EXPECT(data_loader_open(&l, dir, "train", 1, 8, 0, 1, 0) == RL_EFORMAT && strstr(rl_error(), "truncated"));
    /* manifest replaced by a tokenizer file */
    char m[600];
    snprintf(m, sizeof m, "%s/manifest.bin", dir);
    REQUIRE(tok_save(get_tok(), m) == RL_OK);
    EXPECT(data_loader_open(&l, dir, "train", 1, 8, 0, 1, 0) == RL_EFORMAT && strstr(rl_error(), "manifest"));
    data_prepare_opts o = {0.9, 1 << 20, 0, 0};
    const char *in[1] = {small_input()};
    EXPECT(data_prepare(get_tok(), in, 1, tmp_path("d3"), &o, NULL) == RL_EINVAL);
    o.val_fraction = 0;
    const char *missing[1] = {tmp_path("no-such-file.txt")};
    EXPECT(data_prepare(get_tok(), missing, 1, tmp_path("d3"), &o, NULL) == RL_ENOTFOUND);
}

TEST(uint32_shards_for_big_vocabularies) {
    /* a tokenizer with 65,796 ids: every 2-byte pair is a merge */
    int M = 65536, V = 256 + M + 4;
    uint32_t byte_id[256], *len = malloc((size_t)V * 4), *merges = malloc((size_t)M * 12), sp[4];
    unsigned char *bytes = malloc((size_t)V * 16);
    size_t o = 0;
    for (int b = 0; b < 256; b++) { byte_id[b] = (uint32_t)b; len[b] = 1; bytes[o++] = (unsigned char)b; }
    for (int m = 0; m < M; m++) {
        merges[3 * m] = (uint32_t)(m >> 8); merges[3 * m + 1] = (uint32_t)(m & 255); merges[3 * m + 2] = (uint32_t)(256 + m);
        len[256 + m] = 2; bytes[o++] = (unsigned char)(m >> 8); bytes[o++] = (unsigned char)(m & 255);
    }
    for (int i = 0; i < 4; i++) {
        sp[i] = (uint32_t)(256 + M + i);
        len[256 + M + i] = (uint32_t)strlen(tok_chat_specials[i]);
        memcpy(bytes + o, tok_chat_specials[i], len[256 + M + i]); o += len[256 + M + i];
    }
    tok_tokenizer *t = NULL;
    REQUIRE(tok_build(&t, V, byte_id, len, bytes, M, merges, 4, sp, "test") == RL_OK);
    const char *in[1] = {small_input()};
    const char *dir = tmp_path("d4");
    data_prepare_opts op = {0.0, 1 << 20, 0, 0};
    data_prepare_stats s;
    REQUIRE(data_prepare(t, in, 1, dir, &op, &s) == RL_OK);
    data_info info;
    REQUIRE(data_read_info(dir, &info) == RL_OK);
    EXPECT(info.token_bytes == 4 && info.val_tokens == 0 && info.val_shards == 0);
    data_loader *l;
    REQUIRE(data_loader_open(&l, dir, "train", 2, 16, 0, 1, 0) == RL_OK);
    int row[2 * 17];
    data_loader_next(l, row);
    EXPECT(row[0] == tok_special(t, "<|bos|>") && row[0] > 65535);
    size_t n = 0;
    char *text = read_all(in[0], &n);
    REQUIRE(text);
    int *ids = NULL, k = 0;
    tok_encode(t, text, 100, 0, &ids, &k);
    EXPECT(!memcmp(row + 1, ids, 16 * sizeof *ids));
    EXPECT(ids[0] == 256 + (((unsigned char)text[0] << 8) | (unsigned char)text[1]));
    free(ids); free(text);
    data_loader_close(l);
    tok_free(t);
    free(len); free(merges); free(bytes);
}

TEST(cleanup) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (tmpdir[0]) EXPECT(system(cmd) == 0);
    tok_free(tok);
    free(stream);
}

TEST_MAIN()
