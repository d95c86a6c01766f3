r"""The device check's timed epochs: one workload on NumPy (this machine's CPU) and on the
backend under test, seconds per epoch and their ratio
:math:`t_\mathrm{cpu} / t_\mathrm{device}` (see :mod:`bionp.gpucheck`).

Each workload's ``make(x, t, labels, sizes)`` builds its model on the active backend
from fixed seeds and returns ``epoch(n)``, one training epoch over the first ``n``
samples.  :func:`time_epoch` runs a warm-up (kernels compiled, buffers allocated), a
timed probe, then the whole epoch, or, when that would not fit the time left, a
prefix of it scaled to the whole (``extrapolated_from`` gives the samples run).
"""

from __future__ import annotations

import os
import time

from bionp.gpucheck.guard import PhaseTimeout

__all__ = ["TARGETS", "WORKLOADS", "load_data", "phase_timings", "time_epoch"]

#: Speed-up (CPU seconds / device seconds) each timed workload should reach on a GPU.
TARGETS = {"backprop_b200": 10.0, "backprop_b2000": 50.0, "krotov_hopfield": 20.0}


def load_data(n_samples: int):
    """``(x, labels, source)`` on the host, float32, ``n_samples`` rows.

    Parameters
    ----------
    n_samples : int
        Rows wanted; the training set is tiled when it has fewer.
    """
    import numpy as np

    from bionp import data
    from bionp.backend import backend

    x = y = None
    source = None
    with backend("numpy"):
        if os.environ.get("BIONP_DATA"):
            try:
                x, y = data.load("fashion-mnist", split="train", download=False, dtype="float32")
                source = "fashion-mnist (BIONP_DATA)"
            except Exception as exc:
                source = f"bundled subset, tiled (full Fashion-MNIST not loaded: {exc})"
        if x is None:
            x, y = data.load("fashion-mnist-small", split="train", dtype="float32")
            source = source or ("fashion-mnist-small (bundled), tiled "
                                "(set BIONP_DATA for the full set)")
    reps = -(-n_samples // x.shape[0])
    if reps > 1:
        x, y = np.tile(x, (reps, 1)), np.tile(y, reps)
    return np.ascontiguousarray(x[:n_samples]), np.ascontiguousarray(y[:n_samples]), source


def _mlp_trainer(x, t, batch, rule):
    from bionp import nn, optim
    from bionp.train import Trainer

    net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
    tr = Trainer(net, rule, optim.SGD(net, lr=0.1), nn.MSELoss(), batch_size=batch, rng=0,
                 progress=False)

    def epoch(n):
        tr.epoch = 0
        tr.fit(x[:n], t[:n], epochs=1)

    return epoch


def _backprop(batch):
    def make(x, t, labels, sizes):
        from bionp import rules

        return _mlp_trainer(x, t, batch, rules.Backprop())

    return make


def _weight_perturbation(x, t, labels, sizes):
    from bionp import rules

    return _mlp_trainer(x, t, 200, rules.WeightPerturbation(sigma=0.1, rng=1))


def _krotov_hopfield(x, t, labels, sizes):
    from bionp.hebbian import KrotovHopfield

    kh = KrotovHopfield(sizes["kh_hidden"], p=3.0, k=7, delta=0.4, lr=0.02, batch_size=100, rng=0,
                        progress=False)
    return lambda n: kh.fit(x[:n], epochs=1)


def _dendritic(x, t, labels, sizes):
    from bionp import nn, optim, rules
    from bionp.dendritic import DendriticLayer
    from bionp.train import Trainer

    layer = DendriticLayer(784, 10, 32, 23, rng=1)
    net = nn.Sequential([layer, nn.Dense(10, 10, init="he_normal", rng=2)],
                        activations=[nn.LeakyReLU(0.1), "identity"])
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.01), nn.CrossEntropyLoss(),
                 batch_size=128, rng=0, progress=False)

    def epoch(n):
        tr.epoch = 0
        tr.fit(x[:n], labels[:n], epochs=1)

    return epoch


WORKLOADS = {
    "backprop_b200": ("backprop epoch, 784-500-10 sigmoid MSE, batch 200", _backprop(200), 200),
    "backprop_b2000": ("backprop epoch, 784-500-10 sigmoid MSE, batch 2000", _backprop(2000), 2000),
    "krotov_hopfield": ("Krotov-Hopfield epoch, p=3 k=7, batch 100", _krotov_hopfield, 100),
    "dendritic": ("dendritic epoch, DendriticLayer(784,10,32,23)+Dense(10,10), CE, batch 128",
                  _dendritic, 128),
    "weight_perturbation": ("weight-perturbation epoch, 784-500-10 sigmoid MSE, batch 200",
                            _weight_perturbation, 200),
}


def time_epoch(name: str, backend_name: str, host, sizes: dict, seconds_left: float) -> dict:
    """One workload on one backend: warm-up, a timed probe, then a full (or, if it would
    not fit ``seconds_left``, a shortened and scaled) epoch.

    Parameters
    ----------
    name : str
        The workload, a key of ``WORKLOADS``.
    backend_name : str
        The backend to time it on (``"numpy"``, ``"strict"`` or ``"cupy"``).
    host : tuple of array
        ``(x, labels)`` host arrays from :func:`load_data`.
    sizes : dict
        ``n_samples`` and ``kh_hidden``.
    seconds_left : float
        Time the run may take; a longer epoch is shortened and its time scaled.
    """
    from bionp.backend import asarray, backend, default_dtype, synchronize
    from bionp.data import one_hot

    _, make, batch = WORKLOADS[name]
    x_h, y_h = host
    n = x_h.shape[0]
    with backend(backend_name) as xp, default_dtype("float32"):
        t0 = time.perf_counter()
        x, labels = asarray(x_h, xp=xp), asarray(y_h, xp=xp)
        t = one_hot(labels, 10)
        epoch = make(x, t, labels, sizes)
        probe = min(n, max(2 * batch, n // 20))
        epoch(min(n, 2 * batch))  # warm-up: kernels compiled, buffers allocated
        synchronize(xp)
        t1 = time.perf_counter()
        epoch(probe)
        synchronize(xp)
        t_probe = time.perf_counter() - t1
        left = seconds_left - (time.perf_counter() - t0)
        estimate = t_probe * n / probe
        n_run = n
        if estimate > 0.9 * left:  # shorten to what fits, whole batches, at least the probe
            n_run = max(probe, int(n * 0.9 * max(left, 0.0) / estimate) // batch * batch)
        if n_run == probe:
            seconds = t_probe
        else:
            t1 = time.perf_counter()
            epoch(n_run)
            synchronize(xp)
            seconds = time.perf_counter() - t1
    return {"seconds_per_epoch": seconds * n / n_run, "samples": n,
            "extrapolated_from": None if n_run == n else n_run}


def phase_timings(opts, entry, deadline):
    """The ``timings`` phase: every workload on NumPy then on ``opts.backend_under_test``,
    each run given an equal share of the time left before ``deadline``; fills ``entry``
    (``data``, ``sizes``, ``results``) as it goes.  True if every run gave a time.

    Parameters
    ----------
    opts : argparse.Namespace
        The parsed options (``quick``, ``backend_under_test``).
    entry : dict
        The phase's entry in the report, filled in place.
    deadline : float
        :func:`time.monotonic` time by which the phase must end.
    """
    sizes = {"n_samples": 4000 if opts.quick else 60_000, "kh_hidden": 100 if opts.quick else 2000}
    x, y, source = load_data(sizes["n_samples"])
    entry.update(data=source, sizes=sizes, results=[])
    names = list(WORKLOADS)
    runs_left = 2 * len(names)
    for name in names:
        batch = WORKLOADS[name][2]
        res = {"name": name, "what": WORKLOADS[name][0], "batch": batch,
               "steps_per_epoch": sizes["n_samples"] // batch, "target_speedup": TARGETS.get(name)}
        entry["results"].append(res)
        for side, b in (("cpu", "numpy"), ("device", opts.backend_under_test)):
            left = deadline - time.monotonic()
            share = left / runs_left
            runs_left -= 1
            if left <= 1.0:
                res[side] = {"error": "skipped: the phase's budget was used up"}
                continue
            try:
                res[side] = time_epoch(name, b, (x, y), sizes, share)
            except PhaseTimeout:
                res[side] = {"error": "timed out"}
                raise
            except Exception as exc:
                res[side] = {"error": f"{type(exc).__name__}: {exc}"}
        cpu_s = res["cpu"].get("seconds_per_epoch")
        dev_s = res["device"].get("seconds_per_epoch")
        res["speedup"] = cpu_s / dev_s if cpu_s and dev_s else None
        for side, s in (("cpu", cpu_s), ("device", dev_s)):  # per step: a miss's first clue
            if s:
                res[side]["ms_per_step"] = 1e3 * s / res["steps_per_epoch"]
        tgt = res["target_speedup"]
        res["meets_target"] = (None if tgt is None or res["speedup"] is None
                               or opts.backend_under_test != "cupy" else res["speedup"] >= tgt)
    return all("error" not in r["cpu"] and "error" not in r["device"] for r in entry["results"])

