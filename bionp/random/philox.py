r"""The Philox4x64-10 counter core of :mod:`bionp.random`: block :math:`i` of a stream.

A counter-based generator computes block :math:`i` of the stream as a pure
function of the key and the counter :math:`c_0 + i`,

.. math::

    (r_{4i}, r_{4i+1}, r_{4i+2}, r_{4i+3}) = \mathrm{Philox4x64\text{-}10}_k(c_0 + i),

so a draw of ``n`` numbers is one vectorised evaluation over ``i = 1 … ⌈n/4⌉``
and needs no sequential state.  Philox4x64-10 (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC 2011): ten rounds of

.. math::

    (x_0, x_1, x_2, x_3) \leftarrow
    (\mathrm{hi}(M_1 x_2) \oplus x_1 \oplus k_0,\ \mathrm{lo}(M_1 x_2),\
     \mathrm{hi}(M_0 x_0) \oplus x_3 \oplus k_1,\ \mathrm{lo}(M_0 x_0)),

with the key bumped by the Weyl constants :math:`(W_0, W_1)` between rounds.
The function is written once in 64-bit unsigned array arithmetic (the high half
of a 64×64-bit product is assembled from 32-bit pieces, :func:`_mulhilo`), so
the same key and counter give the **same bits** on NumPy, on the strict stand-in
and on CuPy.  On NumPy the blocks come from NumPy's compiled Philox
(:func:`bionp.kernels.philox_raw_fast`, :func:`bionp.kernels.philox_uniform_fast`),
which the tests check against the array implementation bit for bit.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bionp.kernels import philox_raw_fast, philox_uniform_fast

__all__ = ["philox4x64_10"]

_M0 = 0xD2E7470EE14C6C93
_M1 = 0xCA5A826395121157
_W0 = 0x9E3779B97F4A7C15
_W1 = 0xBB67AE8584CAA73B
_MASK64 = (1 << 64) - 1
_MASK32 = 0xFFFFFFFF


def _mulhilo(xp, a, m: int):
    """High and low 64-bit halves of ``a * m`` for uint64 array ``a`` and constant ``m``."""
    u32 = xp.uint64(32)
    mask = xp.uint64(_MASK32)
    m_lo = xp.uint64(m & _MASK32)
    m_hi = xp.uint64(m >> 32)
    a_lo = a & mask
    a_hi = a >> u32
    ll = a_lo * m_lo
    lh = a_lo * m_hi
    hl = a_hi * m_lo
    hh = a_hi * m_hi
    # middle column, with the carries out of 64 bits kept apart
    mid = (ll >> u32) + (lh & mask) + (hl & mask)
    hi = hh + (lh >> u32) + (hl >> u32) + (mid >> u32)
    lo = a * xp.uint64(m)
    return hi, lo


def philox4x64_10(xp, counters: Sequence[Any], key: tuple[int, int]):
    """Philox4x64-10 of four uint64 counter arrays under ``key``; returns 4 arrays.

    Parameters
    ----------
    xp : module
        Array module (``numpy``, ``cupy`` or the strict stand-in).
    counters : 4 uint64 arrays of one shape
        Words 0..3 of each counter.
    key : (int, int)
        The two 64-bit key words.
    """
    x0, x1, x2, x3 = counters
    k0, k1 = key[0] & _MASK64, key[1] & _MASK64
    for r in range(10):
        if r:
            k0 = (k0 + _W0) & _MASK64
            k1 = (k1 + _W1) & _MASK64
        hi0, lo0 = _mulhilo(xp, x0, _M0)
        hi1, lo1 = _mulhilo(xp, x2, _M1)
        x0, x1, x2, x3 = hi1 ^ x1 ^ xp.uint64(k0), lo1, hi0 ^ x3 ^ xp.uint64(k1), lo0
    return x0, x1, x2, x3


def _raw_blocks(xp, key: tuple[int, int], counter: int, n_blocks: int):
    """uint64 array of ``4 * n_blocks`` words: blocks at counters ``counter+1 …``."""
    fast = philox_raw_fast(xp, key, counter, n_blocks)
    if fast is not None:
        return fast
    out = xp.empty((n_blocks, 4), dtype=xp.uint64)
    start = counter + 1
    done = 0
    while done < n_blocks:  # one pass per 2**64 blocks: words 1..3 constant within it
        c = (start + done) % (1 << 256)
        w0 = c & _MASK64
        m = min(n_blocks - done, (1 << 64) - w0)
        lo = xp.arange(m, dtype=xp.uint64) + xp.uint64(w0)
        hi_words = [xp.full(m, (c >> (64 * j)) & _MASK64, dtype=xp.uint64) for j in (1, 2, 3)]
        r = philox4x64_10(xp, [lo, *hi_words], key)
        for j in range(4):
            out[done:done + m, j] = r[j]
        done += m
    return out.reshape(-1)


def _per_block(dt) -> int:
    """Uniforms per Philox block: 4 float64 (one per word), 8 float32 (two per word)."""
    return 4 if np.dtype(dt) == np.float64 else 8


def _uniform_range(xp, key, counter: int, out, start: int) -> None:
    """``out[i]`` = uniform number ``start + i`` of the stream whose first block is
    ``counter + 1`` (compiled kernel); a ``start`` inside a block draws that block
    into a scratch array and keeps its tail."""
    per_block = _per_block(out.dtype)
    block, offset = divmod(start, per_block)
    if offset:
        head = min(per_block - offset, out.shape[0])
        scratch = xp.empty(per_block, dtype=out.dtype)
        philox_uniform_fast(xp, key, counter + block, scratch)
        out[:head] = scratch[offset:offset + head]
        out = out[head:]
        block += 1
    if out.shape[0]:
        philox_uniform_fast(xp, key, counter + block, out)
