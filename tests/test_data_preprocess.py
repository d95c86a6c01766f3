"""Preprocessing on every backend: one-hot, standardise, unit norm, flatten, subsets, splits."""

import numpy as np
import pytest

import bionp as bnp
from bionp.data import (
    flatten,
    normalize_rows,
    one_hot,
    standardize,
    stratified_subset,
    train_val_split,
)
from bionp.data.preprocess import apply_standardize
from bionp.testing import assert_allclose, assert_equal


def _data(xp, n=60, d=5, n_classes=3):
    g = bnp.random.Generator(0)
    x = g.normal(1.0, 2.0, size=(n, d), dtype="float64")
    y = (xp.arange(n) * 7) % n_classes
    return x, y


def test_one_hot(xp):
    y = xp.asarray([2, 0, 1, 2])
    t = one_hot(y, 4)
    assert t.dtype == np.float32 and t.shape == (4, 4)
    assert_equal(t, np.eye(4, dtype=np.float32)[[2, 0, 1, 2]])
    assert one_hot(y, dtype="float64").shape == (4, 3)
    with pytest.raises(ValueError, match=r"labels must lie in 0…1 for n_classes=2, found 0…2"):
        one_hot(y, 2)
    with pytest.raises(ValueError, match="integer labels"):
        one_hot(xp.asarray([0.5]))
    with pytest.raises(ValueError, match="1-d"):
        one_hot(xp.zeros((2, 2), dtype=xp.int64))
    with pytest.raises(ValueError, match="n_classes must be an int >= 1"):
        one_hot(y, 0)


def test_standardize_uses_train_statistics_only(xp):
    x, _ = _data(xp)
    x = xp.concatenate([x, xp.ones((60, 1))], axis=1)  # a constant feature: only centred
    xt = x[:10] * 3.0
    xs, xts, stats = standardize(x, xt)
    h = bnp.asnumpy(x)
    assert_allclose(stats["mean"], h.mean(0), rtol=1e-12)
    assert_allclose(xs.mean(0), np.zeros(6), atol=1e-12)
    assert_allclose(xs.std(0)[:5], np.ones(5), rtol=1e-12)
    assert_equal(xs[:, 5], np.zeros(60))
    sd = h.std(0)
    sd[5] = 1.0
    assert_allclose(xts, (bnp.asnumpy(xt) - h.mean(0)) / sd, rtol=1e-12)
    assert_allclose(apply_standardize(xt, stats), xts, rtol=0)
    with pytest.raises(ValueError, match="feature shape"):
        standardize(x, x[:, :2])
    with pytest.raises(TypeError, match="x_train has dtype int64 where floats are expected"):
        standardize(xp.zeros((3, 2), dtype=xp.int64))


def test_normalize_rows_and_flatten(xp):
    x = xp.asarray([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], dtype=xp.float32)
    out = normalize_rows(x)
    assert_allclose(out, np.array([[0.6, 0.8], [0, 0], [-1, 0]], dtype=np.float32), rtol=1e-6)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="2-d"):
        normalize_rows(xp.zeros((2, 2, 2)))
    assert flatten(xp.zeros((4, 3, 2))).shape == (4, 6)


def test_stratified_subset_keeps_proportions_and_is_seeded(xp):
    y = xp.asarray([0] * 50 + [1] * 30 + [2] * 20)
    x = xp.arange(100, dtype=xp.float32)[:, None]
    xs, ys, idx = stratified_subset(x, y, 10, rng=3, return_index=True)
    assert np.bincount(bnp.asnumpy(ys)).tolist() == [5, 3, 2]
    ih = bnp.asnumpy(idx)
    assert (np.diff(ih) > 0).all()  # original order
    assert_equal(xs[:, 0], ih.astype(np.float32))
    _, _, idx2 = stratified_subset(x, y, 10, rng=3, return_index=True)
    assert_equal(idx2, ih)
    with bnp.backend("numpy"):
        _, _, ref = stratified_subset(
            np.arange(100.0)[:, None], np.asarray(bnp.asnumpy(y)), 10, rng=3, return_index=True
        )
    assert_equal(idx, ref)  # same seed, same subset on every backend
    _, ys7 = stratified_subset(x, y, 7, rng=0)  # largest remainder: 3.5, 2.1, 1.4 -> 4, 2, 1
    assert np.bincount(bnp.asnumpy(ys7)).tolist() == [4, 2, 1]
    for bad in (0, 101, 2.5, True):
        with pytest.raises(ValueError, match="n"):
            stratified_subset(x, y, bad)
    with pytest.raises(ValueError, match="same number of samples"):
        stratified_subset(x[:5], y, 2)


def test_train_val_split(xp):
    x, y = _data(xp, n=60)
    xtr, ytr, xva, yva = train_val_split(x, y, 0.25, rng=1)
    assert xtr.shape == (45, 5) and xva.shape == (15, 5)
    assert np.bincount(bnp.asnumpy(yva)).tolist() == [5, 5, 5]
    all_rows = np.concatenate([bnp.asnumpy(xtr), bnp.asnumpy(xva)])
    assert sorted(map(tuple, all_rows)) == sorted(map(tuple, bnp.asnumpy(x)))  # a partition
    a = train_val_split(x, y, 0.25, rng=1, stratify=False)
    b = train_val_split(x, y, 0.25, rng=1, stratify=False)
    assert_equal(a[3], b[3])
    for bad in (0.0, 1.0, -0.1, 1.5, "0.2", True):
        with pytest.raises(
            ValueError, match="val_fraction must be a number strictly between 0 and 1"
        ):
            train_val_split(x, y, bad)
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        train_val_split(x, y, 0.001)
