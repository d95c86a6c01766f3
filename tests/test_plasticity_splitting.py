"""Weight splitting: the layer's forward pass, its hand-derived backward pass (float64 gradcheck)."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, plasticity as bio
from bionp.testing import assert_equal, network_gradient_errors, numerical_gradient, relative_error


def _layer(xp, gamma=2, act="tanh", n_in=5, n_out=6, seed=0):
    dense = nn.Dense(n_in, n_out, init="normal", init_scale=0.5, rng=seed, dtype=np.float64,
                     bias_init="normal")
    return bio.WeightSplitting(dense, gamma, act)


@pytest.mark.parametrize("gamma", [1, 2, 3, 6])
def test_forward_is_the_group_sum(xp, gamma):
    layer = _layer(xp, gamma, "tanh")
    x = bnp.random.Generator(1).normal(0, 1, (4, 5), dtype=np.float64)
    y = bnp.asnumpy(layer.forward(x))
    z = bnp.asnumpy(x) @ bnp.asnumpy(layer.W).T + bnp.asnumpy(layer.b)
    a = np.tanh(z)
    want = np.empty_like(a)
    for i in range(6):
        k = i // gamma
        want[:, i] = a[:, k * gamma:(k + 1) * gamma].sum(axis=1)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    y2, cache = layer.forward_cache(x)
    assert_equal(y2, layer.forward(x))
    assert layer.out_features == 6 and layer.params()["W"] is layer.dense.W


@pytest.mark.parametrize("act", ["identity", "tanh", "sigmoid"])
def test_backward_gradcheck_float64(cpu_xp, act):
    xp = cpu_xp
    layer = _layer(xp, 3, act)
    g = bnp.random.Generator(2)
    x = g.normal(0, 1, (4, 5), dtype=np.float64)
    c = g.normal(0, 1, (4, 6), dtype=np.float64)            # L = sum(c * y) / N

    def loss():
        return xp.sum(c * layer.forward(x)) / 4

    y, cache = layer.forward_cache(x)
    grads, dx = layer.backward(x, c / 4, cache)
    for k in ("W", "b"):
        num = numerical_gradient(loss, layer.params()[k])
        assert relative_error(grads[k], num) < 1e-6, k
    num_x = numerical_gradient(loss, x)
    assert relative_error(dx, num_x) < 1e-6
    g2, dx2 = layer.backward(x, c / 4)                        # no cache: recomputed
    assert_equal(g2["W"], grads["W"])
    assert_equal(dx2, dx)


def test_feedback_replaces_w_in_the_input_delta(xp):
    layer = _layer(xp, 2, "identity")
    g = bnp.random.Generator(3)
    x = g.normal(0, 1, (4, 5), dtype=np.float64)
    d = g.normal(0, 1, (4, 6), dtype=np.float64)
    B = g.normal(0, 1, (6, 5), dtype=np.float64)
    _, dx = layer.backward(x, d, feedback=B)
    dh = bnp.asnumpy(d).reshape(4, 3, 2).sum(2).repeat(2, axis=1)
    np.testing.assert_allclose(bnp.asnumpy(dx), dh @ bnp.asnumpy(B), rtol=1e-12)
    _, none = layer.backward(x, d, need_input_grad=False)
    assert none is None


def test_bad_gamma_and_inputs(xp):
    dense = nn.Dense(5, 6, rng=0)
    with pytest.raises(ValueError, match="does not divide the layer's 6 outputs"):
        bio.WeightSplitting(dense, 4)
    with pytest.raises(ValueError, match="non-negative int"):
        bio.WeightSplitting(dense, -2)
    with pytest.raises(ValueError, match="gamma >= 1"):
        bio.WeightSplitting(dense, 0)
    with pytest.raises(ValueError, match="elementwise"):
        bio.WeightSplitting(dense, 2, "softmax")
    layer = bio.WeightSplitting(dense, 2)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 5\)"):
        layer.forward(xp.ones((3, 4), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"delta must have shape \(3, 6\)"):
        layer.backward(xp.ones((3, 5), dtype=xp.float32), xp.ones((3, 5), dtype=xp.float32))
    net = nn.MLP([5, 6, 4], rng=0)
    with pytest.raises(ValueError, match="does not divide the layer's 6 outputs"):
        bio.split_weights(net, 4)
    assert isinstance(net.layers[0], nn.Dense)               # nothing converted on error
    bio.split_weights(net, 3)
    assert isinstance(net.layers[0], bio.WeightSplitting) and isinstance(net.layers[1], nn.Dense)
    with pytest.raises(ValueError, match="already split"):
        bio.split_weights(net, 3, layers=[0])


def test_split_network_backprop_gradcheck_and_training(cpu_xp):
    """Backprop through a converted network equals the numerical gradient of its loss."""
    from bionp import rules

    xp = cpu_xp
    net = nn.MLP([5, 6, 4, 3], activation="tanh", rng=0, dtype=np.float64)
    bio.convert(net, transforms=(), weight_splitting_Gamma=2, weight_splitting_activation_function="tanh",
                rng=1)
    assert [type(layer).__name__ for layer in net.layers] == ["WeightSplitting", "WeightSplitting", "Dense"]
    g = bnp.random.Generator(4)
    x = g.normal(0, 1, (7, 5), dtype=np.float64)
    y = g.integers(0, 3, 7)
    loss = nn.CrossEntropyLoss()
    errors = network_gradient_errors(net, x, y, loss, rules.Backprop().gradients(net, x, y, loss))
    assert max(errors.values()) < 1e-6, errors
    # outputs of a group are equal
    h = bnp.asnumpy(net.layers[0].forward(x))
    np.testing.assert_array_equal(h[:, 0::2], h[:, 1::2])
