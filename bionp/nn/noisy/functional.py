r"""The functional core of the noisy-weight layers: pure functions on arrays.

Noisy weights (:class:`~bionp.nn.noisy.NoisyWeights`), with
:math:`\varepsilon_{ij} \sim \mathcal N(0, 1)`:

.. math::

    W_{\mathrm{eff}} = W + \sigma\,\varepsilon \quad (\text{additive}), \qquad
    W_{\mathrm{eff}} = W \odot (1 + \sigma\,\varepsilon) \quad (\text{multiplicative}).

Learnable variance (:class:`~bionp.nn.noisy.LearnableNoiseDense`), parameter
:math:`s = \log\sigma^2` clamped to :math:`[s_{lo}, s_{hi}] = [2\log\sigma_{\min},
2\log\sigma_{\max}]`, with :math:`G = \partial L/\partial W_{\mathrm{eff}}`:

.. math::

    \sigma = e^{\tilde s/2}, \quad \tilde s = \operatorname{clamp}(s, s_{lo}, s_{hi}), \qquad
    \frac{\partial L}{\partial s} = \tfrac12\,\sigma \sum_{ij} \varepsilon_{ij}\, G_{ij}
    \ (\text{additive}), \quad
    \tfrac12\,\sigma \sum_{ij} W_{ij}\,\varepsilon_{ij}\, G_{ij}\ (\text{multiplicative})

(per weight: without the sum), inside the closed range and 0 outside; the
regulariser :math:`R = -\tfrac{\lambda}{2}\,\overline{\tilde s}` adds
:math:`-\lambda/(2 n_s)` per entry.  The argument checks the layers share are
here too.
"""

from __future__ import annotations

import math
import numbers

from bionp import backend_noisy
from bionp.backend import get_array_module

__all__ = ["NOISE_MODES", "noisy_weight", "check_sigma", "check_noise_mode",
           "check_sigma_bounds", "sigma_from_log_var", "inside_clamp", "log_var_regularization",
           "log_var_grad"]

NOISE_MODES = ("additive", "multiplicative")


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------

def check_noise_mode(mode) -> str:
    """``mode`` if it is one of :data:`NOISE_MODES`, else ``ValueError``.

    Parameters
    ----------
    mode : str
        The noise mode to check: ``"additive"`` or ``"multiplicative"``.
    """
    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
    return mode


def check_sigma(value, name: str = "sigma") -> float:
    """``float(value)`` if it is a finite number >= 0, else a clear error.

    Parameters
    ----------
    value : float
        The standard deviation to check: a finite real number >= 0 (not a bool).
    name : str, default "sigma"
        The argument's name, used in the error message.
    """
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
    """``(lo, hi)`` with ``0 < lo < hi`` finite, else a clear error.

    Parameters
    ----------
    bounds : tuple of float
        ``(min, max)`` standard deviations, finite, with ``0 < min < max``.
    """
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


# --------------------------------------------------------------------------
# noisy weights
# --------------------------------------------------------------------------

def noisy_weight(W, eps, sigma, mode: str = "additive", out=None, factor=None):
    r""":math:`W + \sigma\varepsilon` or :math:`W \odot (1 + \sigma\varepsilon)`.

    ``sigma`` is a number or an array broadcastable to ``W`` (per-weight σ);
    ``out`` (shape of ``W``) receives the result.  Computed as
    :math:`\varepsilon\sigma + W` and :math:`W\,(\varepsilon\sigma + 1)`, each product
    and sum rounded in ``W``'s dtype; on NumPy with Numba a compiled kernel
    (:func:`bionp.backend_noisy.noisy_weight`) does it in one pass, with the same bits.

    Parameters
    ----------
    W : array
        The weights.
    eps : array
        Standard normal noise :math:`\varepsilon`, shape of ``W``.
    sigma : float or array
        Noise standard deviation: a number, or an array broadcastable to ``W``.
    mode : {"additive", "multiplicative"}, default "additive"
        Which of the two formulas.
    out : array, optional
        Output buffer, shape and dtype of ``W``; a new array when ``None``.
    factor : array, optional
        Multiplicative mode: receives :math:`1 + \sigma\varepsilon` (shape and dtype of
        ``W``), the factor of the backward pass :math:`\partial L/\partial W = G \odot
        (1 + \sigma\varepsilon)`; ignored in the additive mode.
    """
    xp = get_array_module(W, eps)
    if out is None:
        out = xp.empty_like(W)
    if isinstance(sigma, numbers.Real):
        sigma = W.dtype.type(sigma)
    if backend_noisy.noisy_weight(xp, W, eps, sigma, mode, out, factor):
        return out
    if mode == "additive":
        xp.multiply(eps, sigma, out=out)
        out += W
    elif factor is not None:
        xp.multiply(eps, sigma, out=factor)
        factor += W.dtype.type(1)
        xp.multiply(W, factor, out=out)
    else:
        xp.multiply(eps, sigma, out=out)
        out += W.dtype.type(1)
        out *= W
    return out


# --------------------------------------------------------------------------
# learnable variance
# --------------------------------------------------------------------------

def sigma_from_log_var(s, s_lo: float, s_hi: float, out=None):
    r""":math:`\sigma = e^{\tilde s/2}` with :math:`\tilde s = \operatorname{clamp}(s, s_{lo},
    s_{hi})`, in ``s``'s dtype; ``out`` (shape of ``s``) receives the result.

    Parameters
    ----------
    s : array
        The log-variance parameter :math:`s = \log\sigma^2`.
    s_lo, s_hi : float
        The clamp range :math:`[s_{lo}, s_{hi}]`, ``s_lo < s_hi``.
    out : array, optional
        Output buffer, shape and dtype of ``s``; a new array when ``None``.
    """
    xp = get_array_module(s)
    dt = s.dtype.type
    if out is not None and backend_noisy.half_clip(xp, s, dt(s_lo), dt(s_hi), out):
        return xp.exp(out, out=out)  # the clamp and the halving in one compiled pass
    out = xp.clip(s, dt(s_lo), dt(s_hi), out=out)
    out *= dt(0.5)
    return xp.exp(out, out=out)


def inside_clamp(s, s_lo: float, s_hi: float):
    """True where the clamp is inactive (the closed range), False outside.

    Parameters
    ----------
    s : array
        The log-variance parameter.
    s_lo, s_hi : float
        The clamp range (closed).
    """
    dt = s.dtype.type
    return (s >= dt(s_lo)) & (s <= dt(s_hi))


def log_var_regularization(s, sigma_reg: float, s_lo: float, s_hi: float):
    r""":math:`R = -\tfrac{\lambda}{2}\,\overline{\tilde s}` (0-d array), :math:`\lambda` =
    ``sigma_reg``.

    Parameters
    ----------
    s : array
        The log-variance parameter.
    sigma_reg : float
        The regularisation strength :math:`\lambda` (>= 0).
    s_lo, s_hi : float
        The clamp range applied to ``s`` before the mean.
    """
    xp = get_array_module(s)
    dt = s.dtype.type
    return -dt(0.5 * sigma_reg) * xp.mean(xp.clip(s, dt(s_lo), dt(s_hi)))


def log_var_grad(G, eps, sigma, s, s_lo: float, s_hi: float, *, mode: str, per_weight: bool,
                 W=None, sigma_reg: float = 0.0, scratch=None, out=None):
    r""":math:`\partial (L + R)/\partial s` from :math:`G = \partial L/\partial W_{\mathrm{eff}}`
    (module docstring), shape of ``s``; 0 outside the clamp range.

    ``eps``, ``sigma`` and ``W`` are those of the forward pass (``W`` for the
    multiplicative mode); ``scratch`` (shape of ``G``) holds :math:`\varepsilon \odot G`
    of the per-layer multiplicative case.

    Parameters
    ----------
    G : array
        :math:`\partial L/\partial W_{\mathrm{eff}}`, shape of the weights.
    eps : array
        The forward pass's noise, shape of ``G``.
    sigma : array
        The forward pass's σ, shape of ``s``.
    s : array
        The log-variance parameter: shape of ``G`` if ``per_weight``, else ``(1,)``.
    s_lo, s_hi : float
        The clamp range; the gradient is 0 outside it.
    mode : {"additive", "multiplicative"}
        The noise mode of the forward pass.
    per_weight : bool
        One σ per weight (True) or one per layer (False).
    W : array, optional
        The weights of the forward pass; required in the multiplicative mode.
    sigma_reg : float, default 0.0
        Strength :math:`\lambda` of the regulariser :math:`R`; 0 adds nothing.
    scratch : array, optional
        Buffer of ``G``'s shape for the per-layer multiplicative case.
    out : array, optional
        Per weight: receives the gradient (shape and dtype of ``G``, overlapping no input);
        a new array when ``None``.
    """
    xp = get_array_module(G)
    dt = G.dtype.type
    if per_weight and getattr(s, "dtype", None) == G.dtype:  # one compiled pass, same bits
        g = backend_noisy.log_var_grad(xp, G, eps, sigma, s, dt(s_lo), dt(s_hi),
                                       W if mode == "multiplicative" else None,
                                       dt(0.5 * sigma_reg / s.size) if sigma_reg else None,
                                       out=out)
        if g is not None:
            return g
    if per_weight:
        g = xp.multiply(eps, G, out=out)
        if mode == "multiplicative":
            g *= W
    elif mode == "additive":
        g = xp.vdot(eps.reshape(-1), G.reshape(-1)).reshape(1)
    else:
        tmp = xp.multiply(eps, G, out=scratch)
        g = xp.vdot(tmp.reshape(-1), W.reshape(-1)).reshape(1)
    g = g.astype(s.dtype, copy=False)
    g *= sigma
    g *= dt(0.5)
    if sigma_reg:
        g -= dt(0.5 * sigma_reg / s.size)
    xp.multiply(g, inside_clamp(s, s_lo, s_hi), out=g)
    return g
