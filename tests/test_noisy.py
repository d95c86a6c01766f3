"""Noisy-weight layers: the noise itself, hand-derived gradients (float64 gradchecks with the
noise draw held fixed), evaluation noise, buffers, state and bad input."""

import math

import numpy as np
import pytest

import bionp as bnp
from bionp.nn import Dense, LearnableNoiseDense, NoisyDense, NoisyWeights
from bionp.nn.noisy import NoiseCache, check_sigma_bounds, noisy_weight
from bionp.random import Generator

TOL = 1e-6


def rel(a, b):
    a, b = bnp.asnumpy(a).astype(np.float64), bnp.asnumpy(b).astype(np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _data(xp, n=7, n_in=5, n_out=4, seed=3):
    g = Generator(seed)
    x = g.normal(0, 1, (n, n_in), dtype=np.float64)
    R = g.normal(0, 1, (n, n_out), dtype=np.float64)
    return x, R


def _loss(z, R):
    """A nonlinear loss of the output: sum(tanh(z) * R); dL/dz = (1 - tanh²) R."""
    xp = bnp.get_array_module(z)
    return float(bnp.to_scalar(xp.sum(xp.tanh(z) * R)))


def _dloss(z, R):
    xp = bnp.get_array_module(z)
    t = xp.tanh(z)
    return (1 - t * t) * R


def _fixed_eps_loss(layer, x, R, state):
    """Loss of a training forward pass with the generator rewound: the same ε every call."""
    def f(params=None, xx=None):
        layer.rng.set_state(state)
        z, _ = layer.forward_cache(x if xx is None else xx, params=params)
        return _loss(z, R)
    return f


def _fd_param(f, layer, key, h=1e-5):
    p = layer.params()[key]
    xp = bnp.get_array_module(p)
    base = bnp.asnumpy(p).astype(np.float64)
    g = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        for sign in (1, -1):
            q = base.copy()
            q[i] += sign * h
            g[i] += sign * f({key: bnp.asarray(q, xp=xp)})
    return g / (2 * h)


def _analytic(layer, x, R, state):
    layer.rng.set_state(state)
    z, cache = layer.forward_cache(x)
    return layer.backward(x, _dloss(z, R), cache=cache)


def _layers(kind, mode, rng=0):
    if kind == "fixed":
        return NoisyDense(5, 4, sigma=0.3, mode=mode, rng=rng, dtype="float64")
    if kind == "wrapper":
        return NoisyWeights(Dense(5, 4, rng=rng, dtype="float64"), sigma=0.3, mode=mode, rng=rng + 1)
    per_weight = kind == "per_weight"
    layer = LearnableNoiseDense(5, 4, per_weight=per_weight, mode=mode, rng=rng, dtype="float64",
                                sigma_bounds=(1e-3, 0.5))
    xp = bnp.get_array_module(layer.W)
    # σ inside the clamp range, different per weight
    s = Generator(9).uniform(2 * math.log(0.02), 2 * math.log(0.4), layer.log_var.shape,
                             dtype=np.float64)
    layer.log_var[...] = s
    return layer


@pytest.mark.parametrize("kind", ["fixed", "wrapper", "per_layer", "per_weight"])
@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_gradcheck_inside(xp, kind, mode):
    layer = _layers(kind, mode)
    x, R = _data(xp)
    state = layer.rng.get_state()
    grads, d_in = _analytic(layer, x, R, state)
    assert set(grads) == set(layer.params())
    f = _fixed_eps_loss(layer, x, R, state)
    for key in layer.params():
        fd = _fd_param(f, layer, key)
        assert rel(grads[key], fd) <= TOL, (key, rel(grads[key], fd))
    # input delta: through W_eff
    xb = bnp.asnumpy(x)
    fd_x = np.zeros_like(xb)
    h = 1e-5
    for i in np.ndindex(xb.shape):
        for sign in (1, -1):
            q = xb.copy()
            q[i] += sign * h
            fd_x[i] += sign * f(xx=bnp.asarray(q))
    assert rel(d_in, fd_x / (2 * h)) <= TOL


@pytest.mark.parametrize("per_weight", [False, True])
@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_log_var_gradient_formula(cpu_xp, per_weight, mode):
    """∂L/∂(log σ²) = ½ σ Σ ε ⊙ G (additive), ½ σ Σ W ⊙ ε ⊙ G (multiplicative)."""
    layer = _layers("per_weight" if per_weight else "per_layer", mode)
    x, R = _data(cpu_xp)
    z, cache = layer.forward_cache(x)
    grads, _ = layer.backward(x, _dloss(z, R), cache=cache)
    G = bnp.asnumpy(_dloss(z, R)).T @ bnp.asnumpy(x)
    eps, W = bnp.asnumpy(cache.eps), bnp.asnumpy(layer.W)
    sigma = bnp.asnumpy(layer.sigma)
    term = eps * G * (W if mode == "multiplicative" else 1)
    want = 0.5 * sigma * (term if per_weight else term.sum())
    assert rel(grads["log_var"], want.reshape(layer.log_var.shape)) <= 1e-12


def _edge_layer(per_weight, edge, mode="additive"):
    layer = LearnableNoiseDense(5, 4, per_weight=per_weight, mode=mode, rng=0, dtype="float64",
                                sigma_bounds=(0.01, 0.5))
    layer.log_var[...] = layer._s_lo if edge == "lo" else layer._s_hi
    return layer


def _one_sided(f, layer, i, direction, h=1e-5):
    """Second-order one-sided difference of f along log_var[i] (direction +1 or -1)."""
    xp = bnp.get_array_module(layer.log_var)
    base = bnp.asnumpy(layer.log_var).astype(np.float64)

    def at(k):
        q = base.copy()
        q[i] += direction * k * h
        return f({"log_var": bnp.asarray(q, xp=xp)})

    return direction * (-3 * at(0) + 4 * at(1) - at(2)) / (2 * h)


@pytest.mark.parametrize("per_weight", [False, True])
@pytest.mark.parametrize("edge", ["lo", "hi"])
@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_gradcheck_at_clamp_edges(xp, per_weight, edge, mode):
    """At the edge the gradient is the one-sided derivative from inside the range; from
    outside the one-sided derivative is 0 (the clamp is flat there)."""
    layer = _edge_layer(per_weight, edge, mode)
    x, R = _data(xp)
    state = layer.rng.get_state()
    grads, _ = _analytic(layer, x, R, state)
    f = _fixed_eps_loss(layer, x, R, state)
    inward = +1 if edge == "lo" else -1
    g = bnp.asnumpy(grads["log_var"])
    inside = np.zeros(g.shape)
    outside = np.zeros(g.shape)
    for i in np.ndindex(g.shape):
        inside[i] = _one_sided(f, layer, i, inward)
        outside[i] = _one_sided(f, layer, i, -inward)
    assert rel(g, inside) <= TOL
    assert np.max(np.abs(g)) > 0  # the inside derivative is not the trivial one
    # flat outside: zero up to the rounding of the loss (1 ulp / h)
    assert np.max(np.abs(outside)) <= 1e-8 * np.max(np.abs(g))
    # W's gradient at the edge is still exact
    fd = _fd_param(f, layer, "W")
    assert rel(grads["W"], fd) <= TOL


@pytest.mark.parametrize("per_weight", [False, True])
def test_log_var_gradient_zero_outside_clamp(cpu_xp, per_weight):
    layer = _edge_layer(per_weight, "hi")
    layer.log_var[...] = layer._s_hi + 0.5
    x, R = _data(cpu_xp)
    z, cache = layer.forward_cache(x)
    grads, _ = layer.backward(x, _dloss(z, R), cache=cache)
    assert np.all(bnp.asnumpy(grads["log_var"]) == 0)
    assert np.allclose(bnp.asnumpy(layer.sigma), 0.5)
    layer.log_var[...] = layer._s_lo - 3.0
    assert np.allclose(bnp.asnumpy(layer.sigma), 0.01)


@pytest.mark.parametrize("per_weight", [False, True])
def test_regulariser_gradcheck(cpu_xp, per_weight):
    """With sigma_reg the log_var gradient is that of L + R, R = -λ mean(log σ)."""
    layer = _layers("per_weight" if per_weight else "per_layer", "additive")
    layer.sigma_reg = 0.7
    x, R = _data(cpu_xp)
    state = layer.rng.get_state()
    grads, _ = _analytic(layer, x, R, state)
    f = _fixed_eps_loss(layer, x, R, state)

    def total(params=None, xx=None):
        return f(params, xx) + float(bnp.to_scalar(layer.regularization(params)))

    fd = _fd_param(total, layer, "log_var")
    assert rel(grads["log_var"], fd) <= TOL
    s = bnp.asnumpy(layer.log_var)
    assert math.isclose(float(bnp.to_scalar(layer.regularization())),
                        -0.7 * float(np.mean(0.5 * s)), rel_tol=1e-12)


def test_sigma_is_clamped_exp_half_log_var(cpu_xp):
    layer = LearnableNoiseDense(3, 2, rng=0)
    assert layer.log_var.shape == (1,)
    assert layer.log_var.dtype == np.float32
    assert math.isclose(layer.sigma_values()[0], math.exp(-3.0), rel_tol=1e-6)
    assert set(layer.params()) == {"W", "b", "log_var"}
    pw = LearnableNoiseDense(3, 2, per_weight=True, rng=0)
    assert pw.log_var.shape == (2, 3)


# -- the noise --------------------------------------------------------------------------------

def test_noisy_weight_modes(cpu_xp):
    g = Generator(1)
    W = g.normal(0, 1, (3, 4), dtype=np.float64)
    e = g.normal(0, 1, (3, 4), dtype=np.float64)
    np.testing.assert_array_equal(bnp.asnumpy(noisy_weight(W, e, 0.2, "additive")),
                                  bnp.asnumpy(W) + 0.2 * bnp.asnumpy(e))
    np.testing.assert_allclose(bnp.asnumpy(noisy_weight(W, e, 0.2, "multiplicative")),
                               bnp.asnumpy(W) * (1 + 0.2 * bnp.asnumpy(e)), rtol=1e-15)


def test_fresh_noise_every_training_pass_and_cache_holds_it(xp):
    layer = NoisyDense(20, 30, sigma=0.1, rng=4)
    x = Generator(0).normal(0, 1, (8, 20))
    z1, c1 = layer.forward_cache(x)
    e1 = c1.eps.copy()
    np.testing.assert_array_equal(bnp.asnumpy(c1.W_eff),
                                  bnp.asnumpy(layer.W) + np.float32(0.1) * bnp.asnumpy(e1))
    np.testing.assert_allclose(bnp.asnumpy(z1),
                               bnp.asnumpy(x) @ bnp.asnumpy(c1.W_eff).T + bnp.asnumpy(layer.b),
                               rtol=1e-5, atol=1e-6)
    _, c2 = layer.forward_cache(x)
    assert not np.array_equal(bnp.asnumpy(e1), bnp.asnumpy(c2.eps))
    # the draws are standard normal: 600 per pass
    e = np.concatenate([bnp.asnumpy(layer.forward_cache(x)[1].eps).ravel() for _ in range(20)])
    assert abs(e.mean()) < 4 / math.sqrt(e.size)
    assert abs(e.std() - 1) < 4 / math.sqrt(2 * e.size)


def test_backward_uses_the_forward_passes_noise(cpu_xp):
    layer = NoisyDense(6, 5, sigma=0.5, rng=2, dtype="float64")
    x, R = _data(cpu_xp, n_in=6, n_out=5)
    z, cache = layer.forward_cache(x)
    _, d_in = layer.backward(x, R, cache=cache)
    np.testing.assert_allclose(bnp.asnumpy(d_in), bnp.asnumpy(R) @ bnp.asnumpy(cache.W_eff),
                               rtol=1e-14)
    assert not np.allclose(bnp.asnumpy(d_in), bnp.asnumpy(R) @ bnp.asnumpy(layer.W))
    # FA/KP: the feedback matrix replaces W_eff
    B = Generator(5).normal(0, 1, (5, 6), dtype=np.float64)
    _, d_fb = layer.backward(x, R, cache=cache, feedback=B)
    np.testing.assert_allclose(bnp.asnumpy(d_fb), bnp.asnumpy(R) @ bnp.asnumpy(B), rtol=1e-14)


def test_stale_or_missing_cache_is_an_error(cpu_xp):
    layer = NoisyDense(4, 3, sigma=0.1, rng=0)
    x = Generator(0).normal(0, 1, (2, 4))
    _, c1 = layer.forward_cache(x)
    layer.forward_cache(x)
    with pytest.raises(RuntimeError, match="earlier forward pass"):
        layer.backward(x, Generator(1).normal(0, 1, (2, 3)), cache=c1)
    with pytest.raises(ValueError, match="needs the cache"):
        layer.backward(x, Generator(1).normal(0, 1, (2, 3)), cache=None)


def test_evaluation_noise_off_by_default_on_when_asked(xp):
    layer = NoisyDense(10, 6, sigma=0.2, rng=1)
    x = Generator(0).normal(0, 1, (5, 10))
    clean = bnp.asnumpy(x) @ bnp.asnumpy(layer.W).T
    a, b = bnp.asnumpy(layer.forward(x)), bnp.asnumpy(layer.forward(x))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, clean, rtol=1e-5, atol=1e-6)
    layer.eval_noise = True
    c, d = bnp.asnumpy(layer.forward(x)), bnp.asnumpy(layer.forward(x))
    assert not np.allclose(c, d)
    assert not np.allclose(c, clean)
    layer.eval_noise = 0.0
    np.testing.assert_array_equal(bnp.asnumpy(layer.forward(x)), a)
    layer.eval_noise = False
    assert layer.eval_noise is None


def test_learnable_eval_noise_uses_learned_sigma(cpu_xp):
    layer = LearnableNoiseDense(50, 40, log_var_init=2 * math.log(0.05), eval_noise=True, rng=0,
                                bias=False, dtype="float64")
    x = bnp.asarray(np.eye(50))
    out = bnp.asnumpy(layer.forward(x)).T - bnp.asnumpy(layer.W)  # = σ ε
    assert abs(out.std() / 0.05 - 1) < 0.05


def test_noise_generators_are_independent_and_reproducible(cpu_xp):
    a, b = NoisyDense(4, 3, rng=7), NoisyDense(4, 3, rng=7)
    np.testing.assert_array_equal(bnp.asnumpy(a.W), bnp.asnumpy(b.W))
    x = Generator(0).normal(0, 1, (2, 4))
    np.testing.assert_array_equal(bnp.asnumpy(a.forward_cache(x)[1].eps),
                                  bnp.asnumpy(b.forward_cache(x)[1].eps))
    # the noise stream is not the initialisation stream
    c = NoisyDense(4, 3, rng=8)
    assert not np.array_equal(bnp.asnumpy(c.forward_cache(x)[1].eps), bnp.asnumpy(c.W))


def test_state_dict_round_trip_restores_the_noise(cpu_xp):
    layer = LearnableNoiseDense(4, 3, rng=0)
    x = Generator(0).normal(0, 1, (2, 4))
    layer.forward_cache(x)
    state = layer.state_dict()
    e1 = bnp.asnumpy(layer.forward_cache(x)[1].eps).copy()
    other = LearnableNoiseDense(4, 3, rng=99)
    other.load_state_dict(state)
    np.testing.assert_array_equal(bnp.asnumpy(other.forward_cache(x)[1].eps), e1)
    with pytest.raises(ValueError, match="rng"):
        other.load_state_dict({})


def test_params_are_the_arrays_themselves(cpu_xp):
    layer = LearnableNoiseDense(4, 3, rng=0)
    p = layer.params()
    assert p["W"] is layer.W and p["b"] is layer.b and p["log_var"] is layer.log_var
    assert layer.n_params == 4 * 3 + 3 + 1
    inner = Dense(4, 3, rng=0)
    wrapped = NoisyWeights(inner, sigma=0.1, rng=1)
    assert wrapped.params()["W"] is inner.W
    assert wrapped.in_features == 4 and wrapped.out_features == 3


def test_zero_sigma_is_the_plain_layer(cpu_xp):
    layer = NoisyDense(6, 5, sigma=0.0, rng=3)
    x = Generator(0).normal(0, 1, (4, 6))
    z, cache = layer.forward_cache(x)
    np.testing.assert_array_equal(bnp.asnumpy(z), bnp.asnumpy(layer.forward(x)))


# -- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf")])
def test_bad_sigma(cpu_xp, sigma):
    with pytest.raises(ValueError, match="sigma"):
        NoisyDense(3, 2, sigma=sigma)
    layer = NoisyDense(3, 2)
    with pytest.raises(ValueError, match="sigma"):
        layer.sigma = sigma
    with pytest.raises(ValueError, match="eval_noise"):
        NoisyDense(3, 2, eval_noise=sigma)
    with pytest.raises(ValueError, match="sigma_reg"):
        LearnableNoiseDense(3, 2, sigma_reg=sigma)


def test_bad_sigma_type(cpu_xp):
    with pytest.raises(TypeError, match="sigma"):
        NoisyDense(3, 2, sigma="0.1")


def test_reversed_or_bad_clamp_bounds(cpu_xp):
    with pytest.raises(ValueError, match="reversed"):
        LearnableNoiseDense(3, 2, sigma_bounds=(0.1, 1e-6))
    with pytest.raises(ValueError, match="min < max"):
        check_sigma_bounds((0.1, 0.1))
    with pytest.raises(ValueError, match="> 0"):
        check_sigma_bounds((0.0, 0.1))
    with pytest.raises(ValueError, match="finite"):
        check_sigma_bounds((1e-6, float("inf")))
    with pytest.raises(TypeError, match="pair"):
        check_sigma_bounds(0.1)
    with pytest.raises(ValueError, match="log_var_init"):
        LearnableNoiseDense(3, 2, log_var_init=float("nan"))


def test_unknown_noise_mode(cpu_xp):
    with pytest.raises(ValueError, match="noise mode must be one of"):
        NoisyDense(3, 2, mode="gaussian")
    with pytest.raises(ValueError, match="noise mode must be one of"):
        NoisyWeights(Dense(3, 2), mode="mult")


def test_wrapper_needs_a_weight_matrix(cpu_xp):
    class NoW:
        def params(self):
            return {"w": bnp.get_xp().zeros(3)}
    with pytest.raises(TypeError, match="2-D weight matrix"):
        NoisyWeights(NoW())


def test_unknown_param_override(cpu_xp):
    layer = NoisyDense(3, 2, rng=0)
    with pytest.raises(ValueError, match="unknown parameter"):
        layer.forward(Generator(0).normal(0, 1, (1, 3)), params={"V": layer.W})


def test_learnable_sigma_is_not_settable(cpu_xp):
    layer = LearnableNoiseDense(3, 2, rng=0)
    with pytest.raises(AttributeError, match="log_var"):
        layer.sigma = 0.05


class _BufferedGenerator(Generator):
    """A generator whose normal() can draw into a buffer (the ``out=`` API)."""

    def normal(self, loc=0.0, scale=1.0, size=None, *, dtype=None, xp=None, out=None):
        z = super().normal(loc, scale, size, dtype=dtype, xp=xp)
        if out is None:
            return z
        out[...] = z
        return out


def test_draws_into_a_buffer_when_the_generator_can(cpu_xp):
    layer = NoisyDense(4, 3, sigma=0.1, noise_rng=_BufferedGenerator(1), rng=0)
    plain = NoisyDense(4, 3, sigma=0.1, noise_rng=Generator(1), rng=0)
    x = Generator(0).normal(0, 1, (2, 4))
    _, c1 = layer.forward_cache(x)
    _, p1 = plain.forward_cache(x)
    np.testing.assert_array_equal(bnp.asnumpy(c1.eps), bnp.asnumpy(p1.eps))  # same numbers
    _, c2 = layer.forward_cache(x)
    assert c2.eps is c1.eps  # one preallocated buffer
    _, p2 = plain.forward_cache(x)
    assert p2.eps is not p1.eps
    with pytest.raises(RuntimeError, match="earlier forward pass"):
        layer.backward(x, Generator(1).normal(0, 1, (2, 3)), cache=c1)
    # an evaluation draw never touches the training buffer
    layer.eval_noise = True
    layer.forward(x)
    np.testing.assert_array_equal(bnp.asnumpy(c2.eps), bnp.asnumpy(p2.eps))
