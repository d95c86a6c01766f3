"""Compiled kernels behind the array API: which implementation runs on each backend.

Code written against ``xp`` calls these functions where NumPy, the strict stand-in and
CuPy need different implementations of the same operation: NumPy's own Philox for the
generator's blocks and uniforms, Numba's kernels (:mod:`bionp._kernels`, the ``[fast]``
extra; ``BIONP_NUMBA=0`` turns them off) or SciPy's CSR products for the dendritic
layer's sparse products, and a ``take`` into a caller's buffer.  Each function returns
the same numbers as the plain array code (bit for bit where the arithmetic is the same,
which the tests check) or says that the backend has no kernel, so that the caller
computes with plain ``xp`` (CuPy today).  The backend of an array comes from
:mod:`bionp.backend`; this module never imports CuPy.
"""

from __future__ import annotations

import os
import threading
import types
from typing import Any

import numpy as np

from bionp import _cuda_kernels
from bionp.backend import module_name

__all__ = [
    "cuda_kernels_enabled",
    "philox_fast_available",
    "philox_fill_available",
    "philox_fill_normal",
    "philox_fill_rademacher",
    "philox_fill_uniform",
    "philox_raw_fast",
    "philox_uniform_fast",
    "sparse_rows_dot",
    "sparse_rows_dot_available",
    "sparse_rows_matmul",
    "sparse_rows_matmul_available",
    "take_rows",
]


def philox_raw_fast(xp: types.ModuleType, key: tuple[int, int], counter: int, n_blocks: int):
    """Philox4x64-10 blocks for counters ``counter+1 … counter+n_blocks`` from a compiled
    kernel, or ``None`` where the backend has none (then :mod:`bionp.random` computes
    them with array arithmetic).

    On NumPy this is NumPy's own C implementation of the same function
    (:class:`numpy.random.Philox` with an explicit key and counter); the tests
    check it against bionp's array implementation bit for bit.

    Parameters
    ----------
    xp : module
    key : tuple of int
        The two 64-bit key words.
    counter : int
        The counter before the first block.
    n_blocks : int
        Number of 4-word blocks.
    """
    if cuda_kernels_enabled(xp):  # one launch: bionp._cuda_kernels.philox_raw
        out = xp.empty(4 * n_blocks, dtype=xp.uint64)
        _cuda_kernels.philox_raw(xp, key, counter, out)
        return out
    if xp is not np:
        return None
    return _philox_at(key, counter).random_raw(4 * n_blocks)


_philox_local = threading.local()


def _philox_at(key: tuple[int, int], counter: int):
    """This thread's NumPy ``Philox`` bit generator set to ``key`` and ``counter`` (the
    next block it computes is ``counter + 1``); reused, so no seeding cost per call."""
    bitgen = getattr(_philox_local, "bitgen", None)
    if bitgen is None:
        bitgen = _philox_local.bitgen = np.random.Philox(key=np.zeros(2, dtype=np.uint64))
        _philox_local.generator = np.random.Generator(bitgen)
    c = counter % (1 << 256)
    bitgen.state = {
        "bit_generator": "Philox",
        "state": {"counter": np.array([(c >> (64 * j)) & 0xFFFFFFFFFFFFFFFF for j in range(4)],
                                      dtype=np.uint64),
                  "key": np.array(key, dtype=np.uint64)},
        "buffer": np.zeros(4, dtype=np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0,
    }
    return bitgen


def philox_fast_available(xp: types.ModuleType) -> bool:
    """Whether ``xp`` has compiled Philox kernels (:func:`philox_raw_fast`,
    :func:`philox_uniform_fast`): NumPy only.

    Parameters
    ----------
    xp : module
    """
    return xp is np


def philox_uniform_fast(xp: types.ModuleType, key: tuple[int, int], counter: int, out) -> bool:
    """Fill the contiguous 1-D float32/float64 array ``out`` with the uniforms of
    Philox4x64-10 blocks ``counter+1 …`` in bionp's conversion (float64
    ``(r >> 11) 2**-53``; float32 two per word, low half first, ``(u >> 8) 2**-24``),
    in one compiled pass; ``False`` (nothing written) where the backend has no kernel.

    On NumPy the float64 numbers come from ``numpy.random.Generator(Philox).random``
    (whose conversion is exactly this), the float32 ones from the raw words converted
    in place; the tests check both against the array path and NumPy's generator.

    Parameters
    ----------
    xp : module
        The array module of ``out``.
    key : tuple of int
        The two 64-bit key words.
    counter : int
        The counter before the first block.
    out : array
        The array to fill.
    """
    if xp is not np or not isinstance(out, np.ndarray):
        return False
    bitgen = _philox_at(key, counter)
    n = out.shape[0]
    if out.dtype == np.float32:
        # faster than NumPy's per-number float32 loop: the words in one call, the shift in
        # place, and int32 -> float32 (exact below 2**24) fused with the scaling
        u = bitgen.random_raw(-(-n // 2)).view(np.uint32)[:n]
        np.right_shift(u, np.uint32(8), out=u)
        np.multiply(u.view(np.int32), np.float32(1.0 / 16777216.0), out=out, dtype=np.float32,
                    casting="unsafe")
    else:
        _philox_local.generator.random(n, dtype=out.dtype, out=out)
    return True


# --------------------------------------------------------------------------
# compiled Philox straight into a caller's buffer (Numba: bionp._random_kernels)
# --------------------------------------------------------------------------

def _random_kernels(xp):
    if xp is not np:
        return None
    from bionp import _random_kernels  # noqa: PLC0415  (imports Numba only when first used)

    return _random_kernels.load()


def philox_fill_available(xp: types.ModuleType, dtype=None, normal: bool = False) -> bool:
    """Whether :func:`philox_fill_uniform` (and, with ``normal=True``,
    :func:`philox_fill_normal` for ``dtype``) have a compiled kernel for ``xp``.

    True on NumPy with Numba installed and ``BIONP_NUMBA`` not ``0``.

    Parameters
    ----------
    xp : module
        The array module.
    dtype : float dtype, optional
        The dtype of the normals asked for (with ``normal=True``).
    normal : bool
        Ask about :func:`philox_fill_normal` too.
    """
    k = _random_kernels(xp)
    if k is None or not normal:
        return k is not None
    return "normal32" in k if np.dtype(dtype) == np.float32 else np.dtype(dtype) in k["loops"]


def _counter_words(block: int):
    """The 256-bit block counter ``block`` (mod 2**256) as four uint64 words, low first."""
    c = block % (1 << 256)
    return np.array([(c >> (64 * j)) & 0xFFFFFFFFFFFFFFFF for j in range(4)], dtype=np.uint64)


def _at(key, counter: int, start: int, per_block: int):
    """Key words, counter words of the block holding stream number ``start`` of the
    stream whose first block is ``counter + 1``, and ``start``'s place in that block."""
    block, skip = divmod(start, per_block)
    return np.array(key, dtype=np.uint64), _counter_words(counter + 1 + block), skip


def philox_fill_uniform(key: tuple[int, int], counter: int, out, start: int) -> None:
    """``out[i]`` = uniform number ``start + i`` (bionp's conversion: float64
    ``(r >> 11) 2**-53``, float32 two per word, low half first, ``(u >> 8) 2**-24``) of the
    stream whose first block is ``counter + 1``, in one compiled pass (no uint64 words in
    memory); ``out`` is a contiguous 1-D float32/float64 NumPy array.  Bit-identical to
    the array code (tested).

    Parameters
    ----------
    key : (int, int)
        The stream's two 64-bit key words.
    counter : int
        The generator's counter; the first block used is ``counter + 1``.
    out : numpy.ndarray
        Contiguous 1-D float32 or float64 destination.
    start : int
        Index in the stream of ``out[0]``.
    """
    k = _random_kernels(np)
    f32 = out.dtype == np.float32
    kw, cw, skip = _at(key, counter, start, 8 if f32 else 4)
    k["uniform"](kw, cw, skip, out)


def philox_fill_rademacher(key: tuple[int, int], counter: int, out, start: int,
                           scale) -> None:
    """``out[i]`` = :math:`b_i (2s) - s` (``s`` = ``scale`` in ``out``'s dtype) with
    :math:`b_i` bit ``(start + i) % 64`` of word ``(start + i) // 64`` of the stream whose
    first block is ``counter + 1``: ``±s``, 256 per block.

    Parameters
    ----------
    key : (int, int)
        The stream's two 64-bit key words.
    counter : int
        The generator's counter; the first block used is ``counter + 1``.
    out : numpy.ndarray
        Contiguous 1-D float32 or float64 destination.
    start : int
        Index in the stream of ``out[0]``.
    scale : float
        The magnitude ``s``.
    """
    k = _random_kernels(np)
    kw, cw, skip = _at(key, counter, start, 256)
    dt = out.dtype.type
    k["rademacher"](kw, cw, skip, dt(2 * scale), dt(scale), out)


def philox_fill_normal(key: tuple[int, int], counter: int, out, n: int, p: int, q: int,
                       scale=None, loc=None) -> None:
    r"""Box–Muller pairs ``p … q-1`` of a draw of ``n`` normals into the flat ``out``
    (length ``>= n``): ``out[i]`` :math:`= \sqrt{-2\ln(1-u_i)}\cos(2\pi u_{m+i})`,
    ``out[m+i]`` the sine (where ``m + i < n``), :math:`m = \lceil n/2\rceil`, then
    ``* scale`` and ``+ loc`` (each skipped when ``None``), every step rounded in ``out``'s
    dtype in the array code's order; :math:`\ln, \cos, \sin`: float32, the correctly
    rounded values by float64 polynomials (:mod:`bionp._box_muller`), float64, NumPy's own
    loops: bit-identical to :meth:`bionp.random.Generator.normal`'s array code.

    Parameters
    ----------
    key : (int, int)
        The stream's two 64-bit key words.
    counter : int
        The generator's counter; the first block used is ``counter + 1``.
    out : numpy.ndarray
        Contiguous 1-D float32 or float64 destination, length ``>= n``.
    n : int
        Normals in the whole draw.
    p, q : int
        The pairs this call computes (a thread's range).
    scale, loc : float or None
        Applied after the transform; ``None`` skips the step.
    """
    k, dt, half = _random_kernels(np), out.dtype, -(-n // 2)
    per_block = 8 if dt == np.float32 else 4
    kw, c1, s1 = _at(key, counter, p, per_block)
    _, c2, s2 = _at(key, counter, half + p, per_block)
    consts = np.array([1, -2, dt.type(2 * np.pi), 1 if scale is None else scale,
                       0 if loc is None else loc], dtype=dt)
    args = (kw, c1, s1, c2, s2, n, half, p, q, out, consts)
    if dt == np.float32:  # mode 0: z, 1: z * scale, 2: z * scale + loc
        k["normal32"](*args, 2 if loc is not None else int(scale is not None))
    else:
        k["normal"](*args, scale is not None, loc is not None, k["loops"][dt][1])


# --------------------------------------------------------------------------
# sparse products with a fixed number of nonzeros per row (dendritic layers)
# --------------------------------------------------------------------------

def cuda_kernels_enabled(xp: types.ModuleType) -> bool:
    """Whether ``xp`` is CuPy and bionp's CUDA kernels (:mod:`bionp._cuda_kernels`) are on.

    ``BIONP_CUDA_KERNELS=0`` turns them off, leaving the array code (the definition).

    Parameters
    ----------
    xp : module
        The array module of the arrays at hand.
    """
    return module_name(xp) == "cupy" and os.environ.get("BIONP_CUDA_KERNELS", "1") != "0"


def sparse_rows_matmul_available(xp: types.ModuleType) -> bool:
    """Whether :func:`sparse_rows_matmul` has a compiled kernel for ``xp``: NumPy and the
    strict stand-in (SciPy's CSR products), CuPy with :func:`cuda_kernels_enabled`.

    Parameters
    ----------
    xp : module
    """
    return module_name(xp) in ("numpy", "strict") or cuda_kernels_enabled(xp)


_csr_state: dict[str, Any] = {}


def _csr_kernels():
    """SciPy's compiled CSR/CSC products with a dense matrix (``csr_matvecs``,
    ``csc_matvecs``: the kernels behind ``csr_array @ ndarray``), or ``None`` if this
    SciPy does not have them under that name; calling them directly skips ~30 µs of
    sparse-array construction and checks per product."""
    if "kernels" not in _csr_state:
        try:
            from scipy.sparse import _sparsetools  # noqa: PLC0415

            _csr_state["kernels"] = (_sparsetools.csr_matvecs, _sparsetools.csc_matvecs)
        except (ImportError, AttributeError):  # pragma: no cover - other SciPy layouts
            _csr_state["kernels"] = None
    return _csr_state["kernels"]


def _compiled_kernels(*arrays):
    """Numba's kernels of :mod:`bionp._kernels` if they apply to these host arrays (one
    float32/float64 dtype for the float ones), else ``None``."""
    from bionp import _kernels  # noqa: PLC0415  (imports Numba only when first used)

    floats = {a.dtype for a in arrays if a.dtype.kind == "f"}
    if len(floats) != 1 or floats.pop() not in (np.float32, np.float64):
        return None
    return _kernels.load()


def _host_rows_matmul(weights, indices, n_cols: int, dense, transpose: bool):
    rows, per_row = weights.shape
    compiled = _compiled_kernels(weights, dense)
    if compiled is not None:
        w = np.ascontiguousarray(weights)
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        other = np.ascontiguousarray(dense)
        out = np.empty((n_cols if transpose else rows, other.shape[1]), dtype=w.dtype)
        compiled["rows_matmul_t" if transpose else "rows_matmul"](w, idx, other, out)
        return out
    index_dtype = np.int32 if max(n_cols, rows * per_row) < 2**31 - 1 else np.int64
    data = np.ascontiguousarray(weights).reshape(-1)
    cols = np.ascontiguousarray(indices).reshape(-1).astype(index_dtype, copy=False)
    indptr = np.arange(0, rows * per_row + 1, per_row, dtype=index_dtype)
    kernels = _csr_kernels()
    if kernels is not None and dense.dtype == data.dtype:
        other = np.ascontiguousarray(dense)
        out = np.zeros((n_cols if transpose else rows, other.shape[1]), dtype=data.dtype)
        if transpose:  # S.T is the CSC matrix (n_cols, rows) with S's three arrays
            kernels[1](n_cols, rows, other.shape[1], indptr, cols, data, other.reshape(-1),
                       out.reshape(-1))
        else:
            kernels[0](rows, n_cols, other.shape[1], indptr, cols, data, other.reshape(-1),
                       out.reshape(-1))
        return out
    import scipy.sparse  # noqa: PLC0415  (SciPy is a dependency; imported when first used)

    S = scipy.sparse.csr_array((data, cols, indptr), shape=(rows, n_cols), copy=False)
    return np.ascontiguousarray((S.T if transpose else S) @ dense)


def sparse_rows_matmul(xp: types.ModuleType, weights, indices, n_cols: int, dense,
                       transpose: bool = False):
    r"""Product of a sparse matrix with ``per_row`` nonzeros in every row and a dense one.

    The sparse matrix :math:`S` (``rows × n_cols``) has
    :math:`S_{k,\mathrm{indices}_{kj}} = \mathrm{weights}_{kj}` (the indices of a row
    distinct, in any order, and in ``[0, n_cols)``: they are not checked) and zeros
    elsewhere; returned is

    * :math:`S D` for ``dense`` :math:`D` of shape ``(n_cols, m)`` (``transpose=False``):
      :math:`(SD)_{k\cdot} = \sum_j \mathrm{weights}_{kj} D_{\mathrm{indices}_{kj},\cdot}`;
    * :math:`S^\top D` for ``dense`` of shape ``(rows, m)`` (``transpose=True``),

    C-contiguous, in the arrays' dtype, computed by a compiled kernel without
    materialising the ``(rows, per_row, m)`` gathered rows.  Returns ``None`` where the
    backend has no such kernel (CuPy; see :func:`sparse_rows_matmul_available`): the
    caller then gathers and multiplies with array operations.  On NumPy and the strict
    stand-in the kernel is SciPy's CSR product (or Numba's), so both give the same bits;
    on CuPy it is :func:`bionp._cuda_kernels.rows_matmul` (fixed summation order).

    Parameters
    ----------
    xp : module
        The array module of the arrays.
    weights : array
        ``(rows, per_row)`` nonzero values.
    indices : array
        ``(rows, per_row)`` integer column of each value.
    n_cols : int
        Number of columns of :math:`S`.
    dense : array
        :math:`D`, ``(n_cols, m)`` or, with ``transpose``, ``(rows, m)``.
    transpose : bool, default False
        Compute :math:`S^\top D` instead of :math:`S D`.
    """
    n_in = weights.shape[0] if transpose else n_cols  # checked once, for every backend
    if dense.ndim != 2 or dense.shape[0] != n_in:
        raise ValueError(f"sparse_rows_matmul: dense must have shape ({n_in}, m), got "
                         f"{tuple(dense.shape)}")
    name = module_name(xp)
    if name == "numpy":
        return _host_rows_matmul(weights, indices, n_cols, dense, transpose)
    if name == "strict":
        from bionp import _strict  # noqa: PLC0415

        return _strict.call_host(_host_rows_matmul, "sparse_rows_matmul", weights, indices,
                                 n_cols, dense, transpose)
    if cuda_kernels_enabled(xp):
        return _cuda_kernels.rows_matmul(xp, weights, indices, n_cols, dense, transpose)
    return None


def sparse_rows_dot_available(xp: types.ModuleType) -> bool:
    """Whether :func:`sparse_rows_dot` has a compiled kernel for ``xp``: NumPy and the strict
    stand-in with Numba installed (and ``BIONP_NUMBA`` not ``0``), CuPy with
    :func:`cuda_kernels_enabled`.

    Parameters
    ----------
    xp : module
    """
    from bionp import _kernels  # noqa: PLC0415

    if cuda_kernels_enabled(xp):
        return True
    return module_name(xp) in ("numpy", "strict") and _kernels.available()


def _host_rows_dot(indices, dense, other):
    rows, per_row = indices.shape
    compiled = _compiled_kernels(dense, other)
    if compiled is None:
        return None
    out = np.empty((rows, per_row), dtype=dense.dtype)
    compiled["rows_dot"](np.ascontiguousarray(indices, dtype=np.int64),
                         np.ascontiguousarray(dense), np.ascontiguousarray(other), out)
    return out


def sparse_rows_dot(xp: types.ModuleType, indices, dense, other):
    r"""The product :math:`E D^\top` sampled at ``indices``:
    :math:`P_{kj} = \sum_b \mathrm{other}_{kb}\, \mathrm{dense}_{\mathrm{indices}_{kj}, b}`.

    ``indices`` is ``(rows, per_row)`` (in ``[0, len(dense))``, checked by the kernel),
    ``dense`` ``(n, m)``, ``other`` ``(rows, m)``; the result is ``(rows, per_row)`` in
    their dtype.  This is the weight gradient of a layer whose row ``k`` reads inputs
    ``indices[k]`` (:mod:`bionp.dendritic.layer`), computed without gathering the
    ``(rows, per_row, m)`` rows.  Returns ``None`` where there is no compiled kernel
    (:func:`sparse_rows_dot_available`): the caller gathers and multiplies instead.

    Parameters
    ----------
    xp : module
        The array module of the arrays.
    indices : array
        ``(rows, per_row)`` integer row of ``dense`` per entry.
    dense : array
        ``(n, m)``.
    other : array
        ``(rows, m)``.
    """
    rows = indices.shape[0]  # checked once, for every backend
    if dense.ndim != 2 or other.ndim != 2 or other.shape != (rows, dense.shape[1]):
        raise ValueError(f"sparse_rows_dot: dense (n, m) and other ({rows}, m) expected, got "
                         f"{tuple(dense.shape)} and {tuple(other.shape)}")
    name = module_name(xp)
    if name == "numpy":
        return _host_rows_dot(indices, dense, other)
    if name == "strict":
        from bionp import _strict  # noqa: PLC0415

        return _strict.call_host(_host_rows_dot, "sparse_rows_dot", indices, dense, other)
    if cuda_kernels_enabled(xp):
        return _cuda_kernels.rows_dot(xp, indices, dense, other)
    return None


def take_rows(xp: types.ModuleType, a, indices, out):
    """``out[...] = a[indices]`` for the rows of a 2-D array ``a``, written into ``out``
    (C-contiguous, ``(len(indices), a.shape[1])``) without a temporary.

    NumPy buffers ``take(..., out=...)`` unless ``mode`` is not ``"raise"``, so the
    indices (which must be valid) are taken with ``mode="clip"`` there; CuPy's ``take``
    has no ``mode`` and writes into ``out`` directly, and the strict stand-in makes
    CuPy's call.

    Parameters
    ----------
    xp : module
        The array module of ``a``.
    a : array
        2-D source.
    indices : array
        Integer rows to take, each in ``[0, len(a))``.
    out : array
        Destination, ``(len(indices), a.shape[1])``, C-contiguous, dtype of ``a``.
    """
    if xp is np:
        return xp.take(a, indices, axis=0, out=out, mode="clip")
    return xp.take(a, indices, axis=0, out=out)
