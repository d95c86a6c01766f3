"""Floors of the noisy-weight training steps: the plain step plus only the work the maths needs.

For each variant of ``benchmarks/noisy.py`` (784-500-10 ReLU, batch 128, Backprop + SGD with
momentum), the floor is one plain step followed by the minimum the noisy layer must add,
done on stand-alone arrays of the layers' shapes with the compiled passes the layers use:

* every variant: the noise draw (``Generator.normal`` of each layer's weight count into a
  buffer);
* additive: one pass :math:`W_{\\mathrm{eff}} = \\varepsilon\\sigma + W`;
* multiplicative: that pass keeping :math:`f = 1 + \\sigma\\varepsilon`, and
  :math:`G \\leftarrow G f` in the backward pass;
* learnable per layer: the additive pass and :math:`\\sum \\varepsilon G` (one ``vdot``);
* learnable per weight: :math:`\\sigma = e^{\\operatorname{clamp}(s)/2}` (one clamp pass and
  NumPy's ``exp``, the definition of its bits), the additive pass with that σ, the
  gradient of :math:`s` (one pass) and the SGD step of :math:`s` (one pass).

The real variants run in the same rounds (round-robin, median of ``--rounds``), so the
ratios to the plain step compare like with like.  Prints JSON.

Usage: python benchmarks/noisy_floor.py [--rounds 7] [--steps 20] [--clock cpu]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp import backend_dense, nn, optim, rules  # noqa: E402
from bionp.nn.noisy import log_var_grad, noisy_weight, sigma_from_log_var  # noqa: E402

# the variants exactly as benchmarks/noisy.py builds them (loaded from its file: this folder
# is not on sys.path, where its random.py would shadow the standard library's)
_spec = importlib.util.spec_from_file_location("_bench_noisy", os.path.join(_HERE, "noisy.py"))
_noisy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_noisy)
VARIANTS, build = _noisy.VARIANTS, _noisy.build

S_LO, S_HI = 2 * np.log(1e-6), 2 * np.log(0.1)


def extras(shapes):
    """The floors' extra work per variant: lists of functions run after a plain step."""
    r = np.random.default_rng(0)
    arr = [{n: r.standard_normal(s).astype(np.float32)
            for n in ("W", "eps", "Weff", "sig", "G", "f", "v")} for s in shapes]
    for a in arr:
        a["s"] = np.full(a["W"].shape, -6.0, np.float32)
        a["gs"] = np.empty_like(a["W"])
    rng = bnp.random.Generator(1)

    def draw():
        for a in arr:
            rng.normal(0.0, 1.0, a["eps"].shape, dtype="float32", out=a["eps"])

    def additive():
        for a in arr:
            noisy_weight(a["W"], a["eps"], 0.03, "additive", out=a["Weff"])

    def multiplicative():
        for a in arr:
            noisy_weight(a["W"], a["eps"], 0.03, "multiplicative", out=a["Weff"], factor=a["f"])
            a["G"] *= a["f"]

    def per_layer():
        additive()
        for a in arr:
            np.vdot(a["eps"].reshape(-1), a["G"].reshape(-1))

    def per_weight():
        for a in arr:
            sigma_from_log_var(a["s"], S_LO, S_HI, out=a["sig"])
            noisy_weight(a["W"], a["eps"], a["sig"], "additive", out=a["Weff"])
            log_var_grad(a["G"], a["eps"], a["sig"], a["s"], S_LO, S_HI, mode="additive",
                         per_weight=True, out=a["gs"])
            backend_dense.sgd_step(np, a["s"], a["gs"], 0.0, v=a["v"], momentum=0.9)

    return {"floor_draw": [draw], "floor_additive": [draw, additive],
            "floor_multiplicative": [draw, multiplicative],
            "floor_per_layer": [draw, per_layer], "floor_per_weight": [draw, per_weight]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[784, 500, 10],
                    help="layer sizes of the network")
    ap.add_argument("--batch", type=int, default=128, help="batch size")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7, help="round-robin rounds (median)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                    help="wall clock, or the process's CPU time (default)")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    g = bnp.random.Generator(0)
    x = g.normal(0, 1, (args.batch, args.sizes[0]), dtype="float32")
    y = g.integers(0, args.sizes[-1], args.batch)
    loss = nn.CrossEntropyLoss()
    setups = {}
    for v in VARIANTS:
        net = build(v, args.sizes, "float32")
        setups[v] = (net, rules.Backprop(), optim.SGD(net, lr=1e-3, momentum=0.9))
    shapes = [(args.sizes[i + 1], args.sizes[i]) for i in range(len(args.sizes) - 1)]
    more = extras(shapes)
    names = list(VARIANTS) + list(more)

    def run(name, n):
        net, rule, opt = setups.get(name, setups["plain"])
        work = more.get(name, [])
        t0 = clock()
        for _ in range(n):
            opt.step(rule.gradients(net, x, y, loss))
            for w in work:
                w()
        return (clock() - t0) / n

    for name in names:
        run(name, 3)
    times = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            times[name].append(run(name, args.steps))
    med = {n: statistics.median(t) for n, t in times.items()}
    print(json.dumps({
        "benchmark": "noisy_floor", "config": vars(args),
        "random_threads": bnp.random.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "loadavg": open("/proc/loadavg").read().split()[:3]
        if os.path.exists("/proc/loadavg") else None,
        "ms_per_step": {n: round(1e3 * t, 3) for n, t in med.items()},
        "ratio_to_plain": {n: round(t / med["plain"], 3) for n, t in med.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
