"""Seconds per epoch of the feedback-alignment family next to backprop on the same MLP (JSON).

The 784-256-256-10 ReLU MLP of issue 19 (He init, cross-entropy), float32, batch 128,
SGD with Nesterov momentum 0.9 (lr 0.02, weight decay 5e-4: ``examples/compare_rules.py``'s
defaults), on Fashion-MNIST's training images (random data of that shape if the dataset is
not found, see ``BIONP_DATA``; ``--subset N`` for the first N), one BLAS thread
(``--threads``: BLAS and bionp's generator).  Every rule trains the same number of
epochs, alternating (round 1: every rule one epoch, round 2: ...), each from its own
network, and ``ratios`` divide each rule's fastest epoch by backprop's: on a shared
machine the load drifts, so compare the ratios of one run.  Each epoch is timed on the
wall clock and as this process's CPU time (``epoch_seconds``, ``epoch_cpu_seconds``;
with one thread the CPU time is the work done,
whatever the load, and ``ratios_cpu`` uses it).  Measured under a load average of
10-15 on the 2-core machine, both ratios moved by +-10 % between runs (FA, which does
backprop's work, read 0.96-1.05 on the CPU clock): weight mirrors 1.19-1.26, brSF
1.29-1.43 (one Gaussian draw per feedback weight per update), the others 1.0-1.17.
A mirror step alone, best of many, costs 13-16 % of a backprop step.  With ``--chunk
20`` at load 9-10, one thread: the former weight mirror (a step of 48 draws after every
update) 1.21-1.26 and the present default (192 draws after every 4th) 1.12-1.14; brSF
1.25-1.30 (its normal draws are most of its extra time); uSF and frSF 1.02-1.08.
After the faster float32 normals, ``--chunk 20`` at load 1.4, one thread: brSF with
half-normal magnitudes (``brsf_normal``, the former default) 1.19-1.20, with uniform ones
(``brsf``: ``magnitudes="uniform"``, biotorch's distribution, now the default) 1.13-1.16,
weight mirrors 1.12-1.14, uSF 1.04.

Rules: backprop, feedback alignment, Kolen-Pollack (the optimiser-mirror feedback step),
uSF, brSF (and ``brsf_normal``), frSF (``SignSymmetry``) and weight mirrors (``WeightMirror``, its defaults: one
mirror step of ``mirror_batch_size`` noise draws after every ``mirror_every``-th
update).  A weight mirror's warm-up phase runs once, when ``B`` is drawn, outside the
timed epochs; its time is ``warmup_seconds``.

``--chunk K`` interleaves finer: every rule runs the epoch's first ``K`` updates, then
every rule the next ``K``, ... (the same updates and order as whole epochs; an epoch's
time is the sum of its chunks).  ``chunk_ratios`` (and ``chunk_ratios_cpu``) are then,
per rule, the median over all chunks of its chunk's time over backprop's same chunk,
run moments apart: on a machine whose load changes within minutes, the ratio that
drifts least.

Usage: python benchmarks/feedback_family.py [--rules backprop fa kp usf ...] [--rounds 3]
       [--subset N] [--threads 1] [--chunk K]
"""

from __future__ import annotations

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random``
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

NAMES = ["backprop", "fa", "kp", "usf", "brsf", "brsf_normal", "frsf", "weight_mirror"]


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", nargs="+", default=NAMES, choices=NAMES,
                   help="rules to time (default: all)")
    p.add_argument("--rounds", type=int, default=3, help="epochs per rule, alternating")
    p.add_argument("--subset", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256],
                   help="hidden layer sizes of the MLP")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--chunk", type=int, default=0,
                   help="alternate the rules every K updates (0: every epoch)")
    args = p.parse_args(argv)
    if "backprop" not in args.rules:
        p.error("--rules must include backprop (the ratios divide by its epoch)")
    if args.rounds < 1 or args.subset < 0 or args.batch_size < 1 or args.threads < 1 \
            or args.chunk < 0:
        p.error("--rounds, --batch-size and --threads must be >= 1, --subset and --chunk >= 0")
    return args


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "BIONP_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

import bionp as bnp  # noqa: E402
from bionp import data, nn, optim, rules  # noqa: E402

RULES = {
    "backprop": lambda: rules.Backprop(),
    "fa": lambda: rules.FeedbackAlignment(init="he_normal", rng=1),
    "kp": lambda: rules.KolenPollack(init="he_normal", rng=1),
    "usf": lambda: rules.SignSymmetry("usf"),
    "brsf": lambda: rules.SignSymmetry("brsf", rng=1),
    "brsf_normal": lambda: rules.SignSymmetry("brsf", rng=1, magnitudes="normal"),
    "frsf": lambda: rules.SignSymmetry("frsf", rng=1),
    "weight_mirror": lambda: rules.WeightMirror(init="he_normal", rng=1),
}


def _images(subset):
    try:
        x, y = data.load("fashion-mnist", split="train")
        source = "fashion-mnist"
    except data.DataError:  # not found: random images of the same shape
        g = bnp.random.Generator(0)
        x, y = g.uniform(0, 1, (subset or 60_000, 784)), g.integers(0, 10, subset or 60_000)
        source = "random"
    if subset:
        x, y = x[:subset], y[:subset]
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    return x.astype("float32"), y, source


def _epoch(net, rule, opt, loss, x, y, batch_size, order):
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        grads = rule.gradients(net, x[idx], y[idx], loss)
        opt.step(grads)
        rule.after_step(net, opt)
    return time.perf_counter() - t0, time.process_time() - c0


def main(args):
    bnp.set_dtype("float32")
    x, y, source = _images(args.subset)
    loss = nn.CrossEntropyLoss()
    order = bnp.random.Generator(3).permutation(len(y))
    out = {"config": vars(args), "data": source, "n_train": int(len(y)),
           "backend": bnp.get_xp().__name__, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
           "generator_threads": bnp.random.get_num_threads(),
           "load_average_at_start": list(os.getloadavg()), "runs": {}}
    state = {}
    for name in args.rules:
        net = nn.MLP([784, *args.hidden, 10], activation="relu", output_activation="identity",
                     init="he_normal", rng=0)
        rule = RULES[name]()
        t0 = time.perf_counter()
        if hasattr(rule, "initialize"):
            rule.initialize(net)  # draws B (and runs a weight mirror's warm-up) untimed
        run = out["runs"][name] = {"epoch_seconds": [], "epoch_cpu_seconds": []}
        if name == "weight_mirror":
            run["warmup_seconds"] = time.perf_counter() - t0
            run["mirror"] = {k: v for k, v in rule.get_config().items()
                             if k in ("mirror_steps", "mirror_every", "mirror_batch_size",
                                      "noise_dist", "decay", "warmup_steps")}
        state[name] = (net, rule, optim.SGD(net, lr=0.02, momentum=0.9, nesterov=True,
                                            weight_decay=5e-4))
    step = args.chunk * args.batch_size if args.chunk else len(order)
    chunks = {name: ([], []) for name in args.rules}
    for _ in range(args.rounds):
        for name in args.rules:
            out["runs"][name]["epoch_seconds"].append(0.0)
            out["runs"][name]["epoch_cpu_seconds"].append(0.0)
        for start in range(0, len(order), step):
            for name in args.rules:
                net, rule, opt = state[name]
                wall, cpu = _epoch(net, rule, opt, loss, x, y, args.batch_size,
                                   order[start:start + step])
                out["runs"][name]["epoch_seconds"][-1] += wall
                out["runs"][name]["epoch_cpu_seconds"][-1] += cpu
                chunks[name][0].append(wall)
                chunks[name][1].append(cpu)
                out["runs"][name]["final_batch_loss"] = float(rule.last_loss)
    for key, field in (("ratios", "epoch_seconds"), ("ratios_cpu", "epoch_cpu_seconds")):
        best = {name: min(run[field]) for name, run in out["runs"].items()}
        out[key] = {f"{name}_over_backprop": best[name] / best["backprop"]
                    for name in best if name != "backprop"}
    if args.chunk:
        for key, i in (("chunk_ratios", 0), ("chunk_ratios_cpu", 1)):
            base = chunks["backprop"][i]
            out[key] = {f"{name}_over_backprop": statistics.median(
                t / b for t, b in zip(chunks[name][i], base) if b > 0)
                for name in args.rules if name != "backprop"}
    out["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(ARGS)
