r"""Noisy weights: fresh Gaussian weight noise at every training step.

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
through their own :math:`B` instead).  :func:`~bionp.nn.noisy.noisy_weight`
(:mod:`bionp.nn.noisy.functional`) computes :math:`W_{\mathrm{eff}}`; this
module holds the layers around it.

**The bias is not perturbed**: the noise models synaptic (weight) noise, as in
the seed; noise on a bias would be additive noise on the pre-activation, a
different model.

**Evaluation** (:meth:`~NoisyWeights.forward`) is noise-free unless asked:
``eval_noise=None`` (default) or ``False`` switches it off; ``True`` uses the
training :math:`\sigma`; a number uses that :math:`\sigma`.  Each noisy
evaluation draws a fresh :math:`\varepsilon` from the layer's generator.  To
measure robustness to test-time weight noise of *any* network (noisy layers
or a plain :class:`~bionp.nn.MLP`) use :func:`bionp.robustness.robustness_curve`.

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

from bionp.backend import get_array_module
from bionp.nn.layers import Dense
from bionp.nn.noisy.functional import check_noise_mode, check_sigma, noisy_weight
from bionp.random import check_rng

__all__ = ["NoisyWeights", "NoisyDense", "NoiseCache"]


def _check_eval_noise(value):
    """``None`` (off), ``True`` (the training σ) or a float σ >= 0."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    return check_sigma(value, "eval_noise")


def _normal_has_out(rng) -> bool:
    try:
        return "out" in inspect.signature(rng.normal).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


@dataclasses.dataclass
class NoiseCache:
    r"""What a noisy layer's training forward pass leaves for its backward pass.

    Parameters
    ----------
    eps : array
        The noise draw :math:`\varepsilon`, shape of ``W``.
    W : array
        The clean weights the pass used.
    W_eff : array
        The perturbed weights the pass used.
    sigma : float or array
        The :math:`\sigma` the pass used.
    inner : object
        The wrapped layer's own cache.
    token : int
        Which forward pass (buffers are reused by the next one).
    log_var : array, optional
        The log-variance the pass used (learnable σ); ``None`` otherwise.
    factor : array, optional
        :math:`1 + \sigma\varepsilon` (multiplicative mode); ``None`` otherwise.
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
        eps = self._draw(W, True)
        sigma = self._current_sigma(p, training=True)
        W_eff = self._buffer("_weff_buf", W)
        # multiplicative: keep 1 + σ ε for the backward pass, dL/dW = G ⊙ (1 + σ ε)
        factor = self._buffer("_factor_buf", W) if self.mode == "multiplicative" else None
        noisy_weight(W, eps, sigma, self.mode, out=W_eff, factor=factor)
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
        G = grads["W"]  # dL/dW_eff: the wrapped layer's, which the caller receives (ours)
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
        if noise_rng is not None:
            noise_rng = check_rng(noise_rng, "noise_rng")
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
