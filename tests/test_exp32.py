"""The compiled float32 exponential (bionp._exp32) and the one-pass sigmoid built on it.

The kernel reproduces NumPy's own float32 ``exp`` (its vector kernel on CPUs with AVX2 and
FMA, or AVX-512), so it is compared with ``numpy.exp`` bit for bit; where this machine's
NumPy computes another exponential, the self-check must turn the kernel off and the
sigmoid must still give the array code's bits.  ``benchmarks/exp32_check.py`` compares
all 2**32 inputs.
"""

import json

import numpy as np
import pytest

import bionp as bnp
from bionp import backend_dense, nn, optim, rules
from bionp.train import Trainer


@pytest.fixture
def kernels(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("BIONP_NUMBA", "1")
    k = backend_dense._load()
    assert k is not None
    return k


def _agrees(k):
    """Whether the kernels' self-check found NumPy's float32 exponential here: it must
    where NumPy runs its vector kernel for float32 ``exp`` (the x86-64-v3 or v4 targets:
    AVX2 and FMA3, AVX-512F), as NumPy's own dispatch report says."""
    try:
        from numpy.lib.introspect import opt_func_info

        target = opt_func_info(func_name="^exp$", signature="float32")["exp"]["ff"]["current"]
    except (ImportError, KeyError, TypeError):  # another NumPy: no expectation
        target = ""
    if target in ("X86_V3", "X86_V4") or "AVX2" in target or "AVX512F" in target:
        assert "sigmoid32" in k, f"NumPy's vector exp runs here ({target}): the kernel must match it"
    return "sigmoid32" in k


def _array_sigmoid(z):
    """Sigmoid's array code: negate, exp, add one, reciprocal."""
    e = np.negative(z)
    with np.errstate(over="ignore"):
        np.exp(e, out=e)
    e += 1
    return np.reciprocal(e, out=e)


def _probe_bits():
    """Every 1021st float32 bit pattern and the neighbourhoods of the kernel's limits, of
    the subnormal results' start (e**x = 2**-125 and below) and of 0."""
    ends = [0x42B17218, 0xC2CFF1B5, 0xC2AD3A2A, 0xC2AEAC50, 0x00000000, 0x80000000,
            0x7F800000, 0xFF800000]
    near = [np.arange(b - 600, b + 600, dtype=np.int64) % 2**32 for b in ends]
    return np.concatenate([np.arange(0, 2**32, 1021, dtype=np.int64)] + near).astype(np.uint32)


def test_exp32_gives_numpys_float32_bits_where_the_self_check_passes(kernels):
    bits = _probe_bits()
    x = bits.view(np.float32)
    got = np.empty_like(x)
    kernels["exp32"](x, got)
    with np.errstate(all="ignore"):
        want = np.exp(x)
    differ = (got.view(np.uint32) != want.view(np.uint32)) & ~(np.isnan(got) & np.isnan(want))
    if _agrees(kernels):
        assert not differ.any(), [hex(b) for b in bits[differ][:5]]
    else:  # another exponential in this NumPy: the kernel must stay off
        z = np.linspace(-30, 30, 20000, dtype=np.float32)
        assert backend_dense.sigmoid(np, z) is None


def test_exp32_special_values(kernels):
    x_max = np.array(0x42B17218, np.uint32).view(np.float32)  # from here on: inf
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, x_max, np.nextafter(x_max, 0), -1000.0,
                  0.0, -0.0, 1.0, -100.0], dtype=np.float32)
    out = np.empty_like(x)
    kernels["exp32"](x, out)
    assert np.isnan(out[:2]).all()
    assert out[2] == np.inf and out[3] == 0.0 and out[4] == np.inf
    assert np.isfinite(out[5]) and out[6] == 0.0
    assert out[7] == 1.0 and out[8] == 1.0
    np.testing.assert_allclose(out[9], np.e, rtol=3e-7)
    assert 0 < out[10] < np.finfo(np.float32).tiny  # a subnormal, not flushed to zero


@pytest.mark.parametrize("in_place", [False, True, None])
@pytest.mark.parametrize("shape", [(97, 131), (200, 500), (8192,), (3, 5, 4099), (2, 6), (0, 3)])
def test_sigmoid_kernel_gives_the_array_codes_bits(kernels, shape, in_place):
    g = np.random.default_rng(3)
    z = (g.standard_normal(shape) * 40).astype(np.float32)  # exp(-z) over- and underflows
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, -90.0], np.float32)
    z.reshape(-1)[:6] = specials[:z.size]
    want = _array_sigmoid(z)
    if in_place is None:
        got = backend_dense.sigmoid(np, z)
    elif in_place:
        got = z.copy()
        assert backend_dense.sigmoid(np, got, got) is got
    else:
        got = np.full_like(z, 7.0)
        assert backend_dense.sigmoid(np, z, got) is got
    if not _agrees(kernels):
        assert got is None
        return
    assert got.tobytes() == want.tobytes()  # NaN's bits too
    a = nn.Sigmoid().forward(z.copy())
    assert a.tobytes() == want.tobytes()


def test_sigmoid_kernel_refuses_what_it_cannot_take(kernels):
    big = np.linspace(-5, 5, 20001, dtype=np.float32)
    assert backend_dense.sigmoid(np, big.astype(np.float64)) is None  # float64: array code
    assert backend_dense.sigmoid(np, big[::2]) is None  # not contiguous
    assert backend_dense.sigmoid(np, big[:20000], big[1:]) is None  # overlaps, not in place
    assert backend_dense.sigmoid(np, big, np.empty(20001, np.float64)) is None
    assert backend_dense.sigmoid(np, big, np.empty(20000, np.float32)) is None
    with bnp.backend("strict") as xp:
        assert backend_dense.sigmoid(xp, xp.asarray(big)) is None


def test_the_self_check_refuses_an_exponential_one_bit_off():
    pytest.importorskip("numba")
    from bionp import _exp32

    probe = _probe_bits()

    def exact(x, out):
        np.exp(x, out=out)

    def off_by_one(x, out):
        np.exp(x, out=out)
        i = np.flatnonzero(np.isfinite(out) & (out > 0))[1234]
        out[i] = np.nextafter(out[i], np.float32(np.inf))

    with np.errstate(all="ignore"):
        assert _exp32.matches_numpy(exact, probe)
        assert not _exp32.matches_numpy(off_by_one, probe)
        assert not _exp32.matches_numpy(off_by_one)


def _without_fused_sigmoid(kernels, monkeypatch):
    """The kernels as a failed self-check leaves them."""
    for name in ("sigmoid32", "sigmoid32_inplace"):
        monkeypatch.delitem(kernels, name, raising=False)


def test_a_failed_self_check_leaves_the_array_code(kernels, monkeypatch):
    _without_fused_sigmoid(kernels, monkeypatch)
    z = np.linspace(-20, 20, 30000, dtype=np.float32)
    assert backend_dense.sigmoid(np, z) is None
    assert nn.Sigmoid().forward(z.copy()).tobytes() == _array_sigmoid(z).tobytes()


def test_training_with_the_kernel_gives_the_array_codes_bits(kernels, monkeypatch):
    g = bnp.random.Generator(4)
    x = bnp.asnumpy(g.random((200, 300), xp=np))
    t = np.eye(4)[bnp.asnumpy(g.integers(0, 4, size=200, xp=np))]

    def train():
        net = nn.MLP([300, 100, 4], activation="sigmoid", output_activation="sigmoid", rng=0)
        Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.5), nn.MSELoss(), batch_size=100,
                rng=0, progress=False).fit(x, t, epochs=3, labels=False)
        return [v.tobytes() for p in net.parameters() for v in p.values()]

    fused = train()
    _without_fused_sigmoid(kernels, monkeypatch)
    assert train() == fused


def test_the_exhaustive_check_script_runs_on_a_sample(kernels, capsys):
    """benchmarks/exp32_check.py (all 2**32 inputs by default) on every 65,537th pattern."""
    from _examples import load_benchmark

    script = load_benchmark("exp32_check")
    rc = script.main(["--step", "65537", "--chunk-log2", "12"])
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"] == -(-2**32 // 65537)
    if _agrees(kernels):
        assert rc == 0 and out["exp_differ"] == out["sigmoid_differ"] == 0
        assert out["self_check_passes"] and set(out["sigmoid_200x500_us"]) == {"array_code",
                                                                                "kernel"}


def test_what_the_kernel_does_not_take_still_behaves_as_the_array_code(kernels):
    """A read-only ``out`` raises NumPy's ValueError, an errstate that reports underflow sees
    it reported (the kernel reports no floating-point errors, so it stands aside), and 0-d
    arrays work in both dtypes."""
    z = np.array([200.0, -3.0, 0.5], dtype=np.float32)
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nn.Sigmoid().forward(z, out=ro)
    z.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nn.Sigmoid().forward(z, out=z)
    with np.errstate(under="raise"):
        assert backend_dense.sigmoid(np, np.ones(4, np.float32)) is None
        with pytest.raises(FloatingPointError):
            nn.Sigmoid().forward(np.array([200.0], np.float32))
    for dtype in ("float32", "float64"):
        a = nn.Sigmoid().forward(np.array(0.3, dtype=dtype))
        assert a.shape == () and a.dtype == dtype
        assert a.tobytes() == _array_sigmoid(np.array([0.3], dtype=dtype)).tobytes()
