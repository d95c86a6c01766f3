"""The default floating dtype of bionp's arrays: float32 unless changed.

Every function that creates floating arrays takes ``dtype=None`` and resolves it here
(:func:`resolve_dtype`): ``None`` means the default, which is ``float32`` unless changed
globally (:func:`set_dtype`, or the environment variable ``BIONP_DTYPE``) or for a block
of code (``with bionp.default_dtype("float64"): ...``, held in a
:class:`contextvars.ContextVar`, so threads and asyncio tasks each see their own
choice).  Only ``float32`` and ``float64`` are accepted.  :mod:`bionp.backend`
re-exports these functions.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Any, Iterator

import numpy as np

__all__ = ["default_dtype", "get_dtype", "resolve_dtype", "set_dtype"]

_DTYPES = ("float32", "float64")
_global: dict[str, np.dtype | None] = {"dtype": None}
_scoped_dtype: contextvars.ContextVar[np.dtype | None] = contextvars.ContextVar(
    "bionp_dtype", default=None
)


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in _DTYPES:
        raise ValueError(f"unsupported default dtype {dtype!r}: expected 'float32' or 'float64'")
    return dt


def _default_dtype() -> np.dtype:
    if _global["dtype"] is None:
        env = os.environ.get("BIONP_DTYPE", "float32")
        try:
            _global["dtype"] = _check_dtype(env)
        except ValueError as exc:
            raise ValueError(f"environment variable BIONP_DTYPE: {exc}") from None
    return _global["dtype"]


def set_dtype(dtype: Any) -> np.dtype:
    """Set the default floating dtype (``"float32"`` or ``"float64"``); returns it.

    Parameters
    ----------
    dtype : str or dtype
        ``"float32"`` (bionp's default) or ``"float64"``.

    Examples
    --------
    >>> import bionp as bnp
    >>> bnp.set_dtype("float64")
    dtype('float64')
    >>> bnp.set_dtype("float32")
    dtype('float32')
    """
    dt = _check_dtype(dtype)
    _global["dtype"] = dt
    return dt


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[np.dtype]:
    """Scoped default dtype: ``with bionp.default_dtype("float64"): ...``.

    The choice is local to the current thread / asyncio task and restored on exit.

    Parameters
    ----------
    dtype : str or dtype
        ``"float32"`` or ``"float64"`` inside the block (yielded as a :class:`numpy.dtype`).
    """
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
    """``dtype`` checked as a float32/float64 dtype, or the default if None.

    Parameters
    ----------
    dtype : str, dtype or None
        ``"float32"``/``"float64"``; ``None`` gives :func:`get_dtype`.
    """
    return get_dtype() if dtype is None else _check_dtype(dtype)
