r"""bionp's random numbers: a counter-based Philox4x64-10 generator on ``xp``.

Every random draw in bionp comes from :class:`Generator`.  A counter-based
generator computes block :math:`i` of the stream as a pure function of the key
and the counter :math:`c_0 + i`,

.. math::

    (r_{4i}, r_{4i+1}, r_{4i+2}, r_{4i+3}) = \mathrm{Philox4x64\text{-}10}_k(c_0 + i),

so a draw of ``n`` numbers is one vectorised evaluation over ``i = 1 … ⌈n/4⌉``
and needs no sequential state.  The function is written once in 64-bit
unsigned array arithmetic (the high half of a 64×64-bit product is assembled
from 32-bit pieces), so the same seed gives the **same bits** on NumPy, on the
strict stand-in and on CuPy.  On NumPy the blocks come from NumPy's compiled
Philox (:func:`bionp.backend.philox_raw_fast`), which the tests check against
the array implementation bit for bit.

Philox4x64-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC 2011): ten rounds of

.. math::

    (x_0, x_1, x_2, x_3) \leftarrow
    (\mathrm{hi}(M_1 x_2) \oplus x_1 \oplus k_0,\ \mathrm{lo}(M_1 x_2),\
     \mathrm{hi}(M_0 x_0) \oplus x_3 \oplus k_1,\ \mathrm{lo}(M_0 x_0)),

with the key bumped by the Weyl constants :math:`(W_0, W_1)` between rounds.

Seeding follows NumPy: the key is ``SeedSequence(seed).generate_state(2,
uint64)``, so ``Generator(s)`` produces exactly the raw stream of
``numpy.random.Philox(s)``; :meth:`Generator.spawn` uses
``SeedSequence.spawn`` for independent children.

Conversions
-----------
* ``uniform`` float64: :math:`(r \gg 11)\,2^{-53}`; float32: each 64-bit word
  gives two numbers, low 32 bits first, :math:`(u_{32} \gg 8)\,2^{-24}` (NumPy's
  conventions, so both equal ``numpy.random.Generator(Philox(s)).random``).
* ``normal``: Box–Muller on pairs of uniforms (vectorised, exact on every
  backend up to the last ulp of ``log``/``cos``/``sin``).
* ``integers``: Lemire's multiply-shift with rejection, unbiased.
* ``permutation``/``choice(replace=False)``: argsort of 64-bit random keys.

Each call uses whole blocks: a draw of ``n`` words advances the counter by
``⌈n/4⌉`` and discards the rest of the last block.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from typing import Any, Sequence

import numpy as np

from bionp.backend import (
    asarray,
    get_array_module,
    get_xp,
    is_array,
    philox_raw_fast,
    philox_fast_available,
    philox_uniform_fast,
    resolve_dtype,
    to_scalar,
)
from bionp.validation import check_finite

__all__ = ["Generator", "default_rng", "check_rng", "named_stream", "philox4x64_10",
           "get_num_threads", "set_num_threads"]

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


def _size_tuple(size) -> tuple[int, ...]:
    if size is None:
        return ()
    if isinstance(size, numbers.Integral):
        size = (size,)
    try:
        shape = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"size must be an int or a tuple of ints, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"size must not be negative, got {shape}")
    return shape


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be a non-negative int, a bionp.random.Generator or None; got "
            f"{type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")


class Generator:
    """Counter-based Philox4x64-10 random generator, identical on every backend.

    Parameters
    ----------
    seed : int >= 0 or None
        ``None`` takes fresh entropy from the operating system.

    Notes
    -----
    Arrays are created on the active backend (``bionp.get_xp()``) unless a
    draw is given ``xp=``; the default float dtype is ``bionp.get_dtype()``.
    The state is the key and a counter: :meth:`get_state` / :meth:`set_state`
    save and restore it exactly (checkpoints use them).
    """

    def __init__(self, seed: int | None = None, *, _seed_seq: np.random.SeedSequence | None = None):
        if _seed_seq is None:
            if seed is not None:
                _check_seed(seed)
            _seed_seq = np.random.SeedSequence(seed)
        self._seed_seq = _seed_seq
        k = _seed_seq.generate_state(2, np.uint64)
        self._key = (int(k[0]), int(k[1]))
        self._counter = 0  # number of blocks consumed

    # -- state -----------------------------------------------------------------
    @property
    def key(self) -> tuple[int, int]:
        return self._key

    @property
    def counter(self) -> int:
        """Blocks of four 64-bit words consumed so far."""
        return self._counter

    def get_state(self) -> dict[str, Any]:
        """JSON-able state: key, counter and the seed sequence's entropy/spawn key."""
        ss = self._seed_seq
        return {
            "bit_generator": "Philox4x64-10",
            "key": [str(self._key[0]), str(self._key[1])],
            "counter": str(self._counter),
            "entropy": str(ss.entropy),
            "spawn_key": [int(s) for s in ss.spawn_key],
            "n_children_spawned": int(ss.n_children_spawned),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`get_state`."""
        if state.get("bit_generator") != "Philox4x64-10":
            raise ValueError(f"not a bionp Philox4x64-10 state: {state.get('bit_generator')!r}")
        ss = np.random.SeedSequence(
            int(state["entropy"]),
            spawn_key=tuple(state["spawn_key"]),
            n_children_spawned=int(state["n_children_spawned"]),
        )
        self._seed_seq = ss
        self._key = (int(state["key"][0]), int(state["key"][1]))
        self._counter = int(state["counter"])

    def spawn(self, n_children: int) -> list["Generator"]:
        """``n_children`` independent generators (NumPy's ``SeedSequence.spawn``)."""
        if isinstance(n_children, bool) or not isinstance(n_children, numbers.Integral) or n_children < 0:
            raise ValueError(f"n_children must be a non-negative int, got {n_children!r}")
        return [Generator(_seed_seq=s) for s in self._seed_seq.spawn(int(n_children))]

    def __repr__(self) -> str:
        return f"bionp.random.Generator(key=({self._key[0]:#x}, {self._key[1]:#x}), counter={self._counter})"

    # -- raw bits ----------------------------------------------------------------
    def random_raw(self, n: int, *, xp=None):
        """``n`` raw uint64 words of the stream (flat array)."""
        xp = xp or get_xp()
        n = int(n)
        n_blocks = -(-n // 4)
        words = _raw_blocks(xp, self._key, self._counter, n_blocks)
        self._counter += n_blocks
        return words[:n]

    def _uint32(self, n: int, xp):
        """``n`` uint32 words: each uint64 split low half first (NumPy's order)."""
        words = self.random_raw(-(-n // 2), xp=xp)
        return words.view(xp.uint32)[:n]

    # -- distributions --------------------------------------------------------------
    def uniform(self, low=0.0, high=1.0, size=None, *, dtype=None, xp=None):
        """Uniform on ``[low, high)``: ``low + (high - low) * u`` with ``u`` in ``[0, 1)``.

        ``low`` and ``high`` must be real and finite (numbers or arrays that broadcast
        against ``size``).
        """
        _check_param("low", low)
        _check_param("high", high)
        xp = xp or get_xp()
        dt = resolve_dtype(dtype)
        shape = _size_tuple(size)
        u = self.random(shape, dtype=dt, xp=xp)
        if not (_is_number(low) and _is_number(high) and low == 0.0 and high == 1.0):
            u *= _as_param(xp, high, dt) - _as_param(xp, low, dt)
            u += _as_param(xp, low, dt)
        return u

    def random(self, size=None, *, dtype=None, xp=None):
        """Uniform floats in ``[0, 1)`` (``numpy.random.Generator.random``)."""
        xp = xp or get_xp()
        dt = resolve_dtype(dtype)
        shape = _size_tuple(size)
        n = int(np.prod(shape, dtype=np.int64))
        return self._uniform_flat(n, dt, xp).reshape(shape)

    def _uniform_flat(self, n: int, dt, xp, out=None):
        """``n`` uniforms as a flat array (``out`` if given), advancing the counter by
        the blocks they use; on NumPy filled by the compiled kernel, one contiguous
        chunk per thread (the same numbers for any thread count)."""
        per_block = _per_block(dt)
        n_blocks = -(-n // per_block)
        counter = self._counter
        fast = philox_fast_available(xp)
        if out is None and fast:
            out = xp.empty(n, dtype=dt)
        if fast:  # ``out`` (from normal) was checked to be on ``xp``
            _run_chunks(lambda a, b: _uniform_range(xp, self._key, counter, out[a:b], a), n)
            self._counter += n_blocks
            return out
        if dt == np.float64:
            bits = self.random_raw(n, xp=xp)
            u = (bits >> xp.uint64(11)).astype(xp.float64)
            u *= 1.0 / 9007199254740992.0
        else:
            bits = self._uint32(n, xp)
            u = (bits >> xp.uint32(8)).astype(xp.float32)
            u *= np.float32(1.0 / 16777216.0)
        if out is not None:
            out[...] = u
            return out
        return u

    def normal(self, loc=0.0, scale=1.0, size=None, *, dtype=None, xp=None, out=None):
        r"""Normal draws by Box–Muller: :math:`z = \sqrt{-2\ln(1-u_1)}\,\cos(2\pi u_2)` and
        the matching :math:`\sin`; returns ``loc + scale * z``.

        For ``n`` draws, ``m = ⌈n/2⌉`` pairs: the first ``m`` uniforms of the stream are
        the :math:`u_1`, the next ``m`` the :math:`u_2`; draw ``i < m`` is the cosine
        of pair ``i``, draw ``m + i`` the sine of pair ``i``.  The uniforms are
        written into the result and transformed there in place.  On NumPy each thread
        (:func:`set_num_threads`) takes one contiguous range of pairs and, piece by
        cache-sized piece, draws that piece's :math:`u_1` and :math:`u_2` and transforms
        them while they are in cache; the numbers do not depend on the pieces or the
        threads.

        ``out``, optional: a C-contiguous array of shape ``size`` and the dtype on
        the backend, written in place and returned (no allocation).
        """
        _check_param("loc", loc)
        _check_param("scale", scale, nonnegative=True)
        xp = xp or get_xp()
        dt = resolve_dtype(dtype)
        shape = _size_tuple(size)
        n = int(np.prod(shape, dtype=np.int64))
        if out is not None:
            _check_out(out, shape, dt, xp)
        half = -(-n // 2)
        # the result holds u1 | u2 and is transformed in place; an odd n needs one more slot
        direct = out is not None and n % 2 == 0
        z = out.reshape(-1) if direct else None
        # scalar scale/loc are applied piece by piece; array ones after the transform
        s = dt.type(scale) if _is_number(scale) and scale != 1.0 else None
        c = dt.type(loc) if _is_number(loc) and loc != 0.0 else None

        def transform(a, b):
            r = xp.subtract(1, z[a:b])  # 1 - u1 in (0, 1]
            xp.log(r, out=r)
            r *= -2
            xp.sqrt(r, out=r)
            cos_part, sin_part = z[a:b], z[half + a:half + b]
            sin_part *= dt.type(2 * np.pi)
            xp.cos(sin_part, out=cos_part)
            xp.sin(sin_part, out=sin_part)
            for part in (cos_part, sin_part):
                part *= r
                if s is not None:
                    part *= s
                if c is not None:
                    part += c

        if philox_fast_available(xp):
            if z is None:
                z = xp.empty(2 * half, dtype=dt)
            key, counter = self._key, self._counter

            def pairs(a, b):  # draw and transform pairs a..b-1, piece by piece
                for p in range(a, b, _PIECE):
                    q = min(p + _PIECE, b)
                    _uniform_range(xp, key, counter, z[p:q], p)
                    _uniform_range(xp, key, counter, z[half + p:half + q], half + p)
                    transform(p, q)

            _run_chunks(pairs, half)
            self._counter += -(-(2 * half) // _per_block(dt))
        else:
            z = self._uniform_flat(2 * half, dt, xp, out=z)
            if half:
                transform(0, half)
        z = z[:n].reshape(shape)  # array scale/loc broadcast against the result's shape
        if not _is_number(scale):
            z *= _as_param(xp, scale, dt)
        if not _is_number(loc):
            z += _as_param(xp, loc, dt)
        if out is not None:
            if not direct:
                out[...] = z
            return out
        return z

    standard_normal = normal

    def laplace(self, loc=0.0, scale=1.0, size=None, *, dtype=None, xp=None):
        r"""Laplace draws by inversion: :math:`loc - b\,\mathrm{sign}(u)\ln(1 - 2|u|)`, ``u`` in (-½, ½)."""
        _check_param("loc", loc)
        _check_param("scale", scale, nonnegative=True)
        xp = xp or get_xp()
        dt = resolve_dtype(dtype)
        u = self.random(size, dtype=dt, xp=xp)
        u -= dt.type(0.5)
        mag = xp.abs(u)
        mag *= -2
        mag += 1
        xp.maximum(mag, xp.finfo(dt).tiny, out=mag)  # u = -1/2 exactly
        xp.log(mag, out=mag)
        z = -xp.sign(u) * mag
        z *= _as_param(xp, scale, dt)
        z += _as_param(xp, loc, dt)
        return z

    def integers(self, low, high=None, size=None, *, dtype=np.int64, xp=None):
        """Uniform integers in ``[low, high)`` (``[0, low)`` if ``high`` is None), unbiased.

        Lemire's method: for range ``R`` and a 64-bit word ``r``, the value is the
        high half of ``r * R``; words whose low half falls below ``2**64 mod R`` are
        redrawn (probability < R / 2**64).
        """
        xp = xp or get_xp()
        if high is None:
            low, high = 0, low
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {v!r}")
        low, high = int(low), int(high)
        rng = high - low
        if rng <= 0:
            raise ValueError(f"integers needs low < high, got low={low}, high={high}")
        if rng > (1 << 64):
            raise ValueError("integers supports ranges up to 2**64")
        shape = _size_tuple(size)
        n = int(np.prod(shape, dtype=np.int64))
        out = xp.empty(n, dtype=xp.uint64)
        if rng == (1 << 64):
            out[...] = self.random_raw(n, xp=xp)
        else:
            threshold = ((1 << 64) - rng) % rng  # 2**64 mod R
            todo = None
            words = self.random_raw(n, xp=xp)
            hi, lo = _mulhilo(xp, words, rng)
            out[...] = hi
            bad = lo < xp.uint64(threshold)
            n_bad = int(to_scalar(xp.count_nonzero(bad))) if threshold else 0
            while n_bad:
                todo = xp.nonzero(bad)[0]
                words = self.random_raw(n_bad, xp=xp)
                hi, lo = _mulhilo(xp, words, rng)
                out[todo] = hi
                still = lo < xp.uint64(threshold)
                bad = xp.zeros(n, dtype=bool)
                bad[todo] = still
                n_bad = int(to_scalar(xp.count_nonzero(still)))
        dt = np.dtype(dtype)
        if low >= 0 and high - 1 <= np.iinfo(dt).max:
            res = out.astype(dt)
            if low:
                res += dt.type(low)
        else:
            res = (out.astype(xp.int64) + xp.int64(low)).astype(dt) if low > -(1 << 63) else out
        return res.reshape(shape)

    def permutation(self, n, *, xp=None):
        """A random permutation of ``arange(n)`` (if ``n`` is an int) or of ``n``'s first axis."""
        xp = xp or get_xp()
        if isinstance(n, numbers.Integral) and not isinstance(n, bool):
            if n < 0:
                raise ValueError(f"permutation needs n >= 0, got {n}")
            keys = self.random_raw(int(n), xp=xp)
            return xp.argsort(keys, kind="stable")
        arr = n
        xp = get_array_module(arr)
        keys = self.random_raw(arr.shape[0], xp=xp)
        return arr[xp.argsort(keys, kind="stable")]

    def shuffle_index(self, n, *, xp=None):
        """Alias of :meth:`permutation` for an int ``n``."""
        return self.permutation(int(n), xp=xp)

    def choice(self, a, size=None, replace=True, p=None, *, xp=None):
        """Draws from ``arange(a)`` (int) or from array ``a``'s first axis.

        ``replace=False`` takes the first ``size`` entries of a random permutation;
        ``p`` (with replacement) samples by inverse CDF.
        """
        xp = xp or get_xp()
        pool = None
        if isinstance(a, numbers.Integral) and not isinstance(a, bool):
            n = int(a)
        else:
            pool = a
            xp = get_array_module(a)
            n = a.shape[0]
        if n <= 0:
            raise ValueError("choice needs a non-empty population")
        shape = _size_tuple(size)
        k = int(np.prod(shape, dtype=np.int64))
        if not replace:
            if p is not None:
                raise NotImplementedError("choice(replace=False) with probabilities p is not supported")
            if k > n:
                raise ValueError(f"cannot take {k} samples without replacement from {n}")
            idx = self.permutation(n, xp=xp)[:k]
        elif p is None:
            idx = self.integers(0, n, k, xp=xp)
        else:
            p = asarray(p, dtype=np.float64, xp=xp)
            if p.shape != (n,):
                raise ValueError(f"p must have shape ({n},), got {tuple(p.shape)}")
            cdf = xp.cumsum(p)
            cdf /= cdf[-1]
            u = self.random(k, dtype=np.float64, xp=xp)
            idx = xp.minimum(xp.searchsorted(cdf, u, side="right"), n - 1)
        idx = idx.reshape(shape)
        return idx if pool is None else pool[idx]


# -- pieces and threads (NumPy) ---------------------------------------------------------
_PIECE = 1 << 15  # elements per piece of work: small enough to stay in cache
_THREADED_MIN = 1 << 17  # below this many elements one thread does everything
_num_threads = None
_pool = None
_pool_threads = 0
_pool_pid = None  # a forked child must not reuse its parent's pool (its threads are gone)
_pool_lock = threading.Lock()


def _default_threads() -> int:
    env = os.environ.get("BIONP_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"BIONP_NUM_THREADS must be a positive int, got {env!r}") from None
        if n < 1:
            raise ValueError(f"BIONP_NUM_THREADS must be a positive int, got {env!r}")
        return n
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(os.cpu_count() or 1, 8))


def get_num_threads() -> int:
    """Threads the NumPy backend uses for large draws (``BIONP_NUM_THREADS``, else the
    CPUs available, at most 8)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the threads used for large draws on NumPy; the numbers drawn do not change."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"number of threads must be a positive int, got {n!r}")
    _num_threads = int(n)


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


def _run_chunks(fn, n: int) -> None:
    """``fn(a, b)`` over ``[0, n)`` cut into one contiguous chunk per thread (a single
    call below ``_THREADED_MIN`` elements or with one thread)."""
    threads = get_num_threads() if n >= _THREADED_MIN else 1
    if threads == 1 or n == 0:
        if n:
            fn(0, n)
        return
    step = -(-n // threads)
    bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
    _run_pieces(lambda ab: fn(*ab), bounds)


def _run_pieces(fn, starts) -> None:
    """``fn(start)`` for every start; in a thread pool when there are several and
    threads are enabled (NumPy's ufuncs and Philox release the GIL)."""
    global _pool, _pool_threads, _pool_pid
    starts = list(starts)
    threads = get_num_threads()
    if len(starts) <= 1 or threads == 1:
        for a in starts:
            fn(a)
        return
    with _pool_lock:
        if _pool is None or _pool_threads != threads or _pool_pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bionp-random")
            _pool_threads, _pool_pid = threads, os.getpid()
        pool = _pool
    for f in [pool.submit(fn, a) for a in starts]:
        f.result()


def _check_out(out, shape, dt, xp) -> None:
    if not is_array(out) or get_array_module(out) is not xp:
        raise TypeError(f"out must be an array of the {getattr(xp, '__name__', xp)} backend, got "
                        f"{type(out).__name__}")
    if tuple(out.shape) != shape or out.dtype != dt:
        raise ValueError(f"out must have shape {shape} and dtype {dt.name}, got shape "
                         f"{tuple(out.shape)} and dtype {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Number)


def _check_param(name: str, value, *, nonnegative: bool = False) -> None:
    """Refuse a distribution parameter that is not real and finite (and, for a scale,
    non-negative), before any number is drawn: the generator's counter stays put."""
    if _is_number(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if nonnegative and value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        return
    a = value if is_array(value) else np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    check_finite(a, name, "distribution parameters must be finite")
    if nonnegative and a.size and a.dtype.kind != "u":
        xp = get_array_module(a) if is_array(value) else np
        if to_scalar(xp.min(a)) < 0:
            raise ValueError(f"{name} must be non-negative, got a minimum of "
                             f"{to_scalar(xp.min(a))}")


def _as_param(xp, v, dt):
    if _is_number(v):
        return dt.type(v)
    return asarray(v, dtype=dt, xp=xp) if not is_array(v) else v.astype(dt, copy=False)


def named_stream(seed: int, name: str) -> Generator:
    """A generator for the stream called ``name`` of ``seed``: NumPy's ``SeedSequence(seed,
    spawn_key=(crc32(name),))``.

    Differently named streams are independent, so an experiment's initialisation, batch
    order, test-image choice and a rule's noise need not start from the same raw numbers;
    the same ``(seed, name)`` always starts the same stream (a fresh generator per call:
    every rule of an example can start from the same initial weights)."""
    import zlib

    if not isinstance(name, str) or not name:
        raise ValueError(f"stream name must be a non-empty str, got {name!r}")
    _check_seed(seed)
    key = (zlib.crc32(name.encode()),)
    return Generator(_seed_seq=np.random.SeedSequence(int(seed), spawn_key=key))


def default_rng(seed: "int | Generator | None" = None) -> Generator:
    """``Generator(seed)``; a Generator passed in is returned as it is."""
    if isinstance(seed, Generator):
        return seed
    return Generator(seed)


def check_rng(rng: "int | Generator | None") -> Generator:
    """SPEC 7: turn an ``rng=`` argument (int seed, Generator or None) into a Generator."""
    if rng is None or isinstance(rng, Generator):
        return default_rng(rng)
    _check_seed(rng)
    return Generator(rng)
