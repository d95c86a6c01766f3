"""Parity scenarios of the feedback rules on a small residual network: each rule trains
conv3x3-2 + batch norm, a residual block with an identity shortcut, one with an option-A
shortcut (stride 2), one with an option-B projection (stride 2), average pooling, flatten
and a dense layer, for 60 SGD (momentum) updates from fixed seeds.

The blocks use tanh inside and after them (no ReLU ties), as :mod:`bionp.parity.conv`.
The arrays compared are every layer's state (weights and batch norms' statistics) and the
rule's matrices (``B``, ``D``, DFA's ``block_B``), one per weight inside a block.
"""

from __future__ import annotations

from bionp import nn
from bionp.optim import SGD
from bionp.parity import register_parity
from bionp.random import Generator
from bionp.rules import DirectFeedbackAlignment, FeedbackAlignment, KolenPollack, WeightMirror

_TOL = {"float32": 1e-5, "float64": 1e-12}


def small_resnet(dtype):
    """``(1, 8, 8)``: conv-2, batch norm, blocks 2->2, 2->4 (A, stride 2), 4->6 (B, stride 2),
    average pool 2, flatten, dense 6 -> 3."""
    layers = [nn.Conv2d(1, 2, 3, padding=1, bias=False, rng=0, dtype=dtype),
              nn.BatchNorm2d(2, dtype=dtype),
              nn.ResidualBlock(2, 2, activation="tanh", rng=1, dtype=dtype),
              nn.ResidualBlock(2, 4, stride=2, activation="tanh", rng=2, dtype=dtype),
              nn.ResidualBlock(4, 6, stride=2, shortcut="B", activation="tanh", rng=3,
                               dtype=dtype),
              nn.AvgPool2d(2), nn.Flatten(), nn.Dense(6, 3, rng=4, dtype=dtype)]
    acts = ["identity", "tanh", "tanh", "tanh", "tanh", "identity", "identity", "identity"]
    return nn.Sequential(layers, acts, input_shape=(1, 8, 8))


def train_small_resnet(rule_factory, dtype, n_updates=60, lr=0.05):
    """``n_updates`` SGD (momentum 0.9) updates of :func:`small_resnet` by ``rule_factory()``,
    batches of 8 of 32 fixed images, cross-entropy, ``after_step`` after each; returns
    ``L{l}.{name}`` for every layer's state and ``{attr}{l}[.{key}]`` for the rule's
    matrices."""
    g = Generator(5)
    x = g.normal(0, 1, (32, 1, 8, 8), dtype=dtype)
    labels = g.integers(0, 3, 32)
    net = small_resnet(dtype)
    rule = rule_factory()
    opt = SGD(net, lr=lr, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    for i in range(n_updates):
        sl = slice((i % 4) * 8, (i % 4 + 1) * 8)
        opt.step(rule.gradients(net, x[sl], labels[sl], loss))
        rule.after_step(net, opt)
    out = {}
    for l, layer in enumerate(net.layers):
        state = layer.state_dict() if hasattr(layer, "state_dict") else layer.params()
        out.update({f"L{l}.{k}": v for k, v in state.items()})
    for attr in ("B", "D", "block_B"):
        for l, M in enumerate(getattr(rule, attr, None) or []):
            if isinstance(M, dict):
                out.update({f"{attr}{l}.{k}": v for k, v in M.items()})
            elif M is not None:
                out[f"{attr}{l}"] = M
    return out


_RULES = {
    "feedback_alignment": lambda: FeedbackAlignment(rng=2),
    "kolen_pollack": lambda: KolenPollack(weight_decay=0.01, rng=2),
    "direct_feedback_alignment": lambda: DirectFeedbackAlignment(rng=2),
    "direct_feedback_alignment_blocks_feedback":
        lambda: DirectFeedbackAlignment(rng=2, blocks="feedback"),
    "weight_mirror": lambda: WeightMirror(mirror_batch_size=16, warmup_steps=10, decay=0.02,
                                          rng=2),
}


def _register(name):
    factory = _RULES[name]

    def scenario(dtype):
        return train_small_resnet(factory, dtype)

    scenario.__doc__ = (f"{name}: 60 SGD (momentum) updates of a small residual net (conv, "
                        "batch norm, three residual blocks with identity, option A and "
                        "option B shortcuts, average pool, dense).")
    register_parity(f"residual.{name}", rtol=_TOL)(scenario)


for _name in _RULES:
    _register(_name)
