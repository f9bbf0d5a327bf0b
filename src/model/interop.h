/* interop.h — GPT-2 weights in the formats people already have: Hugging Face
 * safetensors (GPT2Model / GPT2LMHeadModel names) and llm.c's model file
 * (gpt2_124M.bin). Both are untrusted input: every size is checked before a
 * byte is copied; errors name the file, the tensor and what to do.
 *
 * Safetensors layout (docs/interop.md): wte.weight (V,C), wpe.weight (maxT,C),
 * h.N.ln_1.{weight,bias} (C), h.N.attn.c_attn.{weight (C,3C), bias (3C)},
 * h.N.attn.c_proj.{weight (C,C), bias}, h.N.ln_2.*, h.N.mlp.c_fc.{weight
 * (C,4C), bias (4C)}, h.N.mlp.c_proj.{weight (4C,C), bias (C)}, ln_f.*.
 * HF's Conv1D stores weights (in, out): they are transposed to our (out, in).
 * Accepted on import: an optional "transformer." prefix, F32/F16/BF16/F64,
 * the attn.bias / attn.masked_bias buffers (ignored), lm_head.weight only if
 * it equals wte (GPT-2 ties them), and rlhf.head.{weight,bias} (our scalar
 * head, written on export when it is non-zero). Anything else is refused.
 * The head count is not in the tensors: `heads` > 0, else the file's
 * __metadata__ "n_head", else C/64 (every GPT-2 size has 64-dim heads).
 *
 * llm.c layout: 256 int32 header {20240326, version, maxT, V, L, NH, C, Vp},
 * then the 16 parameter tensors in llm.c's order (the same as gpt_tensors,
 * (out, in) weights) with wte holding Vp >= V rows (padding rows dropped on
 * import, zero rows added on export). Version 1 (V rows, fp32), 3 (Vp rows,
 * fp32) and 5 (Vp rows, bfloat16) are read; version 3 is written.
 */
#ifndef RL_INTEROP_H
#define RL_INTEROP_H
#include "gpt.h"

#define GPTIO_LLMC_MAGIC 20240326

/* Imports into a fresh model planned for (max_B, max_T) (max_T 0 = the
 * file's maxT); the scalar head is zero unless the file has one. On error
 * m is zeroed. RL_EFORMAT for a malformed or non-GPT-2 file. */
rl_status gptio_import_safetensors(gpt_model *m, const char *path, int heads, int max_B, int max_T, const ops_table *ops);
rl_status gptio_import_llmc(gpt_model *m, const char *path, int max_B, int max_T, const ops_table *ops);

/* Exports (atomically). tok_id (may be NULL) is recorded in the safetensors
 * __metadata__ as "rlhf.tok_id", with n_layer/n_head/n_embd/n_positions/vocab_size. */
rl_status gptio_export_safetensors(const gpt_model *m, const char *path, const char *tok_id);
rl_status gptio_export_llmc(const gpt_model *m, const char *path);

/* Changes the vocabulary size to newV: the first min(V, newV) rows of wte
 * are kept; new rows (a tokenizer with more ids, e.g. GPT-2's vocabulary
 * plus rlhf.c's chat specials) start at the mean of the existing rows, so
 * the new tokens start "average" instead of random. Every other tensor is
 * kept. The model is re-planned for (max_B, max_T) (max_T 0 = maxT).
 * RL_ENOMEM / RL_EINVAL; on error m is unchanged. */
rl_status gptio_resize_vocab(gpt_model *m, int newV, int max_B, int max_T);

#endif
