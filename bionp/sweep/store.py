"""The result store: an append-only JSON-lines file, one record per finished task.

Layout
------
Line 1 is a header::

    {"format": "bionp-sweep-store", "version": 2, "created": "...", "bionp": "0.1.0",
     "rng": {"entropy": ..., "spawn_key": [...]}, "crc32": "1c29f0a4"}

Every further line is one record of one finished ``(config, repeat)`` task::

    {"config": {...}, "config_hash": "9f…", "repeat": 0, "seed": 123…, "status": "ok",
     "metrics": {...}, "error": null, "traceback": null, "seconds": 1.23, "cpu_seconds": 1.2,
     "finished": "2026-…Z", "host": "node1", "pid": 4242,
     "versions": {"bionp": "0.1.0", "numpy": "2.…", "python": "3.…"}}

Every line of a version-2 store ends in ``"crc32": "xxxxxxxx"``: the CRC-32 of the line's
bytes without that member (``…}`` where the line has ``…,"crc32":"xxxxxxxx"}``), so a byte
changed anywhere in a line (a flipped bit inside a number or a date, which would still be
valid JSON) is refused as :class:`StoreCorruptError` instead of being read as another
value.  Records are returned without the member.  Version-1 stores (no checksums) are
still read, and appended to in their own format.

``status`` is ``"ok"`` or ``"error"`` (then ``error`` holds the exception's
one-line description and ``traceback`` the full traceback, and ``metrics`` is
``{}``). ``seconds`` is the task's wall-clock time on its worker,
``cpu_seconds`` the CPU time of the worker process meanwhile.

Crash safety
------------
Only the driver process writes. Each record is one complete line written by
a single ``os.write`` on a descriptor opened with ``O_APPEND`` and followed by
``fsync``, so a record is either entirely in the file or (after a crash in the
middle of the write) a truncated last line without its ``"\\n"``. Readers
ignore such a truncated last line with a :class:`TruncatedRecordWarning`;
opening the store for appending cuts it off first, so the next record starts
on a fresh line and earlier records are never touched. A complete line in the
middle of the file that does not parse is real corruption and raises
:class:`StoreCorruptError`. While a sweep appends, it holds an exclusive
``flock`` on the file, so a second sweep on the same store fails at once
instead of interleaving records.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
import zlib
from typing import Any, Iterable

__all__ = [
    "STORE_FORMAT",
    "STORE_VERSION",
    "READABLE_VERSIONS",
    "StoreError",
    "StoreCorruptError",
    "IncompatibleStoreError",
    "StoreLockedError",
    "TruncatedRecordWarning",
    "ResultStore",
    "read_store",
]

STORE_FORMAT = "bionp-sweep-store"
#: the version written by this bionp; it reads this one and those in ``READABLE_VERSIONS``
STORE_VERSION = 2
READABLE_VERSIONS = (1, 2)
_CHECKSUM = re.compile(rb',"crc32":"([0-9a-f]{8})"\}$')


class StoreError(RuntimeError):
    """A sweep result store cannot be used."""


class StoreCorruptError(StoreError):
    """A complete line of the store is not a valid record."""


class IncompatibleStoreError(StoreError):
    """The store was written in a format this version of bionp cannot read."""


class StoreLockedError(StoreError):
    """Another sweep is appending to the same store."""


class TruncatedRecordWarning(UserWarning):
    """The store ends in a partial record (a crash in the middle of a write); it is ignored."""


def _split_lines(data: bytes, path: str) -> tuple[list[bytes], int]:
    """Complete lines and the byte offset where a truncated tail starts (``len(data)`` if none)."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1] if end else []
    return lines, end


def _check_header(header: Any, path: str) -> dict:
    if not isinstance(header, dict) or header.get("format") != STORE_FORMAT:
        raise StoreError(
            f"{path} is not a bionp sweep result store (its first line is not a "
            f"{STORE_FORMAT!r} header). Pass a new file name as store=, or remove the file."
        )
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > STORE_VERSION
        raise IncompatibleStoreError(
            f"{path} was written in sweep store format version {version!r}, but this bionp "
            f"reads versions {', '.join(map(str, READABLE_VERSIONS))} only"
            + (" (the store comes from a newer bionp: upgrade bionp to read it)" if newer else
               "; convert it or start a new store (pass another store= path)")
            + f". Header: {json.dumps(header)[:200]}"
        )
    return header


def read_store(path: str | os.PathLike, *, warn: bool = True) -> tuple[dict | None, list[dict]]:
    """``(header, records)`` of a store, in file order.

    A missing or empty file gives ``(None, [])``. A truncated last line is
    ignored (with a :class:`TruncatedRecordWarning` when ``warn``).

    Parameters
    ----------
    path : str or path
    warn : bool, default True
        Warn about a record cut short at the end (it is left out).

    Raises
    ------
    StoreError
        The file is not a bionp sweep store.
    IncompatibleStoreError
        It was written in another store format version.
    StoreCorruptError
        A complete line does not parse as a JSON object.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, []
    except OSError as exc:  # a folder, no permission ...
        raise StoreError(f"{path}: cannot read the sweep store: {exc.strerror or exc}") from None
    lines, end = _split_lines(data, path)
    if end < len(data) and warn:
        warnings.warn(
            f"{path}: ignoring a truncated last record ({len(data) - end} bytes without a final "
            "newline, left by a crash in the middle of a write); that task will be run again",
            TruncatedRecordWarning, stacklevel=2,
        )
    if not lines:
        return None, []
    first, checked = _verified(lines[0], path, 1)
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    header = _check_header(header, path)
    _require_checksum(checked, header["version"], path, 1)
    records = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        line, checked = _verified(line, path, i)
        _require_checksum(checked, header["version"], path, i)
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise StoreCorruptError(
                f"{path}, line {i}: not a valid JSON record ({exc}); the file was modified by "
                "something other than bionp.sweep. Remove or repair that line."
            ) from None
        if not isinstance(rec, dict) or "config_hash" not in rec or "repeat" not in rec:
            raise StoreCorruptError(f"{path}, line {i}: not a sweep record (no config_hash/repeat)")
        records.append(rec)
    return header, records


def _verified(line: bytes, path: str, number: int) -> tuple[bytes, bool]:
    """``(line without its crc32 member, whether it had one)``; a checksum that does not
    match the line raises :class:`StoreCorruptError`."""
    m = _CHECKSUM.search(line)
    if m is None:
        return line, False
    body = line[:m.start()] + b"}"
    if zlib.crc32(body) != int(m.group(1), 16):
        raise StoreCorruptError(
            f"{path}, line {number}: the line does not match its crc32 checksum (a byte of it was "
            "changed after bionp.sweep wrote it); remove or repair that line"
        )
    return body, True


def _require_checksum(checked: bool, version: int, path: str, number: int) -> None:
    """A version-2 store's line without its crc32 member is refused."""
    if version >= 2 and not checked:
        what = "the header" if number == 1 else "the record"
        raise StoreCorruptError(f"{path}, line {number}: {what} has no crc32 checksum, which a "
                                f"version-{version} store carries on every line")


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _dumps(obj: Any, checksum: bool = True) -> bytes:
    """One store line: compact JSON, with the ``crc32`` member last when ``checksum``."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if checksum:
        if body == b"{}":
            raise ValueError("a store line holds a non-empty JSON object")
        body = body[:-1] + b',"crc32":"%08x"}' % zlib.crc32(body)
    return body + b"\n"


class ResultStore:
    """Append-only writer of one store file (used by the sweep driver only).

    Opening takes an exclusive lock, cuts off a truncated last line and writes
    the header if the file is new. Use as a context manager.

    Parameters
    ----------
    path : path-like
        The store file; created (with its folder) if missing, else appended to.
    header : dict
        The header written to a new file; an existing file keeps its own.
    """

    def __init__(self, path: str | os.PathLike, header: dict):
        self.path = os.fspath(path)
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        created = not os.path.exists(self.path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        if created:  # make the new file's directory entry durable too
            _fsync_dir(folder or ".")
        try:
            self._lock()
            self.header, self.records = self._prepare(header)
        except BaseException:
            os.close(self._fd)
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreLockedError(
                f"{self.path} is in use by another running sweep; wait for it to finish or use "
                "another store= path"
            ) from None

    def _prepare(self, header: dict):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncatedRecordWarning)
            old_header, records = read_store(self.path)
        size = os.fstat(self._fd).st_size
        data_end = size
        if caught:
            with open(self.path, "rb") as f:
                data_end = f.read().rfind(b"\n") + 1
            for w in caught:
                warnings.warn(w.message, w.category, stacklevel=4)
        if data_end < size:  # cut the partial record off, so the next one starts a fresh line
            os.ftruncate(self._fd, data_end)
            os.fsync(self._fd)
        if old_header is None:
            if data_end:
                os.ftruncate(self._fd, 0)
            self._checksums = True
            self._write(_dumps(header))
            return header, []
        self._checksums = old_header["version"] >= 2  # a version-1 store stays version 1
        return old_header, records

    def _write(self, line: bytes) -> None:
        view = memoryview(line)
        while view:  # one write on regular files; the loop only guards against partial writes
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def append(self, record: dict) -> None:
        """Append one record as one line (a single write, then fsync)."""
        self._write(_dumps(record, self._checksums))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # pragma: no cover
        try:
            self.close()
        except Exception:
            pass


def new_header(rng_state: dict) -> dict:
    from bionp import __version__

    return {"format": STORE_FORMAT, "version": STORE_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "bionp": __version__, "rng": rng_state}


def latest_records(records: Iterable[dict]) -> list[dict]:
    """One record per ``(config_hash, repeat)``: the last ``"ok"`` one, else the last one.

    Records keep the order in which their key first appears.
    """
    chosen: dict[tuple, dict] = {}
    for rec in records:
        key = (rec["config_hash"], rec["repeat"])
        old = chosen.get(key)
        if old is None or rec.get("status") == "ok" or old.get("status") != "ok":
            chosen[key] = rec
    return list(chosen.values())
