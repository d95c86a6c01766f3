r"""The :class:`Generator` of :mod:`bionp.random`: seeding, state and distributions.

The generator's state is a key and a counter; every draw evaluates whole blocks of the
Philox4x64-10 stream (:mod:`bionp.random.philox`) and turns their words into numbers.

Seeding follows NumPy: the key is ``SeedSequence(seed).generate_state(2, uint64)``, so
``Generator(s)`` produces exactly the raw stream of ``numpy.random.Philox(s)``;
:meth:`Generator.spawn` uses ``SeedSequence.spawn`` for independent children, and
:func:`named_stream` ``SeedSequence(seed, spawn_key=(crc32(name),))``.

Conversions
-----------
* ``uniform`` float64: :math:`(r \gg 11)\,2^{-53}`; float32: each 64-bit word
  gives two numbers, low 32 bits first, :math:`(u_{32} \gg 8)\,2^{-24}` (NumPy's
  conventions, so both equal ``numpy.random.Generator(Philox(s)).random``).
* ``normal``: Box–Muller on pairs of uniforms (vectorised; :mod:`bionp.random._normal`):
  float32 normals take correctly rounded ``log``/``cos``/``sin`` (float64, rounded once),
  so they are bit-identical on every backend and CPU; float64 agree to a few ulp.
* ``integers``: Lemire's multiply-shift with rejection, unbiased.
* ``permutation``/``choice(replace=False)``: argsort of 64-bit random keys.

Each call uses whole blocks: a draw of ``n`` words advances the counter by
``⌈n/4⌉`` and discards the rest of the last block."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from bionp import _cuda_kernels
from bionp.backend import asarray, get_array_module, get_xp, is_array, resolve_dtype, to_scalar
from bionp.kernels import (
    cuda_kernels_enabled,
    philox_fast_available,
    philox_fill_available,
    philox_fill_normal,
    philox_fill_rademacher,
    philox_fill_uniform,
)
from bionp.random._arguments import as_param as _as_param
from bionp.random._arguments import check_out as _check_out
from bionp.random._arguments import check_param as _check_param
from bionp.random._arguments import check_seed as _check_seed
from bionp.random._arguments import count as _count
from bionp.random._arguments import is_number as _is_number
from bionp.random._arguments import size_tuple as _size_tuple
from bionp.random._normal import transform as _transform
from bionp.random.philox import _mulhilo, _per_block, _raw_blocks, _uniform_range
from bionp.random.threads import _PIECE, _run_chunks

__all__ = ["Generator", "default_rng", "check_rng", "named_stream"]


class Generator:
    """Counter-based Philox4x64-10 random generator, identical on every backend.

    Parameters
    ----------
    seed : int >= 0 or None
        ``None`` takes fresh entropy from the operating system.

    Notes
    -----
    Arrays are created on the active backend (``bionp.get_xp()``) unless a draw is given ``xp=``;
    the default float dtype is ``bionp.get_dtype()``. The state is the key and a counter:
    :meth:`get_state` / :meth:`set_state` save and restore it exactly (checkpoints use them).
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
        """Restore a state returned by :meth:`get_state` (checked whole before anything changes)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a Generator.get_state() dict, got {state!r}")
        if state.get("bit_generator") != "Philox4x64-10":
            raise ValueError(f"state is not a Philox4x64-10 state: {state.get('bit_generator')!r}")
        try:
            ss = np.random.SeedSequence(int(state["entropy"]), spawn_key=tuple(state["spawn_key"]),
                                        n_children_spawned=int(state["n_children_spawned"]))
            key = (int(state["key"][0]), int(state["key"][1]))
            counter = int(state["counter"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"state is not a complete Generator.get_state() dict: "
                             f"{type(exc).__name__}: {exc}") from None
        if counter < 0 or not all(0 <= k < 2**64 for k in key):
            raise ValueError(f"state has counter={counter} < 0 or key={key} outside 64 bits")
        self._seed_seq, self._key, self._counter = ss, key, counter

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
    @staticmethod
    def _target(size, dtype, xp, out):
        """``(xp, dtype, shape, n)`` of a draw, with ``out`` checked (``size=None`` with an
        ``out`` takes ``out``'s shape); raises before anything is drawn."""
        xp = xp or get_xp()
        dt = resolve_dtype(dtype)
        shape = tuple(out.shape) if size is None and is_array(out) else _size_tuple(size)
        n = _count(shape)
        if out is not None:
            _check_out(out, shape, dt, xp)
        return xp, dt, shape, n

    def uniform(self, low=0.0, high=1.0, size=None, *, dtype=None, xp=None, out=None):
        """Uniform on ``[low, high)``: ``low + (high - low) * u`` with ``u`` in ``[0, 1)``.

        ``low`` and ``high`` must be real and finite (numbers or arrays that broadcast
        against ``size``).  ``out``: see :meth:`random`."""
        _check_param("low", low)
        _check_param("high", high)
        xp, dt, shape, _ = self._target(size, dtype, xp, out)
        u = self.random(shape, dtype=dt, xp=xp, out=out)
        if not (_is_number(low) and _is_number(high) and low == 0.0 and high == 1.0):
            u *= _as_param(xp, high, dt) - _as_param(xp, low, dt)
            u += _as_param(xp, low, dt)
        return u

    def random(self, size=None, *, dtype=None, xp=None, out=None):
        """Uniform floats in ``[0, 1)`` (``numpy.random.Generator.random``).

        ``out``, optional: a writeable C-contiguous array of shape ``size`` (``size=None``:
        ``out``'s shape) and dtype ``dtype`` on the backend, filled in place and returned;
        a refused ``out`` raises before the counter moves."""
        xp, dt, shape, n = self._target(size, dtype, xp, out)
        flat = None if out is None else out.reshape(-1)
        u = self._uniform_flat(n, dt, xp, out=flat)
        return out if out is not None else u.reshape(shape)

    def _uniform_flat(self, n: int, dt, xp, out=None):
        """``n`` uniforms as a flat array (``out`` if given), advancing the counter by the blocks
        they use; on NumPy filled by a compiled kernel (Numba's one-pass kernel, else NumPy's
        Philox), one contiguous chunk per thread (the same numbers for any thread count)."""
        per_block = _per_block(dt)
        n_blocks = -(-n // per_block)
        key, counter = self._key, self._counter
        fast = philox_fast_available(xp)
        if out is None and fast:
            out = xp.empty(n, dtype=dt)
        if philox_fill_available(xp):  # ``out`` was checked to be on ``xp``
            _run_chunks(lambda a, b: philox_fill_uniform(key, counter, out[a:b], a), n)
            self._counter += n_blocks
            return out
        if fast:
            _run_chunks(lambda a, b: _uniform_range(xp, key, counter, out[a:b], a), n)
            self._counter += n_blocks
            return out
        if cuda_kernels_enabled(xp):  # one launch (bionp._cuda_kernels), the same bits
            if out is None:
                out = xp.empty(n, dtype=dt)
            _cuda_kernels.philox_uniform(xp, key, counter, out)
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

    def rademacher(self, size=None, scale=1.0, *, dtype=None, xp=None, out=None):
        r"""``±scale`` with equal probability, one random bit each (64 per word).

        Value :math:`i` is :math:`b_i\,(2s) - s` with :math:`b_i` bit :math:`i \bmod 64` of
        word :math:`\lfloor i/64 \rfloor` of the stream; a draw of ``n`` values uses
        :math:`\lceil n/64 \rceil` words (the counter advances by :math:`\lceil n/256
        \rceil` blocks).  ``scale``: a finite number >= 0.  ``out``: see :meth:`random`."""
        _check_param("scale", scale, nonnegative=True)
        if not _is_number(scale):
            raise TypeError(f"scale must be a number, got {type(scale).__name__}")
        xp, dt, shape, n = self._target(size, dtype, xp, out)
        if philox_fill_available(xp):
            z = xp.empty(n, dtype=dt) if out is None else out.reshape(-1)
            key, counter = self._key, self._counter
            _run_chunks(lambda a, b: philox_fill_rademacher(key, counter, z[a:b], a, scale), n)
            self._counter += -(-n // 256)
            return out if out is not None else z.reshape(shape)
        words = self.random_raw(-(-n // 64), xp=xp)
        octets = words.view(xp.uint8)
        bits = (octets[:, None] >> xp.arange(8, dtype=xp.uint8)[None, :]) & xp.uint8(1)
        z = bits.reshape(-1)[:n].astype(dt)
        z *= dt.type(2 * scale)
        z -= dt.type(scale)
        if out is not None:
            out[...] = z.reshape(shape)
            return out
        return z.reshape(shape)

    def normal(self, loc=0.0, scale=1.0, size=None, *, dtype=None, xp=None, out=None):
        r"""Normal draws by Box–Muller: :math:`z = \sqrt{-2\ln(1-u_1)}\,\cos(2\pi u_2)` and
        the matching :math:`\sin`; returns ``loc + scale * z``.

        For ``n`` draws, ``m = ⌈n/2⌉`` pairs: the first ``m`` uniforms of the stream are the
        :math:`u_1`, the next ``m`` the :math:`u_2`; draw ``i < m`` is the cosine of pair ``i``,
        draw ``m + i`` the sine of pair ``i``.  On NumPy each thread (:func:`set_num_threads`)
        takes one contiguous range of pairs and, piece by cache-sized piece, draws that piece's
        :math:`u_1` and :math:`u_2` and transforms them while they are in cache (with Numba: one
        compiled pass per piece, :mod:`bionp._random_kernels`); the numbers do not depend on
        the pieces, the threads or the kernel.  float32: :math:`\ln, \cos, \sin` are the
        correctly rounded float32 values (float64 evaluations rounded once, exact on the whole
        input domain: :mod:`bionp.random._normal`), bit-identical on every backend and CPU.

        ``out``, optional: a writeable C-contiguous array of shape ``size`` (``size=None``:
        ``out``'s shape) and dtype ``dtype`` on the backend, written in place and returned
        (no allocation); a refused ``out`` or parameter raises before the counter moves."""
        _check_param("loc", loc)
        _check_param("scale", scale, nonnegative=True)
        xp, dt, shape, n = self._target(size, dtype, xp, out)
        half = -(-n // 2)
        # the result holds u1 | u2 and is transformed in place; an odd n needs one more slot
        direct = out is not None and n % 2 == 0
        z = out.reshape(-1) if direct else None
        # scalar scale/loc are applied piece by piece; array ones after the transform
        s = dt.type(scale) if _is_number(scale) and scale != 1.0 else None
        c = dt.type(loc) if _is_number(loc) and loc != 0.0 else None

        def transform(a, b):  # the definition (bionp.random._normal)
            _transform(xp, z, a, b, half, s, c)

        if philox_fill_available(xp, dt, normal=True):  # one compiled pass, no u1|u2 slot
            key, counter = self._key, self._counter
            z = xp.empty(n, dtype=dt) if out is None else out.reshape(-1)
            direct = out is not None
            _run_chunks(lambda a, b: philox_fill_normal(key, counter, z, n, a, b, s, c), half)
            self._counter += -(-(2 * half) // _per_block(dt))
        elif philox_fast_available(xp):
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
            if half and cuda_kernels_enabled(xp):  # one launch, the array code's operations
                _cuda_kernels.box_muller(xp, z, half, s, c)
            elif half:
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
        redrawn (probability < R / 2**64)."""
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
        n = _count(shape)
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
        if not is_array(arr) or arr.ndim == 0:
            raise TypeError(f"permutation needs n, an int >= 0 or an array of at least one "
                            f"dimension, got {type(n).__name__} {n!r}")
        xp = get_array_module(arr)
        keys = self.random_raw(arr.shape[0], xp=xp)
        return arr[xp.argsort(keys, kind="stable")]

    def shuffle_index(self, n, *, xp=None):
        """Alias of :meth:`permutation` for an int ``n``."""
        return self.permutation(int(n), xp=xp)

    def choice(self, a, size=None, replace=True, p=None, *, xp=None):
        """Draws from ``arange(a)`` (int) or from array ``a``'s first axis.

        ``replace=False`` takes the first ``size`` entries of a random permutation;
        ``p`` (with replacement) samples by inverse CDF."""
        xp = xp or get_xp()
        pool = None
        if isinstance(a, numbers.Integral) and not isinstance(a, bool):
            n = int(a)
        else:
            if not is_array(a) or a.ndim == 0:
                raise TypeError(f"choice needs a, an int >= 1 or an array of at least one "
                                f"dimension, got {type(a).__name__} {a!r}")
            pool = a
            xp = get_array_module(a)
            n = a.shape[0]
        if n <= 0:
            raise ValueError(f"choice needs a non-empty population a, got {a!r}")
        shape = _size_tuple(size)
        k = _count(shape)
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


def named_stream(seed: int, name: str) -> Generator:
    """A generator for the stream called ``name`` of ``seed``: NumPy's ``SeedSequence(seed,
    spawn_key=(crc32(name),))``.

    Differently named streams are independent, so an experiment's initialisation, batch
    order, test-image choice and a rule's noise need not start from the same raw numbers;
    the same ``(seed, name)`` always starts the same stream (a fresh generator per call:
    every rule of an example can start from the same initial weights).

    Parameters
    ----------
    seed : int >= 0
    name : str, not empty"""
    import zlib

    if not isinstance(name, str) or not name:
        raise ValueError(f"stream name must be a non-empty str, got {name!r}")
    _check_seed(seed)
    key = (zlib.crc32(name.encode()),)
    return Generator(_seed_seq=np.random.SeedSequence(int(seed), spawn_key=key))


def default_rng(seed: "int | Generator | None" = None) -> Generator:
    """``Generator(seed)``; a Generator passed in is returned as it is.

    Parameters
    ----------
    seed : int >= 0, bionp.random.Generator or None
        ``None`` takes fresh entropy from the operating system."""
    if isinstance(seed, Generator):
        return seed
    return Generator(seed)


def check_rng(rng: "int | Generator | None", name: str = "rng") -> Generator:
    """SPEC 7: turn an ``rng=`` argument (int seed, Generator or None) into a Generator.

    Parameters
    ----------
    rng : int >= 0, bionp.random.Generator or None
    name : str, default "rng"
        The argument's name, used in error messages."""
    if rng is None or isinstance(rng, Generator):
        return default_rng(rng)
    _check_seed(rng, name)
    return Generator(rng)
