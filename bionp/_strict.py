"""A strict CPU stand-in for a GPU array library.

CI has no GPU, yet most GPU bugs in array code are of a few kinds that need no
GPU to detect: a device array meeting a host (NumPy) array, a silent transfer
to the host (``np.asarray(x)``, ``float(x)``, ``if x:``, iterating over an
array), and random draws that bypass bionp's generator.  The ``strict``
backend runs bionp's code on the CPU with arrays that refuse all of these:

* :class:`StrictArray` wraps a :class:`numpy.ndarray` **without** subclassing it,
  so NumPy cannot treat it as one.  ``__array__``, ``__iter__``, ``__float__``,
  ``__int__``, ``__index__``, ``__bool__``, ``__contains__`` and formatting with a
  format spec raise :class:`TypeError`.  The explicit ways out are the ones CuPy
  has: ``a.get()``, ``a.item()``, ``xp.asnumpy(a)`` (and bionp's ``asnumpy`` /
  ``to_scalar``).
* Arithmetic or any ``xp`` function receiving a :class:`numpy.ndarray` next to a
  :class:`StrictArray` raises :class:`~bionp.backend.MixedBackendError`, as CuPy
  raises ``TypeError`` for a NumPy operand.  Python and NumPy *scalars* are
  accepted, as on CuPy.  ``xp.asarray`` / ``xp.array`` accept host arrays: that
  is the explicit upload.
* ``xp.random`` does not exist: every random draw in bionp must come from
  :class:`bionp.random.Generator`.
* Only CuPy's API is there: a module attribute, function keyword, ufunc keyword or
  method, or array method or method keyword that the pinned CuPy release lacks raises
  ``AttributeError`` / ``TypeError`` naming CuPy's equivalent where there is one
  (:mod:`bionp._surface`, which reads ``bionp/_cupy_surface.json``).  Semantic
  differences that names cannot show are listed in :mod:`bionp.backend`; two of them
  are enforced here: ``argpartition``/``partition`` return each side of ``kth`` in
  reverse of NumPy's order (a valid partition, as CuPy's, but not NumPy's), and a
  ufunc's ``out=`` that partly overlaps an input is refused (CuPy does not copy).
* Reductions return 0-d arrays, never NumPy scalars (as CuPy does).

It is stricter than CuPy where CuPy allows an implicit, synchronising host
transfer (``float(x)``, ``bool(x)``, iteration): in library code those are
bugs of speed on a GPU, so they are refused here too.

Numbers are computed by NumPy on the wrapped arrays, so results are bitwise
those of the ``numpy`` backend.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np

from bionp import _surface
from bionp._host_syncs import _count_sync
from bionp._errors import MixedBackendError

__all__ = ["StrictArray", "call_host", "xp"]

_HOST_MSG = (
    "implicit conversion of a strict-backend (device) array to the host is not allowed "
    "({what}); use bionp.asnumpy(a) / bionp.to_scalar(a) (or a.get() / a.item()) to copy "
    "explicitly. The 'strict' backend refuses this because CuPy would copy from the GPU "
    "here (or refuse)."
)


def _mixed(op: str) -> MixedBackendError:
    return MixedBackendError(
        f"a NumPy (host) array met a strict-backend (device) array in {op}; CuPy raises "
        "here too. Move the host array with bionp.asarray(a) (or xp.asarray(a)) first."
    )


def _unwrap(obj: Any, op: str) -> Any:
    """StrictArray -> ndarray; host ndarray -> error; containers recursively."""
    if type(obj) is StrictArray:
        return obj._a
    if isinstance(obj, np.ndarray):
        raise _mixed(op)
    if type(obj) in (list, tuple):
        return type(obj)(_unwrap(o, op) for o in obj)
    return obj


def _wrap(obj: Any) -> Any:
    """ndarray / NumPy scalar -> StrictArray; containers recursively."""
    if isinstance(obj, np.ndarray):
        return StrictArray(obj)
    if isinstance(obj, np.generic):
        return StrictArray(np.asarray(obj))
    if type(obj) in (list, tuple):
        return type(obj)(_wrap(o) for o in obj)
    return obj


def _call(fn, op: str, args, kwargs):
    args = _unwrap(args, op)
    kwargs = {k: _unwrap(v, op) for k, v in kwargs.items()}
    return _wrap(fn(*args, **kwargs))


def call_host(fn, op: str, *args, **kwargs):
    """``fn`` (a NumPy function) on the arrays inside strict arguments, its result wrapped
    back: how :mod:`bionp.backend` runs a compiled NumPy/SciPy kernel on this backend.
    Host (NumPy) arrays among the arguments are refused as everywhere else."""
    return _call(fn, op, args, kwargs)


class StrictArray:
    """An ndarray in a box that behaves like a device array (see module docs)."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy's operators defer to ours (and fail on mixing)
    __array_priority__ = 10_000
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, a: np.ndarray):
        self._a = a

    # -- explicit transfers ------------------------------------------------
    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        """Host copy (CuPy's ``ndarray.get``)."""
        _count_sync()
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order, copy=True)

    def item(self):
        """The one element as a Python number (CuPy's ``item`` takes no index)."""
        _count_sync()
        if self._a.size != 1:
            raise ValueError(f"can only convert an array of size 1 to a Python scalar, got shape "
                             f"{self._a.shape}; CuPy's ndarray.item takes no index")
        return self._a.item()

    def tolist(self):
        _count_sync()
        return self._a.tolist()

    # -- implicit transfers are refused ----------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_HOST_MSG.format(what="np.asarray / np.array on it"))

    def __iter__(self):
        raise TypeError(_HOST_MSG.format(what="iterating over it"))

    def __contains__(self, item):
        raise TypeError(_HOST_MSG.format(what="`in` test"))

    def __float__(self):
        raise TypeError(_HOST_MSG.format(what="float(a)"))

    def __int__(self):
        raise TypeError(_HOST_MSG.format(what="int(a)"))

    def __complex__(self):
        raise TypeError(_HOST_MSG.format(what="complex(a)"))

    def __index__(self):
        raise TypeError(_HOST_MSG.format(what="use as an index/int"))

    def __bool__(self):
        raise TypeError(_HOST_MSG.format(what="truth value, e.g. `if a:`"))

    def __format__(self, spec):
        if spec:
            raise TypeError(_HOST_MSG.format(what=f"format spec {spec!r}"))
        return repr(self)

    def __reduce__(self):
        raise TypeError(_HOST_MSG.format(what="pickling"))

    # copy.deepcopy stays on the device, as CuPy's ndarray.__deepcopy__ does
    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    def __copy__(self):
        return StrictArray(self._a.copy())

    # -- metadata ------------------------------------------------------------
    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def nbytes(self):
        return self._a.nbytes

    @property
    def itemsize(self):
        return self._a.itemsize

    @property
    def strides(self):
        return self._a.strides

    @property
    def T(self):
        return StrictArray(self._a.T)

    @property
    def real(self):
        return StrictArray(self._a.real)

    @property
    def device(self):
        return "strict"

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return "strict_" + repr(self._a)

    __str__ = __repr__

    def __array_namespace__(self, api_version=None):
        return xp

    # -- indexing ------------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "indexing")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "indexing")] = _unwrap(value, "item assignment")

    # -- every other ndarray method: unwrap arguments, wrap results ----------
    _BLOCKED = frozenset({"data", "ctypes", "flat", "tofile", "dump", "dumps"})

    def __getattr__(self, name):
        if name.startswith("__"):  # __array_interface__, __array_struct__, __dlpack__, ...
            raise AttributeError(name)
        if name in StrictArray._BLOCKED:
            raise AttributeError(f"strict-backend arrays do not expose {name!r} (host memory access)")
        entry = _surface.member(("ndarray",), name)
        if entry is None:
            raise _surface.attribute_error(("ndarray",), name)
        attr = getattr(self._a, name)
        if callable(attr):
            @functools.wraps(attr)
            def method(*args, **kwargs):
                _surface.check_keywords(f"ndarray.{name}", entry, kwargs, f"cupy.ndarray.{name}")
                return _call(attr, f"ndarray.{name}", args, kwargs)

            return method
        return _wrap(attr)


def _binary(name: str):
    def op(self, other):
        if isinstance(other, np.ndarray) and type(other) is not StrictArray:
            raise _mixed(f"operator {name}")
        if type(other) is StrictArray:
            other = other._a
        elif not isinstance(other, (int, float, complex, bool, np.generic)):
            return NotImplemented
        return _wrap(getattr(self._a, name)(other))

    op.__name__ = name
    return op


def _inplace(name: str):
    def op(self, other):
        if isinstance(other, np.ndarray):
            raise _mixed(f"operator {name}")
        if type(other) is StrictArray:
            other = other._a
        elif not isinstance(other, (int, float, complex, bool, np.generic)):
            return NotImplemented
        getattr(self._a, name)(other)
        return self

    op.__name__ = name
    return op


def _unary(name: str):
    def op(self):
        return _wrap(getattr(self._a, name)())

    op.__name__ = name
    return op


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
           "and", "or", "xor", "lshift", "rshift", "divmod"):
    setattr(StrictArray, f"__{_n}__", _binary(f"__{_n}__"))
    setattr(StrictArray, f"__r{_n}__", _binary(f"__r{_n}__"))
    if _n != "divmod":
        setattr(StrictArray, f"__i{_n}__", _inplace(f"__i{_n}__"))
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(StrictArray, f"__{_n}__", _binary(f"__{_n}__"))
for _n in ("neg", "pos", "abs", "invert"):
    setattr(StrictArray, f"__{_n}__", _unary(f"__{_n}__"))


def _check_overlap(op: str, args, out) -> None:
    """Refuse an ``out`` that partly overlaps an input: NumPy copies the input first,
    CuPy's kernels read and write the same memory in no fixed order (undefined
    result).  An ``out`` that is exactly an input (``out=a``) is fine on both."""
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if type(o) is not StrictArray:
            continue
        for i, a in enumerate(args):
            if type(a) is StrictArray and _surface.partly_overlap(a._a, o._a):
                raise ValueError(
                    f"{op}: out= partly overlaps input {i} (same memory, another view); NumPy "
                    "copies the input first but CuPy does not, so the result would be undefined "
                    "on the GPU. Write into a separate buffer, or use the input itself as out")


class _StrictUfunc:
    """A NumPy ufunc that takes and returns strict arrays, with the keywords and methods
    (``at``, ``reduce``, …) of CuPy's ufunc of the same name (``entry``: its record in
    :mod:`bionp._surface`; CuPy's ``matmul`` is a gufunc without methods)."""

    def __init__(self, ufunc: np.ufunc, entry: dict | None = None):
        self._u = ufunc
        self.__name__ = ufunc.__name__
        self.__doc__ = ufunc.__doc__
        entry = entry or {"kind": "ufunc"}
        spec = _surface.surface()["ufunc"]
        if entry["kind"] == "gufunc":
            self._call_entry = {"params": entry["call_keywords"], "varkw": False}
            self._members = frozenset()
        else:
            self._call_entry = {"params": spec["call_keywords"], "varkw": False}
            self._members = frozenset(spec["attributes"])
        self._methods = spec["methods"]

    def __call__(self, *args, **kwargs):
        _surface.check_keywords(f"xp.{self.__name__}", self._call_entry, kwargs,
                                f"cupy.{self.__name__}")
        if kwargs.get("out") is not None:
            _check_overlap(f"xp.{self.__name__}", args, kwargs["out"])
        return _call(self._u, f"xp.{self.__name__}", args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._members:
            raise AttributeError(
                f"xp.{self.__name__}.{name} is not available on the strict backend: CuPy "
                f"{_surface.cupy_version()}'s cupy.{self.__name__} has no {name!r}"
                + (f" (it has: {', '.join(sorted(self._members))})" if self._members else ""))
        attr = getattr(self._u, name, None)
        if name == "name":
            return self.__name__
        if callable(attr):
            entry = self._methods.get(name, {"params": None})
            op = f"xp.{self.__name__}.{name}"

            def method(*a, **k):
                _surface.check_keywords(op, entry, k, f"cupy.{self.__name__}.{name}")
                return _call(attr, op, a, k)

            return method
        return attr

    def __repr__(self):
        return f"<strict ufunc {self.__name__!r}>"


def _upload(fn, name):
    """asarray/array: host arrays are allowed (the explicit upload)."""
    entry = _surface.member((), name.split(".")[-1])

    @functools.wraps(fn)
    def upload(obj, *args, **kwargs):
        _surface.check_keywords(name, entry, kwargs, f"cupy.{name.split('.')[-1]}")
        if type(obj) is StrictArray:
            obj = obj._a
        elif type(obj) in (list, tuple):
            obj = _unwrap(obj, name)
        return StrictArray(np.array(fn(obj, *args, **kwargs), copy=None))

    return upload


def _namespace(name: str, source: types.ModuleType,
               section: tuple[str, ...] = ()) -> types.ModuleType:
    """A module of strict wrappers of ``source``'s names that CuPy's module ``section``
    (``()``: ``cupy``; ``("linalg",)``: ``cupy.linalg``) has too, with CuPy's keywords."""
    mod = types.ModuleType(name, f"strict stand-in for {source.__name__}")
    cache: dict[str, Any] = {}

    def __getattr__(attr: str):
        if attr in cache:
            return cache[attr]
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr == "random":
            raise AttributeError(
                "xp.random is not available on the strict backend: every random draw in bionp "
                "must come from bionp.random.Generator (same numbers on NumPy and CuPy)"
            )
        entry = _surface.member(section, attr)
        if entry is None:
            raise _surface.attribute_error(section, attr)
        dotted = ".".join((*section, attr))
        try:
            obj = getattr(source, attr)
        except AttributeError:
            raise AttributeError(
                f"xp.{dotted} exists in CuPy but not in NumPy {np.__version__}, which computes "
                "for the strict backend; reach it through a branch in bionp/backend.py"
            ) from None
        if isinstance(obj, np.ufunc):
            out = _StrictUfunc(obj, entry)
        elif isinstance(obj, types.ModuleType):
            out = _namespace(f"{name}.{attr}", obj, (*section, attr))
        elif isinstance(obj, type) or not callable(obj):
            out = obj
        else:
            op = f"xp.{dotted}"
            if entry["kind"] == "ufunc":  # a NumPy function that is a ufunc in CuPy
                entry = {"params": _surface.surface()["ufunc"]["call_keywords"], "varkw": False}
            elif entry["kind"] == "gufunc":
                entry = {"params": entry["call_keywords"], "varkw": False}

            def out(*args, _fn=obj, _op=op, _entry=entry, **kwargs):
                _surface.check_keywords(_op, _entry, kwargs, f"cupy.{dotted}")
                return _call(_fn, _op, args, kwargs)

            functools.update_wrapper(out, obj)
        cache[attr] = out
        return out

    mod.__getattr__ = __getattr__  # PEP 562 module attribute hook
    return mod


def _partition_fn(name: str):
    fn = getattr(np, name)

    entry = _surface.member((), name)

    def part(a, kth, axis=-1, **kwargs):
        _surface.check_keywords(f"xp.{name}", entry, kwargs, f"cupy.{name}")
        a, kth = _unwrap(a, f"xp.{name}"), _unwrap(kth, f"xp.{name}")
        out = fn(a, kth, axis=axis)
        _surface.reverse_sides(out, kth, axis)
        return StrictArray(out)

    part.__name__ = part.__qualname__ = name
    part.__doc__ = f"NumPy's {name}, each side of ``kth`` in another order (CuPy's may differ)."
    return part


def _argpartition_method(self, kth, axis=-1, **kwargs):
    _surface.check_keywords("ndarray.argpartition", _surface.member(("ndarray",), "argpartition"),
                            kwargs, "cupy.ndarray.argpartition")
    return xp.argpartition(self, kth, axis=axis)


def _partition_method(self, kth, axis=-1, **kwargs):
    """In place, as ``ndarray.partition`` on NumPy and CuPy."""
    _surface.check_keywords("ndarray.partition", _surface.member(("ndarray",), "partition"),
                            kwargs, "cupy.ndarray.partition")
    self._a.partition(_unwrap(kth, "ndarray.partition"), axis=axis)
    _surface.reverse_sides(self._a, kth, axis)


StrictArray.argpartition = _argpartition_method
StrictArray.partition = _partition_method

xp = _namespace("bionp._strict.xp", np)
xp.argpartition = _partition_fn("argpartition")
xp.partition = _partition_fn("partition")
xp.ndarray = StrictArray
xp.asarray = _upload(np.asarray, "xp.asarray")
xp.array = _upload(np.array, "xp.array")


def _asnumpy(a, stream=None, order="C", out=None):
    if type(a) is StrictArray:
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


xp.asnumpy = _asnumpy
