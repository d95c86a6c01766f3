"""BatchNorm1d/2d: training-mode gradcheck, running statistics, evaluation pass, state,
bad input."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn
from bionp.testing import numerical_gradient, relative_error


def _make(kind):
    if kind == "1d":
        return nn.BatchNorm1d(4, dtype="float64"), (6, 4), (0,)
    return nn.BatchNorm2d(3, dtype="float64"), (4, 3, 3, 2), (0, 2, 3)


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_batchnorm_training_gradcheck_float64(xp, kind):
    layer, shape, _ = _make(kind)
    g = bnp.random.Generator(1)
    layer.gamma[...] = g.normal(1, 0.3, tuple(layer.gamma.shape), dtype="float64")
    layer.beta[...] = g.normal(0, 0.3, tuple(layer.beta.shape), dtype="float64")
    x = g.normal(0.5, 2.0, shape, dtype="float64")
    R = g.normal(0, 1, shape, dtype="float64")

    def loss():  # training pass (batch statistics); L = <z, R>
        return xp.sum(layer.forward_cache(x)[0] * R)

    z, cache = layer.forward_cache(x)
    grads, dx = layer.backward(x, R, cache=cache)
    assert relative_error(grads["gamma"], numerical_gradient(loss, layer.gamma)) <= 1e-6
    assert relative_error(grads["beta"], numerical_gradient(loss, layer.beta)) <= 1e-6
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6
    grads2, dx2 = layer.backward(x, R)  # cache recomputed from x
    assert relative_error(dx2, dx) <= 1e-14


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_batchnorm_statistics_and_evaluation_pass(xp, kind):
    layer, shape, axes = _make(kind)
    g = bnp.random.Generator(2)
    x = g.normal(3.0, 2.0, shape, dtype="float64")
    xh = bnp.asnumpy(x)
    z, _ = layer.forward_cache(x)
    zh = bnp.asnumpy(z)
    np.testing.assert_allclose(zh.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(zh.var(axis=axes), xh.var(axis=axes) / (xh.var(axis=axes) + 1e-5),
                               rtol=1e-10)
    m = xh.size // xh.shape[1]
    np.testing.assert_allclose(bnp.asnumpy(layer.running_mean), 0.1 * xh.mean(axis=axes),
                               rtol=1e-12)
    np.testing.assert_allclose(bnp.asnumpy(layer.running_var),
                               0.9 + 0.1 * xh.var(axis=axes) * m / (m - 1), rtol=1e-12)
    # evaluation uses the running statistics and changes nothing
    rm = bnp.asnumpy(layer.running_mean).copy()
    bshape = (1, -1) + (1,) * (len(shape) - 2)
    ref = (xh - rm.reshape(bshape)) / np.sqrt(bnp.asnumpy(layer.running_var).reshape(bshape)
                                             + 1e-5)
    np.testing.assert_allclose(bnp.asnumpy(layer.forward(x)), ref, rtol=1e-12)
    np.testing.assert_array_equal(bnp.asnumpy(layer.running_mean), rm)


def test_batchnorm_state_round_trip_and_errors(xp):
    layer = nn.BatchNorm2d(3, dtype="float64")
    g = bnp.random.Generator(3)
    layer.forward_cache(g.normal(1, 1, (4, 3, 2, 2), dtype="float64"))
    other = nn.BatchNorm2d(3, dtype="float64")
    other.load_state_dict({k: v.copy() for k, v in layer.state_dict().items()})
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(bnp.asnumpy(other.state_dict()[k]), bnp.asnumpy(v))
    with pytest.raises(ValueError, match="running_var must have shape"):
        other.load_state_dict({**layer.state_dict(), "running_var": xp.ones(4)})
    before = bnp.asnumpy(layer.running_mean).copy()
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, 3, height, width\)"):
        layer.forward_cache(g.normal(0, 1, (4, 2, 2, 2), dtype="float64"))
    with pytest.raises(ValueError, match="more than one value per feature"):
        nn.BatchNorm1d(3, dtype="float64").forward_cache(g.normal(0, 1, (1, 3), dtype="float64"))
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        nn.BatchNorm1d(5).forward(xp.ones((2, 3), dtype=xp.float32))
    np.testing.assert_array_equal(bnp.asnumpy(layer.running_mean), before)
    for bad in (dict(num_features=0), dict(num_features=2, eps=0), dict(num_features=2,
                                                                          momentum=1.5)):
        with pytest.raises(ValueError):
            nn.BatchNorm1d(**bad)
    assert nn.BatchNorm1d(3, affine=False).params() == {}
