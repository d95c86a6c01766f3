"""Reader (and writer) for the IDX format of MNIST and Fashion-MNIST.

An IDX file is a header followed by a payload, all big-endian::

    bytes 0-1   0x00 0x00                      (magic, part 1)
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64     (magic, part 2)
    byte  3     number of dimensions d         (magic, part 3)
    4 d bytes   the d sizes, uint32 each
    payload     prod(sizes) items, row-major

Files may be gzip-compressed (``*.gz``); the payload is checked against the
header exactly, so a truncated or overlong file is an error that names it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bionp.data.errors import ChecksumError, DataFormatError

__all__ = [
    "IDX_DTYPES",
    "read_idx_bytes",
    "read_payload_and_md5",
    "parse_idx",
    "read_idx",
    "write_idx",
    "md5_hex",
]

_CHUNK = 1 << 22  # compressed bytes fed to zlib at a time

#: IDX dtype code -> big-endian NumPy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def md5_hex(data) -> str:
    """MD5 of a bytes-like object, as 32 hex digits.

    Parameters
    ----------
    data : bytes-like
        Anything with the buffer protocol (bytes, memoryview, a contiguous array).
    """
    return hashlib.md5(memoryview(data).cast("B")).hexdigest()


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The decompressed bytes of a file (gzip detected by its magic bytes, not its name).

    Parameters
    ----------
    path : path-like
        The file, plain or gzip-compressed.
    """
    return read_payload_and_md5(path)[0]


def read_payload_and_md5(path: str | os.PathLike) -> tuple[bytes, str]:
    """Decompressed bytes of a (possibly gzip) file and their MD5, computed together.

    The MD5 of each decompressed chunk is updated on a worker thread while the
    next chunk is inflated (both release the GIL), so verifying costs little
    beyond decompressing.

    Parameters
    ----------
    path : path-like
        The file, plain or gzip-compressed (several gzip members are concatenated).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    h = hashlib.md5()
    if raw[:2] != b"\x1f\x8b":
        h.update(raw)
        return raw, h.hexdigest()
    view = memoryview(raw)
    chunks = []
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:  # one worker: updates stay in order
            pos = 0
            while True:
                d = zlib.decompressobj(wbits=31)  # one gzip member
                while pos < len(raw) and not d.eof:
                    piece = d.decompress(view[pos : pos + _CHUNK])
                    pos += min(_CHUNK, len(raw) - pos)
                    if piece:
                        chunks.append(piece)
                        pool.submit(h.update, piece)
                    if d.eof:
                        pos -= len(d.unused_data)
                if not d.eof:
                    raise EOFError(
                        "compressed file ended before the end-of-stream marker was reached"
                    )
                rest = raw[pos:].lstrip(b"\x00")
                if not rest:
                    break
                if rest[:2] != b"\x1f\x8b":
                    raise OSError("trailing garbage after the gzip data")
                pos = len(raw) - len(rest)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(
            f"{path}: not a readable gzip file ({exc}); the file is probably truncated or "
            "damaged: delete it and fetch it again"
        ) from None
    return b"".join(chunks), h.hexdigest()


def parse_idx(data, name: str = "<bytes>") -> np.ndarray:
    """Array (native byte order) from the bytes of an IDX file; ``name`` appears in errors.

    Parameters
    ----------
    data : bytes-like
        The whole (decompressed) IDX file.
    name : str, default "<bytes>"
        The file's name, used in error messages.

    Raises
    ------
    DataFormatError
        Wrong magic number, unknown dtype code, or a payload whose length does
        not match the header (truncated or overlong file).
    """
    data = memoryview(data).cast("B")
    if len(data) < 4:
        raise DataFormatError(
            f"{name}: {len(data)} bytes is too short to be an IDX file (header needs 4+)"
        )
    zero, code, ndim = bytes(data[:2]), data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES:
        raise DataFormatError(
            f"{name}: not an IDX file (magic number {bytes(data[:4]).hex()}; expected 0000 followed"
            f" by a dtype code among {', '.join(f'{c:02x}' for c in IDX_DTYPES)} and the number of"
            " dimensions)"
        )
    if ndim == 0:
        raise DataFormatError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(
            f"{name}: truncated IDX header ({len(data)} bytes, the header needs {header})"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dt = IDX_DTYPES[code]
    count = 1
    for d in dims:
        count *= d
    expected = header + count * dt.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "overlong"
        raise DataFormatError(
            f"{name}: {what} IDX file: the header declares shape {dims} of {dt.name} ({expected}"
            f" bytes in all), the file has {len(data)} bytes; delete it and fetch it again"
        )
    arr = np.frombuffer(data, dtype=dt, count=count, offset=header).reshape(dims)
    if dt.itemsize > 1:
        arr = arr.astype(dt.newbyteorder("="))
    return arr


def read_idx(path: str | os.PathLike, md5: str | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip), checking its structure and, if given, the payload's MD5.

    Parameters
    ----------
    path : path-like
        ``*-idx?-ubyte`` or ``*-idx?-ubyte.gz``.
    md5 : str, optional
        Expected MD5 of the decompressed payload.

    Raises
    ------
    DataFormatError
        Not IDX, truncated or overlong (the message names the file).
    ChecksumError
        The payload's MD5 differs from ``md5``.
    """
    path = os.fspath(path)
    data, found = read_payload_and_md5(path)
    arr = parse_idx(data, path)
    if md5 is not None:
        if found != md5:
            raise ChecksumError(
                f"{path}: checksum mismatch: expected MD5 {md5} of the decompressed payload, found"
                f" {found}; the file is damaged or not the official release: delete it and fetch it"
                " again"
            )
    return arr


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzip-compressed when ``compress``, or when the name ends in .gz).

    Parameters
    ----------
    path : path-like
        The file to write (overwritten).
    array : array_like
        Integer or float data of 1 to 255 dimensions, of a dtype IDX can hold.
    compress : bool, optional
        Gzip the file; when ``None``, only if ``path`` ends in ``.gz``.
    """
    path = os.fspath(path)
    arr = np.asarray(array)
    codes = {v.kind + str(v.itemsize): k for k, v in IDX_DTYPES.items()}
    key = arr.dtype.kind + str(arr.dtype.itemsize)
    if key not in codes or arr.ndim < 1 or arr.ndim > 255:
        raise ValueError(f"cannot write dtype {arr.dtype} with {arr.ndim} dimensions as IDX")
    code = codes[key]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
