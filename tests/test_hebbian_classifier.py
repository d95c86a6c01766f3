"""BioClassifier: the supervised readout on frozen Krotov-Hopfield features."""

import numpy as np
import pytest

import bionp as bnp
from bionp.hebbian import (
    BioClassifier,
    HebbianStack,
    KrotovHopfield,
    power_loss,
    power_loss_grad,
    random_features_baseline,
    readout_forward,
    readout_gradients,
)
from bionp.random import Generator
from bionp.testing import assert_allclose, assert_equal, numerical_gradient, relative_error


def _readout_problem(xp, n=7, n_hidden=5, n_classes=4, seed=0):
    g = Generator(seed)
    h = g.uniform(0, 1, (n, n_hidden), dtype="float64")
    V = g.normal(0, 0.5, (n_classes, n_hidden), dtype="float64")
    b = g.normal(0, 0.5, n_classes, dtype="float64")
    y = g.integers(0, n_classes, n)
    return h, V, b, y


def _blobs(n_per=60, n_in=10, n_classes=3, seed=1, spread=0.3, sample_seed=None):
    """Separable clusters on the positive orthant (so max(xW, 0) keeps information).

    ``sample_seed`` draws other samples around the same centres (a held-out split).
    """
    g = Generator(seed)
    centers = g.uniform(0, 3, (n_classes, n_in))
    if sample_seed is not None:
        g = Generator(sample_seed)
    xp = bnp.get_xp()
    y = xp.repeat(xp.arange(n_classes), n_per)
    x = centers[y] + g.normal(0, spread, (n_classes * n_per, n_in))
    return x, y


# --------------------------------------------------------------------------
# functional core
# --------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["power", "cross_entropy"])
@pytest.mark.parametrize("m", [6.0, 2.5])
def test_readout_gradcheck(xp, loss, m):
    if loss == "cross_entropy" and m != 6.0:
        pytest.skip("m only enters the power loss")
    h, V, b, y = _readout_problem(xp)
    beta = 0.7
    _, grads, _ = readout_gradients(h, V, b, y, beta=beta, loss=loss, m=m)

    def f():
        return readout_gradients(h, V, b, y, beta=beta, loss=loss, m=m)[0]

    assert relative_error(grads["W"], numerical_gradient(f, V)) <= 1e-6
    assert relative_error(grads["b"], numerical_gradient(f, b)) <= 1e-6


def test_power_loss_matches_formula(xp):
    h, V, b, y = _readout_problem(xp)
    c = readout_forward(h, V, b, 0.7)
    hn, Vn, bn, yn = (bnp.asnumpy(a) for a in (h, V, b, y))
    cn = np.tanh(0.7 * (hn @ Vn.T + bn))
    assert_allclose(c, cn, rtol=1e-12)
    t = -np.ones_like(cn)
    t[np.arange(len(yn)), yn] = 1
    value = power_loss(c, bnp.asarray(t), 6)
    assert abs(bnp.to_scalar(value) - np.mean(np.sum(np.abs(cn - t) ** 6, axis=1))) < 1e-12
    g = power_loss_grad(c, bnp.asarray(t), 6)
    assert_allclose(g, 6 / len(yn) * np.abs(cn - t) ** 5 * np.sign(cn - t), rtol=1e-12)


def test_power_loss_gradcheck_on_c(xp):
    g = Generator(4)
    c = g.uniform(-0.9, 0.9, (5, 3), dtype="float64")
    t = g.uniform(-1, 1, (5, 3), dtype="float64")
    num = numerical_gradient(lambda: power_loss(c, t, 3.5), c)
    assert relative_error(power_loss_grad(c, t, 3.5), num) <= 1e-6


# --------------------------------------------------------------------------
# estimator
# --------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["power", "cross_entropy"])
def test_learns_separable_problem_random_weights(xp, loss):
    # overlapping clusters: after 1 epoch ~93% train / ~90% held out, after 15 epochs
    # ~99% / ~95% on this draw (both losses)
    x, y = _blobs(spread=0.8)
    x_test, y_test = _blobs(spread=0.8, sample_seed=99)
    W = random_features_baseline(bnp.get_xp().zeros((40, 10), dtype="float32"), rng=3)
    lr = 0.05 if loss == "power" else 0.1
    clf = BioClassifier(W, n_classes=3, power=2.0, beta=1.0, loss=loss, lr=lr, batch_size=20,
                        epochs=15, rng=0, progress=False).fit(x, y)
    assert clf.score(x, y) > 97.0
    assert clf.score(x_test, y_test) > 92.0
    assert len(clf.history_) == 15
    assert clf.history_[-1]["loss"] < clf.history_[0]["loss"]
    scores = clf.predict_scores(x)
    assert tuple(scores.shape) == (len(y), 3)
    assert_equal(bnp.asnumpy(xp.argmax(scores, axis=1)), bnp.asnumpy(clf.predict(x)))
    if loss == "cross_entropy":
        assert_allclose(bnp.asnumpy(scores).sum(axis=1), np.ones(len(y)), rtol=1e-5)


def test_learns_on_trained_krotov_hopfield_and_stack(xp):
    x, y = _blobs(n_in=10)
    x = x - x.min()  # non-negative inputs, as images
    kh = KrotovHopfield(30, p=3.0, k=3, lr=0.05, batch_size=30, normalize=True, rng=2,
                        progress=False).fit(x, epochs=5)
    clf = BioClassifier(kh, n_classes=3, power=4.5, beta=1.0, lr=0.05, batch_size=20,
                        epochs=15, rng=0, progress=False).fit(x, y)
    assert clf.score(x, y) > 90.0
    stack = HebbianStack([20, 15], p=3.0, k=3, lr=0.05, batch_size=30, normalize=True, rng=5,
                         progress=False).fit(x, epochs=3)
    clf2 = BioClassifier(stack, n_classes=3, power=2.0, beta=1.0, lr=0.05, batch_size=20,
                         epochs=20, rng=0, progress=False).fit(x, y)
    assert tuple(clf2.readout_.shape) == (3, 15)
    assert clf2.score(x, y) > 80.0


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_numpy_strict_bitwise(optimizer):
    out = {}
    for name in ("numpy", "strict"):
        with bnp.backend(name):
            x, y = _blobs(n_per=20)
            W = random_features_baseline(bnp.get_xp().zeros((16, 10), dtype="float32"), rng=7)
            clf = BioClassifier(W, n_classes=3, power=4.5, lr=0.01, batch_size=16, epochs=2,
                                optimizer=optimizer, rng=1, progress=False).fit(x, y)
            out[name] = (bnp.asnumpy(clf.readout_), bnp.asnumpy(clf.bias_),
                         bnp.asnumpy(clf.predict_scores(x)), clf.history_[-1]["loss"])
    for a, b in zip(out["numpy"][:3], out["strict"][:3]):
        assert_equal(a, b)
    assert out["numpy"][3] == out["strict"][3]


def test_fit_is_repeatable_with_int_seed(xp):
    x, y = _blobs(n_per=10)
    W = random_features_baseline(xp.zeros((8, 10), dtype="float32"), rng=1)
    clf = BioClassifier(W, n_classes=3, epochs=2, batch_size=8, rng=4, progress=False)
    first = bnp.asnumpy(clf.fit(x, y).readout_).copy()
    assert_equal(bnp.asnumpy(clf.fit(x, y).readout_), first)
    clone = BioClassifier(**clf.get_params()).fit(x, y)
    assert_equal(bnp.asnumpy(clone.readout_), first)


def test_feature_scaling(xp):
    x, y = _blobs(n_per=5)
    W = random_features_baseline(xp.zeros((8, 10), dtype="float32"), rng=1)
    f_max = BioClassifier(W, n_classes=3, feature_scaling="max").features(x)
    assert_allclose(bnp.asnumpy(f_max).max(axis=1), np.ones(15), rtol=1e-6)
    f_l2 = BioClassifier(W, n_classes=3, feature_scaling="l2").features(x)
    assert_allclose(np.linalg.norm(bnp.asnumpy(f_l2), axis=1), np.ones(15), rtol=1e-5)
    raw = bnp.asnumpy(BioClassifier(W, n_classes=3, feature_scaling=None, power=4.5).features(x))
    xn, Wn = bnp.asnumpy(x).astype(np.float64), bnp.asnumpy(W).astype(np.float64)
    assert_allclose(raw, np.maximum(xn @ Wn.T, 0) ** 4.5, rtol=1e-4)


def test_standardized_features(xp):
    """Per-unit z-scores with the *training* mean and std; a constant unit stays at 0."""
    x, y = _blobs(n_per=20)
    x = x.astype("float64")
    x_test, _ = _blobs(n_per=4, sample_seed=5)
    x_test = x_test.astype("float64")
    W = random_features_baseline(xp.zeros((8, 10), dtype="float64"), rng=1)
    W[3] = -1.0  # max(x W_3, 0) = 0 for every (positive) input: a constant feature
    clf = BioClassifier(W, n_classes=3, power=2.0, feature_scaling="standardize", epochs=1,
                        progress=False)
    with pytest.raises(RuntimeError, match="call fit"):
        clf.features(x)
    clf.fit(x, y)
    raw = np.maximum(bnp.asnumpy(x) @ bnp.asnumpy(W).T, 0) ** 2
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    constant = std == 0
    assert constant[3]
    std[constant] = 1.0
    assert_allclose(bnp.asnumpy(clf.feature_mean_), mean, rtol=1e-10, atol=1e-12)
    assert_allclose(bnp.asnumpy(clf.feature_std_), std, rtol=1e-10)
    f = bnp.asnumpy(clf.features(x))
    assert_allclose(f.mean(axis=0), np.zeros(8), atol=1e-9)
    assert_allclose(f.std(axis=0), np.where(constant, 0.0, 1.0), rtol=1e-9, atol=1e-12)
    raw_test = np.maximum(bnp.asnumpy(x_test) @ bnp.asnumpy(W).T, 0) ** 2
    assert_allclose(bnp.asnumpy(clf.features(x_test)), (raw_test - mean) / std, rtol=1e-9,
                    atol=1e-12)


def test_standardized_precompute_matches_per_batch(xp):
    x, y = _blobs(n_per=30)
    x = x.astype("float64")
    W = random_features_baseline(xp.zeros((12, 10), dtype="float64"), rng=2)
    kw = dict(n_classes=3, power=4.5, beta=0.5, lr=0.01, batch_size=16, epochs=3, rng=5,
              feature_scaling="standardize", progress=False)
    a = BioClassifier(W, precompute=False, **kw).fit(x, y)
    b = BioClassifier(W, precompute=True, **kw).fit(x, y)
    assert relative_error(b.feature_std_, a.feature_std_) <= 1e-12
    assert relative_error(b.readout_, a.readout_) <= 1e-12
    assert b.score(x, y) > 90.0


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def test_bad_input(xp):
    x, y = _blobs(n_per=5)
    W = random_features_baseline(xp.zeros((8, 10), dtype="float32"), rng=1)
    clf = BioClassifier(W, n_classes=3, epochs=1, progress=False)
    with pytest.raises(ValueError, match="2-D"):
        clf.fit(x[0], y)
    with pytest.raises(ValueError, match="features but the Hebbian layer expects"):
        clf.fit(x[:, :5], y)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        clf.fit(x, y + 1)
    with pytest.raises(ValueError, match="labels but x has"):
        clf.fit(x, y[:3])
    with pytest.raises(ValueError, match="integer array"):
        clf.fit(x, y.astype("float32"))
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict(x)
    with pytest.raises(ValueError, match="m >= 1"):
        BioClassifier(W, m=0.5)
    with pytest.raises(ValueError, match="m >= 1"):
        power_loss(xp.zeros((2, 2)), xp.zeros((2, 2)), 0.5)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        BioClassifier(W, loss="hinge")
    with pytest.raises(ValueError, match="unknown loss"):
        h, V, b, yy = _readout_problem(xp)
        readout_gradients(h, V, b, yy, beta=1.0, loss="mse")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        BioClassifier(W, optimizer="rmsprop")
    with pytest.raises(ValueError, match="feature_scaling"):
        BioClassifier(W, feature_scaling="z")
    with pytest.raises(TypeError, match="hebbian must be"):
        BioClassifier([[1.0]])
    with pytest.raises(RuntimeError, match="not trained yet"):
        BioClassifier(KrotovHopfield(4), n_classes=3).fit(x, y)
    x_bad = x.copy()
    x_bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        BioClassifier(W, n_classes=3).features(x_bad)


def test_random_features_baseline(xp):
    x, _ = _blobs(n_per=5)
    kh = KrotovHopfield(6, p=3.0, k=2, batch_size=5, rng=0, progress=False).fit(x, epochs=1)
    R = random_features_baseline(kh, rng=8)
    assert tuple(R.shape) == (6, 10) and R.dtype == kh.weights_.dtype
    assert_equal(bnp.asnumpy(R), bnp.asnumpy(random_features_baseline(kh.weights_, rng=8)))
    with pytest.raises(TypeError, match="fitted KrotovHopfield or a weight array"):
        random_features_baseline("W")
    with pytest.raises(RuntimeError, match="no weights yet"):
        random_features_baseline(KrotovHopfield(4))


# --------------------------------------------------------------------------
# precomputed features, per-epoch test accuracy
# --------------------------------------------------------------------------

def test_precompute_matches_per_batch_features(xp):
    """Features computed once per fit give the same readout as features per batch (float64)."""
    x, y = _blobs(n_per=30)
    x = x.astype("float64")
    W = random_features_baseline(xp.zeros((12, 10), dtype="float64"), rng=2)
    kw = dict(n_classes=3, power=3.0, beta=0.5, lr=0.01, batch_size=16, epochs=3, rng=5,
              progress=False)
    a = BioClassifier(W, precompute=False, **kw).fit(x, y)
    b = BioClassifier(W, precompute=True, **kw).fit(x, y)
    assert relative_error(b.readout_, a.readout_) <= 1e-12
    assert relative_error(b.bias_, a.bias_) <= 1e-12
    assert [r["train_accuracy"] for r in a.history_] == [r["train_accuracy"] for r in b.history_]
    assert BioClassifier(W, precompute=True, **kw).get_params()["precompute"] is True


def test_features_in_chunks(xp):
    x, _ = _blobs(n_per=7)
    x = x.astype("float64")
    W = random_features_baseline(xp.zeros((9, 10), dtype="float64"), rng=2)
    clf = BioClassifier(W, n_classes=3)
    whole = bnp.asnumpy(clf.features(x))
    assert_allclose(bnp.asnumpy(clf.features_in_chunks(x, chunk=4)), whole, rtol=1e-12)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        clf.features_in_chunks(x, chunk=0)


def test_test_accuracy_per_epoch(xp):
    x, y = _blobs(spread=0.8)
    x_test, y_test = _blobs(spread=0.8, sample_seed=99)
    W = random_features_baseline(xp.zeros((40, 10), dtype="float32"), rng=3)
    clf = BioClassifier(W, n_classes=3, power=2.0, beta=1.0, lr=0.05, batch_size=20, epochs=4,
                        rng=0, precompute=True, progress=False).fit(x, y, x_test, y_test)
    recorded = [r["test_accuracy"] for r in clf.history_]
    assert len(recorded) == 4
    assert recorded[-1] == pytest.approx(clf.score(x_test, y_test), abs=1e-9)
    assert "test_accuracy" not in BioClassifier(W, n_classes=3, epochs=1, progress=False
                                                ).fit(x, y).history_[0]


def test_bad_test_split_and_precompute(xp):
    x, y = _blobs(n_per=5)
    W = random_features_baseline(xp.zeros((8, 10), dtype="float32"), rng=1)
    clf = BioClassifier(W, n_classes=3, epochs=1, progress=False)
    with pytest.raises(ValueError, match="give both x_test and y_test"):
        clf.fit(x, y, x_test=x)
    with pytest.raises(ValueError, match="has 5 features"):
        clf.fit(x, y, x[:, :5], y)
    with pytest.raises(ValueError, match="y has 3 labels"):
        clf.fit(x, y, x, y[:3])
    with pytest.raises(TypeError, match="precompute must be True or False"):
        BioClassifier(W, precompute="yes")


def test_random_baseline_match_norms(xp):
    x = Generator(0).uniform(0, 1, (60, 10))
    kh = KrotovHopfield(12, p=3.0, k=2, lr=0.05, batch_size=20, normalize=True, rng=0,
                        progress=False).fit(x, epochs=3)
    R = random_features_baseline(kh, rng=4, match_norms=True)
    assert tuple(R.shape) == (12, 10)
    own = bnp.asnumpy(xp.sum(xp.abs(R) ** 3, axis=1))
    assert_allclose(own, bnp.asnumpy(kh.unit_norms()), rtol=1e-4)
    plain = random_features_baseline(kh, rng=4)
    ratio = bnp.asnumpy(R) / bnp.asnumpy(plain)  # the same draw, rescaled per row
    assert_allclose(ratio, np.repeat(ratio[:, :1], 10, axis=1), rtol=1e-5)
    with pytest.raises(TypeError, match="match_norms=True needs a fitted KrotovHopfield"):
        random_features_baseline(kh.weights_, match_norms=True)


def test_linear_lr_decay(xp):
    x, y = _blobs(n_per=10)
    W = random_features_baseline(xp.zeros((8, 10), dtype="float32"), rng=1)
    clf = BioClassifier(W, n_classes=3, lr=0.02, lr_decay="linear", epochs=4, batch_size=10,
                        rng=0, progress=False).fit(x, y)
    assert [r["lr"] for r in clf.history_] == pytest.approx([0.02, 0.015, 0.01, 0.005])
    const = BioClassifier(W, n_classes=3, lr=0.02, epochs=2, progress=False).fit(x, y)
    assert [r["lr"] for r in const.history_] == [0.02, 0.02]
    assert BioClassifier(**clf.get_params()).lr_decay == "linear"
    with pytest.raises(ValueError, match="unknown lr_decay"):
        BioClassifier(W, lr_decay="cosine")
