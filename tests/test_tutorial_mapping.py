"""The documented mapping between the Microlearning tutorial's updates and bionp's.

The tutorial's formulas are re-derived here in NumPy in its own layout
((features, batch), bias folded into W, W += eta * dW) and compared with one
bionp step.
"""

import numpy as np
import pytest

import bionp as bnp
from bionp.nn import MLP, MSELoss
from bionp.optim import SGD
from bionp.random import Generator
from bionp.rules import Backprop, KolenPollack, NodePerturbation, WeightPerturbation
from bionp.train import Trainer


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _setup(n=12):
    g = Generator(4)
    x = g.normal(0, 1, (n, 6), dtype="float64")
    y = g.integers(0, 3, n)
    net = MLP([6, 5, 3], activation="sigmoid", output_activation="sigmoid", bias_init="normal",
              rng=1, dtype="float64")
    t = np.eye(3)[bnp.asnumpy(y)]
    Wh = np.hstack([bnp.asnumpy(net.layers[0].W), bnp.asnumpy(net.layers[0].b)[:, None]])
    Wy = np.hstack([bnp.asnumpy(net.layers[1].W), bnp.asnumpy(net.layers[1].b)[:, None]])
    return x, y, net, t, Wh, Wy


def _bias(a):
    return np.vstack([a, np.ones((1, a.shape[1]))])


def _after(net):
    return [np.hstack([bnp.asnumpy(l.W), bnp.asnumpy(l.b)[:, None]]) for l in net.layers]


def test_backprop_lr_is_eta_times_batch_over_two():
    x, y, net, t, Wh, Wy = _setup()
    n, eta = x.shape[0], 1e-3
    X, T = bnp.asnumpy(x).T, t.T
    h = _sig(Wh @ _bias(X))
    o = _sig(Wy @ _bias(h))
    e = T - o
    dWh = (Wy[:, :-1].T @ (e * o * (1 - o)) * h * (1 - h)) @ _bias(X).T
    dWy = (e * o * (1 - o)) @ _bias(h).T
    SGD(net, lr=eta * n / 2).step(Backprop().gradients(net, x, y, MSELoss()))
    got = _after(net)
    np.testing.assert_allclose(got[0], Wh + eta * dWh, rtol=1e-12)
    np.testing.assert_allclose(got[1], Wy + eta * dWy, rtol=1e-12)


def test_kolen_pollack_weight_decay_mapping():
    x, y, net, t, Wh, Wy = _setup()
    n, eta = x.shape[0], 1e-3
    kp = KolenPollack.tutorial(batch_size=n, rng=3).initialize(net)  # 0.2 / n, plain B step
    assert (kp.weight_decay, kp.feedback_optimizer) == (0.2 / n, "sgd")
    B = bnp.asnumpy(kp.B[1]).T.copy()  # the tutorial's B, shape (hidden, out)
    X, T = bnp.asnumpy(x).T, t.T
    h = _sig(Wh @ _bias(X))
    o = _sig(Wy @ _bias(h))
    e = T - o
    dWh = (B @ (e * o * (1 - o)) * h * (1 - h)) @ _bias(X).T
    d_err = (e * o * (1 - o)) @ _bias(h).T
    dWy = d_err - 0.1 * Wy
    dB = d_err[:, :-1].T - 0.1 * B
    lr = eta * n / 2
    grads = kp.gradients(net, x, y, MSELoss())
    SGD(net, lr=lr).step(grads)
    kp.update_after_step(net, grads, lr)
    got = _after(net)
    np.testing.assert_allclose(got[0], Wh + eta * dWh, rtol=1e-12)
    np.testing.assert_allclose(got[1], Wy + eta * dWy, rtol=1e-12)
    np.testing.assert_allclose(bnp.asnumpy(kp.B[1]).T, B + eta * dB, rtol=1e-12)


def test_node_perturbation_tutorial_estimator_matches_tutorial_formula():
    x, y, net, t, Wh, Wy = _setup()
    sigma, eta = 0.1, 1e-3
    # the rule draws the hidden noise then the output noise, (batch, units) each
    g = Generator(9)
    xi_h = bnp.asnumpy(g.normal(0, sigma, (x.shape[0], 5), dtype="float64")).T
    xi_o = bnp.asnumpy(g.normal(0, sigma, (x.shape[0], 3), dtype="float64")).T
    X, T = bnp.asnumpy(x).T, t.T
    h = _sig(Wh @ _bias(X))
    o = _sig(Wy @ _bias(h))
    hp = h + xi_h
    op = _sig(Wy @ _bias(hp)) + xi_o
    dl = np.sum((T - o) ** 2, axis=0) - np.sum((T - op) ** 2, axis=0)
    upd_h = np.mean(dl * (((hp - h) / sigma ** 2)[:, None, :] * _bias(X)[None, :, :]), axis=2)
    upd_y = np.mean(dl * (((op - o) / sigma ** 2)[:, None, :] * _bias(hp)[None, :, :]), axis=2)
    rule = NodePerturbation(sigma=sigma, estimator="tutorial", rng=9)
    SGD(net, lr=eta).step(rule.gradients(net, x, y, MSELoss()))
    got = _after(net)
    np.testing.assert_allclose(got[0], Wh + eta * upd_h, rtol=1e-10)
    np.testing.assert_allclose(got[1], Wy + eta * upd_y, rtol=1e-10)


def _tutorial_wp_noise(g, shapes, sigma):
    """The rule's draws (W then b, layer by layer) in the tutorial's layout ([W | b])."""
    out = []
    for w_shape, b_shape in shapes:
        W = bnp.asnumpy(g.normal(0, sigma, w_shape, dtype="float64"))
        b = bnp.asnumpy(g.normal(0, sigma, b_shape, dtype="float64"))
        out.append(np.hstack([W, b[:, None]]))
    return out


def test_weight_perturbation_matches_tutorial_formula():
    x, y, net, t, Wh, Wy = _setup()
    sigma, eta = 0.1, 1e-3
    dh, dy = _tutorial_wp_noise(Generator(9), [((5, 6), (5,)), ((3, 5), (3,))], sigma)
    X, T = bnp.asnumpy(x).T, t.T

    def loss(Wh_, Wy_):
        o = _sig(Wy_ @ _bias(_sig(Wh_ @ _bias(X))))
        return np.mean(np.sum((T - o) ** 2, axis=0))

    d = loss(Wh, Wy) - loss(Wh + dh, Wy + dy)  # the tutorial's sign: clean minus perturbed
    rule = WeightPerturbation(sigma=sigma, rng=9)
    SGD(net, lr=eta).step(rule.gradients(net, x, y, MSELoss()))
    got = _after(net)
    np.testing.assert_allclose(got[0], Wh + eta * d * dh / sigma ** 2, rtol=1e-10)
    np.testing.assert_allclose(got[1], Wy + eta * d * dy / sigma ** 2, rtol=1e-10)


@pytest.mark.parametrize("kind", ["weight_perturbation", "node_perturbation"])
def test_trainer_reproduces_the_tutorial_training_loop(kind):
    """Several epochs of the tutorial's loop (fixed batches, ``W += eta dW``, the loss logged
    before each update) against bionp's Trainer, given the same noise."""
    x, y, net, t, Wh, Wy = _setup(n=24)
    sigma, eta, bs = 0.1, 1e-3, 6
    X, T = bnp.asnumpy(x).T, t.T
    g = Generator(9)
    losses = []
    for epoch in range(2):
        for b in range(X.shape[1] // bs):
            Xb, Tb = X[:, b * bs:(b + 1) * bs], T[:, b * bs:(b + 1) * bs]
            h = _sig(Wh @ _bias(Xb))
            o = _sig(Wy @ _bias(h))
            clean = np.sum((Tb - o) ** 2, axis=0)
            losses.append(np.mean(clean))
            if kind == "weight_perturbation":
                dh, dy = _tutorial_wp_noise(g, [((5, 6), (5,)), ((3, 5), (3,))], sigma)
                op = _sig((Wy + dy) @ _bias(_sig((Wh + dh) @ _bias(Xb))))
                d = np.mean(clean) - np.mean(np.sum((Tb - op) ** 2, axis=0))
                uh, uy = d * dh / sigma ** 2, d * dy / sigma ** 2
            else:
                xi_h = bnp.asnumpy(g.normal(0, sigma, (bs, 5), dtype="float64")).T
                xi_o = bnp.asnumpy(g.normal(0, sigma, (bs, 3), dtype="float64")).T
                hp = h + xi_h
                op = _sig(Wy @ _bias(hp)) + xi_o
                d = clean - np.sum((Tb - op) ** 2, axis=0)
                uh = (d * (hp - h) / sigma ** 2) @ _bias(Xb).T / bs
                uy = (d * (op - o) / sigma ** 2) @ _bias(hp).T / bs
            Wh = Wh + eta * uh
            Wy = Wy + eta * uy
    rule = (WeightPerturbation(sigma=sigma, rng=9) if kind == "weight_perturbation"
            else NodePerturbation(sigma=sigma, estimator="tutorial", rng=9))
    trainer = Trainer(net, rule, SGD(net, lr=eta), MSELoss(), batch_size=bs, shuffle=False,
                      progress=False, rng=0)
    hist = trainer.fit(x, y, epochs=2)
    got = _after(net)
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-10)
    np.testing.assert_allclose(got[0], Wh, rtol=1e-9)
    np.testing.assert_allclose(got[1], Wy, rtol=1e-9)
