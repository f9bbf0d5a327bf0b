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
#include <math.h>
#include "../../src/model/gpt.h"
#include "../../src/model/sampler.h"
#include "../../src/base/log.h"
#include "../../src/base/rng.h"
#include "../../src/model/checkpoint.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void log_softmax(float *x, int V) {
    double mx = x[0], s = 0;
    for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    for (int v = 0; v < V; v++) s += exp(x[v] - mx);
    for (int v = 0; v < V; v++) x[v] = (float)(x[v] - mx - log(s));
}

static int diff(gpt_model *m, int B, int ntok) {
    int V = m->cfg.V;
    if (ntok > m->cfg.maxT) ntok = m->cfg.maxT;
    CHECK_OK(gpt_cache_plan(m, B), "plan");
    float *ref = malloc(sizeof(float) * (size_t)ntok * B * V), *lg = malloc(sizeof(float) * (size_t)B * V);
    int *tok = malloc(sizeof(int) * (size_t)ntok * B);
    rl_rng r;
    rl_rng_seed(&r, 3);
    for (int i = 0; i < ntok * B; i++) tok[i] = (int)rl_rng_below(&r, V);
    const char *names[3] = {"fp32", "half", "int8"};
    for (int p = 0; p < 3; p++) {
        if (p == 1) CHECK_OK(gpt_decode_half(m, 1), "half");
        if (p == 2) CHECK_OK(gpt_decode_int8(m, 1), "int8");
        double dp = 0, big = 0;
        for (int t = 0; t < ntok; t++) {
            float *out = p == 0 ? ref + (size_t)t * B * V : lg;
            gpt_cache_step(m, tok + (size_t)t * B, B, t, out);
            for (int b = 0; b < B; b++) {
                float *o = out + (size_t)b * V, *f = ref + ((size_t)t * B + b) * V;
                if (p == 0) { for (int v = 0; v < V; v++) big = fmax(big, fabs(o[v])); log_softmax(o, V); continue; }
                log_softmax(o, V);
                for (int v = 0; v < V; v++) dp = fmax(dp, fabs(o[v] - f[v]));
            }
        }
        if (p == 0) printf("fp32: largest |logit| %.3g over %d positions x %d rows\n", big, ntok, B);
        else printf("%s: max |log-softmax - fp32's| = %.3g\n", names[p], dp);
    }
    free(ref); free(lg); free(tok);
    gpt_free(m);
    return 0;
}

int main(int argc, char **argv) {
    CHECK(argc >= 3, "usage: decode_bench tiny|small|gpt2 fp32|half|int8 [B] [tokens] [threads] [reps]");
    int B = argc > 3 ? atoi(argv[3]) : 1, ntok = argc > 4 ? atoi(argv[4]) : 200;
    int threads = argc > 5 ? atoi(argv[5]) : 2, reps = argc > 6 ? atoi(argv[6]) : 3;
    CHECK(B >= 1 && ntok >= 1 && ntok < 250 && reps >= 1, "bad B / tokens (< 250) / reps");
    ops_set_threads(threads);
    gpt_config cfg = {0};
    gpt_model m;
    if (gpt_config_named(&cfg, argv[1]) == RL_OK) {
        cfg.V = 4096;
        cfg.maxT = 256;
        CHECK_OK(gpt_init(&m, &cfg, 1, 1, NULL, 7), "init");
    } else {
        CHECK_OK(ckpt_load(argv[1], &m, 1, 1, NULL, NULL, 0, 0, 0, 0, 0, NULL), "load %s", argv[1]);
    }
    if (!strcmp(argv[2], "diff")) return diff(&m, B, ntok);
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
