"""Seconds per epoch of LeNet (``bionp.nn.models.lenet``) for each rule (JSON).

Full Fashion-MNIST (60,000 training images padded to 32x32; random data of that shape if
the dataset is not found, see ``BIONP_DATA``), float32, batch 128, SGD with momentum,
cross-entropy.  ``--model resnet20``: ResNet-20 on CIFAR-10 (random images of its shape
where the files are not found; backprop only: the other rules refuse residual blocks).
Also the seconds of one step's parts for backprop (forward pass, backward
pass, optimiser step) and the process's peak resident memory.

A first version: no PyTorch comparison yet (issue 18 asks for one in the same run).

Usage: python benchmarks/conv.py [--model lenet|resnet20] [--rules backprop fa kp dfa]
       [--epochs 1] [--subset N] [--batch-size 128] [--dtype float32]
"""

from __future__ import annotations

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random``
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp import data, nn, optim, rules  # noqa: E402

RULES = {
    "backprop": lambda: rules.Backprop(),
    "fa": lambda: rules.FeedbackAlignment(rng=1),
    "kp": lambda: rules.KolenPollack(rng=1),
    "dfa": lambda: rules.DirectFeedbackAlignment(rng=1),
    "usf": lambda: rules.SignSymmetry("usf"),
    "brsf": lambda: rules.SignSymmetry("brsf", rng=1),
    "frsf": lambda: rules.SignSymmetry("frsf", rng=1),
    "weight_mirror": lambda: rules.WeightMirror(rng=1),
}


def _images(subset, model="lenet"):
    name, shape = (("cifar10", (3, 32, 32)) if model == "resnet20"
                   else ("fashion-mnist", (1, 28, 28)))
    try:
        x, y = data.load_images(name, split="train", size=32)
        source = name
    except data.DataError:  # not found: random images of the same shape
        g = bnp.random.Generator(0)
        n = subset or (50_000 if name == "cifar10" else 60_000)
        x = g.uniform(0, 1, (n,) + shape)
        x = data.pad_images(x, (32 - shape[1]) // 2) if shape[1] < 32 else x
        y = g.integers(0, 10, n)
        source = "random"
    if subset:
        x, y = x[:subset], y[:subset]
    return x, y, source


MODELS = {"lenet": lambda: nn.models.lenet(rng=0),
          "resnet20": lambda: nn.models.resnet20(rng=0)}


def _epoch(net, rule, opt, loss, x, y, batch_size, order):
    t0 = time.perf_counter()
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        grads = rule.gradients(net, x[idx], y[idx], loss)
        opt.step(grads)
        rule.after_step(net, opt)
    return time.perf_counter() - t0


def _parts(net, loss, x, y, batch_size, repeats=20):
    """Median seconds of the forward pass, the backward pass and the optimiser step."""
    rule = rules.Backprop()
    opt = optim.SGD(net, lr=0.01, momentum=0.9)
    xb, yb = x[:batch_size], y[:batch_size]
    fw, bw, st = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cache, t = rule._prepare(net, xb, yb, loss)
        t1 = time.perf_counter()
        delta = net.output_delta(cache, t, loss)
        grads = rule._backward(net, cache, delta)
        t2 = time.perf_counter()
        opt.step(grads)
        t3 = time.perf_counter()
        fw.append(t1 - t0), bw.append(t2 - t1), st.append(t3 - t2)
    return {"forward": float(np.median(fw)), "backward": float(np.median(bw)),
            "optimizer": float(np.median(st))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lenet", choices=sorted(MODELS))
    p.add_argument("--rules", nargs="+", default=["backprop"], choices=sorted(RULES))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--subset", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args(argv)
    bnp.set_dtype(args.dtype)
    x, y, source = _images(args.subset, args.model)
    x = x.astype(args.dtype)
    loss = nn.CrossEntropyLoss()
    order = bnp.random.Generator(3).permutation(len(y))
    out = {"config": vars(args), "data": source, "n_train": int(len(y)),
           "backend": bnp.get_xp().__name__, "runs": {}}
    out["step_parts_seconds"] = _parts(MODELS[args.model](), loss, x, y, args.batch_size)
    for name in args.rules:
        net = MODELS[args.model]()
        rule = RULES[name]()
        opt = optim.SGD(net, lr=0.01, momentum=0.9)
        secs = [_epoch(net, rule, opt, loss, x, y, args.batch_size, order)
                for _ in range(args.epochs)]
        out["runs"][name] = {"epoch_seconds": secs, "final_batch_loss": float(rule.last_loss)}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
