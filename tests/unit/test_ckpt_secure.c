/* test_ckpt_secure.c — the checkpoint security policy and provenance
 * (src/model/ckpt_secure.h) at the library level, and vocabulary resizing
 * (src/model/interop.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "../../src/model/checkpoint.h"
#include "../../src/model/ckpt_secure.h"
#include "../../src/model/interop.h"

static char dir[256];
static char *P(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A scratch directory and the keys every test uses, made by the first test
 * that runs (not in a constructor: the process may re-exec itself at start). */
static void setup(void) {
    if (dir[0]) return;
    snprintf(dir, sizeof dir, "%s/rlhf_test_ckpt_secure_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    CHECK(mkdtemp(dir), "cannot create a scratch directory");
    unsetenv("RLHF_VERIFY_KEY"); unsetenv("RLHF_SIGN_KEY"); unsetenv("RLHF_KEY_FILE"); unsetenv("RLHF_PASSPHRASE");
    CHECK_OK(rl_keys_generate(P("k"), 1, 0, NULL), "keys");
    CHECK_OK(rl_keys_generate(P("k2"), 0, 0, NULL), "keys");
    atexit(cleanup);
}

static void small_model(gpt_model *m, uint64_t seed) {
    gpt_config c = {1, 2, 16, 40, 8};
    CHECK_OK(gpt_init(m, &c, 1, 8, ops_get("ref"), seed), "init");
}

TEST(sha256_known_values) {
    setup();
    FILE *f = fopen(P("abc"), "wb");
    fputs("abc", f);
    fclose(f);
    char hex[65];
    EXPECT(ckpt_sha256_path(P("abc"), hex) == RL_OK);
    EXPECT(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    /* a directory: SHA-256 over "name\0<hex>\n" of its files sorted by name */
    mkdir(P("d"), 0700);
    f = fopen(P("d/b"), "wb"); fputs("abc", f); fclose(f);
    f = fopen(P("d/a"), "wb"); fclose(f);
    char h1[65], h2[65];
    EXPECT(ckpt_sha256_path(P("d"), h1) == RL_OK);
    f = fopen(P("d/a"), "wb"); fputs("x", f); fclose(f);
    EXPECT(ckpt_sha256_path(P("d"), h2) == RL_OK);
    EXPECT(strcmp(h1, h2) != 0);   /* any file's content changes the directory hash */
    EXPECT(ckpt_sha256_path(P("missing"), hex) == RL_ENOTFOUND);
}

TEST(sign_verify_tamper_through_save_and_load) {
    setup();
    char id[17];
    rl_keys_secret sk;
    REQUIRE(rl_keys_load_secret(&sk, P("k/sign.key")) == RL_OK);
    memcpy(id, sk.pub.id, 17);
    rl_keys_wipe(&sk, sizeof sk);
    gpt_model m, l;
    small_model(&m, 1);
    ckpt_secure_reset();
    EXPECT(ckpt_secure_configure(P("k/sign.key"), NULL, NULL, NULL, 0) == RL_OK);
    char got[17];
    EXPECT(ckpt_secure_signing(got) && !strcmp(got, id));
    EXPECT(ckpt_save(P("s.ckpt"), &m, NULL, NULL, NULL) == RL_OK);
    EXPECT(ckpt_secure_configure(NULL, NULL, NULL, NULL, 0) == RL_OK);
    EXPECT(ckpt_save(P("u.ckpt"), &m, NULL, NULL, NULL) == RL_OK);
    /* verify: the signed one loads with identical weights, the unsigned one is refused */
    EXPECT(ckpt_secure_configure(NULL, P("k/sign.pub"), NULL, NULL, 0) == RL_OK);
    EXPECT(ckpt_load(P("s.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_OK);
    EXPECT(!memcmp(l.params, m.params, m.num_params * sizeof(float)));
    gpt_free(&l);
    EXPECT(ckpt_load(P("u.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_EAUTH);
    EXPECT(strstr(rl_error(), "u.ckpt") && strstr(rl_error(), "not signed"));
    ckpt_info info;
    EXPECT(ckpt_peek(P("u.ckpt"), &info) == RL_EAUTH);
    /* a flipped weight byte with the CRC fixed up: only the signature catches it */
    FILE *f = fopen(P("s.ckpt"), "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    EXPECT(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    rl_file_info fi;
    EXPECT(rl_file_header_decode(&fi, b, (size_t)n, "s") == RL_OK);
    b[RL_FILE_HEADER_BYTES + 200] ^= 0x40;
    fi.payload_crc = rl_crc32(0, b + RL_FILE_HEADER_BYTES, fi.payload_bytes);
    rl_file_header_encode(b, &fi);
    f = fopen(P("t.ckpt"), "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
    free(b);
    EXPECT(ckpt_load(P("t.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_EAUTH);
    EXPECT(strstr(rl_error(), "t.ckpt") && strstr(rl_error(), "modified"));
    /* without a verify key the CRC-consistent tampered file loads: that is what signatures are for */
    EXPECT(ckpt_secure_configure(NULL, NULL, NULL, NULL, 0) == RL_OK);
    EXPECT(ckpt_load(P("t.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_OK);
    gpt_free(&l);
    /* another key */
    EXPECT(ckpt_secure_configure(NULL, P("k2/sign.pub"), NULL, NULL, 0) == RL_OK);
    EXPECT(ckpt_load(P("s.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_EAUTH);
    /* a key that cannot be loaded is an error, not "no verification" */
    EXPECT(ckpt_secure_configure(NULL, P("nope.pub"), NULL, NULL, 0) != RL_OK);
    ckpt_secure_reset();
    gpt_free(&m);
}

TEST(encrypt_on_save_decrypt_on_load) {
    setup();
    gpt_model m, l;
    small_model(&m, 2);
    EXPECT(ckpt_secure_configure(P("k/sign.key"), NULL, P("k/enc.key"), NULL, 1) == RL_OK);
    EXPECT(ckpt_save(P("e.ckpt"), &m, NULL, NULL, NULL) == RL_OK);
    EXPECT(rl_seal_is_encrypted(P("e.ckpt"), NULL));
    EXPECT(access(P("e.ckpt.plain.0"), F_OK) != 0);
    EXPECT(ckpt_secure_configure(NULL, P("k/sign.pub"), NULL, NULL, 0) == RL_OK);
    EXPECT(ckpt_load(P("e.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_EAUTH);   /* no key */
    EXPECT(strstr(rl_error(), "encrypted"));
    EXPECT(ckpt_secure_configure(NULL, P("k/sign.pub"), P("k/enc.key"), NULL, 0) == RL_OK);
    EXPECT(ckpt_load(P("e.ckpt"), &l, 1, 0, NULL, NULL, 0, 0, 0, 0, 0, NULL) == RL_OK);
    EXPECT(!memcmp(l.params, m.params, m.num_params * sizeof(float)));
    gpt_free(&l);
    EXPECT(ckpt_secure_configure(NULL, NULL, NULL, NULL, 1) == RL_EINVAL);   /* --encrypt without a key */
    ckpt_secure_reset();
    gpt_free(&m);
}

TEST(provenance_recorded) {
    setup();
    gpt_model m;
    small_model(&m, 3);
    FILE *f = fopen(P("data.txt"), "wb");
    fputs("abc", f);
    fclose(f);
    ckpt_secure_reset();
    EXPECT(ckpt_save(P("parent.ckpt"), &m, NULL, NULL, NULL) == RL_OK);
    char *argv[] = {"--data", P("data.txt"), "--model", P("parent.ckpt"), "--out", P("child.ckpt"), "--lr=0.1",
                    "--sign-key", P("k/sign.key"), "--name", "with space"};
    ckpt_prov_begin("sft", 11, argv, "9.9.9");
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "kind", "lm");
    EXPECT(ckpt_save_meta(P("child.ckpt"), &m, NULL, NULL, NULL, &meta) == RL_OK);
    ckpt_info info;
    EXPECT(ckpt_peek(P("child.ckpt"), &info) == RL_OK);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s%s", ckpt_meta_get(&info.meta, "prov.cmd") ? ckpt_meta_get(&info.meta, "prov.cmd") : "",
             ckpt_meta_get(&info.meta, "prov.cmd.1") ? ckpt_meta_get(&info.meta, "prov.cmd.1") : "");
    EXPECT(!strncmp(cmd, "rlhf sft --data ", 16) && strstr(cmd, " --name 'with space'") && strstr(cmd, " --lr=0.1"));
    EXPECT(!strcmp(ckpt_meta_get(&info.meta, "kind"), "lm"));
    EXPECT(!strcmp(ckpt_meta_get(&info.meta, "prov.version"), "9.9.9"));
    EXPECT(ckpt_meta_get(&info.meta, "prov.git") && ckpt_meta_get(&info.meta, "prov.time"));
    char ph[65], want[300];
    EXPECT(ckpt_sha256_path(P("parent.ckpt"), ph) == RL_OK);
    snprintf(want, sizeof want, "%s %s", ph, P("parent.ckpt"));
    EXPECT(ckpt_meta_get(&info.meta, "prov.parent") && !strcmp(ckpt_meta_get(&info.meta, "prov.parent"), want));
    snprintf(want, sizeof want, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad --data %s", P("data.txt"));
    EXPECT(ckpt_meta_get(&info.meta, "prov.data.0") && !strcmp(ckpt_meta_get(&info.meta, "prov.data.0"), want));
    /* the output and key files are not inputs */
    EXPECT(!ckpt_meta_get(&info.meta, "prov.data.1"));
    /* a long command line is cut into two pieces with "..." */
    char big[700];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char *argv2[] = {"--note", big};
    ckpt_prov_begin("pretrain", 2, argv2, "1");
    memset(&meta, 0, sizeof meta);
    EXPECT(ckpt_prov_apply(&meta) == RL_OK);
    EXPECT(strlen(ckpt_meta_get(&meta, "prov.cmd")) == 255);
    const char *c1 = ckpt_meta_get(&meta, "prov.cmd.1");
    EXPECT(c1 && !strcmp(c1 + strlen(c1) - 3, "..."));
    /* a full table keeps the caller's keys and drops provenance with a warning */
    memset(&meta, 0, sizeof meta);
    for (int i = 0; i < CKPT_META_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        ckpt_meta_set(&meta, k, "v");
    }
    EXPECT(ckpt_prov_apply(&meta) == RL_OK && meta.n == CKPT_META_MAX && !ckpt_meta_get(&meta, "prov.cmd"));
    ckpt_prov_reset();
    gpt_free(&m);
}

TEST(resize_vocab_keeps_rows_and_means_new_ones) {
    setup();
    gpt_model m;
    small_model(&m, 4);
    gpt_model orig;
    small_model(&orig, 4);
    EXPECT(gptio_resize_vocab(&m, 43, 1, 0) == RL_OK);
    EXPECT(m.cfg.V == 43 && m.num_params == gpt_num_params(&m.cfg));
    EXPECT(!memcmp(m.w.wte, orig.w.wte, sizeof(float) * 40 * 16));
    EXPECT(!memcmp(m.w.wpe, orig.w.wpe, sizeof(float) * (orig.num_params - orig.tensor_size[0])));
    double mean = 0;
    for (int i = 0; i < 40; i++) mean += orig.w.wte[i * 16 + 5];
    EXPECT_NEAR(m.w.wte[41 * 16 + 5], mean / 40, 1e-6);
    EXPECT(gptio_resize_vocab(&m, 40, 1, 0) == RL_OK);
    EXPECT(!memcmp(m.params, orig.params, sizeof(float) * orig.num_params));
    gpt_free(&m);
    gpt_free(&orig);
}

TEST_MAIN()
