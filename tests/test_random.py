import numpy as np
import pytest
from scipy import stats

import bionp as bnp
from bionp.random import Generator, check_rng, default_rng, named_stream, philox4x64_10

M64 = (1 << 64) - 1

# Known-answer vectors of Philox4x64-10 published with Random123 (kat_vectors):
# (counter words, key words) -> output words.
KAT = [
    ((0, 0, 0, 0), (0, 0),
     (0x16554D9ECA36314C, 0xDB20FE9D672D0FDC, 0xD7E772CEE186176B, 0x7E68B68AEC7BA23B)),
    ((M64, M64, M64, M64), (M64, M64),
     (0x87B092C3013FE90B, 0x438C3C67BE8D0224, 0x9CC7D7C69CD777B6, 0xA09CAEBF594F0BA0)),
    ((0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89),
     (0x452821E638D01377, 0xBE5466CF34E90C6C),
     (0xA528F45403E61D95, 0x38C72DBD566E9788, 0xA5A1610E72FD18B5, 0x57BD43B5E52B7FE6)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answer_vectors(xp, ctr, key, expected):
    words = [xp.asarray(np.array([c], dtype=np.uint64)) for c in ctr]
    out = philox4x64_10(xp, words, key)
    got = tuple(int(bnp.to_scalar(o[0])) for o in out)
    assert got == expected


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_numpy_philox_agrees_with_kat(ctr, key, expected):
    c = sum(v << (64 * i) for i, v in enumerate(ctr))
    bg = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=(c - 1) % (1 << 256))
    assert tuple(int(v) for v in bg.random_raw(4)) == expected


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 5])
def test_stream_equals_numpy_philox(xp, seed):
    g = Generator(seed)
    ours = bnp.asnumpy(g.random_raw(4 * 1000 + 4))
    ref = np.random.Philox(seed).random_raw(4 * 1000 + 4)
    np.testing.assert_array_equal(ours, ref)
    # the next draw continues the stream (whole blocks)
    np.testing.assert_array_equal(bnp.asnumpy(g.random_raw(8)), np.random.Philox(seed).random_raw(4012)[-8:])


def test_array_path_equals_compiled_path():
    """The xp implementation (used on CuPy and strict) vs NumPy's compiled Philox."""
    from bionp.random.philox import _raw_blocks
    from bionp._strict import xp as sx

    key = (0x0123456789ABCDEF, 0xFEDCBA9876543210)
    for counter in (0, 7, M64 - 3, (1 << 200) + M64 - 1, (1 << 256) - 2):
        fast = _raw_blocks(np, key, counter, 9)
        slow = _raw_blocks(sx, key, counter, 9).get()
        np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_equals_numpy_generator(xp, dtype):
    ours = bnp.asnumpy(Generator(42).random(1003, dtype=dtype))
    ref = np.random.Generator(np.random.Philox(42)).random(1003, dtype=dtype)
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == np.dtype(dtype)


def test_same_seed_same_numbers_across_cpu_backends():
    res = {}
    for name in ("numpy", "strict"):
        with bnp.backend(name):
            g = Generator(7)
            res[name] = [bnp.asnumpy(v) for v in (
                g.normal(size=(10, 3)), g.uniform(-2, 3, size=17), g.integers(3, 1000, size=50),
                g.permutation(33), g.choice(100, 10, replace=False), g.laplace(0, 2, size=9),
            )]
    for a, b in zip(res["numpy"], res["strict"]):
        np.testing.assert_array_equal(a, b)


def test_default_dtype_followed(xp):
    g = Generator(0)
    assert g.normal(size=3).dtype == np.float32
    with bnp.default_dtype("float64"):
        assert g.normal(size=3).dtype == np.float64
        assert g.uniform(size=3).dtype == np.float64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_distribution(dtype):
    z = bnp.asnumpy(Generator(3).normal(size=200_000, dtype=dtype)).astype(np.float64)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 5 * 1 / np.sqrt(z.size)
    assert abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3


def test_normal_loc_scale_and_odd_sizes(xp):
    g = Generator(9)
    z = bnp.asnumpy(g.normal(3.0, 0.5, size=(7, 5)))
    assert z.shape == (7, 5)
    z = bnp.asnumpy(Generator(9).normal(3.0, 0.5, size=100_001))
    assert abs(z.mean() - 3.0) < 0.01 and abs(z.std() - 0.5) < 0.01
    with pytest.raises(ValueError, match="scale"):
        g.normal(0, -1, size=3)


def test_normal_array_loc_and_scale_broadcast_against_size(xp):
    scale = bnp.asarray(np.array([1.0, 2.0, 3.0]), dtype="float64")
    loc = bnp.asarray(np.arange(12.0).reshape(4, 3), dtype="float64")
    z = bnp.asnumpy(Generator(4).normal(0.0, 1.0, size=(4, 3), dtype="float64"))
    np.testing.assert_allclose(
        bnp.asnumpy(Generator(4).normal(loc, scale, size=(4, 3), dtype="float64")),
        bnp.asnumpy(loc) + np.array([1.0, 2.0, 3.0]) * z, rtol=1e-15)
    out = bnp.get_xp().empty((5, 3), dtype="float64")  # odd size: the result is copied into out
    Generator(4).normal(0.0, scale, size=(5, 3), dtype="float64", out=out)
    z5 = bnp.asnumpy(Generator(4).normal(size=(5, 3), dtype="float64"))
    np.testing.assert_allclose(bnp.asnumpy(out), np.array([1.0, 2.0, 3.0]) * z5, rtol=1e-15)


def test_uniform_range(xp):
    u = bnp.asnumpy(Generator(1).uniform(-2.0, 5.0, size=100_000))
    assert u.min() >= -2.0 and u.max() < 5.0
    assert stats.kstest((u + 2) / 7, "uniform").pvalue > 1e-3


def test_integers_unbiased_and_in_range(xp):
    g = Generator(11)
    v = bnp.asnumpy(g.integers(-3, 4, size=70_000))
    assert v.min() == -3 and v.max() == 3
    counts = np.bincount(v + 3)
    assert stats.chisquare(counts).pvalue > 1e-3
    big = bnp.asnumpy(g.integers(0, 2**63 + 2**62, size=1000, dtype=np.uint64))
    assert big.max() < 2**63 + 2**62
    one = bnp.asnumpy(g.integers(5, 6, size=4))
    assert np.all(one == 5)


def test_integers_rejection_path():
    """A range just above 2**63 rejects ~half of the words: the redraw loop must be exact."""
    r = 2**63 + 1
    for name in ("numpy", "strict"):
        with bnp.backend(name):
            v = bnp.asnumpy(Generator(5).integers(0, r, size=2000, dtype=np.uint64))
            assert v.max() < r
            if name == "numpy":
                first = v
            else:
                np.testing.assert_array_equal(first, v)


def test_integers_errors():
    g = Generator(0)
    with pytest.raises(ValueError, match="low < high"):
        g.integers(5, 5)
    with pytest.raises(TypeError, match="int"):
        g.integers(0.5, 3)


def test_permutation_and_choice(xp):
    g = Generator(2)
    p = bnp.asnumpy(g.permutation(1000))
    assert sorted(p.tolist()) == list(range(1000))
    arr = xp.arange(10) * 2
    q = bnp.asnumpy(g.permutation(arr))
    assert sorted(q.tolist()) == list(range(0, 20, 2))
    c = bnp.asnumpy(g.choice(50, size=20, replace=False))
    assert len(set(c.tolist())) == 20 and c.max() < 50
    with pytest.raises(ValueError, match="without replacement"):
        g.choice(5, size=6, replace=False)
    w = bnp.asnumpy(g.choice(3, size=30_000, p=[0.2, 0.0, 0.8]))
    assert (w == 1).sum() == 0 and abs((w == 2).mean() - 0.8) < 0.01


def test_permutation_uniform_positions():
    g = Generator(4)
    pos = np.zeros((5, 5))
    for _ in range(4000):
        p = g.permutation(5, xp=np)
        pos[np.arange(5), p] += 1
    assert stats.chisquare(pos.ravel()).pvalue > 1e-4


def test_spawn_independent_and_reproducible():
    a, b = Generator(1).spawn(2)
    a2, _ = Generator(1).spawn(2)
    x, y = a.random_raw(100, xp=np), b.random_raw(100, xp=np)
    assert not np.array_equal(x, y)
    np.testing.assert_array_equal(x, a2.random_raw(100, xp=np))
    with pytest.raises(ValueError):
        Generator(1).spawn(-1)


def test_state_roundtrip():
    g = Generator(8)
    g.normal(size=13, xp=np)
    state = g.get_state()
    import json

    state = json.loads(json.dumps(state))
    x = g.uniform(size=20, xp=np)
    h = Generator(0)
    h.set_state(state)
    np.testing.assert_array_equal(x, h.uniform(size=20, xp=np))
    with pytest.raises(ValueError, match="Philox"):
        h.set_state({"bit_generator": "MT19937"})


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (1.5, TypeError), ("3", TypeError), (True, TypeError)])
def test_bad_seed(bad, exc):
    with pytest.raises(exc, match="seed"):
        Generator(bad)
    with pytest.raises(exc, match="seed"):
        check_rng(bad)


def test_check_rng():
    g = Generator(3)
    assert check_rng(g) is g and default_rng(g) is g
    assert isinstance(check_rng(None), Generator)
    np.testing.assert_array_equal(check_rng(5).random_raw(4, xp=np), Generator(5).random_raw(4, xp=np))


def test_no_numpy_random_in_library():
    """Every draw comes from bionp.random: no np.random / xp.random calls in bionp/."""
    import pathlib
    import re

    root = pathlib.Path(bnp.__file__).parent
    # seeding (SeedSequence), compiled Philox, the random kernels' self-check against it
    allowed = {"random/generator.py", "kernels.py", "_random_kernels.py"}
    offenders = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).as_posix() in allowed:
            continue
        text = path.read_text()
        if re.search(r"\b(np|numpy|xp|cp|cupy)\.random\.", text):
            offenders.append(str(path.relative_to(root)))
    assert not offenders, f"modules drawing from numpy/cupy random instead of bionp.random: {offenders}"


def _box_muller_reference(seed, n, dtype, loc=0.0, scale=1.0):
    """The documented normal stream, written out plainly: m = ceil(n/2) pairs from the
    first 2m uniforms, cosines first, then sines; float32 log, cos and sin are float64's
    rounded to float32 (the correctly rounded values), float64 NumPy's own."""
    dt = np.dtype(dtype)
    m = -(-n // 2)
    u = np.random.Generator(np.random.Philox(seed)).random(2 * m, dtype=dt)

    def f(fn, a):
        return fn(a.astype(np.float64)).astype(dt)

    r = np.sqrt(f(np.log, dt.type(1) - u[:m]) * dt.type(-2))
    theta = u[m:] * dt.type(2 * np.pi)
    z = np.concatenate([f(np.cos, theta) * r, f(np.sin, theta) * r])[:n]
    if scale != 1.0:
        z = z * dt.type(scale)
    if loc != 0.0:
        z = z + dt.type(loc)
    return z


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 2, 9, 4097, 300_001])
def test_normal_is_the_documented_box_muller_stream(cpu_xp, dtype, n):
    got = bnp.asnumpy(Generator(11).normal(0.5, 0.25, size=n, dtype=dtype))
    np.testing.assert_array_equal(got, _box_muller_reference(11, n, dtype, 0.5, 0.25))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_draws_do_not_depend_on_threads(dtype):
    from bionp.random import get_num_threads, set_num_threads

    before = get_num_threads()
    try:
        res = []
        for threads in (1, 2, 3):
            set_num_threads(threads)
            g = Generator(4)
            res.append([g.normal(size=300_001, dtype=dtype), g.random(500_003, dtype=dtype),
                        g.normal(2.0, 3.0, size=(400, 701), dtype=dtype)])
        for other in res[1:]:
            for a, b in zip(res[0], other):
                np.testing.assert_array_equal(a, b)
    finally:
        set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        set_num_threads(0)


def test_normal_out_writes_in_place_and_continues_the_stream(xp):
    g, h = Generator(6), Generator(6)
    for shape in [(300, 401), (7, 3), (5,)]:
        out = xp.empty(shape, dtype=np.float32)
        res = g.normal(1.0, 0.1, size=shape, out=out)
        assert res is out
        np.testing.assert_array_equal(bnp.asnumpy(out), bnp.asnumpy(h.normal(1.0, 0.1, size=shape)))
    assert g.counter == h.counter
    with pytest.raises(ValueError, match="shape"):
        g.normal(size=(3, 4), out=xp.empty((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="dtype"):
        g.normal(size=3, dtype="float32", out=xp.empty(3, dtype=np.float64))
    with pytest.raises(ValueError, match="contiguous"):
        g.normal(size=(4, 3), out=xp.empty((3, 4), dtype=np.float32).T)
    with pytest.raises(TypeError, match="array"):
        g.normal(size=3, out=[0.0, 0.0, 0.0])


def test_threaded_draws_work_in_a_forked_child():
    """A child forked after the parent used its thread pool draws the same numbers."""
    import multiprocessing as mp

    from bionp.random import get_num_threads, set_num_threads

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    before = get_num_threads()
    set_num_threads(2)
    try:
        want = Generator(1).normal(size=300_000)  # the parent's pool exists now
        with mp.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_child_draw, (1,)).get(timeout=120)
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(got, want)


def _child_draw(seed):
    return Generator(seed).normal(size=300_000)


def test_named_streams_are_reproducible_and_independent():
    a = bnp.asnumpy(named_stream(12345, "init").random(1000, dtype="float64"))
    again = bnp.asnumpy(named_stream(12345, "init").random(1000, dtype="float64"))
    np.testing.assert_array_equal(a, again)  # a fresh generator per call, same numbers
    others = [bnp.asnumpy(named_stream(s, n).random(1000, dtype="float64"))
              for s, n in [(12345, "batches"), (12345, "test-images"), (12346, "init")]]
    plain = bnp.asnumpy(bnp.random.Generator(12345).random(1000, dtype="float64"))
    for b in others + [plain]:
        assert not np.array_equal(a, b)
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.15  # 1000 pairs: |r| < 0.15 at ~4.7 sd


@pytest.mark.parametrize("bad", ["", None, 3])
def test_stream_name_must_be_a_nonempty_string(bad):
    with pytest.raises(ValueError, match="stream name"):
        named_stream(0, bad)
