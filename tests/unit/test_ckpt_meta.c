/* test_ckpt_meta.c — checkpoint metadata (format version 2): set/get rules,
 * round trip through a file, version-1 files still load with empty metadata,
 * damaged metadata is rejected. */
#include <stdlib.h>
#include <unistd.h>
#include "test.h"
#include "../../src/model/checkpoint.h"
#include "../../src/base/binfile.h"

static char tmpdir[64];
static const char *tmp_path(const char *name) {
    static char buf[512];
    if (!tmpdir[0]) { strcpy(tmpdir, "/tmp/rlhf_test_meta_XXXXXX"); if (!mkdtemp(tmpdir)) abort(); }
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void tiny(gpt_model *m) {
    gpt_config cfg = {1, 2, 8, 11, 4};
    if (gpt_init(m, &cfg, 1, 4, ops_get("ref"), 7) != RL_OK) abort();
}

TEST(set_get_rules) {
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    EXPECT(ckpt_meta_get(&m, "kind") == NULL);
    EXPECT_STREQ(ckpt_meta_kind(&m), "lm");
    EXPECT(ckpt_meta_set(&m, "kind", "reward") == RL_OK);
    EXPECT(ckpt_meta_set(&m, "kind", "value") == RL_OK); /* replaces */
    EXPECT(m.n == 1);
    EXPECT_STREQ(ckpt_meta_get(&m, "kind"), "value");
    EXPECT(ckpt_meta_set(&m, "", "x") == RL_EINVAL);
    char longkey[40]; memset(longkey, 'k', 32); longkey[32] = 0;
    EXPECT(ckpt_meta_set(&m, longkey, "x") == RL_EINVAL);
    longkey[31] = 0;
    EXPECT(ckpt_meta_set(&m, longkey, "x") == RL_OK);
    char longval[300]; memset(longval, 'v', 256); longval[256] = 0;
    EXPECT(ckpt_meta_set(&m, "v", longval) == RL_EINVAL);
    longval[255] = 0;
    EXPECT(ckpt_meta_set(&m, "v", longval) == RL_OK);
    EXPECT(ckpt_meta_set_f(&m, "reward.mean", -0.125) == RL_OK);
    double d = 0;
    EXPECT(ckpt_meta_get_f(&m, "reward.mean", &d) && d == -0.125);
    EXPECT(!ckpt_meta_get_f(&m, "kind", &d));
    EXPECT(!ckpt_meta_get_f(&m, "absent", &d));
    while (m.n < CKPT_META_MAX) {
        char k[16]; snprintf(k, sizeof k, "k%d", m.n);
        REQUIRE(ckpt_meta_set(&m, k, "") == RL_OK);
    }
    EXPECT(ckpt_meta_set(&m, "one.more", "x") == RL_EINVAL);
    EXPECT(ckpt_meta_set(&m, "kind", "lm") == RL_OK); /* replacing still works when full */
}

TEST(round_trip) {
    gpt_model m; tiny(&m);
    ckpt_meta meta; memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "reward");
    ckpt_meta_set_f(&meta, "reward.mean", 0.5);
    ckpt_meta_set_f(&meta, "reward.std", 2.0);
    ckpt_meta_set(&meta, "note", "");
    REQUIRE(ckpt_save_meta(tmp_path("rm.ckpt"), &m, "", NULL, NULL, &meta) == RL_OK);
    ckpt_info info;
    REQUIRE(ckpt_peek(tmp_path("rm.ckpt"), &info) == RL_OK);
    EXPECT(info.version == 2);
    EXPECT(info.meta.n == 4);
    EXPECT_STREQ(ckpt_meta_kind(&info.meta), "reward");
    EXPECT_STREQ(ckpt_meta_get(&info.meta, "reward.std"), "2");
    EXPECT_STREQ(ckpt_meta_get(&info.meta, "note"), "");
    gpt_model m2;
    REQUIRE(ckpt_load(tmp_path("rm.ckpt"), &m2, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, &info) == RL_OK);
    EXPECT(memcmp(m.params, m2.params, m.num_params * sizeof(float)) == 0);
    EXPECT_STREQ(ckpt_meta_get(&info.meta, "reward.mean"), "0.5");
    gpt_free(&m2);
    /* plain ckpt_save: no metadata, kind lm */
    REQUIRE(ckpt_save(tmp_path("lm.ckpt"), &m, "", NULL, NULL) == RL_OK);
    REQUIRE(ckpt_peek(tmp_path("lm.ckpt"), &info) == RL_OK);
    EXPECT(info.meta.n == 0 && !strcmp(ckpt_meta_kind(&info.meta), "lm"));
    /* an invalid table is refused and nothing is written */
    meta.n = CKPT_META_MAX + 1;
    EXPECT(ckpt_save_meta(tmp_path("bad.ckpt"), &m, "", NULL, NULL, &meta) == RL_EINVAL);
    EXPECT(access(tmp_path("bad.ckpt"), F_OK) != 0);
    gpt_free(&m);
}

/* Collects the payload bytes a checkpoint writer produces. */
typedef struct { unsigned char *p; size_t n, cap; } buf_sink;
static rl_status buf_write(void *ctx, const void *d, size_t n) {
    buf_sink *b = ctx;
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n); b->n += n;
    return RL_OK;
}
static void write_raw(const char *path, uint32_t version, const void *p, size_t n) {
    rl_writer *w;
    if (rl_writer_open(&w, path, CKPT_MAGIC, version, 0) != RL_OK) abort();
    rl_writer_write(w, p, n);
    if (rl_writer_commit(w) != RL_OK) abort();
}

TEST(version1_loads_and_damage_is_rejected) {
    gpt_model m; tiny(&m);
    buf_sink b = {0};
    ckpt_sink s = {buf_write, &b};
    REQUIRE(ckpt_write_meta(&s, &m, "", NULL, NULL, NULL) == RL_OK);
    /* a version-1 payload is the version-2 one without the trailing u32 count */
    write_raw(tmp_path("v1.ckpt"), 1, b.p, b.n - 4);
    ckpt_info info;
    gpt_model m2;
    REQUIRE(ckpt_load(tmp_path("v1.ckpt"), &m2, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, &info) == RL_OK);
    EXPECT(info.version == 1 && info.meta.n == 0);
    EXPECT(memcmp(m.params, m2.params, m.num_params * sizeof(float)) == 0);
    gpt_free(&m2);
    /* version 1 with the count appended: 4 unexpected bytes */
    write_raw(tmp_path("v1x.ckpt"), 1, b.p, b.n);
    EXPECT(ckpt_peek(tmp_path("v1x.ckpt"), &info) == RL_EFORMAT);
    /* version 2 without the count: truncated */
    write_raw(tmp_path("v2t.ckpt"), 2, b.p, b.n - 4);
    EXPECT(ckpt_peek(tmp_path("v2t.ckpt"), &info) == RL_EFORMAT);
    /* a count above the maximum */
    uint32_t big = 1000;
    memcpy(b.p + b.n - 4, &big, 4);
    write_raw(tmp_path("v2n.ckpt"), 2, b.p, b.n);
    EXPECT(ckpt_peek(tmp_path("v2n.ckpt"), &info) == RL_EFORMAT);
    EXPECT(strstr(rl_error(), "metadata") != NULL);
    /* duplicated keys */
    b.n -= 4;
    uint32_t two = 2, kl = 4, vl = 1;
    buf_write(&b, &two, 4);
    for (int i = 0; i < 2; i++) { buf_write(&b, &kl, 4); buf_write(&b, "kind", 4); buf_write(&b, &vl, 4); buf_write(&b, "x", 1); }
    write_raw(tmp_path("v2d.ckpt"), 2, b.p, b.n);
    EXPECT(ckpt_peek(tmp_path("v2d.ckpt"), &info) == RL_EFORMAT);
    /* a future version is refused */
    write_raw(tmp_path("v3.ckpt"), 3, b.p, b.n);
    EXPECT(ckpt_peek(tmp_path("v3.ckpt"), &info) != RL_OK);
    free(b.p);
    gpt_free(&m);
}

TEST_MAIN()
