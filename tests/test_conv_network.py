"""Networks of shaped layers: the generalised layer protocol, whole-network gradchecks,
every rule on conv nets (or its refusal), optimiser and checkpoints."""

import json

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.testing import assert_equal, network_gradient_errors, relative_error
from bionp.train import Trainer

ACTS = ["tanh", "identity", "tanh", "identity", "identity", "identity", "identity"]


def _convnet(batchnorm=True, dtype="float64", seed=0):
    """Three parameterised stages: conv+maxpool, conv(stride 2, padding 2)+BN+avgpool, dense."""
    layers = [nn.Conv2d(2, 3, 3, rng=seed + 1, dtype=dtype), nn.MaxPool2d(2),
              nn.Conv2d(3, 4, 3, stride=2, padding=2, rng=seed + 2, dtype=dtype),
              nn.BatchNorm2d(4, dtype=dtype) if batchnorm else nn.AvgPool2d(1),
              nn.AvgPool2d(2), nn.Flatten(), nn.Dense(16, 3, init="he_normal", rng=seed + 3,
                                                      dtype=dtype)]
    return nn.Sequential(layers, ACTS, input_shape=(2, 12, 12))


def _data(n=6, seed=4, dtype="float64"):
    g = bnp.random.Generator(seed)
    return g.normal(0, 1, (n, 2, 12, 12), dtype=dtype), g.integers(0, 3, n)


def test_shapes_sizes_and_flat_input(xp):
    net = _convnet()
    assert net.shapes == [(2, 12, 12), (3, 10, 10), (3, 5, 5), (4, 4, 4), (4, 4, 4), (4, 2, 2),
                          (16,), (3,)]
    assert net.sizes[0] == 288 and net.out_features == 3 and net.in_features == 288
    assert net.input_shape == (2, 12, 12) and net.output_shape == (3,)
    assert net.layers[0].input_shape == (2, 12, 12) and net.layers[0].output_shape == (3, 10, 10)
    x, _ = _data()
    out = net.forward(x)
    assert tuple(out.shape) == (6, 3)
    # flat rows (what bionp.data.load gives) are read as images
    assert_equal(net.forward(x.reshape(6, -1)), out)
    cfg = net.get_config()
    assert cfg["input_shape"] == [2, 12, 12]
    assert [c["type"] for c in cfg["layers"]][:2] == ["Conv2d", "MaxPool2d"]
    json.dumps(cfg)
    # MLP unchanged
    mlp = nn.MLP([5, 4, 2], rng=0)
    assert mlp.shapes == [(5,), (4,), (2,)] and mlp.sizes == [5, 4, 2]
    assert mlp.input_shape == (5,)


def test_network_bad_input_names_expected_and_given(xp):
    net = _convnet()
    g = bnp.random.Generator(1)
    with pytest.raises(ValueError, match=r"\(batch, 2, 12, 12\) \(or flat rows \(batch, 288\)\)"
                                         r".*got \(3, 2, 12\)"):
        net.forward(g.normal(0, 1, (3, 2, 12), dtype="float64"))
    with pytest.raises(ValueError, match=r"got \(3, 1, 12, 12\)"):
        net.forward(g.normal(0, 1, (3, 1, 12, 12), dtype="float64"))
    with pytest.raises(ValueError, match=r"got \(3, 287\)"):
        net.forward(g.normal(0, 1, (3, 287), dtype="float64"))


def test_construction_errors_change_nothing():
    conv = nn.Conv2d(1, 2, 5, rng=0)
    with pytest.raises(ValueError, match="first layer .* does not fix the size of its input"):
        nn.Sequential([conv, nn.Flatten(), nn.Dense(8, 2)])
    with pytest.raises(ValueError, match="layer 0: .*height is 4.*smaller than the kernel"):
        nn.Sequential([conv, nn.Flatten(), nn.Dense(8, 2)], input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match=r"layer 0: .*\(1, height, width\).*\(3, 8, 8\)"):
        nn.Sequential([conv, nn.Flatten(), nn.Dense(32, 2)], input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match=r"layer 1 \(Dense\(32, 2.*flat inputs but gets per-sample "
                                         r"shape \(2, 4, 4\); put a Flatten\(\)"):
        nn.Sequential([conv, nn.Dense(32, 2)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\(30, 2.*takes 30 inputs but layer 1 "
                                         r"\(Flatten\(\)\) gives 32 \(its input \(2, 4, 4\)"):
        nn.Sequential([conv, nn.Flatten(), nn.Dense(30, 2)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="output must be flat"):
        nn.Sequential([conv], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="layer 1: .*window"):
        pass_ = nn.MaxPool2d(5)
        nn.Sequential([conv, pass_, nn.Flatten(), nn.Dense(2, 2)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="input_shape must be"):
        nn.Sequential([conv, nn.Flatten(), nn.Dense(32, 2)], input_shape=(1, 0, 8))
    assert conv.input_shape is None  # nothing was built by a failed construction


def test_network_gradcheck_backprop_float64(conv_kernels, xp):
    """Backprop through conv, max-pool, strided padded conv, batch norm (training mode),
    average pool, flatten and dense with softmax cross-entropy: <= 1e-6 relative."""
    net = _convnet()
    x, y = _data()
    grads = rules.Backprop().gradients(net, x, y, nn.CrossEntropyLoss())
    errors = network_gradient_errors(net, x, y, nn.CrossEntropyLoss(), grads)
    assert set(errors) == {(0, "W"), (0, "b"), (2, "W"), (2, "b"), (3, "gamma"), (3, "beta"),
                           (6, "W"), (6, "b")}
    assert max(errors.values()) <= 1e-6, errors


def test_input_gradient_of_the_network_float64(conv_kernels, xp):
    """dL/dx through the whole network (conv col2im included) against central differences."""
    from bionp.testing import numerical_gradient

    net = _convnet(batchnorm=False)
    x, y = _data(n=2)
    loss = nn.CrossEntropyLoss()
    cache = net.forward_cache(x)
    t = net.prepare_target(y, 2)
    delta = net.output_delta(cache, t, loss)
    for l in range(len(net.layers) - 1, -1, -1):
        _, delta = net.layers[l].backward(cache.inputs[l], delta, cache=cache.caches[l])
        if l > 0:
            delta = net.activations[l - 1].vjp(cache.pre[l - 1], cache.post[l - 1], delta)
    num = numerical_gradient(lambda: net.loss(x, y, loss), x)
    assert relative_error(delta, num) <= 1e-6


def test_fa_with_B_equal_W_is_backprop_on_a_conv_net(xp):
    net = _convnet()
    x, y = _data()
    loss = nn.CrossEntropyLoss()
    fa = rules.FeedbackAlignment(rng=1).initialize(net)
    assert [None if B is None else tuple(B.shape) for B in fa.B] == \
        [None, None, (4, 3, 3, 3), None, None, None, (3, 16)]
    fa.B = [None if B is None else net.layers[l].W.copy() for l, B in enumerate(fa.B)]
    bp = rules.Backprop().gradients(net, x, y, loss)
    # batch norm's running statistics move with every training pass; both see the same batch
    g = fa.gradients(net, x, y, loss)
    for a, b in zip(g, bp):
        assert set(a) == set(b)
        for k in a:
            assert_equal(a[k], b[k])


def test_kp_and_dfa_on_a_conv_net(xp):
    net = _convnet()
    x, y = _data()
    loss = nn.CrossEntropyLoss()
    bp = rules.Backprop().gradients(net, x, y, loss)
    kp = rules.KolenPollack(weight_decay=0.0, feedback_optimizer="sgd", rng=2).initialize(net)
    kp.B = [None if B is None else net.layers[l].W.copy() for l, B in enumerate(kp.B)]
    for a, b in zip(kp.gradients(net, x, y, loss), bp):
        for k in a:
            assert relative_error(a[k], b[k]) == 0
    B2 = kp.B[2].copy()
    kp.update_after_step(net, None, 0.1)
    assert relative_error(kp.B[2], B2 - 0.1 * bp[2]["W"]) <= 1e-12  # same update as W

    dfa = rules.DirectFeedbackAlignment(rng=3)
    g = dfa.gradients(net, x, y, loss)
    assert [None if D is None else tuple(D.shape) for D in dfa.D] == \
        [(3, 300), None, (3, 64), (3, 64), None, None, None]
    for a, b in zip(g, bp):
        assert set(a) == set(b)
        for k in a:
            assert a[k].shape == b[k].shape
    for k in ("W", "b"):  # the output layer's gradient is exact
        assert relative_error(g[6][k], bp[6][k]) <= 1e-12
    with pytest.raises(ValueError, match="initialised for a network"):
        dfa.gradients(nn.Sequential([nn.Conv2d(2, 3, 3, rng=1, dtype="float64"), nn.Flatten(),
                                     nn.Dense(300, 3, rng=2, dtype="float64")],
                                    input_shape=(2, 12, 12)), x, y, loss)
    fa = rules.FeedbackAlignment(rng=1)
    fa.gradients(net, x, y, loss)
    other = nn.Sequential([nn.Conv2d(2, 3, 3, rng=1, dtype="float64"), nn.MaxPool2d(2),
                           nn.Conv2d(3, 5, 3, stride=2, padding=2, rng=2, dtype="float64"),
                           nn.AvgPool2d(1), nn.AvgPool2d(2), nn.Flatten(),
                           nn.Dense(20, 3, rng=3, dtype="float64")], ACTS,
                          input_shape=(2, 12, 12))
    with pytest.raises(ValueError, match="initialised for a network"):
        fa.gradients(other, x, y, loss)


def test_dfa_per_channel_feedback_is_full_feedback_with_repeated_columns(xp):
    """``maps="channel"``: one column of ``D`` per channel, the same signal at every position
    of the map; equal to ``maps="full"`` with each column repeated over ``H x W``."""
    net = _convnet()
    x, y = _data()
    loss = nn.CrossEntropyLoss()
    channel = rules.DirectFeedbackAlignment(rng=3, maps="channel")
    g = channel.gradients(net, x, y, loss)
    assert [None if D is None else tuple(D.shape) for D in channel.D] == \
        [(3, 3), None, (3, 4), (3, 4), None, None, None]
    full = rules.DirectFeedbackAlignment(rng=3).initialize(net)
    full.D = [None if C is None else xp.repeat(C, F.shape[1] // C.shape[1], axis=1)
              for C, F in zip(channel.D, full.D)]
    for a, b in zip(g, full.gradients(net, x, y, loss)):
        assert set(a) == set(b)
        for k in a:
            assert relative_error(a[k], b[k]) <= 1e-12
    assert channel.get_config()["maps"] == "channel"
    assert "maps" not in full.get_config()  # configs written before the option still match
    again = rules.get_rule(**channel.get_config())
    assert again.maps == "channel"
    with pytest.raises(ValueError, match="maps must be one of 'full', 'channel'.*'pixel'"):
        rules.DirectFeedbackAlignment(maps="pixel")
    with pytest.raises(ValueError, match="initialised for a network"):
        channel.gradients(nn.Sequential([nn.Conv2d(2, 5, 3, rng=1, dtype="float64"),
                                         nn.Flatten(), nn.Dense(500, 3, rng=2, dtype="float64")],
                                        input_shape=(2, 12, 12)), x, y, loss)


def _lenet_like(seed=0):
    """conv+ReLU, max-pool, conv+ReLU, avg-pool, flatten, dense+tanh, dense (float64)."""
    layers = [nn.Conv2d(2, 3, 3, rng=seed + 1, dtype="float64"), nn.MaxPool2d(2),
              nn.Conv2d(3, 4, 3, padding=1, rng=seed + 2, dtype="float64"), nn.AvgPool2d(2),
              nn.Flatten(), nn.Dense(16, 5, rng=seed + 3, dtype="float64"),
              nn.Dense(5, 3, rng=seed + 4, dtype="float64")]
    acts = ["relu", "identity", "relu", "identity", "identity", "tanh", "identity"]
    return nn.Sequential(layers, acts, input_shape=(2, 10, 10))


@pytest.mark.parametrize("maps", ["full", "channel"])
def test_dfa_next_input_is_the_gradient_of_the_signal_above_the_pooling(xp, maps):
    r"""``at="next_input"``: layer ``p``'s gradient is that of the surrogate
    :math:`\langle a_k, \mathrm{sg}(e D_k)\rangle`, ``a_k`` the output of the last
    parameter-free layer ``k`` after ``p`` (float64 central differences, ReLU and max-pool
    in their differentiable region); ``D`` sits on that layer."""
    net = _lenet_like()
    x, y = _data(n=4)
    x = x[:, :, :10, :10].copy()
    loss = nn.CrossEntropyLoss()
    rule = rules.DirectFeedbackAlignment(rng=5, at="next_input", maps=maps)
    g = rule.gradients(net, x, y, loss)
    channel = maps == "channel"
    assert [None if D is None else tuple(D.shape) for D in rule.D] == \
        [None, (3, 3 if channel else 48), None, None, (3, 16), (3, 5), None]
    cache = net.forward_cache(x)
    e = net.output_delta(cache, net.prepare_target(y, 4), loss)
    signals = {}
    for k, D in enumerate(rule.D):
        if D is not None:
            s = e @ D
            shape = cache.post[k].shape
            signals[k] = xp.broadcast_to(s.reshape(shape[:2] + (1, 1)), shape) \
                if s.shape[1] != int(np.prod(shape[1:])) else s.reshape(shape)

    def surrogate(k):
        a = x
        for layer, act in zip(net.layers[:k + 1], net.activations[:k + 1]):
            a = act.forward(layer.forward(a))
        return bnp.to_scalar(xp.sum(a * signals[k]))

    h = 1e-6
    for p, k in ((0, 1), (2, 4), (5, 5)):
        W = net.layers[p].W
        flat = W.reshape(-1)
        for i in (0, flat.size // 2, flat.size - 1):
            keep = bnp.to_scalar(flat[i])
            flat[i] = keep + h
            up = surrogate(k)
            flat[i] = keep - h
            down = surrogate(k)
            flat[i] = keep
            numeric = (up - down) / (2 * h)
            assert abs(bnp.to_scalar(g[p]["W"].reshape(-1)[i]) - numeric) <= 1e-6 * max(1.0, abs(numeric))
    bp = rules.Backprop().gradients(net, x, y, loss)
    assert relative_error(g[6]["W"], bp[6]["W"]) <= 1e-12  # the output layer's is exact
    assert rule.get_config()["at"] == "next_input"
    assert rules.get_rule(**rule.get_config()).at == "next_input"
    with pytest.raises(ValueError, match="at must be one of 'output', 'next_input'.*'input'"):
        rules.DirectFeedbackAlignment(at="input")


def test_perturbation_rules_on_conv_nets(xp):
    net = _convnet(batchnorm=False)
    x, y = _data()
    loss = nn.CrossEntropyLoss()
    bp = rules.Backprop().gradients(net, x, y, loss)
    wp = rules.WeightPerturbation(sigma=1e-3, n_samples=300, antithetic=True, rng=4)
    g = wp.gradients(net, x, y, loss)
    flat = lambda gs: np.concatenate([bnp.asnumpy(d[k]).ravel() for d in gs for k in sorted(d)])
    a, b = flat(g), flat(bp)
    assert a.shape == b.shape
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.5  # an unbiased estimate of it

    bn_net = _convnet()
    before = bnp.asnumpy(bn_net.layers[3].running_mean).copy()
    with pytest.raises(ValueError, match="WeightPerturbation .* layer 3 \\(BatchNorm2d\\(4\\)\\) "
                                         "normalises with batch statistics"):
        rules.WeightPerturbation(rng=0).gradients(bn_net, x, y, loss)
    assert_equal(bn_net.layers[3].running_mean, before)  # refused before any state change
    npr = rules.NodePerturbation(sigma=1e-3, n_samples=100, rng=5)
    a = flat(npr.gradients(net, x, y, loss))
    assert a.shape == b.shape
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.5  # unbiased to first order
    with pytest.raises(ValueError, match="NodePerturbation .* layer 3 \\(BatchNorm2d\\(4\\)\\) is "
                                         "not such a layer"):
        rules.NodePerturbation(rng=0).gradients(bn_net, x, y, loss)
    with pytest.raises(ValueError, match="estimator='tutorial'.*layer 0 \\(Conv2d"):
        rules.NodePerturbation(estimator="tutorial", rng=0).gradients(net, x, y, loss)
    assert_equal(bn_net.layers[3].running_mean, before)


def test_training_with_optimiser_trainer_and_checkpoint(xp, tmp_path):
    """SGD over layers with and without parameters; the Trainer takes flat rows; a resumed run
    (batch-norm running statistics included) is bit-identical."""
    x, y = _data(n=40, dtype="float32")

    def setup():
        net = _convnet(dtype="float32")
        return net, rules.KolenPollack(rng=2), optim.SGD(net, lr=0.05, momentum=0.9)

    net, rule, opt = setup()
    h = Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=10, rng=5,
                progress=False).fit(x.reshape(40, -1), y, epochs=4)
    assert h.epoch_loss[-1] < h.epoch_loss[0]
    ref = [{k: v.copy() for k, v in layer.state_dict().items()} if hasattr(layer, "state_dict")
           else {k: v.copy() for k, v in layer.params().items()} for layer in net.layers]
    ck = tmp_path / "conv.npz"
    net, rule, opt = setup()
    Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=10, rng=5, progress=False,
            checkpoint=ck).fit(x.reshape(40, -1), y, epochs=2)
    net, rule, opt = setup()
    Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=10, rng=5, progress=False,
            checkpoint=ck).fit(x.reshape(40, -1), y, until_epoch=4, resume=True)
    for saved, layer in zip(ref, net.layers):
        now = layer.state_dict() if hasattr(layer, "state_dict") else layer.params()
        assert set(now) == set(saved)
        for k in saved:
            assert_equal(now[k], saved[k])


@pytest.mark.parametrize("rule_name", ["backprop", "fa", "kp", "dfa", "dfa_channel",
                                       "dfa_next_input", "wp", "np"])
def test_conv_training_same_numbers_on_cpu_backends(rule_name):
    """30 SGD updates of a small conv net (float32): NumPy and the strict stand-in agree bit
    for bit (weights, batch-norm statistics, feedback matrices)."""
    make = {"backprop": lambda: rules.Backprop(),
            "fa": lambda: rules.FeedbackAlignment(rng=2),
            "kp": lambda: rules.KolenPollack(weight_decay=0.01, rng=2),
            "dfa": lambda: rules.DirectFeedbackAlignment(rng=2),
            "dfa_channel": lambda: rules.DirectFeedbackAlignment(rng=2, maps="channel"),
            "dfa_next_input": lambda: rules.DirectFeedbackAlignment(rng=2, at="next_input"),
            "wp": lambda: rules.WeightPerturbation(sigma=0.01, antithetic=True, rng=2),
            "np": lambda: rules.NodePerturbation(sigma=0.01, rng=2)}[rule_name]
    res = {}
    for name in ("numpy", "strict"):
        with bnp.backend(name):
            net = _convnet(batchnorm=rule_name not in ("wp", "np"), dtype="float32")
            x, y = _data(n=32, dtype="float32")
            rule, opt = make(), optim.SGD(net, lr=0.05, momentum=0.9)
            for i in range(30):
                sl = slice((i % 4) * 8, (i % 4 + 1) * 8)
                grads = rule.gradients(net, x[sl], y[sl], nn.CrossEntropyLoss())
                opt.step(grads)
                rule.after_step(net, opt)
            arrays = [v for layer in net.layers for v in
                      (layer.state_dict() if hasattr(layer, "state_dict") else
                       layer.params()).values()]
            arrays += [B for B in (getattr(rule, "B", None) or []) if B is not None]
            res[name] = [bnp.asnumpy(a) for a in arrays]
    assert len(res["numpy"]) == len(res["strict"]) >= 6
    for a, b in zip(res["numpy"], res["strict"]):
        np.testing.assert_array_equal(a, b)


def test_plasticity_transforms_on_a_conv_net(xp):
    """Elementwise bio transformations act on conv kernels and skip parameter-free layers;
    the row/column ones (Dale, synaptic scaling) refuse 4-D kernels with a message."""
    from bionp import plasticity as bio

    net = _convnet(dtype="float32")
    x, y = _data(n=8, dtype="float32")
    tx = bio.chain(bio.fuzzy_learning_rates(0.16, rng=2), bio.crystallize(), bio.l1_reg(1e-3))
    tx.init(net.parameters())
    raw = rules.Backprop().gradients(net, x, y, nn.CrossEntropyLoss())
    before = [{k: v.copy() for k, v in g.items()} for g in raw]
    g = tx.update(net.parameters(), raw)
    assert [sorted(d) for d in g] == [sorted(layer.params()) for layer in net.layers]
    assert relative_error(g[0]["W"], before[0]["W"]) > 0  # the kernel's gradient was changed
    assert tuple(g[0]["W"].shape) == (3, 2, 3, 3)
    for t, what in ((bio.enforce_dales_principle(rng=1), "Dale's principle"),
                    (bio.scale_grad(), "scale_grad")):
        with pytest.raises(ValueError, match=f"{what}.*layer 0 'W' has shape \\(3, 2, 3, 3\\)"):
            bio.chain(t).init(net.parameters())
