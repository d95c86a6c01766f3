r"""Images for convolutional networks: NCHW arrays, padding, per-channel statistics, augmentation.

* :func:`load_images`: :func:`~bionp.data.load` as ``(N, C, H, W)`` (MNIST and
  Fashion-MNIST get a channel axis), zero-padded to ``size x size`` (28 → 32 for LeNet).
* :func:`pad_images`: :math:`p` zero pixels on each side of both spatial axes.
* :func:`standardize_channels`: :math:`\tilde x_{nchw} = (x_{nchw} - \mu_c)/s_c` with
  :math:`\mu_c, s_c` the mean and standard deviation of channel :math:`c` over the
  **training** images (all samples and pixels).
* :func:`random_crop_flip`: the standard CIFAR-10 augmentation (He et al. 2016): pad by
  :math:`p` (4) zeros, take a random ``H x W`` crop (offsets uniform in
  :math:`\{0,\dots,2p\}`, per sample) and flip it left-right with probability 1/2; one
  gather for the whole batch (no loop over samples), every draw from
  :class:`bionp.random.Generator`.
"""

from __future__ import annotations

import numbers

from bionp.backend import check_same_backend, get_array_module
from bionp.data.loading import load
from bionp.data.preprocess import check_data
from bionp.random import check_rng
from bionp.validation import check_real

__all__ = ["load_images", "as_images", "pad_images", "standardize_channels",
           "apply_channel_stats", "random_crop_flip"]


def _check_images(x, name="x"):
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"{name} must be images of shape (N, C, H, W), got shape "
                         f"{tuple(getattr(x, 'shape', ()))}; see bionp.data.as_images")


def _nonnegative_int(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
        raise ValueError(f"{name} must be an int >= 0, got {v!r}")
    return int(v)


def as_images(x, shape):
    """``x`` of shape ``(N, C*H*W)``, ``(N, H, W)`` or ``(N, C, H, W)`` as ``(N, C, H, W)``
    (a view where the layout allows).

    Parameters
    ----------
    x : array
    shape : (C, H, W)
        Per-sample image shape; the flat order is channel, row, column.
    """
    try:
        c, h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (channels, height, width), got {shape!r}") from None
    if min(c, h, w) < 1:
        raise ValueError(f"shape must be positive, got {shape!r}")
    n = int(x.shape[0]) if getattr(x, "ndim", 0) >= 1 else 0
    if getattr(x, "size", None) is None or x.ndim < 2 or x.size != n * c * h * w:
        raise ValueError(f"cannot read x of shape {tuple(getattr(x, 'shape', ()))} as images "
                         f"of shape ({c}, {h}, {w}): each sample needs {c * h * w} values")
    return x.reshape(n, c, h, w)


def pad_images(x, pad: int):
    """``x`` (N, C, H, W) with ``pad`` zero pixels on each side: ``(N, C, H+2p, W+2p)``.

    Parameters
    ----------
    x : array (N, C, H, W)
    pad : int >= 0
    """
    _check_images(x)
    p = _nonnegative_int(pad, "pad")
    if p == 0:
        return x.copy()
    xp = get_array_module(x)
    n, c, h, w = (int(s) for s in x.shape)
    out = xp.zeros((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
    out[:, :, p:p + h, p:p + w] = x
    return out


def load_images(name: str, split: str = "train", root=None, download=None, *, size=None,
                dtype=None, cache_dir=None):
    """:func:`~bionp.data.load` as NCHW images, optionally zero-padded to ``size``.

    Parameters
    ----------
    name, split, root, download, dtype, cache_dir : as for :func:`~bionp.data.load`
    size : int, optional
        Pad each image (centred) to ``size x size``, e.g. 32 for LeNet on (Fashion-)MNIST;
        default: as stored (28 or 32).

    Returns
    -------
    x : (N, C, H, W) floats in ``[0, 1]`` (C = 1 for MNIST/Fashion-MNIST, 3 for CIFAR-10)
    y : (N,) int64 labels
    """
    x, y = load(name, split, root, download, flatten=False, dtype=dtype, cache_dir=cache_dir)
    if x.ndim == 3:
        x = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
    if size is not None:
        h, w = int(x.shape[2]), int(x.shape[3])
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < max(h, w) \
                or (size - h) % 2 or (size - w) % 2:
            raise ValueError(f"size must be an int >= the images' {h}x{w} that pads them evenly "
                             f"on both sides, got {size!r}")
        if size > h:
            x = pad_images(x, (int(size) - h) // 2)
    return x, y


def standardize_channels(x_train, x_test=None, *, eps: float = 1e-8):
    """Per-channel standardisation with the training images' statistics.

    Parameters
    ----------
    x_train : array (N, C, H, W)
        The per-channel statistics come from it alone.
    x_test : array or None
    eps : float, default 1e-8

    Returns
    -------
    x_train_std, x_test_std (None if ``x_test`` is None), stats
        ``stats = {"mean": (C,), "std": (C,)}`` (``std`` is 1 where it is ``<= eps``); apply
        them to more images with :func:`apply_channel_stats`.
    """
    _check_images(x_train, "x_train")
    check_data(x_train, "x_train", floats=True)
    eps = check_real("eps", eps, low=0)
    xp = get_array_module(x_train) if x_test is None else \
        check_same_backend(x_train, x_test, names=("x_train", "x_test"))
    if x_train.dtype.kind != "f":
        raise ValueError(f"standardize_channels needs a float array, got {x_train.dtype}")
    if x_test is not None:
        _check_images(x_test, "x_test")
        if x_test.shape[1] != x_train.shape[1]:
            raise ValueError(f"x_test has {x_test.shape[1]} channels, x_train "
                             f"{x_train.shape[1]}")
    mean = xp.mean(x_train, axis=(0, 2, 3))
    std = xp.std(x_train, axis=(0, 2, 3))
    std = xp.where(std > eps, std, xp.ones_like(std))
    stats = {"mean": mean, "std": std}
    return (apply_channel_stats(x_train, stats),
            None if x_test is None else apply_channel_stats(x_test, stats), stats)


def apply_channel_stats(x, stats):
    """``(x - mean_c) / std_c`` per channel, in ``x``'s dtype (a new array).

    Parameters
    ----------
    x : array (N, C, H, W)
    stats : dict
        ``{"mean": (C,) array, "std": (C,) array}``, as :func:`standardize_channels` returns.
    """
    _check_images(x)
    check_same_backend(x, stats["mean"], names=("x", "stats['mean']"))
    c = int(x.shape[1])
    if tuple(stats["mean"].shape) != (c,) or tuple(stats["std"].shape) != (c,):
        raise ValueError(f"stats are for {tuple(stats['mean'].shape)} channels, x has {c}")
    out = x - stats["mean"].astype(x.dtype, copy=False).reshape(1, c, 1, 1)
    out /= stats["std"].astype(x.dtype, copy=False).reshape(1, c, 1, 1)
    return out


def random_crop_flip(x, rng=None, *, pad: int = 4, flip: bool = True):
    """Random ``H x W`` crops of the zero-padded images, each flipped left-right with
    probability 1/2 (module docstring).  Returns a new ``(N, C, H, W)`` array.

    Draws, in order: the row offsets, the column offsets (each ``rng.integers(0, 2p+1, N)``)
    and, with ``flip``, the flips (``rng.integers(0, 2, N)``).

    Parameters
    ----------
    x : array (N, C, H, W)
    rng : int, Generator or None
    pad : int, default 4
        Zero pixels added on each side before cropping back to ``H x W``.
    flip : bool, default True
    """
    _check_images(x)
    p = _nonnegative_int(pad, "pad")
    rng = check_rng(rng)
    xp = get_array_module(x)
    n, c, h, w = (int(s) for s in x.shape)
    padded = pad_images(x, p) if p else x
    dy = rng.integers(0, 2 * p + 1, n, xp=xp)
    dx = rng.integers(0, 2 * p + 1, n, xp=xp)
    rows = dy[:, None] + xp.arange(h)[None, :]                        # (N, H)
    cols = xp.arange(w)[None, :]
    if flip:
        flipped = rng.integers(0, 2, n, xp=xp)[:, None]               # 1: mirror the crop
        cols = cols + flipped * (w - 1 - 2 * cols)                    # v -> w-1-v
    cols = dx[:, None] + cols                                         # (N, W)
    idx_n = xp.arange(n)[:, None, None, None]
    idx_c = xp.arange(c)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]
