"""bionp.rules: gradchecks, FA=BP with B=W, KP alignment, WP/NP unbiasedness, bad input."""

import numpy as np
import pytest

import bionp as bnp
from bionp.nn import MLP, CrossEntropyLoss, MSELoss
from bionp.optim import SGD
from bionp.random import Generator
from bionp.rules import (Backprop, DirectFeedbackAlignment, FeedbackAlignment, KolenPollack,
                         NodePerturbation, WeightPerturbation, get_rule)
from bionp.testing import assert_allclose, network_gradient_errors, relative_error


def _data(n=8, d=5, c=3, seed=0):
    g = Generator(seed)
    return g.normal(0, 1, (n, d), dtype="float64"), g.integers(0, c, n)


def _flat(grads):
    return np.concatenate([bnp.asnumpy(g[k]).ravel() for g in grads for k in sorted(g)])


def _cos(a, b):
    a, b = _flat(a), _flat(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("act", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("loss", [MSELoss(), CrossEntropyLoss()], ids=["mse", "ce"])
@pytest.mark.parametrize("sizes", [[5, 3], [5, 4, 3], [5, 4, 4, 3], [5, 4, 3, 4, 3]],
                         ids=["depth1", "depth2", "depth3", "depth4"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_backprop_gradcheck(cpu_xp, act, loss, sizes, bias):
    x, y = _data()
    net = MLP(sizes, activation=act, output_activation="identity", bias=bias, rng=1,
              init_scale=0.5, dtype="float64")
    errors = network_gradient_errors(net, x, y, loss, Backprop().gradients(net, x, y, loss))
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("out_act", ["softmax", "sigmoid"])
def test_backprop_gradcheck_output_activations(xp, out_act):
    x, y = _data()
    for loss in (MSELoss(), CrossEntropyLoss()):
        net = MLP([5, 4, 3], activation="sigmoid", output_activation=out_act, rng=1,
                  init_scale=0.5, dtype="float64")
        errors = network_gradient_errors(net, x, y, loss, Backprop().gradients(net, x, y, loss))
        assert max(errors.values()) < 1e-6, errors


def test_feedback_alignment_with_B_equal_W_is_backprop(xp):
    x, y = _data()
    net = MLP([5, 4, 4, 3], rng=1, dtype="float64")
    fa = FeedbackAlignment(rng=0).initialize(net)
    assert fa.B[0] is None
    assert [tuple(B.shape) for B in fa.B[1:]] == [tuple(layer.W.shape) for layer in net.layers[1:]]
    fa.B = [None] + [layer.W.copy() for layer in net.layers[1:]]
    g_fa = fa.gradients(net, x, y, MSELoss())
    g_bp = Backprop().gradients(net, x, y, MSELoss())
    for a, b in zip(g_fa, g_bp):
        for k in a:
            assert_allclose(a[k], b[k], rtol=0, atol=0)


def test_feedback_alignment_last_layer_exact_hidden_differs(xp):
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    g_fa = FeedbackAlignment(rng=0).gradients(net, x, y, MSELoss())
    g_bp = Backprop().gradients(net, x, y, MSELoss())
    assert_allclose(g_fa[-1]["W"], g_bp[-1]["W"], rtol=1e-12)
    assert relative_error(g_fa[0]["W"], g_bp[0]["W"]) > 1e-3


def test_direct_feedback_alignment(xp):
    x, y = _data()
    net = MLP([5, 4, 6, 3], rng=1, dtype="float64")
    dfa = DirectFeedbackAlignment(rng=0).initialize(net)
    assert [tuple(D.shape) for D in dfa.D[:-1]] == [(3, 4), (3, 6)] and dfa.D[-1] is None
    g = dfa.gradients(net, x, y, MSELoss())
    cache = net.forward_cache(x)
    t = net.prepare_target(y, 8)
    e = net.output_delta(cache, t, MSELoss())
    for l in range(2):
        d = net.activations[l].vjp(cache.pre[l], cache.post[l], e @ dfa.D[l])
        assert_allclose(g[l]["W"], bnp.asnumpy(d).T @ bnp.asnumpy(cache.inputs[l]), rtol=1e-12)
    # a two-layer net: DFA with D[0] = W[1] is backprop
    net2 = MLP([5, 4, 3], rng=1, dtype="float64")
    dfa2 = DirectFeedbackAlignment(rng=0).initialize(net2)
    dfa2.D[0] = net2.layers[1].W.copy()
    g2, gb = dfa2.gradients(net2, x, y, MSELoss()), Backprop().gradients(net2, x, y, MSELoss())
    assert_allclose(g2[0]["W"], gb[0]["W"], rtol=1e-12)


def test_kolen_pollack_B_converges_to_W(xp):
    g = Generator(3)
    x = g.normal(0, 1, (64, 6), dtype="float64")
    y = g.integers(0, 3, 64)
    net = MLP([6, 8, 8, 3], rng=1, dtype="float64")
    kp = KolenPollack(weight_decay=0.1, feedback_optimizer="sgd", rng=2)
    lr = 0.5
    opt = SGD(net, lr=lr)
    loss = MSELoss()

    def gap():
        return [bnp.asnumpy(layer.W) - bnp.asnumpy(B) for B, layer in zip(kp.B[1:], net.layers[1:])]

    kp.initialize(net)
    before = gap()
    cos0 = _cos(kp.gradients(net, x, y, loss)[:1], Backprop().gradients(net, x, y, loss)[:1])
    n_steps = 80
    for _ in range(n_steps):
        grads = kp.gradients(net, x, y, loss)
        opt.step(grads)
        kp.update_after_step(net, grads, opt.lr)
    after = gap()
    # under plain SGD, W - B shrinks exactly by (1 - lr * lambda) per step
    factor = (1 - lr * 0.1) ** n_steps
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, factor * b, rtol=1e-8, atol=1e-12)
    cos = _cos(kp.gradients(net, x, y, loss)[:1], Backprop().gradients(net, x, y, loss)[:1])
    assert cos > 0.95 and cos > cos0


def test_kolen_pollack_gradient_includes_decay(xp):
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    kp = KolenPollack(weight_decay=0.3, rng=0)
    fa = FeedbackAlignment(rng=0)
    g_kp = kp.gradients(net, x, y, MSELoss())
    fa.B = kp.B
    g_fa = fa.gradients(net, x, y, MSELoss())
    assert_allclose(g_kp[0]["W"], g_fa[0]["W"], rtol=1e-12)  # layer 0: no decay
    assert_allclose(g_kp[1]["W"], bnp.asnumpy(g_fa[1]["W"]) + 0.3 * bnp.asnumpy(net.layers[1].W),
                    rtol=1e-12)
    B_old = bnp.asnumpy(kp.B[1]).copy()
    kp.step_feedback(0.1)
    assert_allclose(kp.B[1], B_old - 0.1 * (bnp.asnumpy(g_fa[1]["W"]) + 0.3 * B_old), rtol=1e-12)
    kp.step_feedback(0.1)  # a second call without new gradients does nothing
    assert_allclose(kp.B[1], B_old - 0.1 * (bnp.asnumpy(g_fa[1]["W"]) + 0.3 * B_old), rtol=1e-12)


@pytest.mark.parametrize("opt_name", ["nesterov", "adam"])
def test_kolen_pollack_mirror_brings_B_to_W_under_momentum(xp, opt_name):
    """With momentum, plain feedback steps leave W - B large; a mirrored optimiser makes it
    decay (under SGD momentum like momentum SGD on lam/2 |W - B|^2)."""
    from bionp.optim import Adam
    from bionp.train import Trainer

    g = Generator(3)
    x = g.normal(0, 1, (256, 6), dtype="float64")
    y = g.integers(0, 3, 256)
    gaps = {}
    for mode in ("sgd", "mirror"):
        net = MLP([6, 8, 8, 3], rng=1, dtype="float64", activation="relu",
                  output_activation="identity")
        kp = KolenPollack(weight_decay=0.5, feedback_optimizer=mode, rng=2).initialize(net)
        opt = (SGD(net, lr=0.05, momentum=0.9, nesterov=True) if opt_name == "nesterov"
               else Adam(net, lr=0.01))
        before = max(float(bnp.to_scalar(xp.max(xp.abs(l.W - B))))
                     for l, B in zip(net.layers[1:], kp.B[1:]))
        Trainer(net, kp, opt, MSELoss(), batch_size=32, rng=0, progress=False).fit(x, y, epochs=20)
        gaps[mode] = max(float(bnp.to_scalar(xp.max(xp.abs(l.W - B))))
                         for l, B in zip(net.layers[1:], kp.B[1:])) / before
    assert gaps["mirror"] < 1e-3 and gaps["sgd"] > 10 * gaps["mirror"]
    with pytest.raises(ValueError, match="after_step"):
        KolenPollack(feedback_optimizer="mirror", rng=0).update_after_step(None, None, 0.1)
    with pytest.raises(ValueError, match="feedback_optimizer"):
        KolenPollack(feedback_optimizer="adam")


def test_kolen_pollack_feedback_lr_scale_follows_the_optimiser_lr(xp):
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    scaled = KolenPollack(weight_decay=0.3, feedback_lr_scale=10.0, feedback_optimizer="sgd",
                          rng=0)
    fixed = KolenPollack(weight_decay=0.3, feedback_lr=0.5, feedback_optimizer="sgd", rng=0)
    for rule in (scaled, fixed):
        rule.gradients(net, x, y, MSELoss())
    scaled.update_after_step(net, None, 0.05)  # B's step: 10 x the optimiser's lr 0.05
    fixed.update_after_step(net, None, 0.05)  # a fixed feedback_lr ignores the lr given
    assert_allclose(scaled.B[1], fixed.B[1], rtol=1e-12)
    assert scaled.get_config()["feedback_lr_scale"] == 10.0
    for bad in ({"feedback_lr_scale": 0.0}, {"feedback_lr": -1.0}):
        with pytest.raises(ValueError, match="feedback_lr"):
            KolenPollack(feedback_optimizer="sgd", **bad)
    # with the default mirror they would be ignored: refused instead
    for kw in ({"feedback_lr_scale": 10.0}, {"feedback_lr": 0.5}):
        with pytest.raises(ValueError, match="pass feedback_optimizer='sgd'"):
            KolenPollack(**kw)


@pytest.mark.parametrize("rule", [
    WeightPerturbation(sigma=1e-3, n_samples=2000, rng=0),
    WeightPerturbation(sigma=1e-3, n_samples=1000, antithetic=True, rng=0),
    WeightPerturbation(sigma=1e-3, n_samples=2000, noise="rademacher", rng=0),
    NodePerturbation(sigma=1e-3, n_samples=2000, rng=0),
], ids=["wp", "wp_antithetic", "wp_rademacher", "np"])
def test_perturbation_rules_are_unbiased(rule):
    """NumPy only (2000 samples); the strict backend's numbers equal NumPy's (parity)."""
    x, y = _data(16)
    net = MLP([5, 4, 3], rng=1, init_scale=0.5, dtype="float64")
    for loss in (MSELoss(), CrossEntropyLoss()):
        est = rule.gradients(net, x, y, loss)
        true = Backprop().gradients(net, x, y, loss)
        assert _cos(est, true) > 0.95


def test_node_perturbation_unbiased_with_softmax_ce():
    x, y = _data(16)
    net = MLP([5, 4, 3], output_activation="softmax", rng=1, init_scale=0.5, dtype="float64")
    est = NodePerturbation(sigma=1e-3, n_samples=2000, rng=0).gradients(net, x, y,
                                                                      CrossEntropyLoss())
    assert _cos(est, Backprop().gradients(net, x, y, CrossEntropyLoss())) > 0.95


def test_node_perturbation_tutorial_estimator_runs(xp):
    x, y = _data()
    net = MLP([5, 4, 3], output_activation="sigmoid", rng=1, dtype="float64")
    g = NodePerturbation(sigma=0.1, estimator="tutorial", rng=0).gradients(net, x, y, MSELoss())
    assert [set(d) for d in g] == [{"W", "b"}, {"W", "b"}]
    with pytest.raises(ValueError, match="estimator"):
        NodePerturbation(estimator="magic")


@pytest.mark.parametrize("make", [
    Backprop, lambda: FeedbackAlignment(rng=0), lambda: DirectFeedbackAlignment(rng=0),
    lambda: KolenPollack(rng=0), lambda: WeightPerturbation(rng=0),
    lambda: NodePerturbation(rng=0), lambda: NodePerturbation(rng=0, estimator="tutorial"),
])
def test_rules_bad_input(xp, make):
    rule = make()
    net = MLP([5, 4, 3], rng=1)
    x = Generator(0).normal(0, 1, (6, 5))
    y = xp.asarray([0, 1, 2, 0, 1, 2])
    loss = CrossEntropyLoss()
    grads = rule.gradients(net, x, y, loss)
    assert [tuple(g["W"].shape) for g in grads] == [(4, 5), (3, 4)]
    assert all(g["W"].dtype == np.float32 for g in grads)
    with pytest.raises(ValueError, match=r"shape \(batch, 5\)"):
        rule.gradients(net, xp.zeros((6, 4)), y, loss)
    with pytest.raises(ValueError, match="same first dimension"):
        rule.gradients(net, x, y[:4], loss)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        rule.gradients(net, x, xp.asarray([0, 1, 2, 3, 1, 2]), loss)
    with pytest.raises(ValueError, match=r"shape \(6, 3\)"):
        rule.gradients(net, x, xp.zeros((6, 4)), loss)
    bad = x.copy()
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="1 NaN"):
        rule.gradients(net, bad, y, loss)
    with pytest.raises(TypeError, match="loss_fn"):
        rule.gradients(net, x, y, "mse")


@pytest.mark.parametrize("cls", [FeedbackAlignment, KolenPollack, DirectFeedbackAlignment])
def test_feedback_rule_on_other_network(xp, cls):
    rule = cls(rng=0)
    x = Generator(0).normal(0, 1, (6, 5))
    y = xp.asarray([0, 1, 2, 0, 1, 2])
    rule.gradients(MLP([5, 4, 3], rng=1), x, y, MSELoss())
    with pytest.raises(ValueError, match="initialised for a network"):
        rule.gradients(MLP([5, 7, 3], rng=1), x, y, MSELoss())


def test_rule_mixed_backend():
    net = MLP([5, 4, 3], rng=1)
    fa = FeedbackAlignment(rng=0).initialize(net)
    with bnp.backend("strict"):
        net_s = MLP([5, 4, 3], rng=1)
        x = Generator(0).normal(0, 1, (6, 5))
        y = bnp.get_xp().asarray([0, 1, 2, 0, 1, 2])
    with pytest.raises(bnp.MixedBackendError):
        fa.gradients(net_s, x, y, MSELoss())
    with pytest.raises(bnp.MixedBackendError):
        Backprop().gradients(net, x, y, MSELoss())


def test_rules_same_numbers_on_numpy_and_strict():
    from bionp.parity.rules import train_small_mlp

    out = {}
    for name in ("numpy", "strict"):
        with bnp.backend(name):
            out[name] = train_small_mlp(lambda: NodePerturbation(sigma=0.05, rng=3), np.float32,
                                        n_updates=5)
    for k in out["numpy"]:
        np.testing.assert_array_equal(bnp.asnumpy(out["numpy"][k]), bnp.asnumpy(out["strict"][k]))


def test_rademacher_noise(xp):
    from bionp.rules.perturbation import rademacher

    r = bnp.asnumpy(rademacher(Generator(0), (300, 70), 0.1, np.dtype("float64"), xp))
    assert r.shape == (300, 70) and set(np.unique(r)) == {-0.1, 0.1}
    assert abs(r.mean()) < 0.004 and abs(r.var() - 0.01) < 1e-4
    with pytest.raises(ValueError, match="noise"):
        WeightPerturbation(noise="laplace")


def test_get_rule_and_config():
    assert isinstance(get_rule("kolen_pollack", weight_decay=0.01), KolenPollack)
    with pytest.raises(ValueError, match="known rules"):
        get_rule("hebb")
    assert WeightPerturbation(sigma=0.2).get_config()["sigma"] == 0.2
    with pytest.raises(ValueError, match="sigma"):
        WeightPerturbation(sigma=0)
    with pytest.raises(ValueError, match="n_samples"):
        NodePerturbation(n_samples=0)


@pytest.mark.parametrize("make", [Backprop, lambda: KolenPollack(rng=0),
                                  lambda: WeightPerturbation(rng=0), lambda: NodePerturbation(rng=0)])
def test_last_loss_is_the_clean_batch_loss(xp, make):
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    rule = make()
    rule.gradients(net, x, y, MSELoss())
    assert abs(bnp.to_scalar(rule.last_loss) - bnp.to_scalar(net.loss(x, y, MSELoss()))) < 1e-12


def test_after_step_alias_uses_optimizer_lr(xp):
    x, y = _data()
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    a, b = (KolenPollack(feedback_optimizer="sgd", rng=0),
            KolenPollack(feedback_optimizer="sgd", rng=0))
    opt = SGD(net, lr=0.3)
    for rule, call in ((a, lambda r, g: r.after_step(net, opt)),
                       (b, lambda r, g: r.update_after_step(net, g, 0.3))):
        g = rule.gradients(net, x, y, MSELoss())
        call(rule, g)
    assert_allclose(a.B[1], b.B[1], rtol=0, atol=0)


@pytest.mark.parametrize("make", [lambda: FeedbackAlignment(rng=0), lambda: KolenPollack(rng=0),
                                  lambda: DirectFeedbackAlignment(rng=0),
                                  lambda: WeightPerturbation(rng=0), lambda: NodePerturbation(rng=0)])
def test_rule_state_dict_resumes_identically(xp, make):
    x, y = _data()
    net = MLP([5, 4, 4, 3], rng=1)
    rule = make()
    rule.gradients(net, x, y, MSELoss())
    state = rule.state_dict()
    assert "rng" in state
    saved = {k: ([None if a is None else a.copy() for a in v] if isinstance(v, list) else v)
             for k, v in state.items()}
    g1 = rule.gradients(net, x, y, MSELoss())
    other = make()
    other.load_state_dict(saved)
    g2 = other.gradients(net, x, y, MSELoss())
    for d1, d2 in zip(g1, g2):
        for k in d1:
            assert_allclose(d1[k], d2[k], rtol=0, atol=0)
    assert Backprop().state_dict() == {}
