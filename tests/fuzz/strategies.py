"""Hypothesis strategies of bad (and valid) values per argument kind of ``entry_points.Arg``."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from bionp.random import Generator

#: a folder of fixed files the path-taking kinds point at (created once per process)
_TMP = Path(tempfile.mkdtemp(prefix="bionp-fuzz-"))
(_TMP / "a_file.txt").write_text("not a folder, not a checkpoint")
(_TMP / "empty.bin").write_bytes(b"")
(_TMP / "a_folder").mkdir()
(_TMP / "a_folder.npz").mkdir()
(_TMP / "garbage.npz").write_bytes(os.urandom(64))
(_TMP / "text.json").write_text('{"not": "a sweep"')

NOT_A_THING = [None, "abc", "", b"x", [1], (1, 2), {"a": 1}, 1 + 2j, object(), print]
NON_FINITE = [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf")]
ARRAY_BAD_DTYPES = ["complex64", "complex128", "int8", "int32", "int64", "uint8", "bool",
                    "object", "<U3"]


def _types(none_ok: bool, *extra, array_ok=False):
    vals = [v for v in NOT_A_THING + list(extra) if not (none_ok and v is None)
            and not (array_ok and isinstance(v, (list, tuple, np.ndarray)))]
    return st.sampled_from(vals)


# ------------------------------------------------------------------------------------ scalars
def bad_int(a):
    parts = [_types(a.none_ok, True, False, np.bool_(True), array_ok=a.array_ok),
             st.sampled_from(NON_FINITE),
             st.floats(allow_nan=False, allow_infinity=False).filter(
                 lambda v: not float(v).is_integer()),
             st.sampled_from([2.0, np.float64(3.0), np.array(2.5)]
                             + ([] if a.array_ok else [np.array([2])]))]
    if a.lo is not None:
        parts.append(st.integers(max_value=a.lo - 1))
        # NumPy ints too, within int64's range (hypothesis draws unbounded Python ints)
        parts.append(st.integers(min_value=-2**63, max_value=a.lo - 1).map(np.int64)
                     if a.lo - 1 >= -2**63 else st.nothing())
    if a.hi is not None:
        parts.append(st.integers(min_value=a.hi + 1))
    return st.one_of(parts)


def valid_int(a):
    lo = a.lo if a.lo is not None else (a.hi - 10 if a.hi is not None else -10)
    hi = a.hi if a.hi is not None else lo + int(a.valid_span or 10)
    if a.valid_span is not None:
        hi = min(hi, lo + int(a.valid_span))
    s = st.integers(lo, hi)
    return st.one_of(s, s.map(np.int64)) | (st.none() if a.none_ok else st.nothing())


def _outside(a):
    parts = []
    if a.lo is not None:
        below = st.floats(max_value=a.lo, allow_nan=False, allow_infinity=False,
                          exclude_max=not a.lo_open)
        parts += [below, st.integers(max_value=math.ceil(a.lo) - 1 if not a.lo_open
                                     else math.floor(a.lo))]
    if a.hi is not None:
        above = st.floats(min_value=a.hi, allow_nan=False, allow_infinity=False,
                          exclude_min=not a.hi_open)
        parts += [above, st.integers(min_value=math.floor(a.hi) + 1 if not a.hi_open
                                     else math.ceil(a.hi))]
    return parts


def bad_real(a):
    return st.one_of([_types(a.none_ok, True, np.bool_(False), np.array([0.5]),
                             array_ok=a.array_ok),
                      st.sampled_from(NON_FINITE), *_outside(a)])


def valid_real(a):
    lo = a.lo if a.lo is not None else -1e6
    hi = a.hi if a.hi is not None else 1e6
    if a.valid_span is not None:
        hi = min(hi, lo + a.valid_span)
    s = st.floats(lo, hi, exclude_min=a.lo_open, exclude_max=a.hi_open, allow_nan=False)
    return st.one_of(s, s.map(np.float32).filter(
        lambda v: (a.lo is None or (v > a.lo if a.lo_open else v >= a.lo))
        and (a.hi is None or (v < a.hi if a.hi_open else v <= a.hi)))) \
        | (st.none() if a.none_ok else st.nothing())


def bad_name(a):
    known = {c.lower().replace("-", "_") for c in a.choices}
    unknown = st.text(max_size=12).filter(lambda s: s.lower().replace("-", "_").strip()
                                          not in known)
    return st.one_of(unknown, _types(a.none_ok, 3, 2.5, True).filter(
        lambda v: not isinstance(v, str) and not callable(v)))


def bad_rng():
    return st.one_of(st.integers(max_value=-1), st.floats().filter(lambda v: not v.is_integer()),
                     st.sampled_from(["abc", "1", [1, 2], 1 + 1j, True, np.random.default_rng(0),
                                      math.nan, object()]))


def valid_rng():
    return st.one_of(st.integers(0, 2**32), st.none(), st.integers(0, 99).map(Generator))


def bad_dtype(a):
    return st.sampled_from(["int32", "float16", "complex64", "bool", "banana", np.int8, int,
                            complex, 3, "", object, [np.float32]]
                           + ([] if a.none_ok else [None]))


def valid_dtype(a):
    return st.sampled_from(["float32", "float64", np.float32, np.dtype("float64")]
                           + ([None] if a.none_ok else []))


def bad_size():
    return st.sampled_from([-1, 2.5, "3", (2, -1), (2.0, 3), math.nan, [1, "a"], 1 + 1j,
                            np.array([[2]]), True])


def valid_size():
    return st.one_of(st.integers(0, 6), st.tuples(st.integers(0, 3), st.integers(1, 3)))


def bad_root():
    return st.sampled_from([_TMP / "nowhere", str(_TMP / "nowhere" / "deeper"),
                            _TMP / "a_file.txt", str(_TMP / "a_file.txt"), 3, 2.5, [str(_TMP)],
                            _TMP / "a_folder", ""])


def bad_file(store=False):
    return st.sampled_from(([] if store else [_TMP / "nowhere.npz", str(_TMP / "nowhere")]) + [
                            _TMP / "a_folder",
                            _TMP / "a_folder.npz"]
                           + ([] if store else [_TMP / "empty.bin", _TMP / "text.json",
                                                _TMP / "garbage.npz", _TMP / "a_file.txt"]))


def bad_grid():
    return st.sampled_from(["abc", 3, None, [1], {"a": 3}, {"a": []}, {1: [1]}, {"a": "xyz"},
                            [{"a": [1]}, 3], {"": [1]}, {"a": {1, 2}}])


def bad_configs():
    return st.sampled_from(["abc", 3, None, [1], [{"a": 1}, "b"], [{1: 1}], [[("a", 1)]]])


def bad_gstate():
    return st.sampled_from([None, {}, "x", 3, {"key": "a"}, {"key": [1, 2], "counter": "x"},
                            {"key": [1, 2], "counter": -1}, {"bit_generator": "MT19937"},
                            {"key": [1.5, 2], "counter": [0, 0, 0, 0]}])


# ------------------------------------------------------------------------------------- arrays
def _array(shape, dtype="float32", seed=0):
    return Generator(seed).normal(0, 1, shape).astype(dtype)


def bad_floats(a, shape, free=(0,), checks=("rank", "shape", "dtype", "nonfinite", "empty",
                                            "type")):
    shape = tuple(shape)
    parts = []
    if "rank" in checks:
        ranks = st.integers(0, 5).filter(lambda r: r != len(shape) and r not in a.ranks)
        parts.append(ranks.map(lambda r: _array(shape[:r] if r < len(shape)
                                                else shape + (2,) * (r - len(shape)))))
    if "shape" in checks:
        fixed = [i for i in range(len(shape)) if i not in free]
        if fixed:
            parts.append(st.tuples(st.sampled_from(fixed), st.integers(-3, 4).filter(bool)).map(
                lambda ik: _array(tuple(max(1, s + ik[1]) if i == ik[0] and s + ik[1] != s
                                        else s for i, s in enumerate(shape)))).filter(
                lambda x: x.shape != shape))
    if "dtype" in checks:
        parts.append(st.sampled_from(ARRAY_BAD_DTYPES).map(
            lambda d: _array(shape).astype(d) if d not in ("object", "<U3")
            else np.full(shape, None if d == "object" else "abc", dtype=d)))
    if "nonfinite" in checks:
        n = int(np.prod(shape))
        parts.append(st.tuples(st.integers(0, max(n - 1, 0)), st.sampled_from(NON_FINITE),
                               st.sampled_from(["float32", "float64"])).map(
            lambda t: _poison(_array(shape, t[2]), t[0], t[1])))
    if "empty" in checks:
        parts.append(st.just(np.zeros((0,) + shape[1:], np.float32)))
    if "type" in checks:
        parts.append(st.sampled_from([None, "x", 3.0, {"x": 1}, object()]))
    return st.one_of(parts)


def _poison(x, i, v):
    x.reshape(-1)[i] = v
    return x


def valid_floats(a, shape, free=(0,)):
    shape = tuple(shape)

    def make(t):
        sizes, dt, seed = t
        s = tuple(sizes[k] if i in free else n for k, (i, n) in enumerate(enumerate(shape)))
        return _array(s, dt, seed)

    return st.tuples(st.tuples(*[st.integers(1, 6) for _ in shape]),
                     st.sampled_from(["float32", "float64"]), st.integers(0, 1000)).map(make)


def bad_labels(n, n_classes, checks=("range", "float", "length", "2d", "type")):
    parts = []
    if "range" in checks:
        parts += [st.integers(n_classes, n_classes + 1000).map(lambda v: np.full(n, v)),
                  st.integers(-1000, -1).map(lambda v: np.full(n, v))]
    if "float" in checks:
        parts.append(st.sampled_from([0.5, 1.25, math.nan]).map(lambda v: np.full(n, v)))
    if "length" in checks:
        parts.append(st.integers(-3, 4).filter(lambda k: k and n + k > 0).map(
            lambda k: np.arange(n + k) % n_classes))
        parts.append(st.just(np.zeros(0, np.int64)))
    if "2d" in checks:
        parts.append(st.just(np.zeros((n, n_classes + 1), np.int64)))
    if "type" in checks:
        parts.append(st.sampled_from([None, "abc", np.arange(n).astype(complex)]))
    return st.one_of(parts)


def valid_labels(n, n_classes):
    return st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n).map(
        lambda v: np.asarray(v, np.int64))


def bad_grads(ctx):
    net = ctx["net"]
    good = [{k: np.zeros_like(v) for k, v in p.items()} for p in net.parameters()]

    def with_(i, k, v):
        out = [dict(g) for g in good]
        out[i][k] = v
        return out

    return st.one_of(
        st.sampled_from([None, "g", 3, good[:-1], good + good[:1], [{}] * len(good)]),
        st.tuples(st.integers(0, len(good) - 1), st.sampled_from(["W", "b"]),
                  st.sampled_from(["shape", "complex", "int", "list"])).map(
            lambda t: with_(t[0], t[1], _bad_grad(good[t[0]][t[1]], t[2]))))


def _bad_grad(g, how):
    if how == "nan":
        return np.full_like(g, np.nan)
    if how == "shape":
        return np.zeros(g.shape[:-1] + (g.shape[-1] + 1,), g.dtype)
    if how == "complex":
        return g.astype(np.complex64)
    if how == "int":
        return g.astype(np.int64)
    return g.tolist()


def valid_grads(ctx):
    net = ctx["net"]
    return st.integers(0, 100).map(lambda s: [
        {k: _array(v.shape, v.dtype, s) for k, v in p.items()} for p in net.parameters()])
