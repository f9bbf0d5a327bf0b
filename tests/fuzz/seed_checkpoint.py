"""Seeds for tests/fuzz/fuzz_checkpoint.c (stdlib only): a tiny GPT
(L1 NH1 C4 V5 maxT3) as a checkpoint payload (target byte 0), an llm.c file
(1) and a Hugging Face safetensors file (2). Usage: seed_checkpoint.py DIR"""
import json, os, struct, sys

L, NH, C, V, T = 1, 1, 4, 5, 3
d = sys.argv[1]
sizes = [V * C, T * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C, L * C, L * C,
         L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C]
n16 = sum(sizes)
vals = [((i * 37) % 17 - 8) / 16.0 for i in range(n16 + C + 1)]
f32 = lambda xs: struct.pack("<%df" % len(xs), *xs)

# checkpoint payload v2: config, flags, tok id, num_params, params, metadata
p = struct.pack("<6I", L, NH, C, V, T, 0) + b"\0" * 64 + struct.pack("<Q", n16 + C + 1) + f32(vals)
p += struct.pack("<I", 1) + struct.pack("<I", 4) + b"kind" + struct.pack("<I", 2) + b"lm"
open(os.path.join(d, "ckpt_v2"), "wb").write(b"\0\1" + p)
open(os.path.join(d, "ckpt_v1"), "wb").write(b"\0\0" + p[:-(4 + 4 + 4 + 4 + 2)])

# llm.c version 3, Vp = 8
hdr = [20240326, 3, T, V, L, NH, C, 8] + [0] * 248
body = vals[:V * C] + [0.0] * ((8 - V) * C) + vals[V * C:n16]
open(os.path.join(d, "llmc_v3"), "wb").write(b"\1" + struct.pack("<256i", *hdr) + f32(body))

# safetensors, HF names, Conv1D shapes (values need not be transposed for a seed)
names = [("wte.weight", [V, C]), ("wpe.weight", [T, C])]
per = [("ln_1.weight", [C]), ("ln_1.bias", [C]), ("attn.c_attn.weight", [C, 3 * C]), ("attn.c_attn.bias", [3 * C]),
       ("attn.c_proj.weight", [C, C]), ("attn.c_proj.bias", [C]), ("ln_2.weight", [C]), ("ln_2.bias", [C]),
       ("mlp.c_fc.weight", [C, 4 * C]), ("mlp.c_fc.bias", [4 * C]), ("mlp.c_proj.weight", [4 * C, C]), ("mlp.c_proj.bias", [C])]
names += [("h.0." + a, s) for a, s in per] + [("ln_f.weight", [C]), ("ln_f.bias", [C])]
h, data, at = {"__metadata__": {"n_head": "1"}}, b"", 0
for nm, shp in names:
    k = 1
    for x in shp:
        k *= x
    h[nm] = {"dtype": "F32", "shape": shp, "data_offsets": [at, at + 4 * k]}
    data += f32(vals[:k])
    at += 4 * k
hj = json.dumps(h, separators=(",", ":")).encode()
open(os.path.join(d, "st"), "wb").write(b"\2" + struct.pack("<Q", len(hj)) + hj + data)
