/* decode_bench — speed of KV-cache sampling alone (no checkpoint, no tokenizer):
 *
 *   build/tools/decode_bench CONFIG fp32|half|int8 [B] [tokens] [threads] [reps]
 *
 * A randomly initialised GPT (CONFIG tiny|small|gpt2, V=4096, maxT=256, the
 * shapes bench/train.sh samples from) generates `tokens` tokens (default 200)
 * for B rows (default 1) at temperature 1 with sampler_generate, `reps` times
 * (default 3). Prints per repetition: tokens/s by wall clock and by process CPU
 * time (user+sys of all threads: on a machine shared with other jobs the CPU
 * figure is the steadier one; with T threads busy the whole time, CPU tok/s is
 * wall tok/s divided by T), plus the load average. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../src/model/gpt.h"
#include "../../src/model/sampler.h"
#include "../../src/base/log.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    CHECK(argc >= 3, "usage: decode_bench tiny|small|gpt2 fp32|half|int8 [B] [tokens] [threads] [reps]");
    int B = argc > 3 ? atoi(argv[3]) : 1, ntok = argc > 4 ? atoi(argv[4]) : 200;
    int threads = argc > 5 ? atoi(argv[5]) : 2, reps = argc > 6 ? atoi(argv[6]) : 3;
    CHECK(B >= 1 && ntok >= 1 && ntok < 250 && reps >= 1, "bad B / tokens (< 250) / reps");
    ops_set_threads(threads);
    gpt_config cfg = {0};
    CHECK_OK(gpt_config_named(&cfg, argv[1]), "config");
    cfg.V = 4096;
    cfg.maxT = 256;
    gpt_model m;
    CHECK_OK(gpt_init(&m, &cfg, 1, 1, NULL, 7), "init");
    if (!strcmp(argv[2], "half")) CHECK_OK(gpt_decode_half(&m, 1), "half");
    else if (!strcmp(argv[2], "int8")) CHECK_OK(gpt_decode_int8(&m, 1), "int8");
    else CHECK(!strcmp(argv[2], "fp32"), "precision must be fp32, half or int8");
    int prompt[2] = {1, 2};
    const int **pr = malloc(sizeof(int *) * B);
    int *pl = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) { pr[b] = prompt; pl[b] = 2; }
    sampler_opts o;
    sampler_opts_default(&o);
    o.max_tokens = ntok;
    sampler_ws ws;
    CHECK_OK(sampler_ws_init(&ws, &m, B, ntok), "ws");
    for (int r = 0; r < reps; r++) {
        o.seed = (uint64_t)r + 1;
        double w0 = rl_now(), c0 = cpu_s();
        CHECK_OK(sampler_generate_ws(&m, &ws, pr, pl, B, &o, NULL, NULL), "generate");
        double w = rl_now() - w0, c = cpu_s() - c0;
        double n = 0;
        for (int b = 0; b < B; b++) n += ws.res.len[b];
        double la = 0;
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) { if (fscanf(f, "%lf", &la) != 1) la = 0; fclose(f); }
        printf("%s %s B=%d threads=%d: %.0f tok/s wall, %.0f tok/s per CPU-second (%.3f ms CPU/token), load %.2f\n",
               argv[1], argv[2], B, threads, n / w, n / c, 1e3 * c / n, la);
    }
    sampler_ws_free(&ws);
    free(pr); free(pl);
    gpt_free(&m);
    return 0;
}
