/* tok_encode_cases.c — for tests/js/gpt2_equiv.sh: encodes every case of a
 * cases file (repeated: u32 little-endian byte length, then the bytes) with a
 * tokenizer and prints one line of space-separated ids per case. Also checks
 * that each case decodes back to its bytes (exit 1 and a message if not).
 *   build/tools/tok_encode_cases TOKENIZER CASES */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/tok/tok.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: tok_encode_cases TOKENIZER CASES\n"); return 2; }
    tok_tokenizer *t;
    if (tok_load(&t, argv[1]) != RL_OK) { fprintf(stderr, "%s\n", rl_error()); return 1; }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    int rc = 0, k = 0;
    unsigned char hdr[4];
    while (fread(hdr, 1, 4, f) == 4) {
        size_t n = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
        char *buf = malloc(n + 1);
        if (!buf || fread(buf, 1, n, f) != n) { fprintf(stderr, "%s: truncated case %d\n", argv[2], k); return 1; }
        int *ids = NULL, m = 0;
        if (tok_encode(t, buf, n, 0, &ids, &m) != RL_OK) { fprintf(stderr, "case %d: %s\n", k, rl_error()); return 1; }
        for (int i = 0; i < m; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
        char *back; size_t bn;
        if (tok_decode(t, ids, m, &back, &bn) != RL_OK || bn != n || memcmp(back, buf, n)) {
            fprintf(stderr, "case %d: decode(encode(x)) != x\n", k);
            rc = 1;
        } else free(back);
        free(ids); free(buf);
        k++;
    }
    fclose(f);
    tok_free(t);
    return rc;
}
