"""The strict stand-in must fail wherever CuPy would (and on silent host syncs)."""

import numpy as np
import pytest

import bionp as bnp
from bionp._strict import StrictArray


@pytest.fixture
def sx():
    with bnp.backend("strict") as xp:
        yield xp


def test_arrays_are_strict(sx):
    a = sx.ones((2, 3), dtype=sx.float32)
    assert isinstance(a, StrictArray) and isinstance(a, sx.ndarray)
    assert not isinstance(a, np.ndarray)
    assert a.shape == (2, 3) and a.dtype == np.float32
    s = a.sum()
    assert isinstance(s, StrictArray) and s.shape == ()  # reductions stay on device


@pytest.mark.parametrize("convert", [
    np.asarray, np.array, float, int, bool, list, lambda a: [v for v in a], lambda a: f"{a:.3f}",
    lambda a: 1.0 in a,
])
def test_implicit_host_conversion_refused(sx, convert):
    a = sx.arange(3.0)
    with pytest.raises(TypeError, match="implicit conversion"):
        convert(a if convert not in (float, int, bool) else a[0])


@pytest.mark.parametrize("op", [
    lambda d, h: d + h, lambda d, h: h + d, lambda d, h: d * h, lambda d, h: h @ d,
    lambda d, h: d.__iadd__(h), lambda d, h: np.add(d, h),
])
def test_mixing_with_numpy_refused(sx, op):
    d = sx.ones(3)
    h = np.ones(3)
    with pytest.raises((bnp.MixedBackendError, TypeError)):
        op(d, h)


def test_mixing_in_xp_functions_refused(sx):
    d = sx.ones(3)
    with pytest.raises(bnp.MixedBackendError, match="xp.concatenate"):
        sx.concatenate([d, np.ones(2)])
    with pytest.raises(bnp.MixedBackendError, match="xp.maximum"):
        sx.maximum(d, np.zeros(3))
    with pytest.raises(bnp.MixedBackendError):
        d[np.array([0, 1])]
    with pytest.raises(bnp.MixedBackendError):
        d[:2] = np.zeros(2)


def test_xp_random_refused(sx):
    with pytest.raises(AttributeError, match="bionp.random.Generator"):
        sx.random.rand(3)


def test_explicit_paths_work(sx):
    h = np.arange(4.0)
    d = sx.asarray(h)  # explicit upload
    d2 = bnp.asarray(h)
    assert isinstance(d, StrictArray) and isinstance(d2, StrictArray)
    np.testing.assert_array_equal(d.get(), h)
    np.testing.assert_array_equal(bnp.asnumpy(d2), h)
    assert d[1].item() == 1.0 and bnp.to_scalar(d.sum()) == 6.0
    d += 1
    d *= sx.float32(2)
    sx.add.at(d, sx.asarray([0, 0]), 1.0)
    np.testing.assert_array_equal(sx.asnumpy(d), [4.0, 4.0, 6.0, 8.0])
    out = sx.empty(4)
    sx.multiply(d, 2, out=out)
    np.testing.assert_array_equal(out.get(), [8, 8, 12, 16])


def test_numbers_equal_numpy(sx):
    """The strict backend computes with NumPy: bitwise the same results."""
    h = np.linspace(-3, 3, 101)
    d = sx.asarray(h)
    for f in ("exp", "tanh", "sin", "log1p"):
        x = np.abs(h) if f == "log1p" else h
        dx = sx.abs(d) if f == "log1p" else d
        np.testing.assert_array_equal(getattr(sx, f)(dx).get(), getattr(np, f)(x))
    np.testing.assert_array_equal((d.reshape(101, 1) @ d.reshape(1, 101)).get(), np.outer(h, h))
    idx = sx.argpartition(d, 5)[:5]
    assert sorted(idx.get().tolist()) == sorted(np.argpartition(h, 5)[:5].tolist())


def _buggy_library_function(W):
    """What a typical host/device bug looks like in library code."""
    xp = bnp.get_array_module(W)
    mask = np.abs(bnp.asnumpy(W)) > 0.5 if False else np.ones(W.shape, dtype=bool)  # host array
    return xp.where(mask, W, 0.0)


def _fixed_library_function(W):
    xp = bnp.get_array_module(W)
    mask = xp.ones(W.shape, dtype=bool)
    return xp.where(mask, W, 0.0)


def test_strict_catches_a_deliberate_host_device_mix(sx):
    W = sx.ones((2, 2))
    # NumPy alone cannot see the bug ...
    with bnp.backend("numpy"):
        _buggy_library_function(np.ones((2, 2)))
    # ... the strict stand-in does, exactly as CuPy would ...
    with pytest.raises(bnp.MixedBackendError):
        _buggy_library_function(W)
    # ... and the guard is what makes the difference: without it the bug passes.
    unguarded = W._a  # the raw ndarray inside, i.e. what a plain subclass would expose
    np.where(np.ones((2, 2), dtype=bool), unguarded, 0.0)
    _fixed_library_function(W)
