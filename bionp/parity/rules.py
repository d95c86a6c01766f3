"""Parity scenarios of the supervised rules (:mod:`bionp.rules`): each rule trains the same
6-8-5-3 sigmoid MLP for 100 SGD (momentum) updates from fixed seeds."""

from __future__ import annotations

from bionp.nn import MLP, MSELoss
from bionp.optim import SGD
from bionp.parity import register_parity
from bionp.random import Generator
from bionp.rules import (
    Backprop,
    DirectFeedbackAlignment,
    FeedbackAlignment,
    KolenPollack,
    NodePerturbation,
    WeightPerturbation,
)


def train_small_mlp(rule_factory, dtype, n_updates=100, lr=0.1):
    """The shared scenario: ``n_updates`` SGD updates of a 6-8-5-3 MLP by ``rule_factory()``.

    Returns the weights ``W{l}``, biases ``b{l}`` and, for rules that keep them, the
    feedback matrices ``B{l}``.
    """
    g = Generator(5)
    x = g.normal(0, 1, (64, 6), dtype=dtype)
    labels = g.integers(0, 3, 64)
    net = MLP([6, 8, 5, 3], activation="sigmoid", output_activation="sigmoid", rng=1, dtype=dtype)
    rule = rule_factory()
    opt = SGD(net, lr=lr, momentum=0.9)
    loss = MSELoss()
    for i in range(n_updates):
        sl = slice((i % 4) * 16, (i % 4 + 1) * 16)
        grads = rule.gradients(net, x[sl], labels[sl], loss)
        opt.step(grads)
        rule.update_after_step(net, grads, lr)
    out = {f"W{l}": layer.W for l, layer in enumerate(net.layers)}
    out.update({f"b{l}": layer.b for l, layer in enumerate(net.layers)})
    for l, B in enumerate(getattr(rule, "B", None) or []):
        if B is not None:
            out[f"B{l}"] = B
    return out


@register_parity("rules.backprop", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_backprop(dtype):
    """Backprop: 100 SGD (momentum) updates of a 6-8-5-3 sigmoid MLP."""
    return train_small_mlp(Backprop, dtype)


@register_parity("rules.feedback_alignment", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_feedback_alignment(dtype):
    """Feedback alignment: 100 SGD updates of a 6-8-5-3 sigmoid MLP."""
    return train_small_mlp(lambda: FeedbackAlignment(rng=2), dtype)


@register_parity("rules.direct_feedback_alignment", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_direct_feedback_alignment(dtype):
    """Direct feedback alignment: 100 SGD updates of a 6-8-5-3 sigmoid MLP."""
    return train_small_mlp(lambda: DirectFeedbackAlignment(rng=2), dtype)


@register_parity("rules.kolen_pollack", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_kolen_pollack(dtype):
    """Kolen-Pollack: 100 SGD updates of a 6-8-5-3 sigmoid MLP, W and B."""
    return train_small_mlp(
        lambda: KolenPollack(weight_decay=0.01, feedback_optimizer="sgd", rng=2), dtype)


@register_parity("rules.weight_perturbation", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_weight_perturbation(dtype):
    """Weight perturbation: 100 SGD updates of a 6-8-5-3 sigmoid MLP."""
    return train_small_mlp(lambda: WeightPerturbation(sigma=0.05, antithetic=True, rng=3), dtype,
                           lr=0.01)


@register_parity("rules.weight_perturbation_rademacher",
                 rtol={"float32": 1e-5, "float64": 1e-12})
def parity_weight_perturbation_rademacher(dtype):
    """Weight perturbation with Rademacher noise: 100 SGD updates of a 6-8-5-3 sigmoid MLP."""
    return train_small_mlp(lambda: WeightPerturbation(sigma=0.05, noise="rademacher", rng=3),
                           dtype, lr=0.01)


@register_parity("rules.node_perturbation", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_node_perturbation(dtype):
    """Node perturbation: 100 SGD updates of a 6-8-5-3 sigmoid MLP."""
    return train_small_mlp(lambda: NodePerturbation(sigma=0.05, n_samples=2, rng=3), dtype,
                           lr=0.01)
