r"""Float32 Box–Muller with float64 polynomials (Numba): the loops of the float32 normal kernel.

The definition (:mod:`bionp.random._normal`) rounds the float64 logarithm, cosine and sine
of the float32 arguments to float32,

.. math::

    r = \mathrm{fl}_{32}\!\big(\ln x\big),\quad x = 1 - u_1, \qquad
    c = \mathrm{fl}_{32}(\cos\theta),\ s = \mathrm{fl}_{32}(\sin\theta),\quad
    \theta = \mathrm{fl}_{32}(u_2 \cdot \mathrm{fl}_{32}(2\pi)),

which is the correctly rounded float32 value on the whole domain (:math:`x = j\,2^{-24}`,
:math:`1 \le j \le 2^{24}`; :math:`\theta` one of :math:`2^{24}` values in :math:`[0, 2\pi)`):
every float64 value lies at least 21 (log), 9 (cos), 46 (sin) float64 ulp from a float32
rounding boundary there, so any float64 evaluation with an error below a few ulp gives the
same float32 bits.  The functions here are such evaluations, branch-free so that LLVM
vectorises the loop, with explicit fused multiply-adds (``fma``: ``a*b + c`` rounded once,
an exactly specified IEEE operation, so the bits do not depend on the CPU; without FMA
instructions LLVM calls the C library's ``fma``: the same bits, slower):

* :math:`\ln x`: :math:`x = 2^k m` with :math:`m \in [\sqrt{2}/2, \sqrt{2})` (integer
  operations on the float32 bits), :math:`f = m - 1` (exact), :math:`s = f / (m + 1)`,
  :math:`z = s^2`,

  .. math::

      \ln x = k \ln 2 + 2\,\mathrm{artanh}\, s = k \ln 2 + 2 s + s\, z\, P(z),

  :math:`P` of degree 5 fitted (minimax; relative error of the logarithm
  :math:`2^{-52.2}` on :math:`|s| \le 0.1716`; fdlibm ``e_log.c`` uses degree 6 and the
  more careful :math:`f - f^2/2 + s(f^2/2 + \dots)`, not needed for these margins), its
  even and odd parts in :math:`z^2` as two Horner chains;
* :math:`\cos\theta, \sin\theta`: :math:`n` the integer nearest to :math:`2\theta/\pi` (one
  fused :math:`\theta \cdot 2/\pi + 1.5 \cdot 2^{52}`, which leaves :math:`n` in the low bits),
  :math:`y = (\theta - n P_1) - n P_{1t}` (Cody–Waite, :math:`P_1` the first 33 bits of
  :math:`\pi/2`: the first step is exact), :math:`z = y^2`,
  :math:`\sin y = y + y z\,S(z)` (fdlibm ``k_sin.c``'s degree-5 :math:`S`),
  :math:`\cos y = 1 + z\,(C(z) z - 1/2)` (:math:`C` of degree 4 fitted, error
  :math:`2^{-52.9}` on :math:`|y| \le \pi/4`; ``k_cos.c`` uses degree 5), both by Horner,
  and the quadrant :math:`n \bmod 4` from those bits (swap for odd :math:`n`, signs by
  exclusive or).

No ``fastmath``: no contraction the compiler chooses and no reassociation.  The tests compare
:func:`log32` and :func:`sincos32` with the definition on all :math:`2^{24}` inputs of
each, bit for bit: that exhaustive comparison, not an error bound, is the guarantee (the
fitted polynomials' bounds above only say why it holds; the float64 values are within 3
(log) and 2 (cos, sin) ulp of NumPy's there).  Table-driven variants (no division, shorter
polynomials) were slower on AMD Zen 3: LLVM does not vectorise their table loads (gathers),
and a separate scalar pass of loads cost more than it saved.

The kernel :func:`normal32` works piece by piece (2048 pairs): the Philox blocks of the
piece's :math:`u_1` and :math:`u_2` as raw words (scalar: 64×64-bit products), then
:func:`pairs32`, one loop without calls or branches (selects only) that LLVM vectorises
(AVX2: four pairs per iteration, the float64 steps in four-lane registers).  Imported by
:mod:`bionp._random_kernels` when the kernels are built (it imports Numba).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from bionp._random_numba import _blocks, _plus

__all__ = ["fma", "log32", "sincos32", "pairs32", "normal32", "log32_array", "sincos32_array"]

PIECE = 2048  # pairs per piece: their words (16 KiB) stay in L1
_U24 = np.float32(1.0 / 16777216.0)

_jit = numba.njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
_inline = numba.njit(nogil=True, cache=True, boundscheck=False, error_model="numpy",
                     inline="always")

# ln(1+f) = 2s + s z P(z), s = f/(2+f), z = s^2, P(z) = L1 + L2 z + ... + L6 z^5 on z <= 0.1716^2
# (relative error of the logarithm 2**-52.2).  The fitted polynomials here: minimax by Lawson's
# reweighted least squares on Chebyshev nodes against 120-bit mpmath values, coefficients in float64
_L1, _L2, _L3 = 0.6666666666658699, 0.4000000005240266, 0.28571417107380476
_L4, _L5, _L6 = 0.22223373357940315, 0.18123586074836615, 0.16820527421360876
_LN2 = 6.93147180559945286227e-01
# sin y = y + y^3 (S1 + S2 y^2 + ... + S6 y^10) (fdlibm k_sin.c)
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
# cos y = 1 - y^2/2 + y^4 (C1 + C2 y^2 + ... + C5 y^8) on |y| <= pi/4, fitted for this kernel
# (error 2**-52.9)
_C1, _C2, _C3 = 0.04166666666659623, -0.0013888888877558198, 2.480158068122215e-05
_C4, _C5 = -2.755551795252832e-07, 2.0644763120903716e-09
# pi/2: first 33 bits and the rest (fdlibm __rem_pio2: pio2_1, pio2_1t); 2/pi; 1.5 * 2**52
_ROUND = 6755399441055744.0
_PIO2_1, _PIO2_1T = 1.57079632673412561417e+00, 6.07710050650619224932e-11
_INVPIO2 = 6.36619772367581382433e-01


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (IEEE fused multiply-add), three float32 or three float64."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _split32(typingctx, x):
    """``(m, k)`` as float64 with ``x = 2**k * m``, ``m`` in ``[sqrt(2)/2, sqrt(2))``, for a
    positive normal float32 ``x`` (fdlibm's integer steps, on the 32-bit pattern)."""
    sig = types.UniTuple(types.float64, 2)(types.float32)

    def codegen(context, builder, signature, args):
        i32, f32, f64 = ir.IntType(32), ir.FloatType(), ir.DoubleType()
        bits = builder.bitcast(args[0], i32)
        # + (1.0f - sqrt(0.5)f): m >= sqrt(0.5) moves into the next binade
        hx = builder.add(bits, ir.Constant(i32, 0x3F800000 - 0x3F3504F3))
        k = builder.sub(builder.lshr(hx, ir.Constant(i32, 23)), ir.Constant(i32, 127))
        mb = builder.add(builder.and_(hx, ir.Constant(i32, 0x007FFFFF)), ir.Constant(i32, 0x3F3504F3))
        m = builder.fpext(builder.bitcast(mb, f32), f64)
        return context.make_tuple(builder, signature.return_type, [m, builder.sitofp(k, f64)])

    return sig, codegen


@intrinsic
def _quadrant(typingctx, nb, cs, sn):
    """``(cos, sin)`` of ``n pi/2 + y`` from ``cos y``, ``sin y`` and ``nb = n + 1.5 * 2**52``
    (``n`` in its low bits): swap for odd ``n``, signs from bit 1 of ``n + 1`` and ``n``."""
    sig = types.UniTuple(types.float64, 2)(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        i64, f64 = ir.IntType(64), ir.DoubleType()
        v = builder.bitcast(args[0], i64)
        odd = builder.trunc(v, ir.IntType(1))
        a = builder.bitcast(builder.select(odd, args[2], args[1]), i64)
        b = builder.bitcast(builder.select(odd, args[1], args[2]), i64)
        two, sh = ir.Constant(i64, 2), ir.Constant(i64, 62)
        sc = builder.shl(builder.and_(builder.add(v, ir.Constant(i64, 1)), two), sh)
        ss = builder.shl(builder.and_(v, two), sh)
        c = builder.bitcast(builder.xor(a, sc), f64)
        s = builder.bitcast(builder.xor(b, ss), f64)
        return context.make_tuple(builder, signature.return_type, [c, s])

    return sig, codegen


@_inline
def log32(x):
    r"""float32 :math:`\mathrm{fl}_{32}(\ln x)` for a positive normal float32 ``x``."""
    m, dk = _split32(x)
    f = m - 1.0
    s = f / (m + 1.0)  # m + 1 = 2 + f exactly
    z = s * s
    w = z * z
    p = fma(z, fma(w, fma(w, _L6, _L4), _L2), fma(w, fma(w, _L5, _L3), _L1))
    return np.float32(fma(s, z * p, fma(dk, _LN2, s + s)))


@_inline
def sincos32(t):
    r"""float32 :math:`(\mathrm{fl}_{32}(\cos t), \mathrm{fl}_{32}(\sin t))` for a float32
    ``t`` in :math:`[0, 2\pi]`."""
    x = np.float64(t)
    nb = fma(x, _INVPIO2, _ROUND)  # n + 1.5 * 2**52: n in the low mantissa bits
    n = nb - _ROUND
    y = fma(n, -_PIO2_1T, fma(n, -_PIO2_1, x))
    z = y * y
    ps = fma(z, fma(z, fma(z, fma(z, fma(z, _S6, _S5), _S4), _S3), _S2), _S1)
    sn = fma(y * z, ps, y)
    pc = fma(z, fma(z, fma(z, fma(z, _C5, _C4), _C3), _C2), _C1)
    cs = fma(z, fma(z, pc, -0.5), 1.0)
    c, s = _quadrant(nb, cs, sn)
    return np.float32(c), np.float32(s)


@_jit
def log32_array(x, out):
    """``out[i] = log32(x[i])`` (the tests run it on every input)."""
    for i in range(x.shape[0]):
        out[i] = log32(x[i])


@_jit
def sincos32_array(t, c, s):
    """``c[i], s[i] = sincos32(t[i])``."""
    for i in range(t.shape[0]):
        c[i], s[i] = sincos32(t[i])


@_inline
def _pair(w1, w2, one, m2, two_pi):
    r"""The cosine and sine normal of the uniforms in the words ``w1``, ``w2`` (uint32,
    :math:`u = (w \gg 8)\,2^{-24}`), every float32 step as in the array code."""
    u1 = np.float32(np.int32(w1 >> np.uint32(8))) * _U24
    u2 = np.float32(np.int32(w2 >> np.uint32(8))) * _U24
    r = np.sqrt(log32(one - u1) * m2)
    c, s = sincos32(u2 * two_pi)
    return c * r, s * r


@_jit
def pairs32(w1, w2, out_c, out_s, m, consts, mode):
    r"""Normals of the pairs ``0 … m-1`` of the uint32 words ``w1`` (:math:`u_1`), ``w2``
    (:math:`u_2`) into ``out_c`` (cosines) and ``out_s`` (sines); ``consts`` = (1, -2,
    fl(2 pi), scale, loc) in float32; ``mode`` 0: neither, 1: ``* scale``, 2: ``* scale + loc``
    (scale 1 when only loc is given: exact).  One loop per mode, no branch inside: LLVM
    vectorises each."""
    one, m2, two_pi, sc, lc = consts[0], consts[1], consts[2], consts[3], consts[4]
    if mode == 0:
        for j in range(m):
            out_c[j], out_s[j] = _pair(w1[j], w2[j], one, m2, two_pi)
    elif mode == 1:
        for j in range(m):
            zc, zs = _pair(w1[j], w2[j], one, m2, two_pi)
            out_c[j] = zc * sc
            out_s[j] = zs * sc
    else:
        for j in range(m):
            zc, zs = _pair(w1[j], w2[j], one, m2, two_pi)
            out_c[j] = zc * sc + lc
            out_s[j] = zs * sc + lc


@_jit
def normal32(key, ctr1, skip1, ctr2, skip2, n, half, p, q, out, consts, mode):
    """Pairs ``p … q-1`` of a draw of ``n`` float32 normals: ``out[i]`` (cosines) and
    ``out[half + i]`` (sines, those below ``n``); the uniforms of pair ``p`` are number
    ``skip1`` of block ``ctr1`` (:math:`u_1`) and ``skip2`` of ``ctr2`` (:math:`u_2`).  Piece
    by piece: the blocks as raw words (scalar Philox), then :func:`pairs32` (vectorised)."""
    words = np.empty((2, PIECE // 2 + 8), dtype=np.uint64)
    spare = np.empty(PIECE, dtype=np.float32)
    w1, w2 = words[0].view(np.uint32), words[1].view(np.uint32)
    k0, k1 = key[0], key[1]
    a0, a1, a2, a3 = ctr1[0], ctr1[1], ctr1[2], ctr1[3]
    b0, b1, b2, b3 = ctr2[0], ctr2[1], ctr2[2], ctr2[3]
    i = p
    while i < q:
        m = min(q - i, PIECE)
        _blocks(k0, k1, a0, a1, a2, a3, (skip1 + m + 7) // 8, words[0])
        _blocks(k0, k1, b0, b1, b2, b3, (skip2 + m + 7) // 8, words[1])
        lim = max(0, min(m, n - half - i))  # sines that are part of the draw
        pairs32(w1[skip1:skip1 + lim], w2[skip2:skip2 + lim], out[i:i + lim],
                out[half + i:half + i + lim], lim, consts, mode)
        if lim < m:  # the last pair of an odd draw: its sine is not written
            pairs32(w1[skip1 + lim:skip1 + m], w2[skip2 + lim:skip2 + m], out[i + lim:i + m],
                    spare, m - lim, consts, mode)
        adv1, skip1 = divmod(skip1 + m, 8)
        adv2, skip2 = divmod(skip2 + m, 8)
        a0, a1, a2, a3 = _plus(a0, a1, a2, a3, adv1)
        b0, b1, b2, b3 = _plus(b0, b1, b2, b3, adv2)
        i += m
