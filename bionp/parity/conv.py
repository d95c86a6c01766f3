"""Parity scenarios of the supervised rules on convolutional networks: each rule trains a
small conv net (conv, max-pool, flatten, dense; and one with batch norm) for 100 SGD
(momentum) updates from fixed seeds.

The nets use tanh, so that no max-pool window holds a tie (ReLU's zeros would make the
routing of the error depend on the tie-break).  The arrays compared are every layer's
state (weights, biases, batch norm's scale, shift and running statistics) and the
rule's feedback matrices.
"""

from __future__ import annotations

from bionp import nn
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

_TOL = {"float32": 1e-5, "float64": 1e-12}


def small_convnet(dtype, batchnorm=False):
    """``(2, 10, 10) -> conv3x3-3 [-> batch norm] -> tanh -> max-pool 2 -> flatten -> 48 -> 3``."""
    layers = [nn.Conv2d(2, 3, 3, padding=0, rng=1, dtype=dtype)]
    acts = ["identity" if batchnorm else "tanh"]
    if batchnorm:
        layers.append(nn.BatchNorm2d(3, dtype=dtype))
        acts.append("tanh")
    layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Dense(48, 3, init="he_normal", rng=2, dtype=dtype)]
    acts += ["identity", "identity", "identity"]
    return nn.Sequential(layers, acts, input_shape=(2, 10, 10))


def train_small_convnet(rule_factory, dtype, batchnorm=False, n_updates=100, lr=0.05):
    """``n_updates`` SGD (momentum 0.9) updates of :func:`small_convnet` by ``rule_factory()``,
    batches of 16 of 64 fixed images, cross-entropy; the rule's ``after_step`` after each.

    Returns each layer's state ``L{l}.{name}`` and the rule's feedback matrices ``B{l}`` /
    ``D{l}``.
    """
    g = Generator(5)
    x = g.normal(0, 1, (64, 2, 10, 10), dtype=dtype)
    labels = g.integers(0, 3, 64)
    net = small_convnet(dtype, batchnorm)
    rule = rule_factory()
    opt = SGD(net, lr=lr, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    for i in range(n_updates):
        sl = slice((i % 4) * 16, (i % 4 + 1) * 16)
        grads = rule.gradients(net, x[sl], labels[sl], loss)
        opt.step(grads)
        rule.after_step(net, opt)
    out = {}
    for l, layer in enumerate(net.layers):
        state = layer.state_dict() if hasattr(layer, "state_dict") else layer.params()
        out.update({f"L{l}.{k}": v for k, v in state.items()})
    for attr in ("B", "D"):
        for l, M in enumerate(getattr(rule, attr, None) or []):
            if M is not None:
                out[f"{attr}{l}"] = M
    return out


_RULES = {
    "backprop": Backprop,
    "feedback_alignment": lambda: FeedbackAlignment(rng=2),
    "direct_feedback_alignment": lambda: DirectFeedbackAlignment(rng=2),
    "direct_feedback_alignment_channel": lambda: DirectFeedbackAlignment(rng=2, maps="channel"),
    "direct_feedback_alignment_next_input":
        lambda: DirectFeedbackAlignment(rng=2, at="next_input"),
    "kolen_pollack": lambda: KolenPollack(weight_decay=0.01, feedback_optimizer="sgd", rng=2),
    "kolen_pollack_mirror": lambda: KolenPollack(weight_decay=0.01, rng=2),
    "weight_perturbation": lambda: WeightPerturbation(sigma=0.01, antithetic=True, rng=3),
    "node_perturbation": lambda: NodePerturbation(sigma=0.01, rng=3),
}
_LR = {"weight_perturbation": 0.01, "node_perturbation": 0.01}
# the perturbation rules refuse batch norm (its batch statistics see the perturbed passes)
_BATCHNORM = ("backprop", "feedback_alignment", "direct_feedback_alignment",
              "direct_feedback_alignment_channel", "kolen_pollack", "kolen_pollack_mirror")


def _register(name, batchnorm):
    factory, lr = _RULES[name], _LR.get(name, 0.05)
    what = "conv, batch norm, max-pool, flatten, dense" if batchnorm else \
        "conv, max-pool, flatten, dense"

    def scenario(dtype):
        return train_small_convnet(factory, dtype, batchnorm=batchnorm, lr=lr)

    scenario.__doc__ = f"{name}: 100 SGD (momentum) updates of a small conv net ({what})."
    key = f"conv.{'batchnorm.' if batchnorm else ''}{name}"
    register_parity(key, rtol=_TOL)(scenario)


for _name in _RULES:
    _register(_name, batchnorm=False)
for _name in _BATCHNORM:
    _register(_name, batchnorm=True)
