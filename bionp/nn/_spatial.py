"""Shared checks and index arithmetic of the image layers (convolution, pooling).

Images are NCHW: ``(batch, channels, height, width)``.  Along one spatial axis of
size :math:`H`, a window of size :math:`k` moved by :math:`s` over the input padded
by :math:`p` on both sides fits :math:`\\lfloor (H + 2p - k)/s \\rfloor + 1` times.
"""

from __future__ import annotations

import numbers

from bionp.validation import check_float_dtype

__all__ = ["pair", "nonnegative_pair", "window_count", "check_image", "shape_tuple"]


def pair(name: str, value, minimum: int = 1) -> tuple:
    """``value`` (an int or a pair of ints) as a pair ``(h, w)``; each ``>= minimum``."""
    single = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    vals = (value, value) if single else value
    try:
        vals = tuple(vals)
    except TypeError:
        vals = None
    if vals is None or len(vals) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum for v in vals):
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be a {bound} int or a pair of {bound} ints, got {value!r}")
    return int(vals[0]), int(vals[1])


def nonnegative_pair(name: str, value) -> tuple:
    """``pair`` for paddings: ints ``>= 0``."""
    return pair(name, value, minimum=0)


def window_count(layer, size: int, kernel: int, stride: int, padding: int, axis: str) -> int:
    """How many windows fit along one axis; ``ValueError`` naming ``layer`` if none does."""
    if size + 2 * padding < kernel:
        pad = f" padded by {padding} on each side" if padding else ""
        raise ValueError(
            f"{layer!r}: the input's {axis} is {size}{pad}, smaller than the kernel ({kernel}), "
            "so no window fits; "
            f"give an input at least {kernel - 2 * padding} pixels high/wide, or a smaller kernel")
    return (size + 2 * padding - kernel) // stride + 1


def shape_tuple(shape) -> tuple:
    """A per-sample shape as a tuple of ints (an int means ``(int,)``)."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"a per-sample shape must be a tuple of ints, got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise ValueError(f"a per-sample shape must be a non-empty tuple of positive ints, "
                         f"got {shape!r}")
    return out


def check_image(layer, x, channels=None):
    """Validate a batch of images for ``layer``: real floats, ``(N, C, H, W)``, ``C ==
    channels`` if given."""
    if hasattr(x, "dtype"):
        check_float_dtype(x, "x")
    ndim = getattr(x, "ndim", None)
    if ndim != 4:
        c = "C" if channels is None else channels
        raise ValueError(
            f"{layer!r} expects images of shape (batch, {c}, height, width) (NCHW), got an input "
            f"of shape {tuple(getattr(x, 'shape', ()))}; reshape flat images with "
            f"x.reshape(len(x), {c}, height, width)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer!r} expects {channels} input channels, got {x.shape[1]} "
                         f"(input of shape {tuple(x.shape)})")
