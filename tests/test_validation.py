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
