"""bionp.rules.SignSymmetry: uSF = FA with B = sign(W), frSF fixed / brSF redrawn magnitudes,
the scales, conv nets, bit-identical checkpoint resume, bad input with nothing changed."""

import math

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim
from bionp.nn import MLP, CrossEntropyLoss, MSELoss
from bionp.random import Generator
from bionp.rules import FeedbackAlignment, SignSymmetry, get_rule
from bionp.testing import assert_allclose, assert_equal
from bionp.train import Trainer


def _data(n=8, d=5, c=3, seed=0):
    g = Generator(seed)
    return g.normal(0, 1, (n, d), dtype="float64"), g.integers(0, c, n)


def _host(a):
    return np.array(bnp.asnumpy(a), copy=True)


def _convnet(dtype="float64"):
    layers = [nn.Conv2d(2, 3, 3, rng=1, dtype=dtype), nn.MaxPool2d(2),
              nn.Conv2d(3, 4, 3, stride=2, padding=2, rng=2, dtype=dtype), nn.AvgPool2d(2),
              nn.Flatten(), nn.Dense(16, 3, init="he_normal", rng=3, dtype=dtype)]
    return nn.Sequential(layers, ["tanh", "identity", "tanh", "identity", "identity", "identity"],
                         input_shape=(2, 12, 12))


def _images(n=6):
    g = Generator(4)
    return g.normal(0, 1, (n, 2, 12, 12), dtype="float64"), g.integers(0, 3, n)


@pytest.mark.parametrize("make_net, data", [(lambda: MLP([5, 4, 4, 3], rng=1, dtype="float64"),
                                             _data), (_convnet, _images)], ids=["dense", "conv"])
def test_usf_with_unit_magnitudes_is_fa_with_sign_of_W(xp, make_net, data):
    x, y = data()
    net = make_net()
    rule = SignSymmetry("usf", scale="unit")
    g_sf = rule.gradients(net, x, y, CrossEntropyLoss())
    fa = FeedbackAlignment(rng=0).initialize(net)
    fa.B = [None if b is None else xp.sign(layer.W) for b, layer in zip(fa.B, net.layers)]
    g_fa = fa.gradients(net, x, y, CrossEntropyLoss())
    for a, b in zip(g_sf, g_fa):
        assert sorted(a) == sorted(b)
        for k in a:
            assert_equal(a[k], b[k])
    # the explicit sign(W) backward of the dense case, written out
    if isinstance(net, MLP):
        cache = net.forward_cache(x)
        delta = net.output_delta(cache, net.prepare_target(y, x.shape[0]), CrossEntropyLoss())
        for l in range(len(net.layers) - 1, 0, -1):
            d_in = delta @ xp.sign(net.layers[l].W)
            delta = net.activations[l - 1].vjp(cache.pre[l - 1], cache.post[l - 1], d_in)
        assert_allclose(g_sf[0]["W"], delta.T @ x, rtol=1e-12)
    assert all(b is None or b.ndim == (4 if i < 3 and not isinstance(net, MLP) else 2)
               for i, b in enumerate(rule.B))


def test_output_layer_exact_hidden_differs(xp):
    from bionp.rules import Backprop

    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    for variant in ("usf", "brsf", "frsf"):
        g = SignSymmetry(variant, rng=0).gradients(net, x, y, MSELoss())
        g_bp = Backprop().gradients(net, x, y, MSELoss())
        assert_allclose(g[-1]["W"], g_bp[-1]["W"], rtol=1e-12)
        assert np.abs(_host(g[0]["W"]) - _host(g_bp[0]["W"])).max() > 1e-6


def _two_updates(rule, net, x, y):
    opt = optim.SGD(net, lr=0.5)
    opt.step(rule.gradients(net, x, y, MSELoss()))
    B1 = [None if b is None else _host(b) for b in rule.B]
    rule.gradients(net, x, y, MSELoss())  # B from the updated W
    B2 = [None if b is None else _host(b) for b in rule.B]
    return B1, B2


def test_frsf_magnitudes_fixed_brsf_redrawn(xp):
    x, y = _data()
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    fr = SignSymmetry("frsf", scale="unit", rng=3)
    B1, B2 = _two_updates(fr, net, x, y)
    for l in (1, 2):
        np.testing.assert_array_equal(np.abs(B1[l]), np.abs(B2[l]))       # fixed |R|
        np.testing.assert_array_equal(np.abs(B1[l]), _host(fr.R[l]))
        np.testing.assert_array_equal(np.sign(B2[l]), np.sign(_host(net.layers[l].W)))
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    br = SignSymmetry("brsf", scale="unit", rng=3)
    B1, B2 = _two_updates(br, net, x, y)
    assert br.R is None
    for l in (1, 2):
        assert np.abs(np.abs(B1[l]) - np.abs(B2[l])).min() > 0                # all redrawn
        np.testing.assert_array_equal(np.sign(B2[l]), np.sign(_host(net.layers[l].W)))
    # usf: only the signs of the current W
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    B1, B2 = _two_updates(SignSymmetry("usf", scale="unit"), net, x, y)
    for l in (1, 2):
        np.testing.assert_array_equal(B2[l], np.sign(_host(net.layers[l].W)))


@pytest.mark.parametrize("variant", ["usf", "brsf", "frsf"])
def test_scales(xp, variant):
    x, y = _data()
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    for scale in ("norm", "align", "xavier", "unit", 0.25):
        rule = SignSymmetry(variant, scale=scale, rng=7)
        rule.gradients(net, x, y, MSELoss())
        ref = SignSymmetry(variant, scale="unit", rng=7)
        ref.gradients(net, x, y, MSELoss())
        for l in (1, 2):
            W, B, S = _host(net.layers[l].W), _host(rule.B[l]), _host(ref.B[l])
            if scale == "norm":
                c = np.linalg.norm(W) / np.linalg.norm(S)
                assert abs(np.linalg.norm(B) - np.linalg.norm(W)) < 1e-12 * np.linalg.norm(W)
            elif scale == "align":  # the component of B along W is W
                c = (W * W).sum() / (S * W).sum()
                assert abs((B * W).sum() - (W * W).sum()) < 1e-12 * (W * W).sum()
            elif scale == "xavier":
                c = math.sqrt(2.0 / sum(W.shape))
            else:
                c = 1.0 if scale == "unit" else 0.25
            np.testing.assert_allclose(B, c * S, rtol=1e-14, atol=0)
    # xavier fans of a conv kernel: in*kh*kw and out*kh*kw
    net = _convnet()
    rule = SignSymmetry("usf", scale="xavier")
    rule.gradients(net, *_images(), MSELoss())
    assert np.allclose(np.abs(_host(rule.B[2])), math.sqrt(2.0 / (3 * 9 + 4 * 9)))


@pytest.mark.parametrize("variant", ["usf", "brsf", "frsf"])
def test_conv_net_trains_and_checkpoint_resumes_bit_identically(xp, tmp_path, variant):
    x, _ = _images(24)
    x = x.reshape(24, -1)  # the Trainer takes flat rows; the network reshapes them
    y = bnp.get_xp().argmax(x @ Generator(8).normal(0, 1, (288, 3), dtype="float64"), axis=1)

    def make(seed, **kw):
        net = _convnet()
        return Trainer(net, SignSymmetry(variant, rng=seed), optim.SGD(net, lr=0.05, momentum=0.9),
                       CrossEntropyLoss(), batch_size=6, rng=seed + 5, progress=False, **kw)

    ref = make(1)
    ref.fit(x, y, epochs=6)
    assert ref.history.epoch_loss[-1] < ref.history.epoch_loss[0]
    ck = tmp_path / "ck.npz"
    make(1, checkpoint=ck).fit(x, y, epochs=2)
    tr = make(30, checkpoint=ck)  # other seeds: everything must come from the file
    tr.fit(x, y, until_epoch=6, resume=True)
    assert tr.history.loss == ref.history.loss
    for a, b in zip(ref.net.layers, tr.net.layers):
        for k, v in a.params().items():
            assert_equal(v, b.params()[k])
    assert ref.rule.state_dict()["rng"] == tr.rule.state_dict()["rng"]


def test_bad_input_changes_nothing(xp):
    with pytest.raises(ValueError,
                       match=r"variant must be one of \['usf', 'brsf', 'frsf'\].*'bsf'"):
        SignSymmetry("bsf")
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            SignSymmetry(scale=bad)
    with pytest.raises(ValueError,
                       match=r"scale must be one of \['norm', 'align', 'xavier', 'unit'\]"):
        SignSymmetry(scale="he")
    with pytest.raises(TypeError, match="scale"):
        SignSymmetry(scale=None)
    x, y = _data()
    for variant in ("usf", "brsf", "frsf"):
        rule = SignSymmetry(variant, rng=0)
        net = MLP([5, 4, 3], rng=1, dtype="float64")
        rule.gradients(net, x, y, MSELoss())
        state = {k: v for k, v in rule.state_dict().items()}
        with pytest.raises(ValueError, match="initialised for a network"):
            rule.gradients(MLP([5, 7, 3], rng=1, dtype="float64"), x, y, MSELoss())
        # non-finite weights give non-finite feedback: refused, generator untouched
        W = net.layers[1].W
        W[0, 0] = float("nan")
        B_before = [None if b is None else _host(b) for b in rule.B]
        with pytest.raises(ValueError, match="layer 1.*not finite.*nothing was changed"):
            rule.gradients(net, x, y, MSELoss())
        assert rule.state_dict()["rng"] == state["rng"]
        for a, b in zip(B_before, rule.B):
            assert (a is None and b is None) or np.array_equal(a, _host(b))
    # NaN or Inf in a higher layer: refused before the arrays the rule keeps for B (written
    # in place every update) or the generator change
    for variant in ("usf", "brsf", "frsf"):
        for bad in (float("nan"), float("inf")):
            rule = SignSymmetry(variant, rng=0)
            net = MLP([5, 4, 4, 3], rng=1, dtype="float64")
            rule.gradients(net, x, y, MSELoss())
            B_before, rng_before = [_host(b) for b in rule.B[1:]], rule.state_dict()["rng"]
            net.layers[2].W[1, 1] = bad
            with pytest.raises(ValueError, match="layer 2.*NaN or Inf.*nothing was changed"):
                rule.gradients(net, x, y, MSELoss())
            assert rule.state_dict()["rng"] == rng_before
            for a, b in zip(B_before, rule.B[1:]):
                np.testing.assert_array_equal(a, _host(b))
    # a checkpoint state with non-finite magnitudes is refused before anything changes
    rule = SignSymmetry("frsf", rng=0)
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    rule.gradients(net, x, y, MSELoss())
    state = rule.state_dict()
    R_before = _host(rule.R[1])
    bad = dict(state, R=[None, rule.R[1] * float("inf")], rng=Generator(9).get_state())
    with pytest.raises(ValueError, match=r"R\[1\].*NaN or Inf"):
        rule.load_state_dict(bad)
    np.testing.assert_array_equal(_host(rule.R[1]), R_before)
    assert rule.state_dict()["rng"] == state["rng"]
    with pytest.raises(ValueError, match=r"R\[1\].*shape"):
        rule.load_state_dict(dict(state, R=[None, rule.R[1][:2]]))


def test_names_config_and_diagnostics_leave_state_alone(xp):
    from bionp import metrics

    assert get_rule("usf").variant == "usf" and get_rule("brSF", rng=1).variant == "brsf"
    assert get_rule("frsf", scale="xavier").get_config() == {
        "name": "sign_symmetry", "variant": "frsf", "scale": "xavier", "magnitudes": "uniform"}
    assert get_rule("usf").get_config() == {"name": "sign_symmetry", "variant": "usf",
                                           "scale": "norm"}
    assert repr(SignSymmetry("brsf", scale=0.5, magnitudes="normal")) == \
        "SignSymmetry(variant='brsf', scale=0.5)"
    assert repr(SignSymmetry("brsf", scale=0.5)) == \
        "SignSymmetry(variant='brsf', scale=0.5, magnitudes='uniform')"
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    rule = SignSymmetry("brsf", rng=0)
    state = rule.state_dict()["rng"]
    nxt = rule.current_feedback(net)
    metrics.compare_to_backprop(rule, net, x, y, MSELoss())
    metrics.gradient_snr(rule, net, x, y, MSELoss())
    assert rule.state_dict()["rng"] == state
    rule.gradients(net, x, y, MSELoss())
    assert_equal(rule.B[1], nxt[1])  # what current_feedback announced


def test_brsf_magnitudes_are_one_draw_and_B_arrays_are_kept(xp):
    """brSF's R of all layers is one N(0, 1) draw (layer by layer, each flattened); the
    arrays of B are written in place every update, the diagnostics' B are new arrays."""
    x, y = _data()
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    rule = SignSymmetry("brsf", scale="unit", rng=3, magnitudes="normal")
    twin = Generator(0)
    twin.set_state(rule.state_dict()["rng"])
    rule.gradients(net, x, y, MSELoss())
    # layer 0 needs no B (its weights take no part): layers 1 (4x6) and 2 (3x4) in order
    R = _host(twin.normal(0.0, 1.0, (4 * 6 + 3 * 4,), dtype="float64"))
    got = np.concatenate([np.abs(_host(rule.B[1])).ravel(), np.abs(_host(rule.B[2])).ravel()])
    np.testing.assert_array_equal(got, np.abs(R))
    kept = list(rule.B)
    preview = rule.current_feedback(net)
    assert all(p is not k for p, k in zip(preview[1:], kept[1:]))
    rule.gradients(net, x, y, MSELoss())
    assert all(a is b for a, b in zip(rule.B[1:], kept[1:]))  # the same arrays, rewritten
    for p, b in zip(preview[1:], rule.B[1:]):  # the preview was the draw this update used
        assert_equal(p, b)


@pytest.mark.parametrize("variant", ["brsf", "frsf"])
def test_uniform_magnitudes_are_the_generators_uniforms(xp, variant):
    """magnitudes="uniform" (the default): |B| are the draws of U(0, 1) (brSF: one draw per
    update, layers in order; frSF: once per weight), the signs those of W; the config names
    the distribution except "normal", so checkpoints from before the uniform default
    (which name none) resume only with magnitudes="normal"."""
    x, y = _data()
    net = MLP([5, 6, 4, 3], rng=1, dtype="float64")
    rule = SignSymmetry(variant, scale="unit", rng=3, magnitudes="uniform")
    twin = Generator(0)
    twin.set_state(rule.state_dict()["rng"])
    rule.gradients(net, x, y, MSELoss())
    if variant == "brsf":
        R = _host(twin.uniform(0.0, 1.0, (4 * 6 + 3 * 4,), dtype="float64"))
    else:  # frSF draws each B's magnitudes once, in initialize (layer 0 has no B)
        R = np.concatenate([_host(twin.uniform(0.0, 1.0, s, dtype="float64")).ravel()
                            for s in [(4, 6), (3, 4)]])
    got = np.concatenate([np.abs(_host(rule.B[1])).ravel(), np.abs(_host(rule.B[2])).ravel()])
    np.testing.assert_array_equal(got, R)
    for l in (1, 2):
        np.testing.assert_array_equal(np.sign(_host(rule.B[l])), np.sign(_host(net.layers[l].W)))
    assert rule.get_config()["magnitudes"] == "uniform" == SignSymmetry(variant).magnitudes
    assert "magnitudes" not in SignSymmetry(variant, magnitudes="normal").get_config()


def test_unknown_magnitudes_are_refused():
    with pytest.raises(ValueError, match=r"magnitudes must be one of \['normal', 'uniform'\].*'cauchy'"):
        SignSymmetry("brsf", magnitudes="cauchy")
