"""CuPy's API surface, as the strict backend enforces it.

``bionp/_cupy_surface.json`` lists, for the pinned CuPy release, every public name of
the ``cupy`` module and of its NumPy-like submodules (with each function's keyword
parameters), the keywords CuPy's ufuncs accept and the parameters of their methods,
the members of ``cupy.ndarray``, and where CuPy keeps the equivalent of a NumPy name it
lacks (``cupyx``, ``cupyx.scipy``).  ``tools/generate_cupy_surface.py`` regenerates it
from CuPy itself; the test-suite reads the file and needs no CuPy.

:mod:`bionp._strict` asks this module before forwarding anything to NumPy, so code that
passes on the strict stand-in does not call a NumPy-only function, keyword or method.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from bionp._errors import BackendError

__all__ = ["attribute_error", "check_keywords", "cupy_version", "member", "partly_overlap",
           "reverse_sides", "surface"]

SURFACE_FILE = Path(__file__).resolve().parent / "_cupy_surface.json"


@functools.lru_cache(maxsize=1)
def surface() -> dict:
    """The recorded surface (read once)."""
    try:
        return json.loads(SURFACE_FILE.read_text())
    except (OSError, ValueError) as exc:  # pragma: no cover - a broken checkout
        raise BackendError(
            f"the strict backend needs {SURFACE_FILE.name} (CuPy's API surface) next to "
            f"bionp/_strict.py and could not read it ({exc}); regenerate it with "
            "tools/generate_cupy_surface.py"
        ) from None


def cupy_version() -> str:
    return surface()["cupy_version"]


def _table(section: tuple[str, ...]) -> dict | None:
    """``()`` the cupy module, ``("linalg",)`` a submodule, ``("ndarray",)`` the array."""
    s = surface()
    if section == ():
        return s["module"]
    if section == ("ndarray",):
        return s["ndarray"]
    if len(section) == 1:
        return s["submodules"].get(section[0])
    return None


def member(section: tuple[str, ...], name: str) -> dict | None:
    """The recorded entry of ``name`` (``None``: CuPy has no such name there).  A
    namespace CuPy itself does not record (deeper submodules) allows everything."""
    table = _table(section)
    if table is None:
        return {"kind": "unknown", "params": None, "varkw": True}
    return table.get(name)


def _dotted(section: tuple[str, ...], name: str, root: str) -> str:
    return ".".join((root, *section, name)) if section != ("ndarray",) else f"{root}.ndarray.{name}"


def attribute_error(section: tuple[str, ...], name: str) -> AttributeError:
    """The error for a name CuPy lacks, naming CuPy's equivalent where there is one."""
    eq = surface()["equivalents"]
    table = eq["ndarray"] if section == ("ndarray",) else eq["module"] if section == () else {}
    hint = table.get(name)
    what = f"arrays' .{name}" if section == ("ndarray",) else _dotted(section, name, "xp")
    msg = (f"{what} is not available on the strict backend: CuPy {cupy_version()} has no "
           f"{_dotted(section, name, 'cupy')}")
    msg += f"; CuPy's equivalent: {hint}" if hint else ""
    return AttributeError(msg + ". bionp's code must run on CuPy: use what CuPy has, or put a "
                                "backend branch in bionp/backend.py")


def check_keywords(what: str, entry: dict, kwargs: dict, cupy_name: str) -> None:
    """Raise ``TypeError`` for keywords of ``kwargs`` that ``entry``'s CuPy callable lacks."""
    if not kwargs or entry.get("varkw") or entry.get("params") is None:
        return
    bad = sorted(k for k in kwargs if k not in entry["params"])
    if bad:
        raise TypeError(
            f"{what}() got keyword argument(s) {', '.join(map(repr, bad))} that CuPy "
            f"{cupy_version()}'s {cupy_name} does not take (it takes: "
            f"{', '.join(entry['params']) or 'no keywords'}); the strict backend refuses what "
            "CuPy would refuse"
        )


# -- two of CuPy's semantics, on the NumPy arrays inside strict arrays --------------

def reverse_sides(p: np.ndarray, kth, axis) -> None:
    """Reverse, in place, the elements of each side of the ``kth`` positions along ``axis``:
    still a valid partition, but not NumPy's order within a side, as CuPy's need not be
    (see :mod:`bionp.backend`); code that relies on that order fails on strict."""
    v = np.moveaxis(p, -1 if axis is None else axis, -1)
    n = v.shape[-1]
    ks = sorted({int(k) % n for k in np.atleast_1d(kth)}) if n else []
    bounds = [0] + [b for k in ks for b in (k, k + 1)] + [n]
    for lo, hi in zip(bounds[::2], bounds[1::2]):
        if hi - lo > 1:
            v[..., lo:hi] = v[..., lo:hi][..., ::-1].copy()


def partly_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` share memory without being the same view: a ufunc's input
    and ``out=`` like that give an undefined result on CuPy (NumPy copies first)."""
    same = (a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])
    return not same and np.may_share_memory(a, b) and np.shares_memory(a, b)
