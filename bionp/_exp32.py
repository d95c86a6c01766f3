r"""NumPy's float32 exponential, compiled (Numba): the sigmoid in one pass, same bits.

On x86-64 CPUs with AVX2 and FMA (and on AVX-512 ones) ``numpy.exp`` on a float32 array
runs NumPy's own vector kernel, not the C library's ``expf``; its results are not the
correctly rounded ones (up to 2.5 ulp away), so a compiled kernel gives NumPy's bits only
by performing the same float32 operations.  They are, for :math:`x` not NaN and
:math:`x_{\min} < x < x_{\max}` (:math:`x_{\max} = 88.72284`, :math:`x_{\min} =
-103.97208`; at or beyond them the result is :math:`+\infty` and 0, NaN gives NaN):

.. math::

    k = \big(\mathrm{fl}(x \log_2 e) + 1.5 \cdot 2^{23}\big) - 1.5 \cdot 2^{23}
    \quad (\text{the nearest integer}), \qquad
    r = \mathrm{fma}(k, -c_2, \mathrm{fma}(k, -c_1, x))

(Cody–Waite: :math:`c_1 + c_2 \approx \ln 2`, :math:`c_1` short enough that the first
step loses nothing), then the ratio of a degree-5 and a degree-2 polynomial by Horner's
rule with fused multiply-adds,

.. math::

    e^r \approx \frac{P(r)}{Q(r)}, \qquad
    e^x = \frac{P(r)}{Q(r)}\, 2^k,

the power of two added to the exponent bits, or, where the result is subnormal
(:math:`k < -125`), :math:`2^{-125}` added there and the rest applied by one rounded
multiplication by :math:`2^{k + 125}` (what a division by :math:`2^{-(k+125)}` and
AVX-512's ``scalef`` give: the exact value rounded once).  The constants below are
NumPy's, as float32 bit patterns.

:func:`exp32_array` agrees with ``numpy.exp`` bit for bit on all :math:`2^{32}` float32
inputs on such a CPU (NaN for NaN), and :func:`sigmoid32` with the array code's sigmoid
(``benchmarks/exp32_check.py``, NumPy 2.4, AMD Zen 3 with AVX2).  Elsewhere (another
NumPy; a CPU without AVX2, where NumPy calls the C library's ``expf``) it may not: the
kernels compare the two on a probe of inputs when they load (:func:`matches_numpy`, in
:mod:`bionp._dense_kernels`) and offer the sigmoid only where they agree, so the array
code stays the definition of the numbers.  ``fma`` is the IEEE fused multiply-add (one
rounding); no ``fastmath``, so LLVM keeps every other operation as written, and still
vectorises the loops (no branches, selects only).

Imported by :mod:`bionp._dense_kernels` when the kernels are built (it imports Numba).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from bionp._box_muller import fma as _fma

__all__ = ["exp32", "exp32_array", "matches_numpy", "sigmoid32", "sigmoid32_inplace"]


def _f32(bits: int) -> np.float32:
    return np.array(bits, dtype=np.uint32).view(np.float32)[()]


_X_MAX, _X_MIN = _f32(0x42B17218), _f32(0xC2CFF1B5)  # 88.72284, -103.97208
_LOG2E = _f32(0x3FB8AA3B)
_ROUND = np.float32(1.5 * 2**23)
_C1, _C2 = _f32(0xBF317200), _f32(0xB5BFBE8E)  # -(ln 2) in two parts
_P0, _P1, _P2 = _f32(0x3F800000), _f32(0x3F39CBD5), _f32(0x3E7D4C58)
_P3, _P4, _P5 = _f32(0x3D517D8C), _f32(0x3BDD7159), _f32(0x3A053DD8)
_Q0, _Q1, _Q2 = _f32(0x3F800000), _f32(0xBE8C6857), _f32(0x3CB0E832)
_ZERO, _ONE = np.float32(0.0), np.float32(1.0)
_INF, _NAN = np.float32(np.inf), _f32(0x7FC00000)

_jit = numba.njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
_inline = numba.njit(nogil=True, cache=True, boundscheck=False, error_model="numpy",
                     inline="always")


@intrinsic
def _times_power_of_two(typingctx, p, k):
    r""":math:`p\,2^k` for a float32 ``p`` in :math:`[\tfrac12, 2)` and an integer
    :math:`-150 \le k \le 128`: :math:`\max(k, -125)` added to the exponent bits (exact),
    then, for :math:`k < -125`, one rounded product with :math:`2^{k + 125}`."""
    sig = types.float32(types.float32, types.int32)

    def codegen(context, builder, signature, args):
        i32, f32 = ir.IntType(32), ir.FloatType()
        p, k = args
        low = ir.Constant(i32, -125)
        kept = builder.select(builder.icmp_signed("<", k, low), low, k)
        scaled = builder.bitcast(builder.add(builder.bitcast(p, i32),
                                             builder.shl(kept, ir.Constant(i32, 23))), f32)
        rest = builder.sub(k, kept)  # 0, or k + 125 < 0: a normal power of two
        factor = builder.bitcast(builder.shl(builder.add(rest, ir.Constant(i32, 127)),
                                             ir.Constant(i32, 23)), f32)
        return builder.fmul(scaled, factor)

    return sig, codegen


@_inline
def exp32(x):
    r"""float32 :math:`e^x` with NumPy's vector kernel's operations (module docstring)."""
    nan = x != x
    over = x >= _X_MAX
    under = x <= _X_MIN
    y = _ZERO if (nan | over | under) else x
    k = (y * _LOG2E + _ROUND) - _ROUND
    r = _fma(k, _C2, _fma(k, _C1, y))
    num = _fma(_fma(_fma(_fma(_fma(_P5, r, _P4), r, _P3), r, _P2), r, _P1), r, _P0)
    den = _fma(_fma(_Q2, r, _Q1), r, _Q0)
    e = _times_power_of_two(num / den, np.int32(k))
    e = _NAN if nan else e
    e = _INF if over else e
    return _ZERO if under else e


@_jit
def exp32_array(x, out):
    """``out[i] = exp32(x[i])`` (float32, one-dimensional; the self-check and the tests)."""
    for i in range(x.shape[0]):
        out[i] = exp32(x[i])


@_jit
def sigmoid32(z, out):
    r"""``out[i]`` :math:`= 1/(1 + e^{-z_i})` with :func:`exp32`: the array code's four
    passes (negate, ``numpy.exp``, add one, reciprocal) in one; ``out`` must not overlap
    ``z`` (:func:`sigmoid32_inplace` for ``out is z``: LLVM's overlap check would send
    this loop to its scalar version, 7x slower)."""
    for i in range(z.shape[0]):
        out[i] = _ONE / (exp32(-z[i]) + _ONE)


@_jit
def sigmoid32_inplace(a):
    r""":func:`sigmoid32` with ``out = z = a``."""
    for i in range(a.shape[0]):
        a[i] = _ONE / (exp32(-a[i]) + _ONE)


def matches_numpy(exp_array, bits=None) -> bool:
    """Whether ``exp_array(x, out)`` writes ``numpy.exp(x)``'s float32 bits (NaN for NaN)
    for the float32 bit patterns ``bits``; by default every 4099th pattern (all signs,
    exponents and mantissa ends) and the ends of the kernel's range.

    Parameters
    ----------
    exp_array : callable
        ``(x, out)``: an exponential of a one-dimensional float32 array into ``out``.
    bits : array of uint32, optional
        The inputs' bit patterns.

    Returns
    -------
    bool
        ``True`` when every output has ``numpy.exp``'s bits.
    """
    if bits is None:
        ends = np.array([0x42B17217, 0x42B17218, 0xC2CFF1B5, 0xC2CFF1B6, 0xC2AEAC4F,
                         0xC2AEAC50, 0x7F800000, 0xFF800000, 0x7FC00000, 0x80000000, 0],
                        dtype=np.uint32)
        bits = np.concatenate([np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32),
                               ends])
    x = np.ascontiguousarray(bits, dtype=np.uint32).view(np.float32)
    got = np.empty_like(x)
    exp_array(x, got)
    with np.errstate(all="ignore"):
        want = np.exp(x)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    return bool(same.all())
