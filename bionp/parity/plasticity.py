"""Parity scenario of the bio transformations (:mod:`bionp.plasticity`)."""

from __future__ import annotations

from bionp.nn import MLP, CrossEntropyLoss
from bionp.optim import SGD
from bionp.parity import register_parity
from bionp.plasticity.config import TRANSFORMS, BioConfig, convert
from bionp.random import Generator
from bionp.rules import Backprop


@register_parity("plasticity.chain", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_plasticity_chain(dtype):
    """Every bio transformation, Dale's principle and weight splitting (Γ = 2 in layer 0):
    60 backprop/SGD updates of a 6-8-5-3 MLP."""
    g = Generator(5)
    x = g.normal(0, 1, (64, 6), dtype=dtype)
    labels = g.integers(0, 3, 64)
    net = MLP([6, 8, 5, 3], activation="tanh", rng=1, dtype=dtype)
    cfg = BioConfig(transforms=TRANSFORMS, apply_dales_principle=True, crystallize_every=5,
                    rejuvenate_every=10, lr_redraw_every=3, crystal_thresh=0.05,
                    scale_grad_strength=0.1, l1_strength=1e-3, weight_splitting_Gamma=2,
                    weight_splitting_layers=(0,), weight_splitting_activation_function="tanh",
                    lr_relative=True)  # the scenario as recorded before the default changed
    convert(net, cfg, rng=7)
    opt = SGD(net, lr=0.1, momentum=0.9)
    rule, loss = Backprop(), CrossEntropyLoss()
    for i in range(60):
        sl = slice((i % 4) * 16, (i % 4 + 1) * 16)
        grads = rule.gradients(net, x[sl], labels[sl], loss)
        grads = net.plasticity.update(net.parameters(), grads)
        opt.step(grads)
        net.plasticity.after_update(net)
    out = {f"W{l}": layer.W for l, layer in enumerate(net.layers)}
    out.update({f"b{l}": layer.b for l, layer in enumerate(net.layers)})
    for t in net.plasticity:
        for name, per in (t.state or {}).items():
            for key, a in per.items():
                out[f"{t.name}.{name}.{key}"] = a
    return out
