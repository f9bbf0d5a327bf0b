#!/usr/bin/env python3
"""gen_synthetic.py — the synthetic preference task of issue 4 (standard library only).

Rule: annotators prefer the response that contains the word named in the prompt.
  prompt   "<template with word w> #<n>"   (n makes prompts distinct, so held-out
           prompts are new strings while the 12 words are shared)
  response "i say <x>."   for a word x
Writes into OUTDIR:
  demos.jsonl   {prompt, response}: half are "say" prompts answered with x uniform
                over the words (so the SFT policy has no preference: P(rule
                answer) ~ 1/12, pairwise ~ 50 %), half are "echo <c> #n" -> "i say <c>."
                for a colour c from a DISJOINT word list (the policy learns to
                copy a word from the prompt, a skill DPO/KTO can then extend to
                the task's words, like a pretrained model's; on the task's words
                the demonstrations are uniform, so the SFT policy is indifferent)
  pairs.jsonl   {prompt, chosen, rejected, annotator}: chosen says w, rejected another word
  thumbs.jsonl  {prompt, completion, label, annotator}: label true iff the completion says w
  text.txt      the texts, for training a tokenizer
Usage: gen_synthetic.py OUTDIR [N_DEMOS N_PAIRS N_THUMBS SEED]
"""
import json, os, random, sys

WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle", "forest", "rocket", "garden", "silver"]
COLOURS = ["blue", "green", "yellow", "purple", "orange", "black", "white", "brown", "pink", "gray", "gold", "red"]
TEMPLATES = ["say {w}", "the word is {w}", "please {w}", "repeat {w}", "tell me {w}", "i want {w}"]  # the word always follows a space: the same token as in the response

def prompt(rng):
    w = rng.choice(WORDS)
    return w, rng.choice(TEMPLATES).format(w=w) + " #%d" % rng.randrange(100000)

def main():
    out = sys.argv[1]
    nd, npairs, nth, seed = (int(x) for x in (sys.argv[2:6] + ["600", "600", "600", "1"][len(sys.argv) - 2:]))
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    text = []
    with open(os.path.join(out, "demos.jsonl"), "w") as f:
        for _ in range(nd):
            w, p = prompt(rng)
            r = "i say %s." % rng.choice(WORDS)
            if rng.random() < 0.5:
                c = rng.choice(COLOURS)
                p, r = "echo %s #%d" % (c, rng.randrange(100000)), "i say %s." % c
            f.write(json.dumps({"prompt": p, "response": r}) + "\n")
            text += [p, r]
    with open(os.path.join(out, "pairs.jsonl"), "w") as f:
        for _ in range(npairs):
            w, p = prompt(rng)
            other = rng.choice([x for x in WORDS if x != w])
            f.write(json.dumps({"prompt": p, "chosen": "i say %s." % w, "rejected": "i say %s." % other,
                                "annotator": "sim:rule"}) + "\n")
    with open(os.path.join(out, "thumbs.jsonl"), "w") as f:
        for i in range(nth):
            w, p = prompt(rng)
            x = w if i % 2 == 0 else rng.choice([y for y in WORDS if y != w])
            f.write(json.dumps({"prompt": p, "completion": "i say %s." % x, "label": x == w,
                                "annotator": "sim:rule"}) + "\n")
    with open(os.path.join(out, "text.txt"), "w") as f:
        f.write("\n".join(text) + "\n")

main()
