"""Parity scenario of the optimisers (:mod:`bionp.optim`)."""

from __future__ import annotations

from bionp.nn import MLP, CrossEntropyLoss
from bionp.optim import Adam
from bionp.parity import register_parity
from bionp.random import Generator
from bionp.rules import Backprop


@register_parity("optim.adam", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_adam(dtype):
    """Adam (weight decay 1e-3) on backprop gradients: 100 updates of a 6-8-5-3 MLP."""
    g = Generator(5)
    x = g.normal(0, 1, (64, 6), dtype=dtype)
    labels = g.integers(0, 3, 64)
    net = MLP([6, 8, 5, 3], activation="tanh", rng=1, dtype=dtype)
    opt = Adam(net, lr=0.01, weight_decay=1e-3)
    rule, loss = Backprop(), CrossEntropyLoss()
    for i in range(100):
        sl = slice((i % 4) * 16, (i % 4 + 1) * 16)
        opt.step(rule.gradients(net, x[sl], labels[sl], loss))
    out = {f"W{l}": layer.W for l, layer in enumerate(net.layers)}
    out.update({f"m{l}": opt.state["m"][l]["W"] for l in range(len(net.layers))})
    return out
