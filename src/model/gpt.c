/* gpt.c — GPT-2 forward/backward over an ops_table (see gpt.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gpt.h"
#include "../base/rng.h"

const char *const gpt_tensor_names[GPT_NUM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
    "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb", "headw", "headb"};
const int gpt_tensor_decay[GPT_NUM_TENSORS] = {0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};

rl_status gpt_config_named(gpt_config *cfg, const char *name) {
    if (!name) return rl_fail(RL_EINVAL, "no model config name");
    if (!strcmp(name, "tiny")) { cfg->L = 4; cfg->NH = 4; cfg->C = 256; }
    else if (!strcmp(name, "small")) { cfg->L = 6; cfg->NH = 6; cfg->C = 384; }
    else if (!strcmp(name, "gpt2")) { cfg->L = 12; cfg->NH = 12; cfg->C = 768; }
    else return rl_fail(RL_EINVAL, "unknown model config '%s' (choose tiny, small or gpt2)", name);
    return RL_OK;
}

static void tensor_sizes(const gpt_config *c, size_t s[GPT_NUM_TENSORS]) {
    size_t L = c->L, C = c->C, V = c->V, T = c->maxT;
    s[0] = V * C; s[1] = T * C; s[2] = L * C; s[3] = L * C;
    s[4] = L * 3 * C * C; s[5] = L * 3 * C; s[6] = L * C * C; s[7] = L * C;
    s[8] = L * C; s[9] = L * C; s[10] = L * 4 * C * C; s[11] = L * 4 * C;
    s[12] = L * C * 4 * C; s[13] = L * C; s[14] = C; s[15] = C; s[16] = C; s[17] = 1;
}

size_t gpt_num_params(const gpt_config *cfg) {
    size_t s[GPT_NUM_TENSORS], n = 0;
    tensor_sizes(cfg, s);
    for (int i = 0; i < GPT_NUM_TENSORS; i++) n += s[i];
    return n;
}

static void point_tensors(gpt_tensors *t, float *base, const size_t s[GPT_NUM_TENSORS]) {
    float **p[GPT_NUM_TENSORS] = {&t->wte, &t->wpe, &t->ln1w, &t->ln1b, &t->qkvw, &t->qkvb, &t->attprojw,
                                  &t->attprojb, &t->ln2w, &t->ln2b, &t->fcw, &t->fcb, &t->fcprojw, &t->fcprojb,
                                  &t->lnfw, &t->lnfb, &t->headw, &t->headb};
    for (int i = 0; i < GPT_NUM_TENSORS; i++) { *p[i] = base; base += s[i]; }
}

static size_t act_sizes(const gpt_config *c, int B, int T, size_t s[GPT_NUM_ACTS]) {
    size_t L = c->L, C = c->C, V = c->V, NH = c->NH, N = (size_t)B * T;
    size_t k = 0;
    s[k++] = N * C;                 /* encoded */
    s[k++] = L * N * C;             /* ln1 */
    s[k++] = L * N;                 /* ln1_mean */
    s[k++] = L * N;                 /* ln1_rstd */
    s[k++] = L * N * 3 * C;         /* qkv */
    s[k++] = L * N * C;             /* atty */
    s[k++] = L * B * NH * T * T;    /* att */
    s[k++] = L * N * C;             /* attproj */
    s[k++] = L * N * C;             /* residual2 */
    s[k++] = L * N * C;             /* ln2 */
    s[k++] = L * N;                 /* ln2_mean */
    s[k++] = L * N;                 /* ln2_rstd */
    s[k++] = L * N * 4 * C;         /* fch */
    s[k++] = L * N * 4 * C;         /* fch_gelu */
    s[k++] = L * N * C;             /* fcproj */
    s[k++] = L * N * C;             /* residual3 */
    s[k++] = N * C;                 /* lnf */
    s[k++] = N;                     /* lnf_mean */
    s[k++] = N;                     /* lnf_rstd */
    s[k++] = N * V;                 /* logits */
    s[k++] = N;                     /* lse */
    s[k++] = N;                     /* logp */
    size_t n = 0;
    for (int i = 0; i < GPT_NUM_ACTS; i++) n += s[i];
    return n;
}

static void point_acts(gpt_acts *a, float *base, const size_t s[GPT_NUM_ACTS]) {
    float **p[GPT_NUM_ACTS] = {&a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->att,
                               &a->attproj, &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch,
                               &a->fch_gelu, &a->fcproj, &a->residual3, &a->lnf, &a->lnf_mean, &a->lnf_rstd,
                               &a->logits, &a->lse, &a->logp};
    for (int i = 0; i < GPT_NUM_ACTS; i++) { *p[i] = base; base += s[i]; }
}

#define GPT_NUM_GACTS 10
static size_t gact_sizes(const gpt_config *c, int B, int T, size_t s[GPT_NUM_GACTS]) {
    size_t C = c->C, NH = c->NH, N = (size_t)B * T;
    size_t v[GPT_NUM_GACTS] = {N * C, N * C, N * C, N * 3 * C, N * C, B * NH * T * T, N * 4 * C, N * 4 * C, N * C, N};
    size_t n = 0;
    for (int i = 0; i < GPT_NUM_GACTS; i++) { s[i] = v[i]; n += v[i]; }
    return n;
}

static void point_gacts(gpt_grad_acts *d, float *base, const size_t s[GPT_NUM_GACTS]) {
    float **p[GPT_NUM_GACTS] = {&d->dresidual, &d->dlnf, &d->dln, &d->dqkv, &d->datty, &d->datt,
                                &d->dfch, &d->dfch_gelu, &d->dres2, &d->dlogp};
    for (int i = 0; i < GPT_NUM_GACTS; i++) { *p[i] = base; base += s[i]; }
}

static void *alloc_floats(size_t n) {
    /* 64-byte aligned for the vector loops; zeroed */
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) return NULL;
    memset(p, 0, n * sizeof(float));
    return p;
}

rl_status gpt_init(gpt_model *m, const gpt_config *cfg, int max_B, int max_T, const ops_table *ops, uint64_t seed) {
    RL_TRY(gpt_init_empty(m, cfg, max_B, max_T, ops));
    /* GPT-2 init: weights N(0, 0.02); the projections into the residual stream
     * scaled by 1/sqrt(2L) so the stream's variance does not grow with depth. */
    rl_rng rng;
    rl_rng_seed(&rng, seed);
    float resid_std = 0.02f / sqrtf(2.0f * cfg->L);
    const float stds[GPT_NUM_TENSORS] = {0.02f, 0.02f, 0, 0, 0.02f, 0, resid_std, 0, 0, 0,
                                         0.02f, 0, resid_std, 0, 0, 0, 0.02f, 0};
    const int ones[GPT_NUM_TENSORS] = {0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    float *p = m->params;
    for (int i = 0; i < GPT_NUM_TENSORS; i++) {
        for (size_t j = 0; j < m->tensor_size[i]; j++)
            p[j] = ones[i] ? 1.0f : stds[i] > 0 ? stds[i] * rl_rng_normal(&rng) : 0.0f;
        p += m->tensor_size[i];
    }
    return RL_OK;
}

rl_status gpt_init_empty(gpt_model *m, const gpt_config *cfg, int max_B, int max_T, const ops_table *ops) {
    memset(m, 0, sizeof *m);
    if (cfg->L < 1 || cfg->NH < 1 || cfg->C < 1 || cfg->C % cfg->NH || cfg->V < 1 || cfg->maxT < 1)
        return rl_fail(RL_EINVAL, "bad GPT config L=%d NH=%d C=%d V=%d maxT=%d (C must be a multiple of NH)",
                       cfg->L, cfg->NH, cfg->C, cfg->V, cfg->maxT);
    if (max_B < 1 || max_T < 1 || max_T > cfg->maxT)
        return rl_fail(RL_EINVAL, "bad plan B=%d T=%d (T must be in 1..%d)", max_B, max_T, cfg->maxT);
    m->cfg = *cfg;
    m->ops = ops ? ops : ops_get("fast");
    tensor_sizes(cfg, m->tensor_size);
    m->num_params = gpt_num_params(cfg);
    m->params = alloc_floats(m->num_params);
    m->grads = alloc_floats(m->num_params);
    m->max_B = max_B;
    m->max_T = max_T;
    size_t as[GPT_NUM_ACTS], gs[GPT_NUM_GACTS];
    size_t na = act_sizes(cfg, max_B, max_T, as), ng = gact_sizes(cfg, max_B, max_T, gs);
    m->act_mem = alloc_floats(na);
    m->gact_mem = alloc_floats(ng);
    size_t NT = (size_t)max_B * max_T;
    m->inp_copy = calloc(NT, sizeof(int));
    m->tgt_copy = calloc(NT, sizeof(int));
    m->w_copy = calloc(NT, sizeof(float));
    if (!m->params || !m->grads || !m->act_mem || !m->gact_mem || !m->inp_copy || !m->tgt_copy || !m->w_copy) {
        gpt_free(m);
        return rl_fail(RL_ENOMEM, "cannot allocate the GPT (%zu params, %zu activation floats)", m->num_params, na + ng);
    }
    point_tensors(&m->w, m->params, m->tensor_size);
    point_tensors(&m->g, m->grads, m->tensor_size);
    point_acts(&m->a, m->act_mem, as);
    point_gacts(&m->d, m->gact_mem, gs);
    m->loss = -1.0f;
    return RL_OK;
}

void gpt_free(gpt_model *m) {
    free(m->params); free(m->grads); free(m->act_mem); free(m->gact_mem);
    free(m->inp_copy); free(m->tgt_copy); free(m->w_copy);
    free(m->kcache); free(m->vcache); free(m->dec_mem); free(m->half); free(m->dec_priv); free(m->q8); free(m->q8_scale);
    memset(m, 0, sizeof *m);
}

void gpt_zero_grad(gpt_model *m) { memset(m->grads, 0, m->num_params * sizeof(float)); }

/* Re-points the activation views for the current (B, T): tensors are packed
 * tightly for this shape inside the block planned for (max_B, max_T). */
static void set_shape(gpt_model *m, int B, int T) {
    CHECK(B >= 1 && B <= m->max_B && T >= 1 && T <= m->max_T, "batch %dx%d outside the planned %dx%d", B, T, m->max_B, m->max_T);
    if (m->B == B && m->T == T) return;
    size_t as[GPT_NUM_ACTS], gs[GPT_NUM_GACTS];
    act_sizes(&m->cfg, B, T, as);
    gact_sizes(&m->cfg, B, T, gs);
    point_acts(&m->a, m->act_mem, as);
    point_gacts(&m->d, m->gact_mem, gs);
    m->B = B;
    m->T = T;
}

static void forward_body(gpt_model *m, const int *inputs, int B, int T) {
    set_shape(m, B, T);
    const ops_table *op = m->ops;
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, V = m->cfg.V;
    size_t N = (size_t)B * T;
    for (size_t i = 0; i < N; i++) CHECK(inputs[i] >= 0 && inputs[i] < V, "token id %d at %zu outside [0,%d)", inputs[i], i, V);
    memcpy(m->inp_copy, inputs, N * sizeof(int));
    m->inputs = m->inp_copy;
    gpt_acts *a = &m->a;
    gpt_tensors *w = &m->w;
    op->encoder_forward(a->encoded, m->inp_copy, w->wte, w->wpe, B, T, C);
    /* exact mode: row-independent kernels, so the decode step can match them (gpt_set_exact) */
#define mm(out, inp, w_, b_, N_, C_, OC_) \
    (m->exact ? op->matmul_forward_exact(out, inp, w_, b_, N_, C_, OC_, T, 0) : op->matmul_forward(out, inp, w_, b_, N_, C_, OC_))
    void (*attn)(float *, float *, const float *, int, int, int, int) = m->exact ? op->attention_forward_exact : op->attention_forward;
    for (int l = 0; l < L; l++) {
        const float *residual = l == 0 ? a->encoded : a->residual3 + (l - 1) * N * C;
        float *ln1 = a->ln1 + l * N * C, *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
        float *qkv = a->qkv + l * N * 3 * C, *atty = a->atty + l * N * C;
        float *att = a->att + (size_t)l * B * NH * T * T, *attproj = a->attproj + l * N * C;
        float *residual2 = a->residual2 + l * N * C, *ln2 = a->ln2 + l * N * C;
        float *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;
        float *fch = a->fch + l * N * 4 * C, *fch_gelu = a->fch_gelu + l * N * 4 * C;
        float *fcproj = a->fcproj + l * N * C, *residual3 = a->residual3 + l * N * C;
        op->layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, w->ln1w + l * C, w->ln1b + l * C, (int)N, C);
        mm(qkv, ln1, w->qkvw + (size_t)l * 3 * C * C, w->qkvb + l * 3 * C, (int)N, C, 3 * C);
        attn(atty, att, qkv, B, T, C, NH);
        mm(attproj, atty, w->attprojw + (size_t)l * C * C, w->attprojb + l * C, (int)N, C, C);
        op->residual_forward(residual2, residual, attproj, (int)(N * C));
        op->layernorm_forward(ln2, ln2_mean, ln2_rstd, residual2, w->ln2w + l * C, w->ln2b + l * C, (int)N, C);
        mm(fch, ln2, w->fcw + (size_t)l * 4 * C * C, w->fcb + l * 4 * C, (int)N, C, 4 * C);
        op->gelu_forward(fch_gelu, fch, (int)(N * 4 * C));
        mm(fcproj, fch_gelu, w->fcprojw + (size_t)l * C * 4 * C, w->fcprojb + l * C, (int)N, 4 * C, C);
        op->residual_forward(residual3, residual2, fcproj, (int)(N * C));
    }
    op->layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, a->residual3 + (L - 1) * N * C, w->lnfw, w->lnfb, (int)N, C);
#undef mm
}

void gpt_forward_hidden(gpt_model *m, const int *inputs, int B, int T) {
    forward_body(m, inputs, B, T);
    m->skip_lm_head = 1;
    m->has_targets = 0;
    m->loss = -1.0f;
}

float gpt_forward(gpt_model *m, const int *inputs, const int *targets, const float *loss_weight, int B, int T) {
    forward_body(m, inputs, B, T);
    m->skip_lm_head = 0;
    int C = m->cfg.C, V = m->cfg.V, N = B * T;
    gpt_acts *a = &m->a;
    if (m->exact) m->ops->matmul_forward_exact(a->logits, a->lnf, m->w.wte, NULL, N, C, V, T, 0);
    else m->ops->matmul_forward(a->logits, a->lnf, m->w.wte, NULL, N, C, V);
    m->has_targets = targets != NULL;
    if (!targets) {
        m->ops->logsoftmax_forward(a->lse, NULL, a->logits, NULL, N, V);
        m->loss = -1.0f;
        return -1.0f;
    }
    for (int i = 0; i < N; i++) {
        CHECK(targets[i] < V, "target id %d at %d outside [0,%d)", targets[i], i, V);
        m->tgt_copy[i] = targets[i];
        m->w_copy[i] = targets[i] < 0 ? 0.0f : loss_weight ? loss_weight[i] : 1.0f;
    }
    m->ops->logsoftmax_forward(a->lse, a->logp, a->logits, m->tgt_copy, N, V);
    double ws = 0, ls = 0;
    for (int i = 0; i < N; i++) { ws += m->w_copy[i]; ls -= (double)m->w_copy[i] * a->logp[i]; }
    m->weight_sum = ws;
    m->loss = ws > 0 ? (float)(ls / ws) : 0.0f;
    return m->loss;
}

void gpt_backward_begin(gpt_model *m) {
    CHECK(m->B > 0, "gpt_backward_begin before any forward");
    memset(m->d.dlnf, 0, (size_t)m->B * m->T * m->cfg.C * sizeof(float));
}

static void backward_rest(gpt_model *m, int has_dlogits);

void gpt_backward_end(gpt_model *m, const float *dlogp) {
    if (dlogp) {
        CHECK(!m->skip_lm_head && m->has_targets, "gpt_backward_end with dlogp needs gpt_forward with targets");
        /* dlogits written in place over the logits (they are not needed after this) */
        m->ops->logsoftmax_backward(m->a.logits, m->a.logits, m->a.lse, m->tgt_copy, dlogp, m->B * m->T, m->cfg.V);
    }
    backward_rest(m, dlogp != NULL);
}

void gpt_backward_end_dlogits(gpt_model *m) {
    CHECK(!m->skip_lm_head, "gpt_backward_end_dlogits needs gpt_forward (with the LM head)");
    backward_rest(m, 1);
}

static void backward_rest(gpt_model *m, int has_dlogits) {
    const ops_table *op = m->ops;
    int B = m->B, T = m->T, L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, V = m->cfg.V;
    size_t N = (size_t)B * T;
    gpt_acts *a = &m->a;
    gpt_grad_acts *d = &m->d;
    gpt_tensors *w = &m->w, *g = &m->g;
    if (has_dlogits) op->matmul_backward(d->dlnf, g->wte, NULL, a->logits, a->lnf, w->wte, (int)N, C, V);
    memset(d->dresidual, 0, N * C * sizeof(float));
    op->layernorm_backward(d->dresidual, g->lnfw, g->lnfb, d->dlnf, a->residual3 + (L - 1) * N * C, w->lnfw,
                           a->lnf_mean, a->lnf_rstd, (int)N, C);
    /* d->dresidual holds dLoss/d(residual stream) between the blocks: a residual
     * add passes its gradient through unchanged, so each branch's backward just
     * accumulates into it. */
    for (int l = L - 1; l >= 0; l--) {
        const float *residual = l == 0 ? a->encoded : a->residual3 + (l - 1) * N * C;
        float *ln1 = a->ln1 + l * N * C, *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
        float *qkv = a->qkv + l * N * 3 * C, *atty = a->atty + l * N * C;
        float *att = a->att + (size_t)l * B * NH * T * T;
        float *residual2 = a->residual2 + l * N * C, *ln2 = a->ln2 + l * N * C;
        float *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;
        float *fch = a->fch + l * N * 4 * C, *fch_gelu = a->fch_gelu + l * N * 4 * C;
        /* MLP branch */
        memset(d->dfch_gelu, 0, N * 4 * C * sizeof(float));
        op->matmul_backward(d->dfch_gelu, g->fcprojw + (size_t)l * C * 4 * C, g->fcprojb + l * C, d->dresidual, fch_gelu,
                            w->fcprojw + (size_t)l * C * 4 * C, (int)N, 4 * C, C);
        memset(d->dfch, 0, N * 4 * C * sizeof(float));
        op->gelu_backward(d->dfch, fch, d->dfch_gelu, (int)(N * 4 * C));
        memset(d->dln, 0, N * C * sizeof(float));
        op->matmul_backward(d->dln, g->fcw + (size_t)l * 4 * C * C, g->fcb + l * 4 * C, d->dfch, ln2,
                            w->fcw + (size_t)l * 4 * C * C, (int)N, C, 4 * C);
        op->layernorm_backward(d->dresidual, g->ln2w + l * C, g->ln2b + l * C, d->dln, residual2, w->ln2w + l * C,
                               ln2_mean, ln2_rstd, (int)N, C);
        /* attention branch */
        memset(d->datty, 0, N * C * sizeof(float));
        op->matmul_backward(d->datty, g->attprojw + (size_t)l * C * C, g->attprojb + l * C, d->dresidual, atty,
                            w->attprojw + (size_t)l * C * C, (int)N, C, C);
        memset(d->dqkv, 0, N * 3 * C * sizeof(float));
        op->attention_backward(d->dqkv, d->datt, d->datty, qkv, att, B, T, C, NH);
        memset(d->dln, 0, N * C * sizeof(float));
        op->matmul_backward(d->dln, g->qkvw + (size_t)l * 3 * C * C, g->qkvb + l * 3 * C, d->dqkv, ln1,
                            w->qkvw + (size_t)l * 3 * C * C, (int)N, C, 3 * C);
        op->layernorm_backward(d->dresidual, g->ln1w + l * C, g->ln1b + l * C, d->dln, residual, w->ln1w + l * C,
                               ln1_mean, ln1_rstd, (int)N, C);
    }
    op->encoder_backward(g->wte, g->wpe, d->dresidual, m->inputs, B, T, C);
}

void gpt_backward(gpt_model *m) {
    CHECK(m->has_targets, "gpt_backward needs a gpt_forward with targets");
    size_t N = (size_t)m->B * m->T;
    for (size_t i = 0; i < N; i++) m->d.dlogp[i] = m->weight_sum > 0 ? (float)(-m->w_copy[i] / m->weight_sum) : 0.0f;
    gpt_backward_begin(m);
    gpt_backward_end(m, m->d.dlogp);
}

void gpt_scalar_forward(gpt_model *m, const int *pos, float *out) {
    int C = m->cfg.C;
    for (int b = 0; b < m->B; b++) {
        CHECK(pos[b] >= 0 && pos[b] < m->T, "scalar head position %d outside [0,%d)", pos[b], m->T);
        const float *h = m->a.lnf + ((size_t)b * m->T + pos[b]) * C;
        double s = m->w.headb[0];
        for (int c = 0; c < C; c++) s += (double)m->w.headw[c] * h[c];
        out[b] = (float)s;
    }
}

void gpt_scalar_backward(gpt_model *m, const int *pos, const float *dout) {
    int C = m->cfg.C;
    for (int b = 0; b < m->B; b++) {
        CHECK(pos[b] >= 0 && pos[b] < m->T, "scalar head position %d outside [0,%d)", pos[b], m->T);
        size_t off = ((size_t)b * m->T + pos[b]) * C;
        const float *h = m->a.lnf + off;
        float *dh = m->d.dlnf + off;
        for (int c = 0; c < C; c++) {
            m->g.headw[c] += dout[b] * h[c];
            dh[c] += dout[b] * m->w.headw[c];
        }
        m->g.headb[0] += dout[b];
    }
}

int gpt_param_groups(const gpt_model *m, optim_group *out, int decay_embeddings) {
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_TENSORS; i++) {
        out[i].offset = off;
        out[i].size = m->tensor_size[i];
        out[i].decay = gpt_tensor_decay[i] || (decay_embeddings && i <= 1);
        off += m->tensor_size[i];
    }
    return GPT_NUM_TENSORS;
}

/* ---- KV-cache decoding ------------------------------------------------------ */

rl_status gpt_cache_plan(gpt_model *m, int B) {
    if (B < 1) return rl_fail(RL_EINVAL, "cache batch %d < 1", B);
    if (m->cfg.C / m->cfg.NH > 512) return rl_fail(RL_EUNSUPPORTED, "KV-cache decoding supports head sizes up to 512");
    if (m->kcache && m->cache_B >= B) return RL_OK;
    free(m->kcache); free(m->vcache); free(m->dec_mem);
    size_t L = m->cfg.L, C = m->cfg.C, T = m->cfg.maxT;
    m->kcache = alloc_floats(L * B * T * C);
    m->vcache = alloc_floats(L * B * T * C);
    /* x, ln, qkv(3C), atty, tmp, fch(4C), fch_gelu(4C), mean, rstd; then the exact step's attention rows (NH*maxT) */
    m->dec_mem = alloc_floats((size_t)B * (C * 15 + 2) + (size_t)B * m->cfg.NH * T);
    if (!m->kcache || !m->vcache || !m->dec_mem) {
        free(m->kcache); free(m->vcache); free(m->dec_mem);
        m->kcache = m->vcache = m->dec_mem = NULL;
        m->cache_B = 0;
        return rl_fail(RL_ENOMEM, "cannot allocate the KV cache for %d sequences", B);
    }
    m->cache_B = B;
    return RL_OK;
}

rl_status gpt_decode_half(gpt_model *m, int on) {
    if (!on) { free(m->half); m->half = NULL; return RL_OK; }
    if (m->q8) gpt_decode_int8(m, 0);
    if (!m->half) m->half = malloc(m->num_params * sizeof(uint16_t));
    if (!m->half) return rl_fail(RL_ENOMEM, "cannot allocate the half-precision weights");
    ops_f32_to_f16_n(m->half, m->params, m->num_params);
    return RL_OK;
}

/* matmul for decoding: fp32 weights, or their half snapshot at the same offset */
static void dec_matmul(gpt_model *m, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (m->half) m->ops->matmul_forward_h(out, inp, m->half + (w - m->params), bias, N, C, OC);
    else m->ops->matmul_forward(out, inp, w, bias, N, C, OC);
}

void gpt_set_exact(gpt_model *m, int on) { m->exact = on != 0; }

/* gpt_cache_step in exact mode: the same ops, in the same order, as forward_body
 * + gpt_forward's LM head do for the row at position pos (see ops.h, "exact"). */
static void cache_step_exact(gpt_model *m, const int *tokens, int B, int pos, float *logits) {
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, V = m->cfg.V, maxT = m->cfg.maxT;
    const ops_table *op = m->ops;
    gpt_tensors *w = &m->w;
    float *x = m->dec_mem, *ln = x + (size_t)B * C, *qkv = ln + (size_t)B * C, *atty = qkv + (size_t)B * 3 * C;
    float *tmp = atty + (size_t)B * C, *fch = tmp + (size_t)B * C, *fchg = fch + (size_t)B * 4 * C;
    float *mean = fchg + (size_t)B * 4 * C, *rstd = mean + B;
    float *att = m->dec_mem + (size_t)m->cache_B * (C * 15 + 2); /* (B, NH, pos+1) */
    for (int b = 0; b < B; b++) {
        CHECK(tokens[b] >= 0 && tokens[b] < V, "token id %d outside [0,%d)", tokens[b], V);
        for (int c = 0; c < C; c++) x[(size_t)b * C + c] = w->wte[(size_t)tokens[b] * C + c] + w->wpe[(size_t)pos * C + c];
    }
    for (int l = 0; l < L; l++) {
        op->layernorm_forward(ln, mean, rstd, x, w->ln1w + l * C, w->ln1b + l * C, B, C);
        op->matmul_forward_exact(qkv, ln, w->qkvw + (size_t)l * 3 * C * C, w->qkvb + l * 3 * C, B, C, 3 * C, 0, pos);
        float *kc = m->kcache + (size_t)l * m->cache_B * maxT * C, *vc = m->vcache + (size_t)l * m->cache_B * maxT * C;
        for (int b = 0; b < B; b++) {
            memcpy(kc + ((size_t)b * maxT + pos) * C, qkv + (size_t)b * 3 * C + C, C * sizeof(float));
            memcpy(vc + ((size_t)b * maxT + pos) * C, qkv + (size_t)b * 3 * C + 2 * C, C * sizeof(float));
        }
        op->attention_step(atty, att, qkv, kc, vc, B, pos, maxT, C, NH);
        op->matmul_forward_exact(tmp, atty, w->attprojw + (size_t)l * C * C, w->attprojb + l * C, B, C, C, 0, pos);
        op->residual_forward(x, x, tmp, B * C);
        op->layernorm_forward(ln, mean, rstd, x, w->ln2w + l * C, w->ln2b + l * C, B, C);
        op->matmul_forward_exact(fch, ln, w->fcw + (size_t)l * 4 * C * C, w->fcb + l * 4 * C, B, C, 4 * C, 0, pos);
        op->gelu_forward(fchg, fch, B * 4 * C);
        op->matmul_forward_exact(tmp, fchg, w->fcprojw + (size_t)l * C * 4 * C, w->fcprojb + l * C, B, 4 * C, C, 0, pos);
        op->residual_forward(x, x, tmp, B * C);
    }
    op->layernorm_forward(ln, mean, rstd, x, w->lnfw, w->lnfb, B, C);
    op->matmul_forward_exact(logits, ln, w->wte, NULL, B, C, V, 0, pos);
}

void gpt_cache_step(gpt_model *m, const int *tokens, int B, int pos, float *logits) {
    CHECK(m->kcache && B <= m->cache_B, "gpt_cache_step: plan the cache for %d sequences first", B);
    if (m->exact && !m->half && !m->q8) {
        CHECK(pos >= 0 && pos < m->cfg.maxT, "position %d outside the context [0,%d)", pos, m->cfg.maxT);
        cache_step_exact(m, tokens, B, pos, logits);
        return;
    }
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, V = m->cfg.V, maxT = m->cfg.maxT, hs = C / NH;
    CHECK(pos >= 0 && pos < maxT, "position %d outside the context [0,%d)", pos, maxT);
    if (m->half || m->q8) { gpt_cache_step_lowp(m, tokens, B, pos, logits); return; }
    const ops_table *op = m->ops;
    gpt_tensors *w = &m->w;
    float *x = m->dec_mem, *ln = x + (size_t)B * C, *qkv = ln + (size_t)B * C, *atty = qkv + (size_t)B * 3 * C;
    float *tmp = atty + (size_t)B * C, *fch = tmp + (size_t)B * C, *fchg = fch + (size_t)B * 4 * C;
    float *mean = fchg + (size_t)B * 4 * C, *rstd = mean + B;
    for (int b = 0; b < B; b++) {
        CHECK(tokens[b] >= 0 && tokens[b] < V, "token id %d outside [0,%d)", tokens[b], V);
        for (int c = 0; c < C; c++) x[(size_t)b * C + c] = w->wte[(size_t)tokens[b] * C + c] + w->wpe[(size_t)pos * C + c];
    }
    float scale = 1.0f / sqrtf((float)hs);
    for (int l = 0; l < L; l++) {
        op->layernorm_forward(ln, mean, rstd, x, w->ln1w + l * C, w->ln1b + l * C, B, C);
        dec_matmul(m, qkv, ln, w->qkvw + (size_t)l * 3 * C * C, w->qkvb + l * 3 * C, B, C, 3 * C);
        float *kc = m->kcache + (size_t)l * m->cache_B * maxT * C, *vc = m->vcache + (size_t)l * m->cache_B * maxT * C;
        for (int b = 0; b < B; b++) {
            memcpy(kc + ((size_t)b * maxT + pos) * C, qkv + (size_t)b * 3 * C + C, C * sizeof(float));
            memcpy(vc + ((size_t)b * maxT + pos) * C, qkv + (size_t)b * 3 * C + 2 * C, C * sizeof(float));
        }
#pragma omp parallel for collapse(2) schedule(static) if((size_t)B * C * (pos + 1) >= 32768)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + (size_t)b * 3 * C + h * hs;
                float *o = atty + (size_t)b * C + h * hs;
                /* online softmax over keys 0..pos (no scratch row needed) */
                float mx = -INFINITY, sum = 0;
                float acc[512]; /* hs <= 512, checked in gpt_cache_plan */
                for (int i = 0; i < hs; i++) acc[i] = 0;
                for (int t2 = 0; t2 <= pos; t2++) {
                    const float *k = kc + ((size_t)b * maxT + t2) * C + h * hs;
                    const float *v = vc + ((size_t)b * maxT + t2) * C + h * hs;
                    float dot = 0;
                    for (int i = 0; i < hs; i++) dot += q[i] * k[i];
                    dot *= scale;
                    if (dot > mx) {
                        float r = expf(mx - dot);
                        sum *= r;
                        for (int i = 0; i < hs; i++) acc[i] *= r;
                        mx = dot;
                    }
                    float e = expf(dot - mx);
                    sum += e;
                    for (int i = 0; i < hs; i++) acc[i] += e * v[i];
                }
                for (int i = 0; i < hs; i++) o[i] = acc[i] / sum;
            }
        dec_matmul(m, tmp, atty, w->attprojw + (size_t)l * C * C, w->attprojb + l * C, B, C, C);
        op->residual_forward(x, x, tmp, B * C);
        op->layernorm_forward(ln, mean, rstd, x, w->ln2w + l * C, w->ln2b + l * C, B, C);
        dec_matmul(m, fch, ln, w->fcw + (size_t)l * 4 * C * C, w->fcb + l * 4 * C, B, C, 4 * C);
        op->gelu_forward(fchg, fch, B * 4 * C);
        dec_matmul(m, tmp, fchg, w->fcprojw + (size_t)l * C * 4 * C, w->fcprojb + l * C, B, 4 * C, C);
        op->residual_forward(x, x, tmp, B * C);
    }
    op->layernorm_forward(ln, mean, rstd, x, w->lnfw, w->lnfb, B, C);
    dec_matmul(m, logits, ln, w->wte, NULL, B, C, V);
}
