#!/usr/bin/python3
"""PyTorch reference for the SFT loss through the whole model (src/train/sft.c).

build/tools/sft_dump encodes five chat examples with the trainer's own code,
pads them into one batch, and writes our loss and every parameter gradient.
Here the assistant-only mask is recomputed FROM THE TOKEN IDS ALONE:
  a target token is trained iff it lies inside an assistant turn, i.e. after an
  <|assistant|> token up to and including the <|end|> that closes it; mode 1
  keeps only the last such turn, mode 0 every one;
each sequence runs through PyTorch's GPT-2 on its own (no padding, so no
attention can leak between examples), and the loss is
  L = sum_s sum_t w_s m_st nll_st / sum_s sum_t w_s m_st.
Tolerances as tests/ref/test_gpt.py: loss 1e-5 relative, each gradient tensor
1e-4 x its max |torch grad| + 1e-7.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from test_gpt import NAMES, shapes, unflatten, hidden  # noqa: E402

torch.set_num_threads(1)
ROOT = os.environ.get("RLHF_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RLHF_BUILD", os.path.join(ROOT, "build"))
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL", what)


def mask_of(ids, mode, assistant, end):
    """m[j] = 1 if ids[j+1] is trained."""
    regions, cur = [], None
    for i, x in enumerate(ids):
        if cur is not None:
            cur.append(i)
            if x == end:
                regions.append(cur)
                cur = None
        elif x == assistant:
            cur = []
    if cur:  # a response cut before its <|end|>
        regions.append(cur)
    if mode == 1:
        regions = regions[-1:]
    trained = set(i for r in regions for i in r)
    return [1.0 if j + 1 in trained else 0.0 for j in range(len(ids) - 1)]


def main():
    out = tempfile.mkdtemp(prefix="rlhf_ref_sft_")
    subprocess.run([os.path.join(BUILD, "tools", "sft_dump"), out], check=True)
    L, NH, C, V, maxT, B, T, bos, user, assistant, end = map(int, open(os.path.join(out, "meta.txt")).read().split())
    shp = shapes(L, NH, C, V, maxT)
    params = np.fromfile(os.path.join(out, "params.bin"), dtype=np.float32)
    ours_g = np.fromfile(os.path.join(out, "grads.bin"), dtype=np.float32)
    ours_loss = float(open(os.path.join(out, "loss.txt")).read())
    P = {n: torch.tensor(a.copy(), requires_grad=True) for n, a in unflatten(params, shp).items()}
    num = torch.zeros(())
    den = 0.0
    lines = open(os.path.join(out, "seqs.txt")).read().strip().split("\n")
    check(len(lines) == B, f"{len(lines)} sequences, want {B}")
    n_masked_prompt = 0
    for k, line in enumerate(lines):
        f = line.split()
        mode, w, ids = int(f[0]), float(f[1]), [int(x) for x in f[2:]]
        check(ids[0] == bos, f"sequence {k} starts with <|bos|>")
        m = mask_of(ids, mode, assistant, end)
        check(sum(m) > 0, f"sequence {k} has trained tokens")
        n_masked_prompt += len(m) - int(sum(m))
        idx = torch.tensor([ids[:-1]])
        tgt = torch.tensor(ids[1:])
        h = hidden(P, idx, L, NH, C)
        logits = (h @ P["wte"].t())[0]
        nll = F.cross_entropy(logits, tgt, reduction="none")
        mw = torch.tensor(m) * w
        num = num + (nll * mw).sum()
        den += float(mw.sum())
    check(n_masked_prompt > 20, "prompt tokens are masked")
    loss = num / den
    loss.backward()
    check(abs(ours_loss - loss.item()) <= 1e-5 * max(1.0, abs(loss.item())), f"loss {ours_loss} vs torch {loss.item()}")
    ours = unflatten(ours_g, shp)
    for n in NAMES:
        g = P[n].grad
        ref = (torch.zeros_like(P[n]) if g is None else g).detach().numpy()
        err = np.abs(ours[n] - ref).max()
        tol = 1e-4 * np.abs(ref).max() + 1e-7
        check(err <= tol, f"grad {n} max err {err:.3g} > tol {tol:.3g}")
    # a wrong mask would be caught: the loss with every target trained differs
    print(f"sft: loss {ours_loss:.6f} (torch {loss.item():.6f}), {den:.1f} weighted trained tokens")
    for fn in os.listdir(out):
        os.unlink(os.path.join(out, fn))
    os.rmdir(out)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
