"""bionp.optim: SGD (momentum, Nesterov, weight decay) and Adam against reference formulas."""

import numpy as np
import pytest

import bionp as bnp
from bionp.nn import MLP, MSELoss
from bionp.optim import SGD, Adam
from bionp.random import Generator
from bionp.rules import Backprop
from bionp.testing import assert_allclose, assert_equal


def _grads(net, seed):
    g = Generator(seed)
    return [{k: g.normal(0, 1, tuple(v.shape), dtype=v.dtype) for k, v in p.items()}
            for p in net.parameters()]


def _ref_sgd(theta, grads, lr, mu, nesterov, wd):
    v = np.zeros_like(theta)
    for g in grads:
        g = g + wd * theta
        if mu:
            v = mu * v + g
            d = g + mu * v if nesterov else v
        else:
            d = g
        theta = theta - lr * d
    return theta


def _ref_adam(theta, grads, lr, b1, b2, eps, wd):
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return theta


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                dict(momentum=0.5, weight_decay=0.1), dict(weight_decay=0.01)])
def test_sgd_matches_reference(xp, kw):
    net = MLP([4, 3, 2], rng=0, dtype="float64")
    W0 = bnp.asnumpy(net.layers[0].W).copy()
    W_ref = net.layers[0].W
    opt = SGD(net, lr=0.1, **kw)
    gs = [_grads(net, s) for s in range(5)]
    for g in gs:
        opt.step(g)
    assert net.layers[0].W is W_ref  # updated in place
    want = _ref_sgd(W0, [bnp.asnumpy(g[0]["W"]) for g in gs], 0.1, kw.get("momentum", 0),
                    kw.get("nesterov", False), kw.get("weight_decay", 0))
    assert_allclose(net.layers[0].W, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_matches_reference(xp, wd):
    net = MLP([4, 3, 2], rng=0, dtype="float64")
    b0 = bnp.asnumpy(net.layers[1].b).copy() + 0.3
    net.layers[1].b[...] = xp.asarray(b0)
    opt = Adam(net, lr=0.01, weight_decay=wd)
    gs = [_grads(net, s) for s in range(6)]
    for g in gs:
        opt.step(g)
    want = _ref_adam(b0, [bnp.asnumpy(g[1]["b"]) for g in gs], 0.01, 0.9, 0.999, 1e-8, wd)
    assert_allclose(net.layers[1].b, want, rtol=1e-12, atol=1e-14)


def test_optimizer_state_dict_round_trip(xp):
    for make in (lambda n: SGD(n, lr=0.1, momentum=0.9), lambda n: Adam(n, lr=0.01)):
        a, b = MLP([4, 3, 2], rng=0), MLP([4, 3, 2], rng=0)
        oa, ob = make(a), make(b)
        for s in range(3):
            oa.step(_grads(a, s))
            ob.step(_grads(b, s))
        st = oa.state_dict()
        assert st["step"] == 3
        c = MLP([4, 3, 2], rng=0)
        c.load_state_dict(a.state_dict())
        oc = make(c)
        oc.load_state_dict(st)
        for s in range(3, 5):
            oa.step(_grads(a, s))
            oc.step(_grads(c, s))
        for la, lc in zip(a.layers, c.layers):
            assert_equal(la.W, lc.W)
        oc.zero_state()
        assert oc.step_count == 0


def test_optimizer_rejects_gradients_of_another_net(xp):
    net = MLP([4, 3, 2], rng=0)
    other = MLP([4, 5, 2], rng=0)
    opt = SGD(net, lr=0.1)
    msg = r"gradient 0.W has shape \(5, 4\), expected \(3, 4\).*another network"
    with pytest.raises(ValueError, match=msg):
        opt.step(_grads(other, 0))
    with pytest.raises(ValueError, match="list of 2 dicts"):
        opt.step(_grads(MLP([4, 2], rng=0), 0))
    nobias = MLP([4, 3, 2], bias=False, rng=0)
    with pytest.raises(ValueError, match="keys"):
        opt.step(_grads(nobias, 0))
    with pytest.raises(ValueError, match="lr"):
        SGD(net, lr=0)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(net, lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="parameters"):
        SGD(42, lr=0.1)


def test_training_decreases_loss(xp):
    g = Generator(1)
    x = g.normal(0, 1, (64, 6))
    y = g.integers(0, 3, 64)
    for make in (lambda n: SGD(n, lr=0.5, momentum=0.9), lambda n: Adam(n, lr=0.01)):
        net = MLP([6, 16, 3], rng=0)
        opt = make(net)
        loss = MSELoss()
        first = bnp.to_scalar(net.loss(x, y, loss))
        for _ in range(50):
            opt.step(Backprop().gradients(net, x, y, loss))
        assert bnp.to_scalar(net.loss(x, y, loss)) < 0.9 * first
