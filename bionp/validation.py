"""Input checks shared by layers, networks and losses (clear errors, one device sync)."""

from __future__ import annotations

from bionp.backend import get_array_module, to_scalar

__all__ = ["check_finite"]


def check_finite(a, what: str = "x", fix: str = "clean or mask them first") -> None:
    """Raise ``ValueError`` naming the NaN/Inf counts if ``a`` has non-finite entries.

    The common case costs one reduction and one scalar read: the sum of a finite
    array is finite (if it overflows, the entries are counted and found finite).
    """
    xp = get_array_module(a)
    if a.size and not to_scalar(xp.isfinite(xp.sum(a))):
        n_nan = to_scalar(xp.count_nonzero(xp.isnan(a)))
        n_inf = to_scalar(xp.count_nonzero(xp.isinf(a)))
        if n_nan or n_inf:
            raise ValueError(f"{what} contains non-finite values ({n_nan} NaN, {n_inf} Inf of "
                             f"{a.size}); {fix}")
