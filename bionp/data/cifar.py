"""Readers for the two CIFAR-10 distributions, without trusting pickle.

Python version (``cifar-10-batches-py/data_batch_1 … 5``, ``test_batch``, what torchvision downloads)
    Each batch is a pickled ``dict`` with ``b"data"`` (a 10000 x 3072 uint8
    NumPy array, each row the red, green then blue 32 x 32 planes) and
    ``b"labels"`` (a list of ints in 0…9).  It is read by
    :class:`RestrictedUnpickler`, which never imports or calls anything named
    by the file: ``find_class`` refuses every global except the handful that a
    pickled uint8 array needs (``numpy.core.multiarray._reconstruct``,
    ``numpy.ndarray``, ``numpy.dtype``, and ``_codecs.encode`` for byte strings
    written by Python 3), and even those are answered with inert stand-ins
    defined here that only record their arguments; the array is then rebuilt
    with :func:`numpy.frombuffer` after its shape, dtype and length are
    checked.  A pickle that names anything else (``os.system``, ``eval``,
    ``builtins.getattr`` …) raises :class:`UnsafePickleError` before anything
    runs.

Binary version (``cifar-10-batches-bin/data_batch_N.bin``, ``test_batch.bin``)
    10000 records of 1 label byte followed by 3072 pixel bytes (same plane order).
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np

from bionp.data.errors import ChecksumError, DataFormatError, UnsafePickleError
from bionp.data.idx import md5_hex

__all__ = [
    "RestrictedUnpickler",
    "restricted_loads",
    "read_cifar_python_batch",
    "read_cifar_binary_batch",
    "CIFAR_PIXELS",
]

CIFAR_PIXELS = 3 * 32 * 32
_ALLOWED_DTYPES = frozenset({"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1"})


class _ArrayStub:
    """Stands in for ``numpy.ndarray`` in a pickle: records the state, runs nothing."""

    __slots__ = ("shape", "dtype", "fortran", "raw")

    def __init__(self):
        self.shape = self.dtype = self.fortran = self.raw = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("pickled array: unexpected state layout")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise UnsafePickleError(f"pickled array: bad shape {shape!r}")
        if not isinstance(dtype, _DtypeStub):
            raise UnsafePickleError("pickled array: dtype is not a plain numeric dtype")
        if isinstance(raw, str):  # Python 2 str read with encoding="latin1"
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError(
                "pickled array: payload is not a byte string (object arrays are refused)"
            )
        self.shape, self.dtype, self.fortran, self.raw = shape, dtype, bool(fortran), bytes(raw)

    def to_numpy(self, name: str) -> np.ndarray:
        if self.raw is None:
            raise DataFormatError(f"{name}: a pickled array has no state")
        dt = self.dtype.to_numpy()
        count = 1
        for s in self.shape:
            count *= s
        if count * dt.itemsize != len(self.raw):
            raise DataFormatError(
                f"{name}: pickled array of shape {self.shape} and dtype {dt} needs"
                f" {count * dt.itemsize} bytes, the file holds {len(self.raw)} (truncated or"
                " damaged)"
            )
        arr = np.frombuffer(self.raw, dtype=dt, count=count)
        return arr.reshape(self.shape, order="F" if self.fortran else "C")


class _DtypeStub:
    """Stands in for ``numpy.dtype``: accepts only plain numeric type codes."""

    __slots__ = ("code", "order")

    def __init__(self, code, align=False, copy=True):
        if isinstance(code, bytes):
            code = code.decode("ascii", "replace")
        if not isinstance(code, str) or code not in _ALLOWED_DTYPES:
            raise UnsafePickleError(
                f"pickled array: dtype {code!r} refused (plain numeric dtypes only)"
            )
        self.code, self.order = code, "|"

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2:
            raise UnsafePickleError("pickled dtype: unexpected state layout")
        order = state[1].decode("ascii") if isinstance(state[1], bytes) else state[1]
        if order not in ("|", "<", ">", "="):
            raise UnsafePickleError(f"pickled dtype: byte order {order!r} refused")
        if any(s is not None for s in state[2:5]):
            raise UnsafePickleError("pickled dtype: structured or sub-array dtypes are refused")
        self.order = order

    def to_numpy(self) -> np.dtype:
        order = "<" if self.order == "=" and np.little_endian else self.order
        order = "|" if self.code[1] == "1" else order
        return np.dtype(order.replace("|", "") + self.code)


def _reconstruct_stub(cls, shape, dtype_code):
    if cls is not _ArrayStub:
        raise UnsafePickleError(
            "pickled array: _reconstruct called on something other than ndarray"
        )
    return _ArrayStub()


def _frombuffer_stub(buf, dtype, shape, order):
    stub = _ArrayStub()
    stub.__setstate__((tuple(shape), dtype, order == "F", bytes(buf)))
    return stub


def _codecs_encode_stub(text, encoding="utf-8"):
    if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in (
        "latin1",
        "latin-1",
    ):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} refused")
    return text.encode("latin1")


_STANDINS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_stub,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct_stub,
    ("numpy", "ndarray"): _ArrayStub,
    ("numpy", "dtype"): _DtypeStub,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer_stub,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer_stub,
    ("_codecs", "encode"): _codecs_encode_stub,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that imports nothing: every global a pickle names is refused,
    except the few a pickled NumPy array needs, which map to inert stand-ins.

    Parameters
    ----------
    file : file-like
        A binary file open for reading, holding the pickle.
    name : str, default "<pickle>"
        The file's name, used in error messages.
    """

    def __init__(self, file, *, name: str = "<pickle>"):
        super().__init__(file, encoding="bytes")
        self._name = name

    def find_class(self, module, name):  # noqa: D102 (documented on the class)
        key = (module, name)
        if key in _STANDINS:
            return _STANDINS[key]
        raise UnsafePickleError(
            f"{self._name}: refused to unpickle: the file asks for the global {module}.{name}, "
            "which a CIFAR-10 batch never needs; the file is not a genuine CIFAR-10 batch "
            "(possibly malicious): delete it and fetch it again"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"{self._name}: refused to unpickle: persistent ids are not allowed"
        )


def _to_plain(obj, name):
    """Replace array stand-ins by NumPy arrays, recursively through dicts/lists/tuples."""
    if isinstance(obj, _ArrayStub):
        return obj.to_numpy(name)
    if isinstance(obj, _DtypeStub):
        raise DataFormatError(f"{name}: unexpected bare dtype in a CIFAR batch")
    if isinstance(obj, dict):
        return {k: _to_plain(v, name) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v, name) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_plain(v, name) for v in obj)
    return obj


def restricted_loads(data: bytes, name: str = "<pickle>"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; arrays come back as NumPy arrays.

    Parameters
    ----------
    data : bytes
        The pickle.
    name : str, default "<pickle>"
        The file's name, used in error messages.
    """
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), name=name).load()
    except UnsafePickleError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        OverflowError,
        MemoryError,
    ) as exc:
        raise DataFormatError(
            f"{name}: not a readable pickled CIFAR-10 batch ({type(exc).__name__}: {exc}); "
            "the file is probably truncated or damaged: delete it and fetch it again"
        ) from None
    return _to_plain(obj, name)


def _check_md5(path, data, md5):
    if md5 is not None:
        found = md5_hex(data)
        if found != md5:
            raise ChecksumError(
                f"{path}: checksum mismatch: expected MD5 {md5}, found {found}; the file is damaged"
                " or not the official release: delete it and fetch it again"
            )


def _check_labels(path, labels, n_classes=10):
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise DataFormatError(
            f"{path}: labels outside 0…{n_classes - 1} "
            f"(found {int(labels.min())}…{int(labels.max())})"
        )


def read_cifar_python_batch(path: str | os.PathLike, md5: str | None = None):
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` uint8 from a python-version batch.

    Parameters
    ----------
    path : path-like
        The batch file (e.g. ``data_batch_1`` of ``cifar-10-batches-py``).
    md5 : str, optional
        Expected MD5 of the file, 32 hex digits; not checked when ``None``.

    Raises
    ------
    UnsafePickleError
        The pickle names a global outside the array stand-ins (nothing is imported or run).
    DataFormatError
        Unreadable, truncated, or not the layout of a CIFAR-10 batch.
    ChecksumError
        The file's MD5 differs from ``md5``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    obj = restricted_loads(data, path)
    _check_md5(path, data, md5)
    if not isinstance(obj, dict):
        raise DataFormatError(
            f"{path}: a CIFAR-10 batch is a pickled dict, found {type(obj).__name__}"
        )
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in d or "labels" not in d:
        raise DataFormatError(
            f"{path}: a CIFAR-10 batch needs the keys 'data' and 'labels', "
            f"found {sorted(map(str, d))}"
        )
    images, labels = d["data"], d["labels"]
    if isinstance(images, (bytes, bytearray)):
        images = np.frombuffer(images, dtype=np.uint8)
        if images.size % CIFAR_PIXELS:
            raise DataFormatError(
                f"{path}: 'data' holds {images.size} bytes, not a multiple of {CIFAR_PIXELS}"
            )
        images = images.reshape(-1, CIFAR_PIXELS)
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 2
        or images.shape[1] != CIFAR_PIXELS
    ):
        desc = (
            f"{images.dtype} array of shape {images.shape}"
            if isinstance(images, np.ndarray)
            else type(images).__name__
        )
        raise DataFormatError(
            f"{path}: 'data' must be a uint8 array of shape (N, {CIFAR_PIXELS}), found {desc}"
        )
    if not isinstance(labels, (list, tuple)) or not all(type(v) is int for v in labels):
        raise DataFormatError(f"{path}: 'labels' must be a list of ints")
    if len(labels) != images.shape[0]:
        raise DataFormatError(f"{path}: {images.shape[0]} images but {len(labels)} labels")
    labels = np.asarray(labels, dtype=np.int64)
    _check_labels(path, labels)
    return np.ascontiguousarray(images).reshape(-1, 3, 32, 32), labels.astype(np.uint8)


def read_cifar_binary_batch(
    path: str | os.PathLike, md5: str | None = None, n_records: int | None = None
):
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` uint8 from a binary-version batch.

    The file must be a whole number of 3073-byte records (``n_records`` of them
    when given); otherwise it is truncated or overlong and an error names it.

    Parameters
    ----------
    path : path-like
        The batch file (e.g. ``data_batch_1.bin``).
    md5 : str, optional
        Expected MD5 of the file, 32 hex digits; not checked when ``None``.
    n_records : int, optional
        Exact number of records the file must hold; any whole number when ``None``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    rec = 1 + CIFAR_PIXELS
    if (
        len(data) == 0
        or len(data) % rec
        or (n_records is not None and len(data) != n_records * rec)
    ):
        want = (
            f"{n_records} records of {rec} bytes ({n_records * rec} bytes)"
            if n_records
            else f"a whole number of {rec}-byte records"
        )
        raise DataFormatError(
            f"{path}: a CIFAR-10 binary batch holds {want}; the file has {len(data)} "
            "bytes (truncated or overlong): delete it and fetch it again"
        )
    _check_md5(path, data, md5)
    table = np.frombuffer(data, dtype=np.uint8).reshape(-1, rec)
    labels = table[:, 0].copy()
    _check_labels(path, labels)
    return table[:, 1:].reshape(-1, 3, 32, 32).copy(), labels
