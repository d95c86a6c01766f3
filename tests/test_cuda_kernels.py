"""The CUDA kernels of :mod:`bionp._cuda_kernels`, checked without a GPU.

The kernel source compiles as host C++ (its macros turn each kernel into a loop), so the
system compiler builds it here and the tests call it through ``ctypes``: the Philox
uniforms must be the array code's bits, the float32 Box–Muller normals too (correctly
rounded log/cos/sin through double), the float64 ones within a few ulp of NumPy's
(different maths libraries), the sparse products equal to dense products.
``nvcc --ptx`` (where installed) checks that the same text is valid CUDA with the
options CuPy compiles it with.  On a GPU, ``make gpu-check`` runs the CuPy cases.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from bionp import _cuda_kernels as ck
from bionp.random import Generator

u64, i64, i32 = ctypes.c_uint64, ctypes.c_longlong, ctypes.c_int
ptr = np.ctypeslib.ndpointer


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """The kernel source built as a host shared library (skipped without a C++ compiler)."""
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the kernel source for the host")
    d = tmp_path_factory.mktemp("cuda_host")
    (d / "k.cpp").write_text(ck.SOURCE)
    subprocess.run([cxx, "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o", str(d / "k.so"),
                    str(d / "k.cpp")], check=True, capture_output=True)
    lib = ctypes.CDLL(str(d / "k.so"))
    lib.philox_raw.argtypes = [u64] * 6 + [i64, ptr(np.uint64, flags="C_CONTIGUOUS")]
    for suffix, T, ct in (("f32", np.float32, ctypes.c_float), ("f64", np.float64, ctypes.c_double)):
        arr = ptr(T, flags="C_CONTIGUOUS")
        idx = ptr(np.int64, flags="C_CONTIGUOUS")
        getattr(lib, "philox_uniform_" + suffix).argtypes = [u64] * 6 + [i64, i64, arr]
        getattr(lib, "box_muller_" + suffix).argtypes = [i64, ct, i32, ct, i32, ct, arr]
        getattr(lib, "rows_matmul_" + suffix).argtypes = [i64, i64, i64, arr, idx, arr, arr]
        getattr(lib, "rows_matmul_t_" + suffix).argtypes = [i64, i64, i64, arr, idx, idx, arr, arr]
        getattr(lib, "rows_dot_" + suffix).argtypes = [i64, i64, i64, idx, arr, arr, arr]
    return lib


def host_uniform(lib, key, counter, out, start):
    """What :func:`bionp._cuda_kernels.philox_uniform` launches, run on the host."""
    per_block = 8 if out.dtype == np.float32 else 4
    block, lane = divmod(start, per_block)
    c = (counter + 1 + block) % (1 << 256)
    words = [(c >> (64 * j)) & (2**64 - 1) for j in range(4)]
    suffix = "f32" if out.dtype == np.float32 else "f64"
    getattr(lib, "philox_uniform_" + suffix)(key[0], key[1], *words, lane, out.shape[0], out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("skip", [0, 1, 7, 13])
@pytest.mark.parametrize("n", [0, 1, 5, 8, 1001])
def test_uniforms_are_the_generators_bits(host, dtype, skip, n):
    gen = Generator(1234)
    gen.random(skip, dtype=dtype)  # move the counter
    key, counter = gen.key, gen.counter
    want = gen.random(n + 11, dtype=dtype)
    for start in (0, 3, 11):
        got = np.full(n, -1.0, dtype=dtype)
        host_uniform(host, key, counter, got, start)
        np.testing.assert_array_equal(got, want[start:start + n])


@pytest.mark.parametrize("counter", [0, 17, 2**64 - 2, 2**128 - 1, 2**256 - 3])
def test_raw_blocks_are_the_array_codes(host, counter):
    from bionp.random.philox import philox4x64_10  # noqa: PLC0415

    key = (0x0123456789ABCDEF, 0xFEDCBA9876543210)
    n_blocks = 9
    out = np.empty(4 * n_blocks, dtype=np.uint64)
    c = (counter + 1) % (1 << 256)
    host.philox_raw(*key, *[(c >> (64 * j)) & (2**64 - 1) for j in range(4)], n_blocks, out)
    cs = [(counter + 1 + i) % (1 << 256) for i in range(n_blocks)]
    words = [np.array([(v >> (64 * j)) & (2**64 - 1) for v in cs], dtype=np.uint64)
             for j in range(4)]
    want = np.stack(philox4x64_10(np, words, key), axis=1).reshape(-1)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_counter_carries_across_64_bit_words(host, dtype):
    gen = Generator(5)
    state = gen.get_state()
    state["counter"] = 2**64 - 3  # the blocks cross into word 1 of the counter
    gen.set_state(state)
    key, counter = gen.key, gen.counter
    want = gen.random(100, dtype=dtype)
    got = np.empty(100, dtype=dtype)
    host_uniform(host, key, counter, got, 0)
    np.testing.assert_array_equal(got, want)


def ulp_distance(a, b):
    """Distance in units in the last place between two float arrays of one dtype."""
    it = np.int32 if a.dtype == np.float32 else np.int64
    ia, ib = a.view(it).astype(np.int64), b.view(it).astype(np.int64)
    # map the sign-magnitude floats to a monotone integer line
    ia = np.where(ia < 0, np.iinfo(it).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(it).min - ib, ib)
    return np.abs(ia - ib)


#: measured bound between the kernel's float64 normals (host libm here, CUDA's libdevice on
#: a GPU) and NumPy's, with scale/loc off and on; float32 normals are bit-identical
NORMAL_ULP_BOUND = 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale, loc", [(None, None), (0.5, None), (2.0, -1.0)])
def test_box_muller_matches_the_generator(host, dtype, scale, loc):
    n = 20_001  # odd: the generator draws one pair more than it returns
    half = -(-n // 2)
    gen = Generator(99)
    key, counter = gen.key, gen.counter
    want = gen.normal(0.0 if loc is None else loc, 1.0 if scale is None else scale, n,
                      dtype=dtype)
    z = np.empty(2 * half, dtype=dtype)
    host_uniform(host, key, counter, z, 0)
    suffix = "f32" if dtype == np.float32 else "f64"
    getattr(host, "box_muller_" + suffix)(half, dtype(2 * np.pi), scale is not None,
                                          0 if scale is None else scale, loc is not None,
                                          0 if loc is None else loc, z)
    if dtype == np.float32:  # correctly rounded log/cos/sin on both sides: the same bits
        np.testing.assert_array_equal(z[:n].view(np.uint32), want.view(np.uint32))
        return
    # far from zero, the ulp distance is the agreement of log/cos/sin; near loc the
    # difference of two rounded terms is compared in absolute terms
    eps = np.finfo(dtype).eps
    tol = 8 * eps * (1 + np.abs(want))
    assert np.all(np.abs(z[:n] - want) <= tol)
    if loc is None:
        assert ulp_distance(z[:n], want).max() <= NORMAL_ULP_BOUND


def sparse_case(dtype, rows=37, per_row=5, n_cols=23, m=9, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(n_cols, per_row, replace=False) for _ in range(rows)])
    w = rng.standard_normal((rows, per_row)).astype(dtype)
    S = np.zeros((rows, n_cols), dtype=np.float64)
    S[np.arange(rows)[:, None], idx] = w
    return w, idx.astype(np.int64), S, rng.standard_normal((n_cols, m)).astype(dtype), \
        rng.standard_normal((rows, m)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_products(host, dtype):
    w, idx, S, D, E = sparse_case(dtype)
    rows, per_row = w.shape
    n_cols, m = D.shape
    suffix = "f32" if dtype == np.float32 else "f64"
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    out = np.empty((rows, m), dtype=dtype)
    getattr(host, "rows_matmul_" + suffix)(rows, per_row, m, w, idx, D, out)
    np.testing.assert_allclose(out, S @ D, rtol=rtol, atol=rtol)
    # the transposed product through the column order rows_matmul builds on the GPU
    flat = idx.reshape(-1)
    perm = np.argsort(flat, kind="stable").astype(np.int64)
    col_ptr = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=n_cols))]).astype(np.int64)
    out_t = np.empty((n_cols, m), dtype=dtype)
    getattr(host, "rows_matmul_t_" + suffix)(n_cols, per_row, m, w, perm, col_ptr, E, out_t)
    np.testing.assert_allclose(out_t, S.T @ E, rtol=rtol, atol=rtol)
    dots = np.empty((rows, per_row), dtype=dtype)
    getattr(host, "rows_dot_" + suffix)(rows, per_row, m, idx, D, E, dots)
    np.testing.assert_allclose(dots, np.take_along_axis(E @ D.T, idx, axis=1), rtol=rtol,
                               atol=rtol)


def test_source_is_valid_cuda(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    src = tmp_path / "k.cu"
    src.write_text(ck.SOURCE)
    result = subprocess.run([nvcc, "--ptx", "-arch=sm_80", *ck.OPTIONS, "-o",
                             str(tmp_path / "k.ptx"), str(src)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    for name in ("philox_uniform_f32", "box_muller_f64", "rows_matmul_t_f32", "rows_dot_f64"):
        assert f".entry {name}" in ptx


# -- on a GPU (run by ``make gpu-check``: the names carry "gpu") -------------------------------

@pytest.fixture
def cp():
    from bionp.backend import cupy_available, use  # noqa: PLC0415

    if not cupy_available():
        pytest.skip("needs CuPy and a GPU")
    import bionp  # noqa: PLC0415

    previous = bionp.get_backend()
    xp = use("cupy")
    yield xp
    use(previous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_uniform_kernel_is_the_array_codes_bits(cp, monkeypatch, dtype):
    monkeypatch.setenv("BIONP_CUDA_KERNELS", "0")  # the generator's array code
    gen = Generator(2024)
    gen.random(13, dtype=dtype, xp=cp)
    key, counter = gen.key, gen.counter
    want = gen.random(100_003, dtype=dtype, xp=cp)
    for start in (0, 5):
        got = cp.full(100_003 - start, -1, dtype=dtype)
        ck.philox_uniform(cp, key, counter, got, start)
        assert bool(cp.all(got == want[start:]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale, loc", [(None, None), (0.3, 1.5)])
def test_gpu_box_muller_is_the_array_codes_bits(cp, monkeypatch, dtype, scale, loc):
    monkeypatch.setenv("BIONP_CUDA_KERNELS", "0")
    n = 200_001
    half = -(-n // 2)
    gen = Generator(11)
    key, counter = gen.key, gen.counter
    want = gen.normal(0.0 if loc is None else loc, 1.0 if scale is None else scale, n,
                      dtype=dtype, xp=cp)
    z = cp.empty(2 * half, dtype=dtype)
    ck.philox_uniform(cp, key, counter, z, 0)
    ck.box_muller(cp, z, half, scale, loc)
    assert bool(cp.all(z[:n] == want)), "the kernel's normals differ from CuPy's array code"
    host = Generator(11).normal(0.0 if loc is None else loc, 1.0 if scale is None else scale,
                                n, dtype=dtype)
    got = cp.asnumpy(z[:n])
    if dtype == np.float32:  # correctly rounded on both sides: NumPy's bits
        np.testing.assert_array_equal(got.view(np.uint32), host.view(np.uint32))
        return
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(got - host) <= 8 * eps * (1 + np.abs(host)))


def test_gpu_generator_same_bits_with_and_without_kernels(cp, monkeypatch):
    def draws():
        gen = Generator(77)
        return [gen.random(1001, dtype=np.float32, xp=cp), gen.random(999, dtype=np.float64, xp=cp),
                gen.normal(0.5, 2.0, (31, 17), dtype=np.float32, xp=cp),
                gen.normal(size=4001, dtype=np.float64, xp=cp),
                gen.integers(0, 1000, 5000, xp=cp), gen.permutation(777, xp=cp),
                gen.random_raw(10, xp=cp)]

    with_kernels = draws()
    monkeypatch.setenv("BIONP_CUDA_KERNELS", "0")
    for a, b in zip(with_kernels, draws()):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert bool(cp.all(a == b))
    host = Generator(77)
    np.testing.assert_array_equal(cp.asnumpy(with_kernels[0]), host.random(1001, dtype=np.float32))
    host.random(999, dtype=np.float64)
    want = host.normal(0.5, 2.0, (31, 17), dtype=np.float32, xp=np)  # float32: NumPy's bits
    np.testing.assert_array_equal(cp.asnumpy(with_kernels[2]).view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_sparse_products(cp, dtype):
    w, idx, S, D, E = sparse_case(dtype, rows=300, per_row=16, n_cols=200, m=64)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    gw, gidx, gD, gE = (cp.asarray(a) for a in (w, idx, D, E))
    np.testing.assert_allclose(cp.asnumpy(ck.rows_matmul(cp, gw, gidx, 200, gD)), S @ D,
                               rtol=rtol, atol=rtol)
    np.testing.assert_allclose(cp.asnumpy(ck.rows_matmul(cp, gw, gidx, 200, gE, True)),
                               S.T @ E, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(cp.asnumpy(ck.rows_dot(cp, gidx, gD, gE)),
                               np.take_along_axis(E @ D.T, idx, axis=1), rtol=rtol, atol=rtol)
