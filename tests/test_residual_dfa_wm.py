"""Direct feedback alignment and weight mirrors on networks with residual blocks: DFA's
output error reaches each block's output map and the block's own backward (exact or with
random kernels inside) takes it to the block's weights; weight mirrors learn each
convolution's B inside a block from its own noise; ResNet-20 trains under both."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.train import Trainer
from test_residual_feedback import _net

LOSS = nn.CrossEntropyLoss()


def _batch(n=5, dtype="float64"):
    g = bnp.random.Generator(7)
    return g.normal(0, 1, (n, 1, 8, 8), dtype=dtype), g.integers(0, 3, n)


def _np(a):
    return bnp.asnumpy(a)


@pytest.mark.parametrize("first_block", [False, True])
def test_dfa_gives_each_block_its_backward_of_the_direct_delta_float64(xp, first_block):
    net = _net("float64", first_block)
    x, y = _batch()
    rule = rules.DirectFeedbackAlignment(rng=3).initialize(net)
    blocks = [l for l, layer in enumerate(net.layers) if isinstance(layer, nn.ResidualBlock)]
    for l in blocks:  # one matrix per block, to its whole output map
        assert rule.D[l].shape == (3, int(np.prod(net.shapes[l + 1])))
    got = rule.gradients(net, x, y, LOSS)
    # the same pass by hand: e D_l reshaped to the block's output, through the activation
    # after the block, then the block's own backward (training passes use batch statistics)
    cache = net.forward_cache(x)
    e = net.output_delta(cache, net.prepare_target(y, 5), LOSS)
    ref = rules.Backprop().gradients(net, x, y, LOSS)
    for k in ref[-1]:  # the output layer: exact
        np.testing.assert_allclose(_np(got[-1][k]), _np(ref[-1][k]), rtol=1e-12, atol=1e-15)
    for l in blocks:
        d = xp.matmul(e, rule.D[l]).reshape(cache.pre[l].shape)
        d = net.activations[l].vjp(cache.pre[l], cache.post[l], d)
        want, _ = net.layers[l].backward(cache.inputs[l], d, cache=cache.caches[l],
                                         need_input_grad=False)
        assert set(got[l]) == set(want) == set(net.layers[l].params())
        for k in want:
            np.testing.assert_allclose(_np(got[l][k]), _np(want[k]), rtol=1e-12, atol=1e-15,
                                       err_msg=f"layer {l} {k}")
        # DFA's update is not backprop's
        assert not np.allclose(_np(got[l]["conv1.W"]), _np(ref[l]["conv1.W"]))


def test_dfa_blocks_feedback_uses_random_kernels_inside_and_equals_backprop_inside_at_b_eq_w(xp):
    net = _net("float64")
    x, y = _batch()
    exact = rules.DirectFeedbackAlignment(rng=3)
    fb = rules.DirectFeedbackAlignment(rng=3, blocks="feedback")
    g0 = exact.gradients(net, x, y, LOSS)
    g1 = fb.gradients(net, x, y, LOSS)
    blocks = [l for l, layer in enumerate(net.layers) if isinstance(layer, nn.ResidualBlock)]
    for l, b in enumerate(fb.block_B):  # D drawn first: the same D as blocks="backprop"
        assert (b is not None) == (l in blocks)
        if fb.D[l] is not None:
            np.testing.assert_array_equal(_np(fb.D[l]), _np(exact.D[l]))
    assert exact.block_B is None
    for l in blocks:
        assert sorted(fb.block_B[l]) == sorted(net.layers[l].feedback_weights())
        # the second convolution and batch norm see delta_l directly: the same; the first
        # gets it through conv2's random kernel: not the same
        for k in ("conv2.W", "bn2.gamma", "bn2.beta"):
            np.testing.assert_allclose(_np(g1[l][k]), _np(g0[l][k]), rtol=1e-12, atol=1e-15)
        assert not np.allclose(_np(g1[l]["conv1.W"]), _np(g0[l]["conv1.W"]))
        for k, m in fb.block_B[l].items():
            m[...] = net.layers[l].params()[k]
    g1 = fb.gradients(net, x, y, LOSS)
    for l in range(len(g0)):
        for k in g0[l]:
            np.testing.assert_allclose(_np(g1[l][k]), _np(g0[l][k]), rtol=1e-12, atol=1e-15)


def test_weight_mirror_learns_every_convolution_inside_blocks(xp):
    from bionp import metrics

    net = _net("float64", first_block=True)
    # a fast mirror (time constant 20 steps, 192 draws a step): B within a few degrees of W
    rule = rules.WeightMirror(warmup_steps=0, decay=0.05, balance=1.0, mirror_batch_size=192,
                              rng=4).initialize(net)
    blocks = [l for l, layer in enumerate(net.layers) if isinstance(layer, nn.ResidualBlock)]
    assert sorted(rule.B[0]) == ["conv1.W", "conv2.W", "short.W"]
    start = [dict((k, _np(v).copy()) for k, v in rule.B[l].items()) for l in blocks]
    rule.mirror(net, 120)
    for i, l in enumerate(blocks):
        for k, b in rule.B[l].items():
            W = _np(net.layers[l].params()[k])
            cos = float(np.sum(_np(b) * W) / np.linalg.norm(_np(b)) / np.linalg.norm(W))
            assert cos > 0.98, (l, k, cos)  # each kernel mirrored from its own noise
            assert 0.85 < np.linalg.norm(_np(b)) / np.linalg.norm(W) < 1.15
            assert not np.allclose(_np(b), start[i][k])
    assert all(metrics.layer_alignment(rule, net)[l] < 8 for l in blocks)
    boosts = rule.boosts(net)
    assert isinstance(boosts[blocks[0]], dict) and all(v == 1 for b in boosts
                                                       if isinstance(b, dict) for v in b.values())
    k = rules.WeightMirror(warmup_steps=0, rng=4).initialize(net).boosts(net)  # balance 4
    assert k[blocks[0]] == {"conv1.W": 4.0, "conv2.W": 4.0, "short.W": 4.0}
    assert k[blocks[-1]] == {"conv1.W": 1.0, "conv2.W": 1.0, "short.W": 4.0}


def test_weight_mirror_block_step_is_each_convolutions_own_mirror_increment(xp):
    from bionp.rules.weight_mirror import mirror_increment

    net = _net("float64")
    l = 4  # ResidualBlock(4, 6, stride 2, option B): three kernels with different inputs
    block = net.layers[l]
    rule = rules.WeightMirror(warmup_steps=0, rng=4, balance=1.0, noise_dist="normal",
                              mirror_batch_size=3).initialize(net)
    B0 = {k: v.copy() for k, v in rule.B[l].items()}
    plan = [p for p in rule._plan(net, rule.B) if p[0] == l]
    assert [p[1] for p in plan] == ["conv1.W", "conv2.W", "short.W"]
    shapes = {p[1]: p[4][1:] for p in plan}
    assert shapes == {"conv1.W": (4, 4, 4), "conv2.W": (6, 2, 2), "short.W": (4, 4, 4)}
    # replay the step's noise: the plan's draws in order
    state = rule._rng.get_state()
    rule.mirror(net, 1)
    rng = bnp.random.Generator(0)
    rng.set_state(state)
    for p in rule._plan(net, rule.B):
        xi = rng.normal(0.0, rule.noise, p[4], dtype="float64", xp=xp)
        if p[0] != l:
            continue
        inc = mirror_increment(p[2], xi, rule.eta, p[5])
        want = B0[p[1]] * (1 - rule.decay) + inc
        np.testing.assert_allclose(_np(rule.B[l][p[1]]), _np(want), rtol=1e-12, atol=1e-15)


RULES = {"dfa": lambda: rules.DirectFeedbackAlignment(rng=5),
         "dfa_feedback": lambda: rules.DirectFeedbackAlignment(rng=5, blocks="feedback"),
         "wm": lambda: rules.WeightMirror(warmup_steps=3, mirror_batch_size=8, rng=5)}


@pytest.mark.parametrize("name", sorted(RULES))
def test_dfa_and_wm_train_a_residual_net_and_resume_bit_identically(xp, name, tmp_path):
    g = bnp.random.Generator(6)
    x, y = g.uniform(0, 1, (24, 1, 8, 8)), g.integers(0, 3, 24)

    def run(epochs=None, until=None, ck=None, resume=False):
        net = _net()
        rule, opt = RULES[name](), optim.SGD(net, lr=0.05, momentum=0.9)
        tr = Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=8, rng=1,
                     progress=False, checkpoint=ck)
        return net, rule, tr.fit(x, y, epochs=epochs, until_epoch=until, resume=resume)

    net, rule, hist = run(epochs=3)
    assert len(hist.loss) == 9 and np.all(np.isfinite(hist.loss)) and hist.stopped is None
    before = _net()
    for l, layer in enumerate(net.layers):
        if isinstance(layer, nn.ResidualBlock):
            for k in ("conv1.W", "conv2.W"):
                assert not np.array_equal(_np(layer.params()[k]),
                                          _np(before.layers[l].params()[k])), (l, k)
    if name == "wm":  # the blocks' B followed their W
        fresh = RULES[name]().initialize(_net())
        assert not np.allclose(_np(rule.B[2]["conv2.W"]), _np(fresh.B[2]["conv2.W"]))
    ck = tmp_path / "ck.npz"
    run(epochs=1, ck=ck)
    net2, rule2, _ = run(until=3, ck=ck, resume=True)
    for a, b in zip(net.layers, net2.layers):
        for k, v in a.state_dict().items() if hasattr(a, "state_dict") else a.params().items():
            np.testing.assert_array_equal(_np(b.state_dict()[k] if hasattr(b, "state_dict")
                                              else b.params()[k]), _np(v), k)
    for key in ("B", "D", "block_B"):
        mine, theirs = getattr(rule, key, None), getattr(rule2, key, None)
        assert (mine is None) == (theirs is None), key
        for m, t in zip(mine or [], theirs or []):
            m, t = (m, t) if isinstance(m, dict) else ({"": m}, {"": t})
            for k in m:
                if m[k] is not None:
                    np.testing.assert_array_equal(_np(m[k]), _np(t[k]))


@pytest.mark.parametrize("name", sorted(RULES))
def test_resnet20_trains_a_few_updates_on_cifar_shaped_images(xp, name):
    g = bnp.random.Generator(8)
    x = g.normal(0, 1, (16, 3, 32, 32), dtype="float32")
    y = g.integers(0, 10, 16)
    net = nn.models.resnet20(rng=1)
    w0 = _np(net.layers[5].conv1.W).copy()
    rule = RULES[name]()
    opt = optim.SGD(net, lr=0.01, momentum=0.9)
    losses = []
    for i in range(3):
        sl = slice((i % 2) * 8, (i % 2 + 1) * 8)
        opt.step(rule.gradients(net, x[sl], y[sl], LOSS))
        rule.after_step(net, opt)
        losses.append(bnp.to_scalar(rule.last_loss))
    assert np.all(np.isfinite(losses))
    assert not np.array_equal(_np(net.layers[5].conv1.W), w0)
    if name == "wm":
        assert sum(isinstance(b, dict) for b in rule.B) == 9  # every block mirrored
    else:
        assert sum(d is not None for d in rule.D) == 11  # first conv, its batch norm, 9 blocks


def test_residual_dfa_and_wm_refusals(xp):
    with pytest.raises(ValueError, match=r"blocks must be one of 'backprop', 'feedback'.*"
                                         r"got 'exact'"):
        rules.DirectFeedbackAlignment(blocks="exact")
    net, other = _net(), _net(first_block=True)
    x, y = _batch(4, "float32")
    rule = rules.DirectFeedbackAlignment(rng=1, blocks="feedback").initialize(net)
    bn = net.layers[1]
    stats = _np(bn.running_mean).copy()
    rule.block_B = rule.block_B[:-1] + [rule.block_B[2]]  # a block's kernels in a wrong place
    state = rule._rng.get_state()
    with pytest.raises(ValueError, match=r"blocks='feedback'\) holds block kernels of shapes"):
        rule.gradients(net, x, y, LOSS)
    assert rule._rng.get_state() == state
    np.testing.assert_array_equal(_np(bn.running_mean), stats)  # refused before the pass
    rule = rules.DirectFeedbackAlignment(rng=1).initialize(net)
    with pytest.raises(ValueError, match="initialised for a network whose direct feedback"):
        rule.gradients(other, x, y, LOSS)

    def hidden(self):
        raise AttributeError("feedback_inputs")

    class Opaque(nn.ResidualBlock):  # a block that does not say where its weights' inputs are
        feedback_inputs = property(hidden)

    opaque = nn.Sequential([nn.Conv2d(1, 2, 3, padding=1, rng=0), Opaque(2, 2, rng=1),
                            nn.Flatten(), nn.Dense(128, 3, rng=2)],
                           ["tanh", "tanh", "identity", "identity"], input_shape=(1, 8, 8))
    wm = rules.WeightMirror(warmup_steps=2, rng=1)
    state = wm._rng.get_state()
    with pytest.raises(ValueError, match=r"does not give each one's input \(feedback_inputs"):
        wm.gradients(opaque, x, y, LOSS)
    assert wm._rng.get_state() == state and wm.B is None
    # a checkpoint whose block matrix holds NaN is refused, naming the weight
    wm = rules.WeightMirror(warmup_steps=1, rng=1).initialize(net)
    bad = wm.state_dict()
    bad["B"] = list(bad["B"])
    bad["B"][2] = dict(bad["B"][2], **{"conv2.W": bad["B"][2]["conv2.W"] * np.nan})
    keep = _np(wm.B[2]["conv2.W"]).copy()
    with pytest.raises(ValueError, match=r"state 'B\[2\]\['conv2.W'\]' holds NaN"):
        wm.load_state_dict(bad)
    np.testing.assert_array_equal(_np(wm.B[2]["conv2.W"]), keep)


def test_weight_mirror_phase_every_k_th_update_covers_block_kernels(xp):
    # the every-k-th-update schedule reaches the kernels inside blocks: no change on the
    # updates between phases, and the phase equals the one mirror_every=1 runs (same draws)
    net = _net("float64")
    rule = rules.WeightMirror(warmup_steps=2, rng=3, mirror_every=3).initialize(net)
    twin = rules.WeightMirror(warmup_steps=2, rng=3, mirror_every=1).initialize(net)

    def flat(r):
        return {(l, k): _np(m).copy() for l, b in enumerate(r.B) if b is not None
                for k, m in (b.items() if isinstance(b, dict) else ((None, b),))}

    start = flat(rule)
    assert any(k is not None for _, k in start) and any(k is None for _, k in start)
    for _ in range(2):
        rule.update_after_step(net, None, 0.1)
        assert all(np.array_equal(v, start[k]) for k, v in flat(rule).items())
    rule.update_after_step(net, None, 0.1)
    twin.update_after_step(net, None, 0.1)
    got, want = flat(rule), flat(twin)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=str(k))
        assert not np.array_equal(got[k], start[k]), k
    assert rule.state_dict()["since_mirror"] == 0
