"""Input checks shared by layers, networks and losses (clear errors, one device sync)."""

from __future__ import annotations

from bionp.backend import get_array_module, is_array, to_scalar

__all__ = ["check_finite", "check_samples"]


def check_finite(a, what: str = "x", fix: str = "clean or mask them first") -> None:
    """Raise ``ValueError`` naming the NaN/Inf counts if ``a`` has non-finite entries.

    The common case costs two vectorised reductions and one scalar read: the maximum
    and the minimum of a real array are both finite exactly when every entry is (NaN
    and ±Inf propagate into them); complex arrays use the sum (if it overflows, the
    entries are counted and found finite).  Integer and boolean arrays are finite.
    """
    if not a.size or a.dtype.kind in "biu":  # empty, or integers and booleans: always finite
        return
    xp = get_array_module(a)
    if a.dtype.kind == "f":
        finite = xp.isfinite(xp.max(a)) & xp.isfinite(xp.min(a))
    else:
        finite = xp.isfinite(xp.sum(a))
    if not to_scalar(finite):
        n_nan = to_scalar(xp.count_nonzero(xp.isnan(a)))
        n_inf = to_scalar(xp.count_nonzero(xp.isinf(a)))
        if n_nan or n_inf:
            raise ValueError(f"{what} contains non-finite values ({n_nan} NaN, {n_inf} Inf of "
                             f"{a.size}); {fix}")


def check_samples(x, what: str = "x") -> None:
    """Raise a clear error unless ``x`` is a non-empty 2-D array ``(n_samples, n_features)``
    of one of bionp's backends."""
    if not is_array(x):
        raise TypeError(f"{what} must be an array of shape (n_samples, n_in) on the active "
                        f"backend, got {type(x).__name__}; convert with bionp.asarray(x)")
    if x.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_samples, n_in), got shape {tuple(x.shape)}; "
                         "flatten images with x.reshape(len(x), -1)")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples, shape {tuple(x.shape)}); "
                         "pass at least one sample")
