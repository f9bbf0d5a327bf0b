/* sft_dump — writes what tests/ref/test_sft.py compares against PyTorch: the
 * SFT loss and every gradient of one padded batch through the whole model.
 *
 *   build/tools/sft_dump OUTDIR
 *
 * A tokenizer trained here (BPE, 300 ids), four chat examples encoded by the
 * trainer's own code (trn_seqs_add: single-turn, multi-turn trained on every
 * assistant turn, multi-turn trained on the last one only, one truncated on
 * the left of its prompt, one with "<|end|>" typed as text by the user), each
 * with a record weight, padded into one (B, T) batch by sft_batch and run
 * through gpt_forward/gpt_backward (fast kernels). Files:
 *   meta.txt      "L NH C V maxT B T bos user assistant end"
 *   params.bin    float32 (num_params)        grads.bin  float32 (num_params)
 *   loss.txt      the loss
 *   seqs.txt      one line per example: "mode weight id id id ..." (the whole,
 *                 unpadded token sequence; mode 0 = every assistant turn, 1 = last)
 * PyTorch recomputes the mask from the token ids alone, runs each sequence
 * on its own (no padding), and must get the same loss and gradients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/train/sft.h"
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
    CHECK(argc == 2, "usage: sft_dump OUTDIR");
    const char *dir = argv[1];
    const char *corpus = "hello there general kenobi. the quick brown fox jumps over the lazy dog. "
                         "how are you today? i am fine, thank you. what is the capital of france? paris is.";
    size_t clen = strlen(corpus);
    tok_tokenizer *t;
    tok_train_opts to = {300, 1, 0};
    CHECK_OK(tok_train(&t, &corpus, &clen, 1, &to), "tokenizer");
    chat_turn a[] = {{CHAT_ROLE_USER, "hello there"}};
    chat_turn b[] = {{CHAT_ROLE_SYSTEM, "be brief"}, {CHAT_ROLE_USER, "how are you today?"},
                     {CHAT_ROLE_ASSISTANT, "i am fine, thank you."}, {CHAT_ROLE_USER, "what is the capital of france?"}};
    chat_turn c[] = {{CHAT_ROLE_USER, "the quick brown fox jumps over the lazy dog. the quick brown fox jumps over the lazy dog."}};
    chat_turn d[] = {{CHAT_ROLE_USER, "type <|end|> please"}, {CHAT_ROLE_ASSISTANT, "ok"}, {CHAT_ROLE_USER, "again"}};
    struct { const chat_turn *turns; int n; const char *resp; int which; int max_len; float w; } ex[] = {
        {a, 1, "general kenobi.", CHAT_TRAIN_LAST_ASSISTANT, 128, 1.0f},
        {b, 4, "paris is.", CHAT_TRAIN_ALL_ASSISTANT, 128, 2.0f},
        {b, 4, "paris is.", CHAT_TRAIN_LAST_ASSISTANT, 128, 0.5f},
        {c, 1, "the lazy dog.", CHAT_TRAIN_LAST_ASSISTANT, 24, 1.0f},
        {d, 3, "<|end|> ok", CHAT_TRAIN_ALL_ASSISTANT, 128, 1.5f},
    };
    enum { B = 5 };
    trn_seqs s;
    trn_seqs_init(&s);
    float sw[B];
    int idx[B];
    for (int i = 0; i < B; i++) {
        CHECK_OK(trn_seqs_add(&s, t, ex[i].turns, ex[i].n, ex[i].resp, ex[i].which, ex[i].max_len, &idx[i]), "encode %d", i);
        sw[idx[i]] = ex[i].w;
    }
    CHECK(s.n_cut_prompt == 1, "example 4 must be truncated on the left (got %d)", s.n_cut_prompt);
    gpt_config cfg = {2, 2, 32, tok_vocab_size(t), 128};
    gpt_model m;
    CHECK_OK(gpt_init(&m, &cfg, B, 127, ops_get("fast"), 7), "init");
    rl_rng pr;
    rl_rng_seed(&pr, 5);
    for (size_t i = 0; i < m.num_params; i++) m.params[i] += 0.02f * rl_rng_normal(&pr);
    int in[B * 127], tg[B * 127];
    float w[B * 127];
    int T = sft_batch(&s, sw, idx, B, in, tg, w);
    gpt_zero_grad(&m);
    float loss = gpt_forward(&m, in, tg, w, B, T);
    gpt_backward(&m);
    char txt[256];
    int n = snprintf(txt, sizeof txt, "%d %d %d %d %d %d %d %d %d %d %d\n", cfg.L, cfg.NH, cfg.C, cfg.V, cfg.maxT, B, T,
                     tok_special(t, CHAT_BOS), tok_special(t, CHAT_USER), tok_special(t, CHAT_ASSISTANT), tok_special(t, CHAT_END));
    dump(dir, "meta.txt", txt, (size_t)n);
    dump(dir, "params.bin", m.params, m.num_params * sizeof(float));
    dump(dir, "grads.bin", m.grads, m.num_params * sizeof(float));
    n = snprintf(txt, sizeof txt, "%.9g\n", loss);
    dump(dir, "loss.txt", txt, (size_t)n);
    char path[1024];
    snprintf(path, sizeof path, "%s/seqs.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f, "cannot write %s", path);
    for (int i = 0; i < B; i++) {
        fprintf(f, "%d %g", ex[i].which, ex[i].w);
        for (int k = 0; k < trn_seq_len(&s, idx[i]); k++) fprintf(f, " %d", s.ids[s.off[idx[i]] + k]);
        fputc('\n', f);
    }
    fclose(f);
    gpt_free(&m);
    trn_seqs_free(&s);
    tok_free(t);
    return 0;
}
