/* pretrain.c — `rlhf pretrain`: flags -> pretrain_opts -> src/train/pretrain.c. */
#include <stdio.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/kernels/ops.h"
#include "../src/train/pretrain.h"

int cmd_pretrain(int argc, char **argv) {
    static pretrain_opts o;
    static long long seed;
    static int threads;
    static rl_flag flags[] = {
        {"data", RL_FLAG_STRING, &o.data_dir, NULL, 0, 0, NULL, "token-data directory from 'rlhf data prepare'"},
        {"out", RL_FLAG_STRING, &o.out, NULL, 0, 0, NULL, "checkpoint to write (atomically; also every --ckpt-every steps and on Ctrl-C)"},
        {"config", RL_FLAG_ENUM, &o.config, "tiny", 0, 0, "tiny|small|gpt2", "model size: tiny L4 H4 C256, small L6 H6 C384, gpt2 L12 H12 C768"},
        {"layers", RL_FLAG_INT, &o.layers, "0", 0, 256, NULL, "override the config's layers (0 = keep)"},
        {"heads", RL_FLAG_INT, &o.heads, "0", 0, 256, NULL, "override the config's heads (0 = keep)"},
        {"channels", RL_FLAG_INT, &o.channels, "0", 0, 16384, NULL, "override the config's channels (0 = keep)"},
        {"context", RL_FLAG_INT, &o.context, "0", 0, 65536, NULL, "context length (position embeddings); 0 = --seq"},
        {"steps", RL_FLAG_I64, &o.steps, "1000", 1, 1e12, NULL, "total optimizer steps"},
        {"stop-after", RL_FLAG_I64, &o.stop_after, "0", 0, 1e12, NULL, "stop after this many steps of this run (checkpoint; resume later); 0 = run to --steps"},
        {"batch", RL_FLAG_INT, &o.batch, "16", 1, 65536, NULL, "sequences per micro-batch (B)"},
        {"seq", RL_FLAG_INT, &o.seq, "256", 1, 65536, NULL, "tokens per sequence (T)"},
        {"accum", RL_FLAG_INT, &o.accum, "1", 1, 65536, NULL, "micro-batches per optimizer step (gradient accumulation)"},
        {"lr", RL_FLAG_FLOAT, &o.lr, "1e-3", 0, 10, NULL, "peak learning rate"},
        {"warmup", RL_FLAG_I64, &o.warmup, "-1", -1, 1e12, NULL, "linear warm-up steps (-1 = 5% of --steps, at most 100)"},
        {"min-lr-frac", RL_FLAG_FLOAT, &o.min_lr_frac, "0.1", 0, 1, NULL, "cosine decay floor as a fraction of --lr"},
        {"weight-decay", RL_FLAG_FLOAT, &o.weight_decay, "0.1", 0, 10, NULL, "AdamW decoupled weight decay (matmul weights only)"},
        {"decay-embeddings", RL_FLAG_BOOL, &o.decay_embeddings, "0", 0, 0, NULL, "also decay the token/position embeddings"},
        {"beta1", RL_FLAG_FLOAT, &o.beta1, "0.9", 0, 0.999999, NULL, "AdamW beta1"},
        {"beta2", RL_FLAG_FLOAT, &o.beta2, "0.95", 0, 0.999999, NULL, "AdamW beta2"},
        {"eps", RL_FLAG_FLOAT, &o.eps, "1e-8", 0, 1, NULL, "AdamW epsilon"},
        {"grad-clip", RL_FLAG_FLOAT, &o.grad_clip, "1.0", 0, 1e9, NULL, "clip the global gradient norm to this (0 = off)"},
        {"resume", RL_FLAG_STRING, &o.resume, "", 0, 0, NULL, "continue from this checkpoint (same --batch --seq --accum --seed)"},
        {"eval-every", RL_FLAG_I64, &o.eval_every, "0", 0, 1e12, NULL, "validation loss every K steps (0 = at the end only)"},
        {"eval-batches", RL_FLAG_INT, &o.eval_batches, "20", 1, 1000000, NULL, "validation batches per evaluation"},
        {"ckpt-every", RL_FLAG_I64, &o.ckpt_every, "0", 0, 1e12, NULL, "checkpoint every K steps (0 = at the end only)"},
        {"log", RL_FLAG_STRING, &o.log_path, "", 0, 0, NULL, "JSONL metrics log (appended on --resume)"},
        {"seed", RL_FLAG_I64, &seed, "1", 0, 9.2e18, NULL, "seed for the weights and the data order"},
        {"threads", RL_FLAG_INT, &threads, "0", 0, 1024, NULL, "CPU threads (0 = all cores, or OMP_NUM_THREADS)"},
        {"kernels", RL_FLAG_ENUM, &o.kernels, "fast", 0, 0, "fast|ref", "fast (BLAS + OpenMP) or ref (plain loops, for checking)"},
        {"quiet", RL_FLAG_BOOL, &o.quiet, "0", 0, 0, NULL, "no progress or summary on stderr"},
    };
    int rc = rl_flags_parse("pretrain", "Pretrain a GPT-2 on token shards (AdamW, warm-up + cosine, checkpoints, resume).",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (!o.resume[0]) o.resume = NULL;
    if (!o.log_path[0]) o.log_path = NULL;
    o.seed = (unsigned long long)seed;
    ops_set_threads(threads);
    return pretrain_run(&o);
}
