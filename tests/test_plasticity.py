"""bionp.plasticity: the gradient transforms and weight operations, statistically and exactly."""

import math

import numpy as np
import pytest
import scipy.stats

import bionp as bnp
from bionp import plasticity as bio
from bionp.testing import assert_equal, numerical_gradient


def _params(xp, shapes=((500, 784), (10, 500)), seed=0, scale=0.1, dtype=np.float32):
    g = bnp.random.Generator(seed)
    return [{"W": g.normal(0, scale, s, dtype=dtype), "b": g.normal(0, scale, s[:1], dtype=dtype)}
            for s in shapes]


def _ones_like(params):
    return [{k: bnp.get_array_module(v).ones_like(v) for k, v in p.items()} for p in params]


# -- fuzzy learning rates ------------------------------------------------------------------
def test_fuzzy_factors_uniform_in_range_and_fixed(xp):
    nu = 0.16
    params = _params(xp)
    tx = bio.fuzzy_learning_rates(nu, rng=3)
    g1 = tx.update(params, _ones_like(params))
    g2 = tx.update(params, _ones_like(params))
    f = bnp.asnumpy(g1[0]["W"]).astype(np.float64).ravel()
    assert f.size == 392_000
    assert f.min() >= 1 - nu and f.max() <= 1 + nu
    ks = scipy.stats.kstest(f, "uniform", args=(1 - nu, 2 * nu))
    assert ks.pvalue > 0.01, ks
    assert abs(f.mean() - 1.0) < 3 * (2 * nu / math.sqrt(12)) / math.sqrt(f.size)
    assert_equal(g1[0]["W"], g2[0]["W"])          # fixed across steps
    assert_equal(g1[0]["W"], tx.factors(0))
    assert_equal(g1[0]["b"], xp.ones(500, dtype=xp.float32))   # biases untouched by default


def test_fuzzy_multiplies_the_gradient_and_is_seeded(xp):
    params = _params(xp, shapes=((30, 20),))
    g = bnp.random.Generator(9).normal(0, 1, (30, 20), dtype=np.float32)
    a = bio.fuzzy_learning_rates(0.3, rng=4).update(params, [{"W": g.copy(), "b": params[0]["b"] * 0}])
    b = bio.fuzzy_learning_rates(0.3, rng=4)
    b.init(params)
    assert_equal(a[0]["W"], g * b.factors(0))


def test_fuzzy_keys_include_biases(xp):
    params = _params(xp, shapes=((30, 20),))
    out = bio.fuzzy_learning_rates(0.5, keys=("W", "b"), rng=0).update(params, _ones_like(params))
    assert float(bnp.to_scalar(xp.max(xp.abs(out[0]["b"] - 1)))) > 0


@pytest.mark.parametrize("nu", [1.0, 1.5, -0.01, float("nan"), True])
def test_fuzzy_bad_nu(nu):
    with pytest.raises(ValueError, match=r"nu .*\[0, 1\)"):
        bio.fuzzy_learning_rates(nu)


# -- volume-dependent learning rates -------------------------------------------------------------
@pytest.mark.parametrize("relative", [False, True])
def test_volume_rates_match_mu_in_mean(xp, relative):
    base_lr, stab, var = 0.1, 2.0, 0.2
    g = bnp.random.Generator(11)
    w = g.uniform(-3.0, 3.0, (1000, 1000), dtype=np.float32)
    params = [{"W": w}]
    tx = bio.volume_dependent_lr(base_lr, stab, var, relative=relative, rng=12)
    r = bnp.asnumpy(tx.update(params, [{"W": xp.ones_like(w)}])[0]["W"]).astype(np.float64).ravel()
    wn = np.abs(bnp.asnumpy(w).astype(np.float64)).ravel()
    v = wn / (wn + 1)
    mu = (1.0 if relative else base_lr) * np.exp(-stab * v)
    assert r.size == 10 ** 6 and r.min() >= 0
    assert abs(r.mean() / mu.mean() - 1) < 0.02
    # per volume bin, in mean and spread
    bins = np.digitize(v, np.linspace(0, 0.75, 11)[1:-1])
    for k in range(10):
        sel = bins == k
        assert sel.sum() > 20_000
        assert abs(r[sel].mean() / mu[sel].mean() - 1) < 0.02, k
        ratio = r[sel] / mu[sel]
        assert abs(ratio.std() / var - 1) < 0.05, k
    # large synapses learn slower
    assert r[v > 0.7].mean() < 0.5 * r[v < 0.05].mean()


def test_volume_redraw_schedule(xp):
    w = bnp.random.Generator(1).normal(0, 0.3, (40, 30), dtype=np.float32)
    params = [{"W": w}]
    tx = bio.volume_dependent_lr(redraw_every=3, rng=2)
    outs = [tx.update(params, [{"W": xp.ones_like(w)}])[0]["W"] for _ in range(4)]
    assert_equal(outs[0], outs[1])
    assert_equal(outs[1], outs[2])
    assert not np.array_equal(bnp.asnumpy(outs[2]), bnp.asnumpy(outs[3]))
    every = bio.volume_dependent_lr(rng=2)
    a = every.update(params, [{"W": xp.ones_like(w)}])[0]["W"]
    b = every.update(params, [{"W": xp.ones_like(w)}])[0]["W"]
    assert not np.array_equal(bnp.asnumpy(a), bnp.asnumpy(b))


@pytest.mark.parametrize("kw, match", [({"base_lr": -0.1}, "base_lr"), ({"base_lr": 0}, "base_lr"),
                                       ({"stability": -1}, "stability"),
                                       ({"lr_variability": -0.2}, "lr_variability"),
                                       ({"redraw_every": 0}, "redraw_every")])
def test_volume_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        bio.volume_dependent_lr(**kw)


# -- crystallisation --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_crystallization_mask_equals_definition(xp, dtype):
    theta = 4.5e-5
    g = bnp.random.Generator(21)
    w = g.normal(0, 0.1, (300, 400), dtype=dtype)
    # gradients around the threshold and some larger than mean|w|
    grad = w * g.uniform(0.0, 2 * theta, w.shape, dtype=dtype)
    grad[:5] = g.normal(0, 0.2, (5, 400), dtype=dtype)
    grad[5, :3] = 0
    w[6, :3] = 0
    m = bnp.asnumpy(bio.crystallization_mask(w, grad, theta))
    wn, gn = np.abs(bnp.asnumpy(w)), np.abs(bnp.asnumpy(grad))
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (gn / wn < dtype(theta)) | (gn > wn.mean())
    assert m.dtype == bool
    assert np.array_equal(m, direct)
    assert 0.3 < m[10:].mean() < 0.7           # the threshold splits the bulk
    assert m[:5].mean() > 0.2                  # large gradients selected


def test_crystallize_dampens_factors_and_gradients(xp):
    theta, d = 1e-2, 0.6
    g = bnp.random.Generator(22)
    w = g.normal(0, 0.1, (50, 40), dtype=np.float64)
    params = [{"W": w}]
    tx = bio.crystallize(theta, d, every=2)
    grads = [g.normal(0, 1e-3, w.shape, dtype=np.float64) for _ in range(3)]
    outs = [tx.update(params, [{"W": gg.copy()}])[0]["W"] for gg in grads]
    m0 = bnp.asnumpy(bio.crystallization_mask(w, grads[0], theta))
    c1 = np.where(m0, d, 1.0)
    assert_equal(outs[0], grads[0])                       # factors start at 1, dampen afterwards
    assert_equal(outs[1], grads[1] * xp.asarray(c1))      # step 1: no test (every=2)
    m2 = bnp.asnumpy(bio.crystallization_mask(w, grads[2] * xp.asarray(c1), theta))
    assert_equal(tx.state["factors"]["0.W"], xp.asarray(c1 * np.where(m2, d, 1.0)))
    assert tx.crystallized_fraction() == pytest.approx(np.mean(m0 | m2))


@pytest.mark.parametrize("kw, match", [({"threshold": -1e-5}, "threshold"), ({"threshold": 0}, "threshold"),
                                       ({"dampening": 1.0}, "dampening"), ({"dampening": -0.5}, "dampening"),
                                       ({"every": 0}, "every")])
def test_crystallize_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        bio.crystallize(**kw)


# -- rejuvenation --------------------------------------------------------------------------------------
def test_rejuvenation_frequency_matches_probability(xp):
    dre = 8.0
    g = bnp.random.Generator(31)
    w0 = g.uniform(-0.3, 0.3, (200, 500), dtype=np.float64)
    w0[0, 0] = 1.0                                        # M = 1 (replaced with prob ~1e-15)
    op = bio.rejuvenate_weights(dre, rng=32)
    w0h = bnp.asnumpy(w0)
    p = bio.replacement_probability(w0h, dre, 1.0)
    hits = np.zeros(w0h.shape)
    reps = 10
    for _ in range(reps):
        w = w0.copy()
        op.apply([{"W": w}])
        wh = bnp.asnumpy(w)
        changed = wh != w0h
        assert np.all(np.abs(wh[changed]) <= 1.0)
        assert op.last_replaced["0.W"] == changed.sum()
        hits += changed
    expected_total = p.sum() * reps
    assert abs(hits.sum() - expected_total) < 5 * math.sqrt(expected_total)
    bins = np.digitize(np.abs(w0h), [0.02, 0.05, 0.1, 0.15, 0.2])
    for k in range(6):
        sel = bins == k
        n, e = hits[sel].sum(), p[sel].sum() * reps
        assert abs(n - e) <= 5 * math.sqrt(max(e, 1.0)) + 1, (k, n, e)


def test_rejuvenation_new_weights_uniform_and_schedule(xp):
    g = bnp.random.Generator(33)
    w = g.uniform(-1e-4, 1e-4, (300, 300), dtype=np.float64)   # almost all replaced
    w[0, 0] = 0.5
    before = bnp.asnumpy(w).copy()
    op = bio.rejuvenate_weights(8.0, every=3, rng=34)
    op.after_update([{"W": w}])                                 # step 1: acts
    after = bnp.asnumpy(w)
    new = after[after != before]
    assert new.size > 0.99 * (w.size - 1)
    assert scipy.stats.kstest(new, "uniform", args=(-0.5, 1.0)).pvalue > 0.01
    snap = after.copy()
    op.after_update([{"W": w}])
    op.after_update([{"W": w}])
    assert np.array_equal(bnp.asnumpy(w), snap)                  # steps 2, 3: nothing
    op.after_update([{"W": w}])                                  # step 4: acts
    assert not np.array_equal(bnp.asnumpy(w), snap)


@pytest.mark.parametrize("dre", [0, -8.0])
def test_rejuvenation_bad_dre(dre):
    with pytest.raises(ValueError, match="dre"):
        bio.rejuvenate_weights(dre)


# -- Dale's principle ------------------------------------------------------------------------------------
def test_dalian_init_signs_per_column(xp):
    params = _params(xp, shapes=((50, 40), (3, 50)))
    mags = [bnp.asnumpy(xp.abs(p["W"])) for p in params]
    op = bio.dalian_init(params, rng=5)
    for l, p in enumerate(params):
        W = bnp.asnumpy(p["W"])
        s = bnp.asnumpy(op.signs(l))
        assert set(np.unique(s)) == {-1.0, 1.0}
        assert np.array_equal(np.abs(W), mags[l])
        assert np.all(W * s[None, :] >= 0)
        assert 0.2 < (s > 0).mean() < 0.8
    W = params[0]["W"]
    W -= 0.2                                               # push many across zero
    assert op.violations(params) > 0
    op.after_update(params)
    assert op.violations(params) == 0
    assert bio.sign_violations(params[0]["W"], op.state["signs"]["0.W"]) == 0


def test_dale_given_signs_and_errors(xp):
    params = _params(xp, shapes=((5, 4),))
    with pytest.raises(ValueError, match="one per input column"):
        bio.enforce_dales_principle(signs=[np.ones(5)]).init(params)
    with pytest.raises(ValueError, match=r"\+1 or -1"):
        bio.enforce_dales_principle(signs=[np.full(4, 0.5)]).init(params)
    with pytest.raises(ValueError, match="expected 1 arrays"):
        bio.enforce_dales_principle(signs=[np.ones(4), np.ones(4)]).init(params)
    with pytest.raises(ValueError, match=r"shape \(out, in\)"):
        bio.enforce_dales_principle(keys=("b",)).init(params)


# -- L1 and synaptic scaling ----------------------------------------------------------------------------
def test_l1_adds_subgradient_and_returns_penalty(xp):
    params = _params(xp, shapes=((20, 10), (3, 20)), dtype=np.float64)
    params[0]["W"][0, :2] = 0
    tx = bio.l1_reg(1e-2)
    out = tx.update(params, [{k: xp.zeros_like(v) for k, v in p.items()} for p in params])
    for p, o in zip(params, out):
        assert_equal(o["W"], 1e-2 * xp.sign(p["W"]))
        assert_equal(o["b"], xp.zeros_like(p["b"]))
    want = 1e-2 * sum(np.abs(bnp.asnumpy(p["W"])).sum() for p in params)
    assert float(bnp.to_scalar(tx.penalty(params))) == pytest.approx(want, rel=1e-12)
    assert float(bnp.to_scalar(bio.l1_penalty(params, 1e-2))) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="strength"):
        bio.l1_reg(-1.0)


def test_scale_grad_is_the_gradient_of_its_penalty(cpu_xp):
    xp = cpu_xp
    g = bnp.random.Generator(41)
    W = g.normal(0, 0.5, (4, 6), dtype=np.float64)
    params = [{"W": W}]
    tx = bio.scale_grad(0.7)
    tx.init(params)
    W *= g.uniform(0.5, 1.5, (4, 1), dtype=np.float64)      # move the norms off their set points
    added = tx.update(params, [{"W": xp.zeros_like(W)}])[0]["W"]
    num = numerical_gradient(lambda: tx.penalty(params), W)
    rel = np.max(np.abs(bnp.asnumpy(added - num))) / np.max(np.abs(bnp.asnumpy(num)))
    assert rel < 1e-6


def test_scale_grad_restores_input_norms_multiplicatively(xp):
    g = bnp.random.Generator(42)
    W = g.normal(0, 0.5, (8, 30), dtype=np.float64)
    params = [{"W": W}]
    tx = bio.scale_grad(1.0)
    tx.init(params)
    target = bnp.asnumpy(tx.state["target"]["0.W"])
    W *= xp.asarray(np.linspace(0.5, 2.0, 8)[:, None])
    direction = bnp.asnumpy(W) / np.linalg.norm(bnp.asnumpy(W), axis=1, keepdims=True)
    for _ in range(200):                                   # plain SGD on the homeostatic term alone
        W -= 0.1 * tx.update(params, [{"W": xp.zeros_like(W)}])[0]["W"]
    Wh = bnp.asnumpy(W)
    np.testing.assert_allclose(np.linalg.norm(Wh, axis=1), target, rtol=1e-6)
    np.testing.assert_allclose(Wh / np.linalg.norm(Wh, axis=1, keepdims=True), direction, rtol=1e-10)


def test_scale_grad_needs_matrices(xp):
    with pytest.raises(ValueError, match=r"shape \(out, in\)"):
        bio.scale_grad(keys=("b",)).init(_params(xp, shapes=((5, 4),)))


# -- shapes, chain, state ---------------------------------------------------------------------------------
def test_wrong_shapes_are_clear_errors(xp):
    params = _params(xp, shapes=((20, 10), (3, 20)))
    tx = bio.fuzzy_learning_rates(rng=0)
    tx.init(params)
    other = _params(xp, shapes=((10, 20), (3, 10)))
    with pytest.raises(ValueError, match=r"layer 0 'W' has shape \(10, 20\).*initialised for shape \(20, 10\)"):
        tx.update(other, _ones_like(other))
    bad = _ones_like(params)
    bad[1]["W"] = xp.ones((20, 3), dtype=xp.float32)
    with pytest.raises(ValueError, match=r"gradient of layer 1 'W' has shape \(20, 3\).*\(3, 20\)"):
        tx.update(params, bad)
    with pytest.raises(ValueError, match="list of 2 dicts"):
        tx.update(params, _ones_like(params)[:1])
    with pytest.raises(ValueError, match=r"layers \[5\] do not exist"):
        bio.fuzzy_learning_rates(layers=[5]).init(params)
    with pytest.raises(TypeError, match="chain"):
        bio.chain(bio.crystallize(), lambda n, g: g)


def test_chain_order_state_round_trip(xp):
    params = _params(xp, shapes=((20, 10), (3, 20)))
    def make():
        return bio.chain(bio.fuzzy_learning_rates(rng=1), bio.crystallize(1e-1, every=1),
                         bio.volume_dependent_lr(redraw_every=2, rng=2), bio.rejuvenate_weights(rng=3))
    a = make()
    grads = _ones_like(params)
    for _ in range(3):
        a.update(params, _ones_like(params))
    state = a.state_dict()
    b = make()
    b.load_state_dict(state)
    ga = a.update(params, _ones_like(params))
    gb = b.update(params, _ones_like(params))
    for x, y in zip(ga, gb):
        assert_equal(x["W"], y["W"])
    assert len(a) == 4 and a.find("crystallize") is a[1] and a.find("nothing") is None
    with pytest.raises(ValueError, match="chain state has 1 transforms"):
        b.load_state_dict({"transforms": state["transforms"][:1]})
    with pytest.raises(ValueError, match="not 'fuzzy_learning_rates'"):
        b[0].load_state_dict(state["transforms"][1])
    del grads


def test_transforms_compose_with_optax_style_calls(xp):
    """init/update by hand give the same gradients as the callable form used by the Trainer."""
    from bionp import nn, rules

    net = nn.MLP([6, 8, 3], activation="tanh", rng=0)
    x = bnp.random.Generator(1).normal(0, 1, (16, 6), dtype=np.float32)
    y = bnp.random.Generator(2).integers(0, 3, 16)
    loss = nn.CrossEntropyLoss()
    g1 = rules.Backprop().gradients(net, x, y, loss)
    g2 = rules.Backprop().gradients(net, x, y, loss)
    a = bio.fuzzy_learning_rates(rng=5)
    a.init(net.parameters())
    out1 = a.update(net.parameters(), g1)
    out2 = bio.fuzzy_learning_rates(rng=5)(net, g2)
    for p, q in zip(out1, out2):
        assert_equal(p["W"], q["W"])
        assert_equal(p["b"], q["b"])
