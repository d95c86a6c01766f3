"""The array backend: the one place in bionp that knows about CuPy.

bionp's numerical code is written once against an array module ``xp`` that is
either :mod:`numpy` (CPU), :mod:`cupy` (GPU) or ``strict``, a CPU stand-in for a
GPU that refuses everything CuPy would refuse (and a little more, see
:mod:`bionp._strict`).  Library code obtains ``xp`` from :func:`get_xp` (the
active backend) or :func:`get_array_module` (the backend of given arrays) and
never imports CuPy itself.

Selecting a backend
-------------------
* globally: ``bionp.use("cupy")`` or the environment variable ``BIONP_BACKEND``;
* for a block of code: ``with bionp.backend("cupy"): ...``.  The scoped switch
  is held in a :class:`contextvars.ContextVar`, so threads and asyncio tasks
  each see their own choice and never leak it into each other.

The default floating dtype (``float32`` unless changed with :func:`set_dtype`
or ``BIONP_DTYPE``) is handled the same way.

Moving data
-----------
Host/device transfers are always explicit: :func:`asarray` puts an array on the
active backend, :func:`asnumpy` brings one back to the host, :func:`to_scalar`
reads one number.  Arrays of two backends meeting in one call raise
:class:`MixedBackendError`; bionp never copies silently.

CuPy's API, as the strict stand-in enforces it
----------------------------------------------
The strict backend refuses every module attribute, function keyword, ufunc keyword
and array method that the pinned CuPy release lacks (``bionp/_cupy_surface.json``,
regenerated from CuPy by ``tools/generate_cupy_surface.py``), naming CuPy's
equivalent where there is one.  Where NumPy and CuPy need different calls, the branch
lives here (e.g. :func:`take_rows`).  What the names alone cannot show, and bionp's
code therefore respects by construction:

* **argpartition / partition**: CuPy has no ``kind=`` and orders the elements inside
  each side of ``kth`` differently from NumPy's introselect (ties included).  Use only
  the partition property (the ``kth`` element in place, nothing larger before it,
  nothing smaller after it), never the order within a side; sort the selected few
  when an order is needed.  Strict returns each side in reverse of NumPy's order, so
  code relying on it fails there.
* **out= on ufuncs**: CuPy's ufuncs take ``out``, ``dtype`` and ``casting`` only (no
  ``where=``, ``order=``, ``subok=``; ``matmul`` is a gufunc without ``reduce``).
  ``out`` must be a device array of the result's shape; CuPy does not guard against
  an ``out`` that partly overlaps an input (NumPy copies first), so the result of
  e.g. ``add(a[1:], a[:-1], out=a[1:])`` is undefined there (strict refuses it).
  Identical in/out (``out=a`` with ``a`` an input) is fine on both.
* **0-d results**: reductions and single-element indexing return 0-d device arrays on
  CuPy, never Python/NumPy scalars (strict does the same).  Turning one into a number
  (``float(x)``, ``if x:``, ``int(x)``) is a host synchronisation: use
  :func:`to_scalar` where it is meant, and keep the arithmetic on arrays otherwise.
  A 0-d array also takes part in type promotion as an array: scale float32 arrays by
  Python floats or by 0-d arrays of their own dtype.
* **scatter-add**: ``a[idx] += v`` adds once per distinct index on both libraries
  (buffered); accumulating repeated indices needs ``add.at`` (NumPy, CuPy) or
  ``cupyx.scatter_add``.  On the GPU these (and ``bincount`` with weights) add with
  atomics in no fixed order, so float results can differ in the last bits from run to
  run; parity tolerances allow for it, exact reproducibility needs a formulation by
  sorting or a matrix product.
* **errstate**: CuPy reports no floating-point errors: no overflow/divide/invalid
  warnings, ``numpy.errstate`` does nothing on device arrays, and ``cupyx.errstate``
  only governs linear-algebra checks.  Detect non-finite values explicitly
  (``isfinite``), never by a warning; ``numpy.errstate`` around host-only NumPy code
  (as in :mod:`bionp.nn.activations`) stays correct on every backend.
* **integer overflow**: integer arithmetic wraps silently on CuPy, and integer division
  by zero gives 0 without a warning; NumPy raises ``OverflowError`` when a Python int
  does not fit the array's integer dtype (NEP 50) and warns on division by zero.
  Unsigned 64-bit arithmetic that relies on wrap-around (the Philox generator in
  :mod:`bionp.random`) uses ``uint64`` arrays and ``uint64`` scalars only, so both
  libraries wrap the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import types
from typing import Any, Iterator

import numpy as np

# defined below this module (bionp._strict raises them too); public here and as bionp.<name>
from bionp._errors import BackendError, BackendUnavailableError, MixedBackendError

__all__ = [
    "BACKENDS",
    "BackendError",
    "BackendUnavailableError",
    "MixedBackendError",
    "asarray",
    "asnumpy",
    "available_backends",
    "backend",
    "backend_name",
    "backend_of",
    "cupy_available",
    "get_array_module",
    "get_backend",
    "get_dtype",
    "get_xp",
    "is_array",
    "module_name",
    "resolve_dtype",
    "set_dtype",
    "sparse_rows_dot",
    "sparse_rows_dot_available",
    "sparse_rows_matmul",
    "sparse_rows_matmul_available",
    "synchronize",
    "take_rows",
    "to_scalar",
    "use",
]

#: Names accepted by :func:`use` and :func:`backend`.
BACKENDS = ("numpy", "cupy", "strict")
_DTYPES = ("float32", "float64")


# --------------------------------------------------------------------------
# the active backend and dtype
# --------------------------------------------------------------------------

def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a string, one of {BACKENDS}; got {type(name).__name__}")
    key = name.strip().lower()
    if key not in BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}: expected one of {', '.join(repr(b) for b in BACKENDS)} "
            "(set with bionp.use(name) or the environment variable BIONP_BACKEND)"
        )
    return key


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in _DTYPES:
        raise ValueError(f"unsupported default dtype {dtype!r}: expected 'float32' or 'float64'")
    return dt


_global = {"backend": None, "dtype": None}
_scoped_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bionp_backend", default=None
)
_scoped_dtype: contextvars.ContextVar[np.dtype | None] = contextvars.ContextVar(
    "bionp_dtype", default=None
)


def _default_backend() -> str:
    if _global["backend"] is None:
        env = os.environ.get("BIONP_BACKEND", "numpy")
        try:
            _global["backend"] = _check_name(env)
        except ValueError as exc:
            raise ValueError(f"environment variable BIONP_BACKEND: {exc}") from None
    return _global["backend"]


def _default_dtype() -> np.dtype:
    if _global["dtype"] is None:
        env = os.environ.get("BIONP_DTYPE", "float32")
        try:
            _global["dtype"] = _check_dtype(env)
        except ValueError as exc:
            raise ValueError(f"environment variable BIONP_DTYPE: {exc}") from None
    return _global["dtype"]


def backend_name() -> str:
    """Name of the active backend: ``"numpy"``, ``"cupy"`` or ``"strict"``."""
    return _scoped_backend.get() or _default_backend()


def get_backend() -> str:
    """Alias of :func:`backend_name`."""
    return backend_name()


def use(name: str) -> types.ModuleType:
    """Select the global backend and return its array module.

    Parameters
    ----------
    name : {"numpy", "cupy", "strict"}
        ``"strict"`` is the CPU stand-in for a GPU used by the test-suite.

    Raises
    ------
    ValueError
        For an unknown name.
    BackendUnavailableError
        If CuPy is requested but not installed or no GPU is visible.
    """
    key = _check_name(name)
    module = _module(key)  # fails before switching if unavailable
    _global["backend"] = key
    return module


@contextlib.contextmanager
def backend(name: str) -> Iterator[types.ModuleType]:
    """Scoped backend switch: ``with bionp.backend("cupy") as xp: ...``.

    The choice is local to the current thread / asyncio task (a context
    variable) and restored on exit, also when the block raises.
    """
    key = _check_name(name)
    module = _module(key)
    token = _scoped_backend.set(key)
    try:
        yield module
    finally:
        _scoped_backend.reset(token)


def get_xp() -> types.ModuleType:
    """The array module of the active backend."""
    return _module(backend_name())


def set_dtype(dtype: Any) -> np.dtype:
    """Set the default floating dtype (``"float32"`` or ``"float64"``); returns it."""
    dt = _check_dtype(dtype)
    _global["dtype"] = dt
    return dt


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[np.dtype]:
    """Scoped default dtype: ``with bionp.default_dtype("float64"): ...``."""
    dt = _check_dtype(dtype)
    token = _scoped_dtype.set(dt)
    try:
        yield dt
    finally:
        _scoped_dtype.reset(token)


def get_dtype() -> np.dtype:
    """The default floating dtype (a :class:`numpy.dtype`, float32 unless changed)."""
    return _scoped_dtype.get() or _default_dtype()


def resolve_dtype(dtype: Any = None) -> np.dtype:
    """``dtype`` checked as a float32/float64 dtype, or the default if None."""
    return get_dtype() if dtype is None else _check_dtype(dtype)


# --------------------------------------------------------------------------
# the modules
# --------------------------------------------------------------------------

_cupy_state: dict[str, Any] = {}

_CUPY_HELP = (
    "install the extra that matches your CUDA toolkit: pip install 'bionp[cuda12]' "
    "(CUDA 12.x) or pip install 'bionp[cuda13]' (CUDA 13.x); `nvidia-smi` shows the "
    "driver's CUDA version. Use bionp.use('numpy') to stay on the CPU."
)


def _load_cupy() -> types.ModuleType:
    if "module" in _cupy_state:
        return _cupy_state["module"]
    if "error" in _cupy_state:
        raise BackendUnavailableError(_cupy_state["error"])
    try:
        import cupy  # noqa: PLC0415  (the only cupy import in bionp)
    except Exception as exc:  # ImportError, or a broken CUDA install
        _cupy_state["error"] = f"the 'cupy' backend needs CuPy, which could not be imported ({exc}); {_CUPY_HELP}"
        raise BackendUnavailableError(_cupy_state["error"]) from None
    try:
        n_gpu = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        n_gpu, why = 0, f" ({exc})"
    else:
        why = ""
    if n_gpu < 1:
        _cupy_state["error"] = (
            f"the 'cupy' backend needs a visible CUDA GPU, but CuPy found none{why}; "
            f"check CUDA_VISIBLE_DEVICES and the driver, or {_CUPY_HELP}"
        )
        raise BackendUnavailableError(_cupy_state["error"])
    _cupy_state["module"] = cupy
    return cupy


def _strict_module() -> types.ModuleType:
    from bionp import _strict  # noqa: PLC0415

    return _strict.xp


def _module(name: str) -> types.ModuleType:
    if name == "numpy":
        return np
    if name == "cupy":
        return _load_cupy()
    return _strict_module()


def module_name(xp: types.ModuleType) -> str:
    """Backend name of an array module returned by :func:`get_xp`."""
    if xp is np:
        return "numpy"
    if getattr(xp, "__name__", "") == "bionp._strict.xp":
        return "strict"
    if getattr(xp, "__name__", "").startswith("cupy"):
        return "cupy"
    raise BackendError(f"{xp!r} is not an array module bionp knows (numpy, cupy or strict)")


def cupy_available() -> bool:
    """True if CuPy imports and sees at least one GPU (never raises)."""
    try:
        _load_cupy()
    except BackendUnavailableError:
        return False
    return True


def available_backends() -> tuple[str, ...]:
    """Backends usable on this machine, e.g. ``("numpy", "strict")``."""
    return tuple(b for b in BACKENDS if b != "cupy" or cupy_available())


# --------------------------------------------------------------------------
# arrays
# --------------------------------------------------------------------------

def backend_of(a: Any) -> str | None:
    """Backend name owning array ``a``; ``None`` for scalars and non-arrays."""
    if isinstance(a, np.ndarray):
        return "numpy"
    cls = type(a)
    mod = cls.__module__ or ""
    if mod.startswith("cupy"):
        return "cupy"
    if mod == "bionp._strict":
        return "strict" if cls.__name__ == "StrictArray" else None
    return None


def is_array(a: Any) -> bool:
    """True for a NumPy, CuPy or strict-backend array (not for Python/NumPy scalars)."""
    return backend_of(a) is not None


def get_array_module(*arrays: Any) -> types.ModuleType:
    """Array module of the given arrays (CuPy's ``get_array_module`` contract).

    Scalars and ``None`` are ignored; with no arrays at all the active backend's
    module is returned.

    Raises
    ------
    MixedBackendError
        If the arrays belong to different backends.
    """
    found: dict[str, int] = {}
    for i, a in enumerate(arrays):
        name = backend_of(a)
        if name is not None and name not in found:
            found[name] = i
    if len(found) > 1:
        desc = ", ".join(f"argument {i} is a {n} array" for n, i in found.items())
        raise MixedBackendError(
            f"arrays from different backends met in one call ({desc}); bionp never copies "
            "silently: move them explicitly with bionp.asarray(a) (to the active backend) "
            "or bionp.asnumpy(a) (to the host)"
        )
    if not found:
        return get_xp()
    return _module(next(iter(found)))


def check_same_backend(*arrays: Any, names: tuple[str, ...] | None = None) -> types.ModuleType:
    """Like :func:`get_array_module` but names the arguments in the error message."""
    try:
        return get_array_module(*arrays)
    except MixedBackendError:
        if not names:
            raise
        desc = ", ".join(
            f"{n} is a {backend_of(a)} array" for n, a in zip(names, arrays) if backend_of(a)
        )
        raise MixedBackendError(
            f"arrays from different backends met in one call ({desc}); move them explicitly "
            "with bionp.asarray(a) or bionp.asnumpy(a)"
        ) from None


def asnumpy(a: Any) -> np.ndarray:
    """Host (NumPy) copy of ``a``; NumPy arrays are returned as they are."""
    name = backend_of(a)
    if name is None or name == "numpy":
        return np.asarray(a)
    if name == "cupy":
        return _load_cupy().asnumpy(a)
    return a.get()


def to_scalar(a: Any) -> float | int | bool:
    """Read one number to the host (an explicit, synchronising transfer)."""
    if backend_of(a) is None:
        return a.item() if hasattr(a, "item") else a
    if a.size != 1:
        raise ValueError(f"to_scalar needs an array with one element, got shape {tuple(a.shape)}")
    return asnumpy(a).reshape(()).item()


def asarray(a: Any, dtype: Any = None, *, xp: types.ModuleType | None = None) -> Any:
    """``a`` as an array of the active backend (or of ``xp``), copying across devices.

    This is the explicit host-to-device move: ``bionp.asarray(numpy_array)``
    under the CuPy backend uploads it.  Arrays already on the target backend are
    returned without a copy when the dtype already matches.
    """
    target = xp if xp is not None else get_xp()
    src = backend_of(a)
    if src not in (None, "numpy", module_name(target)):
        a = asnumpy(a)
    return target.asarray(a, dtype=dtype)


def synchronize(xp: types.ModuleType | None = None) -> None:
    """Wait for queued device work (a no-op on the CPU backends); for timing."""
    xp = xp if xp is not None else get_xp()
    if module_name(xp) == "cupy":
        xp.cuda.get_current_stream().synchronize()


def philox_raw_fast(xp: types.ModuleType, key: tuple[int, int], counter: int, n_blocks: int):
    """Philox4x64-10 blocks for counters ``counter+1 … counter+n_blocks`` from a compiled
    kernel, or ``None`` where the backend has none (then :mod:`bionp.random` computes
    them with array arithmetic).

    On NumPy this is NumPy's own C implementation of the same function
    (:class:`numpy.random.Philox` with an explicit key and counter); the tests
    check it against bionp's array implementation bit for bit.
    """
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
    :func:`philox_uniform_fast`): NumPy only."""
    return xp is np


def philox_uniform_fast(xp: types.ModuleType, key: tuple[int, int], counter: int, out) -> bool:
    """Fill the contiguous 1-D float32/float64 array ``out`` with the uniforms of
    Philox4x64-10 blocks ``counter+1 …`` in bionp's conversion (float64
    ``(r >> 11) 2**-53``; float32 two per word, low half first, ``(u >> 8) 2**-24``),
    in one compiled pass; ``False`` (nothing written) where the backend has no kernel.

    On NumPy the float64 numbers come from ``numpy.random.Generator(Philox).random``
    (whose conversion is exactly this), the float32 ones from the raw words converted
    in place; the tests check both against the array path and NumPy's generator.
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
# sparse products with a fixed number of nonzeros per row (dendritic layers)
# --------------------------------------------------------------------------

def sparse_rows_matmul_available(xp: types.ModuleType) -> bool:
    """Whether :func:`sparse_rows_matmul` has a compiled kernel for ``xp``: NumPy and the
    strict stand-in (SciPy's CSR products); not CuPy, where callers gather instead."""
    return module_name(xp) in ("numpy", "strict")


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
    n_in = rows if transpose else n_cols
    if dense.ndim != 2 or dense.shape[0] != n_in:
        raise ValueError(f"sparse_rows_matmul: dense must have shape ({n_in}, m), got "
                         f"{tuple(dense.shape)}")
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
    stand-in the kernel is SciPy's CSR product, so both give the same bits.
    """
    name = module_name(xp)
    if name == "numpy":
        return _host_rows_matmul(weights, indices, n_cols, dense, transpose)
    if name == "strict":
        from bionp import _strict  # noqa: PLC0415

        return _strict.call_host(_host_rows_matmul, "sparse_rows_matmul", weights, indices,
                                 n_cols, dense, transpose)
    return None


def sparse_rows_dot_available(xp: types.ModuleType) -> bool:
    """Whether :func:`sparse_rows_dot` has a compiled kernel for ``xp``: NumPy and the strict
    stand-in with Numba installed (and ``BIONP_NUMBA`` not ``0``)."""
    from bionp import _kernels  # noqa: PLC0415

    return module_name(xp) in ("numpy", "strict") and _kernels.available()


def _host_rows_dot(indices, dense, other):
    rows, per_row = indices.shape
    if dense.ndim != 2 or other.ndim != 2 or other.shape != (rows, dense.shape[1]):
        raise ValueError(f"sparse_rows_dot: dense (n, m) and other ({rows}, m) expected, got "
                         f"{tuple(dense.shape)} and {tuple(other.shape)}")
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
    """
    name = module_name(xp)
    if name == "numpy":
        return _host_rows_dot(indices, dense, other)
    if name == "strict":
        from bionp import _strict  # noqa: PLC0415

        return _strict.call_host(_host_rows_dot, "sparse_rows_dot", indices, dense, other)
    return None


def take_rows(xp: types.ModuleType, a, indices, out):
    """``out[...] = a[indices]`` for the rows of a 2-D array ``a``, written into ``out``
    (C-contiguous, ``(len(indices), a.shape[1])``) without a temporary.

    NumPy buffers ``take(..., out=...)`` unless ``mode`` is not ``"raise"``, so the
    indices (which must be valid) are taken with ``mode="clip"`` there; CuPy's ``take``
    has no ``mode`` and writes into ``out`` directly, and the strict stand-in makes
    CuPy's call.
    """
    if xp is np:
        return xp.take(a, indices, axis=0, out=out, mode="clip")
    return xp.take(a, indices, axis=0, out=out)


def device_info() -> dict[str, Any]:
    """Backend, dtype, versions and (if CuPy works) the GPU name: for results files."""
    info: dict[str, Any] = {
        "backend": backend_name(),
        "dtype": get_dtype().name,
        "numpy": np.__version__,
    }
    if backend_name() == "cupy":
        cp = _load_cupy()
        info["cupy"] = cp.__version__
        try:
            props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        except Exception:  # pragma: no cover - informational only
            pass
    return info
