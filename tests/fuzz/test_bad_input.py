"""Generated bad input for every public entry point (issue 24), and the valid side of each boundary.

For every row of ``entry_points.ENTRIES`` and each of its arguments, hypothesis
draws bad values of the argument's kind (wrong rank, shape, dtype, non-finite,
empty and 0-d arrays, out-of-range and non-integer numbers, wrong types,
unknown names, paths to nothing / files / folders of the wrong kind).  Each call
must raise ``ValueError``/``TypeError`` (or an error class of bionp), with a
message naming the argument, and leave everything reachable from the entry's
context as it was: weights, optimiser moments, generator counters, files.
Valid values drawn from the same table must be accepted.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bionp as bnp
from bionp.backend import is_array
import entry_points as ep
import strategies as S
import tally
from conftest import EXAMPLES

CASES = [(e, a) for e in ep.ENTRIES for a in e.args]


def _bad(entry, arg, ctx):
    k = arg.kind
    if k == "int":
        return S.bad_int(arg)
    if k == "real":
        return S.bad_real(arg)
    if k == "name":
        return S.bad_name(arg)
    if k == "rng":
        return S.bad_rng()
    if k == "dtype":
        return S.bad_dtype(arg)
    if k == "floats":
        return S.bad_floats(arg, arg.shape(ctx), arg.free, arg.checks)
    if k == "labels":
        return S.bad_labels(*arg.shape(ctx), **({} if arg.checks == ep.Arg.checks
                                                 else {"checks": arg.checks}))
    if k == "grads":
        return S.bad_grads(ctx)
    if k == "size":
        return S.bad_size()
    if k == "root":
        return S.bad_root()
    if k == "file":
        return S.bad_file(store=arg.bad == "store")
    if k == "grid":
        return S.bad_grid()
    if k == "configs":
        return S.bad_configs()
    if k == "gstate":
        return S.bad_gstate()
    raise AssertionError(f"no bad values for kind {k!r}")


def _valid(entry, arg, ctx):
    if arg.valid is not None:
        return arg.valid
    k = arg.kind
    if k == "int":
        return S.valid_int(arg)
    if k == "real":
        return S.valid_real(arg)
    if k == "name":
        return st.sampled_from(arg.choices)
    if k == "rng":
        return S.valid_rng()
    if k == "dtype":
        return S.valid_dtype(arg)
    if k == "floats":
        return S.valid_floats(arg, arg.shape(ctx), arg.free)
    if k == "labels":
        return S.valid_labels(*arg.shape(ctx))
    if k == "grads":
        return S.valid_grads(ctx)
    if k == "size":
        return S.valid_size()
    return None


# ---------------------------------------------------------------------------- state snapshots
def _walk(obj, path, out, seen, depth=0):
    """Flatten everything reachable from ``obj`` into ``out``: {path: comparable value}."""
    if depth > 8 or id(obj) in seen:
        return
    if is_array(obj) or isinstance(obj, np.ndarray):
        out[path] = ("array", obj.dtype.str, obj.shape, bnp.asnumpy(obj).tobytes())
        return
    if obj is None or isinstance(obj, (bool, numbers.Number, str, bytes)):
        out[path] = obj if not (isinstance(obj, float) and obj != obj) else "nan"
        return
    seen[id(obj)] = obj  # kept alive: a temporary's id must not be reused during the walk
    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            _walk(v, f"{path}[{k!r}]", out, seen, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _walk(v, f"{path}[{i}]", out, seen, depth + 1)
    elif hasattr(obj, "get_state") and type(obj).__module__.startswith("bionp.random"):
        _walk(obj.get_state(), f"{path}.state", out, seen, depth + 1)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("bionp"):
        for k, v in list(vars(obj).items()):
            _walk(v, f"{path}.{k}", out, seen, depth + 1)


def snapshot(ctx) -> dict:
    out: dict = {}
    _walk(ctx, "ctx", out, {})
    return out


def _assert_unchanged(before, after, what):
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"{what}: refused, but changed {changed[:5]}"


# ------------------------------------------------------------------------------------ checks
def _is_clear(exc, arg) -> bool:
    if arg.kind == "file" and isinstance(exc, FileNotFoundError):
        return True  # Python's own error for a missing file, naming it
    return isinstance(exc, (ValueError, TypeError)) or type(exc).__module__.startswith("bionp")


def _named(arg, value, msg) -> bool:
    words = (arg.name,) + arg.names
    if arg.kind in ("file", "root") and isinstance(value, (str, bytes)) is False \
            and hasattr(value, "__fspath__"):
        words += (str(value),)
    if arg.kind in ("file",):
        words += (str(value),)
    return any(w in msg for w in words if w)


def _call(entry, ctx, kw):
    with np.errstate(all="ignore"):
        return entry.call(ctx, kw)


@pytest.mark.parametrize("entry,arg", CASES, ids=[f"{e.name}-{a.name}" for e, a in CASES])
def test_bad_value_refused(entry, arg):
    proto = entry.ctx()

    @settings(settings.get_profile("bionp-fuzz"))
    @given(data=st.data())
    def run(data):
        ctx = entry.ctx()
        bad = data.draw(_bad(entry, arg, proto), label=arg.name)
        kw = {**entry.defaults(ctx), arg.name: bad}
        before = snapshot(ctx)
        try:
            _call(entry, ctx, kw)
        except Exception as exc:  # noqa: BLE001 - classified below
            assert _is_clear(exc, arg), (f"{entry.name}({arg.name}={bad!r}) raised "
                                    f"{type(exc).__name__}: {exc}")
            assert _named(arg, bad, str(exc)), (f"{entry.name}({arg.name}={bad!r}): the message "
                                                f"does not name {arg.name!r}: {exc}")
        else:
            raise AssertionError(f"{entry.name} accepted {arg.name}={bad!r}")
        _assert_unchanged(before, snapshot(ctx), f"{entry.name}({arg.name}={bad!r})")
        tally.BAD[entry.name] += 1

    run()


VALID_CASES = [(e, a) for e, a in CASES if _valid(e, a, e.ctx()) is not None]


@pytest.mark.parametrize("entry,arg", VALID_CASES,
                         ids=[f"{e.name}-{a.name}" for e, a in VALID_CASES])
def test_valid_value_accepted(entry, arg):
    proto = entry.ctx()
    strategy = _valid(entry, arg, proto)

    @settings(settings.get_profile("bionp-fuzz"), max_examples=max(EXAMPLES // 4, 5))
    @given(value=strategy)
    def run(value):
        ctx = entry.ctx()
        _call(entry, ctx, {**entry.defaults(ctx), arg.name: value})
        tally.VALID[entry.name] += 1

    run()


# ------------------------------------------------------------------------- the table is complete
def test_every_public_name_has_a_row_or_a_reason():
    """A name added to a package's ``__all__`` fails here until the table gets a row for it
    (or ``EXCLUDED`` a reason)."""
    covered = {c for e in ep.ENTRIES for c in e.covers}
    missing, stale = [], []
    for pkg, mod in ep.PACKAGES.items():
        excluded = ep.EXCLUDED.get(pkg, {})
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, type) and issubclass(obj, (BaseException, Warning)):
                continue  # raised, not called
            if name not in covered and name not in excluded:
                missing.append(f"{pkg}.{name}")
        stale += [f"{pkg}.{n}" for n in excluded if n not in mod.__all__]
        assert all(r in ep._REASONS for r in excluded.values())
    assert not missing, f"public names without a row in tests/fuzz/entry_points.py: {missing}"
    assert not stale, f"EXCLUDED names that are no longer public: {stale}"


def test_the_table_fails_for_a_new_name(monkeypatch):
    """The completeness check above can fail: a new public name without a row is reported."""
    monkeypatch.setattr(bnp.nn, "__all__", [*bnp.nn.__all__, "BrandNewLayer"], raising=True)
    monkeypatch.setattr(bnp.nn, "BrandNewLayer", type("BrandNewLayer", (), {}), raising=False)
    with pytest.raises(AssertionError, match="bionp.nn.BrandNewLayer"):
        test_every_public_name_has_a_row_or_a_reason()
