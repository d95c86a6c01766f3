r"""Noisy weights: fresh Gaussian weight noise at every training step, and learnable noise.

A noisy layer computes its output with perturbed weights

.. math::

    W_{\mathrm{eff}} = W + \sigma\,\varepsilon \quad (\text{additive}), \qquad
    W_{\mathrm{eff}} = W \odot (1 + \sigma\,\varepsilon) \quad (\text{multiplicative}),
    \qquad \varepsilon_{ij} \sim \mathcal N(0, 1),

with one draw :math:`\varepsilon` (shape of ``W``) per training forward pass
(:meth:`~NoisyWeights.forward_cache`), shared by the samples of the batch, drawn
from the layer's own :class:`bionp.random.Generator`.  The draw is kept in the
cache, so :meth:`~NoisyWeights.backward` uses the very :math:`\varepsilon` of
its forward pass.  With :math:`G = \partial L/\partial W_{\mathrm{eff}}` (what a
plain layer's backward pass returns for its weights):

.. math::

    \frac{\partial L}{\partial W} = G \quad (\text{additive}), \qquad
    \frac{\partial L}{\partial W} = G \odot (1 + \sigma\varepsilon)
    \quad (\text{multiplicative}),

and the delta sent to the layer below is :math:`\delta W_{\mathrm{eff}}` (the
weights the forward pass used; feedback alignment and Kolen–Pollack send it
through their own :math:`B` instead).

**The bias is not perturbed**: the noise models synaptic (weight) noise, as in
the seed; noise on a bias would be additive noise on the pre-activation, a
different model.

**Evaluation** (:meth:`~NoisyWeights.forward`) is noise-free unless asked:
``eval_noise=None`` (default) or ``False`` switches it off; ``True`` uses the
training :math:`\sigma`; a number uses that :math:`\sigma`.  Each noisy
evaluation draws a fresh :math:`\varepsilon` from the layer's generator.  To
measure robustness to test-time weight noise of *any* network (noisy layers
or a plain :class:`~bionp.nn.MLP`) use :func:`bionp.robustness.robustness_curve`.

Learnable noise variance
------------------------
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

Learning rules
--------------
The layers follow bionp's layer protocol, so :class:`~bionp.rules.Backprop`,
:class:`~bionp.rules.FeedbackAlignment`,
:class:`~bionp.rules.DirectFeedbackAlignment` and
:class:`~bionp.rules.KolenPollack` train them through
:class:`~bionp.nn.Sequential` (the rule's backward pass hands each layer its
cache).  They make no sense with the perturbation rules:
:class:`~bionp.rules.WeightPerturbation` estimates the gradient from loss
differences of *evaluation* passes, in which training noise is off (so the
noise never acts and :math:`\log\sigma^2`, which the evaluation does not
depend on, gets a pure-noise estimate); with evaluation noise on, the
difference of two independently perturbed passes would be dominated by the
weight noise itself.  :class:`~bionp.rules.NodePerturbation` perturbs the
activities of Dense layers and has no notion of a weight-noise parameter.
Weight decay (in the optimiser or Kolen–Pollack's :math:`\lambda`) also acts on
``log_var`` and pulls it toward 0, i.e. :math:`\sigma` toward 1 (clamped at
:math:`\sigma_{\max}`): train learnable-noise layers without it.

Buffers
-------
:math:`W_{\mathrm{eff}}`, :math:`1 + \sigma\varepsilon` (multiplicative mode),
per-weight :math:`\sigma`, and :math:`\varepsilon` when the generator can draw
into a buffer (``normal(..., out=)``) live in buffers allocated once; a cache is
therefore valid until the layer's next :meth:`~NoisyWeights.forward_cache`, and
:meth:`~NoisyWeights.backward` with an older cache raises ``RuntimeError``.
Evaluation passes never touch these buffers.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers

from bionp.backend import get_array_module
from bionp.nn.layers import Dense
from bionp.random import check_rng

__all__ = ["NOISE_MODES", "NoisyWeights", "NoisyDense", "LearnableNoiseDense", "NoiseCache",
           "noisy_weight", "check_sigma", "check_noise_mode", "check_sigma_bounds"]

NOISE_MODES = ("additive", "multiplicative")


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------

def check_noise_mode(mode) -> str:
    """``mode`` if it is one of :data:`NOISE_MODES`, else ``ValueError``."""
    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
    return mode


def check_sigma(value, name: str = "sigma") -> float:
    """``float(value)`` if it is a finite number >= 0, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative finite number, got "
                        f"{type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if v < 0:
        raise ValueError(f"{name} must be >= 0 (a standard deviation), got {v}")
    return v


def check_sigma_bounds(bounds) -> tuple[float, float]:
    """``(lo, hi)`` with ``0 < lo < hi`` finite, else a clear error."""
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise TypeError(f"sigma_bounds must be a pair (min, max), got {bounds!r}") from None
    lo = check_sigma(lo, "sigma_bounds[0]")
    hi = check_sigma(hi, "sigma_bounds[1]")
    if lo <= 0:
        raise ValueError(f"sigma_bounds[0] must be > 0 (log σ² is the parameter), got {lo}")
    if not lo < hi:
        raise ValueError(f"sigma_bounds must be (min, max) with min < max, got ({lo}, {hi}); "
                         "are they reversed?")
    return lo, hi


def _check_eval_noise(value):
    """``None`` (off), ``True`` (the training σ) or a float σ >= 0."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    return check_sigma(value, "eval_noise")


# --------------------------------------------------------------------------
# functional core
# --------------------------------------------------------------------------

def noisy_weight(W, eps, sigma, mode: str = "additive", out=None):
    r""":math:`W + \sigma\varepsilon` or :math:`W \odot (1 + \sigma\varepsilon)`.

    ``sigma`` is a number or an array broadcastable to ``W`` (per-weight σ);
    ``out`` (shape of ``W``) receives the result.
    """
    xp = get_array_module(W, eps)
    if out is None:
        out = xp.empty_like(W)
    if isinstance(sigma, numbers.Real):
        sigma = W.dtype.type(sigma)
    xp.multiply(eps, sigma, out=out)
    if mode == "additive":
        out += W
    else:
        out += W.dtype.type(1)
        out *= W
    return out


def _normal_has_out(rng) -> bool:
    try:
        return "out" in inspect.signature(rng.normal).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


@dataclasses.dataclass
class NoiseCache:
    r"""What a noisy layer's training forward pass leaves for its backward pass.

    Attributes
    ----------
    eps : array (shape of ``W``) — the noise draw :math:`\varepsilon`
    W : array — the clean weights the pass used
    W_eff : array — the perturbed weights the pass used
    sigma : float or array — the :math:`\sigma` the pass used
    inner : the wrapped layer's own cache
    token : int — which forward pass (buffers are reused by the next one)
    log_var : array or None — the log-variance the pass used (learnable σ)
    factor : array or None — :math:`1 + \sigma\varepsilon` (multiplicative mode)
    """

    eps: object
    W: object
    W_eff: object
    sigma: object
    inner: object
    token: int
    log_var: object = None
    factor: object = None


# --------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------

class NoisyWeights:
    """Makes a layer's weights ``W`` noisy: any layer with an ``(out, in)`` ``"W"`` whose
    output depends on ``W`` only through ``x W^T`` (``Dense`` and Dense-like layers).

    The wrapped layer keeps its parameters (``params()`` are its arrays); this
    wrapper draws :math:`\\varepsilon`, hands the wrapped layer :math:`W_{\\mathrm{eff}}`
    as a parameter override, and turns its gradient
    :math:`\\partial L/\\partial W_{\\mathrm{eff}}` into :math:`\\partial L/\\partial W`
    (module docstring).  The wrapped layer's ``backward`` must accept ``feedback=``
    (the matrix sending delta back; the wrapper passes :math:`W_{\\mathrm{eff}}`) and
    return its weight gradient as a new array (scaled in place in multiplicative mode).

    Parameters
    ----------
    layer : layer with ``params()["W"]`` of shape ``(out_features, in_features)``
    sigma : float >= 0, default 0.01
        Noise standard deviation during training (absolute in ``"additive"``
        mode, relative in ``"multiplicative"`` mode).
    mode : {"additive", "multiplicative"}
    eval_noise : None, bool or float
        Noise in :meth:`forward` (evaluation): off (None/False, default), the
        training σ (True) or this σ.
    rng : int, Generator or None
        The layer's noise generator (an int seeds a new one; a Generator is used
        as is, so give each layer its own, e.g. with ``Generator.spawn``).
    """

    def __init__(self, layer, sigma: float = 0.01, mode: str = "additive", eval_noise=None,
                 rng=None):
        params = layer.params() if hasattr(layer, "params") else None
        W = None if params is None else params.get("W")
        if W is None or getattr(W, "ndim", None) != 2:
            raise TypeError(f"NoisyWeights needs a layer with a 2-D weight matrix params()['W'] "
                            f"(out_features, in_features), got {type(layer).__name__}")
        self.layer = layer
        self.mode = check_noise_mode(mode)
        self._sigma = check_sigma(sigma, "sigma")
        self.eval_noise = eval_noise
        self._rng = check_rng(rng)
        self._draw_into = _normal_has_out(self._rng)
        self._eps_buf = None
        self._weff_buf = None
        self._factor_buf = None
        self._tmp_buf = None  # scratch of the learnable multiplicative log-variance gradient
        self._token = 0

    # -- protocol attributes --------------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    @property
    def dtype(self):
        return self.layer.dtype

    @property
    def W(self):
        return self.layer.params()["W"]

    @property
    def b(self):
        return self.layer.params().get("b")

    @property
    def has_bias(self) -> bool:
        return self.b is not None

    @property
    def rng(self):
        """The layer's noise generator."""
        return self._rng

    def params(self) -> dict:
        """The wrapped layer's parameters (the arrays themselves)."""
        return self.layer.params()

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self.params().values()))

    @property
    def sigma(self) -> float:
        """Training noise standard deviation."""
        return self._sigma

    @sigma.setter
    def sigma(self, value) -> None:
        self._sigma = check_sigma(value, "sigma")

    @property
    def eval_noise(self):
        """Evaluation noise: None (off), True (the training σ) or a float σ."""
        return self._eval_noise

    @eval_noise.setter
    def eval_noise(self, value) -> None:
        self._eval_noise = _check_eval_noise(value)

    # -- noise ------------------------------------------------------------------------------
    def _current_sigma(self, params, training: bool = False):
        """σ for a pass with these parameters (a float here; arrays for learnable σ, in a
        buffer for a training pass)."""
        return self._sigma

    def _buffer(self, name, like):
        buf = getattr(self, name)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = get_array_module(like).empty_like(like)
            setattr(self, name, buf)
        return buf

    def _draw(self, W, into_buffer: bool):
        xp = get_array_module(W)
        if into_buffer and self._draw_into:
            return self._rng.normal(0.0, 1.0, W.shape, dtype=W.dtype, xp=xp,
                                    out=self._buffer("_eps_buf", W))
        return self._rng.normal(0.0, 1.0, W.shape, dtype=W.dtype, xp=xp)

    def _merged(self, params):
        own = self.params()
        if params is None:
            return own
        unknown = set(params) - set(own)
        if unknown:
            raise ValueError(f"unknown parameter names {sorted(unknown)} for "
                             f"{type(self).__name__} (it has {sorted(own)})")
        return {**own, **params}

    def _inner_params(self, p, W_eff):
        inner = {k: v for k, v in p.items() if k in self.layer.params()}
        inner["W"] = W_eff
        return inner

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x, params=None):
        """Evaluation forward pass; noisy only if :attr:`eval_noise` asks for it."""
        p = self._merged(params)
        if self._eval_noise is None:
            return self.layer.forward(x, params=self._inner_params(p, p["W"]))
        sigma = self._current_sigma(p) if self._eval_noise is True else self._eval_noise
        W_eff = noisy_weight(p["W"], self._draw(p["W"], False), sigma, self.mode)
        return self.layer.forward(x, params=self._inner_params(p, W_eff))

    __call__ = forward

    def forward_cache(self, x, params=None):
        """Training forward pass with a fresh draw :math:`\\varepsilon`; ``(z, NoiseCache)``."""
        p = self._merged(params)
        W = p["W"]
        xp = get_array_module(W)
        eps = self._draw(W, True)
        sigma = self._current_sigma(p, training=True)
        W_eff = self._buffer("_weff_buf", W)
        factor = None
        if self.mode == "multiplicative":
            # keep 1 + σ ε for the backward pass: dL/dW = G ⊙ (1 + σ ε)
            factor = self._buffer("_factor_buf", W)
            xp.multiply(eps, W.dtype.type(sigma) if isinstance(sigma, float) else sigma, out=factor)
            factor += W.dtype.type(1)
            xp.multiply(W, factor, out=W_eff)
        else:
            noisy_weight(W, eps, sigma, self.mode, out=W_eff)
        z, inner = self.layer.forward_cache(x, params=self._inner_params(p, W_eff))
        self._token += 1
        return z, NoiseCache(eps, W, W_eff, sigma, inner, self._token, p.get("log_var"), factor)

    # -- backward ---------------------------------------------------------------------------
    def _check_cache(self, cache):
        if not isinstance(cache, NoiseCache):
            raise ValueError(f"{type(self).__name__}.backward needs the cache returned by its "
                             f"forward_cache (the noise draw), got {type(cache).__name__}")
        if cache.token != self._token:
            raise RuntimeError(
                f"{type(self).__name__}.backward got the cache of an earlier forward pass; its "
                "buffers were reused by a later forward_cache. Call backward before the layer's "
                "next forward_cache")

    def backward(self, x, delta, cache=None, feedback=None, need_input_grad=True):
        """Gradients ``{"W", "b", …}`` w.r.t. the clean parameters, and the input delta.

        ``feedback`` (FA/KP) replaces :math:`W_{\\mathrm{eff}}` when sending ``delta`` back.
        """
        self._check_cache(cache)
        M = cache.W_eff if feedback is None else feedback
        grads, delta_in = self.layer.backward(x, delta, cache=cache.inner, feedback=M,
                                              need_input_grad=need_input_grad)
        G = grads["W"]  # dL/dW_eff (a new array from the wrapped layer)
        self._extra_grads(grads, G, cache)  # the σ gradient needs G itself: first
        if self.mode == "multiplicative":
            G *= cache.factor  # dL/dW = G ⊙ (1 + σ ε), in place
        return grads, delta_in

    def _extra_grads(self, grads, G, cache) -> None:
        """Gradients of parameters beyond the wrapped layer's (learnable σ)."""

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The noise generator's state (and the wrapped layer's own state, if any)."""
        out = {"rng": self._rng.get_state()}
        if hasattr(self.layer, "state_dict"):
            out["layer"] = self.layer.state_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        if "rng" not in state:
            raise ValueError(f"{type(self).__name__} state needs 'rng' (the noise generator), "
                             f"got keys {sorted(state)}")
        self._rng.set_state(state["rng"])
        if "layer" in state and hasattr(self.layer, "load_state_dict"):
            self.layer.load_state_dict(state["layer"])

    def after_update(self) -> None:
        if hasattr(self.layer, "after_update"):
            self.layer.after_update()

    def get_config(self) -> dict:
        inner = self.layer.get_config() if hasattr(self.layer, "get_config") else {}
        return {"layer": inner, "layer_type": type(self.layer).__name__, "sigma": self._sigma,
                "mode": self.mode, "eval_noise": self._eval_noise}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.layer!r}, sigma={self._sigma:g}, mode={self.mode!r}, "
                f"eval_noise={self._eval_noise!r})")


class NoisyDense(NoisyWeights):
    """Fully connected layer with Gaussian weight noise at every training step.

    ``NoisyDense(in, out, sigma=0.01, mode="additive", eval_noise=None, rng=0, **dense_kwargs)``
    is :class:`NoisyWeights` around ``Dense(in, out, **dense_kwargs)``: ``rng``
    draws the initial weights (exactly as ``Dense(in, out, rng=rng)`` would), and
    the noise comes from ``noise_rng`` or, by default, a child generator spawned
    from ``rng`` (the layer's own stream).

    Parameters
    ----------
    in_features, out_features : int
    sigma, mode, eval_noise : see :class:`NoisyWeights`
    rng : int, Generator or None
    noise_rng : int, Generator or None
        The noise generator (default: spawned from ``rng``).
    **dense_kwargs : ``bias``, ``init``, ``init_scale``, ``bias_init``, ``dtype`` of
        :class:`~bionp.nn.Dense`
    """

    def __init__(self, in_features: int, out_features: int, sigma: float = 0.01,
                 mode: str = "additive", eval_noise=None, rng=None, noise_rng=None,
                 **dense_kwargs):
        check_noise_mode(mode)
        check_sigma(sigma, "sigma")
        rng = check_rng(rng)
        layer = Dense(in_features, out_features, rng=rng, **dense_kwargs)
        super().__init__(layer, sigma=sigma, mode=mode, eval_noise=eval_noise,
                         rng=rng.spawn(1)[0] if noise_rng is None else noise_rng)

    def get_config(self) -> dict:
        cfg = self.layer.get_config()
        cfg.update(sigma=self._sigma, mode=self.mode, eval_noise=self._eval_noise)
        return cfg

    def __repr__(self) -> str:
        return (f"NoisyDense({self.in_features}, {self.out_features}, sigma={self._sigma:g}, "
                f"mode={self.mode!r})")


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
        xp = get_array_module(s)
        dt = s.dtype.type
        out = xp.clip(s, dt(self._s_lo), dt(self._s_hi), out=out)
        out *= dt(0.5)
        return xp.exp(out, out=out)

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
        dt = s.dtype.type
        return (s >= dt(self._s_lo)) & (s <= dt(self._s_hi))

    def sigma_values(self) -> list:
        """σ as plain floats (one per layer, or per weight flattened) — for logging."""
        from bionp.backend import asnumpy

        return [float(v) for v in asnumpy(self.sigma).reshape(-1)]

    def regularization(self, params=None):
        """Value of :math:`R = -\\tfrac{\\lambda}{2}\\,\\overline{\\tilde s}` (0-d array)."""
        s = self._merged(params)["log_var"]
        xp = get_array_module(s)
        dt = s.dtype.type
        return -dt(0.5 * self.sigma_reg) * xp.mean(xp.clip(s, dt(self._s_lo), dt(self._s_hi)))

    # -- gradients ----------------------------------------------------------------------------
    def _extra_grads(self, grads, G, cache) -> None:
        xp = get_array_module(G)
        eps, sigma = cache.eps, cache.sigma
        s = cache.log_var
        dt = G.dtype.type
        if self.per_weight:
            g = xp.multiply(eps, G)
            if self.mode == "multiplicative":
                g *= cache.W
        elif self.mode == "additive":
            g = xp.vdot(eps.reshape(-1), G.reshape(-1)).reshape(1)
        else:
            tmp = xp.multiply(eps, G, out=self._buffer("_tmp_buf", G))
            g = xp.vdot(tmp.reshape(-1), cache.W.reshape(-1)).reshape(1)
        g = g.astype(s.dtype, copy=False)
        g *= sigma
        g *= dt(0.5)
        if self.sigma_reg:
            g -= dt(0.5 * self.sigma_reg / s.size)
        xp.multiply(g, self._inside(s), out=g)
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
