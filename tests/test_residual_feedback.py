"""Feedback alignment, Kolen-Pollack and sign symmetry inside residual blocks: one feedback
matrix per convolution of a block, B = W gives backprop exactly, training on every backend
and checkpoints of the block's matrices."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.train import Trainer


def _net(dtype=None, first_block=False):
    """A tiny residual net: option A and option B blocks (and a block as layer 0)."""
    kw = {"dtype": dtype}
    head = ([nn.ResidualBlock(1, 2, shortcut="B", activation="tanh", rng=0, **kw)]
            if first_block else [nn.Conv2d(1, 2, 3, padding=1, bias=False, rng=0, **kw),
                                 nn.BatchNorm2d(2, **kw)])
    layers = head + [nn.ResidualBlock(2, 2, activation="tanh", rng=1, **kw),
                     nn.ResidualBlock(2, 4, stride=2, activation="tanh", rng=2, **kw),
                     nn.ResidualBlock(4, 6, stride=2, shortcut="B", rng=3, **kw),
                     nn.AvgPool2d(2), nn.Flatten(), nn.Dense(6, 3, rng=4, **kw)]
    acts = ["tanh"] * (len(head) + 3) + ["identity"] * 3
    acts[0] = "identity" if not first_block else "tanh"
    return nn.Sequential(layers, acts, input_shape=(1, 8, 8))


@pytest.mark.parametrize("first_block", [False, True])
@pytest.mark.parametrize("make", [lambda: rules.FeedbackAlignment(rng=5),
                                  lambda: rules.KolenPollack(weight_decay=0.0, rng=5)])
def test_feedback_equal_to_weights_is_backprop_float64(xp, make, first_block):
    net = _net("float64", first_block)
    g = bnp.random.Generator(7)
    x, y = g.normal(0, 1, (5, 1, 8, 8), dtype="float64"), g.integers(0, 3, 5)
    loss = nn.CrossEntropyLoss()
    rule = make().initialize(net)
    block = net.layers[2] if not first_block else net.layers[1]
    assert isinstance(rule.B[0], dict) == first_block
    assert set(rule.B[net.layers.index(block)]) == {"conv1.W", "conv2.W"}
    assert set(rule.B[-4]) == {"conv1.W", "conv2.W", "short.W"}  # option B's projection too
    for l, b in enumerate(rule.B):
        if isinstance(b, dict):
            for k, m in b.items():
                assert m.shape == net.layers[l].params()[k].shape
    ref = rules.Backprop().gradients(net, x, y, loss)
    fa = rule.gradients(net, x, y, loss)
    worst = max(float(np.max(np.abs(bnp.asnumpy(fa[l][k]) - bnp.asnumpy(ref[l][k]))))
                for l in range(len(ref)) for k in ref[l])
    assert worst > 1e-3  # random B: not backprop
    for l, b in enumerate(rule.B):  # now B = W everywhere
        if isinstance(b, dict):
            for k, m in b.items():
                m[...] = net.layers[l].params()[k]
        elif b is not None:
            b[...] = net.layers[l].W
    fa = rule.gradients(net, x, y, loss)
    for l in range(len(ref)):
        assert set(fa[l]) == set(ref[l])
        for k in ref[l]:
            np.testing.assert_allclose(bnp.asnumpy(fa[l][k]), bnp.asnumpy(ref[l][k]),
                                       rtol=1e-12, atol=1e-14, err_msg=f"layer {l} {k}")
    # one block's B away from W: its own and the upper layers' gradients stay exact, the
    # layers below it see the change (the block does send its delta through B)
    i = net.layers.index(block) + 1
    rule.B[i]["conv1.W"] *= 2
    fa = rule.gradients(net, x, y, loss)
    for l in range(i, len(ref)):
        for k in ref[l]:
            np.testing.assert_allclose(bnp.asnumpy(fa[l][k]), bnp.asnumpy(ref[l][k]),
                                       rtol=1e-12, atol=1e-14)
    for l in range(i):
        for k in ref[l]:
            assert not np.allclose(bnp.asnumpy(fa[l][k]), bnp.asnumpy(ref[l][k])), (l, k)


RULES = {"fa": lambda: rules.FeedbackAlignment(rng=5),
         "kp": lambda: rules.KolenPollack(rng=5),
         "kp_sgd": lambda: rules.KolenPollack(feedback_optimizer="sgd", rng=5),
         "usf": lambda: rules.SignSymmetry("usf", rng=5),
         "brsf": lambda: rules.SignSymmetry("brsf", rng=5),
         "frsf": lambda: rules.SignSymmetry("frsf", rng=5)}


@pytest.mark.parametrize("name", sorted(RULES))
def test_rules_train_a_residual_net_and_resume_bit_identically(xp, name, tmp_path):
    g = bnp.random.Generator(6)
    x, y = g.uniform(0, 1, (24, 1, 8, 8)), g.integers(0, 3, 24)

    def run(epochs=None, until=None, ck=None, resume=False):
        net = _net()
        rule, opt = RULES[name](), optim.SGD(net, lr=0.05, momentum=0.9)
        tr = Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=8, rng=1,
                     progress=False, checkpoint=ck)
        hist = tr.fit(x, y, epochs=epochs, until_epoch=until, resume=resume)
        return net, rule, hist

    net, rule, hist = run(epochs=3)
    assert len(hist.loss) == 9 and np.all(np.isfinite(hist.loss)) and hist.stopped is None
    before = _net()
    moved = [l for l, layer in enumerate(net.layers) if isinstance(layer, nn.ResidualBlock)
             and not np.array_equal(bnp.asnumpy(layer.conv1.W),
                                    bnp.asnumpy(before.layers[l].conv1.W))]
    assert len(moved) == 3
    if name.startswith("kp"):  # B inside the blocks learned as W did
        assert not np.allclose(bnp.asnumpy(rule.B[2]["conv2.W"]),
                               bnp.asnumpy(RULES[name]().initialize(_net()).B[2]["conv2.W"]))
    ck = tmp_path / "ck.npz"
    run(epochs=1, ck=ck)
    net2, rule2, _ = run(until=3, ck=ck, resume=True)
    for a, b in zip(net.layers, net2.layers):
        for k, v in a.params().items():
            np.testing.assert_array_equal(bnp.asnumpy(b.params()[k]), bnp.asnumpy(v), k)
    # the rule's state holds the blocks' matrices and restores them exactly
    state = rule.state_dict()
    fresh = RULES[name]()
    fresh.load_state_dict(state)
    for key in ("B", "R"):
        mine, theirs = getattr(rule, key, None), getattr(fresh, key, None)
        if key == "B" and name in ("usf", "brsf", "frsf"):
            continue  # recomputed from W every update
        if mine is None:
            continue
        for m, t in zip(mine, theirs):
            if isinstance(m, dict):
                assert set(m) == set(t)
                for k in m:
                    np.testing.assert_array_equal(bnp.asnumpy(m[k]), bnp.asnumpy(t[k]))


def test_block_feedback_argument_refusals(xp):
    block = nn.ResidualBlock(2, 2, rng=0)
    x = xp.ones((2, 2, 4, 4), dtype=block.dtype)
    z, cache = block.forward_cache(x)
    with pytest.raises(ValueError, match=r"keys \['conv1.W', 'conv2.W'\], got \['conv1.W'\]"):
        block.backward(x, z, feedback={"conv1.W": block.conv1.W}, cache=cache)
    with pytest.raises(ValueError, match="got ndarray|got "):
        block.backward(x, z, feedback=block.conv1.W, cache=cache)
    # DirectFeedbackAlignment and WeightMirror train blocks now: tests/test_residual_dfa_wm.py


def test_layer_alignment_measures_a_block_as_one(xp):
    from bionp import metrics

    net = _net("float64")
    rule = rules.FeedbackAlignment(rng=5).initialize(net)
    ang, ratio = metrics.layer_alignment(rule, net), metrics.weight_ratio(rule, net)
    blocks = [l for l, layer in enumerate(net.layers) if isinstance(layer, nn.ResidualBlock)]
    assert all(40 < ang[l] < 140 and ratio[l] > 0 for l in blocks), ang  # random B
    assert np.isnan(ang[0]) and np.isnan(ang[1])  # first layer, batch norm
    l = blocks[-1]
    for k, m in rule.B[l].items():
        m[...] = net.layers[l].params()[k]
    rule.B[l]["short.W"][...] *= -1  # one weight of three reversed: the block's angle
    W = net.layers[l].feedback_weights()
    sq = {k: float(np.sum(bnp.asnumpy(v) ** 2)) for k, v in W.items()}
    cos = (sq["conv1.W"] + sq["conv2.W"] - sq["short.W"]) / sum(sq.values())
    assert metrics.layer_alignment(rule, net)[l] == pytest.approx(np.degrees(np.arccos(cos)))
    assert metrics.weight_ratio(rule, net)[l] == pytest.approx(1.0)


def test_frsf_state_of_a_block_is_checked_per_weight(xp):
    net = _net()
    rule = rules.SignSymmetry("frsf", rng=5).initialize(net)
    state = rule.state_dict()
    assert state["shapes"][2] == {k: list(v.shape) for k, v in
                                  net.layers[2].feedback_weights().items()}
    bad = dict(state, R=list(state["R"]))
    bad["R"][2] = {"conv1.W": state["R"][2]["conv1.W"]}
    fresh = rules.SignSymmetry("frsf", rng=9)
    with pytest.raises(ValueError, match=r"'R\[2\]' must be a dict with keys \['conv1.W', "):
        fresh.load_state_dict(bad)
    assert fresh.R is None  # nothing changed
    bad["R"][2] = dict(state["R"][2], **{"conv2.W": xp.ones((3, 2, 3, 3))})
    with pytest.raises(ValueError,
                       match=r"R\[2\]\['conv2.W'\]' has shape \(3, 2, 3, 3\), expected \(2"):
        fresh.load_state_dict(bad)
    fresh.load_state_dict(state)
    for k, v in rule.R[2].items():
        np.testing.assert_array_equal(bnp.asnumpy(fresh.R[2][k]), bnp.asnumpy(v))
