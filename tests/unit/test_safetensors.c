/* safetensors parser and writer (src/model/safetensors.h): round trips,
 * dtype conversions, crafted bad headers, random mutations. */
#include "test.h"
#include "../../src/model/safetensors.h"
#include "../../src/base/rng.h"
#include <unistd.h>

/* A file image: u64 length, the header text, `data` zero bytes. */
static uint8_t *make(const char *hdr, size_t data, size_t *n) {
    size_t hl = strlen(hdr);
    *n = 8 + hl + data;
    uint8_t *b = calloc(1, *n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    return b;
}

/* Parses a crafted image; expects failure whose message contains `want`. */
static int rejects(const char *hdr, size_t data, const char *want) {
    size_t n;
    uint8_t *b = make(hdr, data, &n);
    st_file f;
    rl_status s = st_parse(&f, b, n, "crafted.safetensors");
    int ok = s == RL_EFORMAT && strstr(rl_error(), want) && strstr(rl_error(), "crafted.safetensors");
    if (!ok) fprintf(stderr, "  header %.80s: status %d, message '%s' (wanted '%s')\n", hdr, s, rl_error(), want);
    if (s == RL_OK) st_close(&f);
    free(b);
    return ok;
}

static int accepts(const char *hdr, size_t data) {
    size_t n;
    uint8_t *b = make(hdr, data, &n);
    st_file f;
    rl_status s = st_parse(&f, b, n, "crafted");
    if (s != RL_OK) fprintf(stderr, "  rejected %.80s: %s\n", hdr, rl_error());
    else st_close(&f);
    free(b);
    return s == RL_OK;
}

TEST(crafted_bad_headers_rejected) {
    size_t n;
    st_file f;
    uint8_t tiny[5] = {0};
    EXPECT(st_parse(&f, tiny, 5, "crafted.safetensors") == RL_EFORMAT && strstr(rl_error(), "too short"));
    /* huge and out-of-file header lengths */
    uint8_t *b = make("{}", 0, &n);
    for (int i = 0; i < 8; i++) b[i] = 0xff;
    EXPECT(st_parse(&f, b, n, "crafted.safetensors") == RL_EFORMAT && strstr(rl_error(), "100 MB"));
    b[0] = 0x00; b[1] = 0xe1; b[2] = 0xf5; b[3] = 0x05; for (int i = 4; i < 8; i++) b[i] = 0; /* 100,000,000 + ... */
    EXPECT(st_parse(&f, b, n, "crafted.safetensors") == RL_EFORMAT && strstr(rl_error(), "past the end"));
    b[0] = 3; b[1] = b[2] = b[3] = 0;
    EXPECT(st_parse(&f, b, n, "crafted.safetensors") == RL_EFORMAT && strstr(rl_error(), "past the end"));
    free(b);
    EXPECT(rejects("[1, 2]", 0, "starting with '{'"));
    EXPECT(rejects(" {}", 0, "starting with '{'"));
    EXPECT(rejects("{\"a\": ", 0, "not valid JSON"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}} x", 4, "not valid JSON"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                   "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "not valid JSON"));   /* duplicate key */
    EXPECT(rejects("{\"a\\u0000b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "not valid JSON"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F128\", \"shape\": [1], \"data_offsets\": [0, 16]}}", 16, "unknown dtype 'F128'"));
    EXPECT(rejects("{\"a\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "dtype is not a string"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, "shape[0] is not a non-negative integer"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}", 8, "shape[0] is not"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", 8, "shape is not an array"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4, "9 dimensions"));
    /* integer overflow in the shape product and in the byte size */
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4, "shape product overflows"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 8]}}", 8, "byte size overflows"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 4]}}", 4, "not valid JSON"));
    /* offsets */
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4, "past the data area"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4, "run backwards"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, "data_offsets must be"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8, "data_offsets must be"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4, "data_offsets must be"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [18446744073709551612, 18446744073709551616]}}", 4, "not valid JSON"));
    /* shape/size mismatch */
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4, "need 8 bytes but data_offsets span 4"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, "need 6 bytes"));
    /* overlap, hole, trailing bytes */
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                   "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12, "overlaps"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                   "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "overlaps"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                   "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12, "unindexed bytes before tensor 'b'"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "unindexed bytes before tensor 'a'"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8, "bytes after the last tensor"));
    EXPECT(rejects("{}", 1, "bytes after the last tensor"));
    /* structure */
    EXPECT(rejects("{\"a\": 1}", 0, "'a' is not an object"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "lacks data_offsets"));
    EXPECT(rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}", 4, "unknown field 'x'"));
    EXPECT(rejects("{\"__metadata__\": {\"k\": 1}}", 0, "not a string"));
    EXPECT(rejects("{\"__metadata__\": [1]}", 0, "__metadata__ is not an object"));
    /* very deep nesting: an error, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(depth + 16);
    strcpy(deep, "{\"a\":");
    memset(deep + 5, '[', depth);
    deep[5 + depth] = 0;
    EXPECT(rejects(deep, 0, "not valid JSON"));
    free(deep);
    /* what the spec allows */
    EXPECT(accepts("{}", 0));
    EXPECT(accepts("{\"__metadata__\": {\"format\": \"pt\"}}    ", 0));   /* trailing space padding */
    EXPECT(accepts("{\"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}, "
                   "\"e\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [4, 4]}, "
                   "\"z\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [4, 12]}}", 12));
}

TEST(f16_bf16_conversion_exact) {
    /* every half value against ldexp arithmetic */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        float got = st_f16_to_f32((uint16_t)h);
        if (e == 31) {
            if (m == 0 ? !isinf(got) || (signbit(got) != 0) != sign : !isnan(got)) bad++;
            continue;
        }
        double want = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
        if (sign) want = -want;
        if ((double)got != want || (signbit(got) != 0) != sign) bad++;
    }
    EXPECT_MSG(bad == 0, "%d half values wrong", bad);
    EXPECT(st_f16_to_f32(0x3c00) == 1.0f && st_f16_to_f32(0xc000) == -2.0f && st_f16_to_f32(0x7bff) == 65504.0f);
    EXPECT(st_bf16_to_f32(0x3f80) == 1.0f && st_bf16_to_f32(0xc040) == -3.0f);
    EXPECT(isinf(st_bf16_to_f32(0x7f80)) && isnan(st_bf16_to_f32(0x7fc0)));
}

TEST(write_then_read_round_trip) {
    char path[] = "/tmp/rlhf_test_st_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    float a[6], s = 3.25f, w[48];
    for (int i = 0; i < 6; i++) a[i] = (float)i * 0.5f - 1.0f;
    for (int i = 0; i < 48; i++) w[i] = sinf((float)i);
    int64_t sa[2] = {2, 3}, se[2] = {0, 4}, sw[2] = {4, 12};
    st_entry e[4] = {
        {"h.0.attn.c_attn.weight", 2, sw, w},
        {"a", 2, sa, a},
        {"scalar", 0, NULL, &s},
        {"empty", 2, se, NULL},
    };
    const char *meta[] = {"format", "pt", "note", "caf\xc3\xa9"};
    REQUIRE(st_write_f32(path, e, 4, meta, 2) == RL_OK);
    st_file f;
    REQUIRE(st_open(&f, path) == RL_OK);
    EXPECT(f.ntensors == 4);
    EXPECT(((uintptr_t)f.data - (uintptr_t)f.map) % 8 == 0);
    EXPECT_STREQ(st_meta(&f, "format"), "pt");
    EXPECT_STREQ(st_meta(&f, "note"), "caf\xc3\xa9");
    EXPECT(st_meta(&f, "missing") == NULL);
    const st_tensor *t = st_find(&f, "h.0.attn.c_attn.weight");
    REQUIRE(t != NULL);
    EXPECT(t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 12 && t->numel == 48);
    float got[48];
    REQUIRE(st_read_f32(&f, t, got, 48) == RL_OK);
    EXPECT(!memcmp(got, w, sizeof w));
    EXPECT(st_read_f32(&f, t, got, 47) == RL_EINVAL);
    t = st_find(&f, "a");
    REQUIRE(t && st_read_f32(&f, t, got, 6) == RL_OK);
    EXPECT(!memcmp(got, a, sizeof a));
    t = st_find(&f, "scalar");
    REQUIRE(t && t->ndim == 0 && t->numel == 1 && st_read_f32(&f, t, got, 1) == RL_OK);
    EXPECT(got[0] == 3.25f);
    t = st_find(&f, "empty");
    REQUIRE(t && t->numel == 0 && st_read_f32(&f, t, got, 0) == RL_OK);
    EXPECT(st_find(&f, "nope") == NULL && st_find(&f, "") == NULL);
    st_close(&f);
    /* bad writer input */
    st_entry dup[2] = {{"a", 2, sa, a}, {"a", 2, sa, a}};
    EXPECT(st_write_f32(path, dup, 2, NULL, 0) == RL_EINVAL);
    st_entry res[1] = {{"__metadata__", 2, sa, a}};
    EXPECT(st_write_f32(path, res, 1, NULL, 0) == RL_EINVAL);
    /* the failed writes left the good file alone */
    REQUIRE(st_open(&f, path) == RL_OK);
    EXPECT(f.ntensors == 4);
    st_close(&f);
    unlink(path);
    EXPECT(st_open(&f, path) == RL_ENOTFOUND);
}

TEST(dtypes_unaligned_and_unsupported) {
    /* header length 61 puts the data area at an odd address */
    const char *hdr = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[12,14]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[14,22]},"
                      "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[22,26]}}";
    size_t n;
    uint8_t *b = make(hdr, 26, &n);
    uint8_t *d = b + 8 + strlen(hdr);
    float x[2] = {1.5f, -7.0f};
    uint16_t h[2] = {0x3c00, 0xc500}, bf = 0x4049;
    double dd = 0.1;
    memcpy(d, x, 8); memcpy(d + 8, h, 4); memcpy(d + 12, &bf, 2); memcpy(d + 14, &dd, 8);
    st_file f;
    REQUIRE(st_parse(&f, b, n, "mem") == RL_OK);
    float got[2];
    EXPECT(st_read_f32(&f, st_find(&f, "x"), got, 2) == RL_OK && got[0] == 1.5f && got[1] == -7.0f);
    EXPECT(st_read_f32(&f, st_find(&f, "h"), got, 2) == RL_OK && got[0] == 1.0f && got[1] == -5.0f);
    EXPECT(st_read_f32(&f, st_find(&f, "b"), got, 1) == RL_OK && got[0] == 3.140625f);
    EXPECT(st_read_f32(&f, st_find(&f, "d"), got, 1) == RL_OK && got[0] == 0.1f);
    EXPECT(st_read_f32(&f, st_find(&f, "i"), got, 1) == RL_EUNSUPPORTED && strstr(rl_error(), "I32"));
    st_close(&f);
    free(b);
}

/* Thousands of random mutations of a valid file: each is rejected or parses
 * into tensors that all lie inside the data area (reading them is then safe,
 * and ASan checks that it is). */
TEST(random_mutations_no_crash) {
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"wte\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
                      "\"h.0.ln_1.weight\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[48,54]},"
                      "\"h.0.ln_1.bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[54,60]},"
                      "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[60,68]}}";
    size_t n;
    uint8_t *orig = make(hdr, 68, &n);
    st_file f;
    REQUIRE(st_parse(&f, orig, n, "seed") == RL_OK);
    st_close(&f);
    rl_rng r;
    rl_rng_seed(&r, 777);
    int accepted = 0, bad_bounds = 0;
    const char *tokens[] = {"0", "1", "-1", "99999999999", "[", "]", "{", "}", ",", ":", "\"", "F16", "BF16", "[]", "1e3", "null"};
    for (int it = 0; it < 20000; it++) {
        uint8_t *m = malloc(n + 32);
        memcpy(m, orig, n);
        size_t len = n;
        int edits = 1 + (int)rl_rng_below(&r, 3);
        for (int e = 0; e < edits; e++) {
            int kind = (int)rl_rng_below(&r, 5);
            size_t at = rl_rng_below(&r, (uint32_t)len);
            if (kind == 0) m[at] ^= (uint8_t)(1u << rl_rng_below(&r, 8));
            else if (kind == 1) m[at] = (uint8_t)rl_rng_u64(&r);
            else if (kind == 2 && at >= 8 && at + 12 < len) {   /* splice a JSON token into the header */
                const char *tk = tokens[rl_rng_below(&r, 16)];
                memcpy(m + at, tk, strlen(tk));
            } else if (kind == 3) len = rl_rng_below(&r, (uint32_t)len + 1);
            else if (kind == 4) m[rl_rng_below(&r, 8)] = (uint8_t)rl_rng_u64(&r);   /* header length */
        }
        if (st_parse(&f, m, len, "mut") == RL_OK) {
            accepted++;
            for (int i = 0; i < f.ntensors; i++) {
                const st_tensor *t = &f.tensors[i];
                if (t->end > f.data_bytes || t->end - t->begin != t->numel * st_dtype_size(t->dtype)) bad_bounds++;
                if (t->numel <= 64) {
                    float out[64];
                    rl_status s = st_read_f32(&f, t, out, t->numel);
                    if (s != RL_OK && s != RL_EUNSUPPORTED) bad_bounds++;
                }
            }
            st_close(&f);
        }
        free(m);
    }
    EXPECT(bad_bounds == 0);
    if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "  %d of 20000 mutations parsed\n", accepted);
    EXPECT(accepted > 0);   /* some mutations (inside tensor data) are harmless */
    free(orig);
}

TEST_MAIN()
