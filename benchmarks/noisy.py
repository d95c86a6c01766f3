"""Noisy-weight training step vs a plain backprop step (JSON).

One step = ``rule.gradients`` (the training forward pass, with a fresh noise
draw per layer, and the backward pass) + ``SGD.step``, on a 784-500-10 ReLU
network (cross-entropy, batch 128, float32 by default), for: plain ``Dense``
layers, ``NoisyDense`` (additive and multiplicative), ``LearnableNoiseDense``
(one log σ² per layer, and per weight).  The variants are timed round-robin
(``--rounds`` rounds of ``--steps`` steps each; the median round is reported),
so a change in machine load affects all of them alike.  Also reported: the
time of the noise draw alone (``Generator.normal`` of the network's weight
count), the ratio of each variant to the plain step (target: ≤ 1.3) and the
same ratio with the draw's time taken out (what the layers themselves add).

Usage: python benchmarks/noisy.py [--sizes 784 500 10] [--batch 128] [--dtype float32]
"""

from __future__ import annotations

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random``
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import json
import statistics
import time

import bionp as bnp
from bionp import nn, optim, rules
from bionp.backend import synchronize

VARIANTS = ("plain", "noisy_additive", "noisy_multiplicative", "learnable_per_layer",
            "learnable_per_weight")


def build(variant, sizes, dtype):
    layers = []
    for i in range(len(sizes) - 1):
        a, b = sizes[i], sizes[i + 1]
        kw = dict(init="he_normal", rng=i, dtype=dtype)
        if variant == "plain":
            layers.append(nn.Dense(a, b, **kw))
        elif variant.startswith("noisy"):
            layers.append(nn.NoisyDense(a, b, sigma=0.03, mode=variant.split("_")[1], **kw))
        else:
            layers.append(nn.LearnableNoiseDense(a, b, per_weight=variant.endswith("weight"), **kw))
    return nn.Sequential(layers, ["relu"] * (len(sizes) - 2) + ["identity"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[784, 500, 10], help="layer widths")
    ap.add_argument("--batch", type=int, default=128, help="batch size")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7, help="round-robin rounds (median reported)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args()
    if "plain" not in args.variants:
        args.variants.insert(0, "plain")
    g = bnp.random.Generator(0)
    x = g.normal(0, 1, (args.batch, args.sizes[0]), dtype=args.dtype)
    y = g.integers(0, args.sizes[-1], args.batch)
    loss = nn.CrossEntropyLoss()
    setups = {}
    for v in args.variants:
        net = build(v, args.sizes, args.dtype)
        setups[v] = (net, rules.Backprop(), optim.SGD(net, lr=1e-3, momentum=0.9))

    def run(v, n):
        net, rule, opt = setups[v]
        t0 = time.perf_counter()
        for _ in range(n):
            opt.step(rule.gradients(net, x, y, loss))
        synchronize()
        return (time.perf_counter() - t0) / n

    for v in args.variants:  # warm-up
        run(v, 3)
    times = {v: [] for v in args.variants}
    draw = []
    n_weights = sum(args.sizes[i] * args.sizes[i + 1] for i in range(len(args.sizes) - 1))
    for _ in range(args.rounds):
        for v in args.variants:
            times[v].append(run(v, args.steps))
        t0 = time.perf_counter()
        for _ in range(args.steps):
            for i in range(len(args.sizes) - 1):
                g.normal(0.0, 1.0, (args.sizes[i + 1], args.sizes[i]), dtype=args.dtype)
        synchronize()
        draw.append((time.perf_counter() - t0) / args.steps)
    med = {v: statistics.median(t) for v, t in times.items()}
    plain = med["plain"]
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = {
        "benchmark": "noisy", "config": vars(args), "threads": threads,
        "backend": bnp.backend_name(), "n_weights": n_weights,
        "ms_per_step": {v: round(1e3 * t, 3) for v, t in med.items()},
        "ratio_to_plain": {v: round(t / plain, 3) for v, t in med.items()},
        "noise_draw_ms": round(1e3 * statistics.median(draw), 3),
        "noise_draw_over_plain_step": round(statistics.median(draw) / plain, 3),
        # what the layers add beyond the generator's draw (the draw is Generator.normal's cost)
        "ratio_to_plain_without_draw": {v: round((t - statistics.median(draw)) / plain, 3)
                                        for v, t in med.items() if v != "plain"},
        "target_ratio": 1.3,
        "meets_target": {v: bool(t / plain <= 1.3) for v, t in med.items() if v != "plain"},
        "rounds_ms": {v: [round(1e3 * s, 3) for s in t] for v, t in times.items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
