"""Seconds per epoch of the dendritic model against a dense masked matmul and a vanilla MLP (JSON).

One epoch = forward + backward + optimiser update over 60,000 random 784-dim
inputs (float32 by default), softmax cross-entropy, batch 128 and 256; the
optimiser is SGD (lr 0.01) or, with ``--optimizer adam``, Adam (lr 0.001, the
seed's comparison of the two models) for every model.  Models:

* ``dendritic``: ``DendriticLayer(784, 10, 32, 23)`` (``path="auto"``, synaptic
  resampling every 128 updates included) + LeakyReLU(0.1) + Dense(10, 10);
* ``dendritic_dense_path``: the same layer forced onto its dense-masked path;
* ``dense_masked``: the original NumPy implementation's formulation — dense
  ``(230, 784)`` dendrite and ``(10, 230)`` soma matrices multiplied by their
  masks, dense gradients masked after the matmul, every dense entry updated
  (a leaky ReLU at the soma, as in the original);
* ``vanilla``: Dense(784, 64) + LeakyReLU(0.1) + Dense(64, 10);
* ``original_numpy`` (NumPy backend; ``--no-original`` skips it): a reproduction of the
  original NumPy implementation's epoch, the issue's reference ("about 6 s per epoch at
  batch 256"): float64, out-of-place operations, masks applied after the backward pass and
  the optimiser step, the unused input gradient, the original's Adam, loss and accuracy
  every step, resampling by a full ``argsort`` (see :class:`_OriginalEpoch`);
* ``dendritic_sequential``, ``vanilla_sequential`` and ``dense_masked_sequential``:
  the same three models as :class:`bionp.nn.Sequential` networks trained for one
  epoch by :class:`bionp.train.Trainer` with :class:`bionp.rules.Backprop` and
  :class:`bionp.optim.SGD` (or :class:`bionp.optim.Adam`) — the library's real
  path (loss per step, the trainer's divergence guard, ``net.after_update()``:
  resampling, and the dense masked model's re-masking).

The models of the hand-written loop skip the first layer's input gradient (nothing
needs it); the rule does the same.  Also reported: the cost of one resampling
event (weakest and probabilistic), whether the compiled kernels (Numba, the ``[fast]``
extra; ``BIONP_NUMBA=0`` turns them off) were used, and ratios against the targets
(dendritic ≤ 1.5 × vanilla, ≤ 0.5 × the original, and the stricter ≤ 0.5 × our own
float32 dense masked model), for the hand-written loop (``ratio_*``) and for
the Sequential/Trainer path (``ratio_sequential_*``: ``dendritic_sequential``
against ``vanilla_sequential`` and against ``dense_masked_sequential``, each
model through the same trainer).

Wall-clock seconds (``seconds_per_epoch``) and the process's CPU seconds
(``cpu_seconds_per_epoch``; on a shared CPU machine they leave out the time the
process waited for a core) are both reported, each the fastest of ``--repeats``.
BLAS runs on one thread unless ``BIONP_BENCH_THREADS`` says otherwise (timings on a
shared machine are then stable, and every model gets the same core).

Usage: python benchmarks/dendritic.py [--n 60000] [--batch-sizes 128 256] [--repeats 2]
       [--dtype float32] [--backend numpy] [--optimizer sgd|adam] [--lr LR] [--no-original]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

# BLAS threads: one by default, so that timings on a shared machine are stable and every
# model gets the same single core (override with BIONP_BENCH_THREADS=N).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("BIONP_BENCH_THREADS", "1"))

_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.pop(0)  # benchmarks/random.py must not shadow the standard library's random
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp.backend import device_info, synchronize  # noqa: E402
from bionp.kernels import sparse_rows_dot_available
from bionp.dendritic import DendriticLayer  # noqa: E402


# -- small local building blocks (the benchmark needs nothing else from bionp.nn) -------------
class _Dense:
    def __init__(self, n_in, n_out, rng, dtype):
        self.W = rng.normal(0, np.sqrt(2.0 / n_in), (n_out, n_in), dtype=dtype)
        self.b = bnp.get_xp().zeros(n_out, dtype=dtype)

    def params(self):
        return {"W": self.W, "b": self.b}

    def forward_cache(self, x):
        z = x @ self.W.T
        z += self.b
        return z, x

    def backward(self, x, delta, cache=None, need_input_grad=True):
        g = {"W": delta.T @ cache, "b": delta.sum(axis=0)}
        return g, (delta @ self.W if need_input_grad else None)


class _Leaky:
    def __init__(self, slope=0.1):
        self.slope = slope

    def params(self):
        return {}

    def forward_cache(self, z):
        xp = bnp.get_array_module(z)
        s = xp.where(z > 0, z.dtype.type(1), z.dtype.type(self.slope))
        return z * s, s

    def backward(self, x, delta, cache=None, need_input_grad=True):
        return {}, delta * cache


class _DenseMaskedDendritic:
    """The original implementation's dense masked formulation (float32 here), with the
    layer protocol of :mod:`bionp.nn.network` (so that a Sequential can hold it)."""

    def __init__(self, layer: DendriticLayer, dtype):
        xp = bnp.get_xp()
        D, N, M = layer.n_dendrites_total, layer.n_neurons, layer.n_dendrites
        self.in_features, self.out_features, self.dtype = layer.in_dim, N, np.dtype(dtype)
        self.mask = (layer.dense_weights() != 0).astype(dtype)
        self.W = layer.dense_weights().copy()
        self.b = xp.zeros(D, dtype=dtype)
        self.soma_mask = xp.zeros((N, D), dtype=dtype)
        for i in range(N):
            self.soma_mask[i, i * M:(i + 1) * M] = 1
        self.soma_W = xp.zeros((N, D), dtype=dtype)
        self.soma_W[self.soma_mask != 0] = layer.soma_w.reshape(-1)
        self.soma_b = xp.zeros(N, dtype=dtype)

    def params(self):
        return {"W": self.W, "b": self.b, "soma_W": self.soma_W, "soma_b": self.soma_b}

    @property
    def n_params(self):  # every dense entry is stored and updated
        return int(sum(v.size for v in self.params().values()))

    def forward(self, x, params=None):
        return self.forward_cache(x)[0]

    def forward_cache(self, x, params=None):
        xp = bnp.get_array_module(x)
        d = x @ (self.W * self.mask).T + self.b
        sd = xp.where(d > 0, d.dtype.type(1), d.dtype.type(0.1))
        a = d * sd
        s = a @ (self.soma_W * self.soma_mask).T + self.soma_b
        ss = xp.where(s > 0, s.dtype.type(1), s.dtype.type(0.1))
        return s * ss, (x, sd, a, ss)

    def backward(self, x, delta, cache=None, feedback=None, need_input_grad=True):
        if cache is None:
            cache = self.forward_cache(x)[1]
        x, sd, a, ss = cache
        g = delta * ss
        grads = {"soma_W": (g.T @ a) * self.soma_mask, "soma_b": g.sum(axis=0)}
        e = (g @ self.soma_W) * sd
        grads["W"] = (e.T @ x) * self.mask
        grads["b"] = e.sum(axis=0)
        return grads, (e @ self.W if need_input_grad else None)

    def after_update(self):
        self.W *= self.mask  # the original re-masks after every step
        return False


class _OriginalEpoch:
    """A reproduction of the cost of the original NumPy implementation's epoch (the issue's
    "about 6 s per epoch at batch 256"), written from its description, not its code.

    What makes it the original and not :class:`_DenseMaskedDendritic`: NumPy's default
    float64 everywhere (weights, moments, inputs, one-hot targets); every operation
    out of place (new arrays each step); the dendrite and soma weights multiplied by
    their masks after the backward pass and again after the optimiser step; the first
    layer's input gradient computed although nothing uses it; dense gradients masked after
    the matmul; Adam over every dense entry with its bias-corrected moments formed as
    new arrays and the (zero) weight decay applied; the loss as ``log(softmax + 1e-15)``
    and the batch accuracy read every step; the training set copied in shuffled order
    every epoch; resampling every 128 steps by a full ``argsort`` of the (230, 784)
    weight magnitudes with the masked-out entries set to infinity.  Model: the seed's
    DendriticLayer(784, 10, 32, 23) (leaky ReLU at dendrites and somas) + leaky ReLU +
    Dense(10, 10); Adam (lr 0.001 unless ``--lr``).
    """

    def __init__(self, layer: DendriticLayer, lr, n_resample=8, steps_to_resample=128):
        f64 = np.float64
        N, M, D = layer.n_neurons, layer.n_dendrites, layer.n_dendrites_total
        self.mask = bnp.asnumpy(layer.dense_weights() != 0).astype(f64)
        self.soma_mask = np.zeros((N, D))
        for i in range(N):
            self.soma_mask[i, i * M:(i + 1) * M] = 1
        g = np.random.default_rng(0)  # the original draws with NumPy's global generator
        self.p = {"W": g.standard_normal((D, layer.in_dim)) * np.sqrt(2 / layer.in_dim)
                  * self.mask, "b": np.zeros(D),
                  "sW": g.standard_normal((N, D)) * np.sqrt(2 / D) * self.soma_mask,
                  "sb": np.zeros(N),
                  "W2": g.standard_normal((10, N)) * np.sqrt(2 / N), "b2": np.zeros(10)}
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.lr, self.t, self.steps = lr, 0, 0
        self.n_resample, self.steps_to_resample = n_resample, steps_to_resample
        self.rng = g
        self.dtype = f64

    def _resample(self):
        metric = np.abs(self.p["W"])
        metric[self.mask == 0] = np.inf
        cols = np.argsort(metric, axis=1)[:, :self.n_resample].reshape(-1)
        rows = np.repeat(np.arange(self.mask.shape[0]), self.n_resample)
        new = self.rng.integers(0, self.mask.shape[1], rows.size)
        ok = self.mask[rows, new] == 0
        flat = rows * self.mask.shape[1] + new
        counts = np.bincount(flat, minlength=self.mask.size)
        ok &= counts[flat] == 1
        rows, cols, new = rows[ok], cols[ok], new[ok]
        self.mask[rows, cols] = 0
        self.mask[rows, new] = 1
        self.p["W"][rows, new] = self.rng.standard_normal(rows.size) * np.sqrt(2 / 784)
        self.p["W"] = self.p["W"] * self.mask

    def epoch(self, x, labels, batch_size):
        p, b1, b2, eps = self.p, 0.9, 0.999, 1e-8
        t0, c0 = time.perf_counter(), time.process_time()
        order = self.rng.permutation(len(x))
        X, T = x[order], np.eye(10)[labels][order]
        correct = loss_sum = 0.0
        for start in range(0, len(X) - batch_size + 1, batch_size):
            xb, tb = X[start:start + batch_size], T[start:start + batch_size]
            d = xb @ p["W"].T + p["b"]
            a = np.where(d > 0, d, 0.1 * d)
            s = a @ p["sW"].T + p["sb"]
            h = np.where(s > 0, s, 0.1 * s)
            h2 = np.where(h > 0, h, 0.1 * h)
            z = h2 @ p["W2"].T + p["b2"]
            e = np.exp(z - np.max(z, axis=1, keepdims=True))
            sm = e / np.sum(e, axis=1, keepdims=True)
            loss_sum += np.mean(-np.sum(tb * np.log(sm + 1e-15), axis=1))
            correct += np.sum(np.argmax(z, axis=1) == np.argmax(tb, axis=1))
            gz = (sm - tb) / batch_size
            grads = {"W2": gz.T @ h2, "b2": gz.sum(axis=0)}
            gh2 = gz @ p["W2"]
            gh = np.where(h > 0, gh2, 0.1 * gh2)
            gs = np.where(s > 0, gh, 0.1 * gh)
            grads["sW"] = gs.T @ a * self.soma_mask
            grads["sb"] = gs.sum(axis=0)
            ga = gs @ p["sW"]
            gd = np.where(d > 0, ga, 0.1 * ga)
            grads["W"] = gd.T @ xb * self.mask
            grads["b"] = gd.sum(axis=0)
            _unused_input_grad = gd @ p["W"]
            self.steps += 1
            if self.steps >= self.steps_to_resample:
                self.steps = 0
                self._resample()
            p["W"] = p["W"] * self.mask
            self.t += 1
            for k in p:
                self.m[k] = b1 * self.m[k] + (1 - b1) * grads[k]
                self.v[k] = b2 * self.v[k] + (1 - b2) * grads[k] ** 2
                m_hat = self.m[k] / (1 - b1 ** self.t)
                v_hat = self.v[k] / (1 - b2 ** self.t)
                p[k] -= self.lr * m_hat / (np.sqrt(v_hat) + eps)
                p[k] -= self.lr * 0.0 * p[k]
            p["W"] = p["W"] * self.mask
        return time.perf_counter() - t0, time.process_time() - c0


def _softmax_ce_delta(xp, z, labels):
    z = z - z.max(axis=1, keepdims=True)
    p = xp.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[xp.arange(z.shape[0]), labels] -= 1
    p /= p.dtype.type(z.shape[0])
    return p


def _epoch(layers, x, labels, batch_size, lr, optimizer="sgd"):
    xp = bnp.get_array_module(x)
    n = x.shape[0]
    adam = None
    if optimizer == "adam":
        from bionp import optim

        adam = optim.Adam([layer.params() for layer in layers], lr=lr)
    synchronize(xp)
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, n, batch_size):
        a = x[start:start + batch_size]
        caches = []
        for layer in layers:
            a, c = layer.forward_cache(a)
            caches.append(c)
        delta = _softmax_ce_delta(xp, a, labels[start:start + batch_size])
        all_grads = [None] * len(layers)
        for i in range(len(layers) - 1, -1, -1):
            grads, delta = layers[i].backward(None, delta, caches[i], need_input_grad=i > 0)
            if adam is not None:
                all_grads[i] = grads
                continue
            for k, p in layers[i].params().items():
                g = grads[k]
                g *= g.dtype.type(lr)
                p -= g
        if adam is not None:
            adam.step(all_grads)
        for layer in layers:
            if hasattr(layer, "after_update"):
                layer.after_update()
    synchronize(xp)
    return time.perf_counter() - t0, time.process_time() - c0


def _trainer_epoch(net, x, labels, batch_size, lr, optimizer="sgd"):
    """One epoch of :class:`bionp.train.Trainer` (Backprop, SGD or Adam, cross-entropy), timed."""
    from bionp import nn, optim, rules
    from bionp.train import Trainer

    opt = optim.Adam(net, lr=lr) if optimizer == "adam" else optim.SGD(net, lr=lr)
    trainer = Trainer(net, rules.Backprop(), opt, nn.CrossEntropyLoss(),
                      batch_size=batch_size, rng=0, shuffle=False, progress=False)
    xp = bnp.get_array_module(x)
    synchronize(xp)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(x, labels, epochs=1, labels=False)  # the epoch alone, no accuracy pass
    synchronize(xp)
    return time.perf_counter() - t0, time.process_time() - c0


def _build_sequential(name, dtype):
    from bionp import nn

    if name in ("dendritic_sequential", "dense_masked_sequential"):
        layer = DendriticLayer(784, 10, 32, 23, rng=1, dtype=dtype)
        if name == "dense_masked_sequential":
            layer = _DenseMaskedDendritic(layer, dtype)
        return nn.Sequential([layer, nn.Dense(10, 10, init="he_normal", rng=2, dtype=dtype)],
                             activations=[nn.LeakyReLU(0.1), "identity"])
    return nn.MLP([784, 64, 10], activation=nn.LeakyReLU(0.1), init="he_normal", rng=2,
                  dtype=dtype)


def _build(name, dtype):
    rng = bnp.random.Generator(0)
    if name in ("dendritic", "dendritic_dense_path", "dense_masked"):
        layer = DendriticLayer(784, 10, 32, 23, rng=1, dtype=dtype,
                               path="dense" if name == "dendritic_dense_path" else "auto")
        first = _DenseMaskedDendritic(layer, dtype) if name == "dense_masked" else layer
        return [first, _Leaky(0.1), _Dense(10, 10, rng, dtype)]
    return [_Dense(784, 64, rng, dtype), _Leaky(0.1), _Dense(64, 10, rng, dtype)]


def _n_params(name, layers):
    if name == "dense_masked":
        return int(sum(v.size for v in layers[0].params().values())) + 110
    return int(sum(getattr(l, "n_params", sum(v.size for v in l.params().values()))
                   for l in layers))


def _resample_cost(dtype, repeats=20):
    out = {}
    for kind in ("weakest", "probabilistic"):
        layer = DendriticLayer(784, 10, 32, 23, resampling=kind, rng=0, dtype=dtype)
        layer.resample()
        synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            layer.resample()
        synchronize()
        out[kind] = (time.perf_counter() - t0) / repeats
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000, help="training images per epoch")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256],
                    help="batch sizes to time, each in turn")
    ap.add_argument("--repeats", type=int, default=3,
                    help="epochs timed per model; the fastest counts")
    ap.add_argument("--dtype", default="float32", help="float32 or float64")
    ap.add_argument("--backend", default="numpy", help="numpy, cupy or strict")
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                    help="optimiser of every model (adam: the seed's comparison)")
    ap.add_argument("--lr", type=float, default=None,
                    help="learning rate (default 0.01 for sgd, 0.001 for adam)")
    ap.add_argument("--no-original", dest="original", action="store_false",
                    help="skip the reproduction of the original NumPy implementation's epoch "
                         "(float64, Adam; NumPy backend only; 1-6 s per epoch)")
    args = ap.parse_args(argv)
    if args.lr is None:
        args.lr = 0.001 if args.optimizer == "adam" else 0.01
    bnp.use(args.backend)
    dtype = bnp.set_dtype(args.dtype)
    g = bnp.random.Generator(123)
    x = g.uniform(0, 1, (args.n, 784), dtype=dtype)
    labels = g.integers(0, 10, args.n)
    models = ("dendritic", "dendritic_dense_path", "dense_masked", "vanilla",
              "dendritic_sequential", "vanilla_sequential", "dense_masked_sequential")
    original = args.original and args.backend == "numpy"
    x64 = bnp.asnumpy(x).astype(np.float64) if original else None
    labels_host = bnp.asnumpy(labels)
    result = {"config": vars(args), "device": device_info(),
              "compiled_kernels": bool(sparse_rows_dot_available(bnp.get_xp())),
              "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                          "load_average": list(os.getloadavg()),
                          "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")},
              "seconds_per_epoch": {}, "n_params": {}}
    result["cpu_seconds_per_epoch"] = {}
    for name in models:  # untimed warm-up: imports, first allocations, caches
        if name.endswith("_sequential"):
            _trainer_epoch(_build_sequential(name, dtype), x[:256], labels[:256], 128, args.lr,
                           args.optimizer)
        else:
            _epoch(_build(name, dtype), x[:256], labels[:256], 128, args.lr, args.optimizer)
    for bs in args.batch_sizes:
        wall = {name: [] for name in models + (("original_numpy",) if original else ())}
        cpu = {name: [] for name in wall}
        for _ in range(args.repeats):  # models interleaved: load changes hit them alike
            if original:
                w_s, c_s = _OriginalEpoch(DendriticLayer(784, 10, 32, 23, rng=1),
                                          args.lr).epoch(x64, labels_host, bs)
                wall["original_numpy"].append(w_s)
                cpu["original_numpy"].append(c_s)
            for name in models:
                if name.endswith("_sequential"):
                    net = _build_sequential(name, dtype)
                    w_s, c_s = _trainer_epoch(net, x, labels, bs, args.lr, args.optimizer)
                    result["n_params"][name] = int(net.n_params)
                else:
                    layers = _build(name, dtype)
                    w_s, c_s = _epoch(layers, x, labels, bs, args.lr, args.optimizer)
                    result["n_params"][name] = _n_params(name, layers)
                wall[name].append(w_s)
                cpu[name].append(c_s)
        for key, times in (("seconds_per_epoch", wall), ("cpu_seconds_per_epoch", cpu)):
            row = {name: min(t) for name, t in times.items()}
            row["ratio_dendritic_vs_vanilla"] = row["dendritic"] / row["vanilla"]
            row["ratio_dendritic_vs_dense_masked"] = row["dendritic"] / row["dense_masked"]
            row["meets_targets"] = bool(row["ratio_dendritic_vs_vanilla"] <= 1.5
                                        and row["ratio_dendritic_vs_dense_masked"] <= 0.5)
            if original:
                row["ratio_dendritic_vs_original"] = row["dendritic"] / row["original_numpy"]
                row["ratio_sequential_dendritic_vs_original"] = (row["dendritic_sequential"]
                                                                 / row["original_numpy"])
            row["ratio_sequential_dendritic_vs_vanilla"] = (row["dendritic_sequential"]
                                                            / row["vanilla_sequential"])
            row["ratio_sequential_dendritic_vs_dense_masked"] = (
                row["dendritic_sequential"] / row["dense_masked_sequential"])
            row["sequential_meets_targets"] = bool(
                row["ratio_sequential_dendritic_vs_vanilla"] <= 1.5
                and row["ratio_sequential_dendritic_vs_dense_masked"] <= 0.5)
            if original:  # the second target is against the original: also required
                row["meets_targets"] &= row["ratio_dendritic_vs_original"] <= 0.5
                row["sequential_meets_targets"] &= (
                    row["ratio_sequential_dendritic_vs_original"] <= 0.5)
            row["all_repeats"] = times
            result[key][f"batch_{bs}"] = row
    result["resampling_event_seconds"] = _resample_cost(dtype)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
