"""Synaptic resampling: invariants over 1,000 events, the probabilistic variant's statistics."""

import numpy as np
import pytest

import bionp as bnp
from bionp.dendritic import DendriticLayer, draw_unconnected_inputs, prune_probability
from bionp.dendritic.resampling import reset_optimizer_state


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
    assert (time.perf_counter() - t0) / 5 < 0.25  # measured ~6 ms; generous for shared CI cores
