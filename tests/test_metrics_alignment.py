"""bionp.metrics.layer_alignment / weight_ratio / alignment_diagnostics: the angle between
B and W and their norm ratio per layer, against independent formulas; Trainer diagnostics
that leave training unchanged."""

import math

import numpy as np
import pytest

import bionp as bnp
from bionp import metrics, nn, optim
from bionp.nn import MLP, CrossEntropyLoss
from bionp.random import Generator
from bionp.rules import (Backprop, FeedbackAlignment, KolenPollack, NodePerturbation,
                         SignSymmetry, WeightMirror)
from bionp.testing import assert_equal
from bionp.train import Trainer


def _host(a):
    return np.array(bnp.asnumpy(a), dtype=np.float64)


def _angle(a, b):
    a, b = _host(a).ravel(), _host(b).ravel()
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_against_independent_formulas(xp):
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    fa = FeedbackAlignment(rng=0)
    ang, ratio = metrics.layer_alignment(fa, net), metrics.weight_ratio(fa, net)
    assert math.isnan(ang[0]) and math.isnan(ratio[0])
    for l in (1, 2):
        W, B = net.layers[l].W, fa.B[l]
        assert abs(ang[l] - _angle(B, W)) < 1e-9
        assert abs(ratio[l] - np.linalg.norm(_host(B)) / np.linalg.norm(_host(W))) < 1e-12
    W1 = net.layers[1].W
    fa.B = [None, W1.copy(), -2 * net.layers[2].W]
    assert metrics.layer_alignment(fa, net)[1:] == pytest.approx([0.0, 180.0], abs=1e-5)
    assert metrics.weight_ratio(fa, net)[1:] == pytest.approx([1.0, 2.0], rel=1e-12)
    # an orthogonal B: remove W's component
    R = Generator(3).normal(0, 1, W1.shape, dtype="float64")
    R -= W1 * (xp.sum(R * W1) / xp.sum(W1 * W1))
    fa.B[1] = R
    assert metrics.layer_alignment(fa, net)[1] == pytest.approx(90.0, abs=1e-9)
    # backprop: B = W
    assert metrics.layer_alignment(Backprop(), net)[1:] == pytest.approx([0.0, 0.0], abs=1e-5)
    assert metrics.weight_ratio(Backprop(), net)[1:] == pytest.approx([1.0, 1.0])
    # uSF scaled to W's norm: cos = sum|W| / (sqrt(n) ||W||)
    usf = SignSymmetry("usf")
    ang = metrics.layer_alignment(usf, net)
    for l in (1, 2):
        W = _host(net.layers[l].W)
        want = math.degrees(math.acos(np.abs(W).sum() / math.sqrt(W.size) / np.linalg.norm(W)))
        assert abs(ang[l] - want) < 1e-9
    assert metrics.weight_ratio(usf, net)[1:] == pytest.approx([1.0, 1.0], rel=1e-12)
    with pytest.raises(TypeError, match="no feedback matrices"):
        metrics.layer_alignment(NodePerturbation(rng=0), net)


def test_conv_layers_without_feedback_read_nan(xp):
    layers = [nn.Conv2d(1, 2, 3, rng=1), nn.MaxPool2d(2), nn.Conv2d(2, 3, 3, rng=2),
              nn.Flatten(), nn.Dense(3, 2, rng=3)]
    net = nn.Sequential(layers, ["relu", "identity", "relu", "identity", "identity"],
                        input_shape=(1, 8, 8))
    ang = metrics.layer_alignment(SignSymmetry("frsf", rng=0), net)
    assert [math.isnan(a) for a in ang] == [True, True, False, True, False]
    assert 0 < ang[2] < 90


@pytest.mark.parametrize("make", [lambda: SignSymmetry("brsf", rng=2),
                                  lambda: FeedbackAlignment(rng=2),
                                  lambda: WeightMirror(warmup_steps=5, rng=2),
                                  lambda: KolenPollack(rng=2)])
def test_trainer_diagnostics_leave_training_unchanged(xp, make):
    g = Generator(0)
    x = g.normal(0, 1, (60, 8))
    y = bnp.get_xp().argmax(x @ g.normal(0, 1, (8, 3)), axis=1)
    runs = []
    for diag in (None, metrics.alignment_diagnostics()):
        net = MLP([8, 10, 10, 3], activation="relu", output_activation="identity", rng=1)
        tr = Trainer(net, make(), optim.SGD(net, lr=0.05, momentum=0.9), CrossEntropyLoss(),
                     batch_size=20, rng=3, progress=False, diagnostics=diag,
                     diagnostics_at_start=diag is not None)
        tr.fit(x, y, epochs=2)
        runs.append(tr)
    for a, b in zip(runs[0].net.layers, runs[1].net.layers):
        assert_equal(a.W, b.W)
    d = runs[1].history.diagnostics
    assert len(d["layer_alignment"]) == 3 and len(d["weight_ratio"]) == 3   # epoch 0, 1, 2
    assert all(math.isnan(v[0]) and len(v) == 3 for v in d["layer_alignment"])
    assert d["layer_alignment"][-1][1:] == pytest.approx(
        metrics.layer_alignment(runs[1].rule, runs[1].net)[1:])
