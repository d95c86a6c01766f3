r"""Learnable noise variance: a Dense layer whose weight-noise :math:`\log\sigma^2` is a parameter.

:class:`LearnableNoiseDense` learns :math:`s = \log\sigma^2` (one per layer,
the seed's choice, initialised at :math:`-6`, i.e. :math:`\sigma = e^{-3}
\approx 0.05`; or one per weight, ``per_weight=True``), with

.. math::

    \sigma = \operatorname{clamp}\big(e^{s/2}, \sigma_{\min}, \sigma_{\max}\big)
           = e^{\tilde s/2}, \qquad
    \tilde s = \operatorname{clamp}(s,\ 2\log\sigma_{\min},\ 2\log\sigma_{\max}),

(default bounds ``(1e-6, 0.1)``; the clamp is applied to :math:`s`, which is
the same function and makes the clamp edge an exact number).  Its gradient,
inside the range and 0 outside:

.. math::

    \frac{\partial L}{\partial s} = \tfrac12\,\sigma \sum_{ij} \varepsilon_{ij}\, G_{ij}
    \quad (\text{additive}), \qquad
    \frac{\partial L}{\partial s} = \tfrac12\,\sigma \sum_{ij} W_{ij}\,\varepsilon_{ij}\, G_{ij}
    \quad (\text{multiplicative})

(per weight: the same without the sum).  **At the clamp edge** (:math:`s`
exactly :math:`2\log\sigma_{\min}` or :math:`2\log\sigma_{\max}`) the clamp
has no derivative; bionp returns the one-sided derivative **from inside the
range** (the range is closed), so a variance sitting on a bound can be moved
back in.  The one-sided derivative from outside is 0 (tested both ways).

Optional regulariser (``sigma_reg=λ``): :math:`R = -\lambda\,\overline{\log\sigma}
= -\tfrac{\lambda}{2}\,\overline{\tilde s}` (the mean over the layer's
log-variance entries), the :math:`\sigma`-dependent part of the KL divergence of
a Gaussian weight posterior from a fixed prior.  Training lowers the loss by
lowering :math:`\sigma` (noise hurts the fit); :math:`R` rewards noise and
keeps it from collapsing to :math:`\sigma_{\min}`.  Its gradient
:math:`-\lambda / (2 n_s)` per entry (0 outside the clamp range) is added to
``grads["log_var"]`` by :meth:`~LearnableNoiseDense.backward`; the loss a rule
reports does not include :math:`R` (:meth:`~LearnableNoiseDense.regularization`
gives its value).

**Per-weight gradient array**: on NumPy, ``grads["log_var"]`` of a backward pass (from
:data:`bionp.backend_dense.REUSE_MIN_BYTES` up) is
written into the array of the layer's previous backward pass when nobody else holds that
array (nor a view of it) any more (:func:`bionp.backend_dense.reusable`): a training loop
that drops its gradients after the optimiser's step allocates no new weight-sized array
per step; gradients a caller keeps are never overwritten.

The maths is in :mod:`bionp.nn.noisy.functional` (:func:`sigma_from_log_var`,
:func:`log_var_grad`, :func:`log_var_regularization`); the noise itself, the
buffers and the backward pass are :class:`~bionp.nn.noisy.NoisyDense`'s.  Train
it without weight decay (see :mod:`bionp.nn.noisy`, "Learning rules").
"""

from __future__ import annotations

import math
import numbers

from bionp import backend_dense
from bionp.backend import get_array_module
from bionp.nn.noisy.functional import (
    check_sigma,
    check_sigma_bounds,
    inside_clamp,
    log_var_grad,
    log_var_regularization,
    sigma_from_log_var,
)
from bionp.nn.noisy.weights import NoisyDense

__all__ = ["LearnableNoiseDense"]


class LearnableNoiseDense(NoisyDense):
    """Dense layer whose weight-noise variance is learned: parameter ``"log_var"`` = log σ².

    Parameters
    ----------
    in_features, out_features : int
    log_var_init : float, default -6.0
        Initial :math:`\\log\\sigma^2` (the seed's; σ = e^{-3} ≈ 0.0498).
    per_weight : bool, default False
        One log-variance per weight (shape of ``W``) instead of one per layer (shape ``(1,)``).
    sigma_bounds : (float, float), default (1e-6, 0.1)
        Clamp of σ (module docstring); ``0 < min < max``.
    sigma_reg : float >= 0, default 0
        Weight λ of the regulariser :math:`R = -\\lambda\\,\\overline{\\log\\sigma}`.
    mode, eval_noise, rng, noise_rng, **dense_kwargs : see :class:`NoisyDense`
        ``eval_noise=True`` evaluates with the learned σ.

    Attributes
    ----------
    log_var : array ``(1,)`` or ``(out_features, in_features)``
    """

    def __init__(self, in_features: int, out_features: int, log_var_init: float = -6.0,
                 per_weight: bool = False, sigma_bounds=(1e-6, 0.1), sigma_reg: float = 0.0,
                 mode: str = "additive", eval_noise=None, rng=None, noise_rng=None,
                 **dense_kwargs):
        if isinstance(log_var_init, bool) or not isinstance(log_var_init, numbers.Real) \
                or not math.isfinite(log_var_init):
            raise ValueError(f"log_var_init must be a finite number (log σ²), got {log_var_init!r}")
        self.sigma_bounds = check_sigma_bounds(sigma_bounds)
        self.sigma_reg = check_sigma(sigma_reg, "sigma_reg")
        self.per_weight = bool(per_weight)
        self.log_var_init = float(log_var_init)
        super().__init__(in_features, out_features, sigma=0.0, mode=mode, eval_noise=eval_noise,
                         rng=rng, noise_rng=noise_rng, **dense_kwargs)
        W = self.layer.W
        xp = get_array_module(W)
        shape = tuple(W.shape) if self.per_weight else (1,)
        self.log_var = xp.full(shape, self.log_var_init, dtype=W.dtype)
        lo, hi = self.sigma_bounds
        self._s_lo = 2.0 * math.log(lo)
        self._s_hi = 2.0 * math.log(hi)
        self._sigma_buf = None
        self._grad_buf = None  # the last per-weight log-variance gradient (backend_dense.reusable)

    def params(self) -> dict:
        p = dict(self.layer.params())
        p["log_var"] = self.log_var
        return p

    def _inner_params(self, p, W_eff):
        inner = {k: v for k, v in p.items() if k != "log_var"}
        inner["W"] = W_eff
        return inner

    # -- σ ----------------------------------------------------------------------------------
    @property
    def sigma(self):
        """Current σ = clamp(exp(½ log σ²)) as an array (``(1,)`` or the shape of ``W``)."""
        return self._sigma_of(self.log_var)

    @sigma.setter
    def sigma(self, value) -> None:
        raise AttributeError("the σ of a LearnableNoiseDense is derived from its parameter "
                             "log_var; set layer.log_var[...] = 2 * log(σ) instead")

    def _sigma_of(self, s, out=None):
        return sigma_from_log_var(s, self._s_lo, self._s_hi, out=out)

    def _current_sigma(self, params, training: bool = False):
        s = params["log_var"]
        if s.shape != self.log_var.shape:
            raise ValueError(f"log_var must have shape {tuple(self.log_var.shape)}, "
                             f"got {tuple(s.shape)}")
        if self.per_weight and training:
            return self._sigma_of(s, out=self._buffer("_sigma_buf", s))
        return self._sigma_of(s)

    def _inside(self, s):
        """True where the clamp is inactive (the closed range), False outside."""
        return inside_clamp(s, self._s_lo, self._s_hi)

    def sigma_values(self) -> list:
        """σ as plain floats (one per layer, or per weight flattened) — for logging."""
        from bionp.backend import asnumpy

        return [float(v) for v in asnumpy(self.sigma).reshape(-1)]

    def regularization(self, params=None):
        """Value of :math:`R = -\\tfrac{\\lambda}{2}\\,\\overline{\\tilde s}` (0-d array)."""
        s = self._merged(params)["log_var"]
        return log_var_regularization(s, self.sigma_reg, self._s_lo, self._s_hi)

    # -- gradients ----------------------------------------------------------------------------
    def _extra_grads(self, grads, G, cache) -> None:
        scratch = None  # ε ⊙ G of the per-layer multiplicative case
        if not self.per_weight and self.mode == "multiplicative":
            scratch = self._buffer("_tmp_buf", G)
        # per weight: the previous step's gradient array again, where nobody holds it any more
        out = backend_dense.reusable(self._grad_buf, G) if self.per_weight else None
        g = log_var_grad(G, cache.eps, cache.sigma, cache.log_var, self._s_lo, self._s_hi,
                         mode=self.mode, per_weight=self.per_weight, W=cache.W,
                         sigma_reg=self.sigma_reg, scratch=scratch, out=out)
        self._grad_buf = backend_dense.keepable(g) if self.per_weight else None
        grads["log_var"] = g

    def get_config(self) -> dict:
        cfg = self.layer.get_config()
        cfg.update(log_var_init=self.log_var_init, per_weight=self.per_weight,
                   sigma_bounds=list(self.sigma_bounds), sigma_reg=self.sigma_reg, mode=self.mode,
                   eval_noise=self._eval_noise)
        return cfg

    def __repr__(self) -> str:
        kind = "per weight" if self.per_weight else "per layer"
        return (f"LearnableNoiseDense({self.in_features}, {self.out_features}, {kind}, "
                f"mode={self.mode!r}, sigma_bounds={self.sigma_bounds})")
