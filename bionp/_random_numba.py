r"""The Numba loops of :mod:`bionp._random_kernels` (imported only when those are loaded).

Philox4x64-10 (ten rounds; each 64×64→128-bit product one 128-bit multiplication, or,
where a range of blocks has no carry out of the low counter word, four 32×32→64-bit
products, so that LLVM runs four counters per AVX2 instruction: 1.26x the throughput on
this project's 2-core AMD machine, the same words), then, in the same pass, bionp's conversions of the words: float64 uniforms
:math:`(r \gg 11)\,2^{-53}`, float32 uniforms :math:`(u_{32} \gg 8)\,2^{-24}` (low half
first; the blocks as raw words chunk by chunk, then one vectorised conversion), ±s values
from single bits, and float64 Box–Muller normals piece by piece (the transcendental
functions by NumPy's own loops, called through their addresses; float32 normals:
:mod:`bionp._box_muller`).  See
:mod:`bionp._random_kernels` for the maths and the guarantees; the module is separate so
that the compiled functions are module-level (Numba's disk cache keys them by name).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["uniform", "rademacher", "normal"]

PIECE = 1024  # Box–Muller pairs per piece: three scratch rows of this stay in L1/L2
_CHUNK = 256  # Philox blocks per chunk of raw words (8 KiB)
_jit = numba.njit(nogil=True, cache=True, boundscheck=False)
_u64 = np.uint64
_M0, _M1 = _u64(0xD2E7470EE14C6C93), _u64(0xCA5A826395121157)
_W0, _W1 = _u64(0x9E3779B97F4A7C15), _u64(0xBB67AE8584CAA73B)
_ONE, _M24 = _u64(1), _u64(0xFFFFFF)
_L32, _S32, _MAX = _u64(0xFFFFFFFF), _u64(32), _u64(0xFFFFFFFFFFFFFFFF)
_M0_LO, _M0_HI = _u64(0xD2E7470EE14C6C93 & 0xFFFFFFFF), _u64(0xD2E7470EE14C6C93 >> 32)
_M1_LO, _M1_HI = _u64(0xCA5A826395121157 & 0xFFFFFFFF), _u64(0xCA5A826395121157 >> 32)
_S8, _S11, _S40 = _u64(8), _u64(11), _u64(40)


@intrinsic
def _mulhilo(typingctx, a, b):
    """High and low 64-bit halves of the 128-bit product ``a * b`` (uint64)."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128, i64 = ir.IntType(128), ir.IntType(64)
        p = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        hi = builder.trunc(builder.lshr(p, ir.Constant(i128, 64)), i64)
        return context.make_tuple(builder, signature.return_type, [hi, builder.trunc(p, i64)])

    return sig, codegen


@intrinsic
def _call_loop(typingctx, fn, ctx, data, dims, strides, aux):
    """``fn(ctx, data, dims, strides, aux)``: a NumPy strided loop given by addresses."""
    sig = types.int32(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [i8p] * 5)
        f = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(f, [builder.inttoptr(a, i8p) for a in args[1:]])

    return sig, codegen


@_jit
def _philox(x0, x1, x2, x3, k0, k1):
    """Philox4x64-10 of the counter ``(x0, x1, x2, x3)`` under the key ``(k0, k1)``."""
    for _ in range(10):
        hi0, lo0 = _mulhilo(_M0, x0)
        hi1, lo1 = _mulhilo(_M1, x2)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        k0 += _W0
        k1 += _W1
    return x0, x1, x2, x3


@_jit
def _bump(c):
    """The 256-bit counter ``c`` (4 uint64 words, low first) plus one, in place."""
    for j in range(4):
        c[j] += _ONE
        if c[j] != 0:
            return


@numba.njit(inline="always")
def _mul32(a_lo, a_hi, b):
    """High and low words of ``a * b`` (``a = a_hi 2**32 + a_lo``) from four 32×32→64-bit
    products: the form a vector unit computes (``vpmuludq``), four counters at once."""
    b_lo = b & _L32
    b_hi = b >> _S32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    mid = (p0 >> _S32) + (p1 & _L32) + (p2 & _L32)
    return a_hi * b_hi + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32), (mid << _S32) | (p0 & _L32)


@numba.njit(inline="always")
def _round(x, k0, k1):
    """One Philox4x64 round of the counter words ``x`` under the round's key ``(k0, k1)``."""
    hi0, lo0 = _mul32(_M0_LO, _M0_HI, x[0])
    hi1, lo1 = _mul32(_M1_LO, _M1_HI, x[2])
    return hi1 ^ x[1] ^ k0, lo1, hi0 ^ x[3] ^ k1, lo0


@_jit
def _blocks_vector(k0, k1, c0, c1, c2, c3, n_blocks, out):
    """:func:`_blocks` for a range whose low counter word does not wrap: the ten rounds
    written out (no inner loop), so LLVM runs several counters per vector instruction."""
    a0, b0 = k0, k1
    a1, b1 = a0 + _W0, b0 + _W1
    a2, b2 = a1 + _W0, b1 + _W1
    a3, b3 = a2 + _W0, b2 + _W1
    a4, b4 = a3 + _W0, b3 + _W1
    a5, b5 = a4 + _W0, b4 + _W1
    a6, b6 = a5 + _W0, b5 + _W1
    a7, b7 = a6 + _W0, b6 + _W1
    a8, b8 = a7 + _W0, b7 + _W1
    a9, b9 = a8 + _W0, b8 + _W1
    for b in range(n_blocks):
        x = _round((c0 + np.uint64(b), c1, c2, c3), a0, b0)
        x = _round(_round(_round(x, a1, b1), a2, b2), a3, b3)
        x = _round(_round(_round(x, a4, b4), a5, b5), a6, b6)
        x = _round(_round(_round(x, a7, b7), a8, b8), a9, b9)
        out[4 * b] = x[0]
        out[4 * b + 1] = x[1]
        out[4 * b + 2] = x[2]
        out[4 * b + 3] = x[3]


@_jit
def _blocks(k0, k1, c0, c1, c2, c3, n_blocks, out):
    """Philox4x64-10 blocks ``c, c + 1, …`` (``n_blocks`` of them) into ``out[:4 n_blocks]``
    (vectorised where the low counter word does not wrap, one block at a time at a wrap)."""
    if n_blocks > 0 and c0 <= _MAX - np.uint64(n_blocks - 1):
        _blocks_vector(k0, k1, c0, c1, c2, c3, n_blocks, out)
        return
    for b in range(n_blocks):
        x0, x1, x2, x3 = _philox(c0, c1, c2, c3, k0, k1)
        out[4 * b] = x0
        out[4 * b + 1] = x1
        out[4 * b + 2] = x2
        out[4 * b + 3] = x3
        c0, c1, c2, c3 = _plus(c0, c1, c2, c3, 1)


@numba.njit(nogil=True, cache=True, inline="always")
def _plus(c0, c1, c2, c3, k):
    """The 256-bit counter ``(c0, c1, c2, c3)`` (low word first) plus ``0 <= k < 2**63``."""
    d0 = c0 + np.uint64(k)
    if d0 < c0:
        c1 += _ONE
        if c1 == 0:
            c2 += _ONE
            if c2 == 0:
                c3 += _ONE
    return d0, c1, c2, c3


@_jit
def _words_to_uniform32(w, out, m):
    """``out[j] = (w[j] >> 8) 2**-24`` for ``j < m`` (uint32 words; vectorised)."""
    scale = np.float32(1.0 / 16777216.0)
    for j in range(m):
        out[j] = np.float32(np.int32(w[j] >> np.uint32(8))) * scale


@_jit
def _uniform32(k0, k1, c, skip, out):
    """Chunk by chunk: the blocks as raw words (scalar Philox, 256 blocks in L1), then
    their conversion in one vectorised loop."""
    n = out.shape[0]
    words = np.empty(4 * _CHUNK, dtype=np.uint64)
    w32 = words.view(np.uint32)
    c0, c1, c2, c3 = c[0], c[1], c[2], c[3]
    i = 0
    while i < n:
        m = min(n - i, 8 * _CHUNK - skip)
        nb = (skip + m + 7) // 8
        _blocks(k0, k1, c0, c1, c2, c3, nb, words)
        c0, c1, c2, c3 = _plus(c0, c1, c2, c3, nb)
        _words_to_uniform32(w32[skip:skip + m], out[i:i + m], m)
        i += m
        skip = 0
    c[0], c[1], c[2], c[3] = c0, c1, c2, c3


@_jit
def _uniform64(k0, k1, c, skip, out):
    n = out.shape[0]
    scale = 1.0 / 9007199254740992.0
    i = -skip
    while i < n:
        r0, r1, r2, r3 = _philox(c[0], c[1], c[2], c[3], k0, k1)
        _bump(c)
        v = (np.float64(r0 >> _S11) * scale, np.float64(r1 >> _S11) * scale,
             np.float64(r2 >> _S11) * scale, np.float64(r3 >> _S11) * scale)
        if i >= 0 and i + 4 <= n:
            for j in range(4):
                out[i + j] = v[j]
        else:
            for j in range(4):
                if 0 <= i + j < n:
                    out[i + j] = v[j]
        i += 4


@_jit
def _uniform_at(key, c, skip, out):
    """Uniforms ``skip, skip + 1, …`` of the blocks ``c, c + 1, …`` into ``out``; ``c`` is
    left at the block after the last one used."""
    if out.itemsize == 4:
        _uniform32(key[0], key[1], c, skip, out)
    else:
        _uniform64(key[0], key[1], c, skip, out)


@_jit
def uniform(key, ctr, skip, out):
    """``out[i]`` = uniform ``skip + i`` of the blocks ``ctr, ctr + 1, …`` (float32: 8 per
    block, float64: 4; ``skip`` below that)."""
    _uniform_at(key, ctr.copy(), skip, out)


@_jit
def rademacher(key, ctr, skip, two_s, s, out):
    """``out[i]`` = ``b * two_s - s`` with ``b`` bit ``(skip + i) % 64`` of word
    ``(skip + i) // 64`` of the blocks ``ctr, …`` (``0 <= skip < 256``)."""
    n = out.shape[0]
    c = ctr.copy()
    lo = -s  # b = 0: 0 * two_s - s
    hi = two_s - s
    i = -skip
    while i < n:
        r = _philox(c[0], c[1], c[2], c[3], key[0], key[1])
        _bump(c)
        for w in range(4):
            word = r[w]
            base = i + 64 * w
            if base >= 0 and base + 64 <= n:
                for j in range(64):
                    out[base + j] = hi if (word >> _u64(j)) & _ONE != 0 else lo
            else:
                for j in range(64):
                    if 0 <= base + j < n:
                        out[base + j] = hi if (word >> _u64(j)) & _ONE != 0 else lo
        i += 256


@_jit
def _run_loop(loop, src, dst, m, ptrs, dims, strides):
    """NumPy's strided loop ``loop`` (address, context, auxdata) on ``src[:m]`` -> ``dst``."""
    ptrs[0] = src.ctypes.data
    ptrs[1] = dst.ctypes.data
    dims[0] = m
    if _call_loop(loop[0], loop[1], ptrs.ctypes.data, dims.ctypes.data, strides.ctypes.data,
                  loop[2]) != 0:
        raise RuntimeError("a NumPy loop failed inside the normal kernel")


@_jit
def normal(key, ctr1, skip1, ctr2, skip2, n, half, p, q, out, consts, apply_s, apply_c, loops):
    """Pairs ``p … q-1`` of a draw of ``n`` normals: ``out[i]`` (cosines) and
    ``out[half + i]`` (sines, those below ``n``); the uniforms of pair ``p`` are at
    ``(ctr1, skip1)`` (u1) and ``(ctr2, skip2)`` (u2); ``consts`` = (1, -2, 2 pi, scale,
    loc) in the dtype; ``loops``: NumPy's log, cos, sin loops (address, context, auxdata)."""
    one, m2, two_pi, s, c = consts[0], consts[1], consts[2], consts[3], consts[4]
    scratch = np.empty((3, min(PIECE, max(q - p, 1))), dtype=out.dtype)
    r, t, cs = scratch[0], scratch[1], scratch[2]
    ptrs = np.empty(2, dtype=np.intp)
    dims = np.empty(1, dtype=np.intp)
    strides = np.empty(2, dtype=np.intp)
    strides[0] = strides[1] = r.itemsize
    per_block = 8 if out.itemsize == 4 else 4
    a1 = ctr1.copy()
    a2 = ctr2.copy()
    i = p
    while i < q:
        m = min(q - i, r.shape[0])
        b1 = a1.copy()
        b2 = a2.copy()
        _uniform_at(key, b1, skip1, r[:m])
        _uniform_at(key, b2, skip2, t[:m])
        # the next piece starts m uniforms later
        adv1, skip1 = divmod(skip1 + m, per_block)
        adv2, skip2 = divmod(skip2 + m, per_block)
        for _ in range(adv1):
            _bump(a1)
        for _ in range(adv2):
            _bump(a2)
        for j in range(m):
            r[j] = one - r[j]        # 1 - u1 in (0, 1]
            t[j] = t[j] * two_pi     # 2 pi u2
        _run_loop(loops[0], r, r, m, ptrs, dims, strides)       # log, in place
        for j in range(m):
            r[j] = np.sqrt(r[j] * m2)
        _run_loop(loops[1], t, cs, m, ptrs, dims, strides)      # cos
        _run_loop(loops[2], t, t, m, ptrs, dims, strides)       # sin, in place
        for j in range(m):
            z = cs[j] * r[j]
            if apply_s:
                z = z * s
            if apply_c:
                z = z + c
            out[i + j] = z
        lim = min(m, n - half - i)
        for j in range(lim):
            z = t[j] * r[j]
            if apply_s:
                z = z * s
            if apply_c:
                z = z + c
            out[half + i + j] = z
        i += m
