/* unigram_baseline DATA_DIR — the validation cross-entropy (nats/token) of the
 * add-one-smoothed unigram distribution of the training split: the loss a
 * model that ignores context would reach. Pretraining must beat it clearly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "../../src/data/shard.h"

static long long count(const char *dir, const char *split, double *cnt, int V, double *nll, const double *p) {
    data_loader *l;
    int T = 64;
    CHECK_OK(data_loader_open(&l, dir, split, 1, T, 0, 1, 0), "open %s", split);
    long long nb = data_loader_batches_per_epoch(l), n = 0;
    int *tok = malloc(sizeof(int) * (T + 1));
    for (long long b = 0; b < nb; b++) {
        CHECK_OK(data_loader_next(l, tok), "read");
        for (int t = 1; t <= T; t++) {  /* the targets of the window */
            CHECK(tok[t] >= 0 && tok[t] < V, "token out of range");
            if (cnt) cnt[tok[t]] += 1;
            if (nll) *nll -= log(p[tok[t]]);
            n++;
        }
    }
    free(tok);
    data_loader_close(l);
    return n;
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: unigram_baseline DATA_DIR");
    data_info info;
    CHECK_OK(data_read_info(argv[1], &info), "data dir");
    int V = info.vocab_size;
    double *cnt = calloc(V, sizeof(double)), *p = calloc(V, sizeof(double)), nll = 0;
    long long n = count(argv[1], "train", cnt, V, NULL, NULL);
    for (int v = 0; v < V; v++) p[v] = (cnt[v] + 1) / (double)(n + V);
    long long m = count(argv[1], "val", NULL, V, &nll, p);
    printf("unigram baseline: val loss %.4f nats/token (train %lld tokens, val %lld tokens, V %d)\n", nll / m, n, m, V);
    free(cnt); free(p);
    return 0;
}
