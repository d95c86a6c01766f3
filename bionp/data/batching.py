"""Mini-batches drawn with bionp's generator, indexed on the arrays' own backend.

Each epoch visits a permutation :math:`\\pi` of ``0 … N-1`` (drawn with
:meth:`bionp.random.Generator.permutation`, the same on every backend) in
consecutive slices of ``batch_size``: batch :math:`b` holds samples
:math:`\\pi_{bB}, …, \\pi_{bB + B - 1}`.

Last-batch policy
-----------------
``drop_last=False`` (default): the last batch is smaller when ``batch_size``
does not divide ``N``, so every sample appears exactly once per epoch.
``drop_last=True``: that short batch is dropped (all batches have exactly
``batch_size`` samples; with shuffling, different samples are left out each
epoch).

Device policy
-------------
Batches are gathered on the backend that holds ``x`` (no host↔device copy
when ``x`` already lives on the active backend).  When ``x`` is a host array
and the active backend is another one (CuPy), each batch is moved with
:func:`bionp.asarray` after the gather, so only ``batch_size`` rows cross.
"""

from __future__ import annotations

import numbers

from bionp.backend import asarray, backend_name, backend_of, check_same_backend, get_array_module
from bionp.random import check_rng

__all__ = ["BatchIterator", "iterate_batches"]


class BatchIterator:
    """Re-iterable mini-batches of ``(x, y)`` (or of ``x`` alone when ``y`` is None).

    Parameters
    ----------
    x : array (N, ...)
    y : array (N, ...) or None
    batch_size : int >= 1
    shuffle : bool, default True
        A fresh permutation per epoch (per ``iter()``), drawn from ``rng``;
        ``False`` yields contiguous slices (views) in order.
    rng : int, Generator or None
    drop_last : bool, default False
        See the module docstring ("Last-batch policy").

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.zeros((250, 784), dtype=np.float32), np.arange(250) % 10
    >>> it = BatchIterator(x, y, batch_size=100, rng=0)
    >>> len(it)                                  # the last batch holds 50
    3
    >>> for epoch in range(3):                   # a new order every epoch
    ...     sizes = [len(yb) for xb, yb in it]
    >>> sizes
    [100, 100, 50]
    """

    def __init__(
        self,
        x,
        y=None,
        batch_size: int = 32,
        *,
        shuffle: bool = True,
        rng=None,
        drop_last: bool = False,
    ):
        self._xp = (
            check_same_backend(x, y, names=("x", "y")) if y is not None else get_array_module(x)
        )
        if getattr(x, "ndim", 0) < 1:
            raise ValueError("x must be an array with a sample axis (N, ...)")
        if y is not None and y.shape[0] != x.shape[0]:
            raise ValueError(
                f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(shuffle, bool) or not isinstance(drop_last, bool):
            raise TypeError("shuffle and drop_last must be True or False")
        n = int(x.shape[0])
        if drop_last and batch_size > n:
            raise ValueError(
                f"batch_size={batch_size} is larger than the number of samples ({n}) and "
                "drop_last=True would give no batch at all; lower batch_size or set drop_last=False"
            )
        self.x, self.y = x, y
        self.n_samples = n
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = check_rng(rng)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _move(self, a):
        return a if backend_of(a) == backend_name() else asarray(a)

    def __iter__(self):
        xp, B = self._xp, self.batch_size
        order = self.rng.permutation(self.n_samples, xp=xp) if self.shuffle else None
        for b in range(len(self)):
            lo, hi = b * B, min((b + 1) * B, self.n_samples)
            if order is None:
                xb = self.x[lo:hi]
                yb = None if self.y is None else self.y[lo:hi]
            else:
                idx = order[lo:hi]
                xb = xp.take(self.x, idx, axis=0)
                yb = None if self.y is None else xp.take(self.y, idx, axis=0)
            xb = self._move(xb)
            if self.y is None:
                yield xb
            else:
                yield xb, self._move(yb)


def iterate_batches(
    x, y=None, batch_size: int = 32, *, shuffle: bool = True, rng=None, drop_last: bool = False
):
    """One epoch of mini-batches (see :class:`BatchIterator`); arguments are checked at once.

    Parameters
    ----------
    x, y, batch_size, shuffle, rng, drop_last
        As for :class:`BatchIterator`.
    """
    return iter(BatchIterator(x, y, batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last))
