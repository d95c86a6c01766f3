"""The noisy layers' compiled kernels (bionp.backend_noisy) against their array code.

The kernels perform the array code of bionp.nn.noisy.functional in its order (no fused
multiply-add), so every comparison is bit for bit, float32 and float64, with the array
code (``BIONP_NUMBA=0``) as the definition; also through the layers' training steps.
"""

import numpy as np
import pytest

import bionp as bnp
from bionp import backend_dense, backend_noisy, nn, optim, rules
from bionp.nn.noisy import log_var_grad, noisy_weight, sigma_from_log_var

DTYPES = ["float32", "float64"]
SHAPE = (97, 131)  # 12,707 elements: above the kernels' minimum size, odd sizes
S_LO, S_HI = 2 * np.log(1e-6), 2 * np.log(0.1)


@pytest.fixture
def compiled(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("BIONP_NUMBA", "1")
    assert backend_noisy._noisy_kernels.load() is not None
    return monkeypatch


def _both(monkeypatch, fn):
    """``fn()`` with the kernels, then with the array code (BIONP_NUMBA=0)."""
    fast = fn()
    monkeypatch.setenv("BIONP_NUMBA", "0")
    plain = fn()
    monkeypatch.setenv("BIONP_NUMBA", "1")
    return fast, plain


def _arrays(dtype, seed=0):
    g = np.random.default_rng(seed)
    W, eps, G = (g.standard_normal(SHAPE).astype(dtype) for _ in range(3))
    s = g.uniform(S_LO - 3, S_HI + 3, SHAPE).astype(dtype)  # inside and outside the clamp
    s.reshape(-1)[:4] = [S_LO, S_HI, np.nan, np.inf]  # the closed edges, NaN, inf
    return W, eps, G, s


def _eq(a, b):
    np.testing.assert_array_equal(a, b)
    assert a.dtype == b.dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
@pytest.mark.parametrize("kind", ["number", "size1", "each"])
def test_noisy_weight_bits(compiled, dtype, mode, kind):
    W, eps, _, s = _arrays(dtype)
    sigma = {"number": 0.037, "size1": np.array([0.041], dtype),
             "each": np.abs(s[::-1].copy()) * dtype_scale(dtype)}[kind]

    def run():
        out, factor = np.empty_like(W), np.empty_like(W)
        noisy_weight(W, eps, sigma, mode, out=out, factor=factor)
        return out, factor, noisy_weight(W, eps, sigma, mode)

    (o1, f1, n1), (o2, f2, n2) = _both(compiled, run)
    _eq(o1, o2)
    _eq(n1, n2)
    _eq(o1, n1)  # with and without the factor kept
    if mode == "multiplicative":
        _eq(f1, f2)
    sig = W.dtype.type(sigma) if kind == "number" else sigma
    assert backend_noisy.noisy_weight(np, W, eps, sig, mode, np.empty_like(W))  # the kernel ran


def dtype_scale(dtype):
    return np.dtype(dtype).type(1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigma_from_log_var_bits(compiled, dtype):
    _, _, _, s = _arrays(dtype)
    fast, plain = _both(compiled, lambda: sigma_from_log_var(s, S_LO, S_HI,
                                                             out=np.empty_like(s)))
    _eq(fast, plain)
    assert np.isnan(fast.reshape(-1)[2]) and np.isfinite(fast.reshape(-1)[3])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_log_var_grad_bits(compiled, dtype, mode, reg):
    W, eps, G, s = _arrays(dtype)
    sigma = sigma_from_log_var(s, S_LO, S_HI)

    def run():
        return log_var_grad(G, eps, sigma, s, S_LO, S_HI, mode=mode, per_weight=True, W=W,
                            sigma_reg=reg)

    fast, plain = _both(compiled, run)
    _eq(fast, plain)
    # inf s: outside, 0; NaN s: σ is NaN, and NaN times the mask's 0 stays NaN
    assert fast.reshape(-1)[3] == 0 and np.isnan(fast.reshape(-1)[2])
    assert np.count_nonzero(fast) > fast.size // 3
    assert backend_noisy.log_var_grad(np, G, eps, sigma, s, S_LO, S_HI, None, None) is not None


def test_refused_inputs_fall_back(compiled):
    W, eps, G, s = _arrays("float32")
    out = np.empty_like(W)
    assert not backend_noisy.noisy_weight(np, W, eps, np.float64(0.1), "additive", out)
    assert not backend_noisy.noisy_weight(np, W, eps, np.float32(0.1), "additive", W)  # in place
    assert not backend_noisy.noisy_weight(np, W[:, :8], eps[:, :8], np.float32(0.1), "additive",
                                          out[:, :8])  # small, not contiguous
    assert not backend_noisy.half_clip(np, s, S_LO, S_HI, s)
    assert backend_noisy.log_var_grad(np, G, eps, s.astype("float64"), s, S_LO, S_HI, None,
                                      None) is None
    compiled.setenv("BIONP_NUMBA", "0")
    assert not backend_noisy.noisy_weight(np, W, eps, np.float32(0.1), "additive", out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ["additive", "multiplicative", "per_layer", "per_weight",
                                     "per_weight_mult"])
def test_training_steps_bits(compiled, dtype, variant):
    """Three Backprop + SGD steps: the same weights, σ and noise with and without kernels."""
    def run():
        if variant in ("additive", "multiplicative"):
            layers = [nn.NoisyDense(120, 110, sigma=0.05, mode=variant, rng=0, dtype=dtype)]
        else:
            layers = [nn.LearnableNoiseDense(120, 110, per_weight=variant != "per_layer",
                                             mode="multiplicative" if variant.endswith("mult")
                                             else "additive", sigma_reg=0.1, rng=0,
                                             dtype=dtype)]
        net = nn.Sequential(layers + [nn.Dense(110, 3, rng=1, dtype=dtype)], ["relu", "identity"])
        g = bnp.random.Generator(5)
        x = g.normal(0, 1, (16, 120), dtype=dtype)
        y = g.integers(0, 3, 16)
        opt = optim.SGD(net, lr=0.5, momentum=0.9)
        for _ in range(3):
            opt.step(rules.Backprop().gradients(net, x, y, nn.CrossEntropyLoss()))
        return [np.array(v) for layer in net.layers for v in layer.params().values()]

    fast, plain = _both(compiled, run)
    for a, b in zip(fast, plain):
        _eq(a, b)


def _per_weight_step():
    # 200 x 200 float32 (160 KB): above REUSE_MIN_BYTES, so the gradient array is kept
    layer = nn.LearnableNoiseDense(200, 200, per_weight=True, rng=0)
    x = bnp.random.Generator(5).normal(0, 1, (16, 200), dtype="float32")
    delta = bnp.random.Generator(6).normal(0, 1, (16, 200), dtype="float32")

    def grads():
        _, cache = layer.forward_cache(x)
        return layer.backward(x, delta, cache=cache)[0]["log_var"]

    return grads


def test_gradient_array_reused_only_when_nobody_holds_it(compiled):
    grads = _per_weight_step()
    first = grads()
    kept = first.copy()
    second = grads()  # the caller still holds the first: a new array, the first untouched
    assert second is not first
    np.testing.assert_array_equal(first, kept)
    assert not np.array_equal(first, second)  # a fresh draw, a different gradient
    view = second[3:]  # a view keeps its base held
    third = grads()
    assert third is not second
    del first, view
    ident = id(second)
    del second
    # nobody holds the last one's predecessor any more, but the layer keeps only the last
    fourth = grads()
    assert fourth is not third
    ident = id(fourth)
    del fourth
    assert id(grads()) == ident  # dropped by the caller: written again, no new array


def _reused(owner, like):
    # the call outside an assert: pytest's rewriting would hold owner.buf in a temporary
    out = backend_dense.reusable(owner.buf, like)
    return out is not None and out is owner.buf


def test_reusable_refuses_held_and_foreign_arrays():
    class Owner:
        pass

    o = Owner()
    o.buf = np.empty((3, 4), np.float32)
    like = np.empty((3, 4), np.float32)
    assert _reused(o, like)
    held = o.buf
    assert not _reused(o, like)
    del held
    view = o.buf[1:]
    assert not _reused(o, like)
    del view
    assert _reused(o, like)
    assert not _reused(o, like.astype(np.float64))
    assert not _reused(o, like.T)
    o.buf.flags.writeable = False
    assert not _reused(o, like)
    o.buf = None
    assert not _reused(o, like)
