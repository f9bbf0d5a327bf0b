/* ckpt_cmp A B — exit 0 when two checkpoints hold bit-identical training
 * state: config, tokenizer identity, weights, AdamW moments and step, and the
 * train state (step, RNG, loader, extra). Metadata (provenance: command line,
 * time, parent hash) is deliberately ignored — it differs between two runs
 * that trained identically. Prints the first difference. */
#include <stdio.h>
#include <string.h>
#include "../../src/model/checkpoint.h"

static int load(const char *p, gpt_model *m, optim_adamw *o, ckpt_info *info) {
    memset(m, 0, sizeof *m);
    memset(o, 0, sizeof *o);
    rl_status s = ckpt_load(p, m, 1, 0, ops_get("ref"), o, 0.9f, 0.95f, 1e-8f, 0.1f, 0, info);
    if (s != RL_OK) { fprintf(stderr, "ckpt_cmp: %s\n", rl_error()); return 0; }
    return 1;
}

int main(int argc, char **argv) {
    /* --weights: config, tokenizer identity and weights only (a policy saved without its optimizer) */
    int weights_only = argc == 4 && !strcmp(argv[1], "--weights");
    if (weights_only) { argv++; argc--; }
    if (argc != 3) { fprintf(stderr, "usage: ckpt_cmp [--weights] A B\n"); return 2; }
    gpt_model a, b;
    optim_adamw oa, ob;
    ckpt_info ia, ib;
    if (!load(argv[1], &a, &oa, &ia) || !load(argv[2], &b, &ob, &ib)) return 2;
    int diff = 0;
#define D(cond, what) do { if (!diff && (cond)) { fprintf(stderr, "ckpt_cmp: %s differ\n", what); diff = 1; } } while (0)
    D(memcmp(&ia.cfg, &ib.cfg, sizeof ia.cfg) != 0, "configs");
    D(strcmp(ia.tok_id, ib.tok_id) != 0, "tokenizer identities");
    D(a.num_params != b.num_params || memcmp(a.params, b.params, a.num_params * sizeof(float)) != 0, "weights");
    if (weights_only) {
        if (!diff) printf("ckpt_cmp: weights identical\n");
        gpt_free(&a); gpt_free(&b);
        optim_adamw_free(&oa); optim_adamw_free(&ob);
        return diff;
    }
    D(ia.has_optim != ib.has_optim || ia.adam_t != ib.adam_t, "AdamW step counts");
    if (ia.has_optim && ib.has_optim) {
        D(memcmp(oa.m, ob.m, oa.n * sizeof(float)) != 0, "AdamW first moments");
        D(memcmp(oa.v, ob.v, oa.n * sizeof(float)) != 0, "AdamW second moments");
    }
    D(ia.has_train != ib.has_train, "train-state presence");
    if (ia.has_train && ib.has_train) {
        D(ia.train.step != ib.train.step, "steps");
        D(memcmp(&ia.train.rng, &ib.train.rng, sizeof ia.train.rng) != 0, "RNG states");
        D(memcmp(ia.train.loader, ib.train.loader, sizeof ia.train.loader) != 0, "loader positions");
        D(memcmp(ia.train.extra, ib.train.extra, sizeof ia.train.extra) != 0, "trainer extras");
    }
    gpt_free(&a); gpt_free(&b);
    optim_adamw_free(&oa); optim_adamw_free(&ob);
    return diff;
}
