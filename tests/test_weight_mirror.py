"""bionp.rules.WeightMirror: the mirror update equals Akrout et al.'s formula (dense and conv,
float64, 1e-12), B comes to mirror W, the schedule's validation, resume, bad input."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim
from bionp.nn import MLP, CrossEntropyLoss, MSELoss
from bionp.random import Generator
from bionp.rules import WeightMirror, get_rule
from bionp.testing import assert_equal
from bionp.train import Trainer


def _host(a):
    return np.array(bnp.asnumpy(a), copy=True)


def _data(n=8, d=5, c=3, seed=0):
    g = Generator(seed)
    return g.normal(0, 1, (n, d), dtype="float64"), g.integers(0, c, n)


def _convnet():
    layers = [nn.Conv2d(2, 3, 3, rng=1, dtype="float64"), nn.MaxPool2d(2),
              nn.Conv2d(3, 4, 3, stride=2, padding=2, rng=2, dtype="float64"), nn.AvgPool2d(2),
              nn.Flatten(), nn.Dense(16, 3, rng=3, dtype="float64")]
    return nn.Sequential(layers, ["tanh", "identity", "tanh", "identity", "identity", "identity"],
                         input_shape=(2, 12, 12))


def _conv_by_loops(x, W, stride, pad):
    """Plain cross-correlation (no bias), written independently of bionp.nn.conv."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp_[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("ncab,ocab->no", patch, W)
    return y, xp_


def _paper_update_conv(B, W, xi, eta, lam, stride, pad):
    y, xp_ = _conv_by_loops(xi, W, stride, pad)
    kh, kw = W.shape[2:]
    G = np.zeros_like(W)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            patch = xp_[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            G += np.einsum("no,ncab->ocab", y[:, :, i, j], patch)
    # pairs per weight: images x the output positions where the tap meets the input
    valid = np.pad(np.ones(xi.shape[2:]), pad)
    counts = np.zeros((kh, kw))
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            counts += valid[i * stride:i * stride + kh, j * stride:j * stride + kw]
    return B + eta * G / (xi.shape[0] * counts) - lam * B


@pytest.mark.parametrize("dist, balance", [("normal", 1), ("rademacher", 1), ("rademacher", 4)])
def test_mirror_update_is_the_papers_formula_dense(xp, dist, balance):
    from bionp.rules.perturbation import rademacher

    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    rule = WeightMirror(mirror_steps=2, noise=0.3, mirror_lr=0.7, decay=0.02, mirror_batch_size=5,
                        warmup_steps=0, rng=4, noise_dist=dist, balance=balance).initialize(net)
    B0 = [None] + [_host(b) for b in rule.B[1:]]
    g = Generator(0)
    g.set_state(rule.state_dict()["rng"])       # the same noise draw, taken independently
    rule.mirror(net, 2)
    expected = B0
    # B[1] has 24 entries, B[2] 12: the smaller layer gets min(balance, 24 // 12) times the
    # draws, decay and mirror learning rate
    k = {1: 1, 2: min(balance, 2)}
    for _ in range(2):
        for l in (1, 2):
            W = _host(net.layers[l].W)
            m, shape = 5 * k[l], (5 * k[l], W.shape[1])
            xi = _host(g.normal(0.0, 0.3, shape, dtype="float64") if dist == "normal" else
                       rademacher(g, shape, 0.3, np.dtype("float64"), bnp.get_xp()))
            y = xi @ W.T                            # the layer's response, no bias
            expected[l] = (expected[l] + 0.7 * k[l] * (y.T @ xi) / m
                           - 0.02 * k[l] * expected[l])
    for l in (1, 2):
        np.testing.assert_allclose(_host(rule.B[l]), expected[l], rtol=1e-12, atol=1e-15)
    assert rule.eta == 0.7
    assert rule.boosts(net) == [None, 1, k[2]]


def test_mirror_update_is_the_papers_formula_conv(xp):
    net = _convnet()
    rule = WeightMirror(noise=0.5, mirror_lr=0.3, decay=0.1, mirror_batch_size=3, warmup_steps=0,
                        rng=2, noise_dist="normal", balance=1, mirror_every=1).initialize(net)
    B0 = {l: _host(rule.B[l]) for l in (2, 5)}
    g = Generator(0)
    g.set_state(rule.state_dict()["rng"])
    rule.update_after_step(net, None, 0.1)
    # the conv layer's output has 4x4 positions: ceil(3 / 16) = 1 noise image per step
    xi2 = _host(g.normal(0.0, 0.5, (1, 3, 5, 5), dtype="float64"))
    xi5 = _host(g.normal(0.0, 0.5, (3, 16), dtype="float64"))
    want2 = _paper_update_conv(B0[2], _host(net.layers[2].W), xi2, 0.3, 0.1, 2, 2)
    W5 = _host(net.layers[5].W)
    want5 = B0[5] + 0.3 / 3 * (xi5 @ W5.T).T @ xi5 - 0.1 * B0[5]
    np.testing.assert_allclose(_host(rule.B[2]), want2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_host(rule.B[5]), want5, rtol=1e-12, atol=1e-15)
    assert rule.B[1] is None and rule.B[3] is None and rule.B[4] is None


def test_conv_B_comes_to_mirror_W_at_W_scale(xp):
    from bionp import metrics

    net = _convnet()
    rule = WeightMirror(decay=0.05, mirror_batch_size=64, warmup_steps=150, rng=1).initialize(net)
    ang, ratio = metrics.layer_alignment(rule, net), metrics.weight_ratio(rule, net)
    assert ang[2] < 10 and ang[5] < 10, ang
    assert abs(ratio[2] - 1) < 0.15 and abs(ratio[5] - 1) < 0.15, ratio


def test_B_comes_to_mirror_W(xp):
    net = MLP([20, 30, 10], rng=1, dtype="float64")
    rule = WeightMirror(noise=0.1, decay=0.05, mirror_batch_size=64, warmup_steps=0, rng=0)
    rule.initialize(net)
    W = _host(net.layers[1].W).ravel()

    def angle():
        B = _host(rule.B[1]).ravel()
        return np.degrees(np.arccos(W @ B / np.linalg.norm(W) / np.linalg.norm(B)))

    before = angle()
    rule.mirror(net, 120)
    B = _host(rule.B[1]).ravel()
    assert before > 60 and angle() < 8, (before, angle())
    assert abs(np.linalg.norm(B) / np.linalg.norm(W) - 1) < 0.1   # eta = decay/noise^2: B* = W
    # the warm-up phase runs when B is first drawn
    warm = WeightMirror(decay=0.05, mirror_batch_size=64, warmup_steps=120, rng=0)
    warm.gradients(net, *_data(d=20, c=10), MSELoss())
    np.testing.assert_array_equal(_host(warm.B[1]), _host(rule.B[1]))


@pytest.mark.parametrize("dist", ["normal", "uniform", "rademacher"])
def test_every_noise_distribution_mirrors_W(xp, dist):
    net = MLP([20, 30, 10], rng=1, dtype="float64")
    rule = WeightMirror(noise=0.1, decay=0.05, mirror_batch_size=64, warmup_steps=0, rng=0,
                        noise_dist=dist).initialize(net)
    xi = rule.draw_noise((4000, 30), net.layers[1].W)
    assert xi.dtype == net.layers[1].W.dtype and bnp.get_array_module(xi) is xp
    xi = _host(xi)
    cov = xi.T @ xi / xi.shape[0]  # sigma^2 I whatever the distribution
    np.testing.assert_allclose(np.diag(cov), 0.01, rtol=0.1)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 0.002 and abs(xi.mean()) < 0.002
    if dist == "rademacher":
        np.testing.assert_allclose(np.abs(xi), 0.1)
    if dist == "uniform":
        assert np.abs(xi).max() <= 0.1 * 3 ** 0.5 + 1e-12 and np.abs(xi).max() > 0.17
    rule.mirror(net, 120)
    W, B = _host(net.layers[1].W).ravel(), _host(rule.B[1]).ravel()
    assert np.degrees(np.arccos(W @ B / np.linalg.norm(W) / np.linalg.norm(B))) < 8
    assert abs(np.linalg.norm(B) / np.linalg.norm(W) - 1) < 0.1


def test_trains_and_checkpoint_resumes_bit_identically(xp, tmp_path):
    g = Generator(0)
    x = g.normal(0, 1, (120, 12))
    y = bnp.get_xp().argmax(x @ g.normal(0, 1, (12, 3)), axis=1)

    def make(seed, **kw):
        net = nn.MLP([12, 16, 16, 3], activation="tanh", output_activation="identity", rng=seed)
        # 6 updates per epoch, a mirror phase every 5th: the checkpoint after 12 updates
        # falls 2 updates into a phase's count
        return Trainer(net, WeightMirror(warmup_steps=20, rng=seed + 1, mirror_every=5,
                                         mirror_batch_size=48, decay=0.005),
                       optim.SGD(net, lr=0.1, momentum=0.9), CrossEntropyLoss(), batch_size=20,
                       rng=seed + 2, progress=False, **kw)

    ref = make(1)
    ref.fit(x, y, epochs=4)
    assert ref.history.epoch_loss[-1] < 0.85 * ref.history.epoch_loss[0]
    ck = tmp_path / "wm.npz"
    make(1, checkpoint=ck).fit(x, y, epochs=2)
    tr = make(50, checkpoint=ck)
    tr.fit(x, y, until_epoch=4, resume=True)
    assert tr.history.loss == ref.history.loss
    for a, b in zip(ref.rule.B[1:], tr.rule.B[1:]):
        assert_equal(a, b)
    for a, b in zip(ref.net.layers, tr.net.layers):
        assert_equal(a.W, b.W)
    assert tr.rule.state_dict()["since_mirror"] == ref.rule.state_dict()["since_mirror"] == 4


def test_mirror_phase_after_every_kth_update(xp):
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    rule = WeightMirror(warmup_steps=2, rng=3, mirror_every=3, mirror_steps=2,
                        mirror_batch_size=8, decay=0.05).initialize(net)
    twin = WeightMirror(warmup_steps=2, rng=3, mirror_every=1, mirror_steps=2,
                        mirror_batch_size=8, decay=0.05).initialize(net)
    for update in range(1, 8):
        before = [_host(b) for b in rule.B[1:]]
        net.layers[1].W *= 1.01  # the weights move between updates
        rule.update_after_step(net, None, 0.1)
        changed = [not np.array_equal(_host(b), a) for b, a in zip(rule.B[1:], before)]
        assert changed == [update % 3 == 0] * 2, update
        assert rule.state_dict()["since_mirror"] == update % 3
        if update % 3 == 0:  # the phase is the one mirror_every=1 runs at this update
            twin.update_after_step(net, None, 0.1)
            for a, b in zip(rule.B[1:], twin.B[1:]):
                assert_equal(a, b)
    with pytest.raises(ValueError, match="since_mirror.*int >= 0, got -1"):
        rule.load_state_dict({**rule.state_dict(), "since_mirror": -1})
    assert rule.state_dict()["since_mirror"] == 1


@pytest.mark.parametrize("kw, match", [
    ({"mirror_steps": 0}, "mirror_steps must be >= 1, got 0"),
    ({"mirror_steps": -2}, "mirror_steps must be >= 1"),
    ({"mirror_steps": 1.5}, "mirror_steps must be an int"),
    ({"mirror_every": 0}, "mirror_every must be >= 1, got 0"),
    ({"mirror_every": 2.5}, "mirror_every must be an int"),
    ({"noise": 0}, "noise"), ({"noise": -0.1}, "noise"), ({"noise": float("nan")}, "noise"),
    ({"mirror_lr": 0}, "mirror_lr"), ({"mirror_lr": -1}, "mirror_lr"),
    ({"decay": -0.1}, "decay"), ({"decay": 1.0}, "decay"),
    ({"decay": 0.0}, "mirror_lr=None takes decay"),
    ({"mirror_batch_size": 0}, "mirror_batch_size"), ({"warmup_steps": -1}, "warmup_steps"),
    ({"noise_dist": "gauss"}, "noise_dist must be one of 'normal', 'uniform', 'rademacher', "
                              "got 'gauss'"),
    ({"noise_dist": None}, "noise_dist must be one of"),
    ({"balance": 0.5}, r"balance must lie in \[1, inf\), got 0.5"),
    ({"balance": float("inf")}, "balance"),
    ({"decay": 0.3, "balance": 4}, r"decay \* balance must be < 1 .*got decay=0.3, balance=4"),
])
def test_bad_schedule(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        WeightMirror(**kw)


def test_bad_input_changes_nothing(xp):
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    rule = WeightMirror(warmup_steps=3, rng=0, mirror_every=2)
    rule.gradients(net, x, y, MSELoss())
    rule.update_after_step(net, None, 0.1)  # counted: the next update mirrors
    with pytest.raises(ValueError, match="initialised for a network"):
        rule.gradients(MLP([5, 7, 3], rng=1, dtype="float64"), x, y, MSELoss())
    state = rule.state_dict()["rng"]
    B = _host(rule.B[1])
    net.layers[1].W[0, 0] = float("inf")
    with pytest.raises(ValueError, match="layer 1 needs finite weights.*1 Inf.*unchanged"):
        rule.update_after_step(net, None, 0.1)
    assert rule.state_dict()["rng"] == state and rule.state_dict()["since_mirror"] == 1
    np.testing.assert_array_equal(_host(rule.B[1]), B)
    bad = {"rng": Generator(3).get_state(), "B": [None, rule.B[1] * float("nan")]}
    with pytest.raises(ValueError, match=r"B\[1\].*NaN or Inf"):
        rule.load_state_dict(bad)
    assert rule.state_dict()["rng"] == state
    np.testing.assert_array_equal(_host(rule.B[1]), B)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        rule.mirror(net, 0)


def test_name_and_config():
    rule = get_rule("weight_mirror", noise=0.2, rng=0)
    cfg = rule.get_config()
    assert cfg["name"] == "weight_mirror" and cfg["noise"] == 0.2 and cfg["mirror_steps"] == 1
    assert cfg["noise_dist"] == WeightMirror().noise_dist
    kw = {k: v for k, v in cfg.items() if k != "name"}
    assert WeightMirror(**kw, rng=0).get_config() == cfg
    assert rule.eta == pytest.approx(cfg["decay"] / 0.04)
