"""Synaptic resampling: invariants over 1,000 events, the probabilistic variant's statistics."""

import math

import numpy as np
import pytest

import bionp as bnp
from bionp.dendritic import DendriticLayer, draw_unconnected_inputs, prune_probability
from bionp.dendritic.resampling import (_draw_by_rejection, _rejection_width, _use_rejection,
                                        reset_optimizer_state)


def _n_events():
    """1,000 events; 250 on the strict stand-in (bit-identical to NumPy, see the parity
    tests, but its generator runs in pure array arithmetic and is slow)."""
    return 250 if bnp.backend_name() == "strict" else 1000


def _structure_ok(idx, in_dim, n):
    assert idx.shape[1] == n                                   # constant synapse count
    assert idx.min() >= 0 and idx.max() < in_dim               # indices in range
    s = np.sort(idx, axis=1)
    assert np.all(s[:, 1:] != s[:, :-1])                       # no duplicate input per dendrite


def test_weakest_resampling_invariants_over_1000_events(xp):
    in_dim, n = 20, 6
    layer = DendriticLayer(in_dim, 2, n, 3, percentage_resample=0.5, steps_to_resample=1, rng=4,
                           dtype="float64")
    g = bnp.random.Generator(8)
    k = layer.n_resample
    assert k == 3
    for event in range(_n_events()):
        old_idx = bnp.asnumpy(layer.idx).copy()
        old_w = bnp.asnumpy(layer.w).copy()
        assert layer.after_update()
        idx, w = bnp.asnumpy(layer.idx), bnp.asnumpy(layer.w)
        mask = bnp.asnumpy(layer.resampled_mask)
        _structure_ok(idx, in_dim, n)
        assert np.all(mask.sum(axis=1) == k)                   # k replaced in every dendrite
        # untouched synapses keep their input and weight
        assert np.array_equal(idx[~mask], old_idx[~mask]) and np.array_equal(w[~mask], old_w[~mask])
        # only the weakest were replaced: every kept |w| >= every removed |w|
        a = np.abs(old_w)
        kept_min = np.where(mask, np.inf, a).min(axis=1)
        removed_max = np.where(mask, a, -np.inf).max(axis=1)
        assert np.all(kept_min >= removed_max)
        # new inputs were not connected to that dendrite before the event
        for r in range(idx.shape[0]):
            assert not set(idx[r][mask[r]].tolist()) & set(old_idx[r].tolist())
        # "training" between events
        layer.w += g.normal(0, 0.05, layer.w.shape)
    assert layer.n_resamplings == _n_events()


def test_new_inputs_are_uniform_over_unconnected(cpu_xp):
    g = bnp.random.Generator(1)
    idx = bnp.get_xp().asarray(np.array([[0, 1, 2, 3]] * 2000, dtype=np.int64))
    new = bnp.asnumpy(draw_unconnected_inputs(idx, 10, 3, g))
    assert new.shape == (2000, 3) and new.min() >= 4
    counts = np.bincount(new.ravel(), minlength=10)[4:]
    expected = 2000 * 3 / 6
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    with pytest.raises(ValueError, match="only 6 of 10"):
        draw_unconnected_inputs(idx, 10, 7, g)


def test_probabilistic_invariants_over_1000_events(xp):
    in_dim, n = 16, 6
    layer = DendriticLayer(in_dim, 2, n, 3, resampling="probabilistic", steps_to_resample=1,
                           rng=5, init="he", prune_threshold=0.8)
    g = bnp.random.Generator(2)
    total = 0
    for _ in range(_n_events()):
        old_idx = bnp.asnumpy(layer.idx).copy()
        old_w = bnp.asnumpy(layer.w).copy()
        layer.after_update()
        idx, w = bnp.asnumpy(layer.idx), bnp.asnumpy(layer.w)
        mask = bnp.asnumpy(layer.resampled_mask)
        _structure_ok(idx, in_dim, n)
        assert np.array_equal(idx[~mask], old_idx[~mask]) and np.array_equal(w[~mask], old_w[~mask])
        assert np.all(idx[mask] != old_idx[mask])
        for r in range(idx.shape[0]):
            assert not set(idx[r][mask[r]].tolist()) & set(old_idx[r].tolist())
        total += int(mask.sum())
        layer.w *= np.float32(1.05)  # weights grow: fewer replacements later
        layer.w += g.normal(0, 0.05, layer.w.shape)
    assert total > 0


def test_probabilistic_rates_and_laplace_weights(cpu_xp):
    xp = cpu_xp
    layer = DendriticLayer(4000, 1, 200, 1, resampling="probabilistic", steps_to_resample=1,
                           rng=3, dtype="float64")
    levels = np.array([0.3, 0.6, 0.75])
    p_expected = 0.95 / (1 + np.exp((levels - 0.6) / 0.1))
    hits = np.zeros(3)
    new_w = []
    n_events = 40
    for _ in range(n_events):
        w = np.repeat(levels, [66, 67, 67]) * np.where(np.arange(200) % 2, 1, -1)
        layer.w[...] = xp.asarray(w[None, :])
        layer.resample()
        mask = bnp.asnumpy(layer.resampled_mask)[0]
        for i, (a, b) in enumerate([(0, 66), (66, 133), (133, 200)]):
            hits[i] += mask[a:b].sum()
        new_w.append(bnp.asnumpy(layer.w)[0][mask])
    trials = np.array([66, 67, 67]) * n_events
    rate = hits / trials
    sd = np.sqrt(p_expected * (1 - p_expected) / trials)
    assert np.all(np.abs(rate - p_expected) < 5 * sd), (rate, p_expected)
    new_w = np.concatenate(new_w)
    std = layer.init_std
    assert abs(new_w.std() / std - 1) < 0.05
    excess_kurtosis = np.mean((new_w / new_w.std()) ** 4) - 3
    assert 2.0 < excess_kurtosis < 4.5  # Laplace: 3 (a normal would give 0)
    assert bnp.to_scalar(prune_probability(xp.asarray(np.array([1e6, -1e6])))[0]) == 0.0


def test_new_weight_scale_sets_the_laplace_scale(cpu_xp):
    """new_weight_scale=b (the original's Laplace(0, 0.05)): E|w| = b, std = b sqrt 2."""
    xp = cpu_xp
    layer = DendriticLayer(4000, 1, 200, 1, resampling="probabilistic", steps_to_resample=1,
                           rng=5, dtype="float64", new_weight_scale=0.05)
    assert layer.get_config()["new_weight_scale"] == 0.05
    new_w = []
    for _ in range(20):
        layer.w[...] = 0.0  # P(0) ~ 0.95: nearly every synapse is replaced
        layer.resample()
        new_w.append(bnp.asnumpy(layer.w)[0][bnp.asnumpy(layer.resampled_mask)[0]])
    new_w = np.concatenate(new_w)
    n = new_w.size
    assert n > 3000
    # E|X| = b, Var|X| = b^2 for Laplace(0, b): 5 standard errors
    assert abs(np.abs(new_w).mean() - 0.05) < 5 * 0.05 / math.sqrt(n)
    assert abs(new_w.std() / (0.05 * math.sqrt(2)) - 1) < 0.06
    assert abs(new_w.std() / layer.init_std - 1) > 0.2  # not the layer's own scale


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf"), True, "0.05"])
def test_new_weight_scale_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="new_weight_scale must be a Laplace scale > 0 or None"):
        DendriticLayer(40, 2, 4, 2, resampling="probabilistic", new_weight_scale=bad)


def test_percentage_zero_replaces_nothing(xp):
    layer = DendriticLayer(20, 2, 6, 3, percentage_resample=0.1, steps_to_resample=1, rng=1)
    assert layer.n_resample == 0
    before = bnp.asnumpy(layer.idx).copy()
    layer.after_update()
    assert np.array_equal(bnp.asnumpy(layer.idx), before)
    assert not bnp.asnumpy(layer.resampled_mask).any()


def test_whole_dendrite_replaced_at_percentage_one(xp):
    layer = DendriticLayer(30, 2, 6, 3, percentage_resample=1.0, steps_to_resample=1, rng=1)
    before = bnp.asnumpy(layer.idx).copy()
    layer.after_update()
    idx = bnp.asnumpy(layer.idx)
    _structure_ok(idx, 30, 6)
    for r in range(idx.shape[0]):
        assert not set(idx[r].tolist()) & set(before[r].tolist())


def test_reset_optimizer_state_finds_the_parameter(xp):
    layer = DendriticLayer(20, 2, 6, 3, rng=1)

    class Opt:
        params = [{"W": xp.ones((2, 2))}, layer.params()]
        state = {name: [{"W": xp.ones((2, 2))},
                        {k: xp.ones(v.shape) for k, v in layer.params().items()}]
                 for name in ("m", "v")}

    opt = Opt()
    mask = layer.resample()
    assert reset_optimizer_state(opt, layer.w, mask) == 2
    assert reset_optimizer_state(object(), layer.w, mask) == 0
    for name in ("m", "v"):
        m = bnp.asnumpy(opt.state[name][1]["w"])
        assert np.all(m[bnp.asnumpy(mask)] == 0) and m.sum() == m.size - bnp.to_scalar(mask.sum())


def test_resampling_cost_is_small_at_the_seed_size():
    import time

    layer = DendriticLayer(784, 10, 32, 23, rng=0)
    layer.resample()
    t0 = time.perf_counter()
    for _ in range(5):
        layer.resample()
    assert (time.perf_counter() - t0) / 5 < 0.25  # measured ~0.6 ms; generous for shared CI cores


# -- draw_unconnected_inputs: rejection and key paths ---------------------------------------

def _random_connectivity(rows, in_dim, n, seed):
    """``rows`` sorted n-subsets of range(in_dim), drawn with NumPy (independent of bionp)."""
    keys = np.random.default_rng(seed).random((rows, in_dim))
    return np.sort(np.argsort(keys, axis=1)[:, :n], axis=1).astype(np.int64)


def _draw_ok(new, conn, in_dim, m):
    assert new.shape == (conn.shape[0], m) and new.dtype == np.int64
    assert new.min() >= 0 and new.max() < in_dim
    s = np.sort(new, axis=1)
    assert np.all(s[:, 1:] != s[:, :-1])                             # distinct within a row
    assert not np.any(new[:, :, None] == conn[:, None, :])           # none already connected


@pytest.mark.parametrize("method", ["rejection", "keys"])
def test_draws_are_uniform_ordered_samples_without_replacement(method):
    """Every ordered m-tuple of free inputs equally likely (chi-square, fixed seeds): the
    marginals of each position, the unordered subsets and the ordered tuples."""
    from scipy import stats

    in_dim, n, m, rows = 10, 3, 4, 42000
    n_free = in_dim - n
    conn = _random_connectivity(rows, in_dim, n, seed=11)  # a different free set per row
    g = bnp.random.Generator(12)
    new = bnp.asnumpy(draw_unconnected_inputs(bnp.asarray(conn), in_dim, m, g, method=method))
    _draw_ok(new, conn, in_dim, m)
    # each chosen input as its rank among the row's free inputs: uniform tuples of ranks
    free = np.ones((rows, in_dim), dtype=bool)
    free[np.arange(rows)[:, None], conn] = False
    rank_of = np.cumsum(free, axis=1) - 1
    r = np.take_along_axis(rank_of, new, axis=1)
    assert r.min() >= 0 and r.max() < n_free
    # every input equally often in every position (absolute input numbers: the expected
    # count of input i is the number of rows where it is free, over n_free)
    expected_abs = free.sum(axis=0) / n_free
    for j in range(m):
        assert stats.chisquare(np.bincount(r[:, j], minlength=n_free)).pvalue > 1e-3, j
        counts = np.bincount(new[:, j], minlength=in_dim)
        assert stats.chisquare(counts, expected_abs).pvalue > 1e-3, j
    # ordered tuples: 7 * 6 * 5 * 4 = 840 categories, ~50 rows each
    code = ((r[:, 0] * n_free + r[:, 1]) * n_free + r[:, 2]) * n_free + r[:, 3]
    _, tuple_counts = np.unique(code, return_counts=True)
    assert tuple_counts.size == math.perm(n_free, m)
    assert stats.chisquare(tuple_counts).pvalue > 1e-3
    # unordered subsets: C(7, 4) = 35 categories
    subset = np.sort(r, axis=1)
    code = ((subset[:, 0] * n_free + subset[:, 1]) * n_free + subset[:, 2]) * n_free + subset[:, 3]
    _, subset_counts = np.unique(code, return_counts=True)
    assert subset_counts.size == math.comb(n_free, m)
    assert stats.chisquare(subset_counts).pvalue > 1e-3


# (in_dim, n, m, width): the seed's size, near the crossover (first round ~ in_dim/4),
# every free input taken (m = in_dim - n), and widths far below m: many rounds
_REJECTION_CASES = [
    (784, 32, 8, None), (784, 32, 32, None), (784, 32, 8, 2),
    (100, 10, 10, None), (100, 10, 10, 3),
    (20, 12, 8, None), (20, 12, 8, 1),
    (10, 3, 4, 5),
]


@pytest.mark.parametrize("in_dim,n,m,width", _REJECTION_CASES)
def test_rejection_draws_are_valid_also_over_several_rounds(xp, in_dim, n, m, width):
    rows = 230
    conn = _random_connectivity(rows, in_dim, n, seed=in_dim + n + m)
    g = bnp.random.Generator(3)
    new = _draw_by_rejection(xp, xp.asarray(conn), in_dim, m, g, width=width)
    new = bnp.asnumpy(new)
    _draw_ok(new, conn, in_dim, m)
    if m == in_dim - n:  # nothing left to choose: the complement of every row, in some order
        assert np.array_equal(np.sort(np.concatenate([conn, new], axis=1), axis=1),
                              np.broadcast_to(np.arange(in_dim), (rows, in_dim)))
    if width is not None and width < m:
        # one round draws rows * width words (whole blocks); more were drawn: extra rounds ran
        assert g.counter > -(-rows * width // 4) + 1


@pytest.mark.parametrize("in_dim,n,m", [(784, 32, 8), (100, 10, 10), (20, 12, 8), (10, 3, 7)])
def test_key_draws_are_valid(xp, in_dim, n, m):
    conn = _random_connectivity(230, in_dim, n, seed=in_dim + n + m)
    g = bnp.random.Generator(3)
    new = bnp.asnumpy(draw_unconnected_inputs(xp.asarray(conn), in_dim, m, g, method="keys"))
    _draw_ok(new, conn, in_dim, m)


@pytest.mark.parametrize("method,width", [("auto", None), ("rejection", None), ("rejection", 2),
                                          ("keys", None)])
def test_draws_identical_on_every_backend(xp, method, width):
    """Same seed, same result and same generator counter as NumPy (strict stand-in, CuPy)."""
    in_dim, n, m = 100, 10, 10
    conn = _random_connectivity(60, in_dim, n, seed=5)

    def draw(module):
        g = bnp.random.Generator(21)
        idx = module.asarray(conn)
        if width is None:
            out = [draw_unconnected_inputs(idx, in_dim, m, g, method=method) for _ in range(3)]
        else:
            out = [_draw_by_rejection(module, idx, in_dim, m, g, width=width) for _ in range(3)]
        return [bnp.asnumpy(o) for o in out], g.counter

    with bnp.backend("numpy") as np_module:
        expected, expected_counter = draw(np_module)
    got, counter = draw(xp)
    assert counter == expected_counter
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def test_layer_resampling_identical_on_every_backend_at_the_seed_size(xp):
    def run(module_name):
        with bnp.backend(module_name):
            out = []
            for kind in ("weakest", "probabilistic"):
                layer = DendriticLayer(784, 10, 32, 23, rng=0, dtype="float32", resampling=kind)
                for _ in range(2):
                    layer.resample()
                out += [bnp.asnumpy(layer.idx).copy(), bnp.asnumpy(layer.w).copy()]
            return out

    for a, b in zip(run(bnp.backend_name()), run("numpy")):
        assert np.array_equal(a, b)


def test_path_choice_depends_only_on_the_sizes():
    assert _use_rejection(230, 32, 8, 784)      # the seed's weakest event
    assert _use_rejection(230, 32, 32, 784)     # its probabilistic event (m = n)
    assert not _use_rejection(230, 700, 20, 784)  # almost everything taken
    assert not _use_rejection(2000, 4, 3, 10)     # small in_dim: keys are cheap
    assert not _use_rejection(230, 0, 8, 784)     # nothing connected: keys, as before
    assert _rejection_width(230, 32, 8, 784) <= 784 // 4


def test_second_rounds_are_rare_at_the_seed_size():
    """The first round's width keeps the expected number of short rows under 1/100 per
    event: the generator advances by exactly one round's blocks in almost every event."""
    rows, in_dim, n, m = 230, 784, 32, 8
    width = _rejection_width(rows, n, m, in_dim)
    one_round = -(-rows * width // 4)
    conn = bnp.asarray(_random_connectivity(rows, in_dim, n, seed=1))
    g = bnp.random.Generator(4)
    extra = 0
    for _ in range(300):
        before = g.counter
        draw_unconnected_inputs(conn, in_dim, m, g)
        extra += g.counter - before > one_round + 1  # (+1: integers' rare redraw of a word)
    assert extra <= 12  # expected <= 3 in 300 events


def test_draw_arguments():
    g = bnp.random.Generator(0)
    idx = bnp.asarray(_random_connectivity(4, 20, 5, seed=0))
    assert bnp.asnumpy(draw_unconnected_inputs(idx, 20, 0, g)).shape == (4, 0)
    assert bnp.asnumpy(draw_unconnected_inputs(idx, 20, 0, g, method="rejection")).shape == (4, 0)
    empty = bnp.asarray(np.zeros((4, 0), dtype=np.int64))
    new = bnp.asnumpy(draw_unconnected_inputs(empty, 20, 20, g))
    assert np.array_equal(np.sort(new, axis=1), np.broadcast_to(np.arange(20), (4, 20)))
    with pytest.raises(ValueError, match="method must be"):
        draw_unconnected_inputs(idx, 20, 3, g, method="sorted")
    with pytest.raises(TypeError, match=r"shape \(D, 0\)"):
        draw_unconnected_inputs(None, 20, 3, g)
    with pytest.raises(ValueError, match="only 15 of 20"):
        draw_unconnected_inputs(idx, 20, 16, g, method="rejection")


@pytest.mark.parametrize("kind", ["weakest", "probabilistic"])
def test_resampling_invariants_on_the_rejection_path(xp, kind):
    """Events whose draws take the rejection path (in_dim 100, 10 inputs per dendrite)."""
    in_dim, n = 100, 10
    layer = DendriticLayer(in_dim, 2, n, 5, percentage_resample=0.5, steps_to_resample=1,
                           resampling=kind, rng=6, dtype="float64")
    m = 5 if kind == "weakest" else n
    assert _use_rejection(layer.idx.shape[0], n, m, in_dim)
    for _ in range(100 if bnp.backend_name() == "strict" else 300):
        old_idx = bnp.asnumpy(layer.idx).copy()
        layer.after_update()
        idx, mask = bnp.asnumpy(layer.idx), bnp.asnumpy(layer.resampled_mask)
        _structure_ok(idx, in_dim, n)
        for r in range(idx.shape[0]):
            assert not set(idx[r][mask[r]].tolist()) & set(old_idx[r].tolist())
