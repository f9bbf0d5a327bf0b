"""src/align against independent numpy implementations on the same data.

- Raking: a numpy IPF written from the definition (bincount per margin). Without
  a cap the raked weights are unique (the minimum-KL solution that matches the
  margins), so the C weights must equal numpy's converged ones whatever the loop
  order details. With a cap the fixed point depends on the procedure, so numpy
  mirrors the documented one (rake every margin, trim at cap x mean until none
  is over, renormalise) for the same number of cycles.
- Dawid-Skene: a numpy EM (np.add.at M-step, log-space E-step) from the same
  majority-vote start, and from a random start, for the same iterations.
- Krippendorff's alpha: the coincidence matrix built explicitly in numpy
  (V x V), all four metrics, on random data with missing values.

The C side is build/tools/align_ref (tests/tools/align_ref.c).
Run with /usr/bin/python3 (numpy). Prints "N passed, N failed".
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

BUILD = os.environ.get("RLHF_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "tools", "align_ref")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("  FAIL:", what)


def run_tool(mode, numbers):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(" ".join(numbers))
        path = f.name
    try:
        out = subprocess.run([TOOL, mode, path], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    return out.split("\n")


def fmt(a):
    return ["nan" if np.isnan(x) else repr(float(x)) for x in np.asarray(a, dtype=float).ravel()]


# ---- raking ------------------------------------------------------------------

def c_rake(codes, ncat, targets, base, cap, max_iter, tol):
    nums = [str(codes.shape[1]), str(len(ncat)), repr(cap), str(max_iter), repr(tol), "1" if base is not None else "0"]
    nums += [str(k) for k in ncat] + fmt(np.concatenate(targets)) + [str(int(c)) for c in codes.ravel()]
    if base is not None:
        nums += fmt(base)
    lines = run_tool("rake", nums)
    rep = lines[0].split()
    w = np.array([float(x) for x in lines[1:] if x.strip()])
    return w, {"iterations": int(rep[1]), "converged": int(rep[2]), "max_err": float(rep[3]),
               "n_capped": int(rep[4]), "ess": float(rep[5]), "deff": float(rep[6])}


def np_margins(codes, ncat, w):
    return [np.bincount(codes[v], weights=w, minlength=ncat[v]) / w.sum() for v in range(len(ncat))]


def np_ipf(codes, ncat, targets, base, tol=1e-13, max_iter=100000):
    """Plain IPF to convergence, no cap."""
    w = np.ones(codes.shape[1]) if base is None else base.astype(float).copy()
    for _ in range(max_iter):
        for v in range(len(ncat)):
            share = np.bincount(codes[v], weights=w, minlength=ncat[v]) / w.sum()
            w = w * (targets[v] / share)[codes[v]]
        err = max(np.abs(m - t).max() for m, t in zip(np_margins(codes, ncat, w), targets))
        if err < tol:
            break
    return w / w.mean()


def np_rake_capped(codes, ncat, targets, base, cap, cycles):
    """The documented capped procedure, for a fixed number of cycles."""
    w = np.ones(codes.shape[1]) if base is None else base.astype(float).copy()
    w = w / w.mean()
    for _ in range(cycles):
        for v in range(len(ncat)):
            share = np.bincount(codes[v], weights=w, minlength=ncat[v]) / w.sum()
            w = w * (targets[v] / share)[codes[v]]
        for _ in range(1000):
            lim = cap * w.mean()
            over = w > lim * (1 + 1e-12)
            if not over.any():
                break
            w[over] = lim
        w = w / w.mean()
    return w


def test_raking():
    rng = np.random.default_rng(5)
    n, ncat = 3000, [4, 3, 5]
    # A skewed sample: attribute probabilities far from the targets, correlated attributes.
    a0 = rng.choice(4, n, p=[0.55, 0.25, 0.15, 0.05])
    a1 = (a0 + rng.choice(3, n, p=[0.6, 0.3, 0.1])) % 3
    a2 = rng.choice(5, n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    codes = np.stack([a0, a1, a2])
    targets = [rng.dirichlet(np.full(k, 5.0)) for k in ncat]

    w_c, rep = c_rake(codes, ncat, targets, None, 0.0, 5000, 1e-12)
    w_np = np_ipf(codes, ncat, targets, None)
    rel = np.abs(w_c - w_np).max() / w_np.max()
    check(rep["converged"] == 1, "uncapped raking converged (%s)" % rep)
    check(rel < 1e-8, "uncapped raking: C vs numpy IPF max rel diff %.3g" % rel)
    ess = w_np.sum() ** 2 / (w_np ** 2).sum()
    check(abs(rep["ess"] - ess) < 1e-6 * ess, "ESS C %.6f vs numpy %.6f" % (rep["ess"], ess))
    check(abs(rep["deff"] - n / ess) < 1e-8 * n / ess, "design effect")
    print("  raking, no cap: %d cycles, max |w_C - w_numpy| / max w = %.2g, ESS %.1f of %d"
          % (rep["iterations"], rel, rep["ess"], n))

    # With base weights and a cap. Uncapped, the largest weight is ~31x the mean.
    # At 5x the cap binds and raking still reaches the margins (re-raking after
    # trimming spreads the excess); at 3x the margins are out of reach and the
    # report must say so.
    base = rng.uniform(0.5, 2.0, n)
    uncapped_max = np_ipf(codes, ncat, targets, base).max()
    check(uncapped_max > 5, "the caps bind on this data (uncapped max %.2f)" % uncapped_max)
    for cap, must_converge in ((5.0, True), (3.0, False)):
        w_c, rep = c_rake(codes, ncat, targets, base, cap, 2000, 1e-10)
        w_np = np_rake_capped(codes, ncat, targets, base, cap, rep["iterations"])
        rel = np.abs(w_c - w_np).max() / w_np.max()
        check(rel < 1e-9, "cap %g: C vs numpy (same procedure, %d cycles) max rel diff %.3g" % (cap, rep["iterations"], rel))
        check(w_c.max() <= cap * w_c.mean() * (1 + 1e-9), "cap %g: weights <= cap x mean (max %.4f)" % (cap, w_c.max()))
        check(rep["converged"] == int(must_converge), "cap %g: converged = %d" % (cap, rep["converged"]))
        err = max(np.abs(m - t).max() for m, t in zip(np_margins(codes, ncat, w_c), targets))
        check(abs(err - rep["max_err"]) < 1e-12, "cap %g: reported margin error %.3g = numpy's %.3g" % (cap, rep["max_err"], err))
        print("  raking, cap %g: %d cycles, converged %d, max margin error %.2g, %d at the cap, ESS %.1f, max rel diff %.2g"
              % (cap, rep["iterations"], rep["converged"], err, rep["n_capped"], rep["ess"], rel))


# ---- Dawid-Skene --------------------------------------------------------------

def c_ds(items, annots, labels, ni, na, K, s, max_iter, tol, init=None):
    nums = [str(len(items)), str(ni), str(na), str(K), repr(s), str(max_iter), repr(tol), "1" if init is not None else "0"]
    for i, a, l in zip(items, annots, labels):
        nums += [str(i), str(a), str(l)]
    if init is not None:
        nums += fmt(init)
    lines = [x for x in run_tool("ds", nums) if x.strip()]
    head = lines[0].split()
    vals = np.array([float(x) for x in lines[1:]])
    prior = vals[:K]
    conf = vals[K:K + na * K * K].reshape(na, K, K)
    post = vals[K + na * K * K:].reshape(ni, K)
    return int(head[1]), int(head[2]), float(head[3]), prior, conf, post


def np_ds(items, annots, labels, ni, na, K, s, iters, init=None):
    if init is None:
        T = np.zeros((ni, K))
        np.add.at(T, (items, labels), 1.0)
        T = T / T.sum(1, keepdims=True)
    else:
        T = init.copy()
    ll = None
    for _ in range(iters):
        p = s + T.sum(0)
        p = p / p.sum()
        e = np.full((na, K, K), float(s))          # e[a, true c, said k]
        np.add.at(e, (annots, slice(None), labels), T[items])
        e = e / e.sum(2, keepdims=True)
        logT = np.tile(np.log(p), (ni, 1))
        np.add.at(logT, items, np.log(e[annots, :, labels]))
        mx = logT.max(1, keepdims=True)
        lz = mx + np.log(np.exp(logT - mx).sum(1, keepdims=True))
        ll = float(lz.sum())
        T = np.exp(logT - lz)
    return p, e, T, ll


def test_dawid_skene():
    rng = np.random.default_rng(9)
    ni, na, K = 400, 9, 3
    truth = rng.choice(K, ni, p=[0.5, 0.3, 0.2])
    # Random confusion matrices: 3 good annotators, 4 noisy, 2 spammers.
    conf = np.empty((na, K, K))
    for a in range(na):
        acc = [0.9, 0.85, 0.8, 0.6, 0.55, 0.5, 0.5, 1 / 3, 1 / 3][a]
        for c in range(K):
            off = rng.dirichlet(np.ones(K - 1)) * (1 - acc)
            conf[a, c] = np.insert(off, c, acc)
    items, annots, labels = [], [], []
    for i in range(ni):
        for a in rng.choice(na, 5, replace=False):   # 5 labels per item
            items.append(i)
            annots.append(a)
            labels.append(rng.choice(K, p=conf[a, truth[i]]))
    items, annots, labels = map(np.array, (items, annots, labels))

    for s in (0.01, 0.5):
        it, conv, ll_c, p_c, e_c, T_c = c_ds(items, annots, labels, ni, na, K, s, 60, 0.0)
        p_n, e_n, T_n, ll_n = np_ds(items, annots, labels, ni, na, K, s, it)
        d = max(np.abs(p_c - p_n).max(), np.abs(e_c - e_n).max(), np.abs(T_c - T_n).max())
        check(d < 1e-8, "DS (smoothing %g, majority-vote start, %d iterations): C vs numpy max diff %.3g" % (s, it, d))
        check(abs(ll_c - ll_n) < 1e-7 * abs(ll_n), "DS log-likelihood C %.10g vs numpy %.10g" % (ll_c, ll_n))
        acc_ds = (T_c.argmax(1) == truth).mean()
        mv = np.zeros((ni, K))
        np.add.at(mv, (items, labels), 1)
        acc_mv = (mv.argmax(1) == truth).mean()
        print("  Dawid-Skene s=%g: %d iterations, max |C - numpy| %.2g, accuracy DS %.3f vs majority vote %.3f"
              % (s, it, d, acc_ds, acc_mv))
        check(acc_ds >= acc_mv, "DS at least as accurate as majority vote")

    init = rng.dirichlet(np.ones(K), ni)
    it, conv, ll_c, p_c, e_c, T_c = c_ds(items, annots, labels, ni, na, K, 0.01, 25, 0.0, init)
    p_n, e_n, T_n, ll_n = np_ds(items, annots, labels, ni, na, K, 0.01, it, init)
    d = max(np.abs(p_c - p_n).max(), np.abs(e_c - e_n).max(), np.abs(T_c - T_n).max())
    check(d < 1e-8, "DS from a given random start: C vs numpy max diff %.3g" % d)


# ---- Krippendorff's alpha ---------------------------------------------------------

def np_alpha(x, metric):
    vals = np.unique(x[~np.isnan(x)])
    V = len(vals)
    o = np.zeros((V, V))
    for u in range(x.shape[1]):
        col = x[:, u][~np.isnan(x[:, u])]
        m = len(col)
        if m < 2:
            continue
        cnt = np.array([(col == v).sum() for v in vals], dtype=float)
        o += (np.outer(cnt, cnt) - np.diag(cnt)) / (m - 1)
    nc = o.sum(1)
    keep = nc > 0            # values only seen in unpairable units drop out
    o, nc, vals = o[np.ix_(keep, keep)], nc[keep], vals[keep]
    n = nc.sum()
    if metric == 0:
        d2 = 1.0 - np.eye(len(vals))
    elif metric == 2:
        d2 = np.subtract.outer(vals, vals) ** 2
    elif metric == 3:
        s = np.add.outer(vals, vals)
        d2 = np.where(s > 0, np.subtract.outer(vals, vals) / np.where(s > 0, s, 1), 0.0) ** 2
    else:
        d2 = np.zeros((len(vals), len(vals)))
        for c in range(len(vals)):
            for k in range(len(vals)):
                lo, hi = min(c, k), max(c, k)
                d2[c, k] = (nc[lo:hi + 1].sum() - (nc[c] + nc[k]) / 2) ** 2
    return 1 - (n - 1) * (o * d2).sum() / (np.outer(nc, nc) * d2).sum()


def test_alpha():
    rng = np.random.default_rng(3)
    for trial in range(3):
        nc, nu = 6, 40
        truth = rng.integers(1, 6, nu)
        x = np.where(rng.random((nc, nu)) < 0.7, truth, rng.integers(1, 6, (nc, nu))).astype(float)
        x[rng.random((nc, nu)) < 0.3] = np.nan
        if trial == 2:
            x = x + rng.normal(0, 0.3, x.shape)   # continuous values: V ~ number of ratings
        for metric in (0, 1, 2, 3):
            if trial == 2 and metric in (0, 1):
                continue
            line = [l for l in run_tool("alpha", [str(nc), str(nu), str(metric)] + fmt(x)) if l.strip()][0].split()
            a_c, a_n = float(line[1]), np_alpha(x, metric)
            check(abs(a_c - a_n) < 1e-12, "alpha trial %d metric %d: C %.15f vs numpy %.15f" % (trial, metric, a_c, a_n))
    print("  Krippendorff alpha: C = numpy coincidence matrix on random data (4 metrics, missing values)")


if __name__ == "__main__":
    if not os.path.exists(TOOL):
        print("  FAIL: %s not built (make)" % TOOL)
        print("0 passed, 1 failed")
        sys.exit(1)
    for t in (test_raking, test_dawid_skene, test_alpha):
        try:
            t()
        except Exception as ex:  # a crash is a failure, not a skip
            failed += 1
            print("  FAIL: %s raised %r" % (t.__name__, ex))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
