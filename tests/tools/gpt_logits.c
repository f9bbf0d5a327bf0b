/* gpt_logits — logits of a model on given tokens, for tests/ref/test_interop.py.
 *
 *   build/tools/gpt_logits KIND MODEL TOKENS.bin B T OUT.bin
 *
 * KIND: ckpt (an rlhf.c checkpoint, loaded with ckpt_load under the
 * environment's security policy), st (Hugging Face safetensors, imported with
 * gptio_import_safetensors) or llmc (llm.c model file). TOKENS.bin: int32
 * (B, T). OUT.bin: float32 (B, T, V) logits of the reference kernels, then
 * float32 (B, T, V) of the fast ones. Prints "L NH C V maxT" on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/model/checkpoint.h"
#include "../../src/model/interop.h"

int main(int argc, char **argv) {
    CHECK(argc == 7, "usage: gpt_logits ckpt|st|llmc MODEL TOKENS.bin B T OUT.bin");
    int B = atoi(argv[4]), T = atoi(argv[5]);
    CHECK(B > 0 && T > 0, "B and T must be positive");
    int *tok = malloc(sizeof(int) * (size_t)B * (size_t)T);
    FILE *f = fopen(argv[3], "rb");
    CHECK(f && fread(tok, sizeof(int), (size_t)B * T, f) == (size_t)B * T, "cannot read %s", argv[3]);
    fclose(f);
    FILE *out = fopen(argv[6], "wb");
    CHECK(out, "cannot write %s", argv[6]);
    const char *kinds[2] = {"ref", "fast"};
    for (int k = 0; k < 2; k++) {
        gpt_model m;
        const ops_table *ops = ops_get(kinds[k]);
        if (!strcmp(argv[1], "ckpt")) CHECK_OK(ckpt_load(argv[2], &m, B, T, ops, NULL, 0, 0, 0, 0, 0, NULL), "load");
        else if (!strcmp(argv[1], "st")) CHECK_OK(gptio_import_safetensors(&m, argv[2], 0, B, T, ops), "import");
        else if (!strcmp(argv[1], "llmc")) CHECK_OK(gptio_import_llmc(&m, argv[2], B, T, ops), "import");
        else CHECK(0, "unknown kind %s", argv[1]);
        if (k == 0) printf("%d %d %d %d %d\n", m.cfg.L, m.cfg.NH, m.cfg.C, m.cfg.V, m.cfg.maxT);
        gpt_forward(&m, tok, NULL, NULL, B, T);
        size_t n = (size_t)B * T * m.cfg.V;
        CHECK(fwrite(m.a.logits, sizeof(float), n, out) == n, "short write");
        gpt_free(&m);
    }
    fclose(out);
    free(tok);
    return 0;
}
