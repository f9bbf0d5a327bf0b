/* Unit tests for src/base: rng, arena, versioned files, atomic writes, flags, metrics. */
#include "test.h"
#include <unistd.h>
#include <sys/stat.h>
#include "../../src/base/check.h"
#include "../../src/base/rng.h"
#include "../../src/base/arena.h"
#include "../../src/base/binfile.h"
#include "../../src/base/flags.h"
#include "../../src/base/log.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf-test-base-XXXXXX");
        if (!mkdtemp(tmpdir)) { perror("mkdtemp"); exit(1); }
    }
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static long file_size(const char *p) { struct stat st; return stat(p, &st) == 0 ? (long)st.st_size : -1; }

TEST(rng_deterministic_and_seed_sensitive) {
    rl_rng a, b, c;
    rl_rng_seed(&a, 42); rl_rng_seed(&b, 42); rl_rng_seed(&c, 43);
    int same = 1, diff = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rl_rng_u64(&a), y = rl_rng_u64(&b), z = rl_rng_u64(&c);
        same &= x == y;
        diff += x != z;
    }
    EXPECT(same);
    EXPECT(diff > 990);
}

TEST(rng_known_first_value) {
    /* Pins the stream: a change of generator would silently change every
     * seeded experiment, so it must show up here. splitmix64(0) first output
     * is 0xe220a8397b1dcdaf (Vigna's reference), which seeds s[0]. */
    rl_rng r;
    rl_rng_seed(&r, 0);
    EXPECT(r.s[0] == 0xe220a8397b1dcdafULL);
}

TEST(rng_uniform_and_normal_moments) {
    rl_rng r;
    rl_rng_seed(&r, 7);
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    int N = 200000, below = 0;
    for (int i = 0; i < N; i++) {
        float u = rl_rng_uniform(&r);
        EXPECT(u >= 0.0f && u < 1.0f);
        s += u; s2 += (double)u * u;
        float g = rl_rng_normal(&r);
        n1 += g; n2 += (double)g * g;
        below += rl_rng_below(&r, 10) < 3;
    }
    EXPECT_NEAR(s / N, 0.5, 0.005);
    EXPECT_NEAR(s2 / N - (s / N) * (s / N), 1.0 / 12, 0.003);
    EXPECT_NEAR(n1 / N, 0.0, 0.01);
    EXPECT_NEAR(n2 / N, 1.0, 0.02);
    EXPECT_NEAR((double)below / N, 0.3, 0.005);
}

TEST(rng_streams_differ) {
    rl_rng a, b;
    rl_rng_seed_stream(&a, 1, 0);
    rl_rng_seed_stream(&b, 1, 1);
    EXPECT(rl_rng_u64(&a) != rl_rng_u64(&b));
}

TEST(rng_shuffle_is_permutation) {
    rl_rng r;
    rl_rng_seed(&r, 3);
    int a[100], seen[100] = {0};
    for (int i = 0; i < 100; i++) a[i] = i;
    rl_rng_shuffle_int(&r, a, 100);
    int moved = 0;
    for (int i = 0; i < 100; i++) { seen[a[i]]++; moved += a[i] != i; }
    for (int i = 0; i < 100; i++) EXPECT(seen[i] == 1);
    EXPECT(moved > 80);
}

TEST(arena_alignment_and_capacity) {
    rl_arena a;
    REQUIRE(rl_arena_init(&a, 1000) == RL_OK);
    void *p = rl_arena_alloc(&a, 3, 1);
    void *q = rl_arena_alloc(&a, 64, 64);
    EXPECT(p != NULL && q != NULL);
    EXPECT(((uintptr_t)q & 63) == 0);
    EXPECT(rl_arena_alloc(&a, 2000, 1) == NULL);
    rl_arena_reset(&a);
    EXPECT(rl_arena_alloc(&a, 1000, 1) != NULL);
    EXPECT(rl_arena_alloc(&a, 1, 1) == NULL);
    rl_arena_free(&a);
}

static const char MAGIC[8] = {'R', 'L', 'T', 'E', 'S', 'T', '0', '1'};
static const char OTHER[8] = {'R', 'L', 'O', 'T', 'H', 'E', 'R', '1'};

static void write_test_file(const char *path, uint32_t version, int n) {
    rl_writer *w;
    CHECK_OK(rl_writer_open(&w, path, MAGIC, version, 0), "open");
    for (int i = 0; i < n; i++) CHECK_OK(rl_writer_write(w, &i, sizeof i), "write");
    CHECK_OK(rl_writer_commit(w), "commit");
}

TEST(binfile_roundtrip) {
    const char *p = tmp_path("a.bin");
    write_test_file(p, 3, 1000);
    EXPECT(file_size(p) == RL_FILE_HEADER_BYTES + 4000);
    rl_mapped_file m;
    REQUIRE(rl_file_map(&m, p, MAGIC, 1, 3, "test") == RL_OK);
    EXPECT(m.info.version == 3);
    EXPECT(m.info.payload_bytes == 4000);
    rl_cursor c = rl_cursor_make(m.payload, m.info.payload_bytes);
    int ok = 1;
    for (int i = 0; i < 1000; i++) ok &= (int)rl_cursor_u32(&c) == i;
    EXPECT(ok && !c.bad);
    rl_cursor_u32(&c);
    EXPECT(c.bad); /* reading past the end is flagged, not a crash */
    rl_file_unmap(&m);
    /* no temp files left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    EXPECT(system(cmd) != 0);
}

TEST(binfile_rejects_wrong_files) {
    const char *p = tmp_path("b.bin");
    write_test_file(p, 2, 100);
    rl_mapped_file m;
    /* wrong kind */
    EXPECT(rl_file_map(&m, p, OTHER, 1, 1, "other") == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "not a other file") != NULL);
    /* version too new */
    EXPECT(rl_file_map(&m, p, MAGIC, 1, 1, "test") == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "upgrade") != NULL);
    /* missing */
    EXPECT(rl_file_map(&m, tmp_path("nope.bin"), MAGIC, 1, 3, "test") == RL_ENOTFOUND);
    /* truncated */
    REQUIRE(truncate(p, RL_FILE_HEADER_BYTES + 50) == 0);
    EXPECT(rl_file_map(&m, p, MAGIC, 1, 3, "test") == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "truncated") != NULL);
    /* flipped payload byte */
    write_test_file(p, 2, 100);
    FILE *f = fopen(p, "r+b");
    REQUIRE(f != NULL);
    fseek(f, RL_FILE_HEADER_BYTES + 17, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    EXPECT(rl_file_map(&m, p, MAGIC, 1, 3, "test") == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "corrupt") != NULL);
    /* text file */
    const char *t = tmp_path("text.txt");
    REQUIRE(rl_atomic_write(t, "hello world, this is not a binary file at all, really not at all......", 70) == RL_OK);
    EXPECT(rl_file_map(&m, t, MAGIC, 1, 3, "test") == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "not an rlhf.c binary file") != NULL);
}

TEST(binfile_every_single_byte_flip_is_caught) {
    const char *p = tmp_path("flip.bin");
    write_test_file(p, 1, 8);
    long n = file_size(p);
    int caught = 0;
    for (long i = 0; i < n; i++) {
        FILE *f = fopen(p, "r+b");
        fseek(f, i, SEEK_SET);
        int c = fgetc(f);
        fseek(f, i, SEEK_SET);
        fputc(c ^ 0x01, f);
        fclose(f);
        rl_mapped_file m;
        rl_status s = rl_file_map(&m, p, MAGIC, 1, 1, "test");
        if (s != RL_OK) caught++; else rl_file_unmap(&m);
        f = fopen(p, "r+b");
        fseek(f, i, SEEK_SET);
        fputc(c, f);
        fclose(f);
    }
    /* Reserved header bytes 32..55 are covered by the header CRC too. */
    EXPECT_MSG(caught == n, "caught %d of %ld flips", caught, n);
}

TEST(atomic_abort_keeps_old_file) {
    const char *p = tmp_path("keep.txt");
    REQUIRE(rl_atomic_write(p, "old", 3) == RL_OK);
    rl_writer *w;
    REQUIRE(rl_writer_open(&w, p, MAGIC, 1, 0) == RL_OK);
    rl_writer_write(w, "new data", 8);
    rl_writer_abort(w);
    FILE *f = fopen(p, "rb");
    char buf[8] = {0};
    REQUIRE(f != NULL);
    EXPECT(fread(buf, 1, 8, f) == 3);
    fclose(f);
    EXPECT(memcmp(buf, "old", 3) == 0);
    /* a directory that does not exist gives an error, not a crash */
    EXPECT(rl_atomic_write("/nonexistent-dir/x", "a", 1) == RL_EIO);
    EXPECT(strstr(rl_error(), "/nonexistent-dir/x") != NULL);
}

static int fi; static double ff; static const char *fs, *fe; static int fb; static rl_strlist fl;
static rl_flag ftab[] = {
    {"steps", RL_FLAG_INT, &fi, "10", 1, 100, NULL, "steps"},
    {"lr", RL_FLAG_FLOAT, &ff, "0.5", 0, 1, NULL, "learning rate"},
    {"out", RL_FLAG_STRING, &fs, NULL, 0, 0, NULL, "output"},
    {"mode", RL_FLAG_ENUM, &fe, "fast", 0, 0, "fast|ref", "kernels"},
    {"verbose", RL_FLAG_BOOL, &fb, "0", 0, 0, NULL, "talk"},
    {"input", RL_FLAG_STRINGS, &fl, "", 0, 0, NULL, "inputs"},
};

static int parse(int argc, char **argv) {
    /* silence the usage errors the bad cases print */
    fflush(stderr);
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    int rc = rl_flags_parse("t", "test", ftab, RL_NFLAGS(ftab), argc, argv);
    fclose(stderr);
    stderr = saved;
    return rc;
}

TEST(flags_defaults_and_values) {
    char *a[] = {"--out", "x", "--steps=7", "--verbose", "--input", "a", "b", "--input", "c", "--mode", "ref"};
    EXPECT(parse(11, a) == RL_FLAGS_OK);
    EXPECT(fi == 7); EXPECT_NEAR(ff, 0.5, 0); EXPECT_STREQ(fs, "x"); EXPECT(fb == 1);
    EXPECT_STREQ(fe, "ref");
    EXPECT(fl.n == 3 && !strcmp(fl.v[2], "c"));
    EXPECT(rl_flag_given(ftab, RL_NFLAGS(ftab), "steps"));
    EXPECT(!rl_flag_given(ftab, RL_NFLAGS(ftab), "lr"));
    char *b[] = {"--out", "y", "--steps", "1e2", "--no-verbose"};
    EXPECT(parse(5, b) == RL_FLAGS_OK);
    EXPECT(fi == 100 && fb == 0 && fl.n == 0);
}

TEST(flags_errors) {
    char *missing[] = {"--steps", "5"};
    EXPECT(parse(2, missing) == RL_FLAGS_ERROR);
    char *range[] = {"--out", "x", "--steps", "101"};
    EXPECT(parse(4, range) == RL_FLAGS_ERROR);
    char *notint[] = {"--out", "x", "--steps", "2.5"};
    EXPECT(parse(4, notint) == RL_FLAGS_ERROR);
    char *junk[] = {"--out", "x", "--lr", "0.1abc"};
    EXPECT(parse(4, junk) == RL_FLAGS_ERROR);
    char *nan_[] = {"--out", "x", "--lr", "nan"};
    EXPECT(parse(4, nan_) == RL_FLAGS_ERROR);
    char *unknown[] = {"--out", "x", "--stpes", "3"};
    EXPECT(parse(4, unknown) == RL_FLAGS_ERROR);
    char *novalue[] = {"--out"};
    EXPECT(parse(1, novalue) == RL_FLAGS_ERROR);
    char *badenum[] = {"--out", "x", "--mode", "gpu"};
    EXPECT(parse(4, badenum) == RL_FLAGS_ERROR);
    char *positional[] = {"--out", "x", "stray"};
    EXPECT(parse(3, positional) == RL_FLAGS_ERROR);
    char *help[] = {"--help"};
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = rl_flags_parse("t", "test", ftab, RL_NFLAGS(ftab), 1, help);
    fclose(stdout);
    stdout = saved;
    EXPECT(rc == RL_FLAGS_HELP);
}

TEST(json_escape) {
    char out[64];
    rl_json_escape(out, sizeof out, "a\"b\\c\nd\x01");
    EXPECT_STREQ(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
    rl_json_escape(out, sizeof out, "caf\xc3\xa9 \xff");
    EXPECT_STREQ(out, "\"caf\xc3\xa9 \\u00ff\"");
    /* truncation never overflows and stays NUL-terminated */
    char small[5];
    int need = rl_json_escape(small, sizeof small, "abcdefgh");
    EXPECT(need == 10 && strlen(small) == 4);
}

TEST(metrics_jsonl) {
    const char *p = tmp_path("m.jsonl");
    rl_metrics m;
    REQUIRE(rl_metrics_open(&m, p, 0) == RL_OK);
    rl_metrics_begin(&m);
    rl_metrics_i(&m, "step", 3);
    rl_metrics_f(&m, "loss", 1.5);
    rl_metrics_f(&m, "bad", NAN);
    rl_metrics_s(&m, "note", "x\"y");
    rl_metrics_end(&m);
    rl_metrics_close(&m);
    FILE *f = fopen(p, "r");
    char line[256] = {0};
    REQUIRE(f != NULL);
    EXPECT(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    EXPECT_STREQ(line, "{\"step\":3,\"loss\":1.5,\"bad\":null,\"note\":\"x\\\"y\"}\n");
}

TEST(status_messages) {
    EXPECT(rl_fail(RL_EIO, "disk %d", 3) == RL_EIO);
    EXPECT_STREQ(rl_error(), "disk 3");
    EXPECT_STREQ(rl_status_name(RL_EFORMAT), "format error");
}

TEST_MAIN()
