r"""Elementwise activation functions and their derivatives.

Each activation :math:`a = f(z)` provides

* ``forward(z)`` (also ``__call__``): :math:`f(z)`;
* ``derivative(z, a)``: :math:`f'(z)` elementwise, computed from ``a`` where
  that is cheaper (sigmoid :math:`a(1-a)`, tanh :math:`1-a^2`);
* ``vjp(z, a, grad_a)``: :math:`\partial L/\partial z` given
  :math:`\partial L/\partial a`; for elementwise functions this is
  ``grad_a * derivative(z, a)``.

Softmax is the one non-elementwise activation: its Jacobian is
:math:`\operatorname{diag}(a) - a a^\top` per sample, so ``vjp`` returns
:math:`a \odot (g - \langle g, a\rangle)` and ``derivative`` raises.  Use it
as an output activation only; with :class:`~bionp.nn.losses.CrossEntropyLoss`
the rules use the fused gradient :math:`(p - t)/N` on the logits
(see :func:`bionp.nn.losses.output_delta`).
"""

from __future__ import annotations

import numpy as np

from bionp import backend_conv, backend_dense
from bionp.backend import get_array_module

__all__ = [
    "Activation", "Sigmoid", "ReLU", "LeakyReLU", "Tanh", "Identity", "Softmax",
    "get_activation", "ACTIVATIONS",
]


class Activation:
    """Base class: an elementwise function ``f`` with its derivative."""

    name = "activation"
    elementwise = True

    def __call__(self, z, out=None):
        return self.forward(z, out=out)

    def forward(self, z, out=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, z, a):  # pragma: no cover - abstract
        """:math:`f'(z)` elementwise (``a = f(z)`` is given to avoid recomputing it)."""
        raise NotImplementedError

    def vjp(self, z, a, grad_a):
        r""":math:`\partial L/\partial z` from :math:`\partial L/\partial a` (a new array)."""
        d = self.derivative(z, a)
        d *= grad_a
        return d

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({params})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


class Sigmoid(Activation):
    r"""Logistic sigmoid :math:`f(z) = 1/(1+e^{-z})`; :math:`f'(z) = a(1-a)`.

    Four in-place passes (negate, exp, add one, reciprocal), which a compiled kernel of
    :mod:`bionp.backend_dense` fuses where it has one, with the same numbers: all four in
    float32 (NumPy's float32 exponential reproduced, :mod:`bionp._exp32`), the last two
    otherwise.  For very negative :math:`z` the exponential overflows to ``inf`` and the
    result is exactly 0 (the overflow is expected and not reported); no input warns.
    ``vjp`` is :math:`((1 - a)\,a)\,g` (one compiled pass where available).
    """

    name = "sigmoid"

    def forward(self, z, out=None):
        xp = get_array_module(z)
        fast = backend_dense.sigmoid(xp, z, out)  # float32: one compiled pass, same bits
        if fast is not None:
            return fast
        out = xp.negative(z, out=xp.empty_like(z) if out is None else out)  # 0-d: an array
        with np.errstate(over="ignore"):  # e^{-z} = inf gives exactly 1/(1+inf) = 0
            xp.exp(out, out=out)
        if not backend_dense.sigmoid_tail(xp, out):
            out += 1
            xp.reciprocal(out, out=out)
        return out

    def derivative(self, z, a):
        d = 1 - a
        d *= a
        return d

    def vjp(self, z, a, grad_a):
        fast = backend_dense.sigmoid_vjp(get_array_module(a, grad_a), a, grad_a)
        if fast is not None:
            return fast
        if type(self).derivative is not Sigmoid.derivative:  # a subclass's own f'
            return super().vjp(z, a, grad_a)
        d = 1 - a  # Activation.vjp with derivative() inline: the same operations
        d *= a
        d *= grad_a
        return d



class Tanh(Activation):
    r"""Hyperbolic tangent; :math:`f'(z) = 1 - a^2`."""

    name = "tanh"

    def forward(self, z, out=None):
        xp = get_array_module(z)
        return xp.tanh(z, out=out)

    def derivative(self, z, a):
        d = a * a
        xp = get_array_module(a)
        xp.subtract(1, d, out=d)
        return d


class ReLU(Activation):
    r"""Rectifier :math:`\max(z, 0)`; :math:`f'(z) = [z > 0]` (0 at 0)."""

    name = "relu"

    def forward(self, z, out=None):
        xp = get_array_module(z)
        return xp.maximum(z, z.dtype.type(0), out=out)

    def derivative(self, z, a):
        return (z > 0).astype(z.dtype)

    def vjp(self, z, a, grad_a):
        xp = get_array_module(z, grad_a)
        fast = backend_conv.relu_vjp(xp, z, grad_a)  # compiled, same numbers (NumPy, strict)
        if fast is not None:
            return fast
        return xp.where(z > 0, grad_a, grad_a.dtype.type(0))


class LeakyReLU(Activation):
    r"""Leaky rectifier :math:`z` for :math:`z>0`, :math:`\alpha z` otherwise.

    Parameters
    ----------
    negative_slope : float, default 0.01
        :math:`\alpha`.
    """

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = float(negative_slope)

    def forward(self, z, out=None):
        xp = get_array_module(z)
        neg = z * z.dtype.type(self.negative_slope)
        return xp.where(z > 0, z, neg) if out is None else _assign(xp, out, xp.where(z > 0, z, neg))

    def derivative(self, z, a):
        xp = get_array_module(z)
        return xp.where(z > 0, z.dtype.type(1), z.dtype.type(self.negative_slope))

    def get_config(self) -> dict:
        return {"name": self.name, "negative_slope": self.negative_slope}


class Identity(Activation):
    """Identity (``"identity"`` or ``"linear"``); :math:`f'(z) = 1`."""

    name = "identity"

    def forward(self, z, out=None):
        if out is None:
            return z
        out[...] = z
        return out

    def derivative(self, z, a):
        xp = get_array_module(z)
        return xp.ones_like(z)

    def vjp(self, z, a, grad_a):
        return grad_a


class Softmax(Activation):
    r"""Softmax over the last axis, :math:`a_k = e^{z_k} / \sum_j e^{z_j}` (max-shifted).

    Output layers only.  ``vjp`` applies the full Jacobian,
    :math:`\partial L/\partial z = a \odot (g - \sum_k g_k a_k)`;
    ``derivative`` raises because the Jacobian is not diagonal.
    """

    name = "softmax"
    elementwise = False

    def forward(self, z, out=None):
        xp = get_array_module(z)
        out = xp.subtract(z, xp.max(z, axis=-1, keepdims=True), out=out)
        xp.exp(out, out=out)
        out /= xp.sum(out, axis=-1, keepdims=True)
        return out

    def derivative(self, z, a):
        raise NotImplementedError(
            "softmax has no elementwise derivative (its Jacobian is diag(a) - a a^T); use "
            "Softmax.vjp(z, a, grad_a), or pair it with CrossEntropyLoss, whose fused "
            "gradient (p - t)/N the rules use automatically"
        )

    def vjp(self, z, a, grad_a):
        xp = get_array_module(a, grad_a)
        s = xp.sum(grad_a * a, axis=-1, keepdims=True)
        g = grad_a - s
        g *= a
        return g


def _assign(xp, out, value):
    out[...] = value
    return out


ACTIVATIONS = {
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "identity": Identity,
    "linear": Identity,
    "softmax": Softmax,
}


def get_activation(name_or_obj) -> Activation:
    """An :class:`Activation` from its name (``"sigmoid"``, ``"relu"``, …) or an instance.

    ``None`` gives the identity.  Raises ``ValueError`` for an unknown name,
    listing the known ones.

    Parameters
    ----------
    name_or_obj : str, Activation or None
    """
    if name_or_obj is None:
        return Identity()
    if isinstance(name_or_obj, Activation):
        return name_or_obj
    if isinstance(name_or_obj, dict):
        cfg = dict(name_or_obj)
        if not isinstance(cfg.get("name"), str):
            raise ValueError(f"an activation given as a dict needs its 'name' "
                             f"({', '.join(sorted(ACTIVATIONS))}), got {name_or_obj!r}")
        name = cfg.pop("name")
        try:
            return _lookup(name)(**cfg)
        except TypeError as exc:
            raise TypeError(f"activation {name_or_obj!r}: {exc}") from None
    if isinstance(name_or_obj, str):
        return _lookup(name_or_obj)()
    raise TypeError(
        f"activation must be a name ({', '.join(sorted(ACTIVATIONS))}) or a "
        f"bionp.nn.Activation, got {type(name_or_obj).__name__} {name_or_obj!r}"
    )


def _lookup(name: str):
    key = name.lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; known activations: {', '.join(sorted(ACTIVATIONS))} "
            "(or pass a bionp.nn.Activation instance)"
        )
    return ACTIVATIONS[key]
