"""KrotovHopfield: exactness against a plain float64 evaluation, parity, diagnostics, errors."""

import numpy as np
import pytest

import bionp as bnp
from bionp.hebbian import KrotovHopfield, competition, krotov_hopfield_update
from bionp.random import Generator
from bionp.testing import assert_allclose, assert_equal, relative_error


# --------------------------------------------------------------------------
# a plain float64 reference: per-sample loop, full sort, same tie rule
# --------------------------------------------------------------------------

def reference_ranking(currents):
    """Units ordered by current (largest first), ties by lowest index."""
    return sorted(range(len(currents)), key=lambda m: (-currents[m], m))


def reference_update(W, x, p, k, delta, lr, precision):
    W = np.asarray(W, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n_hidden, _ = W.shape
    batch = x.shape[0]
    Wp = np.sign(W) * np.abs(W) ** (p - 1)
    g = np.zeros((n_hidden, batch))
    currents = np.zeros((n_hidden, batch))
    for b in range(batch):
        cur = np.array([np.dot(Wp[m], x[b]) for m in range(n_hidden)])
        order = reference_ranking(cur)
        g[order[0], b] = 1.0
        g[order[k - 1], b] = -delta
        currents[:, b] = cur
    xx = np.sum(g * currents, axis=1)
    ds = g @ x - xx[:, None] * W
    nc = max(np.max(np.abs(ds)), precision)
    return W + lr * ds / nc


def _random_case(seed, n_hidden, n_in, batch):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_hidden, n_in))
    x = rng.uniform(size=(batch, n_in))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return W, x


def _tie_case(seed, n_hidden, n_in, batch):
    """Weights in {-1, 0, 1} with duplicated units and small-integer inputs (one of them zero).

    Every current is an exact integer, so ties are exact whatever the summation
    order; the zero input makes all units tie, duplicated rows tie pairwise.
    """
    rng = np.random.default_rng(seed)
    W = rng.integers(-1, 2, size=(n_hidden, n_in)).astype(np.float64)
    W[1::3] = W[0::3][: len(W[1::3])]  # duplicated units
    x = rng.integers(0, 3, size=(batch, n_in)).astype(np.float64)
    x[0] = 0.0
    x[1] = x[2]
    return W, x


@pytest.mark.parametrize("p", [2.0, 3.0, 4.5])
@pytest.mark.parametrize("k", [2, 7])
@pytest.mark.parametrize("case", [_random_case, _tie_case])
def test_partial_fit_equals_formula(xp, p, k, case):
    W0, x = case(int(p * 10 + k), 12, 9, 16)
    kh = KrotovHopfield(12, p=p, k=k, delta=0.4, lr=0.03, precision=1e-30,
                        init=W0, dtype="float64", rng=0)
    kh.partial_fit(bnp.asarray(x, dtype=np.float64))
    expected = reference_update(W0, x, p, k, 0.4, 0.03, 1e-30)
    assert relative_error(kh.weights_, expected) <= 1e-12


def test_tie_case_has_ties():
    W0, x = _tie_case(27, 12, 9, 16)
    cur = x @ (np.sign(W0) * np.abs(W0) ** 2).T
    # some sample has a tie at its k-th value for k = 7
    kth_values = -np.sort(-cur, axis=1)[:, 6]
    assert any(np.count_nonzero(row == v) > 1 for row, v in zip(cur, kth_values))


@pytest.mark.parametrize("k", [2, 3, 7])
def test_competition_tie_rule(xp, k):
    rng = np.random.default_rng(k)
    cur = rng.integers(0, 4, size=(50, 10)).astype(np.float32)  # many ties
    winner, kth = competition(bnp.asarray(cur), k)
    ref = np.array([reference_ranking(list(row)) for row in cur])
    assert_equal(winner, ref[:, 0])
    assert_equal(kth, ref[:, k - 1])


def test_several_updates_follow_formula(xp):
    W, x = _random_case(3, 20, 15, 60)
    kh = KrotovHopfield(20, p=3.0, k=3, delta=0.4, lr=0.05, init=W, dtype="float64", rng=0)
    ref = W.copy()
    for start in range(0, 60, 10):
        kh.partial_fit(bnp.asarray(x[start:start + 10]), lr=0.05 * (1 - start / 60))
        lr = 0.05 * (1 - start / 60)
        ref = reference_update(ref, x[start:start + 10], 3.0, 3, 0.4, lr, 1e-30)
    assert relative_error(kh.weights_, ref) <= 1e-12


def reference_balance(W, x, p, k, delta):
    """s_mu = sum_b g_bmu I_bmu of one batch, and the update's normaliser max|Delta W|."""
    Wp = np.sign(W) * np.abs(W) ** (p - 1)
    cur = x @ Wp.T
    g = np.zeros_like(cur)
    for b, row in enumerate(cur):
        order = reference_ranking(list(row))
        g[b, order[0]] = 1.0
        g[b, order[k - 1]] = -delta
    s = np.sum(g * cur, axis=0)
    ds = g.T @ x - s[:, None] * W
    return s, np.max(np.abs(ds))


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_balance_and_first_order_norm_change(xp, p):
    """balance accumulates s = sum_b g I, and dN = p eps / max|dW| (1 - N) s to first order."""
    W0, x = _random_case(11, 12, 9, 40)
    W0 *= 0.4  # norms on both sides of 1
    s_ref, scale = reference_balance(W0, x, p, 3, 0.4)
    W = bnp.asarray(W0.copy(), dtype=np.float64)
    balance = bnp.get_xp().full(12, 2.0, dtype=np.float64)  # accumulates onto what is there
    eps = 1e-7
    krotov_hopfield_update(W, bnp.asarray(x, dtype=np.float64), p=p, k=3, delta=0.4, lr=eps,
                           precision=1e-30, balance=balance)
    assert_allclose(bnp.asnumpy(balance), s_ref + 2.0, rtol=1e-12, atol=1e-12)
    n0 = np.sum(np.abs(W0) ** p, axis=1)
    n1 = np.sum(np.abs(bnp.asnumpy(W)) ** p, axis=1)
    predicted = p * eps / scale * (1 - n0) * s_ref
    moved = s_ref != 0
    assert moved.sum() >= 4 and (n0[moved] < 1).any() and (n0[moved] > 1).any()
    assert_allclose(n1[moved] - n0[moved], predicted[moved], rtol=1e-4)
    assert_equal(n1[~moved], n0[~moved])


def test_fit_schedule_equals_partial_fits(xp):
    """fit without shuffling is partial_fit over the batches with lr * (1 - epoch / epochs)."""
    rng = Generator(5)
    x = rng.uniform(0, 1, (40, 8))
    a = KrotovHopfield(10, p=3.0, k=2, lr=0.1, batch_size=15, rng=3, progress=False)
    a.fit(x, epochs=3, shuffle=False)
    b = KrotovHopfield(10, p=3.0, k=2, lr=0.1, rng=3)
    b.initialize(8)
    for e in range(3):
        for s in range(0, 40, 15):
            b.partial_fit(x[s:s + 15], lr=0.1 * (1 - e / 3))
    assert_equal(a.weights_, b.weights_)
    assert_equal(a.win_counts_, b.win_counts_)
    assert [h["lr"] for h in a.history_] == pytest.approx([0.1, 0.1 * 2 / 3, 0.1 / 3])


def test_fit_reproducible(xp):
    x = Generator(2).uniform(0, 1, (60, 5))
    a = KrotovHopfield(6, p=3.0, k=2, batch_size=20, rng=4, progress=False)
    w1 = bnp.asnumpy(a.fit(x, epochs=2).weights_).copy()
    w2 = bnp.asnumpy(a.fit(x, epochs=2).weights_)
    np.testing.assert_array_equal(w1, w2)
    assert len(a.history_) == 2
    # a Generator continues its stream: a second fit starts from other weights
    b = KrotovHopfield(6, p=3.0, k=2, batch_size=20, rng=Generator(4), progress=False)
    first = bnp.asnumpy(b.fit(x, epochs=2).weights_).copy()
    assert not np.array_equal(first, bnp.asnumpy(b.fit(x, epochs=2).weights_))


def test_update_touches_only_competing_rows(xp):
    W, x = _random_case(11, 30, 6, 4)
    W = bnp.asarray(W, dtype=np.float64)
    before = bnp.asnumpy(W).copy()
    winner, kth = krotov_hopfield_update(W, bnp.asarray(x), p=2.0, k=2, delta=0.4, lr=0.1,
                                         precision=1e-30)
    changed = np.flatnonzero(np.any(bnp.asnumpy(W) != before, axis=1))
    assert set(changed) <= set(bnp.asnumpy(winner)) | set(bnp.asnumpy(kth))


def test_float32_default(xp):
    kh = KrotovHopfield(5, rng=0)
    kh.partial_fit(Generator(0).uniform(0, 1, (4, 3)))
    assert kh.weights_.dtype == np.float32


# --------------------------------------------------------------------------
# parity
# --------------------------------------------------------------------------

def _two_hundred_updates():
    x = Generator(1).uniform(0, 1, (2000, 20))
    kh = KrotovHopfield(15, p=3.0, k=3, lr=0.05, batch_size=100, rng=9, progress=False)
    kh.fit(x, epochs=10)  # 20 batches x 10 epochs = 200 updates
    assert kh.n_updates_ == 200
    return bnp.asnumpy(kh.weights_), bnp.asnumpy(kh.win_counts_)


def test_parity_numpy_strict():
    with bnp.backend("numpy"):
        w_np, c_np = _two_hundred_updates()
    with bnp.backend("strict"):
        w_st, c_st = _two_hundred_updates()
    np.testing.assert_array_equal(w_np, w_st)
    np.testing.assert_array_equal(c_np, c_st)


def test_parity_registered():
    from bionp.parity import registered_checks, run_checks  # noqa: F401

    assert "hebbian.krotov_hopfield" in registered_checks()


def test_parity_cupy(gpu_xp):
    with bnp.backend("numpy"):
        w_np, _ = _two_hundred_updates()
    w_gpu, _ = _two_hundred_updates()
    assert relative_error(w_gpu, w_np) <= 1e-5


# --------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------

def _prototypes(seed=0, n_proto=8, n_in=32, n=1600, noise=0.05):
    """Unit-norm samples around 8 prototypes, each strong on its own block of inputs."""
    xp = bnp.get_xp()
    rng = Generator(seed)
    protos = rng.uniform(0, 0.2, (n_proto, n_in), dtype=np.float64)
    block = n_in // n_proto
    for i in range(n_proto):
        protos[i, i * block:(i + 1) * block] += 1.0
    labels = rng.integers(0, n_proto, n)
    x = xp.abs(protos[labels] + noise * rng.normal(0, 1, (n, n_in), dtype=np.float64))
    x /= xp.sqrt((x * x).sum(axis=1, keepdims=True))
    return x


def test_diagnostics_converge(xp):
    """On prototypes + noise, winning units reach sum_i |W_i|^p = 1 (the paper's check)."""
    x = _prototypes()
    epochs = 40
    kh = KrotovHopfield(20, p=3.0, k=2, delta=0.4, lr=0.02, batch_size=50, init_std=0.3, rng=1,
                        progress=False)
    kh.fit(x, epochs=epochs)
    # several units specialise (not all: the competition leaves some units unused)
    assert 0.2 <= kh.winner_fraction() < 1.0
    assert kh.convergence_fraction(tol=0.05) >= 0.9
    norms = bnp.asnumpy(kh.unit_norms())
    ever = bnp.asnumpy(kh.win_counts_) > 0
    assert np.all(np.abs(norms[ever] - 1) < 0.05)
    h = kh.history_
    assert len(h) == epochs and [r["epoch"] for r in h] == list(range(epochs))
    assert {"epoch", "lr", "seconds", "winner_fraction", "ever_won_fraction",
            "mean_norm", "converged_fraction", "attracting_fraction"} <= set(h[0])
    assert h[-1]["attracting_fraction"] >= 0.9  # the sphere attracts the units that win
    assert h[0]["converged_fraction"] < 0.9 <= h[-1]["converged_fraction"]
    assert abs(h[-1]["mean_norm"] - 1) < 0.01
    assert h[-1]["ever_won_fraction"] == kh.winner_fraction()
    assert int(bnp.to_scalar(kh.win_counts_.sum())) == epochs * 1600


def test_active_fraction(xp):
    x = np.random.default_rng(0).uniform(0.5, 1.0, size=(200, 6))
    x[0, 0] = 0.0
    W = np.ones((4, 6))
    W[1] = -1.0  # never positive on x >= 0
    W[2] = 0.0
    W[2, 0] = -1.0
    W[2, 1] = 1e-3  # positive only on sample 0 (x_0 = 0): 0.5 % of the rows
    kh = KrotovHopfield(4, p=3.0, init=W, dtype="float64", rng=0).initialize(6)
    x = bnp.asarray(x, dtype=np.float64)
    assert kh.active_fraction(x) == 0.5  # units 0 and 3
    assert kh.active_fraction(x, min_share=0.0) == 0.75
    with pytest.raises(ValueError, match="min_share"):
        kh.active_fraction(x, min_share=1.5)


def test_unit_norms_formula(xp):
    W, _ = _random_case(0, 4, 5, 1)
    for p in (2.0, 3.0, 4.5):
        kh = KrotovHopfield(4, p=p, init=W, dtype="float64", rng=0).initialize(5)
        np.testing.assert_allclose(bnp.asnumpy(kh.unit_norms()), np.sum(np.abs(W) ** p, axis=1),
                                   rtol=1e-12)


def test_transform_and_activations(xp):
    W, x = _random_case(2, 6, 5, 7)
    kh = KrotovHopfield(6, p=3.0, init=W, dtype="float64", rng=0).initialize(5)
    cur = kh.currents(bnp.asarray(x))
    np.testing.assert_allclose(bnp.asnumpy(cur), x @ (W * np.abs(W)).T, rtol=1e-12)
    act = kh.activations(bnp.asarray(x), power=2.0)
    np.testing.assert_allclose(bnp.asnumpy(act), np.maximum(x @ W.T, 0) ** 2, rtol=1e-12)
    # transform: features (scikit-learn's meaning, as HebbianStack.transform), not currents
    feat = kh.transform(bnp.asarray(x), power=2.0)
    np.testing.assert_allclose(bnp.asnumpy(feat), np.maximum(x @ W.T, 0) ** 2, rtol=1e-12)


def test_transform_says_once_that_its_meaning_changed(monkeypatch):
    import warnings

    from bionp.hebbian import krotov_hopfield as khmod

    monkeypatch.setattr(khmod, "_TRANSFORM_WARNED", False)
    W, x = _random_case(2, 6, 5, 7)
    kh = KrotovHopfield(6, p=3.0, init=W, dtype="float64", rng=0).initialize(5)
    with pytest.warns(FutureWarning, match=r"currents\(x\)"):
        feat = kh.transform(x)
    np.testing.assert_allclose(feat, np.maximum(x @ W.T, 0) ** 4.5, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kh.transform(x)  # once per process
        kh.transform(x, power=4.5)


def test_normalize_option(xp):
    x = Generator(0).uniform(0, 1, (10, 4), dtype=np.float64)
    a = KrotovHopfield(5, p=2.0, normalize=True, dtype="float64", rng=0).initialize(4)
    b = KrotovHopfield(5, p=2.0, dtype="float64", rng=0).initialize(4)
    xn = x / bnp.get_xp().sqrt((x * x).sum(axis=1, keepdims=True))
    assert relative_error(a.currents(x * 3.0), b.currents(xn)) <= 1e-12
    assert relative_error(a.transform(x * 3.0, power=2.0), b.transform(xn, power=2.0)) <= 1e-12


def test_progress_bar_runs(xp, capsys):
    kh = KrotovHopfield(5, rng=0, progress=True)
    kh.fit(Generator(0).uniform(0, 1, (20, 3)), epochs=2)
    assert len(kh.history_) == 2
    err = capsys.readouterr().err
    assert "Krotov-Hopfield" in err and "converged=" in err  # the bar shows the convergence check


def test_progress_follows_environment(monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    kh = KrotovHopfield(5, rng=0)
    monkeypatch.setenv("BIONP_PROGRESS", "0")
    assert isinstance(kh._epochs(3), range)
    monkeypatch.setenv("BIONP_PROGRESS", "1")
    bar = kh._epochs(3)
    assert not isinstance(bar, range)
    bar.close()
    assert isinstance(KrotovHopfield(5, rng=0, progress=False)._epochs(3), range)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"n_hidden": 5, "k": 5}, "k must be smaller than n_hidden"),
    ({"n_hidden": 5, "k": 9}, "k must be smaller than n_hidden"),
    ({"n_hidden": 5, "k": 1}, "k must be >= 2"),
    ({"n_hidden": 5, "k": 0}, "k must be >= 2"),
    ({"n_hidden": 5, "p": 0.5}, "p must be >= 1"),
    ({"n_hidden": 5, "delta": -0.1}, "delta must be >= 0"),
    ({"n_hidden": 5, "lr": -0.01}, "lr must be >= 0"),
    ({"n_hidden": 5, "batch_size": 0}, "batch_size must be >= 1"),
    ({"n_hidden": 5, "precision": 0.0}, "precision must be > 0"),
    ({"n_hidden": 0}, "n_hidden must be >= 1"),
    ({"n_hidden": 5, "init": "zeros"}, "init must be"),
    ({"n_hidden": 5, "inhibitory_fraction": 1.5}, "inhibitory_fraction"),
    ({"n_hidden": 5, "p": float("nan")}, "p must be finite"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KrotovHopfield(**kwargs)


def test_bad_parameter_types():
    with pytest.raises(TypeError, match="k must be an int"):
        KrotovHopfield(5, k=2.5)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        KrotovHopfield(5, batch_size="100")


def test_bad_inputs(xp):
    kh = KrotovHopfield(6, k=2, rng=0)
    good = Generator(0).uniform(0, 1, (4, 3))
    with pytest.raises(ValueError, match="must be 2-D"):
        kh.partial_fit(good[0])
    with pytest.raises(ValueError, match="must be 2-D"):
        kh.fit(good.reshape(2, 2, 3))
    with pytest.raises(ValueError, match="empty"):
        kh.partial_fit(good[:0])
    with pytest.raises(ValueError, match="empty"):
        kh.fit(good[:0])
    bad = good.copy()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        kh.partial_fit(bad)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        kh.fit(bad)
    kh.partial_fit(good)
    with pytest.raises(ValueError, match="has 4 features but the layer was built for n_in = 3"):
        kh.partial_fit(Generator(0).uniform(0, 1, (4, 4)))
    with pytest.raises(ValueError, match="has 4 features"):
        kh.currents(Generator(0).uniform(0, 1, (4, 4)))
    with pytest.raises(ValueError, match="has 4 features"):
        kh.transform(Generator(0).uniform(0, 1, (4, 4)), power=2.0)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        kh.partial_fit(good, lr=-1.0)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        kh.fit(good, epochs=0)
    with pytest.raises(TypeError, match="must be an array"):
        kh.partial_fit([[0.0, 1.0, 2.0]])


def test_unfitted_and_mixed_backend():
    kh = KrotovHopfield(6, rng=0)
    with pytest.raises(RuntimeError, match="call fit"):
        kh.transform(np.zeros((2, 3)), power=1.0)
    with pytest.raises(RuntimeError, match="call fit"):
        kh.currents(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="call fit"):
        kh.unit_norms()
    with bnp.backend("strict"):
        with pytest.raises(bnp.MixedBackendError):
            kh.partial_fit(np.ones((2, 3), dtype=np.float32))


def test_bad_init_array():
    with pytest.raises(ValueError, match="init array has shape"):
        KrotovHopfield(4, init=np.zeros((3, 2))).initialize(2)
    with pytest.raises(ValueError, match="NaN or Inf"):
        KrotovHopfield(3, init=np.full((3, 2), np.nan)).initialize(2)


def test_zero_update_is_finite(xp):
    """An all-zero batch gives Delta W = 0: the precision floor keeps the step finite (no change)."""
    kh = KrotovHopfield(5, p=3.0, k=2, precision=1e-300, rng=0).initialize(3)
    before = bnp.asnumpy(kh.weights_).copy()
    kh.partial_fit(bnp.get_xp().zeros((4, 3), dtype=np.float32))
    np.testing.assert_array_equal(bnp.asnumpy(kh.weights_), before)
