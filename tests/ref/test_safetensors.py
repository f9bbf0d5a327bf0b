"""safetensors interop: files written here by PyTorch tensors and plain
struct+json (the format spec, no `safetensors` package) load in rlhf.c's
parser with the same values; files written by rlhf.c parse here and load
into torch with the expected values; crafted bad files are refused by C."""
import json, os, struct, subprocess, sys, tempfile
import numpy as np
import torch

BUILD = os.environ.get("RLHF_BUILD", "build")
TOOL = os.path.join(BUILD, "tools", "st_tool")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int32: "I32"}


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_st(path, tensors, meta=None, order=None, pad=0):
    """Spec writer: header keys in dict order, data in `order` (default the same)."""
    names = list(tensors)
    order = order or names
    offs, data, at = {}, b"", 0
    for n in order:
        b = raw_bytes(tensors[n])
        offs[n] = [at, at + len(b)]
        data += b
        at += len(b)
    hdr = {}
    if meta is not None:
        hdr["__metadata__"] = meta
    for n in names:
        t = tensors[n]
        hdr[n] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": offs[n]}
    h = json.dumps(hdr).encode() + b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def read_st(path):
    """Spec reader (for files written by C)."""
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    hdr = json.loads(b[8:8 + n])
    data = b[8 + n:]
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        assert v["dtype"] == "F32"
        out[k] = torch.from_numpy(np.frombuffer(data[s:e], dtype="<f4").copy()).reshape(v["shape"])
    spans = sorted(v["data_offsets"] for k, v in hdr.items() if k != "__metadata__")
    tiled = spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(data)
    return out, hdr.get("__metadata__"), tiled, (8 + n) % 8


def c_dump(path):
    r = subprocess.run([TOOL, "dump", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr
    tensors, meta = {}, {}
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "meta":
            meta[parts[1]] = parts[2]
            continue
        name, dtype, shape, vals = parts
        shape = [int(x) for x in shape.split(",")] if shape else []
        v = [] if vals in ("", "unsupported") else [float.fromhex(x) for x in vals.split(" ")]
        tensors[name] = (dtype, shape, torch.tensor(v, dtype=torch.float32).reshape(shape) if vals != "unsupported" else None)
    return (tensors, meta), ""


torch.manual_seed(0)
tmp = tempfile.mkdtemp(prefix="rlhf_st_")
try:
    # 1. PyTorch tensors of every float dtype, header order != data order, padding
    src = {
        "wte.weight": torch.randn(7, 5),
        "h.0.attn.c_attn.weight": torch.randn(5, 15).to(torch.float16),
        "h.0.ln_1.bias": torch.randn(5).to(torch.bfloat16),
        "lm_scale": torch.tensor(1.5, dtype=torch.float64),
        "h.0.attn.bias": torch.randn(1, 1, 4, 4),
        "empty": torch.zeros(0, 3),
        "ids": torch.arange(6, dtype=torch.int32),
        "specials": torch.tensor([float("inf"), float("-inf"), 65504.0, 6e-8, -0.0], dtype=torch.float16),
    }
    p = os.path.join(tmp, "torch.safetensors")
    write_st(p, src, meta={"format": "pt", "model": "gpt2-tiny"}, order=list(reversed(list(src))), pad=5)
    got, err = c_dump(p)
    check(got is not None, "C parses the PyTorch-written file: " + err)
    if got:
        tensors, meta = got
        check(meta == {"format": "pt", "model": "gpt2-tiny"}, "metadata round trip")
        check(set(tensors) == set(src), "same tensor names")
        for n, t in src.items():
            dtype, shape, v = tensors[n]
            check(dtype == DT[t.dtype] and shape == list(t.shape), f"{n}: dtype/shape {dtype} {shape}")
            if t.dtype == torch.int32:
                check(v is None, "I32 is reported as not convertible to float32")
                continue
            want = t.to(torch.float32)
            check(v is not None and torch.equal(v, want), f"{n}: values equal to torch's float32 conversion")

    # 2. rlhf.c's writer read by the spec reader and torch
    q = os.path.join(tmp, "c.safetensors")
    r = subprocess.run([TOOL, "write", q], capture_output=True, text=True)
    check(r.returncode == 0, "C writer ran: " + r.stderr)
    tens, meta, tiled, align = read_st(q)
    check(meta == {"format": "pt", "producer": "rlhf.c"}, "C-written metadata")
    check(tiled, "C-written data area is tiled exactly (no holes)")
    check(align == 0, "C-written data area starts 8-byte aligned")
    a = torch.arange(24, dtype=torch.float32) * 0.25 - 3.0
    check(torch.equal(tens["h.0.mlp.c_fc.weight"], a.reshape(2, 3, 4)), "C-written 3-d tensor values")
    check(torch.equal(tens["wpe"], -torch.arange(5, dtype=torch.float32) * 0.25), "C-written 1-d tensor values")
    check(tens["scalar"].shape == torch.Size([]) and tens["scalar"].item() == 42.5, "C-written scalar")
    check(tens["empty"].shape == torch.Size([3, 0]), "C-written empty tensor")
    got, err = c_dump(q)
    check(got is not None and torch.equal(got[0]["wpe"][2], tens["wpe"]), "C reads its own file")

    # 3. crafted bad files: refused with a message, no crash (exit 1, not a signal)
    def bad(name, hdr, data=b"", raw_len=None):
        path = os.path.join(tmp, name)
        h = json.dumps(hdr).encode() if not isinstance(hdr, bytes) else hdr
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h) if raw_len is None else raw_len) + h + data)
        r = subprocess.run([TOOL, "check", path], capture_output=True, text=True)
        check(r.returncode == 1 and name in r.stderr, f"{name}: refused (exit {r.returncode}: {r.stderr.strip()[:120]})")

    f32 = lambda shape, s, e: {"dtype": "F32", "shape": shape, "data_offsets": [s, e]}
    bad("huge_len.st", {}, raw_len=1 << 60)
    bad("len_past_end.st", {}, raw_len=1000)
    bad("bad_json.st", b'{"a": {"dtype": "F32",')
    bad("dup.st", b'{"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4)
    bad("dtype.st", {"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, b"\0")
    bad("range.st", {"a": f32([4], 0, 16)}, b"\0" * 8)
    bad("overlap.st", {"a": f32([2], 0, 8), "b": f32([2], 4, 12)}, b"\0" * 12)
    bad("gap.st", {"a": f32([1], 0, 4), "b": f32([1], 8, 12)}, b"\0" * 12)
    bad("mismatch.st", {"a": f32([3], 0, 8)}, b"\0" * 8)
    bad("overflow.st", {"a": f32([2**32, 2**32, 2**8], 0, 4)}, b"\0" * 4)
finally:
    subprocess.run(["rm", "-rf", tmp])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
