r"""Backpropagation of error (Rumelhart, Hinton & Williams 1986): the exact gradient.

.. math::

    \delta_{L-1} = \frac{\partial L}{\partial z_{L-1}}, \qquad
    \delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l W_l), \qquad
    \frac{\partial L}{\partial W_l} = \delta_l^\top a_{l-1}, \qquad
    \frac{\partial L}{\partial b_l} = \textstyle\sum_n \delta_{l,n},

with :math:`L` the batch-mean loss (the :math:`1/N` sits in
:math:`\delta_{L-1}`).  Sign: the returned values are :math:`+\partial L/\partial\theta`
(descent is :math:`\theta \leftarrow \theta - \mathrm{lr}\,g`).  The
Microlearning tutorial's backprop update is :math:`\Delta W = -\frac N2
\partial L/\partial W` added with rate η, i.e. bionp ``lr = η N / 2``
(see :mod:`bionp.rules.base`).
"""

from __future__ import annotations

from bionp.parity import register_parity
from bionp.rules.base import ErrorPropagationRule

__all__ = ["Backprop"]


class Backprop(ErrorPropagationRule):
    """Exact gradient of the batch-mean loss by backpropagation (see module docstring)."""

    name = "backprop"


def _parity_run(rule_factory, dtype, n_updates=100, lr=0.1):
    """Shared parity scenario: 100 SGD updates on a small MLP from fixed seeds."""
    from bionp.nn import MLP, MSELoss
    from bionp.optim import SGD
    from bionp.random import Generator

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
def _parity_backprop(dtype):
    """Backprop: 100 SGD (momentum) updates of a 6-8-5-3 sigmoid MLP."""
    return _parity_run(Backprop, dtype)
