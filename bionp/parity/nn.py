"""Parity scenarios of the noisy-weight layers (:mod:`bionp.nn.noisy`)."""

from __future__ import annotations

from bionp.nn.losses import CrossEntropyLoss
from bionp.nn.network import Sequential
from bionp.nn.noisy import LearnableNoiseDense, NoisyDense
from bionp.optim import SGD
from bionp.parity import register_parity
from bionp.random import Generator
from bionp.rules import Backprop, KolenPollack


def train_noisy_network(make_layers, dtype, rule="backprop", n_updates=60):
    """60 SGD (momentum) updates of a 6-8-3 network of noisy layers from fixed seeds."""
    g = Generator(5)
    x = g.normal(0, 1, (64, 6), dtype=dtype)
    labels = g.integers(0, 3, 64)
    net = Sequential(make_layers(dtype), ["tanh", "identity"])
    r = Backprop() if rule == "backprop" else KolenPollack(weight_decay=0.0, feedback_optimizer="sgd", rng=2)
    opt = SGD(net, lr=0.1, momentum=0.9)
    loss = CrossEntropyLoss()
    for i in range(n_updates):
        sl = slice((i % 4) * 16, (i % 4 + 1) * 16)
        grads = r.gradients(net, x[sl], labels[sl], loss)
        opt.step(grads)
        r.after_step(net, opt)
    out = {}
    for l, layer in enumerate(net.layers):
        for k, v in layer.params().items():
            out[f"{k}{l}"] = v
    return out


@register_parity("nn.noisy_dense", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_noisy_dense(dtype):
    """NoisyDense (additive, multiplicative): 60 backprop SGD updates of a 6-8-3 network."""
    return train_noisy_network(lambda dt: [
        NoisyDense(6, 8, sigma=0.1, rng=1, dtype=dt),
        NoisyDense(8, 3, sigma=0.2, mode="multiplicative", rng=2, dtype=dt)], dtype)


@register_parity("nn.learnable_noise_dense", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_learnable_noise_dense(dtype):
    """LearnableNoiseDense (per layer, per weight + regulariser): 60 Kolen-Pollack updates."""
    return train_noisy_network(lambda dt: [
        LearnableNoiseDense(6, 8, log_var_init=-5.0, rng=1, dtype=dt),
        LearnableNoiseDense(8, 3, log_var_init=-4.0, per_weight=True, sigma_reg=0.01,
                            mode="multiplicative", sigma_bounds=(1e-3, 0.5), rng=2, dtype=dt)],
        dtype, rule="kolen_pollack")
