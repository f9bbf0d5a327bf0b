/* libFuzzer target: the binfile checks and the seal loaders (signature
 * verification over an image, decryption + verification through
 * rl_seal_load). Keys come from $RLHF_FUZZ_KEYS (sign.pub, enc.key), made by
 * tests/cli/fuzz.sh, which also signs/encrypts the seed corpus with them.
 * Invariant checked: a loaded file always verifies under the trusted key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../../src/base/seal.h"

static rl_seal_policy pol;
static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("RLHF_FUZZ_KEYS");
    if (!dir) { fprintf(stderr, "set RLHF_FUZZ_KEYS to a key directory\n"); exit(2); }
    char pub[512], enc[512];
    snprintf(pub, sizeof pub, "%s/sign.pub", dir);
    snprintf(enc, sizeof enc, "%s/enc.key", dir);
    if (rl_seal_policy_init(&pol, pub, enc, NULL) != RL_OK) { fprintf(stderr, "%s\n", rl_error()); exit(2); }
    memfd = memfd_create("fuzz", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rl_file_info fi;
    if (size >= RL_FILE_HEADER_BYTES && rl_file_header_decode(&fi, data, size, "fuzz") == RL_OK) {
        rl_file_info chk;
        rl_file_check(&chk, data, size, "fuzz", fi.magic, 0, 0xffffffffu, "fuzzed");
    }
    rl_seal_sig_info si;
    rl_seal_verify_image(data, size, "fuzz", &pol.pub, &si);
    rl_seal_verify_image(data, size, "fuzz", NULL, &si);
    if (ftruncate(memfd, 0) != 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size)) abort();
    rl_seal_enc_info ei;
    rl_seal_is_encrypted(path, &ei);
    rl_mapped_file m;
    if (rl_seal_load(&m, path, "RLHFTEST", 1, 1, "fuzzed", &pol, &si) == RL_OK) {
        if (!si.is_signed || rl_seal_verify_image(m.map, m.map_bytes, "fuzz", &pol.pub, NULL) != RL_OK) abort();
        rl_file_unmap(&m);
    }
    uint8_t *img; size_t n;
    if (rl_seal_decrypt_to_memory(path, &pol.secret, &img, &n) == RL_OK) rl_seal_free_image(img, n);
    return 0;
}
