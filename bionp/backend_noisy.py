r"""Compiled kernels of the noisy-weight layers, behind the backend (dispatch functions).

Each function takes the array module ``xp`` first and runs a fused kernel of
:mod:`bionp._noisy_kernels` where one applies -- NumPy arrays of one float32/float64
dtype, C-contiguous, of one shape, not overlapping, at least
:data:`bionp.backend_dense.MIN_SIZE` elements, Numba installed and ``BIONP_NUMBA`` not
``0`` -- and otherwise returns ``False``: the caller then runs its array code
(:mod:`bionp.nn.noisy.functional`), which stays the definition of the numbers.  The
kernels perform the array code's floating-point operations in its order (no fused
multiply-add), so both paths give the same bits (``tests/test_noisy_kernels.py``); CuPy
and the strict stand-in keep the array code, so the parity checks compare the two.

* :func:`noisy_weight`: :math:`W + \sigma\varepsilon` or :math:`W \odot (1 +
  \sigma\varepsilon)` (with :math:`1 + \sigma\varepsilon` kept) in one pass, instead of
  two or three.
* :func:`half_clip`: :math:`\operatorname{clamp}(s, s_{lo}, s_{hi})/2` in one pass.
* :func:`log_var_grad`: the per-weight log-variance gradient in one pass, instead of
  seven with three temporaries.

The per-weight gradient array of the previous step is written again when nobody but its
layer holds it any more (:func:`bionp.backend_dense.reusable`).
"""

from __future__ import annotations

import types

import numpy as np

from bionp import _noisy_kernels
from bionp.backend_dense import _FLOATS, MIN_SIZE, _flat

__all__ = ["half_clip", "log_var_grad", "noisy_weight"]


def _kernels(xp, like):
    """The kernels if ``like`` is a NumPy float array big enough for them, else ``None``."""
    if xp is not np or type(like) is not np.ndarray or like.dtype not in _FLOATS \
            or like.size < MIN_SIZE:
        return None
    return _noisy_kernels.load()


def _sigma(sigma, W):
    """``(scalar, None)`` for one σ (a number, or a size-1 array of ``W``'s dtype),
    ``(None, array)`` for σ of ``W``'s shape and dtype, ``None`` otherwise."""
    dt = W.dtype
    if isinstance(sigma, np.floating) and sigma.dtype == dt:
        return sigma, None
    if type(sigma) is not np.ndarray or sigma.dtype != dt:
        return None
    if sigma.size == 1 and sigma.ndim <= W.ndim:
        return sigma.reshape(-1)[0], None
    if sigma.shape == W.shape:
        return None, sigma
    return None


def noisy_weight(xp: types.ModuleType, W, eps, sigma, mode: str, out, factor=None) -> bool:
    r"""``out`` :math:`= \varepsilon\sigma + W` (additive) or :math:`W (\varepsilon\sigma + 1)`
    (multiplicative; ``factor``, optional, receives :math:`\varepsilon\sigma + 1`) in one
    pass.  Returns ``False`` (nothing written) where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    W, eps : array
        The weights and the noise draw, one shape and float dtype.
    sigma : scalar of ``W``'s dtype, or array
        One σ (a NumPy scalar or a size-1 array of ``W``'s dtype) or one per weight
        (``W``'s shape and dtype).
    mode : {"additive", "multiplicative"}
        Which formula.
    out : array
        Receives :math:`W_{\mathrm{eff}}`.
    factor : array, optional
        Receives :math:`1 + \sigma\varepsilon` (multiplicative mode).
    """
    k = _kernels(xp, W)
    if k is None:
        return False
    sig = _sigma(sigma, W)
    if sig is None:
        return False
    s, each = sig
    arrays = [W, eps, out] + ([] if each is None else [each]) \
        + ([factor] if factor is not None and mode != "additive" else [])
    flat = _flat(arrays, W.shape, W.dtype)
    if flat is None:
        return False
    w, e, o = flat[:3]
    if mode == "additive":
        if each is None:
            k["additive"](w, e, s, o)
        else:
            k["additive_each"](w, e, flat[3], o)
        return True
    f = flat[-1] if factor is not None else o
    one = W.dtype.type(1)
    if each is None:
        k["multiplicative"](w, e, s, f, o, one, factor is not None)
    else:
        k["multiplicative_each"](w, e, flat[3], f, o, one, factor is not None)
    return True


def half_clip(xp: types.ModuleType, s, s_lo, s_hi, out) -> bool:
    r"""``out`` :math:`= \operatorname{clamp}(s, s_{lo}, s_{hi}) \cdot \tfrac12` in one pass
    (NaN stays NaN, as ``numpy.clip``).  Returns ``False`` where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    s : array
        The log-variance.
    s_lo, s_hi : scalar of ``s``'s dtype
        The clamp range.
    out : array
        Receives the result, ``s``'s shape and dtype (not overlapping ``s``).
    """
    k = _kernels(xp, s)
    if k is None:
        return False
    flat = _flat([s, out], s.shape, s.dtype)
    if flat is None:
        return False
    dt = s.dtype.type
    k["half_clip"](flat[0], flat[1], dt(s_lo), dt(s_hi), dt(0.5))
    return True


def log_var_grad(xp: types.ModuleType, G, eps, sigma, s, s_lo, s_hi, W, c, out=None):
    r"""The per-weight log-variance gradient
    :math:`((\varepsilon G)\,[W]\,\sigma\,\tfrac12\,[-\,c]) \cdot [s_{lo} \le s \le s_{hi}]`
    as a new array, in one pass; ``None`` where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    G, eps, sigma, s : array
        :math:`\partial L/\partial W_{\mathrm{eff}}`, the noise, σ and the log-variance,
        one shape and float dtype.
    s_lo, s_hi : scalar of ``s``'s dtype
        The clamp range (closed); the gradient is 0 outside it.
    W : array or None
        The weights (multiplicative mode), or ``None`` (additive).
    c : scalar of ``s``'s dtype or None
        The regulariser's constant, subtracted; ``None``: none.
    out : array, optional
        Receives the gradient (a new array when ``None``); overlapping no input.
    """
    k = _kernels(xp, G)
    if k is None:
        return None
    arrays = [G, eps, sigma, s] + ([] if W is None else [W]) + ([] if out is None else [out])
    flat = _flat(arrays, G.shape, G.dtype)
    if flat is None:
        return None
    if out is None:
        out = np.empty_like(G)
    dt = G.dtype.type
    k["log_var_grad"](flat[0], flat[1], flat[2], flat[3], flat[0] if W is None else flat[4],
                      out.reshape(-1), dt(0.5), dt(0) if c is None else dt(c), dt(s_lo),
                      dt(s_hi), dt(1), dt(0), W is not None, c is not None)
    return out
