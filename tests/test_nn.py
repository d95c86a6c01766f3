"""bionp.nn: activations, losses, initialisers, Dense, MLP (on every backend)."""

import warnings

import numpy as np
import pytest

import bionp as bnp
from bionp.nn import (MLP, CrossEntropyLoss, Dense, MSELoss, get_activation, get_loss, init,
                      output_delta)
from bionp.random import Generator
from bionp.testing import assert_allclose, assert_equal, numerical_gradient, relative_error


def _x(xp, n=6, d=5, seed=0, dtype="float64"):
    return Generator(seed).normal(0, 1, (n, d), dtype=dtype)


@pytest.mark.parametrize("name", ["sigmoid", "relu", "leaky_relu", "tanh", "identity", "linear"])
def test_activation_derivative_matches_finite_differences(xp, name):
    act = get_activation(name)
    z = Generator(1).normal(0, 2, (4, 7), dtype="float64")
    a = act(z.copy())
    h = 1e-6
    num = (act(z + h) - act(z - h)) / (2 * h)
    assert_allclose(act.derivative(z, a), num, rtol=1e-6, atol=1e-9)
    g = Generator(2).normal(0, 1, (4, 7), dtype="float64")
    assert_allclose(act.vjp(z, a, g), num * g, rtol=1e-6, atol=1e-9)


def test_softmax_vjp_matches_jacobian(xp):
    act = get_activation("softmax")
    z = Generator(1).normal(0, 2, (3, 4), dtype="float64")
    a = act(z)
    g = Generator(2).normal(0, 1, (3, 4), dtype="float64")
    an, gn = bnp.asnumpy(a), bnp.asnumpy(g)
    want = np.stack([(np.diag(an[i]) - np.outer(an[i], an[i])) @ gn[i] for i in range(3)])
    assert_allclose(act.vjp(z, a, g), want, rtol=1e-10, atol=1e-12)
    assert_allclose(xp.sum(a, axis=1), np.ones(3), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="Jacobian"):
        act.derivative(z, a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 7), (200, 10), (97, 131)])  # the last: compiled kernel
def test_sigmoid_vjp_gives_the_bits_of_grad_times_derivative(xp, dtype, shape):
    act = get_activation("sigmoid")
    a = act(Generator(1).normal(0, 2, shape, dtype=dtype))
    g = Generator(2).normal(0, 1, shape, dtype=dtype)
    want = act.derivative(None, a)
    want *= g
    assert_equal(act.vjp(None, a, g), want)


def test_sigmoid_subclass_vjp_uses_its_own_derivative(xp):
    class Doubled(type(get_activation("sigmoid"))):
        def derivative(self, z, a):
            d = super().derivative(z, a)
            d *= 2
            return d

    a = xp.asarray([[0.2, 0.5], [0.9, 0.1]])
    g = xp.asarray([[1.0, -2.0], [0.5, 3.0]])
    assert_allclose(Doubled().vjp(None, a, g), 2 * (1 - a) * a * g, rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_no_overflow_warning(xp, dtype):
    z = xp.asarray([-1e4, -800.0, -100.0, 0.0, 100.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = get_activation("sigmoid")(z)
    an = bnp.asnumpy(a)
    assert an[0] == 0.0 and an[-1] == 1.0 and an[3] == 0.5
    assert np.all(np.isfinite(an))


def test_unknown_activation_and_loss_names():
    with pytest.raises(ValueError, match="known activations: .*sigmoid"):
        get_activation("swishy")
    with pytest.raises(ValueError, match="known losses: .*mse"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="known activations"):
        MLP([3, 2], activation="nope")


def test_mse_matches_tutorial_definition(xp):
    out = Generator(3).normal(0, 1, (5, 3), dtype="float64")
    t = Generator(4).normal(0, 1, (5, 3), dtype="float64")
    on, tn = bnp.asnumpy(out), bnp.asnumpy(t)
    # the tutorial: mean over the batch of the sum over outputs, no factor 1/2
    want = np.mean(np.sum((tn - on) ** 2, axis=1))
    loss = MSELoss()
    assert abs(bnp.to_scalar(loss(out, t)) - want) < 1e-12
    assert_allclose(loss.grad(out, t), 2 * (on - tn) / 5, rtol=1e-12)


def test_losses_gradcheck_and_labels(xp):
    out = Generator(3).normal(0, 3, (5, 4), dtype="float64")
    labels = xp.asarray([0, 3, 1, 2, 3])
    for loss in (MSELoss(), CrossEntropyLoss()):
        num = numerical_gradient(lambda: loss(out, labels), out)
        assert relative_error(loss.grad(out, labels), num) < 1e-7
    onehot = xp.zeros((5, 4), dtype="float64")
    onehot[xp.arange(5), labels] = 1
    ce = CrossEntropyLoss()
    assert_allclose(ce(out, labels), ce(out, onehot), rtol=1e-12)
    # stable: huge logits give a finite loss
    big = out * 1e4
    assert np.isfinite(bnp.to_scalar(ce(big, labels)))


def test_loss_target_errors(xp):
    out = xp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*from 0 to 3"):
        CrossEntropyLoss()(out, xp.asarray([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        MSELoss()(out, xp.asarray([0, -1, 2, 1]))
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        MSELoss()(out, xp.zeros((4, 2)))
    with pytest.raises(ValueError, match="4 samples"):
        MSELoss()(out, xp.asarray([0, 1]))
    bad = xp.zeros((4, 3))
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 NaN"):
        MSELoss()(out, bad)


def test_fused_softmax_cross_entropy_delta(xp):
    z = Generator(3).normal(0, 1, (5, 4), dtype="float64")
    sm = get_activation("softmax")
    t = xp.zeros((5, 4), dtype="float64")
    t[xp.arange(5), xp.asarray([0, 1, 2, 3, 0])] = 1
    a = sm(z)
    fused = output_delta(CrossEntropyLoss(), sm, z, a, t)
    assert_allclose(fused, (a - t) / 5, rtol=1e-12)
    # the generic path (softmax vjp of the MSE gradient) still works
    generic = output_delta(MSELoss(), sm, z, a, t)
    assert_allclose(generic, sm.vjp(z, a, MSELoss().grad(a, t)), rtol=1e-12)


@pytest.mark.parametrize("name", ["normal", "uniform", "xavier_uniform", "xavier_normal",
                                  "he_normal", "he_uniform", "zeros"])
def test_initializers_statistics(xp, name):
    shape = (200, 300)
    fn = init.get_initializer(name)
    w = fn(shape, rng=0, dtype="float64") if name != "normal" and name != "uniform" \
        else fn(shape, scale=0.2, rng=0, dtype="float64")
    assert tuple(w.shape) == shape and bnp.get_array_module(w) is xp
    std = float(np.std(bnp.asnumpy(w)))
    want = {"normal": 0.2, "uniform": 0.2 / np.sqrt(3), "xavier_uniform": np.sqrt(2 / 500),
            "xavier_normal": np.sqrt(2 / 500), "he_normal": np.sqrt(2 / 300),
            "he_uniform": np.sqrt(2 / 300), "zeros": 0.0}[name]
    assert abs(std - want) <= 0.03 * want + 1e-12
    again = fn(shape, rng=0, dtype="float64") if name not in ("normal", "uniform") \
        else fn(shape, scale=0.2, rng=0, dtype="float64")
    assert_equal(w, again)
    with pytest.raises(ValueError, match="unknown initialiser"):
        init.get_initializer("orthogonalish")


def test_dense_forward_backward(xp):
    layer = Dense(5, 3, rng=0, dtype="float64", bias_init="normal")
    x = _x(xp)
    z = layer.forward(x)
    assert_allclose(z, bnp.asnumpy(x) @ bnp.asnumpy(layer.W).T + bnp.asnumpy(layer.b), rtol=1e-12)
    delta = Generator(9).normal(0, 1, (6, 3), dtype="float64")
    grads, d_in = layer.backward(x, delta)
    assert_allclose(grads["W"], bnp.asnumpy(delta).T @ bnp.asnumpy(x), rtol=1e-12)
    assert_allclose(grads["b"], bnp.asnumpy(delta).sum(0), rtol=1e-12)
    assert_allclose(d_in, bnp.asnumpy(delta) @ bnp.asnumpy(layer.W), rtol=1e-12)
    assert set(layer.params()) == {"W", "b"}
    nb = Dense(5, 3, bias=False, rng=0)
    assert nb.b is None and set(nb.params()) == {"W"} and nb.n_params == 15
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 5\)"):
        layer.forward(xp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"delta must have shape \(6, 3\)"):
        layer.backward(x, xp.zeros((6, 2)))
    for bad, err, msg in ((xp.zeros((2, 5), dtype="int64"), TypeError, "int64 where floats"),
                          (xp.zeros((2, 5), dtype="complex128"), TypeError, "complex"),
                          (xp.zeros(5), ValueError, r"got \(5,\)"),
                          (xp.zeros((2, 5, 1)), ValueError, r"got \(2, 5, 1\)"),
                          ([[0.0] * 5], TypeError, "not numeric")):
        for call in (lambda: layer.forward(bad), lambda: layer.backward(bad, delta[:2])):
            with pytest.raises(err, match=msg):
                call()


@pytest.mark.parametrize("sizes", [[5, 3], [5, 4, 3], [5, 4, 4, 3], [5, 4, 3, 4, 3]])
@pytest.mark.parametrize("bias", [True, False])
def test_mlp_forward_and_cache(xp, sizes, bias):
    net = MLP(sizes, activation="tanh", output_activation="sigmoid", bias=bias, rng=0,
              dtype="float64")
    assert len(net.layers) == len(sizes) - 1 == len(net.activations)
    want = [(o, i) for i, o in zip(sizes, sizes[1:])]
    assert [tuple(layer.W.shape) for layer in net.layers] == want
    x = _x(xp)
    out = net.forward(x)
    cache = net.forward_cache(x)
    assert_allclose(out, cache.post[-1], rtol=1e-12)
    a = bnp.asnumpy(x)
    for l, layer in enumerate(net.layers):
        assert_allclose(cache.inputs[l], a, rtol=1e-12)
        z = a @ bnp.asnumpy(layer.W).T + (0 if layer.b is None else bnp.asnumpy(layer.b))
        assert_allclose(cache.pre[l], z, rtol=1e-12)
        a = np.tanh(z) if l < len(net.layers) - 1 else 1 / (1 + np.exp(-z))
        assert_allclose(cache.post[l], a, rtol=1e-10)
    assert net.n_params == sum(i * o + (o if bias else 0) for i, o in zip(sizes, sizes[1:]))


def test_mlp_same_seed_same_weights_and_copy(xp):
    a, b = MLP([5, 4, 3], rng=7), MLP([5, 4, 3], rng=7)
    for la, lb in zip(a.layers, b.layers):
        assert_equal(la.W, lb.W)
    c = a.copy()
    c.layers[0].W[...] = 0
    assert bnp.to_scalar(xp.abs(a.layers[0].W).sum()) > 0
    cfg = a.get_config()
    assert cfg["sizes"] == [5, 4, 3]
    d = MLP.from_config(cfg, rng=7)
    assert_equal(d.layers[1].W, a.layers[1].W)
    st = a.state_dict()
    W0 = b.layers[0].W
    b.layers[0].W[...] = 0
    b.load_state_dict(st)
    assert b.layers[0].W is W0
    assert_equal(b.layers[0].W, a.layers[0].W)


def test_mlp_input_errors(xp):
    net = MLP([5, 4, 3], rng=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 5\).*got \(2, 4\)"):
        net.forward(xp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"flatten"):
        net.forward(xp.zeros((2, 5, 1)))
    x = xp.zeros((3, 5))
    x[0, 1] = float("nan")
    x[2, 2] = float("inf")
    with pytest.raises(ValueError, match="1 NaN, 1 Inf"):
        net.forward(x)
    with pytest.raises(TypeError, match="bionp.asarray"):
        net.forward([[0.0] * 5])


def test_mlp_mixed_backend_error():
    with bnp.backend("strict"):
        net = MLP([5, 4, 3], rng=0)
    with pytest.raises(bnp.MixedBackendError, match="x is a numpy array"):
        net.forward(np.zeros((2, 5), dtype=np.float32))


def test_mlp_casts_input_to_its_dtype(xp):
    net = MLP([5, 4, 3], rng=0, dtype="float32")
    out = net.forward(_x(xp, dtype="float64"))
    assert out.dtype == np.float32


def test_output_loss_prepared_path_respects_subclasses_and_raw_targets(xp):
    from bionp.nn.losses import MSELoss, output_delta, output_loss

    class HalfMSE(MSELoss):
        def per_sample(self, out, target):
            return super().per_sample(out, target) * 0.5

    a = Generator(0).uniform(size=(4, 3), dtype="float64")
    t = bnp.data.one_hot(xp.asarray(np.array([0, 2, 1, 1])), 3).astype("float64")
    act = get_activation("sigmoid")
    full = output_loss(MSELoss(), act, a, a, t)
    assert_allclose(output_loss(HalfMSE(), act, a, a, t), 0.5 * bnp.to_scalar(full), rtol=1e-12)
    labels = xp.asarray(np.array([0, 2, 1, 1]))  # not prepared: validated and one-hot encoded
    assert_allclose(output_loss(MSELoss(), act, a, a, labels), bnp.to_scalar(full), rtol=1e-12)
    assert_allclose(output_delta(MSELoss(), act, a, a, labels),
                    output_delta(MSELoss(), act, a, a, t), rtol=1e-12)


def test_cross_entropy_prepared_path_matches_public_and_respects_subclasses(xp):
    """Cross-entropy on logits (identity output): the training path's prepared target gives
    the public per_sample/grad numbers, a subclass's own loss is used, raw labels still work."""
    from bionp.nn.losses import CrossEntropyLoss, output_delta, output_loss

    class DoubleCE(CrossEntropyLoss):
        def grad(self, out, target):
            return super().grad(out, target) * 2.0

    z = Generator(1).normal(0, 2, (5, 4), dtype="float64")
    labels = xp.asarray(np.array([0, 3, 1, 1, 2]))
    t = bnp.data.one_hot(labels, 4).astype("float64")
    ident = get_activation("identity")
    ce = CrossEntropyLoss()
    assert_allclose(output_loss(ce, ident, z, z, t), bnp.to_scalar(ce(z, labels)), rtol=1e-12)
    assert_allclose(output_delta(ce, ident, z, z, t), ce.grad(z, labels), rtol=1e-12)
    assert_allclose(output_delta(DoubleCE(), ident, z, z, t), 2.0 * ce.grad(z, labels),
                    rtol=1e-12)
    assert_allclose(output_delta(ce, ident, z, z, labels), ce.grad(z, t), rtol=1e-12)
