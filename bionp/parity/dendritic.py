"""Parity scenarios of the dendritic layer (:mod:`bionp.dendritic`): the same training with
synaptic resampling on every backend."""

from __future__ import annotations

from bionp import nn, optim, rules
from bionp.dendritic.layer import DendriticLayer
from bionp.parity import register_parity
from bionp.random import Generator
from bionp.train import Trainer


def train_dendritic_layer(dtype, resampling, path):
    """60 plain SGD updates of a DendriticLayer(40 -> 3) with resampling every 5 updates."""
    g = Generator(11)
    x = g.uniform(0.0, 1.0, (32, 40), dtype=dtype)
    t = g.normal(0.0, 1.0, (32, 3), dtype=dtype)
    layer = DendriticLayer(40, 3, 6, 4, percentage_resample=0.34, steps_to_resample=5,
                           resampling=resampling, path=path, init="he", rng=3, dtype=dtype,
                           prune_threshold=0.3)
    lr = 0.05
    for i in range(60):
        sl = slice((i % 4) * 8, (i % 4 + 1) * 8)
        y, cache = layer.forward_cache(x[sl])
        delta = (y - t[sl]) / y.dtype.type(8)
        grads, _ = layer.backward(x[sl], delta, cache, need_input_grad=(i % 2 == 0))
        for k, p in layer.params().items():
            p -= grads[k] * p.dtype.type(lr)
        layer.after_update()
    out = dict(layer.params())
    out["idx"] = layer.idx
    out["y"] = layer.forward(x)
    return out


@register_parity("dendritic.layer", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_dendritic(dtype):
    """DendriticLayer: 60 SGD updates with 12 weakest-synapse resampling events (gather path)."""
    return train_dendritic_layer(dtype, "weakest", "gather")


@register_parity("dendritic.layer_dense", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_dendritic_dense(dtype):
    """DendriticLayer: as dendritic.layer on the dense masked-matmul path."""
    return train_dendritic_layer(dtype, "weakest", "dense")


@register_parity("dendritic.layer_probabilistic", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_dendritic_probabilistic(dtype):
    """DendriticLayer: 60 SGD updates with 12 probabilistic (Laplace) resampling events."""
    return train_dendritic_layer(dtype, "probabilistic", "gather")


@register_parity("dendritic.sequential_trainer", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_dendritic_sequential(dtype):
    """Sequential(DendriticLayer, Dense) trained 3 epochs by the Trainer (Backprop, Adam),
    resampling every 5 updates through ``net.after_update()``."""
    g = Generator(12)
    x = g.uniform(0.0, 1.0, (48, 40), dtype=dtype)
    labels = g.integers(0, 3, 48)
    layer = DendriticLayer(40, 4, 6, 3, percentage_resample=0.34, steps_to_resample=5, rng=3,
                           dtype=dtype)
    net = nn.Sequential([layer, nn.Dense(4, 3, init="he_normal", rng=4, dtype=dtype)],
                        activations=[nn.LeakyReLU(0.1), "identity"])
    trainer = Trainer(net, rules.Backprop(), optim.Adam(net, lr=0.01), nn.CrossEntropyLoss(),
                      batch_size=8, rng=5, progress=False)
    trainer.fit(x, labels, epochs=3)
    out = {f"{i}.{k}": v for i, p in enumerate(net.parameters()) for k, v in p.items()}
    out["idx"] = layer.idx
    out["y"] = net.forward(x)
    return out
