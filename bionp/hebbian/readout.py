r"""The readout of Krotov & Hopfield (2019) as pure functions: outputs, losses, gradients.

On hidden features :math:`h` (``N × n_hidden``), a linear readout :math:`V`
(``n_classes × n_hidden``) with bias :math:`b`:

.. math::

    z_{n\alpha} = \textstyle\sum_\mu V_{\alpha\mu} h_{n\mu} + b_\alpha, \qquad
    c_{n\alpha} = \tanh(\beta\, z_{n\alpha})

**Power loss** (the paper's), targets :math:`t_{n\alpha} = +1` for the true
class and :math:`-1` otherwise, mean over the batch of :math:`N` samples:

.. math::

    L = \frac1N \sum_n \sum_\alpha |c_{n\alpha} - t_{n\alpha}|^m, \qquad
    \frac{\partial L}{\partial c} = \frac{m}{N}\,|c - t|^{m-1}\operatorname{sign}(c - t), \\
    \frac{\partial L}{\partial z} = \beta\,(1 - c^2) \odot \frac{\partial L}{\partial c}.

**Cross-entropy** on the logits :math:`\beta z` (softmax over classes):

.. math::

    L = -\frac1N\sum_n \log \operatorname{softmax}(\beta z_n)_{y_n}, \qquad
    \frac{\partial L}{\partial z} = \frac{\beta}{N}\big(\operatorname{softmax}(\beta z) - T\big)

with :math:`T` the one-hot targets.  For both losses

.. math::

    \frac{\partial L}{\partial V} = \Big(\frac{\partial L}{\partial z}\Big)^{\!\top} h, \qquad
    \frac{\partial L}{\partial b} = \sum_n \frac{\partial L}{\partial z_n}.

The paper writes the readout without a bias, :math:`c = \tanh(\beta S h)`; the
bias here starts at zero and is trained like :math:`V`.  The paper uses
:math:`n = 4.5`, :math:`m = 6` on MNIST.  :class:`~bionp.hebbian.BioClassifier`
(:mod:`bionp.hebbian.classifier`) trains this readout on frozen Hebbian features.
"""

from __future__ import annotations

from bionp.backend import get_array_module
from bionp.hebbian.krotov_hopfield import _check_number

__all__ = ["READOUT_LOSSES", "power_loss", "power_loss_grad", "readout_forward",
           "readout_gradients"]

READOUT_LOSSES = ("power", "cross_entropy")


def _check_m(m):
    _check_number("m", m, low=1, hint=" (the power loss sum |c - t|^m needs m >= 1; the paper "
                                       "uses m = 6)")
    return float(m)


def _check_loss_name(loss):
    if loss not in READOUT_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {', '.join(READOUT_LOSSES)}")
    return loss


def readout_forward(h, V, c_bias, beta: float):
    r"""Readout outputs :math:`c = \tanh(\beta\,(h V^\top + b))`, shape ``(N, n_classes)``.

    Parameters
    ----------
    h : array (N, n_hidden)
        Hidden features.
    V : array (n_classes, n_hidden)
    c_bias : array (n_classes,)
        :math:`b`.
    beta : float
        :math:`\beta`.
    """
    z = h @ V.T
    z += c_bias
    z *= z.dtype.type(beta)
    return get_array_module(z).tanh(z, out=z)


def power_loss(c, t, m: float = 6.0):
    r"""The paper's loss :math:`L = \frac1N\sum_n\sum_\alpha |c_{n\alpha} - t_{n\alpha}|^m` (0-d).

    Parameters
    ----------
    c : array (N, n_classes)
        Readout outputs.
    t : array (N, n_classes)
        Targets (±1 rows).
    m : float, default 6.0
    """
    m = _check_m(m)
    xp = get_array_module(c, t)
    d = xp.abs(c - t)
    xp.power(d, d.dtype.type(m), out=d)
    return xp.sum(d) / d.dtype.type(c.shape[0])


def power_loss_grad(c, t, m: float = 6.0):
    r""":math:`\partial L/\partial c = \frac{m}{N}|c - t|^{m-1}\operatorname{sign}(c - t)`.

    Parameters
    ----------
    c, t : arrays (N, n_classes)
    m : float, default 6.0
    """
    m = _check_m(m)
    xp = get_array_module(c, t)
    d = c - t
    g = xp.abs(d)
    xp.power(g, g.dtype.type(m - 1), out=g)
    g *= xp.sign(d)
    g *= g.dtype.type(m / c.shape[0])
    return g


def _pm_targets(labels, n_classes, dtype, xp):
    t = xp.full((labels.shape[0], n_classes), -1, dtype=dtype)
    t[xp.arange(labels.shape[0]), labels] = 1
    return t


def readout_gradients(h, V, c_bias, labels, *, beta: float, loss: str = "power", m: float = 6.0):
    r"""Loss and hand-derived gradients of the readout for integer ``labels``.

    Parameters
    ----------
    h : array (N, n_hidden)
        Hidden features.
    V : array (n_classes, n_hidden)
    c_bias : array (n_classes,)
    labels : int array (N,)
    beta : float
        Slope of the readout.
    loss : {"power", "cross_entropy"}
    m : float >= 1
        Exponent of the power loss.

    Returns
    -------
    loss : 0-d array
    grads : dict ``{"W": dL/dV, "b": dL/db}`` (the keys bionp's optimisers expect)
    z : array (N, n_classes)
        The pre-activations :math:`hV^\top + b` (argmax = prediction).

    Notes
    -----
    Power loss: :math:`\delta = \partial L/\partial z = \beta(1 - c^2)\odot
    \frac{m}{N}|c - t|^{m-1}\operatorname{sign}(c - t)` with :math:`t = \pm 1`;
    cross-entropy: :math:`\delta = \frac{\beta}{N}(\operatorname{softmax}(\beta z) - T)`.
    Then :math:`\partial L/\partial V = \delta^\top h`, :math:`\partial L/\partial b =
    \sum_n \delta_n`.
    """
    _check_loss_name(loss)
    xp = get_array_module(h, V, c_bias, labels)
    dt = h.dtype.type
    z = h @ V.T
    z += c_bias
    n_classes = V.shape[0]
    if loss == "power":
        t = _pm_targets(labels, n_classes, h.dtype, xp)
        c = xp.tanh(z * dt(beta))
        value = power_loss(c, t, m)
        delta = power_loss_grad(c, t, m)
        c *= c
        xp.subtract(dt(1), c, out=c)
        delta *= c
        delta *= dt(beta)
    else:
        from bionp.nn.losses import CrossEntropyLoss  # noqa: PLC0415

        ce = CrossEntropyLoss()
        logits = z * dt(beta)
        value = ce(logits, labels)
        delta = ce.grad(logits, labels)
        delta *= dt(beta)
    grads = {"W": delta.T @ h, "b": xp.sum(delta, axis=0)}
    return value, grads, z
