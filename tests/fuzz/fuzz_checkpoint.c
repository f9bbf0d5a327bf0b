/* libFuzzer target: the checkpoint loader and the GPT-2 weight importers.
 * Built and run by tests/cli/fuzz.sh.
 *
 * Byte 0 picks the target; the rest is the input:
 *   0: an RLHFGPT payload. It is wrapped in a valid binfile header (CRC
 *      fixed up, version 1 or 2 from byte 1) so that the fuzzer reaches the
 *      checkpoint parser (ckpt_peek_mapped) instead of dying on the CRC,
 *      then loaded for real (ckpt_load) when it parses and is small.
 *   1: an llm.c model file (gptio_import_llmc), via a temporary file.
 *   2: a safetensors file (gptio_import_safetensors), via a temporary file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../src/base/binfile.h"
#include "../../src/model/checkpoint.h"
#include "../../src/model/interop.h"

static char path[64];

static void cleanup(void) { if (path[0]) unlink(path); }
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    atexit(cleanup);
    return 0;
}

static void put_file(const uint8_t *d, size_t n) {
    if (!path[0]) snprintf(path, sizeof path, "%s/rlhf-fuzz-ckpt.%d", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int target = data[0] % 3;
    data++; size--;
    if (target == 0) {
        uint32_t version = 1 + (data[0] & 1);
        data++; size--;
        size_t total = RL_FILE_HEADER_BYTES + size;
        uint8_t *img = malloc(total);
        rl_file_info fi;
        memset(&fi, 0, sizeof fi);
        memcpy(fi.magic, CKPT_MAGIC, 8);
        fi.version = version;
        fi.header_bytes = RL_FILE_HEADER_BYTES;
        fi.payload_bytes = size;
        fi.payload_crc = rl_crc32(0, data, size);
        rl_file_header_encode(img, &fi);
        if (size) memcpy(img + RL_FILE_HEADER_BYTES, data, size);
        rl_mapped_file m;
        memset(&m, 0, sizeof m);
        if (rl_file_check(&m.info, img, total, "fuzz", CKPT_MAGIC, 1, CKPT_VERSION, "model checkpoint") != RL_OK) abort();
        m.payload = img + RL_FILE_HEADER_BYTES;
        ckpt_info info;
        if (ckpt_peek_mapped(&m, "fuzz", &info) == RL_OK && info.num_params < (1u << 16)) {
            if (info.num_params != gpt_num_params(&info.cfg)) abort();
            put_file(img, total);
            gpt_model g;
            if (ckpt_load(path, &g, 1, 1, ops_get("ref"), NULL, 0, 0, 0, 0, 0, NULL) != RL_OK) abort();  /* parsed: must load */
            gpt_free(&g);
        }
        free(img);
        return 0;
    }
    put_file(data, size);
    gpt_model g;
    rl_status s = target == 1 ? gptio_import_llmc(&g, path, 1, 1, ops_get("ref"))
                              : gptio_import_safetensors(&g, path, 0, 1, 1, ops_get("ref"));
    if (s == RL_OK) {
        if (g.num_params != gpt_num_params(&g.cfg)) abort();
        gpt_free(&g);
    }
    return 0;
}
