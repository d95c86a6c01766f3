r"""Preprocessing on the active backend: one-hot, standardise, unit-norm rows, subsets, splits.

Every function works on arrays of any backend (``xp`` is taken from the
arguments) and draws randomness only from :class:`bionp.random.Generator`
(``rng=`` is an int seed, a Generator or None).

* :func:`one_hot`: :math:`T_{nc} = [y_n = c]`.
* :func:`standardize`: :math:`\tilde x_{nd} = (x_{nd} - \mu_d) / s_d` with
  :math:`\mu, s` the mean and standard deviation of the **training** split
  (features with :math:`s_d \le \varepsilon` are only centred).
* :func:`normalize_rows`: :math:`\tilde x_n = x_n / \lVert x_n \rVert_2`,
  zero rows left zero (Krotov & Hopfield 2019 feed unit-norm inputs).
* :func:`stratified_subset`, :func:`train_val_split`: class proportions kept
  (largest-remainder allocation), samples kept in their original order.
"""

from __future__ import annotations

import numbers

import numpy as np

from bionp.backend import (
    asarray,
    asnumpy,
    check_same_backend,
    get_array_module,
    is_array,
    resolve_dtype,
    to_scalar,
)
from bionp.random import check_rng
from bionp.validation import check_finite, check_float_dtype, check_real

__all__ = [
    "one_hot",
    "standardize",
    "apply_standardize",
    "normalize_rows",
    "flatten",
    "stratified_subset",
    "train_val_split",
]


def check_data(x, name="x", min_ndim=1, ndim=None, floats=False):
    """Refuse a non-array, a wrong rank, no samples and (``floats``) non-float or NaN/Inf data."""
    if not is_array(x):
        raise TypeError(f"{name} must be an array of the active backend, got "
                        f"{type(x).__name__}; convert with bionp.asarray({name})")
    if x.ndim < min_ndim or (ndim is not None and x.ndim != ndim):
        want = f"{ndim}-d" if ndim is not None else f"at least {min_ndim}-d"
        raise ValueError(f"{name} must be {want} (samples first), got shape {tuple(x.shape)}")
    if floats:
        if x.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): no statistics to take")
        check_float_dtype(x, name)
        check_finite(x, name)


def _check_xy(x, y):
    check_data(x, "x")
    if not is_array(y):
        raise TypeError(f"y must be an array of labels, got {type(y).__name__}")
    xp = check_same_backend(x, y, names=("x", "y"))
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-d array of labels, got shape {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}"
        )
    return xp


def _check_int(v, name, low=1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return int(v)


def one_hot(y, n_classes: int | None = None, *, dtype=None):
    """``(N, n_classes)`` matrix with a 1 in column ``y[n]`` of row ``n`` (default float dtype).

    ``n_classes`` defaults to ``max(y) + 1``; labels outside ``0 … n_classes-1`` are an error.

    Parameters
    ----------
    y : array (N,) of int
    n_classes : int or None
    dtype : dtype or None
        ``None`` takes :func:`bionp.get_dtype`.

    Examples
    --------
    >>> import numpy as np
    >>> one_hot(np.array([0, 2, 1]), 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    if not is_array(y):
        raise TypeError(f"y must be an array of integer labels, got {type(y).__name__}")
    xp = get_array_module(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot needs a 1-d array of integer labels, got shape {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"one_hot needs integer labels, got dtype {y.dtype}")
    lo = to_scalar(y.min()) if y.shape[0] else 0
    hi = to_scalar(y.max()) if y.shape[0] else -1
    if n_classes is None:
        n_classes = hi + 1
    n_classes = _check_int(n_classes, "n_classes")
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"labels must lie in 0…{n_classes - 1} for n_classes={n_classes}, found "
                         f"{lo}…{hi}")
    dt = resolve_dtype(dtype)
    return (y[:, None] == xp.arange(n_classes, dtype=y.dtype)[None, :]).astype(dt)


def standardize(x_train, x_test=None, *, eps: float = 1e-8):
    """Standardise features with statistics from the training split only.

    Parameters
    ----------
    x_train : array (N, ...)
        The statistics come from it alone.
    x_test : array or None
    eps : float, default 1e-8

    Returns
    -------
    x_train_std, x_test_std (None if ``x_test`` is None), stats
        ``stats = {"mean": mu, "std": s}`` (arrays of shape ``x_train.shape[1:]``;
        ``s`` is 1 where the training standard deviation is ``<= eps``) — apply
        them to more data with :func:`apply_standardize`.
    """
    check_data(x_train, "x_train", min_ndim=2, floats=True)
    xp = (
        get_array_module(x_train)
        if x_test is None
        else check_same_backend(x_train, x_test, names=("x_train", "x_test"))
    )
    eps = check_real("eps", eps, low=0)
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(
            f"x_test's feature shape {tuple(x_test.shape[1:])} differs from "
            f"x_train's {tuple(x_train.shape[1:])}"
        )
    mean = xp.mean(x_train, axis=0)
    std = xp.std(x_train, axis=0)
    std = xp.where(std > eps, std, xp.ones_like(std))
    stats = {"mean": mean, "std": std}
    return (
        apply_standardize(x_train, stats),
        (None if x_test is None else apply_standardize(x_test, stats)),
        stats,
    )


def apply_standardize(x, stats):
    """``(x - stats["mean"]) / stats["std"]`` in ``x``'s dtype.

    Parameters
    ----------
    x : array
    stats : dict
        ``{"mean": ..., "std": ...}`` from :func:`standardize`.
    """
    check_same_backend(x, stats["mean"], names=("x", "stats['mean']"))
    out = x - stats["mean"].astype(x.dtype, copy=False)
    out /= stats["std"].astype(x.dtype, copy=False)
    return out


def normalize_rows(x, *, eps: float = 0.0):
    """Rows scaled to unit Euclidean norm; rows with norm ``<= eps`` (zero rows) stay as they are.

    Parameters
    ----------
    x : array (N, D)
    eps : float, default 0.0
        Rows whose norm is at most ``eps`` are left unchanged.
    """
    check_data(x, "x", ndim=2)
    check_float_dtype(x, "x")
    check_finite(x, "x")
    eps = check_real("eps", eps, low=0)
    xp = get_array_module(x)
    norms = xp.sqrt(xp.sum(x * x, axis=1, keepdims=True))
    norms = xp.where(norms > eps, norms, xp.ones_like(norms))
    return x / norms


def flatten(x):
    """``(N, ...)`` → ``(N, prod(...))`` (a view when possible).

    Parameters
    ----------
    x : array (N, ...)
    """
    if x.ndim < 1:
        raise ValueError("flatten needs an array with a sample axis")
    return x.reshape(x.shape[0], -1)


def _allocation(counts: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder split of ``n`` over classes proportionally to ``counts`` (host ints)."""
    total = int(counts.sum())
    exact = counts.astype(np.float64) * n / total
    alloc = np.floor(exact).astype(np.int64)
    rest = n - int(alloc.sum())
    if rest:
        order = np.argsort(-(exact - alloc), kind="stable")
        alloc[order[:rest]] += 1
    return np.minimum(alloc, counts)


def _stratified_mask(y, n: int, rng, xp):
    """Boolean mask choosing ``n`` samples, class proportions kept, at random within each class."""
    N = y.shape[0]
    yi = y.astype(xp.int64)
    counts = asnumpy(xp.bincount(yi))  # one small host read: the class sizes
    alloc = asarray(_allocation(counts, n), xp=xp)
    starts = asarray(np.concatenate(([0], np.cumsum(counts)[:-1])), xp=xp)
    perm = rng.permutation(N, xp=xp)
    order = perm[xp.argsort(yi[perm], kind="stable")]  # grouped by class, random within class
    cls = yi[order]
    rank = xp.arange(N) - starts[cls]
    mask = xp.zeros(N, dtype=bool)
    mask[order[rank < alloc[cls]]] = True
    return mask


def _check_labels(y):
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape[0] and to_scalar(y.min()) < 0:
        raise ValueError("labels must be non-negative")


def stratified_subset(x, y, n: int, *, rng=None, return_index: bool = False):
    """``n`` samples of ``(x, y)`` with the class proportions of ``y``, in their original order.

    Parameters
    ----------
    n : int
        ``1 <= n <= len(y)``.
    rng : int, Generator or None
        Which samples of each class are kept.
    return_index : bool
        Also return the chosen (sorted) indices.
    """
    xp = _check_xy(x, y)
    _check_labels(y)
    N = y.shape[0]
    n = _check_int(n, "n")
    if n > N:
        raise ValueError(f"n={n} is larger than the number of samples ({N})")
    mask = _stratified_mask(y, n, check_rng(rng), xp)
    idx = xp.nonzero(mask)[0]
    out = (x[idx], y[idx])
    return out + (idx,) if return_index else out


def train_val_split(x, y, val_fraction: float, *, rng=None, stratify: bool = True):
    """Split ``(x, y)`` into training and validation parts.

    ``round(val_fraction * N)`` samples go to validation (class proportions
    kept when ``stratify``), the rest to training; both keep the original order.

    Parameters
    ----------
    x : array (N, ...)
    y : array (N,) of int
    val_fraction : float in (0, 1)
    rng : int, Generator or None
        Draws which samples go to validation.
    stratify : bool, default True

    Returns
    -------
    x_train, y_train, x_val, y_val
    """
    xp = _check_xy(x, y)
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not 0.0 < float(val_fraction) < 1.0
    ):
        raise ValueError(
            f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}"
        )
    N = y.shape[0]
    n_val = int(round(float(val_fraction) * N))
    if n_val < 1 or n_val > N - 1:
        raise ValueError(
            f"val_fraction={val_fraction} of {N} samples leaves {n_val} for validation and "
            f"{N - n_val} for training; both need at least one"
        )
    gen = check_rng(rng)
    if stratify:
        _check_labels(y)
        mask = _stratified_mask(y, n_val, gen, xp)
    else:
        mask = xp.zeros(N, dtype=bool)
        mask[gen.permutation(N, xp=xp)[:n_val]] = True
    val = xp.nonzero(mask)[0]
    train = xp.nonzero(~mask)[0]
    return x[train], y[train], x[val], y[val]
