"""Sequential: any layers of the layer protocol with the rules, optimisers and Trainer."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.dendritic import DendriticLayer, trainer_callback
from bionp.testing import assert_equal, network_gradient_errors
from bionp.train import Trainer


def _data(n=64, d=20, c=4, seed=0, dtype=None):
    g = bnp.random.Generator(seed)
    x = g.normal(size=(n, d), dtype=dtype)
    y = bnp.get_xp().argmax(x @ g.normal(size=(d, c), dtype=dtype), axis=1)  # learnable labels
    return x, y


def _dendritic_net(dtype=None, resampling=True, steps=3, rng=1):
    layer = DendriticLayer(20, 6, 5, 3, synaptic_resampling=resampling, steps_to_resample=steps,
                           percentage_resample=0.4, rng=rng, dtype=dtype)
    return nn.Sequential([layer, nn.Dense(6, 4, init="he_normal", rng=rng + 1, dtype=dtype)],
                         activations=["leaky_relu", "identity"])


def test_sequential_of_dense_layers_equals_mlp(xp):
    mlp = nn.MLP([20, 8, 4], activation="tanh", rng=3)
    seq = nn.Sequential(mlp.copy().layers, activations=["tanh", "identity"])
    x, y = _data()
    assert_equal(seq.forward(x), mlp.forward(x))
    loss = nn.CrossEntropyLoss()
    for a, b in zip(rules.Backprop().gradients(seq, x, y, loss),
                    rules.Backprop().gradients(mlp, x, y, loss)):
        for k in a:
            assert_equal(a[k], b[k])
    assert seq.sizes == [20, 8, 4] and seq.n_params == mlp.n_params


def test_backprop_gradcheck_through_dendritic_and_dense(xp):
    net = _dendritic_net(dtype="float64")
    x, y = _data(n=16, dtype="float64")
    loss = nn.CrossEntropyLoss()
    errors = network_gradient_errors(net, x, y, loss, rules.Backprop().gradients(net, x, y, loss))
    assert max(errors.values()) < 1e-6, errors


def test_feedback_alignment_trains_a_dendritic_first_layer(xp):
    net = _dendritic_net(resampling=False)
    x, y = _data(n=128)
    fa = rules.FeedbackAlignment(rng=5)
    opt = optim.Adam(net, lr=0.01)
    loss = nn.CrossEntropyLoss()
    first = float(bnp.to_scalar(net.loss(x, y, loss)))
    for _ in range(60):
        opt.step(fa.gradients(net, x, y, loss))
    assert fa.B[0] is None and fa.B[1].shape == net.layers[1].W.shape
    assert float(bnp.to_scalar(net.loss(x, y, loss))) < 0.8 * first


def test_feedback_rules_refuse_a_layer_without_w_after_the_first(xp):
    net = nn.Sequential([nn.Dense(20, 20, rng=0), DendriticLayer(20, 4, 5, 2, rng=1)],
                        activations=["relu", "identity"])
    x, y = _data()
    for rule in (rules.FeedbackAlignment(rng=0), rules.KolenPollack(rng=0)):
        with pytest.raises(ValueError, match="layer 1 .*has no such W"):
            rule.gradients(net, x, y, nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="not such a layer"):
        rules.NodePerturbation(rng=0).gradients(net, x, y, nn.CrossEntropyLoss())


def test_weight_perturbation_perturbs_every_array_of_any_layer(xp):
    net = _dendritic_net(resampling=False, dtype="float64")
    x, y = _data(n=32, dtype="float64")
    loss = nn.CrossEntropyLoss()
    true = rules.Backprop().gradients(net, x, y, loss)
    wp = rules.WeightPerturbation(sigma=1e-4, n_samples=400, rng=2)
    est = wp.gradients(net, x, y, loss)
    assert [sorted(g) for g in est] == [sorted(g) for g in true]
    cos = bnp.metrics.cosine_similarity(est, true)
    assert min(cos) > 0.5  # 400 samples in ~160 dimensions: well above chance (~0.08)


def test_trainer_resamples_once_per_step_and_resumes_bit_identically(xp, tmp_path):
    x, y = _data(n=96)
    loss = nn.CrossEntropyLoss()

    def make(ckpt):
        net = _dendritic_net(steps=4)
        opt = optim.Adam(net, lr=0.01)
        return Trainer(net, rules.Backprop(), opt, loss, batch_size=16, rng=3, progress=False,
                       checkpoint=ckpt, after_step=trainer_callback(reset_optimizer_state=True))

    full = make(None)
    full.fit(x, y, epochs=4)
    layer = full.net.layers[0]
    assert layer.n_updates == 24 and layer.n_resamplings == 6  # no double counting

    ckpt = tmp_path / "ckpt.npz"
    part = make(ckpt)
    part.fit(x, y, epochs=2)
    resumed = make(ckpt)
    resumed.fit(x, y, until_epoch=4, resume=True)
    for a, b in zip(full.net.layers, resumed.net.layers):
        for k in a.params():
            assert_equal(a.params()[k], b.params()[k])
    assert_equal(full.net.layers[0].idx, resumed.net.layers[0].idx)
    assert resumed.net.layers[0].n_resamplings == 6


def test_copy_is_independent(xp):
    net = _dendritic_net()
    twin = net.copy()
    twin.layers[0].w += 1.0
    twin.layers[0].after_update()
    assert net.layers[0].n_updates == 0
    assert not np.allclose(bnp.asnumpy(net.layers[0].w), bnp.asnumpy(twin.layers[0].w))
    # the copy's generator starts from the same state and drawing from it leaves the original's
    a = net.copy().layers[0].rng.random(3)
    b = net.layers[0].rng.random(3)
    assert_equal(a, b)


@pytest.mark.parametrize("bad, match", [
    ([], "at least one layer"),
    (["not a layer"], "layer protocol"),
])
def test_bad_layers(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        nn.Sequential(bad)


def test_bad_structure():
    with pytest.raises(ValueError, match="takes 5 inputs but layer 0"):
        nn.Sequential([nn.Dense(3, 4, rng=0), nn.Dense(5, 2, rng=0)])
    with pytest.raises(ValueError, match="one entry per layer"):
        nn.Sequential([nn.Dense(3, 4, rng=0)], activations=["relu", "identity"])
    with pytest.raises(ValueError, match="same dtype"):
        nn.Sequential([nn.Dense(3, 4, rng=0, dtype="float32"), nn.Dense(4, 2, rng=0, dtype="float64")])
    with pytest.raises(ValueError, match="only be the output activation"):
        nn.Sequential([nn.Dense(3, 4, rng=0), nn.Dense(4, 2, rng=0)],
                      activations=["softmax", "identity"])
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        nn.Sequential([nn.Dense(3, 4, rng=0)]).forward(bnp.get_xp().zeros((2, 5), dtype="float32"))
