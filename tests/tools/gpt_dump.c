/* gpt_dump — writes what tests/ref/test_gpt.py compares against PyTorch.
 *
 *   build/tools/gpt_dump OUTDIR
 *
 * A small GPT (L2 NH4 C64 V97 maxT32), seeded weights and one batch (B3 T24)
 * with a per-position loss weight and one ignored target. For each kernel
 * table K in {ref, fast}:
 *   OUTDIR/logits_K.bin  float32 (B,T,V)      OUTDIR/grads_K.bin  float32 (num_params)
 *   OUTDIR/loss_K.txt    the loss             OUTDIR/traj_K.txt   10 losses of 10 AdamW steps
 *   OUTDIR/scalar_K.bin  float32 (B) scalar head at positions pos, then its gradient (num_params)
 * Shared: meta.txt "L NH C V maxT B T", params.bin (num_params, gpt.h tensor
 * order), inputs.bin / targets.bin int32 (B,T), weights.bin float32 (B,T),
 * pos.bin int32 (B). AdamW: lr from warm-up 2 + cosine to 0.1 over 10 steps,
 * peak 2e-3, betas (0.9, 0.95), eps 1e-8, wd 0.1 on matmul weights, clip 1.0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/model/gpt.h"
#include "../../src/optim/adamw.h"
#include "../../src/base/rng.h"

static void dump(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    CHECK(fwrite(p, 1, n, f) == n, "short write %s", path);
    fclose(f);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: gpt_dump OUTDIR");
    const char *dir = argv[1];
    gpt_config cfg = {2, 4, 64, 97, 32};
    enum { B = 3, T = 24 };
    int in[B * T], tg[B * T], pos[B] = {23, 5, 17};
    float w[B * T];
    rl_rng r;
    rl_rng_seed(&r, 1234);
    for (int i = 0; i < B * T; i++) {
        in[i] = (int)rl_rng_below(&r, cfg.V);
        tg[i] = (int)rl_rng_below(&r, cfg.V);
        w[i] = (float)(i % 4);  /* 0, 1, 2, 3: zero-weight positions too */
    }
    tg[7] = -1;
    const char *kinds[2] = {"ref", "fast"};
    for (int k = 0; k < 2; k++) {
        gpt_model m;
        CHECK_OK(gpt_init(&m, &cfg, B, T, ops_get(kinds[k]), 42), "init");
        /* perturb the LN and bias parameters too so their gradients are exercised */
        rl_rng pr;
        rl_rng_seed(&pr, 99);
        for (size_t i = 0; i < m.num_params; i++) m.params[i] += 0.02f * rl_rng_normal(&pr);
        if (k == 0) {
            char meta[256];
            int n = snprintf(meta, sizeof meta, "%d %d %d %d %d %d %d\n", cfg.L, cfg.NH, cfg.C, cfg.V, cfg.maxT, B, T);
            dump(dir, "meta.txt", meta, (size_t)n);
            dump(dir, "params.bin", m.params, m.num_params * sizeof(float));
            dump(dir, "inputs.bin", in, sizeof in);
            dump(dir, "targets.bin", tg, sizeof tg);
            dump(dir, "weights.bin", w, sizeof w);
            dump(dir, "pos.bin", pos, sizeof pos);
        }
        char name[64], txt[1024];
        gpt_zero_grad(&m);
        float loss = gpt_forward(&m, in, tg, w, B, T);
        snprintf(name, sizeof name, "logits_%s.bin", kinds[k]);
        dump(dir, name, m.a.logits, sizeof(float) * B * T * cfg.V);
        gpt_backward(&m);
        snprintf(name, sizeof name, "grads_%s.bin", kinds[k]);
        dump(dir, name, m.grads, m.num_params * sizeof(float));
        int n = snprintf(txt, sizeof txt, "%.9g\n", loss);
        snprintf(name, sizeof name, "loss_%s.txt", kinds[k]);
        dump(dir, name, txt, (size_t)n);

        /* scalar head: value and gradient of sum_b (b+1) * out[b] */
        float out[B], dout[B] = {1, 2, 3};
        gpt_zero_grad(&m);
        gpt_forward_hidden(&m, in, B, T);
        gpt_scalar_forward(&m, pos, out);
        gpt_backward_begin(&m);
        gpt_scalar_backward(&m, pos, dout);
        gpt_backward_end(&m, NULL);
        snprintf(name, sizeof name, "scalar_%s.bin", kinds[k]);
        float *buf = malloc(sizeof(float) * (B + m.num_params));
        memcpy(buf, out, sizeof out);
        memcpy(buf + B, m.grads, m.num_params * sizeof(float));
        dump(dir, name, buf, sizeof(float) * (B + m.num_params));
        free(buf);

        optim_adamw opt;
        optim_group g[GPT_NUM_TENSORS];
        CHECK_OK(optim_adamw_init(&opt, m.num_params, g, gpt_param_groups(&m, g, 0), 0.9f, 0.95f, 1e-8f, 0.1f), "adamw");
        optim_schedule sch = {2e-3f, 2, 10, 0.1f};
        n = 0;
        for (int s = 0; s < 10; s++) {
            gpt_zero_grad(&m);
            float l = gpt_forward(&m, in, tg, w, B, T);
            gpt_backward(&m);
            optim_clip_grad_norm(m.grads, m.num_params, 1.0f, 1.0f);
            optim_adamw_step(&opt, m.params, m.grads, optim_lr(&sch, s));
            n += snprintf(txt + n, sizeof txt - n, "%.9g\n", l);
        }
        snprintf(name, sizeof name, "traj_%s.txt", kinds[k]);
        dump(dir, name, txt, (size_t)n);
        optim_adamw_free(&opt);
        gpt_free(&m);
    }
    return 0;
}
