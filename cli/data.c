/* data.c — `rlhf data prepare|info`: token shards for training. */
#include <stdio.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/data/shard.h"
#include "../src/tok/tok.h"

int cmd_data_prepare(int argc, char **argv) {
    static const char *tokp, *out;
    static rl_strlist inputs;
    static double valf;
    static long long shard_tokens;
    static int quiet;
    static rl_flag flags[] = {
        {"tokenizer", RL_FLAG_STRING, &tokp, NULL, 0, 0, NULL, "tokenizer file"},
        {"input", RL_FLAG_STRINGS, &inputs, NULL, 0, 0, NULL, "text files; each becomes one document per split"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "directory for the shards and manifest.bin (created if missing)"},
        {"val-fraction", RL_FLAG_FLOAT, &valf, "0.1", 0, 0.5, NULL, "share of each file (its end, from a line start) held out for val"},
        {"shard-tokens", RL_FLAG_I64, &shard_tokens, "100000000", 1024, 4e9, NULL, "max tokens per shard file"},
        {"quiet", RL_FLAG_BOOL, &quiet, "0", 0, 0, NULL, "no summary on stderr"},
    };
    int rc = rl_flags_parse("data prepare", "Tokenize text files into versioned token shards (train/val) plus a manifest.", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    tok_tokenizer *t = NULL;
    if (tok_load(&t, tokp) != RL_OK) { fprintf(stderr, "rlhf data prepare: %s\n", rl_error()); return 1; }
    data_prepare_opts o = {valf, shard_tokens, 0, !quiet && rl_log_level > 1};
    data_prepare_stats s;
    double t0 = rl_now();
    rl_status st = data_prepare(t, inputs.v, inputs.n, out, &o, &s);
    tok_free(t);
    if (st != RL_OK) { fprintf(stderr, "rlhf data prepare: %s\n", rl_error()); return 1; }
    if (!quiet) rl_info("%s: %lld train tokens in %d shard(s), %lld val tokens in %d shard(s) (%.2f s)",
                        out, s.train_tokens, s.train_shards, s.val_tokens, s.val_shards, rl_now() - t0);
    return 0;
}

int cmd_data_info(int argc, char **argv) {
    static const char *dir;
    static rl_flag flags[] = {
        {"dir", RL_FLAG_STRING, &dir, NULL, 0, 0, NULL, "directory written by 'rlhf data prepare'"},
    };
    int rc = rl_flags_parse("data info", "Print the manifest of a token-data directory.", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    data_info d;
    if (data_read_info(dir, &d) != RL_OK) { fprintf(stderr, "rlhf data info: %s\n", rl_error()); return 1; }
    printf("dir: %s\nvocab_size: %d\ntoken_bytes: %d\ntokenizer_identity: %s\ntrain_tokens: %lld\ntrain_shards: %d\nval_tokens: %lld\nval_shards: %d\n",
           dir, d.vocab_size, d.token_bytes, d.identity, d.train_tokens, d.train_shards, d.val_tokens, d.val_shards);
    return 0;
}
