"""Seconds per epoch of LeNet (``bionp.nn.models.lenet``) per rule, next to PyTorch (JSON).

Full Fashion-MNIST (60,000 training images padded to 32x32; random data of that shape if
the dataset is not found, see ``BIONP_DATA``), float32, batch 128, SGD with momentum 0.9,
cross-entropy (learning rate 0.01; 1e-4 for DFA, which diverges at 0.01), one BLAS thread (``--threads``).  In one run:

* ``runs``: bionp's epoch for each rule (backprop, fa, dfa, kp), with the compiled kernels
  of :mod:`bionp.backend_conv` when Numba is installed (``BIONP_NUMBA=0``: the plain
  NumPy path);
* ``torch``: the same LeNet trained by PyTorch CPU (same data, order, batch, optimiser,
  threads) in a child process, if PyTorch imports;
* ``ratios``: bionp's backprop epoch over PyTorch's, and each rule's epoch over bionp's
  backprop epoch.  With ``--rounds R`` every rule and PyTorch run R times, alternating
  (round 1: every rule, then PyTorch; round 2: …), and the ratios use each one's fastest
  epoch: on a shared machine the load drifts, so compare ratios of one run;
* ``step_parts_seconds``: forward, backward and optimiser step of one backprop step, and
  ``gemm_floor_step_seconds``: the three GEMMs per convolution and the dense products of
  one step alone (at LeNet's shapes), the floor of a GEMM-based step;
* ``peak_rss_mb``: this process's peak resident memory (bionp only; PyTorch runs in its
  own process and reports its own).

Where the time of a LeNet step goes (batch 128, float32, one thread; medians in ms on the
2-core machine, lightly loaded for the plain column, under load ~10 for the kernel one, so
compare within a column):

==========================================  =====================  =====================
part                                        plain NumPy            compiled kernels
==========================================  =====================  =====================
GEMMs (3 per conv, dense layers)            ~9 (the floor)         same BLAS calls
conv5-16 col2im (25 strided adds)           9.8                    1.4 (plain 13.5)
max-pool forward (stack + argmax + max)     5.8 + 1.7              0.3 + 0.1 (plain 17)
max-pool backward (4 masked adds)           1.8 + 0.7              1.3 + 0.4
ReLU backward (``where``)                   2.5 + 0.6              0.13 (plain 3.3)
im2col (25 strided copies)                  1.3 + 1.6              ~1 + 1.5
==========================================  =====================  =====================

What is left besides the GEMMs is memory traffic that the kernels already make single
passes (im2col's 10 MB patch matrix of the first layer, read again by its weight GEMM;
the GEMM output moved to NCHW with the bias) and Python overhead (~1 ms).

``--model resnet20``: ResNet-20 on CIFAR-10 (random images of its shape where the files are
not found; no PyTorch comparison).  Every rule trains it: DFA sends the output error to each
residual block's output map (``dfa``: exact backward inside the block; ``dfa_fb``: random
kernels inside, ``blocks="feedback"``), weight mirrors mirror every convolution inside the
blocks after each update.  ``--model resnet20 --subset 512 --no-torch --threads 1 --rounds 3
--rules backprop fa dfa dfa_fb weight_mirror`` (random images, batch 128, best of 3
interleaved epochs, load average 2-8): backprop 16.4 s per 512 images, FA x0.98, DFA x0.65
(no input gradient below a block), ``dfa_fb`` x0.82, weight mirrors x1.09 (a mirror step of
all 19 kernels ~0.15 s against a ~25 s step under load ~12); peak RSS 2.4 GB (five ResNet-20s
in one process).  Under load 8-12 the same command gave 0.85-1.14 (FA), 0.75-0.81 (DFA),
0.65-0.91 (``dfa_fb``), 0.57-1.66 (weight mirrors): compare ratios of a quiet run.

Usage: python benchmarks/conv.py [--model lenet|resnet20] [--rules backprop fa dfa kp usf …]
       [--rounds 1] [--subset N] [--batch-size 128] [--dtype float32] [--threads 1]
       [--no-torch]
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
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lenet", choices=["lenet", "resnet20"],
                   help="network to time")
    p.add_argument("--rules", nargs="+", default=["backprop", "fa", "dfa", "kp"],
                   choices=["backprop", "fa", "dfa", "kp", "usf", "brsf", "frsf",
                            "dfa_fb", "dfa_next_input", "weight_mirror"],
                   help="rules to time")
    p.add_argument("--rounds", type=int, default=1, help="epochs per rule, alternating")
    p.add_argument("--subset", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="dtype of the networks and data")
    p.add_argument("--threads", type=int, default=1, help="BLAS / PyTorch threads")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


ARGS = _parse()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp import data, nn, optim, rules  # noqa: E402

RULES = {
    "backprop": lambda: rules.Backprop(),
    "fa": lambda: rules.FeedbackAlignment(rng=1),
    "kp": lambda: rules.KolenPollack(rng=1),
    "dfa": lambda: rules.DirectFeedbackAlignment(rng=1),
    "dfa_fb": lambda: rules.DirectFeedbackAlignment(rng=1, blocks="feedback"),
    # the signal after the pooling (examples/conv_rules.py's DFA)
    "dfa_next_input": lambda: rules.DirectFeedbackAlignment(rng=1, at="next_input"),
    "usf": lambda: rules.SignSymmetry("usf"),
    "brsf": lambda: rules.SignSymmetry("brsf", rng=1),
    "frsf": lambda: rules.SignSymmetry("frsf", rng=1),
    "weight_mirror": lambda: rules.WeightMirror(rng=1),
}
#: DFA diverges at 0.01 on LeNet (non-finite activations would time other code paths)
LR = {"dfa": 1e-4, "dfa_fb": 1e-4, "dfa_next_input": 1e-4}
MODELS = {"lenet": lambda: nn.models.lenet(rng=0),
          "resnet20": lambda: nn.models.resnet20(rng=0)}


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


def _epoch(net, rule, opt, loss, x, y, batch_size, order):
    t0 = time.perf_counter()
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        grads = rule.gradients(net, x[idx], y[idx], loss)
        opt.step(grads)
        rule.after_step(net, opt)
    return time.perf_counter() - t0


def _median(f, repeats):
    f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


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


def _gemm_floor(net, x, batch_size, repeats=20):
    """Median seconds of one step's GEMMs alone: per convolution Z = W X, dW = Delta X^T
    and dX = W^T Delta (not below the first layer), per dense layer the same three."""
    cache = net.forward_cache(x[:batch_size])
    ops = []
    for l, layer in enumerate(net.layers):
        W = layer.params().get("W")
        if W is None:
            continue
        o = int(W.shape[0])
        if isinstance(layer, nn.Conv2d):
            cols = cache.caches[l]
            z = np.matmul(W.reshape(o, -1), cols)
            ops += [(W.reshape(o, -1), cols), (cols, np.ascontiguousarray(z.T))]
            if l > 0:
                ops.append((np.ascontiguousarray(W.reshape(o, -1).T), z))
        else:
            a = cache.inputs[l]
            z = a @ W.T
            ops += [(a, W.T), (np.ascontiguousarray(z.T), a)]
            if l > 0:
                ops.append((z, W))

    def run():
        for a, b in ops:
            np.matmul(a, b)
    return _median(run, repeats)


def _torch_epoch(args):
    """One PyTorch epoch in a child process: seconds (None if PyTorch does not import)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-child",
           "--subset", str(args.subset), "--batch-size", str(args.batch_size),
           "--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return None, res.stderr.strip().splitlines()[-1:] or ["no output"]
    return json.loads(res.stdout), None


def torch_child(args):
    """The child: PyTorch's LeNet (same layers, init by PyTorch) for one epoch; JSON."""
    import torch  # noqa: PLC0415
    from torch import nn as tnn  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y, source = _images(args.subset)
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(y, dtype=np.int64))
    order = torch.from_numpy(np.asarray(bnp.random.Generator(3).permutation(len(y))))
    net = tnn.Sequential(
        tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(),
        tnn.MaxPool2d(2), tnn.Conv2d(16, 120, 5), tnn.ReLU(), tnn.Flatten(),
        tnn.Linear(120, 84), tnn.Linear(84, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = tnn.CrossEntropyLoss()

    def step(idx):
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):  # warm-up
        step(order[:args.batch_size])
    t0 = time.perf_counter()
    for i in range(0, len(order), args.batch_size):
        loss = step(order[i:i + args.batch_size])
    secs = time.perf_counter() - t0
    print(json.dumps({"epoch_seconds": secs, "final_batch_loss": float(loss),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "data": source}))


def main(args):
    bnp.set_dtype(args.dtype)
    x, y, source = _images(args.subset, args.model)
    x = x.astype(args.dtype)
    loss = nn.CrossEntropyLoss()
    order = bnp.random.Generator(3).permutation(len(y))
    from bionp import backend_conv  # noqa: PLC0415

    out = {"config": {k: v for k, v in vars(args).items() if k != "torch_child"},
           "data": source, "n_train": int(len(y)), "backend": bnp.get_xp().__name__,
           "compiled_kernels": backend_conv.kernels_available(bnp.get_xp()),
           "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
           "load_average_at_start": list(os.getloadavg()), "runs": {}}
    out["step_parts_seconds"] = _parts(MODELS[args.model](), loss, x, y, args.batch_size)
    out["gemm_floor_step_seconds"] = _gemm_floor(MODELS[args.model](), x, args.batch_size)
    rule_names = args.rules
    state = {}
    for name in rule_names:
        net = MODELS[args.model]()
        state[name] = (net, RULES[name](), optim.SGD(net, lr=LR.get(name, 0.01), momentum=0.9))
        out["runs"][name] = {"epoch_seconds": []}
    want_torch = args.model == "lenet" and not args.no_torch
    torch_runs = []
    for r in range(args.rounds):
        for name in rule_names:
            net, rule, opt = state[name]
            secs = _epoch(net, rule, opt, loss, x, y, args.batch_size, order)
            out["runs"][name]["epoch_seconds"].append(secs)
            out["runs"][name]["final_batch_loss"] = float(rule.last_loss)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if want_torch:
            res, err = _torch_epoch(args)
            if res is None:
                out["torch"] = {"unavailable": err}
                want_torch = False
            else:
                torch_runs.append(res)
    if torch_runs:
        out["torch"] = {k: v for k, v in torch_runs[-1].items() if k != "epoch_seconds"}
        out["torch"]["epoch_seconds"] = [t["epoch_seconds"] for t in torch_runs]
    best = {name: min(run["epoch_seconds"]) for name, run in out["runs"].items()}
    ratios = {}
    if "backprop" in best:
        if torch_runs:
            ratios["backprop_over_torch"] = best["backprop"] / min(
                t["epoch_seconds"] for t in torch_runs)
        for name in best:
            if name != "backprop":
                ratios[f"{name}_over_backprop"] = best[name] / best["backprop"]
    out["ratios"] = ratios
    out["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    if ARGS.torch_child:
        torch_child(ARGS)
    else:
        main(ARGS)
