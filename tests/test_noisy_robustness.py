"""Robustness curves: the test-time noise they report is applied, honestly."""

import json

import numpy as np
import pytest

import bionp as bnp
from bionp import data, nn, optim, rules
from bionp.random import Generator
from bionp.robustness import RobustnessCurve, check_sigma_grid, robustness_curve
from bionp.train import Trainer


@pytest.fixture(scope="module")
def trained():
    """A 784-64-10 MLP trained 3 epochs on the bundled Fashion-MNIST subset (NumPy)."""
    with bnp.backend("numpy"):
        x, y = data.load("fashion-mnist-small", split="train")
        xt, yt = data.load("fashion-mnist-small", split="test")
        net = nn.MLP([784, 64, 10], activation="relu", init="he_normal", rng=0)
        Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.05, momentum=0.9),
                nn.CrossEntropyLoss(), batch_size=64, rng=0, progress=False).fit(x, y, epochs=3)
        return net, bnp.asnumpy(xt[:1000]), bnp.asnumpy(yt[:1000])


def _on(xp, trained):
    net, xt, yt = trained
    net = net.copy()
    if bnp.backend_name() != "numpy":
        for layer in net.layers:
            layer.W = bnp.asarray(bnp.asnumpy(layer.W))
            layer.b = bnp.asarray(bnp.asnumpy(layer.b))
    return net, bnp.asarray(xt), bnp.asarray(yt)


def test_sigma_zero_is_deterministic_and_clean(xp, trained):
    net, x, y = _on(xp, trained)
    a = robustness_curve(net, x, y, [0.0], repeats=3, rng=1)
    b = robustness_curve(net, x, y, [0.0], repeats=3, rng=2)
    assert a.accuracy == b.accuracy
    assert a.std == [0.0]
    from bionp.metrics import accuracy
    assert a.mean[0] == accuracy(net.forward(x), y)


def test_noise_is_applied_different_seeds_differ(xp, trained):
    net, x, y = _on(xp, trained)
    a = robustness_curve(net, x, y, [0.1], repeats=3, rng=1)
    b = robustness_curve(net, x, y, [0.1], repeats=3, rng=2)
    c = robustness_curve(net, x, y, [0.1], repeats=3, rng=1)
    assert a.accuracy != b.accuracy
    assert a.accuracy == c.accuracy  # same seed, same numbers
    assert a.std[0] > 0  # repeats are independent draws


def test_net_is_not_modified(cpu_xp, trained):
    net, x, y = _on(cpu_xp, trained)
    before = [bnp.asnumpy(p["W"]).copy() for p in net.parameters()]
    robustness_curve(net, x, y, [0.0, 0.2], repeats=2, rng=0, mode="multiplicative")
    for b, p in zip(before, net.parameters()):
        np.testing.assert_array_equal(b, bnp.asnumpy(p["W"]))


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_accuracy_drop_grows_with_sigma(trained, mode):
    net, x, y = _on(np, trained)
    grid = [0.0, 0.05, 0.1, 0.2, 0.4] if mode == "additive" else [0.0, 0.25, 0.5, 1.0, 2.0]
    curve = robustness_curve(net, bnp.asarray(x), bnp.asarray(y), grid, repeats=5, rng=0, mode=mode)
    m = curve.mean
    assert m[0] > 70  # the net learned something
    assert all(m[k + 1] < m[k] for k in range(len(m) - 1)), m
    assert m[-1] < m[0] - 20, m


def test_curve_matches_manual_perturbation(cpu_xp, trained):
    """The first repeat's accuracy is that of W + σ ε with ε the generator's first draws."""
    net, x, y = _on(cpu_xp, trained)
    curve = robustness_curve(net, x, y, [0.07], repeats=1, rng=5)
    g = Generator(5)
    params = []
    for p in net.parameters():
        q = dict(p)
        q["W"] = p["W"] + np.float32(0.07) * g.normal(0, 1, p["W"].shape, dtype=p["W"].dtype)
        params.append(q)
    xp = bnp.get_xp()
    pred = xp.argmax(net.forward_with(x, params), axis=1)
    want = 100.0 * bnp.to_scalar(xp.count_nonzero(pred == y)) / y.shape[0]
    assert curve.accuracy[0][0] == want


def test_batching_does_not_change_the_numbers(cpu_xp, trained):
    net, x, y = _on(cpu_xp, trained)
    a = robustness_curve(net, x, y, [0.0, 0.1], repeats=2, rng=3)
    b = robustness_curve(net, x, y, [0.0, 0.1], repeats=2, rng=3, batch_size=128)
    assert a.accuracy == b.accuracy


def test_also_reachable_from_metrics():
    from bionp import metrics

    assert metrics.robustness_curve is robustness_curve


def test_curve_to_dict_round_trip(cpu_xp, trained):
    net, x, y = _on(cpu_xp, trained)
    c = robustness_curve(net, x, y, [0.0, 0.05], repeats=2, rng=0)
    d = json.loads(json.dumps(c.to_dict()))
    assert RobustnessCurve.from_dict(d) == c
    assert c.at(0.05) == (c.mean[1], c.std[1])
    with pytest.raises(KeyError, match="not on the grid"):
        c.at(0.3)


def test_plot_robustness(tmp_path, cpu_xp, trained):
    from bionp.plot import plot_robustness

    net, x, y = _on(cpu_xp, trained)
    c = robustness_curve(net, x, y, [0.0, 0.05], repeats=2, rng=0)
    fig = plot_robustness({"mlp": c, "as dict": c.to_dict()}, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert len(fig.axes[0].containers) == 2  # one errorbar container per model


# -- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("grid,match", [([0.0, -0.1], "negative"), ([0.1, float("nan")], "finite"),
                                        ([], "non-empty"), ([[0.1]], "1-D"), ("abc", "sequence")])
def test_bad_sigma_grid(grid, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_sigma_grid(grid)


def test_bad_arguments(cpu_xp, trained):
    net, x, y = _on(cpu_xp, trained)
    with pytest.raises(ValueError, match="negative"):
        robustness_curve(net, x, y, [0.0, -0.05])
    with pytest.raises(ValueError, match="noise mode"):
        robustness_curve(net, x, y, [0.1], mode="salt")
    with pytest.raises(ValueError, match="repeats"):
        robustness_curve(net, x, y, [0.1], repeats=0)
    with pytest.raises(ValueError, match="labels"):
        robustness_curve(net, x, y[:10], [0.1])
    with pytest.raises(TypeError, match="forward_with"):
        robustness_curve(object(), x, y, [0.1])


def test_labels_on_another_backend_are_refused():
    with bnp.backend("strict"):
        net, x, y = _on(None, _trained_small())
        with pytest.raises(bnp.MixedBackendError, match="labels"):
            robustness_curve(net, x, bnp.asnumpy(y), [0.0, 0.1])


def _trained_small():
    with bnp.backend("numpy"):
        net = nn.MLP([784, 8, 10], activation="relu", rng=0)
        g = Generator(0)
        return net, bnp.asnumpy(g.random((20, 784))), bnp.asnumpy(g.integers(0, 10, 20))
