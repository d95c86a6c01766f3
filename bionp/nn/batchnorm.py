r"""Batch normalisation (Ioffe & Szegedy 2015) of features (1d) or image channels (2d).

Statistics are taken per feature over the batch (``BatchNorm1d``, input ``(N, F)``) or
per channel over the batch and both spatial axes (``BatchNorm2d``, NCHW); :math:`M` is
the number of values each statistic averages (:math:`N` or :math:`N H W`).

**Training pass** (:meth:`forward_cache`, what the learning rules call):

.. math::

    \mu = \frac1M\sum x, \quad \sigma^2 = \frac1M\sum (x-\mu)^2, \quad
    \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad
    z = \gamma \hat x + \beta,

and the running statistics move toward the batch's:
:math:`\bar\mu \leftarrow (1-m)\bar\mu + m\mu`,
:math:`\bar\sigma^2 \leftarrow (1-m)\bar\sigma^2 + m\,\frac{M}{M-1}\sigma^2`
(the unbiased variance, as PyTorch).  **Evaluation pass** (:meth:`forward`, what
``net.forward``/``predict`` call): :math:`z = \gamma(x - \bar\mu)/\sqrt{\bar\sigma^2+\epsilon}
+ \beta`, nothing updated.

**Backward** (training pass; :math:`\delta = \partial L/\partial z`, sums over the
:math:`M` values of a feature/channel):

.. math::

    \frac{\partial L}{\partial\gamma} = \sum \delta\,\hat x, \qquad
    \frac{\partial L}{\partial\beta} = \sum \delta, \qquad
    \frac{\partial L}{\partial x} = \frac{\gamma}{M\sqrt{\sigma^2+\epsilon}}
        \Big(M\delta - \sum\delta - \hat x \sum\delta\,\hat x\Big).

The backward pass uses the layer's own :math:`\gamma` (a per-channel scale, not a
weight matrix): rules that replace weight matrices by feedback matrices leave it as is.
Every training pass updates the running statistics, so call :meth:`forward_cache`
once per training step (the rules do).
"""

from __future__ import annotations

import numbers

from bionp.backend import check_same_backend, get_array_module, get_xp, is_array, resolve_dtype
from bionp.nn._spatial import shape_tuple
from bionp.validation import check_float_dtype, check_real, check_state_shapes

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm:
    """Shared code; subclasses fix the input rank and the reduction axes."""

    dense_like = False
    #: its backward pass uses its own per-channel scale, never a feedback matrix
    feedback_free = True
    #: its training pass updates running statistics (perturbation rules refuse it)
    stateful_training = True
    _ndim = 2
    _axes = (0,)
    _layout = "(batch, features)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, dtype=None):
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) \
                or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        check_real("eps", eps, low=0, low_open=True)
        check_real("momentum", momentum, low=0, high=1)
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self.dtype = resolve_dtype(dtype)
        xp = get_xp()
        self.gamma = xp.ones(self.num_features, dtype=self.dtype) if affine else None
        self.beta = xp.zeros(self.num_features, dtype=self.dtype) if affine else None
        self.running_mean = xp.zeros(self.num_features, dtype=self.dtype)
        self.running_var = xp.ones(self.num_features, dtype=self.dtype)
        self.input_shape = None
        self.output_shape = None

    # -- protocol ----------------------------------------------------------------------
    def params(self) -> dict:
        """``{"gamma": γ, "beta": β}`` (empty with ``affine=False``)."""
        return {"gamma": self.gamma, "beta": self.beta} if self.affine else {}

    @property
    def n_params(self) -> int:
        return 2 * self.num_features if self.affine else 0

    @property
    def in_features(self):
        if self.input_shape is None:
            return self.num_features if self._ndim == 2 else None
        out = 1
        for s in self.input_shape:
            out *= s
        return out

    @property
    def out_features(self):
        return self.in_features

    def output_shape_for(self, input_shape) -> tuple:
        shape = shape_tuple(input_shape)
        if len(shape) != self._ndim - 1 or shape[0] != self.num_features:
            raise ValueError(f"{self!r} takes inputs of shape {self._per_sample()}, got "
                             f"inputs of shape {shape}")
        return shape

    def build(self, input_shape) -> tuple:
        out = self.output_shape_for(input_shape)
        self.input_shape = self.output_shape = out
        return out

    def _expected(self) -> str:
        n = str(self.num_features)
        return self._layout.replace("channels", n).replace("features", n)

    def _per_sample(self) -> str:
        return self._expected().replace("batch, ", "")

    def _check_x(self, x):
        if hasattr(x, "dtype"):
            check_float_dtype(x, "x")
        if getattr(x, "ndim", None) != self._ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects inputs of shape {self._expected()}, got "
                             f"{tuple(getattr(x, 'shape', ()))}")

    def _count(self, x) -> int:
        m = 1
        for a in self._axes:
            m *= int(x.shape[a])
        return m

    def _bcast(self, v):
        """A per-feature vector shaped to broadcast against the input."""
        return v.reshape((1, -1) + (1,) * (self._ndim - 2))

    def _affine(self, params):
        g, b = self.gamma, self.beta
        if params is not None:
            g, b = params.get("gamma", g), params.get("beta", b)
        return g, b

    # -- passes ------------------------------------------------------------------------
    def forward(self, x, params=None):
        r"""Evaluation pass with the running statistics (nothing updated)."""
        self._check_x(x)
        xp = check_same_backend(x, self.running_mean, names=("x", "running_mean"))
        scale = 1.0 / xp.sqrt(self.running_var + self.running_var.dtype.type(self.eps))
        g, b = self._affine(params)
        shift = -self.running_mean * scale
        if g is not None:
            scale = scale * g
            shift = shift * g + b
        z = x * self._bcast(scale)
        z += self._bcast(shift)
        return z

    __call__ = forward

    def _batch_stats(self, x):
        xp = get_array_module(x)
        m = self._count(x)
        mu = xp.mean(x, axis=self._axes, keepdims=True)
        xc = x - mu
        var = xp.mean(xc * xc, axis=self._axes, keepdims=True)
        inv = 1.0 / xp.sqrt(var + var.dtype.type(self.eps))
        xc *= inv  # now x_hat
        return m, mu, var, inv, xc

    def forward_cache(self, x, params=None):
        r"""Training pass with the batch statistics; updates the running statistics.
        Returns ``(z, (x_hat, inv_std))``."""
        self._check_x(x)
        check_same_backend(x, self.running_mean, names=("x", "running_mean"))
        if self._count(x) < 2:
            raise ValueError(f"{self!r} in training needs more than one value per feature to "
                             f"take batch statistics, got an input of shape {tuple(x.shape)}")
        m, mu, var, inv, x_hat = self._batch_stats(x)
        mom = self.momentum
        self.running_mean *= self.running_mean.dtype.type(1.0 - mom)
        self.running_mean += mu.reshape(-1) * mu.dtype.type(mom)
        self.running_var *= self.running_var.dtype.type(1.0 - mom)
        self.running_var += var.reshape(-1) * var.dtype.type(mom * m / (m - 1))
        g, b = self._affine(params)
        if g is None:
            z = x_hat.copy()
        else:
            z = x_hat * self._bcast(g)
            z += self._bcast(b)
        return z, (x_hat, inv)

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        """Gradients of ``gamma``/``beta`` and :math:`\\partial L/\\partial x` (module
        docstring)."""
        if feedback is not None:
            raise ValueError(f"{self!r} sends the error back through its own per-channel "
                             "scale; its feedback must be None")
        self._check_x(x)
        if getattr(delta, "shape", None) is None or tuple(delta.shape) != tuple(x.shape):
            raise ValueError(f"delta must have shape {tuple(x.shape)}, got "
                             f"{tuple(getattr(delta, 'shape', ()))}")
        xp = check_same_backend(x, delta, names=("x", "delta"))
        if cache is None:
            _, _, _, inv, x_hat = self._batch_stats(x)
        else:
            x_hat, inv = cache
        m = self._count(x)
        dbeta = xp.sum(delta, axis=self._axes)
        dgamma = xp.sum(delta * x_hat, axis=self._axes)
        grads = {"gamma": dgamma, "beta": dbeta} if self.affine else {}
        if not need_input_grad:
            return grads, None
        dx = delta * delta.dtype.type(m)
        dx -= self._bcast(dbeta)
        dx -= x_hat * self._bcast(dgamma)
        coef = inv.reshape(-1) * inv.dtype.type(1.0 / m)
        if self.affine:
            coef = coef * self.gamma
        dx *= self._bcast(coef)
        return grads, dx

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Parameters and running statistics (the arrays themselves)."""
        out = dict(self.params())
        out.update(running_mean=self.running_mean, running_var=self.running_var)
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy a :meth:`state_dict` in place (shapes checked before anything is written)."""
        own = self.state_dict()
        check_state_shapes(self, own, state)
        for k, v in own.items():
            xp = get_array_module(v)
            v[...] = xp.asarray(state[k], dtype=v.dtype) if is_array(state[k]) else state[k]

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_features})"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features, input ``(N, F)`` (module docstring).

    Parameters
    ----------
    num_features : int
    eps : float, default 1e-5
    momentum : float, default 0.1
        Weight of the batch's statistics in the running ones.
    affine : bool, default True
        Learn ``gamma`` (ones) and ``beta`` (zeros).
    dtype : float dtype, default ``bionp.get_dtype()``
    """

    _ndim = 2
    _axes = (0,)
    _layout = "(batch, features)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of image channels, input ``(N, C, H, W)`` (module docstring).

    Parameters
    ----------
    num_features : int
        Channels :math:`C`.
    eps, momentum, affine, dtype : as for :class:`BatchNorm1d`
    """

    _ndim = 4
    _axes = (0, 2, 3)
    _layout = "(batch, channels, height, width)"

    def output_shape_for(self, input_shape) -> tuple:
        shape = shape_tuple(input_shape)
        if len(shape) != 3 or shape[0] != self.num_features:
            raise ValueError(f"{self!r} takes images of shape ({self.num_features}, height, "
                             f"width), got inputs of shape {shape}")
        return shape
