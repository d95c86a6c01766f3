"""Argument checks of :mod:`bionp.random`: sizes, seeds, distribution parameters, ``out=``.

Every check runs before a draw touches the generator, so a refused call leaves its
counter where it was.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from bionp.backend import asarray, get_array_module, is_array, to_scalar
from bionp.validation import check_finite

__all__ = ["size_tuple", "count", "check_seed", "check_out", "is_number", "check_param",
           "as_param", "MAX_DRAW"]

#: The most numbers one call may draw: indices into the stream and the sizes of NumPy's
#: arrays are int64.
MAX_DRAW = 2**63 - 1


def size_tuple(size) -> tuple[int, ...]:
    """``size`` (None, an int or a tuple of ints >= 0) as a shape tuple."""
    if size is None:
        return ()
    if isinstance(size, numbers.Integral) and not isinstance(size, (bool, np.bool_)):
        size = (size,)
    if isinstance(size, (str, bytes)) or not isinstance(size, (tuple, list)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) for s in size):
        raise TypeError(f"size must be an int or a tuple of ints, got {size!r}")
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ValueError(f"size must not be negative, got {shape}")
    return shape


def count(shape: tuple[int, ...]) -> int:
    """Number of entries of ``shape``, refused above :data:`MAX_DRAW` (computed exactly:
    ``numpy.prod`` would wrap around)."""
    n = math.prod(shape)
    if n > MAX_DRAW:
        raise ValueError(f"size {shape} asks for {n} numbers, more than one draw can hold "
                         f"(2**63 - 1: the stream's index and NumPy's sizes are int64)")
    return n


def check_seed(seed, name: str = "seed") -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be a non-negative int seed, a bionp.random.Generator or None; got "
            f"{type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int seed, got {seed}")


def check_out(out, shape, dt, xp) -> None:
    """``out`` must be a writeable C-contiguous array of ``xp`` with ``shape`` and ``dt``."""
    if not is_array(out) or get_array_module(out) is not xp:
        raise TypeError(f"out must be an array of the {getattr(xp, '__name__', xp)} backend, got "
                        f"{type(out).__name__}"
                        + ("" if not is_array(out) else
                           f" of the {getattr(get_array_module(out), '__name__', '?')} backend"))
    if tuple(out.shape) != shape or out.dtype != dt:
        raise ValueError(f"out must have shape {shape} and dtype {dt.name}, got shape "
                         f"{tuple(out.shape)} and dtype {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (row-major, no gaps: not a strided view or "
                         "a Fortran-ordered array); pass a contiguous array, e.g. "
                         "numpy.empty(shape, dtype)")
    if not getattr(out.flags, "writeable", True):
        raise ValueError("out must be writeable, got a read-only array")


def is_number(v) -> bool:
    return isinstance(v, numbers.Number)


def check_param(name: str, value, *, nonnegative: bool = False) -> None:
    """Refuse a distribution parameter that is not real and finite (and, for a scale,
    non-negative), before any number is drawn: the generator's counter stays put."""
    if is_number(value):
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


def as_param(xp, v, dt):
    if is_number(v):
        return dt.type(v)
    return asarray(v, dtype=dt, xp=xp) if not is_array(v) else v.astype(dt, copy=False)
