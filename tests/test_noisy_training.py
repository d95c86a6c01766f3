"""Noisy layers in networks: the learning rules, the optimisers, the Trainer (checkpoints,
bit-identical resume), parity, and the rules they do not make sense for."""

import numpy as np
import pytest

import bionp as bnp
from bionp import data, nn, optim, rules
from bionp.random import Generator
from bionp.train import Trainer

TOL = 1e-6


def rel(a, b):
    a, b = bnp.asnumpy(a).astype(np.float64), bnp.asnumpy(b).astype(np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _net(dtype="float64", per_weight=False, mode="additive"):
    layers = [nn.NoisyDense(5, 6, sigma=0.2, mode=mode, rng=1, dtype=dtype),
              nn.LearnableNoiseDense(6, 4, log_var_init=-3.0, per_weight=per_weight, mode=mode,
                                     sigma_bounds=(1e-3, 0.5), rng=2, dtype=dtype),
              nn.NoisyWeights(nn.Dense(4, 3, rng=3, dtype=dtype), sigma=0.1, mode=mode, rng=4)]
    return nn.Sequential(layers, ["tanh", "sigmoid", "identity"])


def _states(net):
    return [layer.rng.get_state() for layer in net.layers]


def _rewind(net, states):
    for layer, s in zip(net.layers, states):
        layer.rng.set_state(s)


@pytest.mark.parametrize("per_weight", [False, True])
@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_backprop_through_noisy_network_gradcheck(xp, per_weight, mode):
    """Rule-level gradcheck: Backprop's gradients = central differences of the noisy training
    loss with every layer's noise draw held fixed (generators rewound)."""
    net = _net(per_weight=per_weight, mode=mode)
    g = Generator(0)
    x = g.normal(0, 1, (9, 5), dtype=np.float64)
    y = g.integers(0, 3, 9)
    loss_fn = nn.CrossEntropyLoss()
    states = _states(net)
    grads = rules.Backprop().gradients(net, x, y, loss_fn)

    def f():
        _rewind(net, states)
        return float(bnp.to_scalar(net.loss(x, y, loss_fn)))

    h = 1e-5
    for l, layer in enumerate(net.layers):
        for k, p in layer.params().items():
            host = bnp.asnumpy(p).copy()
            fd = np.zeros_like(host)
            for i in np.ndindex(host.shape):
                vals = []
                for sign in (1, -1):
                    q = host.copy()
                    q[i] += sign * h
                    p[...] = bnp.asarray(q)
                    vals.append(f())
                fd[i] = (vals[0] - vals[1]) / (2 * h)
            p[...] = bnp.asarray(host)
            assert rel(grads[l][k], fd) <= TOL, (l, k, rel(grads[l][k], fd))


@pytest.mark.parametrize("rule_name", ["feedback_alignment", "kolen_pollack",
                                       "direct_feedback_alignment"])
def test_feedback_rules_send_delta_through_B_and_use_the_forward_noise(cpu_xp, rule_name):
    net = _net()
    g = Generator(0)
    x = g.normal(0, 1, (9, 5), dtype=np.float64)
    y = g.integers(0, 3, 9)
    loss_fn = nn.CrossEntropyLoss()
    rule = {"feedback_alignment": lambda: rules.FeedbackAlignment(rng=7),
            "kolen_pollack": lambda: rules.KolenPollack(weight_decay=0.0, rng=7),
            "direct_feedback_alignment": lambda: rules.DirectFeedbackAlignment(rng=7)}[rule_name]()
    states = _states(net)
    grads = rule.gradients(net, x, y, loss_fn)
    _rewind(net, states)
    exact = rules.Backprop().gradients(net, x, y, loss_fn)
    # the last layer's gradient is exact under every rule (same noise draw)
    for k in exact[-1]:
        assert rel(grads[-1][k], exact[-1][k]) <= 1e-12
    # the hidden layers' are not (the delta went through B or D, not W_eff)
    assert rel(grads[0]["W"], exact[0]["W"]) > 1e-3
    # manual FA/KP: delta of layer 1 from the output delta through B[2]
    if rule_name != "direct_feedback_alignment":
        _rewind(net, states)
        cache = net.forward_cache(x)
        t = net.prepare_target(y, 9)
        d2 = net.output_delta(cache, t, loss_fn)
        d1 = net.activations[1].vjp(cache.pre[1], cache.post[1], d2 @ rule.B[2])
        gw1 = d1.T @ cache.inputs[1]
        assert rel(grads[1]["W"], gw1) <= 1e-12


# (feedback alignment and Kolen-Pollack with Adam barely learn in 40 updates even on a plain
# MLP: Adam is tested with backprop; the optimiser does not care which rule made the gradient)
@pytest.mark.parametrize("rule_name,opt_name", [
    ("backprop", "sgd"), ("backprop", "adam"), ("feedback_alignment", "sgd"),
    ("kolen_pollack", "sgd")])
def test_training_learns_with_every_rule_and_optimiser(rule_name, opt_name):
    x, y = data.load("fashion-mnist-small", split="train")
    x, y = x[:1000], y[:1000]
    net = nn.Sequential([nn.LearnableNoiseDense(784, 32, init="he_normal", rng=0),
                         nn.NoisyDense(32, 10, sigma=0.05, init="he_normal", rng=1)],
                        ["relu", "identity"])
    rule = {"backprop": rules.Backprop, "feedback_alignment": lambda: rules.FeedbackAlignment(rng=2),
            "kolen_pollack": lambda: rules.KolenPollack(weight_decay=0.0, rng=2)}[rule_name]()
    opt = optim.SGD(net, lr=0.05, momentum=0.9) if opt_name == "sgd" else optim.Adam(net, lr=2e-3)
    s0 = bnp.asnumpy(net.layers[0].log_var).copy()
    tr = Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=50, rng=0, progress=False)
    h = tr.fit(x, y, epochs=2, labels=y)
    assert h.stopped is None
    # chance is 10%; feedback alignment learns more slowly in 40 updates
    assert h.train_accuracy[-1] > (60 if rule_name == "backprop" else 40), h.train_accuracy
    assert not np.array_equal(bnp.asnumpy(net.layers[0].log_var), s0)  # σ is learned


def test_learned_sigma_shrinks_without_regulariser_and_regulariser_holds_it():
    """Weight noise hurts the training loss, so σ falls; -λ mean(log σ) pushes back."""
    x, y = data.load("fashion-mnist-small", split="train")
    out = {}
    for lam in (0.0, 1.0):
        net = nn.Sequential([nn.LearnableNoiseDense(784, 32, init="he_normal", sigma_reg=lam, rng=0),
                             nn.Dense(32, 10, init="he_normal", rng=1)], ["relu", "identity"])
        Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
                batch_size=50, rng=0, progress=False).fit(x, y, epochs=2)
        out[lam] = net.layers[0].sigma_values()[0]
    assert out[0.0] < 0.04  # from e^-3 ≈ 0.0498
    assert out[1.0] > out[0.0]


def _fit(tmp_path, epochs, resume, ckpt_name="ck.npz"):
    x, y = data.load("fashion-mnist-small", split="train")
    x, y = x[:600], y[:600]
    net = nn.Sequential([nn.LearnableNoiseDense(784, 16, per_weight=True, rng=0),
                         nn.NoisyDense(16, 10, sigma=0.05, rng=1)], ["relu", "identity"])
    tr = Trainer(net, rules.KolenPollack(weight_decay=0.0, rng=3), optim.Adam(net, lr=1e-3),
                 nn.CrossEntropyLoss(), batch_size=50, rng=0, progress=False,
                 checkpoint=tmp_path / ckpt_name)
    tr.fit(x, y, until_epoch=epochs, resume=resume)
    return net


def test_checkpoint_resume_is_bit_identical(tmp_path):
    straight = _fit(tmp_path, 3, False, "a.npz")
    _fit(tmp_path, 2, False, "b.npz")          # interrupted after 2 epochs
    resumed = _fit(tmp_path, 3, True, "b.npz")  # new objects, resumed from the checkpoint
    for la, lb in zip(straight.layers, resumed.layers):
        for k in la.params():
            np.testing.assert_array_equal(bnp.asnumpy(la.params()[k]), bnp.asnumpy(lb.params()[k]))
        assert la.rng.get_state() == lb.rng.get_state()
    # and the noise generator really is in the checkpoint: without it the run differs
    with np.load(tmp_path / "b.npz") as z:
        meta = z["__meta__"].tobytes().decode()
    assert "Philox4x64-10" in meta and "layer0" in meta and "layer1" in meta


def test_weight_perturbation_runs_but_node_perturbation_refuses(cpu_xp):
    net = _net(dtype="float32")
    x = Generator(0).normal(0, 1, (8, 5))
    y = Generator(1).integers(0, 3, 8)
    with pytest.raises(ValueError, match="NodePerturbation"):
        rules.NodePerturbation(rng=0).gradients(net, x, y, nn.CrossEntropyLoss())
    g = rules.WeightPerturbation(sigma=1e-3, rng=0).gradients(net, x, y, nn.CrossEntropyLoss())
    assert set(g[1]) == {"W", "b", "log_var"}


def test_copy_is_independent(cpu_xp):
    net = _net(dtype="float32")
    c = net.copy()
    assert c.layers[1].log_var is not net.layers[1].log_var
    x = Generator(0).normal(0, 1, (4, 5))
    np.testing.assert_array_equal(bnp.asnumpy(c.forward_cache(x).output),
                                  bnp.asnumpy(net.forward_cache(x).output))


def test_parity_numpy_strict_bitwise():
    from bionp.parity import run_checks

    rows = run_checks(names=["nn.noisy_dense", "nn.learnable_noise_dense"], backends=["strict"])
    assert {r["check"] for r in rows} == {"nn.noisy_dense", "nn.learnable_noise_dense"}
    assert all(r["passed"] and r["max_rel_diff"] == 0.0 for r in rows)


def test_parity_scenario_learns_sigma():
    from bionp.parity.nn import parity_learnable_noise_dense

    with bnp.backend("numpy"):
        out = parity_learnable_noise_dense(np.dtype("float64"))
    assert float(out["log_var0"][0]) != -5.0
    assert not np.all(bnp.asnumpy(out["log_var1"]) == -4.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parity_cupy(gpu_xp, dtype):
    from bionp.parity import run_checks

    rows = run_checks(names=["nn.noisy_dense", "nn.learnable_noise_dense"], backends=["cupy"],
                      dtypes=(dtype,))
    assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
