"""The array backend: the one place in bionp that knows about CuPy.

bionp's numerical code is written once against an array module ``xp`` that is either :mod:`numpy`
(CPU), :mod:`cupy` (GPU) or ``strict``, a CPU stand-in for a GPU that refuses everything CuPy would
refuse (and a little more, see :mod:`bionp._strict`).  Library code obtains ``xp`` from
:func:`get_xp` (the active backend) or :func:`get_array_module` (the backend of given arrays) and
never imports CuPy itself.

Selecting a backend
-------------------
* globally: ``bionp.use("cupy")`` or the environment variable ``BIONP_BACKEND``;
* for a block of code: ``with bionp.backend("cupy"): ...``.  The scoped switch
  is held in a :class:`contextvars.ContextVar`, so threads and asyncio tasks
  each see their own choice and never leak it into each other.

The default floating dtype (``float32`` unless changed with :func:`set_dtype`
or ``BIONP_DTYPE``) is handled the same way, in :mod:`bionp.dtypes` (re-exported here).

Moving data
-----------
Host/device transfers are always explicit: :func:`asarray` puts an array on the active backend,
:func:`asnumpy` brings one back to the host, :func:`to_scalar` reads one number.  Arrays of two
backends meeting in one call raise :class:`MixedBackendError`; bionp never copies silently.

CuPy's API, as the strict stand-in enforces it
----------------------------------------------
The strict backend refuses every module attribute, function keyword, ufunc keyword
and array method that the pinned CuPy release lacks (``bionp/_cupy_surface.json``,
regenerated from CuPy by ``tools/generate_cupy_surface.py``), naming CuPy's
equivalent where there is one.  Where NumPy and CuPy need different calls, the branch
lives here or, for the compiled kernels behind the array API (the generator's Philox
blocks, the dendritic layer's sparse products, :func:`bionp.kernels.take_rows`), in
:mod:`bionp.kernels`, which asks this module which backend an array belongs to.  What the names alone cannot show, and bionp's
code therefore respects by construction:

* **argpartition / partition**: CuPy has no ``kind=`` and orders the elements inside each side of
  ``kth`` differently from NumPy's introselect (ties included).  Use only the partition property
  (the ``kth`` element in place, nothing larger before it, nothing smaller after it), never the
  order within a side; sort the selected few when an order is needed.  Strict returns each side in
  reverse of NumPy's order, so code relying on it fails there.
* **out= on ufuncs**: CuPy's ufuncs take ``out``, ``dtype`` and ``casting`` only (no ``where=``,
  ``order=``, ``subok=``; ``matmul`` is a gufunc without ``reduce``). ``out`` must be a device
  array of the result's shape; CuPy does not guard against an ``out`` that partly overlaps an input
  (NumPy copies first), so the result of e.g. ``add(a[1:], a[:-1], out=a[1:])`` is undefined there
  (strict refuses it). Identical in/out (``out=a`` with ``a`` an input) is fine on both.
* **0-d results**: reductions and single-element indexing return 0-d device arrays on CuPy, never
  Python/NumPy scalars (strict does the same).  Turning one into a number (``float(x)``, ``if x:``,
  ``int(x)``) is a host synchronisation: use :func:`to_scalar` where it is meant, and keep the
  arithmetic on arrays otherwise. A 0-d array also takes part in type promotion as an array: scale
  float32 arrays by Python floats or by 0-d arrays of their own dtype.
* **scatter-add**: ``a[idx] += v`` adds once per distinct index on both libraries (buffered);
  accumulating repeated indices needs ``add.at`` (NumPy, CuPy) or ``cupyx.scatter_add``.  On the
  GPU these (and ``bincount`` with weights) add with atomics in no fixed order, so float results
  can differ in the last bits from run to run; parity tolerances allow for it, exact
  reproducibility needs a formulation by sorting or a matrix product.
* **errstate**: CuPy reports no floating-point errors: no overflow/divide/invalid
  warnings, ``numpy.errstate`` does nothing on device arrays, and ``cupyx.errstate``
  only governs linear-algebra checks.  Detect non-finite values explicitly
  (``isfinite``), never by a warning; ``numpy.errstate`` around host-only NumPy code
  (as in :mod:`bionp.nn.activations`) stays correct on every backend.
* **integer overflow**: integer arithmetic wraps silently on CuPy, and integer division by zero
  gives 0 without a warning; NumPy raises ``OverflowError`` when a Python int does not fit the
  array's integer dtype (NEP 50) and warns on division by zero. Unsigned 64-bit arithmetic that
  relies on wrap-around (the Philox generator in :mod:`bionp.random`) uses ``uint64`` arrays and
  ``uint64`` scalars only, so both libraries wrap the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import types
from typing import Any, Iterator

import numpy as np

# defined below this module (bionp._strict raises them too); public here and as bionp.<name>
from bionp._errors import BackendError, BackendUnavailableError, MixedBackendError
# the default dtype lives in its own module; re-exported here (and as bionp.<name>)
from bionp import dtypes as _dtypes
from bionp.dtypes import default_dtype, get_dtype, resolve_dtype, set_dtype

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
    "preserved_defaults",
    "resolve_dtype",
    "set_dtype",
    "synchronize",
    "to_scalar",
    "use",
]

#: Names accepted by :func:`use` and :func:`backend`.
BACKENDS = ("numpy", "cupy", "strict")


# ---- the active backend ----

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


_global: dict[str, str | None] = {"backend": None}
_scoped_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bionp_backend", default=None
)


def _default_backend() -> str:
    if _global["backend"] is None:
        env = os.environ.get("BIONP_BACKEND", "numpy")
        try:
            _global["backend"] = _check_name(env)
        except ValueError as exc:
            raise ValueError(f"environment variable BIONP_BACKEND: {exc}") from None
    return _global["backend"]


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

    Examples
    --------
    >>> import bionp as bnp
    >>> bnp.use("numpy").__name__
    'numpy'
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

    Parameters
    ----------
    name : {"numpy", "cupy", "strict"}
        The backend inside the block; its array module is yielded.

    Examples
    --------
    >>> import bionp as bnp
    >>> with bnp.backend("strict") as xp:     # the CPU stand-in for a GPU
    ...     print(bnp.backend_name())
    strict
    >>> bnp.backend_name()
    'numpy'
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


@contextlib.contextmanager
def preserved_defaults(backend: str | None = None, dtype: Any = None) -> Iterator[None]:
    """Restore the process-wide backend and default dtype when the block ends.

    The block (a sweep's task, a test) may call :func:`use` and :func:`set_dtype`; on
    exit, also on an exception, both process-wide defaults are as before it.

    Parameters
    ----------
    backend : {"numpy", "cupy", "strict"}, optional
        The process-wide backend for the block's start (``bionp.use(backend)``).
    dtype : {"float32", "float64"}, optional
        The process-wide default dtype for the block's start (``bionp.set_dtype(dtype)``).

    Examples
    --------
    >>> import bionp as bnp
    >>> with bnp.preserved_defaults():
    ...     _ = bnp.set_dtype("float64")
    >>> bnp.get_dtype()
    dtype('float32')
    """
    saved, saved_dtype = dict(_global), dict(_dtypes._global)
    try:
        if backend is not None:
            use(backend)
        if dtype is not None:
            set_dtype(dtype)
        yield
    finally:
        _global.clear()
        _global.update(saved)
        _dtypes._global.clear()
        _dtypes._global.update(saved_dtype)


# ---- the modules ----

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
    """Backend name of an array module returned by :func:`get_xp`.

    Parameters
    ----------
    xp : module
        ``numpy``, ``cupy`` or the strict stand-in; anything else raises :class:`BackendError`.
    """
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


# ---- arrays ----

def backend_of(a: Any) -> str | None:
    """Backend name owning array ``a``; ``None`` for scalars and non-arrays.

    Parameters
    ----------
    a : object
        Anything; arrays of NumPy, CuPy and the strict stand-in are recognised.
    """
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
    """True for a NumPy, CuPy or strict-backend array (not for Python/NumPy scalars).

    Parameters
    ----------
    a : object
        Anything.
    """
    return backend_of(a) is not None


def get_array_module(*arrays: Any) -> types.ModuleType:
    """Array module of the given arrays (CuPy's ``get_array_module`` contract).

    Scalars and ``None`` are ignored; with no arrays at all the active backend's module is returned.

    Parameters
    ----------
    *arrays : arrays, scalars or None

    Raises
    ------
    MixedBackendError
        If the arrays belong to different backends.

    Examples
    --------
    >>> import numpy as np
    >>> import bionp as bnp
    >>> bnp.get_array_module(np.ones(3), 2.0, None).__name__
    'numpy'
    """
    if arrays and all(type(a) is np.ndarray for a in arrays):  # the common case, at once
        return np
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
    """Host (NumPy) copy of ``a``; NumPy arrays are returned as they are.

    Parameters
    ----------
    a : array (of any backend), scalar or array_like"""
    name = backend_of(a)
    if name is None or name == "numpy":
        return np.asarray(a)
    if name == "cupy":
        return _load_cupy().asnumpy(a)
    return a.get()


def to_scalar(a: Any) -> float | int | bool:
    """Read one number to the host (an explicit, synchronising transfer).

    Parameters
    ----------
    a : array with one element (of any backend), or a scalar"""
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

    Parameters
    ----------
    a : array, scalar or nested sequence
        The data; a CuPy array is brought to the host first when the target is NumPy.
    dtype : dtype, optional
        The result's dtype (``None``: ``a``'s own).
    xp : module, optional
        The target array module (``None``: the active backend's).
    """
    target = xp if xp is not None else get_xp()
    src = backend_of(a)
    if src not in (None, "numpy", module_name(target)):
        a = asnumpy(a)
    return target.asarray(a, dtype=dtype)


def synchronize(xp: types.ModuleType | None = None) -> None:
    """Wait for queued device work (a no-op on the CPU backends); for timing.

    Parameters
    ----------
    xp : module, optional
        The backend to wait for (``None``: the active one).
    """
    xp = xp if xp is not None else get_xp()
    if module_name(xp) == "cupy":
        xp.cuda.get_current_stream().synchronize()


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
