"""Cost of each bio transformation, and of the default chain, relative to a backprop step (JSON).

784-500-10 ReLU MLP, cross-entropy, batch 100, float32 (``--dtype``), SGD with
momentum.  A backprop step is ``rule.gradients`` + ``optimizer.step``.  Each
transform's cost is its time per training step **amortised over its
schedule** (crystallisation tests every 100 steps, volume-dependent noise
redrawn every 100 steps and rejuvenation every 600 in the default chain): the
total time of ``--steps`` (default 600) consecutive calls divided by their
number, with the gradients restored from a copy before every call (not timed)
so that repeated scaling cannot drift into subnormal numbers.  Rows ending in
``@every_step`` time a schedule of 1 (the seed's per-step behaviour).  Every
quantity is the minimum over ``--repeats`` rounds, measured in one process,
so machine load affects both sides of each ratio.

Usage: python benchmarks/plasticity.py [--steps 600] [--repeats 3] [--batch-size 100] [--dtype float32]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse
import json
import time

import numpy as np

import bionp as bnp
from bionp import nn, optim, plasticity as bio, rules


def variants():
    """name -> factory of a chain (not initialised)."""
    c = bio.BioConfig()
    one = {
        "fuzzy_learning_rates": lambda: bio.fuzzy_learning_rates(c.fuzzy_learning_rate_factor_nu, rng=1),
        "crystallize": lambda: bio.crystallize(c.crystal_thresh, c.dampening_factor, every=c.crystallize_every),
        "crystallize@every_step": lambda: bio.crystallize(c.crystal_thresh, c.dampening_factor, every=1),
        "volume_dependent_lr": lambda: bio.volume_dependent_lr(relative=True, redraw_every=c.lr_redraw_every,
                                                               rng=2),
        "volume_dependent_lr@every_step": lambda: bio.volume_dependent_lr(relative=True, redraw_every=1, rng=2),
        "scale_grad": lambda: bio.scale_grad(c.scale_grad_strength),
        "l1_reg": lambda: bio.l1_reg(c.l1_strength),
        "rejuvenate_weights": lambda: bio.rejuvenate_weights(c.rejuvenation_parameter_dre,
                                                             every=c.rejuvenate_every, rng=3),
        "rejuvenate_weights@every_step": lambda: bio.rejuvenate_weights(c.rejuvenation_parameter_dre, every=1,
                                                                        rng=3),
        "enforce_dales_principle": lambda: bio.enforce_dales_principle(rng=4),
        "default_chain": lambda: c.build(rng=5),
        "default_chain+dale": lambda: c.replace(apply_dales_principle=True).build(rng=5),
        "all_transforms+dale": lambda: c.replace(transforms=bio.TRANSFORMS,
                                                 apply_dales_principle=True).build(rng=5),
    }
    return {k: (lambda f=f: bio.chain(f())) for k, f in one.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="calls per measurement (covers the schedules)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the minimum of each quantity is kept")
    ap.add_argument("--batch-size", type=int, default=100, help="batch size of the timed steps")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="dtype of the network and data")
    args = ap.parse_args(argv)
    bnp.set_dtype(args.dtype)
    dt = np.dtype(args.dtype)
    g = bnp.random.Generator(0)
    x = g.normal(0, 1, (args.batch_size, 784), dtype=dt)
    y = g.integers(0, 10, args.batch_size)
    net = nn.MLP([784, 500, 10], activation="relu", init="he_normal", rng=0)
    rule, loss = rules.Backprop(), nn.CrossEntropyLoss()
    opt = optim.SGD(net, lr=1e-3, momentum=0.9)
    factories = variants()
    bp_times, costs = [], {k: [] for k in factories}

    def bp_step_time(n):
        for _ in range(3):
            opt.step(rule.gradients(net, x, y, loss))
        t0 = time.perf_counter()
        for _ in range(n):
            opt.step(rule.gradients(net, x, y, loss))
        return (time.perf_counter() - t0) / n

    grads0 = rule.gradients(net, x, y, loss)
    for _ in range(args.repeats):
        bp_times.append(bp_step_time(min(args.steps, 200)))
        for name, make in factories.items():
            params = [{k: v.copy() for k, v in p.items()} for p in net.parameters()]
            grads = [{k: v.copy() for k, v in p.items()} for p in grads0]
            ch = make()
            ch.init(params)
            total = 0.0
            for _ in range(args.steps):
                for gd, g0 in zip(grads, grads0):
                    for k in gd:
                        np.copyto(gd[k], g0[k]) if bnp.backend_name() != "cupy" else gd[k].__setitem__(..., g0[k])
                t0 = time.perf_counter()
                ch.update(params, grads)
                ch.after_update(params)
                total += time.perf_counter() - t0
            costs[name].append(total / args.steps)
        bp_times.append(bp_step_time(min(args.steps, 200)))
    bp = min(bp_times)
    out = {
        "benchmark": "plasticity",
        "network": "784-500-10 relu MLP, cross-entropy, SGD momentum",
        "batch_size": args.batch_size, "dtype": args.dtype, "steps": args.steps, "repeats": args.repeats,
        "backend": bnp.backend_name(),
        "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "backprop_step_ms": 1e3 * bp,
        "backprop_step_ms_all": [1e3 * t for t in bp_times],
        "transforms": {k: {"ms_per_step": 1e3 * min(v), "relative_to_backprop_step": min(v) / bp}
                       for k, v in costs.items()},
        "target": "default_chain <= 0.30 of a backprop step",
    }
    out["target_met"] = out["transforms"]["default_chain"]["relative_to_backprop_step"] <= 0.30
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
