"""The dense training step's compiled kernels (bionp.backend_dense) against the array code.

The kernels perform the array code's floating-point operations in its order (no fused
multiply-add), so every comparison here is bit for bit, in float32 and float64; the
array code (``BIONP_NUMBA=0``, the strict stand-in) stays the definition.  Also: the
training loop's backup written in the optimiser's pass restores the same weights, and no
array a caller holds is overwritten by a later step.
"""

import numpy as np
import pytest

import bionp as bnp
from bionp import backend_dense, nn, optim, rules
from bionp.backend import backend_of
from bionp.backend_dense import mean as backend_mean
from bionp.train import Trainer

DTYPES = ["float32", "float64"]
BIG = (97, 131)  # 12,707 elements: above backend_dense.MIN_SIZE, odd sizes


@pytest.fixture
def compiled(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("BIONP_NUMBA", "1")
    assert backend_dense.kernels_available(np)
    return monkeypatch


def _arrays(dtype, n=3, shape=BIG, seed=0, scale=3.0):
    g = np.random.default_rng(seed)
    return [(g.standard_normal(shape) * scale).astype(dtype) for _ in range(n)]


def _plain_sgd(theta, g, lr, v=None, momentum=0.0, nesterov=False, weight_decay=0.0):
    """bionp.optim.SGD's array code, written out."""
    dt = theta.dtype.type
    if weight_decay:
        buf = np.multiply(theta, dt(weight_decay))
        buf += g
        g = buf
    if v is not None:
        v *= dt(momentum)
        v += g
        if nesterov:
            d = np.multiply(v, dt(momentum))
            d += g
        else:
            d = v
    else:
        d = g
    theta -= np.multiply(d, dt(lr))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov, weight_decay",
                         [(0.0, False, 0.0), (0.0, False, 0.3), (0.9, False, 0.0),
                          (0.9, True, 0.01)])
@pytest.mark.parametrize("with_backup", [False, True])
def test_sgd_kernel_gives_the_array_codes_bits(compiled, dtype, momentum, nesterov,
                                               weight_decay, with_backup):
    theta, g, v = _arrays(dtype)
    theta[0, :4] = [np.inf, -np.inf, np.nan, 0.0]
    want_theta, want_v, before = theta.copy(), v.copy(), theta.copy()
    backup = np.full_like(theta, 7.0) if with_backup else None
    done = backend_dense.sgd_step(np, theta, g, 0.37, v=v if momentum else None,
                                  momentum=momentum, nesterov=nesterov,
                                  weight_decay=weight_decay, backup=backup)
    assert done
    with np.errstate(invalid="ignore"):
        _plain_sgd(want_theta, g, 0.37, want_v if momentum else None, momentum, nesterov,
                   weight_decay)
    np.testing.assert_array_equal(theta, want_theta)
    np.testing.assert_array_equal(v, want_v)
    if with_backup:
        np.testing.assert_array_equal(backup, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_kernels_give_the_array_codes_bits(compiled, dtype):
    (z, g) = _arrays(dtype, n=2, scale=40.0)  # exp(-z) overflows for some entries
    z[0, :3] = [np.inf, -np.inf, np.nan]
    s = nn.Sigmoid()
    a = s.forward(z)
    with np.errstate(over="ignore"):
        e = np.exp(-z)
    e += 1
    np.testing.assert_array_equal(a, np.reciprocal(e))
    want = 1 - a
    want *= a
    want *= g
    got = s.vjp(z, a, g)
    np.testing.assert_array_equal(got, want)
    assert got is not g and got is not a  # a new array, the inputs untouched
    compiled.setenv("BIONP_NUMBA", "0")
    np.testing.assert_array_equal(s.forward(z), a)
    np.testing.assert_array_equal(s.vjp(z, a, g), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [BIG, (200, 500), (8192, 2), (3, 4099), (1000, 37)])
def test_column_sum_kernel_gives_numpys_bits(compiled, dtype, shape):
    (a,) = _arrays(dtype, n=1, shape=shape, scale=1e3)
    a[:, 0] = -0.0  # a column of negative zeros sums to +0.0, as NumPy's does
    layer = nn.Dense(7, shape[1], rng=0, dtype=dtype)  # a bias gradient takes the kernel
    grads, _ = layer.backward(np.ones((shape[0], 7), dtype=dtype), a, need_input_grad=False)
    want = np.sum(a, axis=0)
    np.testing.assert_array_equal(grads["b"].view(np.uint8), want.view(np.uint8))
    a[1, 1], a[2 % shape[0], 1] = np.inf, -np.inf  # non-finite entries as NumPy sums them
    got = backend_dense.column_sum(np, a)
    assert got is not None and got.dtype == a.dtype and got.shape == (shape[1],)
    np.testing.assert_array_equal(got.view(np.uint8), np.sum(a, axis=0).view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sum_refuses_what_numpy_sums_otherwise(compiled, dtype):
    (a,) = _arrays(dtype, n=1, shape=(20000, 1))
    assert backend_dense.column_sum(np, a) is None  # one column: NumPy sums it pairwise
    (b,) = _arrays(dtype, n=1)
    assert backend_dense.column_sum(np, b[:, ::2]) is None  # not contiguous
    assert backend_dense.column_sum(np, b[:5, :5].copy()) is None  # small
    assert backend_dense.column_sum(np, b.astype(np.float16)) is None
    with bnp.backend("strict"):
        assert backend_dense.column_sum(bnp.get_xp(), bnp.asarray(b)) is None
    compiled.setenv("BIONP_NUMBA", "0")
    assert backend_dense.column_sum(np, b) is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 10, 200, 4097])
def test_backend_mean_gives_numpys_bits(dtype, n):
    g = np.random.default_rng(n)
    for _ in range(20):
        a = (g.standard_normal(n) * g.exponential(5.0, n)).astype(dtype)
        got, want = backend_mean(a), np.mean(a)
        assert type(got) is type(want)
        assert np.array([got]).tobytes() == np.array([want]).tobytes()
    m = np.arange(6.0, dtype=dtype).reshape(2, 3)  # other arrays: xp.mean itself
    assert backend_mean(m) == np.mean(m)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backend_mean_gives_numpys_bits_at_the_edges(dtype):
    """The float64 division of the sum by the count, rounded to the dtype, as NumPy's
    own: sums near the largest and the smallest numbers, zeros of both signs, ±inf, NaN."""
    fi = np.finfo(dtype)
    for values in ([fi.max, fi.max], [-fi.max, -fi.max / 2, 0], [fi.smallest_subnormal] * 3,
                   [fi.tiny, -0.0], [-0.0, -0.0], [np.inf, 1], [-np.inf, 2, 3], [np.nan, 1],
                   [1, 2], [1] * 7, [0.1] * 200):
        a = np.array(values, dtype=dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            got, want = backend_mean(a), np.mean(a)
        assert type(got) is type(want)
        assert np.array([got]).tobytes() == np.array([want]).tobytes(), values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 4), (200, 10), (1, 7), (5, 1), (0, 3)])
def test_sum_axis_gives_xp_sums_bits(xp, dtype, shape):
    g = np.random.default_rng(1)
    a = (g.standard_normal(shape) * 100).astype(dtype)
    for axis in (0, 1):
        got = bnp.asnumpy(backend_dense.sum_axis(xp, xp.asarray(a), axis))
        want = np.sum(a, axis=axis)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_arrays_the_kernels_do_not_take_fall_back_unchanged(compiled, dtype):
    theta, g, v = _arrays(dtype)
    before = theta.copy()
    assert not backend_dense.sgd_step(np, theta, g[:, ::-1], 0.1)  # not contiguous
    assert not backend_dense.sgd_step(np, theta, g.astype(np.float16), 0.1)  # other dtype
    assert not backend_dense.sgd_step(np, theta, theta[::-1], 0.1)  # overlapping
    assert not backend_dense.sgd_step(np, theta, g, 0.1, backup=theta)  # backup is theta
    assert not backend_dense.sgd_step(np, theta[:5, :5].copy(), g[:5, :5].copy(), 0.1)  # small
    np.testing.assert_array_equal(theta, before)
    assert backend_dense.sigmoid_vjp(np, theta, g[:, ::-1]) is None
    assert backend_dense.sigmoid_vjp(np, theta, g[:-1]) is None
    with bnp.backend("strict"):
        st, sg = bnp.asarray(theta), bnp.asarray(g)
        assert not backend_dense.sgd_step(bnp.get_xp(), st, sg, 0.1)
        assert backend_dense.sigmoid_vjp(bnp.get_xp(), st, sg) is None
    compiled.setenv("BIONP_NUMBA", "0")
    assert not backend_dense.kernels_available(np)
    assert not backend_dense.sgd_step(np, theta, g, 0.1)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_optimizer_step_with_backup_matches_copy_then_step(compiled, momentum):
    net = nn.MLP([120, 90, 4], rng=0)  # W0 has 10,800 entries: the kernel's path
    twin = net.copy()
    g = bnp.random.Generator(1)
    grads = [{k: g.normal(size=v.shape) for k, v in p.items()} for p in net.parameters()]
    opt, ref = optim.SGD(net, lr=0.1, momentum=momentum), optim.SGD(twin, lr=0.1,
                                                                    momentum=momentum)
    backup = [{k: np.zeros_like(v) for k, v in p.items()} for p in net.parameters()]
    for _ in range(2):
        before = [{k: v.copy() for k, v in p.items()} for p in net.parameters()]
        opt.step(grads, backup=backup)
        ref.step(grads)
        for b, want in zip(backup, before):
            for k in want:
                np.testing.assert_array_equal(b[k], want[k])
    for p, q in zip(net.parameters(), twin.parameters()):
        for k in p:
            np.testing.assert_array_equal(p[k], q[k])
    assert opt.updates_exactly(net) and not opt.updates_exactly(twin)
    assert not optim.SGD(net.parameters()[:1], lr=0.1).updates_exactly(net)


def test_optimizer_refuses_a_backup_of_the_wrong_layout_before_stepping(xp):
    net = nn.MLP([5, 4, 3], rng=0)
    opt = optim.SGD(net, lr=0.1)
    grads = [{k: xp.ones_like(v) for k, v in p.items()} for p in net.parameters()]
    before = [{k: bnp.asnumpy(v).copy() for k, v in p.items()} for p in net.parameters()]
    bad = [[{k: xp.zeros_like(v) for k, v in p.items()} for p in net.parameters()][:1],
           [{"W": xp.zeros_like(p["W"])} for p in net.parameters()],
           [{k: xp.zeros(v.shape, dtype="float16") for k, v in p.items()}
            for p in net.parameters()],
           [{k: xp.zeros(v.shape[:1] + (1,) * (v.ndim - 1), dtype=v.dtype)
             for k, v in p.items()} for p in net.parameters()]]
    for backup in bad:
        with pytest.raises(ValueError, match="backup must be a list of 2 dicts"):
            opt.step(grads, backup=backup)
    assert opt.step_count == 0
    for p, want in zip(net.parameters(), before):
        for k in p:
            np.testing.assert_array_equal(bnp.asnumpy(p[k]), want[k])


def _train(epochs_lr, seed=0, transforms=None, layers=(100, 96, 3), output="sigmoid"):
    g = bnp.random.Generator(seed)
    x = g.random((120, layers[0]))
    t = bnp.asarray(np.eye(layers[-1], dtype=bnp.get_dtype())[
        bnp.asnumpy(g.integers(0, layers[-1], size=120))])
    net = nn.MLP(list(layers), activation="sigmoid", output_activation=output, rng=0)
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=epochs_lr), nn.MSELoss(),
                 batch_size=40, rng=0, progress=False, transforms=transforms)
    hist = tr.fit(x, t, epochs=2)
    return net, hist


def test_trainer_fused_backup_restores_what_the_copy_restored(compiled):
    """A learning rate that makes the loss overflow: the kernel path (backup written in the
    optimiser's pass) stops at the same step and restores the same weights, bit for bit,
    as the array code (copy, then step)."""
    with np.errstate(all="ignore"):
        net, hist = _train(100.0, output="identity")
        compiled.setenv("BIONP_NUMBA", "0")
        ref, ref_hist = _train(100.0, output="identity")
    assert hist.stopped and hist.stopped == ref_hist.stopped and len(hist.loss) > 3
    assert hist.loss == ref_hist.loss
    for p, q in zip(net.parameters(), ref.parameters()):
        for k in p:
            assert np.all(np.isfinite(p[k]))
            np.testing.assert_array_equal(p[k], q[k])


def test_trainer_numbers_do_not_depend_on_the_kernels(compiled):
    net, hist = _train(0.5)
    compiled.setenv("BIONP_NUMBA", "0")
    ref, ref_hist = _train(0.5)
    assert hist.loss == ref_hist.loss and not hist.stopped
    for p, q in zip(net.parameters(), ref.parameters()):
        for k in p:
            np.testing.assert_array_equal(p[k], q[k])


def test_arrays_handed_out_are_not_overwritten_by_later_steps(xp):
    """Gradients, a forward cache's arrays and the loss of one call keep their values
    through later calls and optimiser steps (nothing handed out is reused as a buffer)."""
    g = bnp.random.Generator(2)
    x, t = g.random((64, 100)), g.random((64, 3))
    net = nn.MLP([100, 96, 3], activation="sigmoid", output_activation="sigmoid", rng=0)
    opt = optim.SGD(net, lr=0.5)
    for rule in (rules.Backprop(), rules.FeedbackAlignment(rng=1),
                 rules.DirectFeedbackAlignment(rng=1),
                 rules.KolenPollack(feedback_optimizer="sgd", rng=1)):
        grads = rule.gradients(net, x, t, nn.MSELoss())
        loss = rule.last_loss
        cache = net.forward_cache(x)
        kept = [{k: bnp.asnumpy(v).copy() for k, v in d.items()} for d in grads]
        kept_cache = [bnp.asnumpy(a).copy() for a in cache.pre + cache.post]
        kept_loss = float(bnp.asnumpy(loss))
        params = [{k: bnp.asnumpy(v).copy() for k, v in p.items()} for p in net.parameters()]
        for _ in range(2):
            opt.step(rule.gradients(net, x, t, nn.MSELoss()))
            rule.update_after_step(net, None, opt.lr)
            net.forward_cache(x[::-1])
        for d, want in zip(grads, kept):
            for k in want:
                np.testing.assert_array_equal(bnp.asnumpy(d[k]), want[k])
        for a, want in zip(cache.pre + cache.post, kept_cache):
            np.testing.assert_array_equal(bnp.asnumpy(a), want)
        assert float(bnp.asnumpy(loss)) == kept_loss
        assert any(not np.array_equal(bnp.asnumpy(p[k]), q[k])  # the steps did change W
                   for p, q in zip(net.parameters(), params) for k in q)


def test_a_subclass_that_redefines_the_update_is_not_bypassed(compiled):
    class HalfSGD(optim.SGD):
        def _update(self, i, k, theta, g):
            theta -= g * theta.dtype.type(0.5 * self.lr)

    net = nn.MLP([120, 90, 4], rng=0)
    before = [{k: v.copy() for k, v in p.items()} for p in net.parameters()]
    grads = [{k: np.ones_like(v) for k, v in p.items()} for p in net.parameters()]
    backup = [{k: np.zeros_like(v) for k, v in p.items()} for p in net.parameters()]
    HalfSGD(net, lr=0.2).step(grads, backup=backup)
    for p, q, b in zip(net.parameters(), before, backup):
        for k in p:
            np.testing.assert_array_equal(p[k], q[k] - p[k].dtype.type(0.1))
            np.testing.assert_array_equal(b[k], q[k])


@pytest.mark.parametrize("value, on", [("0", False), (" Off ", False), ("FALSE", False),
                                       ("no", False), ("1", True), ("yes", True), (None, True)])
def test_kernel_switch_follows_the_environment_at_every_call(monkeypatch, value, on):
    from bionp import _kernels

    monkeypatch.setenv("BIONP_NUMBA", "1")
    assert _kernels._enabled()
    if value is None:
        monkeypatch.delenv("BIONP_NUMBA")
    else:
        monkeypatch.setenv("BIONP_NUMBA", value)
    assert _kernels._enabled() is on
    assert _kernels._enabled() is on  # the remembered answer for this value


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_m", [False, True])
def test_sign_times_kernel_gives_the_array_codes_bits(compiled, dtype, with_m):
    W, M = _arrays(dtype, n=2)
    W[0, :6] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300 if dtype == "float64" else 1e-40]
    out = np.full_like(W, 7.0)
    assert backend_dense.sign_times(np, W, M if with_m else None, out)
    want = np.sign(W) if not with_m else np.abs(M) * np.sign(W)
    np.testing.assert_array_equal(out, want)
    assert not np.signbit(out[0, :2]).any()  # sign(+-0) = +0, as NumPy writes it
    # where no kernel applies nothing is written: in place, small, mixed dtypes
    assert not backend_dense.sign_times(np, W, out, out)
    assert not backend_dense.sign_times(np, W[:4, :4].copy(), None, out[:4, :4].copy())
    assert not backend_dense.sign_times(np, W, None, out.astype("float32" if dtype ==
                                                                   "float64" else "float64"))
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scale_add_kernel_gives_the_array_codes_bits(compiled, dtype):
    B, G = _arrays(dtype, n=2)
    B[0, :3] = [np.inf, np.nan, 0.0]
    want = B.copy()
    with np.errstate(invalid="ignore"):
        want *= want.dtype.type(0.98)
        want += G
    assert backend_dense.scale_add(np, B, 0.98, G)
    np.testing.assert_array_equal(B, want)
    assert not backend_dense.scale_add(np, B, 0.98, B)  # overlapping: the caller's passes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [8192, 12_707])
def test_half_signs_kernel_gives_the_array_codes_bits(compiled, dtype, n):
    octets = np.random.default_rng(1).integers(0, 256, -(-n // 8), dtype=np.uint8)
    out = np.zeros(n, dtype=dtype)
    assert backend_dense.half_signs(np, octets, out)
    want = np.unpackbits(octets, bitorder="little")[:n].astype(dtype) - np.dtype(dtype).type(0.5)
    np.testing.assert_array_equal(out, want)
    assert not backend_dense.half_signs(np, octets[:-2], out)  # too few bits: refused


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_writes_its_weight_gradient_again_only_when_nobody_holds_it(dtype, cpu_xp):
    """``Dense.backward``'s weight gradient is written into the last step's array once the
    caller has dropped it (no fresh weight-sized array per step, whose freeing made the
    allocator hand memory back and every step fault it in again), never while it is held:
    held gradients keep their values, and every gradient has the bits of a fresh array's."""
    import weakref

    g = bnp.random.Generator(2)
    layer = nn.Dense(300, 200, rng=0, dtype=dtype)  # big enough to be kept (REUSE_MIN_BYTES)
    xs = [g.normal(0.0, 1.0, (8, 300), dtype=dtype) for _ in range(3)]
    ds = [g.normal(0.0, 1.0, (8, 200), dtype=dtype) for _ in range(3)]
    want = [bnp.asnumpy(cpu_xp.matmul(d.T, x)).tobytes() for x, d in zip(xs, ds)]
    held = layer.backward(xs[0], ds[0])[0]["W"]
    second = layer.backward(xs[1], ds[1])[0]["W"]
    assert second is not held
    assert bnp.asnumpy(held).tobytes() == want[0]
    assert bnp.asnumpy(second).tobytes() == want[1]
    on_numpy = cpu_xp is np  # the reference count is read on NumPy arrays only
    ref = weakref.ref(second) if on_numpy else None
    del held, second
    third = layer.backward(xs[2], ds[2])[0]["W"]
    assert bnp.asnumpy(third).tobytes() == want[2]
    if on_numpy:
        assert third is ref()


def test_reusable_takes_a_shape_and_dtype():
    """``reusable(buf, (shape, dtype), xp)`` checks like ``reusable(buf, like)``, and only
    for a NumPy call."""
    from bionp import _strict

    class Owner:
        pass

    o = Owner()
    o.buf = np.empty((3, 4), np.float32)
    assert _reuse(o, ((3, 4), np.float32))
    assert not _reuse(o, ((4, 3), np.float32))
    assert not _reuse(o, ((3, 4), np.float64))
    assert not _reuse(o, ((3, 4), np.float32), _strict.xp)
    assert not _reuse(o, ((3, 4), np.float32), None)
    view = o.buf[1:]
    assert not _reuse(o, ((3, 4), np.float32))
    del view
    assert _reuse(o, ((3, 4), np.float32))


def _reuse(owner, like, xp=np):
    # outside an assert: pytest's rewriting would hold owner.buf in a temporary
    return backend_dense.reusable(owner.buf, like, xp) is owner.buf


def test_a_buffer_kept_on_numpy_is_not_handed_to_another_backend():
    """An array kept from a NumPy call is never written by a call on another backend: a
    weight-perturbation rule used on NumPy and then on the strict stand-in, and a dense layer
    whose arrays move there, give that backend's own results."""
    g = bnp.random.Generator(1)
    rule = rules.WeightPerturbation(sigma=0.1, rng=0)
    layer = nn.Dense(300, 200, rng=0, dtype="float64")  # big enough to be kept
    x = g.normal(0.0, 1.0, (5, 300), dtype="float64")
    d = g.normal(0.0, 1.0, (5, 200), dtype="float64")
    layer.backward(x, d)
    assert layer._grad_W is not None
    with bnp.backend("numpy"):
        net = nn.MLP([300, 200, 3], activation="sigmoid", rng=0, dtype="float64")
        rule.gradients(net, x, np.arange(5) % 3, nn.MSELoss())
    with bnp.backend("strict") as xp:
        net = nn.MLP([300, 200, 3], activation="sigmoid", rng=0, dtype="float64")
        xs, ds = bnp.asarray(x, xp=xp), bnp.asarray(d, xp=xp)
        got = rule.gradients(net, xs, xp.asarray(np.arange(5) % 3), nn.MSELoss())
        assert all(backend_of(v) == "strict" for gr in got for v in gr.values())
        layer.W, layer.b = bnp.asarray(layer.W, xp=xp), bnp.asarray(layer.b, xp=xp)
        gW = layer.backward(xs, ds)[0]["W"]
        assert backend_of(gW) == "strict"
        np.testing.assert_array_equal(bnp.asnumpy(gW), d.T @ x)


def test_reuse_changes_no_numbers(monkeypatch):
    """Training with the arrays written again gives the bits of training with a new array
    every step (reuse switched off), for the rules that reuse them."""
    g = bnp.random.Generator(6)
    x = bnp.asnumpy(g.random((120, 300), xp=np))
    t = np.eye(4)[bnp.asnumpy(g.integers(0, 4, size=120, xp=np))]

    def train(name):
        net = nn.MLP([300, 200, 4], activation="sigmoid", output_activation="sigmoid", rng=0)
        rule = {"bp": rules.Backprop(), "fa": rules.FeedbackAlignment(rng=1),
                "wp": rules.WeightPerturbation(sigma=0.05, n_samples=2, rng=2)}[name]
        Trainer(net, rule, optim.SGD(net, lr=0.1), nn.MSELoss(), batch_size=20, rng=0,
                progress=False).fit(x, t, epochs=2, labels=False)
        return [bnp.asnumpy(v).tobytes() for p in net.parameters() for v in p.values()]

    for name in ("bp", "fa", "wp"):
        reused = train(name)
        with monkeypatch.context() as m:
            m.setattr(backend_dense, "_OWNER_ONLY", None)
            fresh = train(name)
        assert reused == fresh, name


def test_the_trainer_lets_its_layers_reuse_their_gradient():
    """In a training loop the dense layers write every step's weight gradient into one array
    (the Trainer drops each step's gradients before the next)."""
    g = bnp.random.Generator(7)
    x = bnp.asnumpy(g.random((200, 300), xp=np))
    t = np.eye(4)[bnp.asnumpy(g.integers(0, 4, size=200, xp=np))]
    net = nn.MLP([300, 200, 4], activation="sigmoid", output_activation="sigmoid", rng=0)
    seen = set()
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.MSELoss(), batch_size=20,
                 rng=0, progress=False,
                 after_step=lambda trainer: seen.add(id(net.layers[0]._grad_W)))
    tr.fit(x, t, epochs=1, labels=False)
    assert len(seen) == 1 and tr.n_steps == 10
    assert net.layers[1]._grad_W is None  # 4 x 200: below REUSE_MIN_BYTES, not kept


def test_reference_count_calibration_ignores_a_tracer_and_checks_itself():
    """The count of an array held by its owner only is measured without a Python tracer
    that would hold frames' locals, and the probe with one more holder must count one more."""
    import sys

    seen = []

    def tracer(frame, event, arg):
        frame.f_locals  # what pdb and argument-logging tracers do
        seen.append(event)
        return tracer

    plain = backend_dense._owner_only_count()
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        traced = backend_dense._owner_only_count()
    finally:
        sys.settrace(old)
    assert traced == plain == backend_dense._OWNER_ONLY
    assert sys.gettrace() is old
