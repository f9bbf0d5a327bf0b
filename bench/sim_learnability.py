#!/usr/bin/env python3
"""bench/sim_learnability.py — can a tiny character-level GPT learn the calculator world?

Trains the issue's reference model (2 layers, width 128, 4 heads, character
tokens, ~0.4M parameters) on a world's sft.jsonl with the loss on response
characters only, and at given step counts greedily answers the held-out prompts,
writing responses_<step>.jsonl for `rlhf sim eval` and printing accuracy split
by prompt form. Also times optimizer steps on the CPU with 2 threads, so a step
count can be turned into CPU minutes. A measurement tool (PyTorch, by hand or on
a GPU box), never run by tests.

  python3 bench/sim_learnability.py --world W --out DIR [--steps 250,500,1000,2000,3000] [--device cuda]
"""
import argparse, json, os, random, re, time
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--world', required=True)
ap.add_argument('--out', required=True)
ap.add_argument('--steps', default='250,500,1000,2000,3000')
ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
ap.add_argument('--batch', type=int, default=64)
ap.add_argument('--lr', type=float, default=3e-3)
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--cpu-timing-steps', type=int, default=30)
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
torch.manual_seed(args.seed); random.seed(args.seed)
sft = [json.loads(l) for l in open(os.path.join(args.world, 'sft.jsonl'))]
held = [json.loads(l) for l in open(os.path.join(args.world, 'heldout.jsonl'))]
SEP, EOS = '|', '\n'
chars = sorted(set(''.join(d['prompt'] + d['response'] for d in sft + [{'prompt': h['prompt'], 'response': ''} for h in held]) + SEP + EOS))
stoi = {c: i for i, c in enumerate(chars)}; V = len(chars)
enc = lambda s: [stoi[c] for c in s]
T = 64
docs = []
for d in sft:
    p, r = enc(d['prompt'] + SEP), enc(d['response'] + EOS)
    x = (p + r)[:T + 1]
    docs.append((x, ([0] * (len(p) - 1) + [1] * len(r))[:len(x) - 1]))

class Block(nn.Module):
    def __init__(s, C, H):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.att = nn.MultiheadAttention(C, H, batch_first=True)
        s.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C))
    def forward(s, x, mask):
        h = s.ln1(x)
        x = x + s.att(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + s.mlp(s.ln2(x))

class GPT(nn.Module):
    def __init__(s, C=128, L=2, H=4):
        super().__init__()
        s.tok, s.pos = nn.Embedding(V, C), nn.Embedding(T, C)
        s.blocks = nn.ModuleList([Block(C, H) for _ in range(L)])
        s.ln, s.head = nn.LayerNorm(C), nn.Linear(C, V)
    def forward(s, idx):
        t = idx.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), 1)
        x = s.tok(idx) + s.pos(torch.arange(t, device=idx.device))
        for b in s.blocks: x = b(x, mask)
        return s.head(s.ln(x))

def batch(dev):
    bs = random.sample(docs, args.batch); L = max(len(x) for x, _ in bs) - 1
    X = torch.zeros(args.batch, L, dtype=torch.long); Y = torch.zeros_like(X); M = torch.zeros(args.batch, L)
    for i, (x, m) in enumerate(bs):
        n = len(x) - 1
        X[i, :n] = torch.tensor(x[:-1]); Y[i, :n] = torch.tensor(x[1:]); M[i, :n] = torch.tensor(m, dtype=torch.float)
    return X.to(dev), Y.to(dev), M.to(dev)

def train_step(model, opt, step, dev):
    X, Y, M = batch(dev)
    for g in opt.param_groups: g['lr'] = args.lr * min(1.0, (step + 1) / 100)
    logits = model(X)
    loss = (F.cross_entropy(logits.reshape(-1, V), Y.reshape(-1), reduction='none') * M.reshape(-1)).sum() / M.sum()
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()

# CPU speed of the same model with 2 threads (the target machine has 2 cores).
torch.set_num_threads(2)
cm = GPT(); co = torch.optim.AdamW(cm.parameters(), lr=args.lr, weight_decay=0.0)
train_step(cm, co, 0, 'cpu'); t0 = time.time()
for i in range(args.cpu_timing_steps): train_step(cm, co, i, 'cpu')
cpu_sps = args.cpu_timing_steps / (time.time() - t0)
print(f'cpu (2 threads): {cpu_sps:.1f} steps/s, batch {args.batch}', flush=True)

dev = args.device
model = GPT().to(dev)
print('params', sum(p.numel() for p in model.parameters()), 'device', dev, flush=True)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)

num = re.compile(r'-?\d+')
def final_number(r):  # the generated formats only: after "so", else after "=", else first number
    for key in (' so ', '='):
        if key in r:
            m = num.search(r[r.rindex(key) + len(key):])
            if m: return int(m.group())
    m = num.search(r)
    return int(m.group()) if m else None

@torch.no_grad()
def answer_all(step):
    model.eval()
    groups = {}
    for h in held: groups.setdefault(len(h['prompt']), []).append(h)
    rows = []
    for _, hs in groups.items():
        ids = torch.tensor([enc(h['prompt'] + SEP) for h in hs], device=dev)
        start = ids.shape[1]; done = torch.zeros(len(hs), dtype=torch.bool, device=dev)
        for _ in range(T - start):
            nx = model(ids)[:, -1].argmax(-1)
            ids = torch.cat([ids, nx[:, None]], 1)
            done |= nx == stoi[EOS]
            if done.all(): break
        for h, row in zip(hs, ids.tolist()):
            s = ''.join(chars[j] for j in row[start:])
            rows.append((h, s.split(EOS)[0]))
    with open(os.path.join(args.out, f'responses_{step}.jsonl'), 'w') as f:
        for h, r in rows: f.write(json.dumps({'prompt': h['prompt'], 'response': r}) + '\n')
    plain = [final_number(r) == h['gold'] for h, r in rows if h['suggestion'] is None]
    lead = [final_number(r) == h['gold'] for h, r in rows if h['suggestion'] is not None]
    model.train()
    return sum(plain) / max(1, len(plain)), sum(lead) / max(1, len(lead))

checks = sorted(int(s) for s in args.steps.split(','))
t0 = time.time(); step = 0; loss = float('nan')
for c in checks:
    while step < c:
        loss = train_step(model, opt, step, dev); step += 1
    pa, la = answer_all(step)
    print(f'step {step}: loss {loss:.4f}  held-out accuracy plain {pa:.3f} leading {la:.3f}  '
          f'(= {step / cpu_sps / 60:.1f} CPU-minutes at the measured 2-thread speed; {time.time() - t0:.0f}s here)', flush=True)
