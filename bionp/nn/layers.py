r"""Fully connected layer.

.. math::

    z = x W^\top + b, \qquad x \in \mathbb R^{N\times n_{in}},\;
    W \in \mathbb R^{n_{out}\times n_{in}},\; b \in \mathbb R^{n_{out}}

Given :math:`\delta = \partial L/\partial z` (shape ``(N, n_out)``, already
carrying the batch-mean factor :math:`1/N`), the backward pass gives

.. math::

    \frac{\partial L}{\partial W} = \delta^\top x, \qquad
    \frac{\partial L}{\partial b} = \sum_n \delta_n, \qquad
    \frac{\partial L}{\partial x} = \delta W .

Rules that do not transport weights (feedback alignment, Kolen–Pollack) call
:meth:`Dense.backward` with ``feedback=B`` in place of ``W``.
"""

from __future__ import annotations

import numbers

from bionp import backend_dense
from bionp.backend import check_same_backend, get_xp, resolve_dtype
from bionp.nn.init import initialize
from bionp.nn.protocol import WeightAndBias
from bionp.random import check_rng
from bionp.validation import check_float_dtype, check_real

__all__ = ["Dense"]


class Dense(WeightAndBias):
    """Fully connected layer ``z = x @ W.T + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    init : str or callable, default ``"normal"``
        Initialiser of ``W`` (see :mod:`bionp.nn.init`).
    init_scale : float, default 0.1
        Standard deviation (``normal``) or half-width (``uniform``) of ``W``;
        ignored by Xavier/He.
    bias_init : {"zeros", "normal", "uniform"}, default ``"zeros"``
        ``"normal"`` draws the bias like ``W`` (the Microlearning tutorial folds
        the bias into its weight matrix, so its biases start at
        :math:`\\mathcal N(0, 0.1^2)`).
    rng : int, Generator or None
    dtype : float dtype, default ``bionp.get_dtype()``

    Attributes
    ----------
    W : array (out_features, in_features)
    b : array (out_features,) or None
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init="normal",
                 init_scale: float = 0.1, rng=None, dtype=None, bias_init: str = "zeros"):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        init_scale = check_real("init_scale", init_scale, low=0)
        if bias and bias_init not in ("zeros", "normal", "uniform"):  # before any draw
            raise ValueError(
                f"bias_init must be 'zeros', 'normal' or 'uniform', got {bias_init!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        self.init_scale = float(init_scale)
        self.bias_init = bias_init
        self.dtype = resolve_dtype(dtype)
        rng = check_rng(rng)
        self.W = initialize(init, (self.out_features, self.in_features), self.init_scale, rng,
                            self.dtype)
        if bias:
            if bias_init == "zeros":
                self.b = get_xp().zeros(self.out_features, dtype=self.dtype)
            elif bias_init in ("normal", "uniform"):
                self.b = initialize(bias_init, (self.out_features,), self.init_scale, rng,
                                    self.dtype)
            else:
                raise ValueError(
                    f"bias_init must be 'zeros', 'normal' or 'uniform', got {bias_init!r}")
        else:
            self.b = None

    def _check_x(self, x):
        try:  # the common case in one test; anything else takes the checks that name it
            if x.dtype.kind == "f" and x.ndim == 2 and x.shape[1] == self.in_features:
                return
        except AttributeError:
            pass
        check_float_dtype(x, "x")
        if getattr(x, "ndim", None) != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) expects input of shape "
                f"(batch, {self.in_features}), got {tuple(getattr(x, 'shape', ()))}"
            )

    #: computes ``x @ W.T + b`` from exactly ``W``/``b`` (see ``bionp.nn.network.is_dense_like``)
    dense_like = True
    _grad_W = None  # the last weight gradient (backend_dense.reusable)

    def forward(self, x, W=None, b=None, params=None):
        """``x @ W.T + b``.  ``W``/``b`` (or ``params={"W": …, "b": …}``) override the layer's
        own arrays, e.g. perturbed copies."""
        self._check_x(x)
        if params is not None:
            W = params.get("W", W)
            b = params.get("b", b)
        W = self.W if W is None else W
        b = self.b if b is None else b
        xp = check_same_backend(x, W, names=("x", "W"))
        z = xp.matmul(x, W.T)
        if b is not None:
            z += b
        return z

    __call__ = forward

    def forward_cache(self, x, params=None):
        """Training forward pass: ``(z, None)`` (the backward pass needs only ``x``)."""
        return self.forward(x, params=params), None

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        r"""Gradients of the layer and :math:`\delta` for its input.

        Parameters
        ----------
        x : (N, in_features) the layer's input from the forward pass
        delta : (N, out_features) :math:`\partial L/\partial z`
        feedback : (out_features, in_features), optional
            Matrix used in place of ``W`` to send ``delta`` back (FA/KP).
        need_input_grad : bool
            Skip the input delta (first layer).
        cache : ignored
            What :meth:`forward_cache` returned (nothing: the layer protocol's argument).

        Returns
        -------
        grads : dict ``{"W": delta.T @ x, "b": delta.sum(0)}``
        delta_in : (N, in_features) ``delta @ W`` (or ``delta @ feedback``), or None
        """
        self._check_x(x)
        if getattr(delta, "ndim", None) != 2 or delta.shape != (x.shape[0], self.out_features):
            raise ValueError(
                f"delta must have shape ({x.shape[0]}, {self.out_features}), got "
                f"{tuple(getattr(delta, 'shape', ()))}"
            )
        xp = check_same_backend(x, delta, names=("x", "delta"))
        # the last step's weight gradient, written again when nobody holds it any more
        out = backend_dense.reusable(self._grad_W, (self.W.shape, x.dtype), xp) \
            if delta.dtype == x.dtype else None
        gW = xp.matmul(delta.T, x, out=out)
        self._grad_W = backend_dense.keepable(gW)
        grads = {"W": gW}
        if self.b is not None:
            fast = backend_dense.column_sum(xp, delta)  # compiled, same numbers (NumPy)
            grads["b"] = fast if fast is not None else backend_dense.sum_axis(xp, delta, 0)
        delta_in = None
        if need_input_grad:
            M = self.W if feedback is None else feedback
            if M is not self.W and tuple(M.shape) != tuple(self.W.shape):
                raise ValueError(f"feedback matrix must have shape {tuple(self.W.shape)}, "
                                 f"got {tuple(M.shape)}")
            delta_in = xp.matmul(delta, M)
        return grads, delta_in

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.has_bias,
                "init": self.init if isinstance(self.init, str) else "custom",
                "init_scale": self.init_scale, "bias_init": self.bias_init,
                "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, bias={self.has_bias})"
