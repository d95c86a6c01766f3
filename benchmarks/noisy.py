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
Each noisy variant also runs as a twin without the compiled random kernels
(``name@no_kernels``, ``BIONP_NUMBA=0``) in the same rounds, and the generator's
``normal`` is timed both alone (into one buffer of the network's weight count) and
inside the additive noisy steps (the layers' own calls, wrapped by a timer), with and
without the kernels, and -- float32 -- with the array code as it was before float32
normals became correctly rounded (``@array_before``: NumPy's float32 log/cos/sin loops,
``BIONP_NUMBA=0``; the "today" of issue 20) as the baseline of the kernel's speed-up.

Usage: python benchmarks/noisy.py [--sizes 784 500 10] [--batch 128] [--dtype float32]
"""

from __future__ import annotations

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random``
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

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


class TimedDraws:
    """Wraps a generator's ``normal``: seconds spent in it (the draw inside a real step)."""

    def __init__(self, rng, clock):
        self.inner, self.seconds, self.numbers, self.clock = rng.normal, 0.0, 0, clock
        rng.normal = self

    def __call__(self, *args, **kwargs):
        t0 = self.clock()
        out = self.inner(*args, **kwargs)
        self.seconds += self.clock() - t0
        self.numbers += int(out.size)
        return out


def normal_floor_seconds(n: int, dtype: str, clock, repeats: int = 7) -> dict:
    """What ``n`` normals cannot go below: the compiled kernel's Philox uniforms (one per
    normal) plus its Box–Muller transform on cache-resident words (float32: the vectorised
    float64 log/cos/sin of :mod:`bionp._box_muller`; float64: NumPy's float64 loops, one each
    per pair), and writing the buffer once; one thread."""
    import numpy as np

    from bionp import kernels

    a = np.linspace(0.5, 1.0, 1024, dtype=dtype)
    o = np.empty_like(a)
    buf = np.empty(n, dtype=dtype)

    def best(fn):
        fn()
        t = float("inf")
        for _ in range(repeats):
            t0 = clock()
            fn()
            t = min(t, clock() - t0)
        return t

    _kernels(True)
    if dtype == "float32" and kernels.philox_fill_available(np, dtype, normal=True):
        from bionp import _box_muller

        w = np.random.default_rng(0).integers(0, 2**32, (2, 1024), dtype=np.uint64).astype(np.uint32)
        zc, zs = np.empty(1024, np.float32), np.empty(1024, np.float32)
        consts = np.array([1, -2, 2 * np.pi, 1, 0], dtype=np.float32)
        t = best(lambda: [_box_muller.pairs32(w[0], w[1], zc, zs, 1024, consts, 0)
                          for _ in range(50)])
        out = {"transcendentals": n * t / (50 * 2048)}
    else:
        per = {f.__name__: best(lambda: [f(a, out=o) for _ in range(50)]) / (50 * a.size)
               for f in (np.log, np.cos, np.sin)}
        out = {"transcendentals": n * (per["log"] + per["cos"] + per["sin"]) / 2}
    out["write_once"] = best(lambda: buf.fill(1.0))
    if kernels.philox_fill_available(np):
        out["philox_uniforms"] = best(lambda: kernels.philox_fill_uniform((1, 2), 0, buf, 0))
        out["normal_floor"] = out["transcendentals"] + out["philox_uniforms"]
    return out


def _kernels(on) -> None:
    """Kernels on/off; ``"array_before"``: off, with the float32 log/cos/sin of the array code
    as NumPy's float32 loops (the definition before the correctly rounded one)."""
    from bionp.random import _normal

    if not hasattr(_kernels, "rounded"):
        _kernels.rounded = _normal._rounded
    os.environ["BIONP_NUMBA"] = "1" if on is True else "0"
    _normal._rounded = ((lambda xp, f, a, out: f(a, out=out)) if on == "array_before"
                        else _kernels.rounded)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[784, 500, 10], help="layer widths")
    ap.add_argument("--batch", type=int, default=128, help="batch size")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="dtype of the networks and the draws")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7, help="round-robin rounds (median reported)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                    help="layer variants to time (default: all)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall clock, or the process's CPU time (on a shared machine, with one "
                         "thread: the work each variant does rather than its share of the CPUs)")
    ap.add_argument("--no-kernel-twins", action="store_true",
                    help="skip the twins of the noisy variants run without the compiled random "
                         "kernels (BIONP_NUMBA=0)")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if "plain" not in args.variants:
        args.variants.insert(0, "plain")
    g = bnp.random.Generator(0)
    x = g.normal(0, 1, (args.batch, args.sizes[0]), dtype=args.dtype)
    y = g.integers(0, args.sizes[-1], args.batch)
    loss = nn.CrossEntropyLoss()
    setups, timers = {}, {}
    names = list(args.variants)
    if not args.no_kernel_twins:
        names += [f"{v}@no_kernels" for v in args.variants if v != "plain"]
        if args.dtype == "float32" and "noisy_additive" in args.variants:
            names.append("noisy_additive@array_before")
    for name in names:
        net = build(name.split("@")[0], args.sizes, args.dtype)
        setups[name] = (net, rules.Backprop(), optim.SGD(net, lr=1e-3, momentum=0.9))
        if name.startswith("noisy_additive"):
            timers[name] = [TimedDraws(layer.rng, clock) for layer in net.layers]

    def run(name, n):
        net, rule, opt = setups[name]
        _kernels("array_before" if "@array_before" in name else "@no_kernels" not in name)
        t0 = clock()
        for _ in range(n):
            opt.step(rule.gradients(net, x, y, loss))
        synchronize()
        return (clock() - t0) / n

    for name in names:  # warm-up
        run(name, 3)
    for ts in timers.values():
        for t in ts:
            t.seconds, t.numbers = 0.0, 0
    times = {name: [] for name in names}
    n_weights = sum(args.sizes[i] * args.sizes[i + 1] for i in range(len(args.sizes) - 1))
    draw = {"kernels": [], "no_kernels": []}
    if args.dtype == "float32":
        draw["array_before"] = []
    buf = bnp.get_xp().empty(n_weights, dtype=args.dtype)
    for _ in range(args.rounds):
        for name in names:
            times[name].append(run(name, args.steps))
        for key in draw:  # normal() of the weight count into one buffer, timed alone
            _kernels("array_before" if key == "array_before" else key == "kernels")
            g.normal(0.0, 1.0, n_weights, dtype=args.dtype, out=buf)
            t0 = clock()
            for _ in range(args.steps):
                g.normal(0.0, 1.0, n_weights, dtype=args.dtype, out=buf)
            synchronize()
            draw[key].append((clock() - t0) / args.steps)
    _kernels(True)
    floor = normal_floor_seconds(n_weights, args.dtype, clock)
    med = {v: statistics.median(t) for v, t in times.items()}
    plain = med["plain"]
    draw_med = {k: statistics.median(v) for k, v in draw.items()}
    in_step = {name: sum(t.seconds for t in ts) / max(1, sum(t.numbers for t in ts)) * n_weights
               for name, ts in timers.items()}
    threads = bnp.random.get_num_threads()
    out = {
        "benchmark": "noisy", "config": vars(args), "random_threads": threads,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "loadavg": open("/proc/loadavg").read().split()[:3]
        if os.path.exists("/proc/loadavg") else None,
        "backend": bnp.backend_name(), "n_weights": n_weights,
        "ms_per_step": {v: round(1e3 * t, 3) for v, t in med.items()},
        "ratio_to_plain": {v: round(t / plain, 3) for v, t in med.items()},
        "normal_alone_ms": {k: round(1e3 * v, 3) for k, v in draw_med.items()},
        "normal_alone_per_s": {k: float(f"{n_weights / v:.4g}") for k, v in draw_med.items()},
        "normal_in_step_ms": {k: round(1e3 * v, 3) for k, v in in_step.items()},
        "normal_in_step_per_s": {k: float(f"{n_weights / v:.4g}") for k, v in in_step.items()
                                 if v > 0},
        "noise_draw_over_plain_step": round(draw_med["kernels"] / plain, 3),
        # issue 20's target: the kernel >= 2x the array code before (alone and in the step)
        "normal_speedup_over_array_before": {
            "alone": round(draw_med["array_before"] / draw_med["kernels"], 3),
            "in_step": round(in_step["noisy_additive@array_before"] / in_step["noisy_additive"],
                             3)} if "noisy_additive@array_before" in in_step else None,
        # one thread; same clock and run: the draw's floor with the array code's bits
        "normal_floor_ms": {k: round(1e3 * v, 3) for k, v in floor.items()},
        "normal_floor_over_plain_step": round(floor.get("normal_floor", float("nan")) / plain,
                                              3),
        # what the layers add beyond the generator's draw (the draw is Generator.normal's cost)
        "ratio_to_plain_without_draw": {
            v: round((t - (in_step.get(v) if v in in_step else draw_med[
                v.split("@")[1] if "@" in v else "kernels"])) / plain, 3)
            for v, t in med.items() if v != "plain"},
        "target_ratio": {"noisy_additive": 1.3, "noisy_multiplicative": 1.3,
                         "learnable_per_layer": 1.4, "learnable_per_weight": 2.0},
        "rounds_ms": {v: [round(1e3 * s, 3) for s in t] for v, t in times.items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
