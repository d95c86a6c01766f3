import contextvars
import importlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import bionp as bnp

B = importlib.import_module("bionp.backend")
K = importlib.import_module("bionp.kernels")


def test_default_is_numpy_float32():
    assert bnp.get_xp() is np
    assert bnp.get_dtype() == np.float32


def test_use_and_scoped_switch():
    bnp.use("strict")
    assert bnp.backend_name() == "strict"
    with bnp.backend("numpy") as xp:
        assert xp is np and bnp.get_xp() is np
    assert bnp.backend_name() == "strict"
    bnp.use("numpy")


def test_scoped_switch_restored_on_error():
    with pytest.raises(RuntimeError):
        with bnp.backend("strict"):
            raise RuntimeError("boom")
    assert bnp.backend_name() == "numpy"


def test_scoped_switch_is_thread_local():
    seen = {}
    barrier = threading.Barrier(2)

    def worker(name):
        with bnp.backend(name):
            barrier.wait()
            seen[name] = bnp.backend_name()
            barrier.wait()

    ts = [threading.Thread(target=worker, args=(n,)) for n in ("numpy", "strict")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert seen == {"numpy": "numpy", "strict": "strict"}


def test_scoped_dtype():
    with bnp.default_dtype("float64"):
        assert bnp.get_dtype() == np.float64
        ctx = contextvars.copy_context()
        assert ctx.run(bnp.get_dtype) == np.float64
    assert bnp.get_dtype() == np.float32


@pytest.mark.parametrize("bad", ["jax", "", "NumPyy"])
def test_unknown_backend(bad):
    with pytest.raises(ValueError, match="unknown backend"):
        bnp.use(bad)
    with pytest.raises(ValueError, match="expected one of"):
        with bnp.backend(bad):
            pass


def test_backend_name_must_be_str():
    with pytest.raises(TypeError, match="string"):
        bnp.use(np)


@pytest.mark.parametrize("bad", ["float16", "int32", "double precision", None, 3])
def test_unknown_dtype(bad):
    with pytest.raises(ValueError, match="float32"):
        bnp.set_dtype(bad)


def test_set_dtype():
    assert bnp.set_dtype("float64") == np.float64
    assert bnp.get_dtype() == np.float64
    bnp.set_dtype(np.float32)
    assert bnp.get_dtype() == np.float32


def test_cupy_missing_error(monkeypatch):
    monkeypatch.setattr(B, "_cupy_state", {})
    monkeypatch.setitem(sys.modules, "cupy", None)  # import fails
    with pytest.raises(bnp.BackendUnavailableError, match=r"bionp\[cuda12\]"):
        bnp.use("cupy")
    assert bnp.backend_name() == "numpy"  # unchanged
    assert not B.cupy_available()


def test_cupy_without_gpu(monkeypatch):
    import types

    fake = types.ModuleType("cupy")

    def count():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    monkeypatch.setattr(B, "_cupy_state", {})
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(bnp.BackendUnavailableError, match="visible CUDA GPU"):
        bnp.use("cupy")


def test_env_var(monkeypatch):
    monkeypatch.setitem(B._global, "backend", None)
    monkeypatch.setenv("BIONP_BACKEND", "strict")
    assert bnp.backend_name() == "strict"
    monkeypatch.setitem(B._global, "backend", None)
    monkeypatch.setenv("BIONP_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="BIONP_BACKEND"):
        bnp.get_xp()


def test_get_array_module(cpu_xp):
    a = cpu_xp.ones(3)
    assert bnp.get_array_module(a, 1.0, None) is cpu_xp
    assert bnp.get_array_module() is cpu_xp


def test_mixed_arrays_named():
    with bnp.backend("strict") as sx:
        d = sx.ones(3)
    with pytest.raises(bnp.MixedBackendError, match=r"argument 0 is a numpy array, argument 1 is a strict array"):
        bnp.get_array_module(np.ones(3), d)
    with pytest.raises(bnp.MixedBackendError, match="W is a strict array, x is a numpy array"):
        B.check_same_backend(d, np.ones(2), names=("W", "x"))


def test_asarray_and_asnumpy_roundtrip(xp):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    dev = bnp.asarray(host)
    assert bnp.get_array_module(dev) is xp
    back = bnp.asnumpy(dev)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    assert bnp.to_scalar(dev[1, 2]) == 5.0
    with pytest.raises(ValueError, match="one element"):
        bnp.to_scalar(dev)


def test_import_is_light():
    code = (
        "import sys; import bionp;"
        "bad=[m for m in ('cupy','torch','torchvision','matplotlib','dask','distributed','scipy') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    # what ``import bionp`` loads, not how long it takes: a timed assertion fails on a
    # loaded machine (import time is measured by benchmarks, not tests)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, f"import bionp pulled in heavy modules: {out.stdout} {out.stderr}"


def test_submodules_lazy():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        bnp.nonexistent  # noqa: B018


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("per_row", [1, 4, 7])  # the compiled kernels take 4 synapses at a time
def test_sparse_rows_matmul_against_dense(cpu_xp, host_kernels, dtype, per_row):
    """S @ D and S.T @ D of the sparse matrix with fixed nonzeros per row (unsorted indices)."""
    g = bnp.random.Generator(3)
    rows, n_cols, m = 9, 17, 5
    idx = np.stack([np.random.default_rng(i).permutation(n_cols)[:per_row] for i in range(rows)])
    w = bnp.asnumpy(g.normal(0, 1, (rows, per_row), dtype=dtype))
    S = np.zeros((rows, n_cols), dtype=dtype)
    S[np.arange(rows)[:, None], idx] = w
    X = bnp.asnumpy(g.normal(0, 1, (n_cols, m), dtype=dtype))
    E = bnp.asnumpy(g.normal(0, 1, (rows, m), dtype=dtype))
    assert K.sparse_rows_matmul_available(cpu_xp)
    dev = {k: bnp.asarray(v) for k, v in dict(w=w, idx=idx, X=X, E=E).items()}
    y = K.sparse_rows_matmul(cpu_xp, dev["w"], dev["idx"], n_cols, dev["X"])
    yt = K.sparse_rows_matmul(cpu_xp, dev["w"], dev["idx"], n_cols, dev["E"], transpose=True)
    assert bnp.get_array_module(y) is cpu_xp and y.dtype == np.dtype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(bnp.asnumpy(y), S @ X, rtol=tol, atol=tol)
    np.testing.assert_allclose(bnp.asnumpy(yt), S.T @ E, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match=r"dense must have shape \(17, m\)"):
        K.sparse_rows_matmul(cpu_xp, dev["w"], dev["idx"], n_cols, dev["E"])
    if cpu_xp is not np:
        with pytest.raises(bnp.MixedBackendError):
            K.sparse_rows_matmul(cpu_xp, dev["w"], dev["idx"], n_cols, X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("per_row", [1, 3, 4, 9])
def test_sparse_rows_dot_is_the_sampled_product(cpu_xp, host_kernels, dtype, per_row):
    """P[k, j] = other[k] . dense[idx[k, j]]: (E D^T) at the synapses, or None without Numba."""
    g = bnp.random.Generator(4)
    rows, n, m = 11, 13, 37
    idx = np.stack([np.random.default_rng(i).permutation(n)[:per_row] for i in range(rows)])
    D = bnp.asnumpy(g.normal(0, 1, (n, m), dtype=dtype))
    E = bnp.asnumpy(g.normal(0, 1, (rows, m), dtype=dtype))
    dev = {k: bnp.asarray(v) for k, v in dict(idx=idx, D=D, E=E).items()}
    P = K.sparse_rows_dot(cpu_xp, dev["idx"], dev["D"], dev["E"])
    assert K.sparse_rows_dot_available(cpu_xp) == (host_kernels == "compiled")
    if host_kernels != "compiled":
        assert P is None
        return
    assert bnp.get_array_module(P) is cpu_xp and P.dtype == np.dtype(dtype)
    assert tuple(P.shape) == (rows, per_row)
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(bnp.asnumpy(P), np.take_along_axis(E @ D.T, idx, axis=1),
                               rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="sparse_rows_dot"):
        K.sparse_rows_dot(cpu_xp, dev["idx"], dev["D"], dev["E"][:, :5])
    if cpu_xp is not np:
        with pytest.raises(bnp.MixedBackendError):
            K.sparse_rows_dot(cpu_xp, dev["idx"], D, dev["E"])


def test_compiled_kernels_refuse_out_of_range_indices():
    """An index outside the dense matrix raises instead of reading or writing past it."""
    pytest.importorskip("numba")
    from bionp import _kernels

    if not _kernels.available():
        pytest.skip("compiled kernels disabled (BIONP_NUMBA=0)")
    w = np.ones((3, 5), np.float32)
    for bad in (7, -1):
        idx = np.tile(np.arange(5), (3, 1))
        idx[2, 4] = bad  # in the tail after a group of four, and
        idx2 = idx.copy()
        idx2[1, 0], idx2[2, 4] = bad, 4  # in a group of four
        for ix in (idx, idx2):
            with pytest.raises(IndexError, match="out of range"):
                K.sparse_rows_matmul(np, w, ix, 7, np.ones((7, 2), np.float32))
            with pytest.raises(IndexError, match="out of range"):
                K.sparse_rows_matmul(np, w, ix, 7, np.ones((3, 2), np.float32), transpose=True)
            with pytest.raises(IndexError, match="out of range"):
                K.sparse_rows_dot(np, ix, np.ones((7, 2), np.float32), np.ones((3, 2), np.float32))


def test_compiled_kernels_switch(monkeypatch):
    """BIONP_NUMBA=0 (read on every call) or a missing Numba selects SciPy's kernels."""
    from bionp import _kernels

    monkeypatch.setenv("BIONP_NUMBA", "0")
    assert not _kernels.available() and not K.sparse_rows_dot_available(np)
    assert K.sparse_rows_dot(np, np.zeros((1, 1), np.int64), np.ones((1, 2)), np.ones((1, 2))) \
        is None
    monkeypatch.setenv("BIONP_NUMBA", "1")
    monkeypatch.setitem(_kernels._state, "kernels", None)  # as if Numba were not installed
    assert not _kernels.available()
    w = np.ones((1, 2), np.float32)
    np.testing.assert_allclose(K.sparse_rows_matmul(np, w, np.array([[0, 2]]), 3,
                                                    np.arange(6.0, dtype=np.float32).reshape(3, 2)),
                               [[4.0, 6.0]])


def test_sparse_rows_matmul_public_scipy_fallback(monkeypatch):
    """Without SciPy's kernels under their private names, the public CSR product is used."""
    monkeypatch.setenv("BIONP_NUMBA", "0")
    monkeypatch.setitem(K._csr_state, "kernels", None)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    idx = np.array([[0, 4], [3, 1], [2, 0]])
    S = np.zeros((3, 5), np.float32)
    S[np.arange(3)[:, None], idx] = w
    X = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(K.sparse_rows_matmul(np, w, idx, 5, X), S @ X, rtol=1e-6)
    np.testing.assert_allclose(K.sparse_rows_matmul(np, w, idx, 5, S @ X, transpose=True),
                               S.T @ (S @ X), rtol=1e-5)


def test_take_rows_writes_into_out(xp):
    a = bnp.asarray(np.arange(12.0).reshape(4, 3))
    out = xp.empty((5, 3))
    K.take_rows(xp, a, bnp.asarray(np.array([3, 0, 0, 2, 1])), out)
    np.testing.assert_array_equal(bnp.asnumpy(out), np.arange(12.0).reshape(4, 3)[[3, 0, 0, 2, 1]])


def _bionp_imports(module):
    """Every bionp module ``module``'s source imports (top-level and function-local)."""
    import ast

    tree = ast.parse(open(module.__file__).read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in found if n.split(".")[0] == "bionp"}


def test_backend_and_strict_do_not_import_each_other():
    """The error types live below both (bionp._errors): backend -> _strict -> _errors, no cycle."""
    strict, errors = importlib.import_module("bionp._strict"), importlib.import_module("bionp._errors")
    surface = importlib.import_module("bionp._surface")
    for module in (strict, surface):  # nothing of the backend switch below it
        assert not any(n == "bionp.backend" or n.startswith("bionp.backend.")
                       for n in _bionp_imports(module)), _bionp_imports(module)
    assert "bionp._errors.MixedBackendError" in _bionp_imports(strict)
    assert _bionp_imports(errors) == set()
    assert "bionp._strict" in str(_bionp_imports(B))  # the one direction kept
    for name in ("BackendError", "BackendUnavailableError", "MixedBackendError"):
        cls = getattr(errors, name)
        assert getattr(bnp, name) is getattr(B, name) is cls
        assert cls.__module__ == "bionp.backend" and f"bionp.backend.{name}" in repr(cls)
    assert strict.MixedBackendError is bnp.MixedBackendError


def test_preserved_defaults_restores_backend_and_dtype_also_on_error():
    bnp.use("numpy")
    bnp.set_dtype("float32")
    with bnp.preserved_defaults():
        bnp.use("strict")
        bnp.set_dtype("float64")
        assert bnp.backend_name() == "strict" and bnp.get_dtype() == np.float64
    assert bnp.backend_name() == "numpy" and bnp.get_dtype() == np.float32
    with pytest.raises(RuntimeError, match="inside"):
        with bnp.preserved_defaults(backend="strict", dtype="float64"):
            assert bnp.backend_name() == "strict" and bnp.get_dtype() == np.float64
            raise RuntimeError("inside")
    assert bnp.backend_name() == "numpy" and bnp.get_dtype() == np.float32


def test_preserved_defaults_refuses_unknown_names_and_changes_nothing():
    with pytest.raises(ValueError, match="unknown backend"):
        with bnp.preserved_defaults(backend="tpu"):
            pass
    with pytest.raises(ValueError, match="float32"):
        with bnp.preserved_defaults(backend="strict", dtype="int8"):
            pass
    assert bnp.backend_name() == "numpy" and bnp.get_dtype() == np.float32
