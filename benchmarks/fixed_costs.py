"""What bionp's training epoch spends that the bare NumPy loop of ``benchmarks/rules.py``
does not, measured apart so that the rules benchmark can name it: the per-step cost that
does not grow with the arrays (checks, dispatch), and the Trainer's divergence backup
(the weights of the last finite loss, written in the SGD pass)."""

from __future__ import annotations

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


class SGDWithoutBackup(optim.SGD):
    """SGD that ignores the Trainer's ``backup``: a Trainer built with it trains exactly as
    with ``SGD`` (the same update, the same compiled pass without the copy) but keeps no
    weights to restore after a non-finite loss.  Its epoch against the real one's, in the
    same rounds, is what the backup costs inside the loop (where the copy's array is out
    of the cache, unlike in a loop of SGD steps alone).  For timing only: never for
    training (a divergence would "restore" stale weights)."""

    def step(self, grads, *, backup=None) -> None:
        """``SGD.step(grads)``; ``backup`` is ignored (nothing is copied)."""
        super().step(grads)

