"""The strict backend holds code to CuPy's API surface (bionp/_cupy_surface.json): each
NumPy-only call below works on NumPy and is refused on strict, naming CuPy's equivalent
where one exists; the CuPy-compatible forms of the same calls still work."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import bionp as bnp
from bionp import _surface

ROOT = Path(__file__).resolve().parent.parent


def _arr(xp):
    return xp.asarray(np.arange(12, dtype=np.float64).reshape(3, 4))


#: (what, call(xp, a)) -- valid NumPy that CuPy (the pinned release) does not accept.
NUMPY_ONLY = [
    # module attributes CuPy lacks
    ("xp.errstate", lambda xp, a: xp.errstate(all="ignore")),
    ("xp.seterr", lambda xp, a: xp.seterr(all="ignore")),
    ("xp.geterr", lambda xp, a: xp.geterr()),
    ("xp.spacing", lambda xp, a: xp.spacing(a)),
    ("xp.insert", lambda xp, a: xp.insert(a, 0, 1.0)),
    ("xp.geomspace", lambda xp, a: xp.geomspace(1.0, 10.0, 3)),
    ("xp.nanpercentile", lambda xp, a: xp.nanpercentile(a, 50)),
    ("xp.nanquantile", lambda xp, a: xp.nanquantile(a, 0.5)),
    ("xp.nditer", lambda xp, a: xp.nditer),
    ("xp.ndenumerate", lambda xp, a: xp.ndenumerate),
    ("xp.frompyfunc", lambda xp, a: xp.frompyfunc(abs, 1, 1)),
    ("xp.block", lambda xp, a: xp.block([[a, a]])),
    ("xp.unstack", lambda xp, a: xp.unstack(a)),
    ("xp.vecdot", lambda xp, a: xp.vecdot(a, a)),
    ("xp.matvec", lambda xp, a: xp.matvec(a[:, :3], a[0, :3])),
    ("xp.isnat", lambda xp, a: xp.isnat),
    ("xp.histogram_bin_edges", lambda xp, a: xp.histogram_bin_edges(a, 3)),
    ("xp.einsum_path", lambda xp, a: xp.einsum_path("ij,jk->ik", a, a.T)),
    ("xp.polyder", lambda xp, a: xp.polyder(a[0])),
    ("xp.ma", lambda xp, a: xp.ma),
    ("xp.linalg.multi_dot", lambda xp, a: xp.linalg.multi_dot([a, a.T, a])),
    ("xp.linalg.vector_norm", lambda xp, a: xp.linalg.vector_norm(a)),
    # ufunc keywords (CuPy's ufuncs take out, dtype, casting) and ufunc members
    ("xp.add(where=)", lambda xp, a: xp.add(a, 1.0, out=xp.zeros_like(a), where=a > 3)),
    ("xp.exp(order=)", lambda xp, a: xp.exp(a, order="C")),
    ("xp.multiply(subok=)", lambda xp, a: xp.multiply(a, 2.0, subok=True)),
    ("xp.matmul(subok=)", lambda xp, a: xp.matmul(a, a.T, subok=True)),
    ("xp.add.reduce(initial=)", lambda xp, a: xp.add.reduce(a, axis=0, initial=1.0)),
    ("xp.maximum.reduce(where=)", lambda xp, a: xp.maximum.reduce(a, axis=0, initial=0.0, where=a > 1)),
    ("xp.add.identity", lambda xp, a: xp.add.identity),
    ("xp.add.signature", lambda xp, a: xp.add.signature),
    ("xp.matmul.reduce", lambda xp, a: xp.matmul.reduce),
    # function keywords
    ("xp.take(mode=)", lambda xp, a: xp.take(a, xp.asarray([0, 2]), axis=0, mode="clip")),
    ("xp.sum(where=)", lambda xp, a: xp.sum(a, where=a > 3)),
    ("xp.max(initial=)", lambda xp, a: xp.max(a, initial=0.0)),
    ("xp.mean(where=)", lambda xp, a: xp.mean(a, axis=0, where=a > 3)),
    ("xp.argpartition(kind=)", lambda xp, a: xp.argpartition(a, 1, kind="introselect")),
    ("xp.clip(min=)", lambda xp, a: xp.clip(a, min=0.0, max=3.0)),
    ("xp.zeros(like=)", lambda xp, a: xp.zeros(3, like=a)),
    ("xp.asarray(device=)", lambda xp, a: xp.asarray([1.0], device="cpu")),
    ("xp.std(correction=)", lambda xp, a: xp.std(a, correction=1)),
    ("xp.argsort(stable=)", lambda xp, a: xp.argsort(a, stable=True)),
    ("xp.linalg.svd(hermitian=)", lambda xp, a: xp.linalg.svd(a, compute_uv=False, hermitian=False)),
    # array methods and method keywords
    ("a.resize", lambda xp, a: a.copy().resize((2, 6))),
    ("a.setflags", lambda xp, a: a.setflags(write=True)),
    ("a.getfield", lambda xp, a: a.getfield(np.float64)),
    ("a.to_device", lambda xp, a: a.to_device("cpu")),
    ("a.sum(where=)", lambda xp, a: a.sum(where=a > 3)),
    ("a.max(initial=)", lambda xp, a: a.max(initial=0.0)),
    ("a.argpartition(kind=)", lambda xp, a: a.argpartition(1, kind="introselect")),
    ("a.take(mode=)", lambda xp, a: a.take(xp.asarray([0, 1]), mode="clip")),
    ("a.std(where=)", lambda xp, a: a.std(where=a > 3)),
]


@pytest.mark.parametrize("what,call", NUMPY_ONLY, ids=[w for w, _ in NUMPY_ONLY])
def test_numpy_only_call_refused_on_strict(what, call):
    call(np, _arr(np))  # valid NumPy: the test would fail if the call were wrong
    with bnp.backend("strict") as xp:
        with pytest.raises((AttributeError, TypeError), match="CuPy"):
            call(xp, _arr(xp))


def test_refusals_name_the_equivalent():
    with bnp.backend("strict") as xp:
        with pytest.raises(AttributeError, match=r"cupyx\.errstate"):
            xp.errstate
        with pytest.raises(AttributeError, match=r"cupy\.resize"):
            _arr(xp).resize((2, 6))
        with pytest.raises(TypeError, match=r"'where'.*takes: out, dtype, casting"):
            xp.add(_arr(xp), 1.0, where=True)
        with pytest.raises(TypeError, match=r"'mode'.*cupy\.take"):
            xp.take(_arr(xp), xp.asarray([0]), mode="clip")


def test_cupy_forms_still_work():
    with bnp.backend("strict") as xp:
        a = _arr(xp)
        out = xp.empty_like(a)
        xp.add(a, 1.0, out=out, casting="same_kind", dtype=a.dtype)
        assert float(bnp.to_scalar(out.sum())) == 78.0
        rows = xp.empty((2, 4), dtype=a.dtype)
        xp.take(a, xp.asarray([2, 0]), axis=0, out=rows)
        assert bnp.asnumpy(rows)[0, 0] == 8.0
        assert bnp.asnumpy(xp.add.reduce(a, axis=0, keepdims=True)).shape == (1, 4)
        acc = xp.zeros(3, dtype=a.dtype)
        xp.add.at(acc, xp.asarray([0, 0, 2]), 1.0)
        assert bnp.asnumpy(acc).tolist() == [2.0, 0.0, 1.0]
        assert bnp.asnumpy(a.sum(axis=0, keepdims=True)).shape == (1, 4)
        assert bnp.asnumpy(a.argpartition(1, axis=1)).shape == (3, 4)
        assert bnp.asnumpy(xp.matmul(a, a.T, out=xp.empty((3, 3)))).shape == (3, 3)
        assert bnp.asnumpy(xp.linalg.norm(a, axis=1)).shape == (3,)
        assert xp.add.nin == 2 and xp.add.name == "add"
        assert bnp.asnumpy(xp.asarray([1.0, 2.0], dtype=np.float32)).dtype == np.float32


def test_surface_file_is_cupys():
    s = _surface.surface()
    assert s["generated_by"] == "tools/generate_cupy_surface.py"
    assert int(s["cupy_version"].split(".")[0]) >= 13
    assert s["ufunc"]["call_keywords"] == ["out", "dtype", "casting"]
    assert s["module"]["take"]["params"] == ["a", "indices", "axis", "out"]
    assert s["module"]["matmul"]["kind"] == "gufunc" and s["module"]["add"]["kind"] == "ufunc"
    assert "linalg" in s["submodules"] and "resize" not in s["ndarray"]
    assert json.loads(_surface.SURFACE_FILE.read_text()) == s


def _tool():
    spec = importlib.util.spec_from_file_location("generate_cupy_surface",
                                                  ROOT / "tools" / "generate_cupy_surface.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _doc(line):
    return type("F", (), {"__doc__": line})()


def test_generator_reads_cython_signatures():
    tool = _tool()
    assert tool._from_doc(_doc("ufunc.reduce(self, array, axis=0, dtype=None, out=None, keepdims=False)")) \
        == {"params": ["array", "axis", "dtype", "out", "keepdims"], "varkw": False}
    assert tool._from_doc(_doc("add(x1, x2, /, out=None, \\*, casting='same_kind', dtype=None)")) \
        == {"params": ["out", "casting", "dtype"], "varkw": False}
    assert tool._from_doc(_doc("_ndarray_base.dot(self, _ndarray_base b, _ndarray_base out=None)")) \
        == {"params": ["b", "out"], "varkw": False}
    assert tool._from_doc(_doc("_ndarray_base.reshape(self, *shape, order='C', copy=None)")) \
        == {"params": ["order", "copy"], "varkw": False}
    assert tool._from_doc(_doc("ufunc.outer(self, A, B, **kwargs)"))["varkw"] is True
    assert tool._from_doc(_doc("f(a, shape=(1, 2), s='x,y')"))["params"] == ["a", "shape", "s"]
    assert tool._from_doc(_doc("Not a signature.")) is None


def test_item_takes_no_index_as_on_cupy():
    with bnp.backend("strict") as xp:
        a = _arr(xp)
        assert a[1, 2].item() == 6.0
        with pytest.raises(TypeError):
            a.item(0)
        with pytest.raises(ValueError, match="size 1"):
            a.item()


@pytest.mark.parametrize("kth", [3, -2, [1, 5], 0, 7])
def test_partition_order_within_sides_differs_from_numpy(kth):
    """A valid partition (what CuPy guarantees) whose sides are not in NumPy's order:
    code relying on NumPy's order inside a side fails on strict as it may on CuPy."""
    g = np.random.default_rng(0)
    host = g.permutation(40).reshape(5, 8).astype(np.float64)
    ref = np.argpartition(host, kth, axis=1)
    with bnp.backend("strict") as xp:
        a = xp.asarray(host)
        for p in (bnp.asnumpy(xp.argpartition(a, kth, axis=1)), bnp.asnumpy(a.argpartition(kth, axis=1))):
            vals = np.take_along_axis(host, p, axis=1)
            for k in np.atleast_1d(kth):
                k = int(k) % 8
                np.testing.assert_array_equal(vals[:, k], np.sort(host, axis=1)[:, k])
                assert (vals[:, :k] <= vals[:, k:k + 1]).all() and (vals[:, k + 1:] >= vals[:, k:k + 1]).all()
            np.testing.assert_array_equal(np.sort(p, axis=1), np.tile(np.arange(8), (5, 1)))
            if kth in (3, -2):
                assert not np.array_equal(p, ref)
        part = bnp.asnumpy(xp.partition(a, kth, axis=1))
        np.testing.assert_array_equal(np.sort(part, axis=1), np.sort(host, axis=1))
        ks = [int(k) % 8 for k in np.atleast_1d(kth)]
        np.testing.assert_array_equal(part[:, ks], np.sort(host, axis=1)[:, ks])
        b = xp.asarray(host)
        assert b.partition(kth, axis=1) is None  # in place
        np.testing.assert_array_equal(np.sort(bnp.asnumpy(b), axis=1), np.sort(host, axis=1))
        np.testing.assert_array_equal(bnp.asnumpy(b)[:, ks], np.sort(host, axis=1)[:, ks])
        flat = bnp.asnumpy(xp.argpartition(a, 3, axis=None))
        assert flat.shape == (40,) and host.ravel()[flat][3] == 3.0


def test_ufunc_out_partly_overlapping_an_input_is_refused():
    """NumPy copies an input that overlaps out=; CuPy does not (undefined result)."""
    host = np.arange(6.0)
    np.add(host[1:], host[:-1], out=host[1:])  # fine on NumPy
    with bnp.backend("strict") as xp:
        a = xp.asarray(np.arange(6.0))
        with pytest.raises(ValueError, match="partly overlaps input 0.*CuPy does not"):
            xp.add(a[1:], a[:-1], out=a[:-1])
        with pytest.raises(ValueError, match="partly overlaps input 1"):
            xp.multiply(2.0, a[::-1], out=a)
        m = xp.asarray(np.ones((3, 3)))
        with pytest.raises(ValueError, match="overlaps"):
            xp.matmul(m, m.T, out=m)
        xp.add(a, 1.0, out=a)  # out is the input itself: fine on both
        xp.subtract(1.0, a[:3], out=a[:3])
        xp.add(a[:3], a[3:], out=a[:3])  # the same view as input 0; input 1 disjoint
        assert bnp.asnumpy(a).tolist() == [4.0, 4.0, 4.0, 4.0, 5.0, 6.0]
