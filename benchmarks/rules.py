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
the arithmetic itself leaves).

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
import json
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


def _trainer(name, x, t):
    net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
    tr = Trainer(net, make_rule(name), optim.SGD(net, lr=0.1), nn.MSELoss(), batch_size=200,
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
    epoch of each per round) so that a machine shared with other jobs slows all alike."""
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
    tiny = _tiny_setup(xn.shape[0] // 200)
    extra = ["numpy_minimal", "gemm_floor", "overhead_bionp", "overhead_numpy_minimal",
             "data_check", "wp_floor", "wp_floor_draws"]
    best = dict.fromkeys(list(names) + extra, float("inf"))
    for _ in range(repeats):
        for name, tr in trainers.items():
            t0 = clock()
            tr.fit(x, t, epochs=1, labels=False)
            best[name] = min(best[name], clock() - t0)
        order = bnp.asnumpy(g.permutation(xn.shape[0], xp=np))
        t0 = clock()
        minimal_backprop_epoch(params, xn, tn, order)
        best["numpy_minimal"] = min(best["numpy_minimal"], clock() - t0)
        t0 = clock()
        gemm_epoch(params, xn, order)
        best["gemm_floor"] = min(best["gemm_floor"], clock() - t0)
        if wp is not None:
            t0 = clock()
            drawing = minimal_wp_epoch(wp, xn, tn, order, g, clock=clock)
            if (took := clock() - t0) < best["wp_floor"]:
                best["wp_floor"], best["wp_floor_draws"] = took, drawing
        for name, fn in (("overhead_bionp", tiny["bionp"]), ("overhead_numpy_minimal",
                                                            tiny["numpy_minimal"]),
                         ("data_check", lambda: check_values(net, x, t))):
            t0 = clock()
            fn()
            best[name] = min(best[name], clock() - t0)
    return best


def _tiny_setup(steps, batch=2):
    """Epochs of ``steps`` updates of an 8-6-4 sigmoid MLP (batch 2), by ``Trainer`` and by
    :func:`minimal_backprop_epoch`: the per-step cost that does not grow with the arrays."""
    g = bnp.random.Generator(5)
    x = g.random((steps * batch, 8))
    t = bnp.data.one_hot(g.integers(0, 4, size=steps * batch), 4).astype(x.dtype)
    net = nn.MLP([8, 6, 4], activation="sigmoid", output_activation="sigmoid", rng=0)
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.MSELoss(),
                 batch_size=batch, rng=0, progress=False)
    params = [bnp.asnumpy(p).copy() for layer in net.parameters() for p in layer.values()]
    xn, tn, order = bnp.asnumpy(x), bnp.asnumpy(t), np.arange(steps * batch)
    fns = {"bionp": lambda: tr.fit(x, t, epochs=1, labels=False),
           "numpy_minimal": lambda: minimal_backprop_epoch(params, xn, tn, order, batch=batch)}
    for fn in fns.values():
        fn()
    return fns


def _sigmoid(z):
    """``z`` <- 1 / (1 + exp(-z)) in place (what bionp's Sigmoid computes)."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def minimal_backprop_epoch(params, x, t, order, batch=200, lr=0.1):
    r"""One backprop epoch of the 784-500-10 sigmoid MLP (MSE, SGD) as a bare NumPy loop.

    The same maths as ``Trainer(MLP, Backprop(), SGD)``: per batch
    :math:`a_1 = \sigma(x W_1^T + b_1)`, :math:`a_2 = \sigma(a_1 W_2^T + b_2)`,
    :math:`\delta_2 = \tfrac{2}{B}(a_2 - t) a_2 (1 - a_2)`,
    :math:`\delta_1 = (\delta_2 W_2) a_1 (1 - a_1)`, :math:`W_l \leftarrow W_l - \eta
    \delta_l^T a_{l-1}`; every buffer allocated once, every elementwise step in place.

    ``params``: ``[W1, b1, W2, b2]`` NumPy arrays, updated in place; ``order``: the sample
    order.  Returns the batch losses.
    """
    W1, b1, W2, b2 = params
    dt = x.dtype.type
    z1, tmp1 = np.empty((batch, W1.shape[0]), dt), np.empty((batch, W1.shape[0]), dt)
    z2, tmp2 = np.empty((batch, W2.shape[0]), dt), np.empty((batch, W2.shape[0]), dt)
    grads = [np.empty_like(p) for p in params]
    gW1, gb1, gW2, gb2 = grads

    losses = []
    for i in range(x.shape[0] // batch):
        idx = order[i * batch:(i + 1) * batch]
        xb, tb = x[idx], t[idx]
        np.matmul(xb, W1.T, out=z1)
        z1 += b1
        _sigmoid(z1)  # a1
        np.matmul(z1, W2.T, out=z2)
        z2 += b2
        _sigmoid(z2)  # a2
        np.subtract(z2, tb, out=tmp2)  # e
        losses.append(float(np.einsum("ij,ij->", tmp2, tmp2)) / batch)
        tmp2 *= dt(2.0 / batch)
        tmp2 *= z2
        np.subtract(1, z2, out=z2)
        tmp2 *= z2  # delta2
        np.matmul(tmp2.T, z1, out=gW2)
        np.sum(tmp2, axis=0, out=gb2)
        np.matmul(tmp2, W2, out=tmp1)
        tmp1 *= z1
        np.subtract(1, z1, out=z1)
        tmp1 *= z1  # delta1
        np.matmul(tmp1.T, xb, out=gW1)
        np.sum(tmp1, axis=0, out=gb1)
        for p, gr in zip(params, grads):
            gr *= dt(lr)
            p -= gr
    return losses


def minimal_wp_epoch(params, x, t, order, rng, batch=200, lr=0.1, sigma=0.1,
                     clock=time.perf_counter):
    r"""One weight-perturbation epoch of the same MLP as a bare NumPy loop, its floor: per
    batch the clean loss, the N(0, σ²) draws of every parameter from ``rng`` (parameter by
    parameter, as the rule draws them) into one preallocated array, the perturbed loss and
    :math:`\theta \mathrel{-}= \eta\,(L(\theta+\varepsilon) - L(\theta))\,\varepsilon/\sigma^2`:
    two forward passes and a draw, what no implementation of the rule can skip.  Returns
    the seconds spent drawing (timed inside the loop, right after matrix products)."""
    dt = x.dtype.type
    flat = np.empty(sum(p.size for p in params), dt)
    eps = [v.reshape(p.shape) for v, p in
           zip(np.split(flat, np.cumsum([p.size for p in params])[:-1]), params)]
    pert = [np.empty_like(p) for p in params]
    z = [np.empty((batch, params[0].shape[0]), dt), np.empty((batch, params[2].shape[0]), dt)]

    def loss(W1, b1, W2, b2, xb, tb):
        for W, b, inp, out in ((W1, b1, xb, z[0]), (W2, b2, z[0], z[1])):
            np.matmul(inp, W.T, out=out)
            out += b
            _sigmoid(out)
        z[1] -= tb
        return float(np.einsum("ij,ij->", z[1], z[1])) / batch

    drawing = 0.0
    with np.errstate(over="ignore"):
        for i in range(x.shape[0] // batch):
            idx = order[i * batch:(i + 1) * batch]
            xb, tb = x[idx], t[idx]
            base = loss(*params, xb, tb)
            t0 = clock()
            for e in eps:
                rng.normal(0.0, sigma, e.shape, dtype=e.dtype, xp=np, out=e)
            drawing += clock() - t0
            for p, e, q in zip(params, eps, pert):
                np.add(p, e, out=q)
            flat *= dt(-lr * (loss(*pert, xb, tb) - base) / sigma ** 2)
            for p, e in zip(params, eps):
                p += e
    return drawing


def gemm_epoch(params, x, order, batch=200):
    """The epoch's matrix products alone, at the shapes of :func:`minimal_backprop_epoch`
    (the batch gathered, then forward of both layers, both weight gradients and the hidden
    delta, each into a preallocated ``out=``): the GEMM-efficiency floor of a backprop
    epoch with this BLAS (nothing else in the epoch is unavoidable arithmetic)."""
    W1, _, W2, _ = params
    dt = x.dtype.type
    z1, t1 = (np.empty((batch, W1.shape[0]), dt) for _ in range(2))
    z2 = np.empty((batch, W2.shape[0]), dt)
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    for i in range(x.shape[0] // batch):
        xb = x[order[i * batch:(i + 1) * batch]]
        np.matmul(xb, W1.T, out=z1)
        np.matmul(z1, W2.T, out=z2)
        np.matmul(z2.T, z1, out=gW2)
        np.matmul(z2, W2, out=t1)
        np.matmul(t1.T, xb, out=gW1)


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
                res["backprop_over_numpy_minimal"] = round(bp / res["numpy_minimal_seconds"], 3)
                res["backprop_over_numpy_minimal_less_fixed_costs"] = round(
                    (times["backprop"] - fixed) / times["numpy_minimal"], 3)
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
