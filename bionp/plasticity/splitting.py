r"""Weight splitting: each output carried by :math:`\Gamma` sub-units (multi-synaptic connections).

A layer with :math:`n_{out}` outputs is read as :math:`n_{out}/\Gamma` groups of
:math:`\Gamma` consecutive sub-units :math:`G_k = \{k\Gamma, \dots, k\Gamma + \Gamma - 1\}`.
Each sub-unit has its own weights (a row of :math:`W`) and an activation
:math:`\varphi` (the seed's ``weight_splitting_activation_function``, identity by
default); every output of a group reports the group's sum:

.. math::

    z = x W^\top + b, \qquad
    y_i = \sum_{j \in G(i)} \varphi(z_j), \qquad G(i) = G_{\lfloor i/\Gamma\rfloor},

so the layer keeps its shape (``(N, n_out)``) while the units of one group
carry the same signal, computed by :math:`\Gamma` independently learning sets
of synapses.  The network's own activation is applied to :math:`y` after the
layer, as before the conversion.  :math:`\Gamma = 1` is the plain layer with
:math:`\varphi` applied.

Backward pass, with :math:`\delta = \partial L/\partial y` (batch mean inside):

.. math::

    \frac{\partial L}{\partial z_j} = \varphi'(z_j) \sum_{i \in G(j)} \delta_i, \qquad
    \frac{\partial L}{\partial W} = \Big(\frac{\partial L}{\partial z}\Big)^{\!\top} x, \quad
    \frac{\partial L}{\partial b} = \sum_n \frac{\partial L}{\partial z_n}, \quad
    \frac{\partial L}{\partial x} = \frac{\partial L}{\partial z}\, W

(``feedback=B`` replaces :math:`W` in the last product for feedback alignment).

:func:`split_weights` converts a network in place: its Dense layers (all but the
output layer by default: splitting the output layer would make groups of class
scores equal) become :class:`WeightSplitting` layers that share the Dense
layers' arrays, so optimisers built before the conversion keep working.
"""

from __future__ import annotations

import numbers

from bionp.backend import get_array_module
from bionp.nn.activations import get_activation

__all__ = ["WeightSplitting", "split_weights", "check_gamma"]


def check_gamma(gamma, out_features: int | None = None) -> int:
    """``gamma`` as int; ``ValueError`` unless a non-negative int dividing ``out_features``.

    Parameters
    ----------
    gamma : int
        :math:`\\Gamma`.
    out_features : int or None
        The layer's width, which :math:`\\Gamma` must divide.
    """
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Integral) or gamma < 0:
        raise ValueError(f"weight_splitting_Gamma must be a non-negative int, got {gamma!r}")
    gamma = int(gamma)
    if out_features is not None and gamma > 0 and out_features % gamma:
        raise ValueError(f"weight_splitting_Gamma={gamma} does not divide the layer's "
                         f"{out_features} outputs; choose a divisor of {out_features} or skip "
                         "this layer (layers=...)")
    return gamma


def _group_sum(a, gamma):
    """``y_i = sum_{j in G(i)} a_j`` for ``a`` of shape (N, out): a new array."""
    xp = get_array_module(a)
    n, out = a.shape
    s = a.reshape(n, out // gamma, gamma).sum(axis=2)
    return xp.repeat(s, gamma, axis=1)


class WeightSplitting:
    """A dense layer whose outputs are sums over groups of :math:`\\Gamma` sub-units.

    Parameters
    ----------
    dense : bionp.nn.Dense
        Provides (and keeps owning) ``W`` (out, in) and ``b``.
    gamma : int >= 1, dividing ``dense.out_features``
    activation : str or Activation, default ``"identity"``
        :math:`\\varphi`, applied to every sub-unit before the group sum (elementwise).

    Follows bionp's layer protocol: ``params()``, ``forward``, ``forward_cache``,
    ``backward``, ``get_config``.
    """

    def __init__(self, dense, gamma: int, activation="identity"):
        if not hasattr(dense, "W") or getattr(dense.W, "ndim", 0) != 2:
            raise TypeError(f"weight splitting needs a layer with a weight matrix W (out, in), "
                            f"got {type(dense).__name__}")
        gamma = check_gamma(gamma, dense.out_features)
        if gamma < 1:
            raise ValueError("WeightSplitting needs gamma >= 1 (gamma = 0 means: no splitting)")
        self.dense = dense
        self.gamma = gamma
        self.activation = get_activation(activation)
        if not self.activation.elementwise:
            raise ValueError("the sub-unit activation must be elementwise, got "
                             f"{self.activation.name}")

    # -- shape / parameters -------------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.dense.in_features

    @property
    def out_features(self) -> int:
        return self.dense.out_features

    @property
    def dtype(self):
        return self.dense.dtype

    @property
    def W(self):
        return self.dense.W

    @property
    def b(self):
        return self.dense.b

    @property
    def has_bias(self) -> bool:
        return self.dense.b is not None

    def params(self) -> dict:
        return self.dense.params()

    @property
    def n_params(self) -> int:
        return self.dense.n_params

    # -- forward / backward ---------------------------------------------------------------
    def _pre(self, x, params):
        return self.dense.forward(x, params=params)

    def forward(self, x, params=None):
        """:math:`y = \\mathrm{groupsum}(\\varphi(xW^\\top + b))`, shape (N, out)."""
        z = self._pre(x, params)
        a = self.activation.forward(z)
        return _group_sum(a, self.gamma)

    __call__ = forward

    def forward_cache(self, x, params=None):
        """``(y, cache)`` with ``cache = (z, phi(z))`` for :meth:`backward`."""
        z = self._pre(x, params)
        a = self.activation.forward(z)
        return _group_sum(a, self.gamma), (z, a)

    def backward(self, x, delta, cache=None, feedback=None, need_input_grad=True):
        """``(grads, delta_in)`` (see the module docstring)."""
        if cache is None:
            _, cache = self.forward_cache(x)
        z, a = cache
        if getattr(delta, "ndim", None) != 2 or delta.shape != (x.shape[0], self.out_features):
            raise ValueError(f"delta must have shape ({x.shape[0]}, {self.out_features}), got "
                             f"{tuple(getattr(delta, 'shape', ()))}")
        dz = self.activation.vjp(z, a, _group_sum(delta, self.gamma))
        return self.dense.backward(x, dz, feedback=feedback, need_input_grad=need_input_grad)

    def get_config(self) -> dict:
        return {"type": "WeightSplitting", "gamma": self.gamma,
                "activation": self.activation.get_config(), "dense": self.dense.get_config()}

    def __repr__(self) -> str:
        return (f"WeightSplitting({self.in_features}, {self.out_features}, gamma={self.gamma}, "
                f"activation={self.activation.name})")


def split_weights(net, gamma: int, activation="identity", layers=None):
    """Replace ``net``'s layers by :class:`WeightSplitting` wrappers in place; returns ``net``.

    Parameters
    ----------
    net : bionp network (``net.layers``)
    gamma : int; 0 or 1 with identity leave the network unchanged
    activation : sub-unit activation :math:`\\varphi`
    layers : indices to convert (default: every layer but the last)
    """
    gamma = check_gamma(gamma)
    if gamma == 0:
        return net
    n = len(net.layers)
    idx = list(range(n - 1)) if layers is None else [int(i) for i in layers]
    for i in idx:
        if not 0 <= i < n:
            raise ValueError(f"layer index {i} out of range for a network of {n} layers")
        layer = net.layers[i]
        if isinstance(layer, WeightSplitting):
            raise ValueError(f"layer {i} is already split (gamma={layer.gamma})")
        check_gamma(gamma, layer.out_features)
    for i in idx:
        net.layers[i] = WeightSplitting(net.layers[i], gamma, activation)
    return net
