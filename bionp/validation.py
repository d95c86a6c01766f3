"""Input checks shared by layers, networks and losses (clear errors, one device sync)."""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers

import numpy as np

from bionp.backend import get_array_module, is_array, to_scalar

__all__ = ["check_finite", "check_float_dtype", "check_number", "check_real", "check_samples",
           "check_state_shapes", "data_already_checked", "data_checked"]

_DATA_CHECKED = contextvars.ContextVar("bionp_data_checked", default=False)


@contextlib.contextmanager
def data_checked():
    """Inside this block, batches are slices of data a caller validated as a whole.

    :class:`bionp.train.Trainer` checks its training and evaluation data once per ``fit``
    (finite values, labels in range) and trains inside this block, where networks, layers
    and losses skip their per-call finiteness and label-range checks.  Each of those checks
    reads a number back to the host, which on a GPU waits for every queued kernel: a
    training step then synchronises once (for its loss) instead of three times.  Shape,
    dtype and backend checks, which cost nothing on the device, stay on.
    """
    token = _DATA_CHECKED.set(True)
    try:
        yield
    finally:
        _DATA_CHECKED.reset(token)


def data_already_checked() -> bool:
    """Whether the caller is inside :func:`data_checked`."""
    return _DATA_CHECKED.get()


def check_finite(a, what: str = "x", fix: str = "clean or mask them first") -> None:
    """Raise ``ValueError`` naming the NaN/Inf counts if ``a`` has non-finite entries.

    The common case costs one pass and one scalar read.  A float32/float64 array of two
    or more dimensions is summed along its last axis by one matrix-vector product with
    ones (BLAS: 1.3× faster than a maximum and a minimum at (128, 784), 4× at (60000,
    784)): a NaN or ±Inf in a row makes its sum non-finite.  Other real arrays use
    their maximum and minimum, which are both finite exactly when every entry is;
    complex arrays the sum.  Whenever the quick test fails (also when a sum of finite
    entries overflows) the entries are counted, and only real NaN/Inf raise.  Integer
    and boolean arrays are finite.

    Parameters
    ----------
    a : array
    what : str, default "x"
        The array's name in the message.
    fix : str
        The advice that ends the message.
    """
    if not a.size or a.dtype.kind in "biu":  # empty, or integers and booleans: always finite
        return
    xp = get_array_module(a)
    if a.dtype.kind == "f" and a.ndim >= 2 and a.dtype.itemsize >= 4:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is recounted
            row_sums = xp.matmul(a, xp.ones(a.shape[-1], dtype=a.dtype))
        finite = xp.all(xp.isfinite(row_sums))
    elif a.dtype.kind == "f":
        finite = xp.isfinite(xp.max(a)) & xp.isfinite(xp.min(a))
    else:
        finite = xp.isfinite(xp.sum(a))
    if not to_scalar(finite):
        n_nan = to_scalar(xp.count_nonzero(xp.isnan(a)))
        n_inf = to_scalar(xp.count_nonzero(xp.isinf(a)))
        if n_nan or n_inf:
            raise ValueError(f"{what} contains non-finite values ({n_nan} NaN, {n_inf} Inf of "
                             f"{a.size}); {fix}")


def check_float_dtype(a, what: str = "x") -> None:
    """Raise ``TypeError`` unless ``a`` holds real floating-point numbers.

    Data, weights and network outputs are real floats.  Refused, each with its own
    message: complex arrays (casting would drop the imaginary part), integer and boolean
    arrays where floats are meant (an 8-bit image cast to floats keeps 0..255, and data in
    [0, 1) stored as integers are all zeros), and non-numeric dtypes (``object`` arrays,
    strings; an object array of ``None`` would otherwise become NaN).  Integer class
    labels are not data: they are passed as the target, which is checked separately.

    Parameters
    ----------
    a : array
    what : str, default "x"
        The array's name in the message.
    """
    dt = getattr(a, "dtype", None)
    kind = getattr(dt, "kind", None)
    if kind == "f":
        return
    if kind == "c":
        raise TypeError(f"{what} is complex ({dt}); bionp computes with real floats only: "
                        f"pass the part you mean explicitly, e.g. {what}.real or abs({what})")
    if kind in ("b", "i", "u"):
        raise TypeError(f"{what} has dtype {dt} where floats are expected; convert it "
                        f"explicitly, e.g. {what}.astype(numpy.float32) / 255 for 8-bit images "
                        "(integer class labels go in the target, not in the input)")
    raise TypeError(f"{what} has dtype {dt}, which is not numeric; give an array of real "
                    f"floats, e.g. numpy.asarray({what}, dtype=numpy.float32)")


def check_samples(x, what: str = "x") -> None:
    """Raise a clear error unless ``x`` is a non-empty 2-D array ``(n_samples, n_features)``
    of one of bionp's backends.

    Parameters
    ----------
    x : array (n_samples, n_features)
    what : str, default "x"
        The array's name in the message.
    """
    if not is_array(x):
        raise TypeError(f"{what} must be an array of shape (n_samples, n_in) on the active "
                        f"backend, got {type(x).__name__}; convert with bionp.asarray(x)")
    check_float_dtype(x, what)
    if x.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_samples, n_in), got shape {tuple(x.shape)}; "
                         "flatten images with x.reshape(len(x), -1)")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples, shape {tuple(x.shape)}); "
                         "pass at least one sample")


def check_real(name: str, value, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if it is a real, finite number in the given interval.

    ``low``/``high`` bound the interval (closed unless ``low_open``/``high_open``).  A
    complex number, a bool, a string or ``None`` raises ``TypeError``; NaN, ±Inf and values
    outside the interval raise ``ValueError``, each message naming ``name`` and the value.

    Parameters
    ----------
    name : str
        The argument's name in the message.
    value : real
    low, high : float or None
        Bounds of the interval (``None``: unbounded).
    low_open, high_open : bool, default False
        Exclude the bound itself.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} "
                        f"({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if below or above:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"{name} must lie in {lo}, {hi}, got {value!r}")
    return v


def check_number(name, value, *, low=None, low_open=False, integer=False, hint=""):
    """Return ``value`` if it is a finite real number (an int with ``integer=True``) at or
    above ``low`` (above, with ``low_open``); ``TypeError`` or ``ValueError`` otherwise, the
    message naming ``name`` and ending with ``hint``.

    Parameters
    ----------
    name : str
        The argument's name in the message.
    value : number
    low : number or None
        Lower bound (``None``: none).
    low_open : bool, default False
        Exclude ``low`` itself.
    integer : bool, default False
        Ask for an int.
    hint : str
        Appended to the message.
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an int" if integer else "a real number"
        raise TypeError(f"{name} must be {what}, got {value!r}{hint}")
    if not isinstance(value, numbers.Integral) and not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}{hint}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}{hint}")
    return value


def check_state_shapes(owner, own: dict, state: dict) -> None:
    """Raise ``ValueError`` unless ``state`` has every key of ``own`` with the same shape.

    Called by ``load_state_dict`` before anything is written, so that a state of another
    configuration changes nothing; the message names ``owner`` (its ``repr``).

    Parameters
    ----------
    owner : object
        Named in the message.
    own : dict of str -> array
        The owner's current state.
    state : dict of str -> array
        The state to be loaded.
    """
    missing = sorted(set(own) - set(state))
    if missing:
        raise ValueError(f"{owner!r}: state lacks {missing}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(f"{owner!r}: {k} must have shape {tuple(v.shape)}, "
                             f"got {tuple(state[k].shape)}")
