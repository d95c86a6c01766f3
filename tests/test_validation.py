"""bionp.validation.check_finite: NaN and ±Inf found (with counts), finite arrays pass."""

import numpy as np
import pytest

import bionp as bnp
from bionp.validation import check_finite


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_finite_finds_nan_and_inf(xp, dtype):
    base = np.linspace(-3.0, 3.0, 24).reshape(4, 6).astype(dtype)
    check_finite(bnp.asarray(base))
    for value, counts in ((np.nan, "1 NaN, 0 Inf"), (np.inf, "0 NaN, 1 Inf"),
                          (-np.inf, "0 NaN, 1 Inf")):
        a = base.copy()
        a[2, 3] = value
        with pytest.raises(ValueError, match=counts):
            check_finite(bnp.asarray(a), "x")
    a = base.copy()
    a[0, 0], a[1, 1] = np.inf, -np.inf  # max - min would be NaN: still counted correctly
    with pytest.raises(ValueError, match="0 NaN, 2 Inf"):
        check_finite(bnp.asarray(a))


def test_check_finite_extremes_and_other_dtypes(xp):
    big = np.finfo(np.float32).max
    check_finite(bnp.asarray(np.array([big, -big], dtype=np.float32)))  # finite, no overflow error
    check_finite(bnp.asarray(np.array([1, 2, 3])))
    check_finite(bnp.asarray(np.array([True, False])))
    check_finite(bnp.asarray(np.zeros((0, 3), dtype=np.float32)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_finite_row_sums_overflow_and_layouts(xp, dtype):
    """2-D and higher float arrays are tested by row sums: finite rows whose sums overflow
    pass, and NaN/Inf are found in 3-D, transposed and half-precision arrays too."""
    big = np.finfo(dtype).max
    with np.errstate(over="ignore", invalid="ignore"):
        check_finite(bnp.asarray(np.full((3, 5), big, dtype=dtype)))  # every row sum is inf
        check_finite(bnp.asarray(np.tile(np.array([big, big, -big, -big], dtype=dtype), (2, 1))))
    a = np.ones((2, 3, 4), dtype=dtype)
    a[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN, 0 Inf of 24"):
        check_finite(bnp.asarray(a))
    b = np.ones((6, 5), dtype=dtype)
    b[4, 1] = -np.inf
    with pytest.raises(ValueError, match="0 NaN, 1 Inf"):
        check_finite(bnp.asarray(b).T)  # not C-contiguous
    h = np.ones((3, 4), dtype=np.float16)
    check_finite(bnp.asarray(h))
    h[0, 1] = np.inf
    with pytest.raises(ValueError, match="0 NaN, 1 Inf"):
        check_finite(bnp.asarray(h))
