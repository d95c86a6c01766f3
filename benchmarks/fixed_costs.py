"""What bionp's training epoch spends that the bare NumPy loop of ``benchmarks/rules.py``
does not, measured apart so that the rules benchmark can name it: the per-step cost that
does not grow with the arrays (checks, dispatch), and the Trainer's divergence backup
(the weights of the last finite loss, written in the SGD pass)."""

from __future__ import annotations

import time

import numpy as np

import bionp as bnp
from bionp import nn, optim, rules
from bionp.train import Trainer


def tiny_setup(steps, minimal_backprop_epoch, batch=2):
    """Epochs of ``steps`` updates of an 8-6-4 sigmoid MLP (batch 2), by ``Trainer`` and by
    the bare loop ``minimal_backprop_epoch``: the per-step cost that does not grow with the
    arrays.  Returns ``{"bionp": fn, "numpy_minimal": fn}`` (each warmed up once)."""
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


def backup_setup(steps, sizes=(784, 500, 10), clock=time.perf_counter):
    """``steps`` SGD steps of the MLP's parameters with and without the Trainer's backup
    (``optimizer.step(grads, backup=...)``, what ``fit`` calls): their difference is what
    the divergence guard costs an epoch.  Returns ``{"sgd_with_backup": fn, "sgd": fn}``."""
    net = nn.MLP(list(sizes), activation="sigmoid", output_activation="sigmoid", rng=0)
    opt = optim.SGD(net, lr=1e-30)  # the weights stay where they are
    grads = [{k: bnp.get_xp().ones_like(v) for k, v in p.items()} for p in net.parameters()]
    backup = [{k: v.copy() for k, v in p.items()} for p in net.parameters()]

    def run(**kw):
        for _ in range(steps):
            opt.step(grads, **kw)

    fns = {"sgd_with_backup": lambda: run(backup=backup), "sgd": run}
    for fn in fns.values():
        fn()
    return fns
