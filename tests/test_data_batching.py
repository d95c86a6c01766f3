"""Mini-batches: seeded shuffling, identical on every backend, last-batch policy, device policy."""

import numpy as np
import pytest

import bionp as bnp
from bionp.data import BatchIterator, iterate_batches
from bionp.testing import assert_equal


def _xy(xp, n=23):
    x = xp.arange(n * 3, dtype=xp.float32).reshape(n, 3)
    y = xp.arange(n) % 4
    return x, y


def _host(batches):
    return [(bnp.asnumpy(a), bnp.asnumpy(b)) for a, b in batches]


@pytest.mark.parametrize("drop_last", [False, True])
def test_every_sample_once_and_last_batch(xp, drop_last):
    x, y = _xy(xp)
    batches = list(iterate_batches(x, y, 5, rng=0, drop_last=drop_last))
    sizes = [b[0].shape[0] for b in batches]
    assert sizes == ([5, 5, 5, 5] if drop_last else [5, 5, 5, 5, 3])
    assert len(BatchIterator(x, y, 5, drop_last=drop_last)) == len(sizes)
    rows = np.concatenate([bnp.asnumpy(xb)[:, 0] for xb, _ in batches]) / 3
    if drop_last:
        assert len(set(rows.tolist())) == 20
    else:
        assert sorted(rows.tolist()) == list(range(23))
    for xb, yb in batches:  # x and y stay aligned
        assert_equal(yb, (bnp.asnumpy(xb)[:, 0] / 3).astype(np.int64) % 4)
        assert bnp.get_array_module(xb) is xp


def test_same_seed_same_batches_on_every_backend(xp):
    x, y = _xy(xp)
    got = _host(iterate_batches(x, y, 4, rng=42))
    with bnp.backend("numpy"):
        ref = _host(iterate_batches(*_xy(np), 4, rng=42))
    for (a, b), (c, d) in zip(got, ref):
        assert_equal(a, c)
        assert_equal(b, d)
    it = BatchIterator(x, y, 4, rng=42)
    e1, e2 = _host(it), _host(it)  # each epoch a fresh permutation
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(e1, e2))


def test_no_shuffle_gives_views_in_order(xp):
    x, _ = _xy(xp, 10)
    batches = list(iterate_batches(x, None, 4, shuffle=False))
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    assert_equal(batches[2], bnp.asnumpy(x)[8:])


def test_host_data_moves_per_batch_to_active_backend():
    x, y = _xy(np)
    with bnp.backend("strict") as sxp:
        batches = list(iterate_batches(x, y, 8, rng=0))
        assert all(bnp.get_array_module(a, b) is sxp for a, b in batches)
    ref = list(iterate_batches(x, y, 8, rng=0))
    for (a, _), (c, _) in zip(batches, ref):
        assert_equal(a, c)


def test_bad_arguments(xp):
    x, y = _xy(xp)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
            iterate_batches(x, y, bad)
    with pytest.raises(ValueError, match="drop_last=True would give no batch"):
        iterate_batches(x, y, 100, drop_last=True)
    with pytest.raises(ValueError, match="same number of samples"):
        iterate_batches(x, y[:5], 4)
    with pytest.raises(TypeError, match="shuffle and drop_last"):
        iterate_batches(x, y, 4, drop_last=1)


def test_mixed_backends_refused():
    with bnp.backend("strict") as sxp:
        y_strict = sxp.asarray(np.zeros(23))
    with pytest.raises(bnp.MixedBackendError, match="x is a numpy array, y is a strict array"):
        iterate_batches(np.zeros((23, 3)), y_strict, 4)


def test_parity_check_passes():
    from bionp.parity import run_checks

    rows = run_checks(names=["data.batch_iterator"], backends=["strict"])
    assert rows and all(r["passed"] and r["max_rel_diff"] == 0.0 for r in rows)
