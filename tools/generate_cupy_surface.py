"""Regenerate ``bionp/_cupy_surface.json``: the API surface of the pinned CuPy release.

The strict backend (:mod:`bionp._strict`) refuses every array-module attribute, ufunc
keyword, array method and function keyword that CuPy does not have.  What CuPy has is
read from CuPy itself by this script and kept as data in the repository, so the test
suite needs neither CuPy nor a GPU.  CuPy imports, and all of this can be read, on a
machine without a GPU::

    python -m venv ../cupyenv && ../cupyenv/bin/pip install cupy-cuda12x  # a scratch venv
    ../cupyenv/bin/python tools/generate_cupy_surface.py   # rewrites bionp/_cupy_surface.json

What is recorded (``null`` parameters mean "unknown: any keyword allowed"):

* ``module``: every public name of ``cupy`` with its kind (``function`` with its
  keyword-usable parameters and whether it takes ``**kwargs``; ``ufunc``;
  ``gufunc``; ``type``; ``module``; ``other`` for constants), and the same for the
  submodules that NumPy has too (``linalg``, ``fft``, ...);
* ``ufunc``: the keywords ``cupy.ufunc.__call__`` accepts (probed: CuPy parses them
  before it touches a device) and the parameters of ``reduce``/``accumulate``/...;
* ``ndarray``: every public method (with parameters) and attribute of ``cupy.ndarray``;
* ``equivalents``: for NumPy names CuPy lacks, where CuPy has the same thing
  (``cupyx``, ``cupyx.scipy.*``, or a note written here).

Parameters come from :func:`inspect.signature` where CuPy's functions are Python, else
from the signature line Cython puts first in each docstring.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import types
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "bionp" / "_cupy_surface.json"

#: NumPy names CuPy lacks, and what to use instead (beyond those found in cupyx).
NOTES = {
    "module": {
        "frompyfunc": "cupy.ElementwiseKernel (or cupy.vectorize)",
        "nditer": "no device iterator: use whole-array operations",
        "ndenumerate": "no device iterator: use whole-array operations",
        "geomspace": "cupy.logspace(log10(start), log10(stop), num)",
        "insert": "cupy.concatenate of slices",
        "nanpercentile": "cupy.percentile on the finite entries (no NaN-skipping variant)",
        "nanquantile": "cupy.quantile on the finite entries (no NaN-skipping variant)",
        "spacing": "cupy.nextafter(x, cupy.inf) - x",
        "unstack": "tuple(cupy.moveaxis(x, axis, 0))",
        "memmap": "host memory: bionp.asnumpy / numpy.memmap on the host, then bionp.asarray",
    },
    "ndarray": {
        "resize": "cupy.resize(a, new_shape) (a new array: CuPy cannot resize in place)",
        "tofile": "bionp.asnumpy(a).tofile(...) (an explicit copy to the host first)",
        "dump": "bionp.asnumpy(a) first (an explicit copy to the host)",
        "dumps": "bionp.asnumpy(a) first (an explicit copy to the host)",
        "ctypes": "a.data.ptr (a device pointer)",
        "to_device": "bionp.asarray / bionp.asnumpy",
    },
}

_SKIP_CUPYX_SCIPY = ("linalg", "signal", "interpolate")  # these need cuBLAS to import
#: Same name, different thing (numpy.bmat builds a matrix; cupyx.scipy.sparse.bmat a sparse one).
_NOT_EQUIVALENT = {"bmat", "matrix", "asmatrix"}


def _split_top(text: str) -> list[str]:
    """Split ``text`` at commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def _from_doc(obj) -> dict | None:
    """Parameters from a Cython signature line ``name(self, a, b=1, *, c=None) -> T``."""
    line = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    m = re.match(r"^[\w.]+\((.*)\)\s*(->.*)?$", line[0].strip()) if line else None
    if not m:
        return None
    params, varkw = [], False
    for p in _split_top(m.group(1).replace("\\*", "*")):
        name = p.split("=")[0].strip()
        if name == "/":
            params = []  # everything before is positional-only
        elif name.startswith("**"):
            varkw = True
        elif name.startswith("*") or not name:
            continue
        else:
            name = name.split()[-1].split(":")[0]  # "_ndarray_base b" -> "b"
            if name != "self" and name.isidentifier():
                params.append(name)
    return {"params": params, "varkw": varkw}


def _params(obj) -> dict:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _from_doc(obj) or {"params": None, "varkw": True}
    P = inspect.Parameter
    return {"params": [p.name for p in sig.parameters.values()
                       if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) and p.name != "self"],
            "varkw": any(p.kind == P.VAR_KEYWORD for p in sig.parameters.values())}


_PROBE = ("out", "dtype", "casting", "where", "order", "subok", "signature", "extobj", "axes",
          "axis", "keepdims")


def _accepted_keywords(fn, n_args: int) -> list[str]:
    """The keywords ``fn`` does not refuse outright (CuPy checks them before any device
    work, so a refusal is a TypeError naming the keyword, and anything else is a yes)."""
    ok = []
    for kw in _PROBE:
        try:
            fn(*([1.0] * n_args), **{kw: None})
        except TypeError as exc:
            if "Wrong arguments" in str(exc) or "unexpected keyword" in str(exc):
                continue
        except Exception:  # noqa: BLE001  (no GPU, wrong operand types: it got past the keywords)
            pass
        ok.append(kw)
    return ok


def _describe(cupy, obj) -> dict:
    if isinstance(obj, cupy.ufunc):
        return {"kind": "ufunc", "nin": obj.nin, "nout": obj.nout}
    if type(obj).__name__ == "_GUFunc":
        return {"kind": "gufunc", "call_keywords": _accepted_keywords(obj, 2)}
    if isinstance(obj, types.ModuleType):
        return {"kind": "module"}
    if isinstance(obj, type):
        return {"kind": "type"}
    if callable(obj):
        return {"kind": "function", **_params(obj)}
    return {"kind": "other"}


def _namespace(cupy, mod) -> dict:
    out = {}
    for name in sorted(dir(mod)):
        if name.startswith("_"):
            continue
        try:
            obj = getattr(mod, name)
        except Exception:  # noqa: BLE001  (deprecated aliases that raise on access)
            continue
        out[name] = _describe(cupy, obj)
    return out


def _cupyx_homes():
    import cupyx

    homes = [("cupyx", cupyx)]
    for sub in ("special", "ndimage", "fft", "sparse", "stats", "spatial"):
        if sub not in _SKIP_CUPYX_SCIPY:
            try:
                homes.append((f"cupyx.scipy.{sub}", importlib.import_module(f"cupyx.scipy.{sub}")))
            except Exception:  # noqa: BLE001
                pass
    return homes


def build() -> dict:
    import cupy

    module = _namespace(cupy, cupy)
    submodules = {name: _namespace(cupy, getattr(cupy, name)) for name, d in module.items()
                  if d["kind"] == "module" and isinstance(getattr(np, name, None), types.ModuleType)}
    ufunc = {"call_keywords": _accepted_keywords(cupy.add, 2),
             "attributes": sorted(m for m in dir(cupy.add) if not m.startswith("_")),
             "methods": {m: _params(getattr(cupy.add, m)) for m in dir(cupy.add)
                         if not m.startswith("_") and callable(getattr(cupy.add, m))}}
    ndarray = {}
    for name in sorted(dir(cupy.ndarray)):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cupy.ndarray, name)
        is_method = callable(attr) and not isinstance(attr, (property, types.GetSetDescriptorType,
                                                             types.MemberDescriptorType))
        ndarray[name] = {"kind": "method", **_params(getattr(cupy.ndarray, name))} if is_method \
            else {"kind": "attribute"}
    equivalents = {"module": {},
                   "ndarray": {k: v for k, v in NOTES["ndarray"].items() if k not in ndarray}}
    homes = _cupyx_homes()
    for name in sorted(n for n in dir(np) if not n.startswith("_") and n not in module):
        for where, home in homes:
            if hasattr(home, name) and name not in _NOT_EQUIVALENT:
                equivalents["module"][name] = f"{where}.{name}"
                break
        else:
            if name in NOTES["module"]:
                equivalents["module"][name] = NOTES["module"][name]
    return {
        "cupy_version": cupy.__version__,
        "numpy_version_at_generation": np.__version__,
        "generated_by": "tools/generate_cupy_surface.py",
        "module": module,
        "submodules": submodules,
        "ufunc": ufunc,
        "ndarray": ndarray,
        "equivalents": equivalents,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else OUT
    data = build()
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}: CuPy {data['cupy_version']}, {len(data['module'])} module names, "
          f"{len(data['ndarray'])} ndarray members, ufunc keywords {data['ufunc']['call_keywords']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
