#!/usr/bin/python3
"""PyTorch reference for the C GPT (src/model/gpt.c), both kernel tables.

build/tools/gpt_dump writes weights, one batch, and our logits, loss, every
parameter gradient, the scalar head's value and gradients, and the losses of
10 AdamW steps. Here PyTorch (fp32, 1 thread) builds the same GPT-2 from those
weights and computes the same things independently.

Tolerances (fp32; the only differences should be summation order):
  logits             max |ours - torch| <= 1e-4 (logits are O(1))
  loss               |ours - torch| <= 1e-5 * max(1, |loss|)
  every gradient     per tensor: max |ours - torch| <= 1e-4 * max|torch grad of that tensor| + 1e-7
  scalar head        value within 1e-5; gradients as above
  10 AdamW steps     every loss within 1e-4 relative
"""
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
ROOT = os.environ.get("RLHF_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RLHF_BUILD", os.path.join(ROOT, "build"))

NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
         "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb", "headw", "headb"]
DECAY = {"qkvw", "attprojw", "fcw", "fcprojw"}

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL", what)


def shapes(L, NH, C, V, T):
    return {"wte": (V, C), "wpe": (T, C), "ln1w": (L, C), "ln1b": (L, C), "qkvw": (L, 3 * C, C),
            "qkvb": (L, 3 * C), "attprojw": (L, C, C), "attprojb": (L, C), "ln2w": (L, C), "ln2b": (L, C),
            "fcw": (L, 4 * C, C), "fcb": (L, 4 * C), "fcprojw": (L, C, 4 * C), "fcprojb": (L, C),
            "lnfw": (C,), "lnfb": (C,), "headw": (C,), "headb": (1,)}


def unflatten(flat, shp):
    out, off = {}, 0
    for n in NAMES:
        k = int(np.prod(shp[n]))
        out[n] = flat[off:off + k].reshape(shp[n])
        off += k
    assert off == flat.size, (off, flat.size)
    return out


def hidden(P, idx, L, NH, C):
    B, T = idx.shape
    hs = C // NH
    x = P["wte"][idx] + P["wpe"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        h = F.layer_norm(x, (C,), P["ln1w"][l], P["ln1b"][l], 1e-5)
        qkv = F.linear(h, P["qkvw"][l], P["qkvb"][l])
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, NH, hs).transpose(1, 2)
        k = k.view(B, T, NH, hs).transpose(1, 2)
        v = v.view(B, T, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + F.linear(y, P["attprojw"][l], P["attprojb"][l])
        h = F.layer_norm(x, (C,), P["ln2w"][l], P["ln2b"][l], 1e-5)
        h = F.gelu(F.linear(h, P["fcw"][l], P["fcb"][l]), approximate="tanh")
        x = x + F.linear(h, P["fcprojw"][l], P["fcprojb"][l])
    return F.layer_norm(x, (C,), P["lnfw"], P["lnfb"], 1e-5)


def lm_loss(P, idx, tgt, w, L, NH, C):
    h = hidden(P, idx, L, NH, C)
    logits = h @ P["wte"].t()
    w = torch.where(tgt >= 0, w, torch.zeros_like(w))
    ce = F.cross_entropy(logits.view(-1, logits.size(-1)), tgt.view(-1).clamp(min=0), reduction="none")
    return logits, (ce * w.view(-1)).sum() / w.sum()


def compare_grads(tag, ours_flat, P, shp):
    ours = unflatten(ours_flat, shp)
    for n in NAMES:
        g = P[n].grad
        g = torch.zeros_like(P[n]) if g is None else g
        ref = g.detach().numpy()
        err = np.abs(ours[n] - ref).max()
        tol = 1e-4 * np.abs(ref).max() + 1e-7
        check(err <= tol, f"{tag}: grad {n} max err {err:.3g} > tol {tol:.3g}")


def main():
    out = tempfile.mkdtemp(prefix="rlhf_ref_gpt_")
    subprocess.run([os.path.join(BUILD, "tools", "gpt_dump"), out], check=True)
    L, NH, C, V, maxT, B, T = map(int, open(os.path.join(out, "meta.txt")).read().split())
    shp = shapes(L, NH, C, V, maxT)
    rd = lambda n, dt: np.fromfile(os.path.join(out, n), dtype=dt)
    params0 = rd("params.bin", np.float32)
    idx = torch.from_numpy(rd("inputs.bin", np.int32).astype(np.int64).reshape(B, T))
    tgt = torch.from_numpy(rd("targets.bin", np.int32).astype(np.int64).reshape(B, T))
    w = torch.from_numpy(rd("weights.bin", np.float32).reshape(B, T))
    pos = rd("pos.bin", np.int32)

    def fresh():
        return {n: torch.tensor(a.copy(), requires_grad=True) for n, a in unflatten(params0.copy(), shp).items()}

    # one forward/backward in torch
    P = fresh()
    logits, loss = lm_loss(P, idx, tgt, w, L, NH, C)
    loss.backward()
    # scalar head
    PS = fresh()
    h = hidden(PS, idx, L, NH, C)
    vals = torch.stack([h[b, pos[b]] @ PS["headw"] + PS["headb"][0] for b in range(B)])
    (vals * torch.tensor([1.0, 2.0, 3.0])).sum().backward()

    # torch 10 AdamW steps (same groups, schedule, clipping)
    PT = fresh()
    groups = [{"params": [PT[n] for n in NAMES if n in DECAY], "weight_decay": 0.1},
              {"params": [PT[n] for n in NAMES if n not in DECAY], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=2e-3, betas=(0.9, 0.95), eps=1e-8)
    traj = []
    for s in range(10):
        if s < 2:
            lr = 2e-3 * (s + 1) / 2
        else:
            p = (s - 2) / (10 - 1 - 2)
            lr = 2e-4 + 0.5 * (2e-3 - 2e-4) * (1 + math.cos(math.pi * p))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        _, l = lm_loss(PT, idx, tgt, w, L, NH, C)
        l.backward()
        torch.nn.utils.clip_grad_norm_([PT[n] for n in NAMES], 1.0)
        opt.step()
        traj.append(l.item())

    for kind in ("ref", "fast"):
        ol = rd(f"logits_{kind}.bin", np.float32).reshape(B, T, V)
        err = np.abs(ol - logits.detach().numpy()).max()
        check(err <= 1e-4, f"{kind}: logits max err {err:.3g}")
        oloss = float(open(os.path.join(out, f"loss_{kind}.txt")).read())
        check(abs(oloss - loss.item()) <= 1e-5 * max(1.0, abs(loss.item())), f"{kind}: loss {oloss} vs torch {loss.item()}")
        compare_grads(kind, rd(f"grads_{kind}.bin", np.float32), P, shp)
        sc = rd(f"scalar_{kind}.bin", np.float32)
        err = np.abs(sc[:B] - vals.detach().numpy()).max()
        check(err <= 1e-5, f"{kind}: scalar head values max err {err:.3g}")
        compare_grads(kind + " scalar head", sc[B:], PS, shp)
        otraj = [float(x) for x in open(os.path.join(out, f"traj_{kind}.txt")).read().split()]
        check(len(otraj) == 10, f"{kind}: trajectory has {len(otraj)} losses")
        for s, (a, b) in enumerate(zip(otraj, traj)):
            check(abs(a - b) <= 1e-4 * abs(b), f"{kind}: AdamW step {s} loss {a} vs torch {b}")
        print(f"{kind}: loss {oloss:.6f} (torch {loss.item():.6f}); step-10 loss {otraj[-1]:.6f} (torch {traj[-1]:.6f})")
    # the trajectory must actually move (a test that cannot fail is no test)
    check(traj[-1] < traj[0] - 0.1, f"torch trajectory did not decrease: {traj[0]} -> {traj[-1]}")
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    os.rmdir(out)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
