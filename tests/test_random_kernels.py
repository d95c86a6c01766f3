"""The compiled random kernels (bionp._random_kernels): the array code's numbers, bit for bit.

Every draw is compared with the array code on the strict stand-in (what CuPy runs) and with
the NumPy path without Numba (``BIONP_NUMBA=0``), at counters that put the first number
anywhere inside a block, across the 64- and 256-bit wrap-arounds, at odd sizes and sizes 0
and 1, into fresh arrays and into reused ``out`` buffers, on one thread and on several.
"""

import weakref

import numpy as np
import pytest

import bionp as bnp
from bionp import kernels
from bionp.random import Generator, set_num_threads

M64 = (1 << 64) - 1
COUNTERS = (0, 1, 5, M64 - 2, (1 << 128) + M64 - 1, (1 << 256) - 3)
SIZES = (0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 255, 257, 1023, 2049, 4099)
DTYPES = ("float32", "float64")


def _numba_on(monkeypatch):
    monkeypatch.setenv("BIONP_NUMBA", "1")
    from bionp import _random_kernels

    if not _random_kernels.available():
        pytest.skip("Numba is not installed (the [fast] extra)")


def _at(counter, seed=11):
    g = Generator(seed)
    state = g.get_state()
    state["counter"] = str(counter)
    g.set_state(state)
    return g


def _draw(kind, g, n, dt, xp=None, out=None):
    if kind == "normal":
        return g.normal(0.0, 1.0, n, dtype=dt, xp=xp, out=out)
    if kind == "normal_scaled":
        return g.normal(-0.25, 3.0, n, dtype=dt, xp=xp, out=out)
    if kind == "random":
        return g.random(n, dtype=dt, xp=xp, out=out)
    if kind == "uniform":
        return g.uniform(-2.0, 5.0, n, dtype=dt, xp=xp, out=out)
    return g.rademacher(n, 0.1, dtype=dt, xp=xp, out=out)


KINDS = ("random", "uniform", "normal", "normal_scaled", "rademacher")


def _bits(a):
    a = bnp.asnumpy(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_kernels_give_the_array_codes_bits(kind, dtype, monkeypatch):
    """Uniforms, ±s values and normals (float32: correctly rounded ln, cos, sin on both
    sides; float64: NumPy's own loops) equal the array code's bits and move the counter by
    as many blocks."""
    _numba_on(monkeypatch)
    from bionp._strict import xp as sx

    assert kernels.philox_fill_available(np, dtype, normal=True)
    for counter in COUNTERS:
        for n in SIZES:
            g_fast, g_plain, g_strict = _at(counter), _at(counter), _at(counter)
            fast = _draw(kind, g_fast, n, dtype, xp=np)
            strict = _draw(kind, g_strict, n, dtype, xp=sx)
            monkeypatch.setenv("BIONP_NUMBA", "0")
            plain = _draw(kind, g_plain, n, dtype, xp=np)
            monkeypatch.setenv("BIONP_NUMBA", "1")
            np.testing.assert_array_equal(_bits(fast), _bits(plain), err_msg=f"{counter} {n}")
            np.testing.assert_array_equal(_bits(fast), _bits(strict), err_msg=f"{counter} {n}")
            assert g_fast.counter == g_plain.counter == g_strict.counter


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_out_buffer_reused_and_threads(kind, dtype, monkeypatch):
    """A reused ``out`` is filled in place with the numbers of a fresh draw; one thread and
    several give the same numbers (a draw above the threading threshold)."""
    _numba_on(monkeypatch)
    n = 300_001
    buf = np.empty((3, n), dtype=dtype)[1]  # a contiguous row of a larger array
    ref_gen, gen = Generator(4), Generator(4)
    try:
        for threads in (1, 2, 3):
            set_num_threads(threads)
            ref = _draw(kind, ref_gen, n, dtype)
            got = _draw(kind, gen, n, dtype, out=buf)
            assert got is buf
            np.testing.assert_array_equal(_bits(buf), _bits(ref))
            assert gen.counter == ref_gen.counter
    finally:
        set_num_threads(bnp.random.threads._default_threads())


def test_out_shape_taken_from_out(monkeypatch):
    _numba_on(monkeypatch)
    buf = np.empty((4, 5), dtype=np.float32)
    got = Generator(2).normal(0.0, 1.0, dtype="float32", out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, Generator(2).normal(0.0, 1.0, (4, 5), dtype="float32"))


def test_normal_odd_size_writes_only_its_buffer(monkeypatch):
    """An odd draw into ``out`` needs no extra slot: the byte after the buffer is untouched."""
    _numba_on(monkeypatch)
    for n in (1, 3, 2049, 300_001):
        room = np.full(n + 1, 7.0, dtype=np.float32)
        Generator(5).normal(size=n, dtype="float32", out=room[:n])
        assert room[n] == 7.0


def test_rademacher_values_and_law(monkeypatch):
    _numba_on(monkeypatch)
    z = Generator(0).rademacher(100_000, 0.3, dtype="float32")
    assert set(np.unique(z).tolist()) == {np.float32(-0.3), np.float32(0.3)}
    assert abs(float(np.mean(z > 0)) - 0.5) < 0.01
    assert Generator(0).rademacher(5, 0.0, dtype="float64").tolist() == [0.0] * 5


def test_switch_off_uses_no_kernel(monkeypatch):
    monkeypatch.setenv("BIONP_NUMBA", "0")
    assert not kernels.philox_fill_available(np)
    assert not kernels.philox_fill_available(np, "float32", normal=True)


def test_no_kernel_on_the_strict_stand_in(monkeypatch):
    from bionp._strict import xp as sx

    monkeypatch.setenv("BIONP_NUMBA", "1")
    assert not kernels.philox_fill_available(sx)


# -- bad input: refused before the counter moves ----------------------------------------------

def _refused(g, call, exc, match):
    before = g.get_state()
    with pytest.raises(exc, match=match):
        call()
    assert g.get_state() == before


@pytest.mark.parametrize("kernel", ["compiled", "plain"])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_out_refused_counter_unchanged(kind, kernel, monkeypatch):
    if kernel == "compiled":
        _numba_on(monkeypatch)
    else:
        monkeypatch.setenv("BIONP_NUMBA", "0")
    from bionp._strict import xp as sx

    g = Generator(1)
    g.normal(size=3)  # a counter that is not 0
    cases = [
        (np.empty(10, dtype=np.float64), ValueError, "dtype float32"),         # dtype
        (np.empty(11, dtype=np.float32), ValueError, r"shape \(10,\)"),         # shape
        (sx.empty(10, dtype=np.float32), TypeError, "numpy backend"),          # backend
        (np.empty(20, dtype=np.float32)[::2], ValueError, "C-contiguous"),      # strided
        ([0.0] * 10, TypeError, "numpy backend"),                               # not an array
    ]
    for out, exc, match in cases:
        _refused(g, lambda: _draw(kind, g, 10, "float32", xp=np, out=out), exc, match)
    f_order = np.empty((4, 5), dtype=np.float32, order="F")
    _refused(g, lambda: _draw(kind, g, (4, 5), "float32", xp=np, out=f_order), ValueError,
             "C-contiguous")
    ro = np.empty(10, dtype=np.float32)
    ro.flags.writeable = False
    _refused(g, lambda: _draw(kind, g, 10, "float32", xp=np, out=ro), ValueError, "writeable")


@pytest.mark.parametrize("kind", KINDS)
def test_size_beyond_range_refused(kind, xp):
    g = Generator(1)
    for size in ((1 << 32, 1 << 32), (1 << 63,), (3, 1 << 62)):
        _refused(g, lambda: _draw(kind, g, size, "float32"), ValueError, "more than one draw")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_refused(bad, xp):
    g = Generator(1)
    out = xp.empty(4, dtype=xp.float32)
    _refused(g, lambda: g.normal(bad, 1.0, 4, dtype="float32", out=out), ValueError, "finite")
    _refused(g, lambda: g.normal(0.0, bad, 4, dtype="float32", out=out), ValueError,
             "finite|non-negative")
    _refused(g, lambda: g.uniform(bad, 1.0, 4, dtype="float32", out=out), ValueError, "finite")
    _refused(g, lambda: g.uniform(0.0, bad, 4, dtype="float32"), ValueError, "finite")
    _refused(g, lambda: g.rademacher(4, bad, dtype="float32"), ValueError, "finite|non-negative")
    arr = np.array([0.0, bad, 1.0, 2.0], dtype=np.float32)
    _refused(g, lambda: g.normal(arr, 1.0, 4, dtype="float32"), ValueError, "finite")


def test_rademacher_bad_scale(xp):
    g = Generator(1)
    _refused(g, lambda: g.rademacher(4, -1.0), ValueError, "non-negative")
    _refused(g, lambda: g.rademacher(4, np.ones(4)), TypeError, "number")


# -- users of the kernels -----------------------------------------------------------------------

def test_weight_perturbation_rademacher_draw_unchanged(cpu_xp, monkeypatch):
    """WeightPerturbation(noise="rademacher") draws into its noise buffer: the same ±σ as the
    former bit expansion."""
    from bionp.rules.perturbation import rademacher

    g, ref = Generator(9), Generator(9)
    got = rademacher(g, (7, 13), 0.05, np.dtype(np.float32), cpu_xp)
    words = bnp.asnumpy(ref.random_raw(-(-91 // 64), xp=np))
    bits = (words.view(np.uint8)[:, None] >> np.arange(8, dtype=np.uint8)) & 1
    want = bits.reshape(-1)[:91].astype(np.float32) * np.float32(0.1) - np.float32(0.05)
    np.testing.assert_array_equal(bnp.asnumpy(got).reshape(-1), want)
    assert g.counter == ref.counter


@pytest.mark.parametrize("estimator", ["unbiased", "tutorial"])
def test_node_perturbation_kept_buffers_average_samples(estimator, cpu_xp):
    """NodePerturbation draws into buffers kept between calls (one slot for the first sample,
    one for the rest): K samples equal the mean of K one-sample estimates drawn in turn, and
    a second call does not change the first call's gradients."""
    from bionp import nn, rules

    net = nn.MLP([6, 5, 3], activation="sigmoid", rng=0, dtype="float64")
    g = Generator(3)
    x = g.normal(0.0, 1.0, (8, 6), dtype="float64")
    y = g.integers(0, 3, 8)
    loss = nn.MSELoss()
    three = rules.NodePerturbation(sigma=0.1, n_samples=3, estimator=estimator, rng=7)
    want = three.gradients(net, x, y, loss)
    kept = [{k: bnp.asnumpy(v).copy() for k, v in d.items()} for d in want]
    one = rules.NodePerturbation(sigma=0.1, estimator=estimator, rng=7)
    parts = [one.gradients(net, x, y, loss) for _ in range(3)]
    for l, d in enumerate(want):
        for k, v in d.items():
            mean = sum(bnp.asnumpy(p[l][k]) for p in parts) / 3
            np.testing.assert_allclose(bnp.asnumpy(v), mean, rtol=1e-10, atol=1e-14)
    three.gradients(net, x, y, loss)  # reuses the buffers
    for l, d in enumerate(want):
        for k, v in d.items():
            np.testing.assert_array_equal(bnp.asnumpy(v), kept[l][k])


@pytest.mark.parametrize("n_samples", [1, 3])
def test_weight_perturbation_reuses_its_noise_array_only_when_free(n_samples, cpu_xp):
    """WeightPerturbation's gradient is a view of its noise array: a second call writes that
    array again only when the caller has dropped the first gradients (no allocation per step),
    never while they are held (they keep their values), and with the numbers of a fresh rule."""
    from bionp import nn, rules

    # 60,000+ float64 parameters: above REUSE_MIN_BYTES, so the array is kept
    net = nn.MLP([300, 200, 3], activation="sigmoid", rng=0, dtype="float64")
    g = Generator(3)
    x = g.normal(0.0, 1.0, (8, 300), dtype="float64")
    y = g.integers(0, 3, 8)
    loss = nn.MSELoss()
    rule = rules.WeightPerturbation(sigma=0.1, n_samples=n_samples, rng=7)
    twin = rules.WeightPerturbation(sigma=0.1, n_samples=n_samples, rng=7)
    held = rule.gradients(net, x, y, loss)
    kept = _flat_copy(held)
    second = rule.gradients(net, x, y, loss)  # the first ones are held: a new array
    assert second[0]["W"].base is not held[0]["W"].base
    assert _flat_copy(held) == kept
    on_numpy = cpu_xp is np  # the refcount check applies to NumPy arrays
    base = weakref.ref(second[0]["W"].base) if on_numpy else None
    del held, second
    third = rule.gradients(net, x, y, loss)
    want = [twin.gradients(net, x, y, loss) for _ in range(3)][-1]
    if on_numpy:  # kept by the rule and written again
        assert third[0]["W"].base is base()
    assert _flat_copy(third) == _flat_copy(want)


def _flat_copy(grads):
    return [(k, bnp.asnumpy(v).tobytes()) for d in grads for k, v in sorted(d.items())]


def test_self_check_falls_back_on_different_bits(monkeypatch):
    """The kernels are checked against NumPy's Philox and ufuncs when built: differing
    normals drop that dtype's normal kernel, differing uniforms drop the kernels."""
    _numba_on(monkeypatch)
    from bionp import _random_kernels

    real = _random_kernels._reference

    def normals_off(dtype):
        def ref(key, n, dt):
            u, z = real(key, n, dt)
            return u, (np.nextafter(z, np.inf) if dt == dtype else z)
        return ref

    monkeypatch.setattr(_random_kernels, "_reference", normals_off(np.float64))
    built = _random_kernels._build()
    assert built is not None and "normal32" in built and not built["loops"]
    monkeypatch.setattr(_random_kernels, "_reference", normals_off(np.float32))
    built = _random_kernels._build()
    assert built is not None and "normal32" not in built
    assert list(built["loops"]) == [np.dtype(np.float64)]

    def uniforms_off(key, n, dt):
        u, z = real(key, n, dt)
        return u + dt.type(2.0 ** -24), z

    monkeypatch.setattr(_random_kernels, "_reference", uniforms_off)
    assert _random_kernels._build() is None


@pytest.mark.parametrize("start_below_wrap", [0, 1, 5, 8, 40])
def test_vectorised_blocks_equal_one_block_at_a_time(start_below_wrap, monkeypatch):
    """The block loop that LLVM vectorises (the ten rounds written out, 32-bit partial
    products) gives Philox4x64-10's words, also for a range ending exactly at the low
    word's wrap (the last range it takes) and for ranges across it (one block at a time)."""
    _numba_on(monkeypatch)
    from bionp import _random_numba as rn

    u64 = np.uint64
    k0, k1 = u64(0x0123456789ABCDEF), u64(0xFEDCBA9876543210)
    n = 8
    c0 = u64(2**64 - 1 - start_below_wrap) - u64(n - 1) + u64(0)  # 0: last block at the wrap
    for start, c1 in ((c0, u64(7)), (u64(2**64 - 1 - start_below_wrap), u64(2**64 - 1)),
                      (u64(12345), u64(0))):
        got = np.empty(4 * n, dtype=np.uint64)
        rn._blocks(k0, k1, start, c1, u64(3), u64(2**64 - 1), n, got)
        want = []
        c = [int(start), int(c1), 3, 2**64 - 1]
        for _ in range(n):
            want += rn._philox(*[u64(v) for v in c], k0, k1)
            total = sum(v << (64 * j) for j, v in enumerate(c)) + 1
            c = [(total >> (64 * j)) & (2**64 - 1) for j in range(4)]
        np.testing.assert_array_equal(got, np.array(want, dtype=np.uint64))
