/* gen_gpt.h — the GPT checkpoint backend of the feedback server: serves a
 * checkpoint from `rlhf pretrain/sft/dpo/kto/ppo` with the batched KV-cache
 * sampler (src/model/sampler.h), one row per request.
 *
 * A request's conversation is rendered with the chat template
 * (src/data/chat.h) plus the generation prompt "<|assistant|>", tokenized
 * segment by segment (special segments become their special id, text is BPE
 * text, so a user typing "<|end|>" gets ordinary tokens), and the answer
 * stops at "<|end|>" (or the document separator) or max_tokens. Each
 * token's bytes are streamed as one piece; special tokens are not text and are
 * not emitted. Stop (button, disconnect, shutdown) cancels the sampler
 * through its stream callback. Same (prompt, seed, parameters, checkpoint):
 * same answer, the same tokens `rlhf sample` gives for that rendered prompt.
 *
 * Checkpoint loads go through the process-wide checkpoint security policy
 * (ckpt_secure.h: signatures, decryption) like every other load. A reward or
 * value checkpoint is refused (it has no language-model head to sample from).
 * Generations on one model are serialised (one KV cache per model). */
#ifndef RL_SERVE_GEN_GPT_H
#define RL_SERVE_GEN_GPT_H
#include "gen.h"
#include "../tok/tok.h"

/* Opens checkpoint `path` as a serve_model with tokenizer t (borrowed: it
 * must outlive the model). identity = "<path>#<16 hex of the file's BLAKE2b>".
 * RL_EINVAL for a reward/value checkpoint or a tokenizer that is not the
 * model's; the load's own errors otherwise. */
rl_status serve_gpt_open(serve_model **out, const char *path, const tok_tokenizer *t);

/* Registers serve_gpt_open with serve_set_checkpoint_backend, with tokenizer
 * t (borrowed, process-wide), so `--model a.ckpt` opens GPT checkpoints. */
void serve_gpt_register(const tok_tokenizer *t);

#endif
