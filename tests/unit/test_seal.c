/* Signing, verification, encryption and key handling (src/base/seal.h). */
#include "test.h"
#include "../../src/base/seal.h"
#include "../../src/base/rng.h"
#include "../../src/base/flags.h"
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char p_file[128], p_keys[128], p_keys2[128], p_sk[160], p_pk[160], p_enc[160], p_sk2[160], p_pk2[160];
static char p_tmp[128], p_out[128];

static void cleanup(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void setup(void) {
    if (dir[0]) return;
    /* many small files are written and re-read: use memory when there is some */
    strcpy(dir, access("/dev/shm", W_OK) == 0 ? "/dev/shm/rlhf_test_seal_XXXXXX" : "/tmp/rlhf_test_seal_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    atexit(cleanup);
    snprintf(p_file, sizeof p_file, "%s/f.bin", dir);
    snprintf(p_tmp, sizeof p_tmp, "%s/t.bin", dir);
    snprintf(p_out, sizeof p_out, "%s/o.bin", dir);
    snprintf(p_keys, sizeof p_keys, "%s/keys", dir);
    snprintf(p_keys2, sizeof p_keys2, "%s/keys2", dir);
    snprintf(p_sk, sizeof p_sk, "%s/sign.key", p_keys);
    snprintf(p_pk, sizeof p_pk, "%s/sign.pub", p_keys);
    snprintf(p_enc, sizeof p_enc, "%s/enc.key", p_keys);
    snprintf(p_sk2, sizeof p_sk2, "%s/sign.key", p_keys2);
    snprintf(p_pk2, sizeof p_pk2, "%s/sign.pub", p_keys2);
    if (rl_keys_generate(p_keys, 1, 0, NULL) != RL_OK || rl_keys_generate(p_keys2, 0, 0, NULL) != RL_OK) {
        fprintf(stderr, "keygen failed: %s\n", rl_error());
        exit(1);
    }
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { *n = 0; return NULL; }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, fp);
    fclose(fp);
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (n) fwrite(b, 1, n, fp);
    fclose(fp);
}

/* A small plain rlhf.c file of kind RLHFTEST with `n` pseudo-random payload bytes. */
static void make_plain(const char *path, size_t n, uint64_t seed) {
    rl_rng r;
    rl_rng_seed(&r, seed);
    rl_writer *w;
    if (rl_writer_open(&w, path, "RLHFTEST", 1, 7) != RL_OK) { fprintf(stderr, "%s\n", rl_error()); exit(1); }
    for (size_t i = 0; i < n; i++) { uint8_t b = (uint8_t)rl_rng_u64(&r); rl_writer_write(w, &b, 1); }
    if (rl_writer_commit(w) != RL_OK) { fprintf(stderr, "%s\n", rl_error()); exit(1); }
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

/* What an attacker who knows the format does after editing: recompute the
 * payload CRC and the header CRC, so only the signature / AEAD can tell. */
static void fix_crcs(uint8_t *img, size_t n) {
    uint64_t payload = get64(img + 16);
    if (64 + payload <= n) put32(img + 24, rl_crc32(0, img + 64, (size_t)payload));
    put32(img + 56, rl_crc32(0, img, 56));
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int mode_of(const char *p) { struct stat st; return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1; }

TEST(keys_generate_and_refuse_overwrite) {
    setup();
    EXPECT(mode_of(p_sk) == 0600);
    EXPECT(mode_of(p_enc) == 0600);
    EXPECT(mode_of(p_pk) >= 0);
    char d[160];
    snprintf(d, sizeof d, "%s/k3", dir);
    char id1[17], id2[17];
    REQUIRE(rl_keys_generate(d, 0, 0, id1) == RL_OK);
    EXPECT(rl_keys_generate(d, 0, 0, NULL) == RL_EINVAL);
    EXPECT(contains(rl_error(), "--force"));
    EXPECT(rl_keys_generate(d, 0, 1, id2) == RL_OK);
    EXPECT(strcmp(id1, id2) != 0);
    rl_keys_secret sk;
    rl_keys_pub pk;
    snprintf(d, sizeof d, "%s/k3/sign.key", dir);
    REQUIRE(rl_keys_load_secret(&sk, d) == RL_OK);
    snprintf(d, sizeof d, "%s/k3/sign.pub", dir);
    REQUIRE(rl_keys_load_public(&pk, d) == RL_OK);
    EXPECT(memcmp(sk.pub.pk, pk.pk, 32) == 0);
    EXPECT_STREQ(pk.id, id2);
    /* a secret key is not a public key */
    snprintf(d, sizeof d, "%s/k3/sign.key", dir);
    EXPECT(rl_keys_load_public(&pk, d) != RL_OK);
    rl_keys_wipe(&sk, sizeof sk);
}

TEST(secret_files_need_0600) {
    setup();
    rl_keys_secret sk;
    uint8_t k[32];
    const int bad[] = {0644, 0640, 0604, 0620, 0602};
    for (int i = 0; i < 5; i++) {
        chmod(p_sk, (mode_t)bad[i]);
        EXPECT(rl_keys_load_secret(&sk, p_sk) == RL_EAUTH);
        EXPECT(contains(rl_error(), "chmod 600") && contains(rl_error(), p_sk));
        chmod(p_enc, (mode_t)bad[i]);
        EXPECT(rl_keys_load_symmetric(k, p_enc) == RL_EAUTH);
    }
    chmod(p_sk, 0600);
    chmod(p_enc, 0600);
    EXPECT(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    EXPECT(rl_keys_load_symmetric(k, p_enc) == RL_OK);
    chmod(p_sk, 0400);
    EXPECT(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    chmod(p_sk, 0600);
    /* passphrase files too; and a raw 32-byte key file is accepted */
    char pw[160];
    snprintf(pw, sizeof pw, "%s/pw", dir);
    spit(pw, "hunter2\n", 8);
    chmod(pw, 0644);
    char *text; size_t n;
    EXPECT(rl_keys_read_secret_text(&text, &n, pw) == RL_EAUTH);
    chmod(pw, 0600);
    REQUIRE(rl_keys_read_secret_text(&text, &n, pw) == RL_OK);
    EXPECT(n == 7 && !memcmp(text, "hunter2", 7));
    rl_keys_free_secret_text(text);
    spit(pw, "0123456789abcdef0123456789abcdef", 32);
    chmod(pw, 0600);
    EXPECT(rl_keys_load_symmetric(k, pw) == RL_OK && !memcmp(k, "0123456789abcdef", 16));
    /* damaged key text */
    spit(pw, "rlhf-ed25519-secret-key v1\nzz\n", 30);
    EXPECT(rl_keys_load_secret(&sk, pw) == RL_EFORMAT);
    rl_keys_wipe(&sk, sizeof sk);
}

TEST(sign_verify_ok_and_loaders_accept_signed) {
    setup();
    make_plain(p_file, 1000, 1);
    size_t n0; uint8_t *orig = slurp(p_file, &n0);
    rl_keys_secret sk; rl_keys_pub pk;
    REQUIRE(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    REQUIRE(rl_keys_load_public(&pk, p_pk) == RL_OK);
    REQUIRE(rl_seal_sign_file(p_file, p_file, &sk) == RL_OK);
    rl_seal_sig_info si;
    EXPECT(rl_seal_verify_file(p_file, &pk, &si) == RL_OK);
    EXPECT(si.is_signed && !memcmp(si.signer.pk, pk.pk, 32));
    size_t n1; uint8_t *sig = slurp(p_file, &n1);
    EXPECT(n1 == n0 + RL_SEAL_TRAILER_BYTES);
    EXPECT(!memcmp(sig + 64, orig + 64, 1000));
    EXPECT(rl_seal_verify_image(sig, n1, p_file, &pk, NULL) == RL_OK);
    /* the plain binfile loader still reads a signed file */
    rl_mapped_file m;
    REQUIRE(rl_file_map(&m, p_file, "RLHFTEST", 1, 1, "test") == RL_OK);
    EXPECT(m.info.payload_bytes == 1000 && m.info.flags == 7 && m.info.trailer_bytes == RL_SEAL_TRAILER_BYTES);
    EXPECT(!memcmp(m.payload, orig + 64, 1000));
    rl_file_unmap(&m);
    /* and the policy loader verifies it */
    rl_seal_policy pol;
    REQUIRE(rl_seal_policy_init(&pol, p_pk, NULL, NULL) == RL_OK);
    EXPECT(pol.verify == 1 && pol.can_decrypt == 0);
    EXPECT(rl_seal_load(&m, p_file, "RLHFTEST", 1, 1, "test", &pol, &si) == RL_OK);
    EXPECT(si.is_signed);
    rl_file_unmap(&m);
    /* signing twice replaces the signature (not a second trailer) */
    REQUIRE(rl_seal_sign_file(p_file, p_out, &sk) == RL_OK);
    size_t n2; uint8_t *again = slurp(p_out, &n2);
    EXPECT(n2 == n1 && !memcmp(again, sig, n1)); /* Ed25519 is deterministic */
    rl_seal_policy_free(&pol);
    rl_keys_wipe(&sk, sizeof sk);
    free(orig); free(sig); free(again);
}

TEST(streaming_writer_signs_while_writing) {
    setup();
    rl_keys_secret sk; rl_keys_pub pk;
    REQUIRE(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    REQUIRE(rl_keys_load_public(&pk, p_pk) == RL_OK);
    rl_seal_writer *w;
    REQUIRE(rl_seal_writer_open(&w, p_out, "RLHFTEST", 1, 7, &sk) == RL_OK);
    rl_rng r;
    rl_rng_seed(&r, 1);
    /* half through the writer, half through the callback-sink adapter */
    for (int i = 0; i < 1000; i++) {
        uint8_t b = (uint8_t)rl_rng_u64(&r);
        REQUIRE((i < 500 ? rl_seal_writer_write(w, &b, 1) : rl_seal_writer_sink(w, &b, 1)) == RL_OK);
    }
    EXPECT(rl_seal_writer_tell(w) == 1000);
    REQUIRE(rl_seal_writer_commit(w) == RL_OK);
    EXPECT(rl_seal_verify_file(p_out, &pk, NULL) == RL_OK);
    /* same bytes as signing the plain file afterwards */
    make_plain(p_file, 1000, 1);
    REQUIRE(rl_seal_sign_file(p_file, p_file, &sk) == RL_OK);
    size_t a, b;
    uint8_t *x = slurp(p_out, &a), *y = slurp(p_file, &b);
    EXPECT(a == b && !memcmp(x, y, a));
    free(x); free(y);
    /* without a key it writes exactly what rl_writer writes */
    REQUIRE(rl_seal_writer_open(&w, p_out, "RLHFTEST", 1, 7, NULL) == RL_OK);
    rl_rng_seed(&r, 1);
    for (int i = 0; i < 1000; i++) { uint8_t c = (uint8_t)rl_rng_u64(&r); rl_seal_writer_write(w, &c, 1); }
    REQUIRE(rl_seal_writer_commit(w) == RL_OK);
    make_plain(p_file, 1000, 1);
    x = slurp(p_out, &a); y = slurp(p_file, &b);
    EXPECT(a == b && !memcmp(x, y, a));
    free(x); free(y);
    /* abort leaves nothing */
    REQUIRE(rl_seal_writer_open(&w, p_tmp, "RLHFTEST", 1, 0, &sk) == RL_OK);
    rl_seal_writer_write(w, "abc", 3);
    rl_seal_writer_abort(w);
    EXPECT(access(p_tmp, F_OK) != 0);
    rl_keys_wipe(&sk, sizeof sk);
}

/* Every single-byte flip of a small signed file (header, payload, trailer) is
 * refused by both verifiers; with CRCs fixed up, by the signature itself. */
TEST(every_flipped_byte_of_signed_file_refused) {
    setup();
    rl_keys_secret sk; rl_keys_pub pk;
    REQUIRE(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    REQUIRE(rl_keys_load_public(&pk, p_pk) == RL_OK);
    make_plain(p_file, 100, 2);
    REQUIRE(rl_seal_sign_file(p_file, p_file, &sk) == RL_OK);
    size_t n; uint8_t *img = slurp(p_file, &n);
    REQUIRE(n == 64 + 100 + 128);
    rl_seal_policy pol;
    REQUIRE(rl_seal_policy_init(&pol, p_pk, NULL, NULL) == RL_OK);
    uint8_t *mut = malloc(n);
    int refused = 0, refused_fixed = 0, auth_fixed_payload = 0, crc_only_accepts = 0;
    for (size_t i = 0; i < n; i++) {
        for (int v = 0; v < 2; v++) {
            memcpy(mut, img, n);
            mut[i] ^= v ? 0x80 : 0x01;
            spit(p_tmp, mut, n);
            rl_mapped_file m;
            int a = rl_seal_verify_file(p_tmp, &pk, NULL) != RL_OK;
            int b = rl_seal_load(&m, p_tmp, "RLHFTEST", 1, 1, "test", &pol, NULL) != RL_OK;
            if (!b) rl_file_unmap(&m);
            refused += a && b;
            /* attacker variant (a flip inside a CRC field is undone by the fix: skip those) */
            fix_crcs(mut, n);
            if (!memcmp(mut, img, n)) { refused_fixed++; continue; }
            spit(p_tmp, mut, n);
            rl_status s = rl_seal_verify_file(p_tmp, &pk, NULL);
            a = s != RL_OK;
            b = rl_seal_load(&m, p_tmp, "RLHFTEST", 1, 1, "test", &pol, NULL) != RL_OK;
            if (!b) rl_file_unmap(&m);
            refused_fixed += a && b;
            if (i >= 64 && i < 164) {
                auth_fixed_payload += s == RL_EAUTH && contains(rl_error(), "modified after it was signed");
                /* the CRC alone cannot see the edit: plain rl_file_map accepts it */
                if (rl_file_map(&m, p_tmp, "RLHFTEST", 1, 1, "test") == RL_OK) { crc_only_accepts++; rl_file_unmap(&m); }
            }
        }
    }
    EXPECT_MSG(refused == (int)(2 * n), "%d of %zu flips refused", refused, 2 * n);
    EXPECT_MSG(refused_fixed == (int)(2 * n), "%d of %zu CRC-fixed flips refused", refused_fixed, 2 * n);
    EXPECT(auth_fixed_payload == 200);
    EXPECT(crc_only_accepts == 200);
    rl_seal_policy_free(&pol);
    rl_keys_wipe(&sk, sizeof sk);
    free(img); free(mut);
}

TEST(truncated_unsigned_wrong_key_refused) {
    setup();
    rl_keys_secret sk; rl_keys_pub pk, pk2;
    REQUIRE(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    REQUIRE(rl_keys_load_public(&pk, p_pk) == RL_OK);
    REQUIRE(rl_keys_load_public(&pk2, p_pk2) == RL_OK);
    make_plain(p_file, 300, 3);
    /* unsigned */
    EXPECT(rl_seal_verify_file(p_file, &pk, NULL) == RL_EAUTH);
    EXPECT(contains(rl_error(), "not signed") && contains(rl_error(), p_file));
    rl_seal_policy pol;
    REQUIRE(rl_seal_policy_init(&pol, p_pk, NULL, NULL) == RL_OK);
    rl_mapped_file m;
    EXPECT(rl_seal_load(&m, p_file, "RLHFTEST", 1, 1, "test", &pol, NULL) == RL_EAUTH);
    EXPECT(rl_seal_load(&m, p_file, "RLHFTEST", 1, 1, "test", NULL, NULL) == RL_OK); /* no policy: accepted */
    rl_file_unmap(&m);
    REQUIRE(rl_seal_sign_file(p_file, p_file, &sk) == RL_OK);
    /* wrong key */
    EXPECT(rl_seal_verify_file(p_file, &pk2, NULL) == RL_EAUTH);
    EXPECT(contains(rl_error(), "signed by key") && contains(rl_error(), pk.id) && contains(rl_error(), pk2.id));
    rl_seal_policy pol2;
    REQUIRE(rl_seal_policy_init(&pol2, p_pk2, NULL, NULL) == RL_OK);
    EXPECT(rl_seal_load(&m, p_file, "RLHFTEST", 1, 1, "test", &pol2, NULL) == RL_EAUTH);
    /* every truncation */
    size_t n; uint8_t *img = slurp(p_file, &n);
    REQUIRE(img && n == 64 + 300 + 128);
    int refused = 0;
    for (size_t len = 0; len < n; len++) {
        spit(p_tmp, img, len);
        int a = rl_seal_verify_file(p_tmp, &pk, NULL) != RL_OK;
        int b = rl_seal_load(&m, p_tmp, "RLHFTEST", 1, 1, "test", &pol, NULL) != RL_OK;
        if (!b) rl_file_unmap(&m);
        refused += a && b;
    }
    EXPECT_MSG(refused == (int)n, "%d of %zu truncations refused", refused, n);
    /* trailer stripped and header patched to "unsigned": refused as unsigned */
    uint8_t *strip = malloc(n);
    memcpy(strip, img, n - 128);
    put32(strip + 32, 0);
    fix_crcs(strip, n - 128);
    spit(p_tmp, strip, n - 128);
    EXPECT(rl_seal_verify_file(p_tmp, &pk, NULL) == RL_EAUTH && contains(rl_error(), "not signed"));
    /* appended byte */
    memcpy(strip, img, n);
    spit(p_tmp, img, n);
    FILE *fp = fopen(p_tmp, "ab"); fputc(0, fp); fclose(fp);
    EXPECT(rl_seal_verify_file(p_tmp, &pk, NULL) != RL_OK);
    /* re-signing with another key: the new key verifies, the old one does not */
    rl_keys_secret sk2;
    REQUIRE(rl_keys_load_secret(&sk2, p_sk2) == RL_OK);
    REQUIRE(rl_seal_sign_file(p_file, p_out, &sk2) == RL_OK);
    EXPECT(rl_seal_verify_file(p_out, &pk2, NULL) == RL_OK);
    EXPECT(rl_seal_verify_file(p_out, &pk, NULL) == RL_EAUTH);
    rl_seal_policy_free(&pol);
    rl_seal_policy_free(&pol2);
    rl_keys_wipe(&sk, sizeof sk);
    rl_keys_wipe(&sk2, sizeof sk2);
    free(img); free(strip);
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    int ok = x && y && na == nb && (na == 0 || !memcmp(x, y, na));
    free(x); free(y);
    return ok;
}

TEST(encrypt_round_trip_key_file) {
    setup();
    rl_seal_secret s;
    REQUIRE(rl_seal_secret_from_key_file(&s, p_enc) == RL_OK);
    char enc[160];
    snprintf(enc, sizeof enc, "%s/e.enc", dir);
    /* sizes around the 1 MiB chunk: empty, tiny, exactly one chunk, 2.5 chunks */
    const size_t sizes[] = {0, 1, 300, RL_SEAL_CHUNK_BYTES, RL_SEAL_CHUNK_BYTES * 5 / 2};
    for (int i = 0; i < 5; i++) {
        rl_rng r;
        rl_rng_seed(&r, (uint64_t)i);
        uint8_t *b = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++) b[j] = (uint8_t)rl_rng_u64(&r);
        spit(p_file, b, sizes[i]);
        REQUIRE(rl_seal_encrypt_file(p_file, enc, &s) == RL_OK);
        rl_seal_enc_info ei;
        EXPECT(rl_seal_is_encrypted(enc, &ei) && ei.plaintext_bytes == sizes[i] && ei.kdf == RL_SEAL_KDF_NONE);
        EXPECT(!rl_seal_is_encrypted(p_file, NULL));
        size_t ne; uint8_t *ct = slurp(enc, &ne);
        size_t chunks = sizes[i] ? (sizes[i] + RL_SEAL_CHUNK_BYTES - 1) / RL_SEAL_CHUNK_BYTES : 1;
        EXPECT(ne == 64 + 96 + sizes[i] + 17 * chunks);
        /* ciphertext does not contain the plaintext */
        if (sizes[i] >= 300) EXPECT(memmem(ct, ne, b + 100, 64) == NULL);
        free(ct);
        unlink(p_out);
        REQUIRE(rl_seal_decrypt_file(enc, p_out, &s) == RL_OK);
        EXPECT(same_file(p_file, p_out));
        EXPECT(mode_of(p_out) == 0600);
        uint8_t *img; size_t n;
        REQUIRE(rl_seal_decrypt_to_memory(enc, &s, &img, &n) == RL_OK);
        EXPECT(n == sizes[i] && (n == 0 || !memcmp(img, b, n)));
        rl_seal_free_image(img, n);
        free(b);
    }
    rl_seal_secret_free(&s);
}

TEST(passphrase_round_trip_and_wrong_secrets) {
    setup();
    make_plain(p_file, 5000, 4);
    char enc[160];
    snprintf(enc, sizeof enc, "%s/p.enc", dir);
    rl_seal_secret s;
    setenv("RLHF_TEST_PW", "correct horse battery staple", 1);
    REQUIRE(rl_seal_secret_from_env(&s, "RLHF_TEST_PW") == RL_OK);
    s.opslimit = 1; s.memlimit = 1 << 20;   /* cheap Argon2id for the test */
    REQUIRE(rl_seal_encrypt_file(p_file, enc, &s) == RL_OK);
    rl_seal_enc_info ei;
    EXPECT(rl_seal_is_encrypted(enc, &ei) && ei.kdf == RL_SEAL_KDF_ARGON2ID && ei.opslimit == 1 && ei.memlimit == (1 << 20));
    unlink(p_out);
    REQUIRE(rl_seal_decrypt_file(enc, p_out, &s) == RL_OK);
    EXPECT(same_file(p_file, p_out));
    /* same passphrase, fresh salt: different ciphertext */
    char enc2[160];
    snprintf(enc2, sizeof enc2, "%s/p2.enc", dir);
    REQUIRE(rl_seal_encrypt_file(p_file, enc2, &s) == RL_OK);
    EXPECT(!same_file(enc, enc2));
    rl_seal_secret_free(&s);
    /* wrong passphrase */
    unlink(p_out);
    rl_seal_secret w;
    REQUIRE(rl_seal_secret_from_passphrase(&w, "correct horse battery stapler", 29) == RL_OK);
    EXPECT(rl_seal_decrypt_file(enc, p_out, &w) == RL_EAUTH);
    EXPECT(contains(rl_error(), "wrong passphrase") && contains(rl_error(), enc));
    EXPECT(access(p_out, F_OK) != 0);
    uint8_t *img; size_t n;
    EXPECT(rl_seal_decrypt_to_memory(enc, &w, &img, &n) == RL_EAUTH && img == NULL);
    rl_seal_secret_free(&w);
    /* a key file where a passphrase was used */
    REQUIRE(rl_seal_secret_from_key_file(&w, p_enc) == RL_OK);
    EXPECT(rl_seal_decrypt_file(enc, p_out, &w) == RL_EAUTH);
    /* wrong key file */
    char k2[160];
    snprintf(k2, sizeof k2, "%s/k2.key", dir);
    spit(k2, "abcdefghijklmnopqrstuvwxyz012345", 32);
    chmod(k2, 0600);
    snprintf(enc2, sizeof enc2, "%s/k.enc", dir);
    REQUIRE(rl_seal_encrypt_file(p_file, enc2, &w) == RL_OK);
    rl_seal_secret_free(&w);
    REQUIRE(rl_seal_secret_from_key_file(&w, k2) == RL_OK);
    EXPECT(rl_seal_decrypt_file(enc2, p_out, &w) == RL_EAUTH && contains(rl_error(), "wrong key"));
    rl_seal_secret_free(&w);
    /* unset / empty environment variable */
    unsetenv("RLHF_TEST_PW");
    EXPECT(rl_seal_secret_from_env(&w, "RLHF_TEST_PW") == RL_ENOTFOUND);
}

/* Every single-byte flip and every truncation of an encrypted file fails;
 * with CRCs fixed, the AEAD (or the key check) is what refuses. */
TEST(every_flipped_byte_of_encrypted_file_refused) {
    setup();
    make_plain(p_file, 300, 5);
    char enc[160];
    snprintf(enc, sizeof enc, "%s/f.enc", dir);
    rl_seal_secret s;
    REQUIRE(rl_seal_secret_from_key_file(&s, p_enc) == RL_OK);
    REQUIRE(rl_seal_encrypt_file(p_file, enc, &s) == RL_OK);
    size_t n; uint8_t *img = slurp(enc, &n);
    REQUIRE(n == 64 + 96 + 364 + 17);
    uint8_t *mut = malloc(n);
    int refused = 0, refused_fixed = 0, auth_fixed = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(mut, img, n);
        mut[i] ^= 0x04;
        spit(p_tmp, mut, n);
        uint8_t *out; size_t on;
        rl_status a = rl_seal_decrypt_to_memory(p_tmp, &s, &out, &on);
        if (a == RL_OK) rl_seal_free_image(out, on);
        refused += a != RL_OK;
        fix_crcs(mut, n);
        if (!memcmp(mut, img, n)) { refused_fixed++; continue; }   /* flip inside a CRC field, undone */
        spit(p_tmp, mut, n);
        a = rl_seal_decrypt_to_memory(p_tmp, &s, &out, &on);
        if (a == RL_OK) rl_seal_free_image(out, on);
        refused_fixed += a != RL_OK;
        /* payload bytes other than the version/kdf/chunk/size words (format checks) must fail authentication */
        if (i >= 64 + 40) auth_fixed += a == RL_EAUTH;
    }
    EXPECT_MSG(refused == (int)n, "%d of %zu", refused, n);
    EXPECT_MSG(refused_fixed == (int)n, "%d of %zu", refused_fixed, n);
    EXPECT_MSG(auth_fixed == (int)(n - 104), "%d of %zu", auth_fixed, n - 104);
    int trunc = 0;
    for (size_t len = 0; len < n; len++) {
        spit(p_tmp, img, len);
        unlink(p_out);
        trunc += rl_seal_decrypt_file(p_tmp, p_out, &s) != RL_OK && access(p_out, F_OK) != 0;
    }
    EXPECT_MSG(trunc == (int)n, "%d of %zu truncations refused", trunc, n);
    rl_seal_secret_free(&s);
    free(img); free(mut);
}

/* Cut the last chunk of a multi-chunk file and make the header agree: the
 * key check (which covers the header) or the missing FINAL tag refuses it. */
TEST(dropped_chunk_refused) {
    setup();
    rl_rng r; rl_rng_seed(&r, 9);
    size_t pt = RL_SEAL_CHUNK_BYTES * 2 + 10;
    uint8_t *b = malloc(pt);
    for (size_t j = 0; j < pt; j++) b[j] = (uint8_t)rl_rng_u64(&r);
    spit(p_file, b, pt);
    char enc[160];
    snprintf(enc, sizeof enc, "%s/c.enc", dir);
    rl_seal_secret s;
    REQUIRE(rl_seal_secret_from_key_file(&s, p_enc) == RL_OK);
    REQUIRE(rl_seal_encrypt_file(p_file, enc, &s) == RL_OK);
    size_t n; uint8_t *img = slurp(enc, &n);
    size_t cut = n - (10 + 17);
    put64(img + 64 + 16, 2 * RL_SEAL_CHUNK_BYTES);   /* plaintext_bytes */
    put64(img + 16, cut - 64);                         /* payload_bytes */
    fix_crcs(img, cut);
    spit(p_tmp, img, cut);
    uint8_t *out; size_t on;
    EXPECT(rl_seal_decrypt_to_memory(p_tmp, &s, &out, &on) == RL_EAUTH);
    rl_seal_secret_free(&s);
    free(img); free(b);
}

TEST(encrypted_and_signed_together) {
    setup();
    rl_keys_secret sk;
    REQUIRE(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    make_plain(p_file, 2000, 6);
    REQUIRE(rl_seal_sign_file(p_file, p_file, &sk) == RL_OK);
    char enc[160];
    snprintf(enc, sizeof enc, "%s/s.enc", dir);
    rl_seal_secret s;
    REQUIRE(rl_seal_secret_from_key_file(&s, p_enc) == RL_OK);
    REQUIRE(rl_seal_encrypt_file(p_file, enc, &s) == RL_OK);
    rl_seal_secret_free(&s);
    size_t n0; uint8_t *plain = slurp(p_file, &n0);
    /* verify + decrypt in one load */
    rl_seal_policy pol;
    REQUIRE(rl_seal_policy_init(&pol, p_pk, p_enc, NULL) == RL_OK);
    EXPECT(pol.verify && pol.can_decrypt);
    rl_mapped_file m;
    rl_seal_sig_info si;
    REQUIRE(rl_seal_load(&m, enc, "RLHFTEST", 1, 1, "test", &pol, &si) == RL_OK);
    EXPECT(si.is_signed && m.info.payload_bytes == 2000 && !memcmp(m.payload, plain + 64, 2000));
    rl_file_unmap(&m);
    rl_seal_policy_free(&pol);
    /* no decryption key: a clear refusal */
    REQUIRE(rl_seal_policy_init(&pol, p_pk, NULL, NULL) == RL_OK);
    EXPECT(rl_seal_load(&m, enc, "RLHFTEST", 1, 1, "test", &pol, NULL) == RL_EAUTH && contains(rl_error(), "encrypted"));
    rl_seal_policy_free(&pol);
    EXPECT(rl_file_map(&m, enc, "RLHFTEST", 1, 1, "test") == RL_EFORMAT && contains(rl_error(), "encrypted"));
    /* right decryption key, wrong verification key */
    REQUIRE(rl_seal_policy_init(&pol, p_pk2, p_enc, NULL) == RL_OK);
    EXPECT(rl_seal_load(&m, enc, "RLHFTEST", 1, 1, "test", &pol, NULL) == RL_EAUTH && contains(rl_error(), "signed by key"));
    rl_seal_policy_free(&pol);
    /* encrypting an unsigned file, loading with verification: refused as unsigned */
    make_plain(p_tmp, 100, 7);
    REQUIRE(rl_seal_secret_from_key_file(&s, p_enc) == RL_OK);
    REQUIRE(rl_seal_encrypt_file(p_tmp, enc, &s) == RL_OK);
    rl_seal_secret_free(&s);
    REQUIRE(rl_seal_policy_init(&pol, p_pk, p_enc, NULL) == RL_OK);
    EXPECT(rl_seal_load(&m, enc, "RLHFTEST", 1, 1, "test", &pol, NULL) == RL_EAUTH && contains(rl_error(), "not signed"));
    rl_seal_policy_free(&pol);
    /* signing an encrypted file is refused (order: sign, then encrypt) */
    EXPECT(rl_seal_sign_file(enc, p_out, &sk) == RL_EINVAL);
    rl_keys_wipe(&sk, sizeof sk);
    free(plain);
}

TEST(policy_from_environment) {
    setup();
    rl_seal_policy pol;
    unsetenv("RLHF_VERIFY_KEY"); unsetenv("RLHF_KEY_FILE"); unsetenv("RLHF_PASSPHRASE");
    REQUIRE(rl_seal_policy_init(&pol, NULL, NULL, NULL) == RL_OK);
    EXPECT(!pol.verify && !pol.can_decrypt);
    rl_seal_policy_free(&pol);
    setenv("RLHF_VERIFY_KEY", p_pk, 1);
    setenv("RLHF_PASSPHRASE", "pw", 1);
    REQUIRE(rl_seal_policy_init(&pol, "", "", "") == RL_OK);
    EXPECT(pol.verify && pol.can_decrypt && pol.secret.kdf == RL_SEAL_KDF_ARGON2ID);
    rl_seal_policy_free(&pol);
    setenv("RLHF_KEY_FILE", p_enc, 1);   /* a key file wins over the passphrase */
    REQUIRE(rl_seal_policy_init(&pol, NULL, NULL, NULL) == RL_OK);
    EXPECT(pol.can_decrypt && pol.secret.kdf == RL_SEAL_KDF_NONE);
    rl_seal_policy_free(&pol);
    /* a configured key that cannot be read is an error, not "no verification" */
    setenv("RLHF_VERIFY_KEY", "/nonexistent/sign.pub", 1);
    EXPECT(rl_seal_policy_init(&pol, NULL, NULL, NULL) == RL_ENOTFOUND);
    EXPECT(rl_seal_policy_init(&pol, p_pk, p_enc, "SOME_VAR") == RL_EINVAL);
    unsetenv("RLHF_VERIFY_KEY"); unsetenv("RLHF_KEY_FILE"); unsetenv("RLHF_PASSPHRASE");
}

/* The shared flag entries feed rl_seal_policy_init. */
TEST(load_flags_macro) {
    setup();
    static const char *vk, *kf, *pe, *sk;
    rl_flag flags[] = {RL_SEAL_LOAD_FLAGS(vk, kf, pe), RL_SEAL_SIGN_FLAG(sk)};
    char *argv[] = {"--verify-key", p_pk, "--key-file", p_enc, "--sign-key", p_sk};
    REQUIRE(rl_flags_parse("test", "test", flags, RL_NFLAGS(flags), 6, argv) == RL_FLAGS_OK);
    rl_seal_policy pol;
    REQUIRE(rl_seal_policy_init(&pol, vk, kf, pe) == RL_OK);
    EXPECT(pol.verify && pol.can_decrypt && pol.secret.kdf == RL_SEAL_KDF_NONE);
    EXPECT_STREQ(sk, p_sk);
    EXPECT(*pe == 0);
    rl_seal_policy_free(&pol);
}

/* Deterministic random mutations (flips, overwrites, truncation, extension)
 * of a signed file and an encrypted one: never a crash, never accepted. */
TEST(random_mutations_never_accepted) {
    setup();
    rl_keys_secret sk;
    REQUIRE(rl_keys_load_secret(&sk, p_sk) == RL_OK);
    make_plain(p_file, 200, 8);
    REQUIRE(rl_seal_sign_file(p_file, p_file, &sk) == RL_OK);
    char enc[160];
    snprintf(enc, sizeof enc, "%s/m.enc", dir);
    rl_seal_secret s;
    REQUIRE(rl_seal_secret_from_key_file(&s, p_enc) == RL_OK);
    REQUIRE(rl_seal_encrypt_file(p_file, enc, &s) == RL_OK);
    rl_seal_secret_free(&s);
    rl_seal_policy pol;
    REQUIRE(rl_seal_policy_init(&pol, p_pk, p_enc, NULL) == RL_OK);
    const char *srcs[2] = {p_file, enc};
    rl_rng r;
    rl_rng_seed(&r, 12345);
    int accepted_changed = 0, runs = 0;
    for (int which = 0; which < 2; which++) {
        size_t n; uint8_t *img = slurp(srcs[which], &n);
        uint8_t *mut = malloc(n + 64);
        for (int it = 0; it < 2000; it++) {
            memcpy(mut, img, n);
            size_t len = n;
            int kind = (int)rl_rng_below(&r, 4);
            int edits = 1 + (int)rl_rng_below(&r, 4);
            for (int e = 0; e < edits; e++) mut[rl_rng_below(&r, (uint32_t)n)] = (uint8_t)rl_rng_u64(&r);
            if (kind == 1) len = rl_rng_below(&r, (uint32_t)n);
            if (kind == 2) { size_t extra = 1 + rl_rng_below(&r, 64); for (size_t k = 0; k < extra; k++) mut[n + k] = (uint8_t)rl_rng_u64(&r); len = n + extra; }
            if (kind == 3) fix_crcs(mut, len);
            spit(p_tmp, mut, len);
            rl_mapped_file m;
            rl_status st = rl_seal_load(&m, p_tmp, "RLHFTEST", 1, 1, "test", &pol, NULL);
            int changed = len != n || memcmp(mut, img, n) != 0;
            if (st == RL_OK) { rl_file_unmap(&m); accepted_changed += changed; }
            if (which == 0 && rl_seal_verify_file(p_tmp, &pol.pub, NULL) == RL_OK) accepted_changed += changed;
            runs++;
        }
        free(img); free(mut);
    }
    EXPECT_MSG(accepted_changed == 0, "%d of %d mutated files accepted", accepted_changed, runs);
    rl_seal_policy_free(&pol);
    rl_keys_wipe(&sk, sizeof sk);
}

TEST_MAIN()
