#!/usr/bin/python3
"""Compares every loss in src/train/objectives.c with a PyTorch (float64,
autograd) implementation written from the papers' formulas.

The C side runs in build/tools/obj_ref on float32 inputs written here; the
reference uses exactly the same float32 values, promoted to float64, and gets
its gradients from autograd (never from the hand-derived formulas the C code
uses). Each case runs on random and edge-case inputs: large logits, masked
positions, ties, several β.

Tolerance: |c - ref| <= ATOL * max(1, max|ref|) + RTOL * |ref| elementwise with
RTOL = 2e-5, ATOL = 2e-6. The C code reduces in double but stores gradients and
per-token outputs as float32 (relative rounding 6e-8), so anything beyond these
bounds is a real disagreement, not rounding.

Run: /usr/bin/python3 tests/ref/test_objectives.py  (needs build/tools/obj_ref;
RLHF_BUILD selects the build directory). Prints "N passed, N failed".
"""
import itertools
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RLHF_BUILD", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "tools", "obj_ref")
RTOL, ATOL = 2e-5, 2e-6

rng = np.random.default_rng(1234)
CASES = []  # (label, op, params, arrays, expected dict)


def f32(x):
    return np.asarray(x, dtype=np.float32)


def T64(x, grad=False):
    t = torch.tensor(np.asarray(x, dtype=np.float64))
    if grad:
        t.requires_grad_(True)
    return t


def add(label, op, params, arrays, expected):
    CASES.append((label, op, params, arrays, expected))


def npy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


# ---------------------------------------------------------------- token level
def case_xent(label, B, Tn, V, Vp, scale, wmode, dloss=1.0, ignore=False):
    logits = f32(rng.normal(size=(B, Tn, Vp)) * scale)
    targets = rng.integers(0, V, size=(B, Tn)).astype(np.int32)
    if ignore:
        targets[0, 0] = -1
    w = None
    if wmode == "mask":
        w = f32(rng.integers(0, 2, size=(B, Tn)))
        w[0, -1] = 1
    elif wmode == "weights":
        w = f32(rng.uniform(0, 2, size=(B, Tn)))
    elif wmode == "zero":
        w = f32(np.zeros((B, Tn)))
    d0 = f32(rng.normal(size=(B, Tn, Vp)))
    z = T64(logits[..., :V], grad=True)
    lsm = torch.log_softmax(z, -1)
    tt = torch.tensor(np.maximum(targets, 0).astype(np.int64))
    nll = -lsm.gather(-1, tt[..., None])[..., 0]
    ww = T64(w if w is not None else np.ones((B, Tn)))
    ww = ww * torch.tensor((targets >= 0).astype(np.float64))
    W = ww.sum()
    loss = (ww * nll).sum() / W if W > 0 else (ww * nll).sum() * 0
    loss.backward()
    g = d0.astype(np.float64).copy()
    g[..., :V] += dloss * z.grad.numpy()
    losses = (nll * (ww > 0)).detach().numpy()
    arrays = {"logits": logits, "targets": targets, "dlogits0": d0}
    if w is not None:
        arrays["w"] = w
    add(label, "xent", {"B": B, "T": Tn, "V": V, "Vp": Vp, "dloss": dloss}, arrays,
        {"loss": loss.item(), "dlogits": g, "losses": losses})


def case_logprobs(label, B, Tn, V, Vp, scale):
    logits = f32(rng.normal(size=(B, Tn, Vp)) * scale)
    targets = rng.integers(0, V, size=(B, Tn)).astype(np.int32)
    targets[-1, -1] = -1  # padding position: logp 0, no gradient
    dlogp = f32(rng.normal(size=(B, Tn)))
    d0 = f32(rng.normal(size=(B, Tn, Vp)))
    z = T64(logits[..., :V], grad=True)
    tt = torch.tensor(np.maximum(targets, 0).astype(np.int64))
    lp = torch.log_softmax(z, -1).gather(-1, tt[..., None])[..., 0] * torch.tensor((targets >= 0) * 1.0)
    (lp * T64(dlogp)).sum().backward()
    g = d0.astype(np.float64).copy()
    g[..., :V] += z.grad.numpy()
    add(label, "logprobs", {"B": B, "T": Tn, "V": V, "Vp": Vp},
        {"logits": logits, "targets": targets, "dlogp": dlogp, "dlogits0": d0},
        {"logp": npy(lp), "dlogits": g})


def case_entropy(label, B, Tn, V, Vp, scale, dloss):
    logits = f32(rng.normal(size=(B, Tn, Vp)) * scale)
    mask = f32(rng.integers(0, 2, size=(B, Tn)))
    mask[0, 0] = 1
    d0 = f32(rng.normal(size=(B, Tn, Vp)))
    z = T64(logits[..., :V], grad=True)
    p = torch.softmax(z, -1)
    H = -(p * torch.log_softmax(z, -1)).sum(-1)
    m = T64(mask)
    loss = (H * m).sum() / m.sum()
    loss.backward()
    g = d0.astype(np.float64).copy()
    g[..., :V] += dloss * z.grad.numpy()
    add(label, "entropy", {"B": B, "T": Tn, "V": V, "Vp": Vp, "dloss": dloss},
        {"logits": logits, "mask": mask, "dlogits0": d0},
        {"loss": loss.item(), "dlogits": g, "ent": npy(H * m)})


def case_seq(label, B, Tn):
    logp = f32(-rng.exponential(size=(B, Tn)))
    mask = f32(rng.integers(0, 2, size=(B, Tn)))
    dseq = f32(rng.normal(size=B))
    lp = T64(logp, grad=True)
    s = (lp * T64(mask)).sum(-1)
    (s * T64(dseq)).sum().backward()
    add(label, "seq", {"B": B, "T": Tn}, {"logp": logp, "mask": mask, "dseq": dseq},
        {"seq": npy(s), "len": mask.sum(-1), "dlogp": lp.grad.numpy()})


# ---------------------------------------------------------- reward models
def wmean(losses, w):
    W = w.sum()
    return (losses * w).sum() / W


def case_bt(label, n, scale, margin=False, weights=False, center=0.0, ties=False):
    rc = f32(rng.normal(size=n) * scale)
    rr = f32(rng.normal(size=n) * scale)
    if ties:
        rr[: n // 2] = rc[: n // 2]
    arrays = {"rc": rc, "rr": rr}
    m = np.zeros(n)
    if margin:
        arrays["margin"] = f32(rng.uniform(0, 2, size=n))
        m = arrays["margin"]
    w = np.ones(n)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 3, size=n))
        arrays["w"][0] = 0
        w = arrays["w"]
    a, b = T64(rc, True), T64(rr, True)
    wt = T64(w)
    loss = wmean(-F.logsigmoid(a - b - T64(m)), wt) + center * wmean((a + b) ** 2, wt)
    loss.backward()
    acc = (w * ((rc > rr) + 0.5 * (rc == rr))).sum() / w.sum()
    add(label, "bt", {"center": center}, arrays,
        {"loss": loss.item(), "dc": npy(a.grad), "dr": npy(b.grad), "acc": acc})


def case_davidson(label, n, scale, nu, weights=False):
    ra = f32(rng.normal(size=n) * scale)
    rb = f32(rng.normal(size=n) * scale)
    lab = rng.integers(-1, 2, size=n).astype(np.int32)
    rb[0] = ra[0]
    lab[0] = 0
    arrays = {"ra": ra, "rb": rb, "label": lab}
    w = np.ones(n)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=n))
        w = arrays["w"]
    a, b = T64(ra, True), T64(rb, True)
    lognu = torch.tensor(math.log(nu), requires_grad=True)
    # Davidson 1970: P(a) = pi_a / (pi_a + pi_b + nu sqrt(pi_a pi_b)), pi = e^r
    logZ = torch.logsumexp(torch.stack([a, b, lognu + 0.5 * (a + b)]), 0)
    lpa, lpb, lpt = a - logZ, b - logZ, lognu + 0.5 * (a + b) - logZ
    labt = torch.tensor(lab)
    ll = torch.where(labt > 0, lpa, torch.where(labt < 0, lpb, lpt))
    loss = wmean(-ll, T64(w))
    loss.backward()
    add(label, "davidson", {"nu": nu}, arrays,
        {"loss": loss.item(), "da": npy(a.grad), "db": npy(b.grad), "dlognu": lognu.grad.item()})


def rank_inputs(Pn, K, ties, absent):
    r = f32(rng.normal(size=(Pn, K)) * 2)
    rank = np.stack([rng.permutation(K) for _ in range(Pn)]).astype(np.int32)
    if ties:
        rank[0, :2] = 0  # two responses tied for best
        rank[1, :] = 1   # a prompt where everything is tied: no pair, no term
    if absent:
        rank[-1, -1] = -1
        rank[-1, -2] = -1
    return r, rank


def case_rank_pairs(label, Pn, K, ties=False, absent=False, weights=False):
    r, rank = rank_inputs(Pn, K, ties, absent)
    arrays = {"r": r, "rank": rank}
    w = np.ones(Pn)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=Pn))
        w = arrays["w"]
    rt = T64(r, True)
    num, den = 0, 0.0
    for p in range(Pn):
        present = [i for i in range(K) if rank[p, i] >= 0]
        terms = []
        for i, j in itertools.combinations(present, 2):
            if rank[p, i] == rank[p, j]:
                continue
            win, lose = (i, j) if rank[p, i] < rank[p, j] else (j, i)
            terms.append(-F.logsigmoid(rt[p, win] - rt[p, lose]))
        if terms:
            num = num + w[p] * torch.stack(terms).mean()
            den += w[p]
    loss = num / den
    loss.backward()
    add(label, "rank_pairs", {"P": Pn, "K": K}, arrays, {"loss": loss.item(), "d": npy(rt.grad)})


def case_pl(label, Pn, K, top=0, ties=False, absent=False, weights=False):
    r, rank = rank_inputs(Pn, K, ties, absent)
    arrays = {"r": r, "rank": rank}
    w = np.ones(Pn)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=Pn))
        w = arrays["w"]
    rt = T64(r, True)
    num, den = 0, 0.0
    for p in range(Pn):
        # Plackett-Luce: pick the best of the remaining set, stage by stage
        # (tied items share the risk set of their rank, Breslow).
        order = sorted([i for i in range(K) if rank[p, i] >= 0], key=lambda i: rank[p, i])
        terms = []
        for i in order:
            if top > 0 and rank[p, i] >= top:
                continue
            risk = [j for j in order if rank[p, j] >= rank[p, i]]
            if len(risk) < 2:
                continue
            terms.append(torch.logsumexp(rt[p, risk], 0) - rt[p, i])
        if terms:
            num = num + w[p] * torch.stack(terms).mean()
            den += w[p]
    loss = num / den
    loss.backward()
    add(label, "pl", {"P": Pn, "K": K, "top": top}, arrays, {"loss": loss.item(), "d": npy(rt.grad)})


def case_thumbs(label, n, scale, bias, soft=False, weights=False):
    r = f32(rng.normal(size=n) * scale)
    y = f32(rng.uniform(size=n) if soft else rng.integers(0, 2, size=n))
    arrays = {"r": r, "y": y}
    w = np.ones(n)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=n))
        w = arrays["w"]
    rt = T64(r, True)
    bt = torch.tensor(float(bias), requires_grad=True)
    loss = wmean(F.binary_cross_entropy_with_logits(rt - bt, T64(y), reduction="none"), T64(w))
    loss.backward()
    add(label, "thumbs", {"bias": bias}, arrays, {"loss": loss.item(), "d": npy(rt.grad), "dbias": bt.grad.item()})


def case_ece(label, n, nbins, weights=False):
    p = f32(rng.uniform(size=n))
    y = f32((rng.uniform(size=n) < p ** 1.5) * 1.0)
    rc = f32(rng.normal(size=n))
    rr = f32(rng.normal(size=n))
    arrays = {"p": p, "y": y, "rc": rc, "rr": rr}
    w = np.ones(n)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=n))
        arrays["w2"] = arrays["w"]
        w = arrays["w"].astype(np.float64)
    pd = p.astype(np.float64)
    b = np.minimum((pd * nbins).astype(int), nbins - 1)
    bw = np.bincount(b, w, nbins)
    bp = np.bincount(b, w * pd, nbins)
    bl = np.bincount(b, w * y, nbins)
    nz = bw > 0
    ece = (bw[nz] / bw.sum() * np.abs(bl[nz] / bw[nz] - bp[nz] / bw[nz])).sum()
    # pairwise: confidence-based ECE (Guo 2017) on max(p, 1-p), bins over [0.5, 1]
    q = 1 / (1 + np.exp(-(rc.astype(np.float64) - rr)))
    conf = np.maximum(q, 1 - q)
    corr = (q > 0.5) * 1.0 + (q == 0.5) * 0.5
    cb = np.minimum(((conf - 0.5) * 2 * nbins).astype(int), nbins - 1)
    cw = np.bincount(cb, w, nbins)
    ca = np.bincount(cb, w * corr, nbins)
    cc = np.bincount(cb, w * conf, nbins)
    nz2 = cw > 0
    pece = (cw[nz2] / cw.sum() * np.abs(ca[nz2] - cc[nz2]) / cw[nz2]).sum()
    add(label, "ece", {"nbins": nbins}, arrays,
        {"ece": ece, "bin_weight": bw, "bin_prob": np.where(nz, bp / np.maximum(bw, 1e-300), 0),
         "bin_label": np.where(nz, bl / np.maximum(bw, 1e-300), 0), "pair_ece": pece})


# ----------------------------------------------------- direct preference
def pref_inputs(n, scale, lens=True, weights=False, ref=True):
    lc = f32(rng.integers(1, 40, size=n))
    lr = f32(rng.integers(1, 40, size=n))
    pc = f32(-lc * rng.uniform(0.2, 3, size=n))
    pr = f32(-lr * rng.uniform(0.2, 3, size=n))
    arrays = {"pc": pc, "pr": pr}
    if ref:
        arrays["rc"] = f32(pc + rng.normal(size=n) * scale)
        arrays["rr"] = f32(pr + rng.normal(size=n) * scale)
    if lens:
        arrays["lc"], arrays["lr"] = lc, lr
    w = np.ones(n)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=n))
        w = arrays["w"]
    return arrays, w


def stats_expect(w, rw, rl, pc, pr):
    w = np.asarray(w, np.float64)
    W = w.sum()
    return {"reward_chosen": (w * rw).sum() / W, "reward_rejected": (w * rl).sum() / W,
            "margin": (w * (rw - rl)).sum() / W, "accuracy": (w * (rw > rl)).sum() / W,
            "logp_chosen": (w * pc).sum() / W, "logp_rejected": (w * pr).sum() / W}


def case_dpo(label, n, typ, beta, eps=0.0, per_token=0, scale=1.0, weights=False):
    arrays, w = pref_inputs(n, scale, weights=weights)
    pc, pr = T64(arrays["pc"], True), T64(arrays["pr"], True)
    rc, rr = T64(arrays["rc"]), T64(arrays["rr"])
    lc, lr = T64(arrays["lc"]), T64(arrays["lr"])
    if typ == 2 and per_token:  # TRL: IPO averages log-probs over tokens
        pcn, prn, rcn, rrn = pc / lc, pr / lr, rc / lc, rr / lr
    else:
        pcn, prn, rcn, rrn = pc, pr, rc, rr
    h = (pcn - rcn) - (prn - rrn)
    if typ == 0:    # DPO / cDPO (Rafailov 2023; Mitchell's label smoothing)
        losses = -(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    elif typ == 1:  # robust DPO (TRL loss_type="robust")
        losses = (-(1 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)
    else:           # IPO (Azar 2023), tau = beta
        losses = (h - 1 / (2 * beta)) ** 2
    loss = wmean(losses, T64(w))
    loss.backward()
    rw, rl = npy(beta * (pcn - rcn)), npy(beta * (prn - rrn))
    exp = {"loss": loss.item(), "dc": npy(pc.grad), "dr": npy(pr.grad), "st_loss": loss.item()}
    exp.update(stats_expect(w, rw, rl, arrays["pc"], arrays["pr"]))
    add(label, "dpo", {"type": typ, "beta": beta, "eps": eps, "per_token": per_token}, arrays, exp)


def case_kto(label, n, beta, ld=1.0, lu=1.0, kl_shift=0.5, weights=False):
    pol = f32(-rng.uniform(5, 50, size=n))
    ref = f32(pol + rng.normal(size=n) * 2)
    des = rng.integers(0, 2, size=n).astype(np.int32)
    des[0], des[1] = 1, 0
    pol_mm = f32(-rng.uniform(5, 50, size=n))
    ref_mm = f32(pol_mm - kl_shift + rng.normal(size=n) * 0.1)
    arrays = {"pol": pol, "ref": ref, "des": des, "pol_mm": pol_mm, "ref_mm": ref_mm}
    w = np.ones(n)
    if weights:
        arrays["w"] = f32(rng.uniform(0, 2, size=n))
        w = arrays["w"]
    pt = T64(pol, True)
    # z0: mismatched-pair KL estimate, clamped at 0 and detached (HALOs KTOTrainer)
    z0 = (T64(pol_mm) - T64(ref_mm)).mean().clamp(min=0).detach()
    r = pt - T64(ref)
    d = torch.tensor(des.astype(bool))
    losses = torch.where(d, ld * (1 - torch.sigmoid(beta * (r - z0))), lu * (1 - torch.sigmoid(beta * (z0 - r))))
    loss = wmean(losses, T64(w))
    loss.backward()
    rr = beta * npy(r)
    wd = np.asarray(w, np.float64)
    sign_ok = np.where(des == 1, npy(r - z0) > 0, npy(z0 - r) > 0)
    exp = {"loss": loss.item(), "z0": z0.item(), "d": npy(pt.grad), "st_loss": loss.item(),
           "reward_chosen": (wd * rr)[des == 1].sum() / wd[des == 1].sum(),
           "reward_rejected": (wd * rr)[des == 0].sum() / wd[des == 0].sum(),
           "accuracy": (wd * sign_ok).sum() / wd.sum()}
    exp["margin"] = exp["reward_chosen"] - exp["reward_rejected"]
    add(label, "kto", {"beta": beta, "ld": ld, "lu": lu}, arrays, exp)


def case_orpo(label, n, lam, near_zero=False, weights=False):
    arrays, w = pref_inputs(n, 1.0, ref=False, weights=weights)
    if near_zero:  # mean log-prob ~ 0: the odds blow up; C clamps a <= -1e-6
        arrays["pc"][0] = f32(-1e-8 * arrays["lc"][0])
        arrays["pr"][1] = f32(-2e-6 * arrays["lr"][1])
    pc, pr = T64(arrays["pc"], True), T64(arrays["pr"], True)
    lc, lr = T64(arrays["lc"]), T64(arrays["lr"])
    wt = T64(w)
    aw = (pc / lc).clamp(max=-1e-6)
    al = (pr / lr).clamp(max=-1e-6)
    # Hong 2024: odds = P/(1-P), P = exp(mean log-prob); TRL's stable form
    log_odds = (aw - al) - (torch.log1p(-torch.exp(aw)) - torch.log1p(-torch.exp(al)))
    ratio = F.logsigmoid(log_odds)
    nll = (wt * -pc).sum() / (wt * lc).sum()
    loss = nll - lam * wmean(ratio, wt)
    loss.backward()
    exp = {"loss": loss.item(), "dc": npy(pc.grad), "dr": npy(pr.grad), "nll": nll.item()}
    exp.update(stats_expect(w, lam * npy(aw), lam * npy(al), arrays["pc"], arrays["pr"]))
    add(label, "orpo", {"beta": lam}, arrays, exp)


def case_simpo(label, n, beta, gamma, weights=False):
    arrays, w = pref_inputs(n, 1.0, ref=False, weights=weights)
    pc, pr = T64(arrays["pc"], True), T64(arrays["pr"], True)
    lc, lr = T64(arrays["lc"]), T64(arrays["lr"])
    rw, rl = beta * pc / lc, beta * pr / lr
    loss = wmean(-F.logsigmoid(rw - rl - gamma), T64(w))
    loss.backward()
    exp = {"loss": loss.item(), "dc": npy(pc.grad), "dr": npy(pr.grad)}
    exp.update(stats_expect(w, npy(rw), npy(rl), arrays["pc"], arrays["pr"]))
    add(label, "simpo", {"beta": beta, "gamma": gamma}, arrays, exp)


# ------------------------------------------------------------- online RL
def case_kl(label, n, typ, scale):
    logp = f32(-rng.exponential(size=n) * scale)
    ref = f32(logp + rng.normal(size=n) * scale)
    lp = T64(logp, True)
    lr = T64(ref) - lp  # log(pi_ref/pi)
    if typ == 1:
        k = -lr
    elif typ == 2:
        k = 0.5 * lr ** 2
    else:  # Schulman's k3: (r - 1) - log r, r = pi_ref/pi
        k = torch.exp(lr) - 1 - lr
    k.sum().backward()
    add(label, "kl", {"type": typ}, {"logp": logp, "ref": ref}, {"kl": npy(k), "dkl": npy(lp.grad)})


def case_shape(label, B, Tn, beta, clip):
    score = f32(rng.normal(size=B) * 3)
    kl = f32(rng.normal(size=(B, Tn)))
    mask = f32(np.zeros((B, Tn)))
    for b in range(B):
        a = rng.integers(0, Tn)
        e = rng.integers(a, Tn + 1)
        mask[b, a:e] = 1
    mask[0, :] = 0  # an empty response gets nothing
    exp = np.where(mask > 0, -beta * kl.astype(np.float64), 0.0)
    for b in range(B):
        idx = np.nonzero(mask[b])[0]
        if len(idx):
            s = float(score[b])
            if clip > 0:
                s = min(max(s, -clip), clip)
            exp[b, idx[-1]] += s
    add(label, "shape", {"B": B, "T": Tn, "beta": beta, "clip": clip}, {"score": score, "kl": kl, "mask": mask},
        {"rewards": exp})


def gae_numpy(rew, val, mask, gamma, lam):
    """Textbook GAE over the masked positions of each row (Schulman 2016)."""
    adv = np.zeros_like(rew)
    ret = np.zeros_like(rew)
    for b in range(rew.shape[0]):
        idx = np.nonzero(mask[b])[0]
        r, v = rew[b, idx], val[b, idx]
        n = len(idx)
        a = np.zeros(n)
        last = 0.0
        for t in reversed(range(n)):
            nv = v[t + 1] if t + 1 < n else 0.0
            delta = r[t] + gamma * nv - v[t]
            last = delta + gamma * lam * last
            a[t] = last
        adv[b, idx] = a
        ret[b, idx] = a + v
    return adv, ret


def whiten_torch(x, mask, shift_mean):
    """TRL masked_whiten: unbiased masked variance, rsqrt(var + 1e-8)."""
    x, m = T64(x), T64(mask)
    mean = (x * m).sum() / m.sum()
    var = ((x - mean) ** 2 * m).sum() / m.sum()
    var = var * m.sum() / (m.sum() - 1)
    w = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        w = w + mean
    return npy(w * m), math.sqrt(var.item())


def case_gae(label, B, Tn, gamma, lam, gaps=False):
    rew = f32(rng.normal(size=(B, Tn)))
    val = f32(rng.normal(size=(B, Tn)))
    mask = f32(np.ones((B, Tn)))
    for b in range(B):
        mask[b, rng.integers(1, Tn):] = 0  # right padding
        if gaps and Tn > 4:
            mask[b, 1] = 0                  # a tool/user token inside the response
    adv, ret = gae_numpy(rew.astype(np.float64), val.astype(np.float64), mask, gamma, lam)
    white, sd = whiten_torch(f32(adv), mask, True)
    white_r, _ = whiten_torch(rew, mask, False)
    add(label, "gae", {"B": B, "T": Tn, "gamma": gamma, "lam": lam}, {"rewards": rew, "values": val, "mask": mask},
        {"adv": adv, "returns": ret, "white": white, "std": sd, "white_noshift": white_r})


def case_pg(label, op, B, Tn, eps_low, eps_high, beta, agg, spread=0.3, with_ref=True):
    logp = f32(-rng.exponential(size=(B, Tn)))
    old = f32(logp + rng.normal(size=(B, Tn)) * spread)
    ref = f32(logp + rng.normal(size=(B, Tn)) * 0.3)
    adv = f32(rng.normal(size=(B, Tn) if op == "ppo" else B))
    mask = f32(np.ones((B, Tn)))
    for b in range(B):
        mask[b, rng.integers(1, Tn + 1):] = 0
    mask[-1, :] = 0  # one empty row
    lp = T64(logp, True)
    m = T64(mask)
    A = T64(adv) if op == "ppo" else T64(adv)[:, None].expand(B, Tn)
    ratio = torch.exp(lp - T64(old))
    pg1 = -A * ratio
    pg2 = -A * torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    pg = torch.max(pg1, pg2)
    if with_ref:
        d = T64(ref) - lp
        kl = torch.exp(d) - d - 1  # k3, as in the GRPO paper / TRL
    else:
        kl = torch.zeros_like(pg)
    per = pg + beta * kl

    def aggregate(x):
        if agg == 0:  # token mean (PPO, GRPO "dapo"/"bnpo")
            return (x * m).sum() / m.sum()
        if agg == 1:  # GRPO paper: (1/G) sum_i 1/|o_i| sum_t
            return ((x * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
        return (x * m).sum() / (B * Tn)  # Dr. GRPO constant

    loss = aggregate(per)
    loss.backward()
    M = m.sum()
    exp = {"loss": loss.item(), "dlogp": npy(lp.grad), "pg_loss": aggregate(pg).item(),
           "kl": aggregate(kl).item(),
           "clipfrac": ((pg2 > pg1).double() * m).sum().item() / M.item(),
           "approx_kl": (0.5 * (lp - T64(old)) ** 2 * m).sum().item() / M.item(),
           "ratio_mean": (ratio * m).sum().item() / M.item()}
    arrays = {"logp": logp, "old": old, "adv": adv, "mask": mask}
    if with_ref:
        arrays["ref"] = ref
    add(label, op, {"B": B, "T": Tn, "eps_low": eps_low, "eps_high": eps_high, "beta": beta, "agg": agg},
        arrays, exp)


def case_value(label, n, clip):
    v = f32(rng.normal(size=n))
    old = f32(v + rng.normal(size=n) * 0.4)
    ret = f32(rng.normal(size=n) + v)
    mask = f32(rng.integers(0, 2, size=n))
    mask[0] = 1
    vt = T64(v, True)
    m = T64(mask)
    l1 = (vt - T64(ret)) ** 2
    if clip > 0:
        vc = torch.clamp(vt, T64(old) - clip, T64(old) + clip)
        l2 = (vc - T64(ret)) ** 2
    else:
        l2 = l1
    loss = 0.5 * ((torch.max(l1, l2) * m).sum() / m.sum())
    loss.backward()
    M = mask.sum()
    r64, v64, mm = ret.astype(np.float64), v.astype(np.float64), mask > 0
    ev = 1 - np.var((r64 - v64)[mm]) / np.var(r64[mm])
    add(label, "value", {"clip": clip}, {"v": v, "old": old, "ret": ret, "mask": mask},
        {"loss": loss.item(), "dv": npy(vt.grad), "clipfrac": float(((npy(l2) > npy(l1)) * mask).sum() / M),
         "ev": ev})


def case_adv(label, Pn, K):
    r = f32(rng.normal(size=(Pn, K)) * 2)
    r[0, :] = r[0, 0]  # a group with identical rewards: std 0, advantages 0
    rr = r.astype(np.float64)
    rloo = rr - (rr.sum(1, keepdims=True) - rr) / (K - 1)
    t = T64(r)
    grpo = (t - t.mean(1, keepdim=True)) / (t.std(1, keepdim=True) + 1e-4)
    add(label, "adv", {"P": Pn, "K": K}, {"r": r},
        {"rloo": rloo, "grpo": npy(grpo), "grpo_noscale": rr - rr.mean(1, keepdims=True)})


def case_klctl(label, beta, target, horizon, n_steps, kls, adaptive=1):
    b = beta
    betas = []
    for kl in f32(kls).astype(np.float64):
        if adaptive:
            e = np.clip(kl / target - 1, -0.2, 0.2)
            b = b * (1 + e * n_steps / horizon)
        betas.append(b)
    add(label, "klctl", {"beta": beta, "target": target, "horizon": horizon, "n_steps": n_steps,
                         "adaptive": adaptive}, {"kls": f32(kls)}, {"beta": b, "betas": np.array(betas)})


# ------------------------------------------------------------------- cases
def build_cases():
    case_xent("xent basic", 2, 3, 11, 11, 1.0, None)
    case_xent("xent padded rows Vp>V, SFT mask", 3, 4, 50, 64, 2.0, "mask")
    case_xent("xent weights, dloss 0.5", 2, 5, 37, 40, 1.0, "weights", dloss=0.5)
    case_xent("xent large logits (x1e3)", 2, 3, 20, 20, 1000.0, "mask")
    case_xent("xent ignore index -1", 2, 3, 7, 8, 3.0, None, ignore=True)
    case_xent("xent all masked -> 0", 2, 2, 5, 5, 1.0, "zero")
    case_xent("xent V=1000", 2, 2, 1000, 1024, 4.0, "mask")
    case_logprobs("logprobs + backward", 2, 4, 13, 16, 1.0)
    case_logprobs("logprobs large logits (x1e3)", 3, 2, 9, 9, 1000.0)
    case_entropy("entropy masked", 2, 4, 10, 12, 1.0, 1.0)
    case_entropy("entropy bonus dloss=-0.01, large logits", 2, 3, 30, 30, 50.0, -0.01)
    case_seq("seq sums", 3, 6)
    case_bt("bt plain", 16, 1.0)
    case_bt("bt margin + weights", 16, 2.0, margin=True, weights=True)
    case_bt("bt large gaps (x100)", 16, 100.0)
    case_bt("bt ties + centring 0.01", 12, 1.0, ties=True, center=0.01)
    case_davidson("davidson nu=1", 20, 1.0, 1.0)
    case_davidson("davidson nu=0.1 weights large r", 20, 30.0, 0.1, weights=True)
    case_rank_pairs("ranking K=4", 5, 4)
    case_rank_pairs("ranking K=9 ties absent weights", 6, 9, ties=True, absent=True, weights=True)
    case_pl("plackett-luce K=4", 5, 4)
    case_pl("plackett-luce ties absent weights", 6, 7, ties=True, absent=True, weights=True)
    case_pl("plackett-luce top=1 (best-of-K)", 5, 4, top=1)
    case_pl("plackett-luce top=2 K=2 == BT", 8, 2)
    case_thumbs("thumbs", 20, 2.0, 0.0)
    case_thumbs("thumbs bias, soft labels, weights", 20, 50.0, 0.7, soft=True, weights=True)
    case_ece("ece 10 bins", 500, 10)
    case_ece("ece 15 bins weights", 300, 15, weights=True)
    for beta in (0.01, 0.1, 1.0, 10.0):
        case_dpo(f"dpo beta={beta}", 16, 0, beta, scale=3.0)
    case_dpo("dpo large h (beta 5, scale 50)", 16, 0, 5.0, scale=50.0)
    case_dpo("cdpo eps=0.1 weights", 16, 0, 0.1, eps=0.1, weights=True)
    case_dpo("robust dpo eps=0.1", 16, 1, 0.1, eps=0.1)
    case_dpo("robust dpo eps=0.3 beta 0.5", 16, 1, 0.5, eps=0.3)
    case_dpo("ipo tau=0.1", 16, 2, 0.1)
    case_dpo("ipo tau=0.5 per-token (TRL)", 16, 2, 0.5, per_token=1, weights=True)
    case_kto("kto beta=0.1 (z0 > 0)", 16, 0.1, kl_shift=0.5)
    case_kto("kto z0 clamped at 0", 16, 0.1, kl_shift=-2.0)
    case_kto("kto lambdas 1.33/1, beta 1, weights", 16, 1.0, ld=1.33, lu=1.0, weights=True)
    case_orpo("orpo lambda=0.1", 16, 0.1)
    case_orpo("orpo lambda=0.25 near-zero logp, weights", 16, 0.25, near_zero=True, weights=True)
    case_simpo("simpo beta 2 gamma 1", 16, 2.0, 1.0)
    case_simpo("simpo beta 10 gamma 3 weights", 16, 10.0, 3.0, weights=True)
    for typ in (1, 2, 3):
        case_kl(f"kl k{typ}", 50, typ, 1.0)
    case_kl("kl k3 large log-ratio", 50, 3, 5.0)
    case_shape("shape beta 0.05", 4, 6, 0.05, 0.0)
    case_shape("shape clip 1", 5, 7, 0.2, 1.0)
    case_gae("gae gamma 1 lambda 0.95", 4, 8, 1.0, 0.95)
    case_gae("gae gamma 0.99 lambda 0.9 gaps", 5, 9, 0.99, 0.9, gaps=True)
    case_gae("gae lambda 1", 3, 6, 1.0, 1.0)
    for agg in (0, 1, 2):
        case_pg(f"ppo agg={agg}", "ppo", 4, 7, 0.2, 0.2, 0.0, agg, with_ref=False)
    case_pg("ppo far off-policy (clipping active)", "ppo", 4, 8, 0.2, 0.2, 0.0, 0, spread=1.0, with_ref=False)
    case_pg("ppo clip-higher 0.2/0.28", "ppo", 3, 6, 0.2, 0.28, 0.0, 0, spread=0.5, with_ref=False)
    case_pg("grpo paper (seq mean, beta 0.04)", "grpo", 5, 6, 0.2, 0.2, 0.04, 1, spread=0.5)
    case_pg("grpo dapo token mean", "grpo", 5, 6, 0.2, 0.2, 0.04, 0, spread=0.5)
    case_pg("grpo dr-grpo constant, beta 0.1", "grpo", 4, 5, 0.2, 0.2, 0.1, 2, spread=0.5)
    case_value("value clip 0.2", 40, 0.2)
    case_value("value unclipped", 40, 0.0)
    case_adv("rloo / grpo advantages K=4", 5, 4)
    case_adv("rloo / grpo advantages K=2", 3, 2)
    case_klctl("kl controller", 0.15, 6.0, 10000, 64, [1.0, 6.0, 7.0, 30.0, 0.0, 5.5])
    case_klctl("kl controller fixed", 0.05, 6.0, 10000, 64, [30.0, 0.0], adaptive=0)
    for n in (1, 2, 4, 16, 64):
        add(f"bon kl n={n}", "bon", {"n": n}, {}, {"kl": math.log(n) - (n - 1) / n})


# ---------------------------------------------------------- I/O and check
def fmt(v):
    return "%.9e" % float(v)


def write_cases(path):
    with open(path, "w") as f:
        for _, op, params, arrays, _ in CASES:
            f.write(f"case {op}\n")
            for k, v in params.items():
                f.write(f"p {k} {v!r}\n")
            for k, a in arrays.items():
                a = np.asarray(a).ravel()
                if a.dtype.kind in "iu":
                    f.write(f"i {k} {a.size} " + " ".join(str(int(x)) for x in a) + "\n")
                else:
                    f.write(f"f {k} {a.size} " + " ".join(fmt(x) for x in a.astype(np.float32)) + "\n")
            f.write("end\n")


def read_results(path):
    out, cur = [], None
    with open(path) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "case":
                cur = {}
            elif tok[0] == "s":
                cur[tok[1]] = float(tok[2])
            elif tok[0] == "f":
                cur[tok[1]] = np.array([float(x) for x in tok[3:]], dtype=np.float64)
            elif tok[0] == "end":
                out.append(cur)
    return out


def close(c, r):
    c = np.asarray(c, np.float64).ravel()
    r = np.asarray(r, np.float64).ravel()
    if c.shape != r.shape:
        return False, f"shape {c.shape} vs {r.shape}"
    if not np.all(np.isfinite(c)) and not np.array_equal(np.isnan(c), np.isnan(r)):
        return False, "non-finite value"
    scale = max(1.0, float(np.max(np.abs(r))) if r.size else 1.0)
    err = np.abs(c - r)
    bad = err > ATOL * scale + RTOL * np.abs(r)
    if np.any(bad):
        i = int(np.argmax(bad))
        return False, f"max |diff| {err.max():.3g} (at {i}: C {c[i]:.9g}, ref {r[i]:.9g})"
    return True, f"max |diff| {err.max() if err.size else 0:.2g}"


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"{TOOL} not built; run 'make'")
        print("0 passed, 1 failed")
        return 1
    build_cases()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        inp, outp = os.path.join(d, "in.txt"), os.path.join(d, "out.txt")
        write_cases(inp)
        p = subprocess.run([TOOL, inp, outp], capture_output=True, text=True)
        if p.returncode != 0:
            print("obj_ref failed:", p.stderr.strip())
            print(f"0 passed, {len(CASES)} failed")
            return 1
        results = read_results(outp)
    if len(results) != len(CASES):
        print(f"obj_ref returned {len(results)} results for {len(CASES)} cases")
        print(f"0 passed, {len(CASES)} failed")
        return 1
    verbose = bool(os.environ.get("RLHF_TEST_VERBOSE"))
    for (label, op, _, _, exp), got in zip(CASES, results):
        msgs, ok = [], True
        for key, ref in exp.items():
            if key not in got:
                ok = False
                msgs.append(f"{key}: missing from C output")
                continue
            good, msg = close(got[key], ref)
            ok &= good
            if not good or verbose:
                msgs.append(f"{key}: {msg}")
        if ok:
            passed += 1
            if verbose:
                print(f"ok   {label}: " + "; ".join(msgs))
        else:
            failed += 1
            print(f"FAIL {label} ({op}): " + "; ".join(msgs))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
