"""CPU/GPU parity checks: the same updates from the same seed on two backends.

Each rule, layer or generator registers a *check*: a function ``fn(dtype)`` that
builds its object from a fixed seed on the **active** backend, runs a fixed
number of updates and returns a dict of named result arrays.  :func:`run_checks`
runs every check on a reference backend (NumPy) and on each other backend
(CuPy when a GPU is visible, the strict CPU stand-in otherwise) and compares

.. math::

    \\mathrm{rel}(a, b) = \\frac{\\max_i |a_i - b_i|}{\\max(\\max_i |a_i|, \\mathrm{tiny})}

per array against the check's tolerance: exact (0) against the strict
stand-in, which computes with NumPy, and ``rtol`` against CuPy (float32 and
float64 tolerances separately).

The scenarios live in this package, one module per topic (:mod:`bionp.parity.rules`,
``.nn``, ``.optim``, ``.hebbian``, ``.dendritic``, ``.plasticity``, ``.data``,
``.generator``).  A scenario trains a whole network, so it needs the layers above the
module it exercises: it belongs to the library's top layer (the faces, beside the CLI),
and the library's modules never import this package.  Registering::

    from bionp.parity import register_parity

    @register_parity("rules.backprop", rtol={"float32": 1e-5, "float64": 1e-12})
    def parity_backprop(dtype):
        ...
        return {"W0": net.layers[0].W, ...}

``python -m bionp parity`` discovers checks by importing every module of this package.
Checks are selected by name: an exact name selects that check, otherwise the name is a
prefix (``rules`` selects the group, ``rules.kolen`` selects ``rules.kolen_pollack``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import time
from typing import Callable

import numpy as np

from bionp.backend import (
    asnumpy,
    backend,
    cupy_available,
    default_dtype,
    resolve_dtype,
    synchronize,
)

__all__ = [
    "ParityCheck",
    "format_summary",
    "format_table",
    "register_parity",
    "registered_checks",
    "relative_difference",
    "run_checks",
    "select_checks",
    "summarize",
]

DEFAULT_RTOL = {"float32": 1e-5, "float64": 1e-12}


@dataclasses.dataclass(frozen=True)
class ParityCheck:
    """One registered parity scenario (made by :func:`register_parity`).

    Parameters
    ----------
    name : str
        Dotted name, ``"topic.case"``; its prefix groups the summary.
    fn : callable
        ``fn(dtype) -> {name: array}``: the arrays the scenario compares.
    rtol : dict
        Relative tolerance per dtype name (``{"float32": 1e-5, "float64": 1e-12}``).
    description : str
        One line shown in the table.
    """

    name: str
    fn: Callable[[np.dtype], dict]
    rtol: dict
    description: str = ""


_REGISTRY: dict[str, ParityCheck] = {}


def register_parity(name: str, *, rtol: dict | None = None, description: str = ""):
    """Decorator registering ``fn(dtype) -> {name: array}`` as parity check ``name``.

    Parameters
    ----------
    name : str
        The check's name, dotted by topic (``"rules.backprop"``); replaces one so named.
    rtol : dict, optional
        Relative tolerance per dtype name, over ``DEFAULT_RTOL``.
    description : str, default ""
        One line; the first line of ``fn``'s docstring when empty.
    """

    def deco(fn):
        tol = dict(DEFAULT_RTOL)
        tol.update(rtol or {})
        doc = description or (fn.__doc__ or "").strip().splitlines()[0] if (description or fn.__doc__) else ""
        _REGISTRY[name] = ParityCheck(name, fn, tol, doc)
        return fn

    return deco


def discover() -> None:
    """Import every scenario module of this package so that their checks register."""
    for info in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
        importlib.import_module(info.name)


def registered_checks() -> dict[str, ParityCheck]:
    """All registered checks by name (the scenario modules are imported first)."""
    discover()
    return dict(sorted(_REGISTRY.items()))


def select_checks(names=None) -> dict[str, ParityCheck]:
    """The registered checks that ``names`` select (all if None), by name.

    A name equal to a registered check selects that check; any other name selects every
    check whose name starts with it (``"rules"``, ``"rules.kolen"``).  A name that selects
    nothing is an error that lists the registered names.

    Parameters
    ----------
    names : str or iterable of str, optional
        Check names or name prefixes; all checks when ``None`` or empty.
    """
    checks = registered_checks()
    if not names:
        return checks
    if isinstance(names, str):
        names = [names]
    selected: dict[str, ParityCheck] = {}
    unknown = []
    for n in names:
        hits = [n] if n in checks else [c for c in checks if c.startswith(n)]
        if not hits:
            unknown.append(n)
        selected.update((c, checks[c]) for c in hits)
    if unknown:
        raise ValueError(f"unknown parity check(s) {unknown}: no registered check is named or "
                         f"starts so; registered: {sorted(checks)}")
    return dict(sorted(selected.items()))


def relative_difference(a, b) -> float:
    """``max|a - b| / max(max|a|, tiny)``, on host copies; ``inf`` on a shape mismatch.

    Parameters
    ----------
    a : array
        The reference.
    b : array
        The array compared with it.
    """
    a = asnumpy(a)
    b = asnumpy(b)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    if not (np.all(np.isfinite(a64)) and np.all(np.isfinite(b64))):
        same = np.array_equal(a64, b64, equal_nan=True)
        return 0.0 if same else float("inf")
    scale = max(float(np.max(np.abs(a64))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a64 - b64)) / scale)


def _run_one(check: ParityCheck, name: str, dtype: np.dtype):
    with backend(name) as xp, default_dtype(dtype):
        t0 = time.perf_counter()
        out = check.fn(dtype)
        synchronize(xp)
        seconds = time.perf_counter() - t0
        host = {k: asnumpy(v) for k, v in out.items()}
    return host, seconds


def run_checks(
    names=None,
    backends=None,
    dtypes=("float32", "float64"),
    reference: str = "numpy",
) -> list[dict]:
    """Run checks; one result row per (check, dtype, compared backend, array).

    Parameters
    ----------
    names : iterable of str, optional
        Check names or prefixes (``"rules"`` selects ``rules.*``); all if None.
    backends : iterable of str, optional
        Backends compared with ``reference``; default: CuPy if available, else
        the strict stand-in.
    """
    checks = select_checks(names)
    if backends is None:
        backends = ["cupy"] if cupy_available() else ["strict"]
    for b in backends:
        if b == reference:
            raise ValueError(f"backend {b!r} is the reference; compare it with another")
    rows = []
    for check in checks.values():
        for dt_name in dtypes:
            dt = resolve_dtype(dt_name)
            ref, ref_s = _run_one(check, reference, dt)
            for b in backends:
                other, other_s = _run_one(check, b, dt)
                tol = 0.0 if b == "strict" else float(check.rtol[dt.name])
                for key in ref:
                    diff = relative_difference(ref[key], other.get(key, np.empty(0)))
                    rows.append({
                        "check": check.name, "dtype": dt.name, "array": key,
                        "reference": reference, "backend": b,
                        "max_rel_diff": diff, "tolerance": tol, "passed": bool(diff <= tol),
                        "seconds_reference": ref_s, "seconds_backend": other_s,
                    })
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text table of :func:`run_checks` rows.

    Parameters
    ----------
    rows : list of dict
        Rows from :func:`run_checks`.
    """
    head = ("check", "dtype", "array", "vs", "max rel diff", "tol", "ok", "s ref", "s other")
    body = [
        (r["check"], r["dtype"], r["array"], r["backend"], f"{r['max_rel_diff']:.2e}",
         f"{r['tolerance']:.0e}", "PASS" if r["passed"] else "FAIL",
         f"{r['seconds_reference']:.3f}", f"{r['seconds_backend']:.3f}")
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summarize(rows: list[dict]) -> list[dict]:
    """Per group (the name's first part: ``rules``, ``nn``, ...) and compared backend: how
    many checks and arrays passed, and the largest relative difference over the group.

    Parameters
    ----------
    rows : list of dict
        Rows from :func:`run_checks`.
    """
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["check"].split(".", 1)[0], r["backend"])
        g = groups.setdefault(key, {"group": key[0], "backend": key[1], "checks": {},
                                    "arrays": 0, "failed_arrays": 0, "max_rel_diff": 0.0})
        g["arrays"] += 1
        g["failed_arrays"] += not r["passed"]
        g["checks"][r["check"]] = g["checks"].get(r["check"], True) and r["passed"]
        g["max_rel_diff"] = max(g["max_rel_diff"], r["max_rel_diff"])
    out = []
    for g in groups.values():
        checks = g.pop("checks")
        g["n_checks"] = len(checks)
        g["failed_checks"] = sorted(c for c, ok in checks.items() if not ok)
        out.append(g)
    return sorted(out, key=lambda g: (g["group"], g["backend"]))


def format_summary(rows: list[dict]) -> str:
    """One line per group: checks passed, arrays compared, largest relative difference.

    Parameters
    ----------
    rows : list of dict
        Rows from :func:`run_checks`.
    """
    lines = []
    for g in summarize(rows):
        n_bad = len(g["failed_checks"])
        status = "PASS" if n_bad == 0 else "FAIL " + ", ".join(g["failed_checks"])
        passed = f"{g['n_checks'] - n_bad}/{g['n_checks']}"
        lines.append(f"{g['group']:<16s} vs {g['backend']:<7s} {passed:>7s} checks  "
                     f"{g['arrays']:>4d} arrays  max rel diff {g['max_rel_diff']:.2e}  {status}")
    return "\n".join(lines)
