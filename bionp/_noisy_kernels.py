r"""Compiled CPU kernels of the noisy-weight layers (optional: Numba).

Each kernel fuses elementwise passes of the array code of :mod:`bionp.nn.noisy.functional`
into one pass and performs its floating-point operations in its order and in the arrays'
dtype (no ``fastmath``: no fused multiply-add), so both give the same bits:

* ``additive(W, eps, s, out)`` / ``additive_each(W, eps, sig, out)``:
  :math:`W_{\mathrm{eff}} = \varepsilon\sigma + W` (one :math:`\sigma`, or one per weight);
* ``multiplicative(W, eps, s, factor, out, keep)`` / ``multiplicative_each(...)``:
  :math:`f = \varepsilon\sigma + 1`, :math:`W_{\mathrm{eff}} = W f`, with :math:`f` kept in
  ``factor`` (``keep``) for the backward pass;
* ``half_clip(s, out, lo, hi, half)``: :math:`\operatorname{clamp}(s, lo, hi)\cdot\tfrac12`
  (the exponent of :math:`\sigma = e^{\tilde s/2}`; the exponential itself stays NumPy's,
  whose float32 rounding a compiled ``exp`` does not reproduce);
* ``log_var_grad(G, eps, sig, s, W, out, half, c, lo, hi, one, zero, use_w, use_c)``:
  the per-weight gradient :math:`((\varepsilon G)[W]\,\sigma\,\tfrac12 [- c])\cdot
  [lo \le s \le hi]`.

:math:`\operatorname{clamp}` keeps NaN (as ``numpy.clip``); a NaN :math:`s` is outside the
range.  Arrays are one-dimensional contiguous views; scalars come in the arrays' dtype.
Used through :mod:`bionp.backend_noisy`; imports Numba only when :func:`load` is called
(``BIONP_NUMBA=0`` turns the kernels off).
"""

from __future__ import annotations

from typing import Any

from bionp._kernels import load_built

__all__ = ["load"]

_state: dict[str, Any] = {}


def _build():
    import numba  # noqa: PLC0415  (optional dependency, loaded on first use)

    jit = numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)

    @jit
    def additive(W, eps, s, out):
        for i in range(out.shape[0]):
            out[i] = eps[i] * s + W[i]

    @jit
    def additive_each(W, eps, sig, out):
        for i in range(out.shape[0]):
            out[i] = eps[i] * sig[i] + W[i]

    @jit
    def multiplicative(W, eps, s, factor, out, one, keep):
        for i in range(out.shape[0]):
            f = eps[i] * s + one
            if keep:
                factor[i] = f
            out[i] = W[i] * f

    @jit
    def multiplicative_each(W, eps, sig, factor, out, one, keep):
        for i in range(out.shape[0]):
            f = eps[i] * sig[i] + one
            if keep:
                factor[i] = f
            out[i] = W[i] * f

    @jit
    def half_clip(s, out, lo, hi, half):
        for i in range(out.shape[0]):
            v = s[i]
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            out[i] = v * half

    @jit
    def log_var_grad(G, eps, sig, s, W, out, half, c, lo, hi, one, zero, use_w, use_c):
        for i in range(out.shape[0]):
            g = eps[i] * G[i]
            if use_w:
                g = g * W[i]
            g = g * sig[i]
            g = g * half
            if use_c:
                g = g - c
            si = s[i]
            out[i] = g * (one if (si >= lo and si <= hi) else zero)

    return {"additive": additive, "additive_each": additive_each,
            "multiplicative": multiplicative, "multiplicative_each": multiplicative_each,
            "half_clip": half_clip, "log_var_grad": log_var_grad}


def load():
    """The compiled kernels (a dict of Numba functions), or ``None`` without Numba or with
    ``BIONP_NUMBA=0`` (:func:`bionp._kernels.load_built`)."""
    return load_built(_state, _build)
