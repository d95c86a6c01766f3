"""Seconds per epoch of each supervised rule at the Microlearning configuration (JSON).

784-500-10 sigmoid MLP, MSE, batch 200, SGD, 50,000 Fashion-MNIST training
images (random data of the same shape if the dataset is not found), float32 and
float64; peak memory of the diagnostics (SNR on 1000 samples, cosine similarity
on 1000 samples); and, if PyTorch is importable, the same MLP trained with
PyTorch on the CPU in a separate process, for the ratio. FLOP floor: the
epoch's matrix-multiply FLOPs (forward and weight gradient of both layers, and
the hidden layer's delta; nothing computes the input's) divided by the measured
rate of one large matmul.

``numpy_minimal``: the same backprop epoch written as the tightest plain NumPy
loop we know (preallocated buffers, in-place ufuncs, the same matmuls, no
validation, no loss history, no divergence guard), in this process: what NumPy
with this BLAS can do at best, so ``backprop_over_numpy_minimal`` is bionp's
overhead and ``numpy_minimal_over_torch`` is the array library's own distance
from PyTorch.

``gemm_floor_seconds``: the epoch's five matrix products alone at these shapes (the
batch gathered; forward and weight gradient of both layers, the hidden delta; into
preallocated outputs): what this BLAS needs for the arithmetic that cannot be skipped,
next to ``flop_floor_seconds`` (the same FLOPs at the rate of one large square matmul).
The rules, the bare NumPy loop and the GEMM floor are timed in turns, one epoch of each
per round (best of ``--repeats``), so that a shared machine slows them alike; PyTorch
runs in its own process afterwards (skipped, with the reason, when it is not installed).

``step_overhead_seconds``: the fixed cost of an epoch's steps, the same number of updates
as the epoch on a network too small for arithmetic to count (8-6-4, batch 2), for bionp's
``Trainer`` (``"bionp"``) and for the bare loop (``"numpy_minimal"``); with
``fit_data_check_seconds`` (the one check of the training data's values that ``fit`` makes
before its first update) they give ``backprop_fixed_cost_over_numpy_minimal_seconds``,
what bionp's epoch spends beyond the bare loop's in Python and in that check, and
``backprop_over_numpy_minimal_less_fixed_costs``: the ratio without it (the distance that
the arithmetic itself leaves). ``divergence_backup_seconds``: what the Trainer's copy of the
weights before each update (restored when the loss stops being finite; written in the SGD
pass) costs the epoch, the median over rounds of backprop's epoch minus that of the same
Trainer whose optimiser ignores the backup, and the ratio without that too
(``…_less_fixed_costs_and_backup``). Both helpers are in ``benchmarks/fixed_costs.py``.

``weight_perturbation_floor_seconds``: the rule's epoch as a bare NumPy loop with the
rule's draws (two forward passes and the draw of every parameter's noise), its ratio to
backprop and weight perturbation's ratio to it; ``weight_perturbation_floor_draw_seconds``:
the draws' share of it (right after matrix products, as the rule draws them).

``median_of_rounds``: the same ratios taken within each round (the rule's epoch over
backprop's, or over the bare loop's, of that round) and their median over the rounds,
less sensitive to a machine whose speed drifts than the ratio of the fastest epochs.
The bare loops are in ``benchmarks/bare_loops.py``.

``weight_noise_draw_seconds``: one epoch's N(0, 1) draws for every parameter (what
weight perturbation needs each step) from bionp's generator alone, and its ratio to
the backprop epoch. ``weight_perturbation_rademacher``: the same rule with ±σ noise
(``noise="rademacher"``: one random bit per parameter instead of a normal).

Usage: python benchmarks/rules.py [--repeats N] [--dtypes float32 float64] [--threads T]
       [--no-torch]

``--threads T`` runs BLAS, bionp's generator and PyTorch on ``T`` threads each
(default: every CPU available).  ``--clock cpu`` times with the process's CPU time
instead of the wall clock: on a machine shared with other jobs, ``--threads 1 --clock
cpu`` measures the work each side does rather than its share of the machine.
"""

from __future__ import annotations

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random``
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse
import importlib.util
import json
import statistics
import subprocess
import textwrap
import time
import tracemalloc

def _threads_from_argv(argv) -> int | None:
    """``--threads T`` read before NumPy loads (BLAS reads its thread count at import)."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return None


_T = _threads_from_argv(sys.argv[1:])
if _T is not None:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BIONP_NUM_THREADS"):
        os.environ[_var] = str(_T)

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp import metrics, nn, optim, rules  # noqa: E402
from bionp.evaluation_data import check_values  # noqa: E402
from bionp.train import Trainer  # noqa: E402


def _sibling(name):
    """``benchmarks/{name}.py`` as a module (this folder is off ``sys.path``, see above)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_loops, _fixed = _sibling("bare_loops"), _sibling("fixed_costs")
minimal_backprop_epoch, minimal_wp_epoch = _loops.minimal_backprop_epoch, _loops.minimal_wp_epoch
gemm_epoch = _loops.gemm_epoch

RULES = ("backprop", "feedback_alignment", "direct_feedback_alignment", "kolen_pollack",
         "weight_perturbation", "weight_perturbation_rademacher", "node_perturbation")


def load(n_train):
    try:
        x, y = bnp.data.load("fashion-mnist", split="train", download=False)
        source = "fashion-mnist"
    except Exception:
        g = bnp.random.Generator(0)
        x, y = g.uniform(size=(60_000, 784)), g.integers(0, 10, size=60_000)
        source = "random data (Fashion-MNIST not found; set BIONP_DATA)"
    return x[:n_train], y[:n_train], source


def make_rule(name):
    return {
        "backprop": lambda: rules.Backprop(),
        "feedback_alignment": lambda: rules.FeedbackAlignment(rng=1),
        "direct_feedback_alignment": lambda: rules.DirectFeedbackAlignment(rng=1),
        # the plain feedback step (the configuration the recorded timings used)
        "kolen_pollack": lambda: rules.KolenPollack(weight_decay=0.1, feedback_optimizer="sgd",
                                                    rng=1),
        "weight_perturbation": lambda: rules.WeightPerturbation(sigma=0.1, rng=1),
        "weight_perturbation_rademacher": lambda: rules.WeightPerturbation(
            sigma=0.1, noise="rademacher", rng=1),
        "node_perturbation": lambda: rules.NodePerturbation(sigma=0.1, rng=1),
    }[name]()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _trainer(name, x, t, optimizer=optim.SGD):
    net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
    tr = Trainer(net, make_rule(name), optimizer(net, lr=0.1), nn.MSELoss(), batch_size=200,
                 rng=0, progress=False)
    tr.fit(x[:2000], t[:2000], epochs=1, labels=False)  # warm-up
    return tr


def time_epoch(name, x, t, repeats, clock=time.perf_counter):
    tr = _trainer(name, x, t)
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        tr.fit(x, t, epochs=1, labels=False)  # one more epoch each call, no accuracy pass
        best = min(best, clock() - t0)
    return best


def interleaved_epochs(names, x, t, repeats, clock=time.perf_counter):
    """Fastest of ``repeats`` epochs of each rule in ``names``, of the bare NumPy loop
    (``"numpy_minimal"``) and of the GEMMs alone (``"gemm_floor"``), timed in turns (one
    epoch of each per round) so that a machine shared with other jobs slows all alike;
    ``"rounds"``: every round's times (for ratios within a round)."""
    trainers = {name: _trainer(name, x, t) for name in names}
    xn, tn = bnp.asnumpy(x), bnp.asnumpy(t)
    g = bnp.random.Generator(0)
    net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
    params = [bnp.asnumpy(p).copy() for layer in net.parameters() for p in layer.values()]
    minimal_backprop_epoch(params, xn, tn, bnp.asnumpy(g.permutation(xn.shape[0], xp=np)))
    gemm_epoch(params, xn, bnp.asnumpy(g.permutation(xn.shape[0], xp=np)))
    wp = [p.copy() for p in params] if "weight_perturbation" in names else None
    if wp is not None:
        minimal_wp_epoch(wp, xn, tn, np.arange(xn.shape[0]), g, clock=clock)
    tiny = _fixed.tiny_setup(xn.shape[0] // 200, minimal_backprop_epoch)
    # the divergence backup's cost: the same Trainer with an SGD that ignores the backup
    unguarded = (_trainer("backprop", x, t, _fixed.SGDWithoutBackup) if "backprop" in names
                 else None)
    times = {k: [] for k in list(names) + ["numpy_minimal", "gemm_floor", "overhead_bionp",
                                           "overhead_numpy_minimal", "data_check", "wp_floor",
                                           "backprop_without_backup"]}
    draws = []

    def timed(key, fn):
        t0 = clock()
        out = fn()
        times[key].append(clock() - t0)
        return out

    for _ in range(repeats):
        for name, tr in trainers.items():
            timed(name, lambda: tr.fit(x, t, epochs=1, labels=False))
        if unguarded is not None:  # right after the rules' epochs, as backprop's
            timed("backprop_without_backup", lambda: unguarded.fit(x, t, epochs=1, labels=False))
        order = bnp.asnumpy(g.permutation(xn.shape[0], xp=np))
        timed("numpy_minimal", lambda: minimal_backprop_epoch(params, xn, tn, order))
        timed("gemm_floor", lambda: gemm_epoch(params, xn, order))
        if wp is not None:
            draws.append(timed("wp_floor", lambda: minimal_wp_epoch(wp, xn, tn, order, g,
                                                                    clock=clock)))
        timed("overhead_bionp", tiny["bionp"])
        timed("overhead_numpy_minimal", tiny["numpy_minimal"])
        timed("data_check", lambda: check_values(net, x, t))
    best = {k: min(v) for k, v in times.items() if v}
    if draws:  # the draws of the fastest floor epoch
        best["wp_floor_draws"] = draws[times["wp_floor"].index(best["wp_floor"])]
    best["rounds"] = times
    return best


def numpy_minimal_epoch(x, t, repeats, clock=time.perf_counter):
    """Fastest of ``repeats`` epochs of :func:`minimal_backprop_epoch` (after a warm-up)."""
    x, t = bnp.asnumpy(x), bnp.asnumpy(t)
    g = bnp.random.Generator(0)
    net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
    params = [bnp.asnumpy(p).copy() for layer in net.parameters() for p in layer.values()]
    minimal_backprop_epoch(params, x, t, bnp.asnumpy(g.permutation(x.shape[0], xp=np)))
    best = float("inf")
    for _ in range(repeats):
        order = bnp.asnumpy(g.permutation(x.shape[0], xp=np))
        t0 = clock()
        minimal_backprop_epoch(params, x, t, order)
        best = min(best, clock() - t0)
    return best


def noise_draw_epoch(dtype, repeats, clock=time.perf_counter, steps=250):
    """Seconds to draw one epoch's weight-perturbation noise alone: ``steps`` draws (one per
    update of the epoch) of N(0, 1) for all 397,510 parameters of the MLP from bionp's
    generator (the part of a WP step no implementation of the rule can skip)."""
    g, n = bnp.random.Generator(0), 784 * 500 + 500 + 500 * 10 + 10
    out = bnp.get_xp().empty(n, dtype=dtype)
    g.normal(size=n, dtype=dtype, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        for _ in range(steps):
            g.normal(size=n, dtype=dtype, out=out)
        best = min(best, clock() - t0)
    return best


def matmul_rate(dtype, clock=time.perf_counter):
    g = bnp.random.Generator(0)
    a, b = (g.normal(size=(2000, 2000), dtype=dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(3):
        t0 = clock()
        a @ b
        best = min(best, clock() - t0)
    return 2 * 2000**3 / best


def diagnostics_peak(x, t):
    net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
    loss = nn.MSELoss()
    out = {}
    for name in ("backprop", "weight_perturbation", "node_perturbation", "feedback_alignment"):
        rule = make_rule(name)
        tracemalloc.start()
        metrics.gradient_snr(rule, net, x[:1000], t[:1000], loss)
        metrics.compare_to_backprop(rule, net, x[:1000], t[:1000], loss)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[name] = round(peak / 2**20, 1)
    return out


TORCH_SCRIPT = textwrap.dedent("""
    import json, sys, time, torch
    torch.set_num_threads(int(sys.argv[1])); torch.manual_seed(0)
    clock = time.process_time if sys.argv[5] == "cpu" else time.perf_counter
    n = int(sys.argv[2]); dtype = getattr(torch, sys.argv[3])
    x = torch.rand(n, 784, dtype=dtype); y = torch.randint(0, 10, (n,))
    t = torch.nn.functional.one_hot(y, 10).to(dtype)
    net = torch.nn.Sequential(torch.nn.Linear(784, 500), torch.nn.Sigmoid(),
                              torch.nn.Linear(500, 10), torch.nn.Sigmoid()).to(dtype)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    def epoch():
        perm = torch.randperm(n)
        for i in range(n // 200):
            idx = perm[i * 200:(i + 1) * 200]
            opt.zero_grad(set_to_none=True)
            loss = ((net(x[idx]) - t[idx]) ** 2).sum(1).mean()
            loss.backward(); opt.step()
    epoch()
    best = 1e9
    for _ in range(int(sys.argv[4])):
        t0 = clock(); epoch(); best = min(best, clock() - t0)
    print(json.dumps({"seconds": best, "torch": torch.__version__}))
""")


def torch_epoch(n, dtype, repeats, threads, clock="wall"):
    try:
        r = subprocess.run([sys.executable, "-c", TORCH_SCRIPT, str(threads), str(n), dtype,
                            str(repeats), clock],
                           capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last}
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="timed epochs per rule (best reported)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                    choices=["float32", "float64"], help="dtypes to time, each in turn")
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES,
                    help="rules to time (default: all)")
    ap.add_argument("--n-train", type=int, default=50_000, help="training images per epoch")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall clock, or the process's CPU time (use with --threads 1 on a busy "
                         "machine)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for BLAS, bionp's generator and PyTorch (default: all CPUs)")
    args = ap.parse_args()
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count())
    result = {"benchmark": "rules", "config": vars(args), "threads": threads,
              "clock": args.clock, "results": {}}
    for dt in args.dtypes:
        with bnp.default_dtype(dt):
            x, y, source = load(args.n_train)
            x = x.astype(dt)
            t = bnp.data.one_hot(y, 10).astype(dt)
            n = x.shape[0]
            res = {"data": source, "n_train": n, "seconds_per_epoch": {}}
            times = interleaved_epochs(args.rules, x, t, args.repeats, CLOCKS[args.clock])
            for name in args.rules:
                res["seconds_per_epoch"][name] = round(times[name], 4)
            bp = res["seconds_per_epoch"].get("backprop")
            if bp:
                res["ratio_to_backprop"] = {k: round(v / bp, 3) for k, v in res["seconds_per_epoch"].items()}
            rounds = times["rounds"]

            def paired(a, b):  # the median over rounds of a / b within each round
                return round(statistics.median(u / v for u, v in zip(rounds[a], rounds[b])), 3)
            res["median_of_rounds"] = {f"{k}_over_backprop": paired(k, "backprop")
                                       for k in args.rules if k != "backprop" and bp}
            if bp:
                res["median_of_rounds"]["backprop_over_numpy_minimal"] = paired(
                    "backprop", "numpy_minimal")
            if "weight_perturbation" in rounds and rounds["wp_floor"]:
                res["median_of_rounds"]["weight_perturbation_over_floor"] = paired(
                    "weight_perturbation", "wp_floor")
            res["numpy_minimal_seconds"] = round(times["numpy_minimal"], 4)
            res["gemm_floor_seconds"] = round(times["gemm_floor"], 4)
            res["numpy_minimal_over_gemm_floor"] = round(
                times["numpy_minimal"] / times["gemm_floor"], 3)
            res["step_overhead_seconds"] = {"bionp": round(times["overhead_bionp"], 4),
                                            "numpy_minimal": round(times["overhead_numpy_minimal"], 4)}
            res["fit_data_check_seconds"] = round(times["data_check"], 4)
            fixed = times["overhead_bionp"] - times["overhead_numpy_minimal"] + times["data_check"]
            res["backprop_fixed_cost_over_numpy_minimal_seconds"] = round(fixed, 4)
            if bp:
                guard = max(0.0, statistics.median(
                    u - v for u, v in zip(rounds["backprop"], rounds["backprop_without_backup"])))
                res["divergence_backup_seconds"] = round(guard, 4)
                res["backprop_over_numpy_minimal"] = round(bp / res["numpy_minimal_seconds"], 3)
                res["backprop_over_numpy_minimal_less_fixed_costs"] = round(
                    (times["backprop"] - fixed) / times["numpy_minimal"], 3)
                res["backprop_over_numpy_minimal_less_fixed_costs_and_backup"] = round(
                    (times["backprop"] - fixed - guard) / times["numpy_minimal"], 3)
                res["backprop_over_gemm_floor"] = round(bp / times["gemm_floor"], 3)
            if "weight_perturbation" in res["seconds_per_epoch"] and bp:
                draw = noise_draw_epoch(dt, args.repeats, CLOCKS[args.clock], steps=n // 200)
                res["weight_noise_draw_seconds"] = round(draw, 4)
                res["weight_noise_draw_over_backprop"] = round(draw / bp, 3)
                floor = times["wp_floor"]
                res["weight_perturbation_floor_seconds"] = round(floor, 4)
                res["weight_perturbation_floor_over_backprop"] = round(floor / bp, 3)
                res["weight_perturbation_over_floor"] = round(
                    res["seconds_per_epoch"]["weight_perturbation"] / floor, 3)
                res["weight_perturbation_floor_draw_seconds"] = round(times["wp_floor_draws"], 4)
            # per sample: forward and weight gradient of both layers, the hidden delta
            flops = (n // 200) * 200 * 2 * (2 * 784 * 500 + 3 * 500 * 10)
            rate = matmul_rate(dt, CLOCKS[args.clock])
            res["flop_floor_seconds"] = round(flops / rate, 4)
            res["matmul_gflops"] = round(rate / 1e9, 1)
            if bp:
                res["backprop_over_floor"] = round(bp / res["flop_floor_seconds"], 2)
            if not args.no_torch:
                res["torch"] = torch_epoch(n, dt, args.repeats, threads, args.clock)
                if bp and "seconds" in res["torch"]:
                    res["backprop_over_torch"] = round(bp / res["torch"]["seconds"], 3)
                if "seconds" in res["torch"]:
                    res["torch_over_gemm_floor"] = round(
                        res["torch"]["seconds"] / times["gemm_floor"], 3)
                    res["numpy_minimal_over_torch"] = round(
                        res["numpy_minimal_seconds"] / res["torch"]["seconds"], 3)
            if dt == "float32":
                res["diagnostics_peak_MiB"] = diagnostics_peak(x, t)
            result["results"][dt] = res
    if os.path.exists("/proc/loadavg"):  # how busy the machine was (Linux)
        with open("/proc/loadavg") as fh:
            result["loadavg_after"] = fh.read().split()[:3]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
