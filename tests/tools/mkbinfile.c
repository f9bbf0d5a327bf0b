/* mkbinfile OUT BYTES [SEED] — writes an rlhf.c binary file of kind RLHFTEST
 * (version 1) with BYTES pseudo-random payload bytes, for CLI tests of the
 * file commands (sign, verify, encrypt, inspect) before real kinds exist. */
#include <stdio.h>
#include <stdlib.h>
#include "../../src/base/binfile.h"
#include "../../src/base/rng.h"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: mkbinfile OUT BYTES [SEED]\n"); return 2; }
    long long n = atoll(argv[2]);
    rl_rng r;
    rl_rng_seed(&r, argc > 3 ? (uint64_t)atoll(argv[3]) : 1);
    rl_writer *w;
    CHECK_OK(rl_writer_open(&w, argv[1], "RLHFTEST", 1, 0), "cannot write %s", argv[1]);
    unsigned char buf[4096];
    while (n > 0) {
        int k = n > (long long)sizeof buf ? (int)sizeof buf : (int)n;
        for (int i = 0; i < k; i++) buf[i] = (unsigned char)rl_rng_u64(&r);
        CHECK_OK(rl_writer_write(w, buf, (size_t)k), "write");
        n -= k;
    }
    CHECK_OK(rl_writer_commit(w), "commit");
    return 0;
}
