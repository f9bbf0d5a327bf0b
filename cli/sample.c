/* sample.c — `rlhf sample`: KV-cache decoding from a checkpoint (src/model/sampler.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/base/seal.h"
#include "../src/kernels/ops.h"
#include "../src/model/checkpoint.h"
#include "../src/model/sampler.h"
#include "../src/tok/tok.h"

typedef struct { const tok_tokenizer *t; } stream_ctx;

/* Writes a generated token's bytes to stdout at once (special tokens are not text). */
static int stream_token(void *ctx, int row, int token) {
    stream_ctx *s = ctx;
    if (row != 0 || tok_is_special(s->t, token)) return 0;
    int n;
    const unsigned char *b = tok_token_bytes(s->t, token, &n);
    fwrite(b, 1, (size_t)n, stdout);
    fflush(stdout);
    return 0;
}

/* Text of a row without special tokens (caller frees). */
static char *row_text(const tok_tokenizer *t, const int *ids, int n) {
    int *keep = malloc(sizeof(int) * (n > 0 ? n : 1)), k = 0;
    for (int i = 0; i < n; i++) if (!tok_is_special(t, ids[i])) keep[k++] = ids[i];
    char *out = NULL;
    size_t len;
    if (tok_decode(t, keep, k, &out, &len) != RL_OK) out = NULL;
    free(keep);
    return out;
}

int cmd_sample(int argc, char **argv) {
    static const char *model, *tokp, *prompt, *prompt_file, *precision;
    static int max_tokens, top_k, n, threads, json, no_bos, no_stop, half, quiet;
    static double temperature, top_p;
    static long long seed;
    static const char *vk, *kf, *pe;
    static rl_flag flags[] = {
        {"model", RL_FLAG_STRING, &model, NULL, 0, 0, NULL, "checkpoint from 'rlhf pretrain' (or a later stage)"},
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file the model was trained with"},
        {"prompt", RL_FLAG_STRING, &prompt, "", 0, 0, NULL, "prompt text (special tokens like <|user|> are honoured)"},
        {"prompt-file", RL_FLAG_STRING, &prompt_file, "", 0, 0, NULL, "one prompt per line (instead of --prompt); all lines x --n decode as one batch"},
        {"max-tokens", RL_FLAG_INT, &max_tokens, "200", 1, 1000000, NULL, "tokens to generate per sample"},
        {"temperature", RL_FLAG_FLOAT, &temperature, "1.0", 0, 100, NULL, "softmax temperature (0 = greedy, deterministic)"},
        {"top-k", RL_FLAG_INT, &top_k, "0", 0, 10000000, NULL, "sample among the k most likely tokens (0 = off)"},
        {"top-p", RL_FLAG_FLOAT, &top_p, "1.0", 1e-6, 1, NULL, "nucleus sampling: smallest set with this probability (1 = off)"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9.2e18, NULL, "random seed (sample i uses stream i of it)"},
        {"n", RL_FLAG_INT, &n, "1", 1, 4096, NULL, "samples, decoded together as one batch"},
        {"json", RL_FLAG_BOOL, &json, "0", 0, 0, NULL, "print one JSON object per sample (text, tokens, logprobs) instead of text"},
        {"precision", RL_FLAG_ENUM, &precision, "half", 0, 0, "half|fp32|int8",
         "decoding weights: half (binary16, log-probs within ~1e-3 of fp32), fp32 (log-probs exactly as training computes them), "
         "int8 (blocks of 32, half of half's memory traffic, log-probs within ~3e-2); see docs/performance.md"},
        {"half", RL_FLAG_BOOL, &half, "0", 0, 0, NULL, "same as --precision half (the default; kept for old scripts)"},
        {"no-stop", RL_FLAG_BOOL, &no_stop, "0", 0, 0, NULL, "keep going past <|end|> and the separator (benchmarks)"},
        {"no-bos", RL_FLAG_BOOL, &no_bos, "0", 0, 0, NULL, "do not start the prompt with the document separator token"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},
        {"quiet", RL_FLAG_BOOL, &quiet, "0", 0, 0, NULL, "no speed summary on stderr"},
        CLI_CKPT_LOAD_FLAGS(vk, kf, pe),
    };
    int rc = rl_flags_parse("sample", "Generate text from a checkpoint (KV cache, batched; streams when --n 1).", flags,
                            RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("sample", NULL, vk, kf, pe, 0)) return 1;
    ops_set_threads(threads);
    tok_tokenizer *t = NULL;
    if (tok_load(&t, tokp) != RL_OK) { fprintf(stderr, "rlhf sample: %s\n", rl_error()); return 1; }
    gpt_model m;
    ckpt_info info;
    if (ckpt_load(model, &m, 1, 1, NULL, NULL, 0, 0, 0, 0, 0, &info) != RL_OK) {
        fprintf(stderr, "rlhf sample: %s\n", rl_error());
        tok_free(t);
        return 1;
    }
    char tid[65];
    tok_identity(t, tid);
    int ret = 1;
    enum { PROMPTS_MAX = 4096 };
    static char *texts[PROMPTS_MAX];
    static int *pids[PROMPTS_MAX], plens[PROMPTS_MAX];
    int nprompts = 0;
    sampler_result res;
    memset(&res, 0, sizeof res);
    if (info.tok_id[0] && strcmp(info.tok_id, tid)) {
        fprintf(stderr, "rlhf sample: %s was trained with tokenizer %.16s..., not %s (%.16s...); pass the right --tokenizer\n",
                model, info.tok_id, tokp, tid);
        goto out;
    }
    if (tok_vocab_size(t) != m.cfg.V) {
        fprintf(stderr, "rlhf sample: tokenizer has %d ids, the model %d; pass the right --tokenizer\n", tok_vocab_size(t), m.cfg.V);
        goto out;
    }
    if (half) precision = "half";
    if ((!strcmp(precision, "half") && gpt_decode_half(&m, 1) != RL_OK) ||
        (!strcmp(precision, "int8") && gpt_decode_int8(&m, 1) != RL_OK)) {
        fprintf(stderr, "rlhf sample: %s\n", rl_error());
        goto out;
    }
    int sep = tok_special(t, "<|endoftext|>");
    if (sep < 0) sep = tok_special(t, "<|bos|>");
    /* prompts: --prompt, or the lines of --prompt-file */
    if (prompt_file[0]) {
        FILE *f = fopen(prompt_file, "rb");
        if (!f) { fprintf(stderr, "rlhf sample: cannot open %s\n", prompt_file); goto out; }
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (!len) continue;
            if (nprompts == PROMPTS_MAX) { fprintf(stderr, "rlhf sample: more than %d prompts in %s\n", PROMPTS_MAX, prompt_file); free(line); fclose(f); ret = 2; goto out; }
            texts[nprompts++] = strdup(line);
        }
        free(line);
        fclose(f);
        if (!nprompts) { fprintf(stderr, "rlhf sample: %s has no prompts\n", prompt_file); ret = 2; goto out; }
    } else {
        texts[nprompts++] = strdup(prompt);
    }
    for (int p = 0; p < nprompts; p++) {
        int *pi = NULL, pn = 0;
        if (!no_bos && sep >= 0) { pi = malloc(sizeof(int)); pi[0] = sep; pn = 1; }
        if (tok_encode(t, texts[p], strlen(texts[p]), 1, &pi, &pn) != RL_OK) { free(pi); fprintf(stderr, "rlhf sample: %s\n", rl_error()); goto out; }
        pids[p] = pi;
        plens[p] = pn;
        if (pn == 0) { fprintf(stderr, "rlhf sample: empty prompt with --no-bos; give a --prompt\n"); ret = 2; goto out; }
        if (pn >= m.cfg.maxT) {
            fprintf(stderr, "rlhf sample: prompt %d is %d tokens; the model's context is %d\n", p, pn, m.cfg.maxT);
            goto out;
        }
    }
    sampler_opts o;
    sampler_opts_default(&o);
    o.max_tokens = max_tokens;
    o.temperature = (float)temperature;
    o.top_k = top_k;
    o.top_p = (float)top_p;
    o.seed = (uint64_t)seed;
    if (!no_stop) {
        o.stop_tokens[0] = tok_special(t, "<|end|>");
        o.stop_tokens[1] = sep;
    }
    int rows = nprompts * n;
    const int **prompts = malloc(sizeof(int *) * rows);
    int *plen = malloc(sizeof(int) * rows);
    for (int i = 0; i < rows; i++) { prompts[i] = pids[i / n]; plen[i] = plens[i / n]; }
    stream_ctx sc = {t};
    int stream = rows == 1 && !json;
    double t0 = rl_now();
    rl_status st = sampler_generate(&m, prompts, plen, rows, &o, &res, stream ? stream_token : NULL, &sc);
    double dt = rl_now() - t0;
    free(prompts);
    free(plen);
    if (st != RL_OK) { fprintf(stderr, "rlhf sample: %s\n", rl_error()); goto out; }
    long long total = 0;
    for (int i = 0; i < rows; i++) {
        total += res.len[i];
        const int *row = res.tokens + (size_t)i * res.cap;
        if (stream) { fputc('\n', stdout); continue; }
        char *text = row_text(t, row, res.len[i]);
        if (!json) {
            double lp = 0;
            for (int j = 0; j < res.len[i]; j++) lp += res.logp[(size_t)i * res.cap + j];
            printf("=== prompt %d sample %d (%d tokens, log p %.2f) ===\n%s\n", i / n, i % n, res.len[i], lp, text ? text : "");
        } else {
            int need = rl_json_escape(NULL, 0, text ? text : "") + 1;
            char *esc = malloc((size_t)need);
            rl_json_escape(esc, need, text ? text : "");
            printf("{\"prompt\":%d,\"sample\":%d,\"text\":%s,\"stopped\":%s,\"tokens\":[", i / n, i % n, esc,
                   res.stopped[i] ? "true" : "false");
            for (int j = 0; j < res.len[i]; j++) printf("%s%d", j ? "," : "", row[j]);
            printf("],\"logprobs\":[");
            for (int j = 0; j < res.len[i]; j++) printf("%s%.6g", j ? "," : "", res.logp[(size_t)i * res.cap + j]);
            printf("]}\n");
            free(esc);
        }
        free(text);
    }
    fflush(stdout);
    if (!quiet) rl_info("%lld tokens in %.2f s (%.0f tokens/s, batch %d, %s weights)", total, dt, total / (dt > 0 ? dt : 1e-9), rows, precision);
    ret = 0;
out:
    sampler_result_free(&res);
    for (int p = 0; p < nprompts; p++) { free(texts[p]); free(pids[p]); texts[p] = NULL; pids[p] = NULL; }
    gpt_free(&m);
    tok_free(t);
    return ret;
}
