"""``bionp.data.load``: find, verify, cache and hand over a dataset split.

Pipeline for ``mnist``, ``fashion-mnist`` and ``cifar10``:

1. find the split's raw files (search order in :mod:`bionp.data.locate`);
2. if the cache holds ``.npy`` copies made from exactly those files (same
   paths, sizes and modification times, recorded in a small JSON manifest),
   memory-map them (``np.load(mmap_mode="r")``) — the fast repeat load;
3. otherwise read the files with bionp's readers, check their structure and
   the MD5 of their decompressed payload against the registry, and only then
   write the uint8 ``.npy`` copies (temporary file in the same folder,
   ``os.replace``).  The copies are named by dataset, split and a key derived
   from the verified checksums, so a changed source never reuses them;
4. if no raw file is found, a complete cached copy is still used (offline
   reuse), else the files are downloaded through torchvision when allowed,
   else a :class:`DatasetNotFoundError` lists every way to get them.

Finally ``x = u8 / 255`` is computed in one pass in the requested dtype on the
active backend (the uint8 array is what crosses to the device; the division is
correctly rounded, so ``255 * x`` gives back the pixel values exactly), and
labels become int64.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bionp.backend import asarray, get_xp, resolve_dtype
from bionp.data import download as _download
from bionp.data import locate as _locate
from bionp.data.bundled_subset import load_bundled
from bionp.data.cifar import read_cifar_binary_batch, read_cifar_python_batch
from bionp.data.errors import (
    ChecksumError,
    DataFormatError,
    DatasetNotFoundError,
    DataRootError,
)
from bionp.data.idx import md5_hex, parse_idx, read_payload_and_md5
from bionp.data.registry import DatasetSpec, check_split, get_spec

__all__ = ["load", "load_uint8"]

_MANIFEST_FORMAT = "bionp-data-cache-1"


# ----------------------------------------------------------------------------- reading + verifying
def _verify_bytes(path: Path, data, fspec, found: str | None = None) -> str:
    if fspec.size is not None and len(data) != fspec.size:
        what = "truncated" if len(data) < fspec.size else "overlong"
        raise DataFormatError(
            f"{path}: {what}: expected {fspec.size} bytes of payload, found {len(data)}"
        )
    if found is None:
        found = md5_hex(data)
    if fspec.md5 is not None and found != fspec.md5:
        raise ChecksumError(
            f"{path}: checksum mismatch: expected MD5 {fspec.md5} of the decompressed payload,"
            f" found {found}; the file is damaged or not the official release: delete it and fetch"
            " it again"
        )
    return found


def _read_source(spec: DatasetSpec, src: _locate.Source):
    """uint8 images and labels of one split, verified; and the MD5 per file."""
    digests = {}
    if src.fmt == "idx":
        (fi, pi), (fl, pl) = src.files
        arrays = []
        for fs, p in ((fi, pi), (fl, pl)):
            data, found = read_payload_and_md5(p)
            arr = parse_idx(data, str(p))
            digests[fs.name] = _verify_bytes(p, data, fs, found)
            arrays.append(arr)
        images, labels = arrays
        if (
            images.dtype != np.uint8
            or images.ndim != 1 + len(spec.shape)
            or images.shape[1:] != spec.shape
        ):
            raise DataFormatError(
                f"{pi}: expected uint8 images of shape (N, {', '.join(map(str, spec.shape))}), "
                f"found {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DataFormatError(
                f"{pl}: expected uint8 labels of shape (N,), found {labels.dtype} {labels.shape}"
            )
        if labels.shape[0] != images.shape[0]:
            raise DataFormatError(
                f"{pi} holds {images.shape[0]} images but {pl} holds {labels.shape[0]} labels"
            )
        if labels.size and int(labels.max()) >= len(spec.classes):
            raise DataFormatError(
                f"{pl}: label {int(labels.max())} outside 0…{len(spec.classes) - 1}"
            )
        return images, labels, digests
    reader = read_cifar_python_batch if src.fmt == "python" else read_cifar_binary_batch
    parts = []
    for fs, p in src.files:
        if src.fmt == "binary":
            with open(p, "rb") as f:
                data = f.read()
            digests[fs.name] = _verify_bytes(p, data, fs)
            parts.append(read_cifar_binary_batch(p))
        else:
            with open(p, "rb") as f:
                data = f.read()
            parts.append(reader(p))  # structure first (and no pickle opcode runs anything)
            digests[fs.name] = _verify_bytes(p, data, fs)
    images = np.concatenate([a for a, _ in parts])
    labels = np.concatenate([b for _, b in parts])
    return images, labels, digests


def verify_source(spec: DatasetSpec, src: _locate.Source) -> None:
    """Read and verify ``src`` completely (raises on any problem)."""
    _read_source(spec, src)


# ----------------------------------------------------------------------------- the cache
def _atomic_write(folder: Path, final_name: str, write) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + final_name, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, folder / final_name)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return folder / final_name


def _manifest_path(cache: Path, name: str, split: str) -> Path:
    return cache / name / f"{split}.cache.json"


def _read_manifest(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            man = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(man, dict) or man.get("format") != _MANIFEST_FORMAT:
        return None
    return man


def _open_cached(spec: DatasetSpec, man, folder: Path):
    try:
        images = np.load(folder / man["images"], mmap_mode="r", allow_pickle=False)
        labels = np.load(folder / man["labels"], mmap_mode="r", allow_pickle=False)
    except Exception:  # noqa: BLE001 - any damage (a bad header raises even SyntaxError): rebuild
        return None
    if (
        not all(_whole(a) for a in (images, labels))
        or images.dtype != np.uint8
        or labels.dtype != np.uint8
        or images.shape[1:] != spec.shape
        or labels.shape != (images.shape[0],)
    ):
        return None
    return images, labels


def _whole(a) -> bool:
    """A memory-mapped ``.npy`` is exactly header + data long (a damaged header can shift it)."""
    name = getattr(a, "filename", None)
    return name is None or os.path.getsize(name) == a.offset + a.nbytes


def _npy_matches(path: Path, arr: np.ndarray) -> bool:
    try:
        old = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:  # noqa: BLE001 - damaged in any way: rewrite it
        return False
    return old.dtype == arr.dtype and old.shape == arr.shape and _whole(old)


def _write_cache(spec, split, cache: Path, src, images, labels, digests, old_man):
    folder = cache / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.md5(json.dumps(sorted(digests.items())).encode()).hexdigest()[:16]
    names = {"images": f"{split}-{key}-images.npy", "labels": f"{split}-{key}-labels.npy"}
    for what, arr in (("images", images), ("labels", labels)):
        if not _npy_matches(folder / names[what], arr):  # absent or damaged: (re)write it
            if (folder / names[what]).is_dir():  # an (empty) folder in the copy's place
                os.rmdir(folder / names[what])
            _atomic_write(folder, names[what], lambda f, a=arr: np.save(f, a, allow_pickle=False))
    man = {
        "format": _MANIFEST_FORMAT,
        "dataset": spec.name,
        "split": split,
        "key": key,
        "md5": digests,
        "source": src.signature(),
        **names,
    }
    _atomic_write(
        folder,
        _manifest_path(cache, spec.name, split).name,
        lambda f: f.write(json.dumps(man, indent=1).encode()),
    )
    if old_man and old_man.get("key") != key:  # the source changed: drop the stale copies
        for what in ("images", "labels"):
            stale = folder / str(old_man.get(what, ""))
            if stale.name.startswith(f"{split}-") and stale.suffix == ".npy" and stale.is_file():
                try:
                    stale.unlink()
                except OSError:
                    pass


def _not_found(spec, split, searched, cache, why_no_download) -> DatasetNotFoundError:
    lines = [f"dataset {spec.name!r} ({split} split) was not found. Looked in:"]
    for label, base in searched:
        lines.append(f"  - {base}  ({label}; also its sub-folders {', '.join(spec.folders)})")
    lines.append("Ways to get it:")
    lines.append(
        "  - pass root=FOLDER holding the raw files (or a sub-folder named after the dataset);"
    )
    lines.append("  - set the environment variable BIONP_DATA to such a folder;")
    lines.append(f"  - put the files in the cache folder {cache / spec.name};")
    if spec.debian_package:
        lines.append(f"  - on Debian/Ubuntu: apt-get install {spec.debian_package};")
    lines.append(
        '  - let bionp download them through torchvision: pip install "bionp[datasets]" '
        "and call load(..., download=True) (or leave download=None without BIONP_OFFLINE=1)"
        f" [{why_no_download}];"
    )
    lines.append("  - or use the bundled, offline load('fashion-mnist-small').")
    files = spec.files[split] if spec.kind != "cifar10" else spec.files["python"][split]
    lines.append(
        f"Files needed: {', '.join(f.name for f in files)}"
        + (
            " (or their .gz)"
            if spec.kind == "idx"
            else " (python version) or data_batch_N.bin / test_batch.bin (binary version)"
        )
    )
    return DatasetNotFoundError("\n".join(lines))


def _not_in_root(spec, split, root: Path) -> DatasetNotFoundError:
    files = spec.files[split] if spec.kind != "cifar10" else spec.files["python"][split]
    return DatasetNotFoundError(
        f"root={str(root)!r} does not hold dataset {spec.name!r} ({split} split): looked in {root}"
        f" and its sub-folders {', '.join(spec.folders)} for {', '.join(f.name for f in files)}"
        + (" (or their .gz)" if spec.kind == "idx" else " (or the binary version's .bin files)")
        + ". Put the files there, or leave root=None to search BIONP_DATA and the cache"
        " (and download when allowed)."
    )


def load_uint8(name: str, split: str = "train", root=None, download=None, cache_dir=None):
    """The split as stored: uint8 images ``(N, H, W)`` / ``(N, C, H, W)``, uint8 labels (host).

    Same search, verification and caching as :func:`load`; the arrays may be
    read-only memory maps of the cache.

    Parameters
    ----------
    name, split, root, download, cache_dir
        As for :func:`load`.
    """
    spec = get_spec(name)
    check_split(split)
    root = _locate.check_root(root)
    if spec.kind == "bundled":
        if root is not None:
            raise DataRootError(
                f"{spec.name!r} is bundled with bionp and read from no folder, but root={str(root)!r}"
                " was given: leave root=None (or name a dataset read from files, e.g. 'fashion-mnist')"
            )
        return load_bundled(split)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else _locate.cache_dir()
    allowed = _download.download_allowed(download)
    src, searched = _locate.find_source(spec, split, root, cache)
    man_path = _manifest_path(cache, spec.name, split)
    man = _read_manifest(man_path)
    if src is None and root is not None:  # the folder the user named lacks the files: refuse
        raise _not_in_root(spec, split, root)
    if src is None:
        if man is not None:  # offline reuse of a complete, earlier verified copy
            got = _open_cached(spec, man, cache / spec.name)
            if got is not None:
                return got
        if not allowed:
            raise _not_found(
                spec, split, searched, cache, "download is off: download=False or BIONP_OFFLINE=1"
            )
        try:
            _download.fetch(spec, cache, lambda s: verify_source(spec, s))
        except ImportError as exc:
            raise _not_found(
                spec, split, searched, cache, f"torchvision is not importable: {exc}"
            ) from None
        src, searched = _locate.find_source(spec, split, root, cache)
        if src is None:  # pragma: no cover - fetch() checks this
            raise _not_found(spec, split, searched, cache, "the download left no usable files")
    if man is not None and man.get("source") == src.signature():
        got = _open_cached(spec, man, cache / spec.name)
        if got is not None:
            return got
    images, labels, digests = _read_source(spec, src)  # raises before anything is written
    try:
        _write_cache(spec, split, cache, src, images, labels, digests, man)
    except OSError as exc:
        warnings.warn(
            f"bionp.data: could not write the cache in {cache} ({exc}); loading from the raw "
            "files every time (set BIONP_CACHE to a writable folder)",
            stacklevel=3,
        )
    return images, labels


def load(
    name: str,
    split: str = "train",
    root=None,
    download=None,
    *,
    flatten: bool = True,
    dtype=None,
    cache_dir=None,
):
    """Load a dataset split as ``(x, y)`` on the active backend.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "cifar10", "fashion-mnist-small"}
        ``"fashion-mnist-small"`` is bundled with bionp (10,000 train / 2,000
        test, class-balanced) and needs no file and no network.
    split : {"train", "test"}
    root : path-like, optional
        Folder holding the files (or a sub-folder named after the dataset).
        When given it is the only place searched: a missing folder, a file, or
        a folder without the split's files is refused (no fallback to
        ``BIONP_DATA``, the cache or a download).  Not for the bundled subset.
    download : bool or None
        Whether torchvision may download missing files; ``None`` means yes
        unless the environment sets ``BIONP_OFFLINE=1``.
    flatten : bool, default True
        ``x`` of shape ``(N, D)``; ``False`` keeps ``(N, 28, 28)`` or, for
        CIFAR-10, ``(N, 3, 32, 32)`` (channels first, as stored; the
        flattened order is channel, row, column).
    dtype : {"float32", "float64"}, optional
        Default: ``bionp.get_dtype()``.
    cache_dir : path-like, optional
        Overrides the cache folder (:func:`bionp.data.cache_dir`).

    Returns
    -------
    x : array of the active backend, floats in ``[0, 1]`` (pixel / 255)
    y : array of the active backend, int64 labels in ``0 … n_classes - 1``

    Raises
    ------
    UnknownDatasetError
        Unknown name or split (the message lists the valid ones).
    DataRootError
        ``root`` is not a path, names a file, or is given for the bundled subset.
    DatasetNotFoundError
        The files are nowhere and cannot be downloaded (the message lists the ways to get them).
    DataFormatError, ChecksumError, UnsafePickleError
        A file is damaged, truncated, not the official release, or a malicious pickle;
        the message names the file. Nothing is written into the cache in that case.

    Examples
    --------
    >>> x, y = load("fashion-mnist-small", split="test")   # bundled: offline
    >>> x.shape, str(x.dtype), y.shape, str(y.dtype)
    ((2000, 784), 'float32', (2000,), 'int64')
    >>> bool(x.min() >= 0.0 and x.max() <= 1.0)
    True
    """
    if not isinstance(flatten, bool):
        raise TypeError(f"flatten must be True or False, got {flatten!r}")
    dt = resolve_dtype(dtype)
    images, labels = load_uint8(name, split, root, download, cache_dir)
    xp = get_xp()
    u8 = images.reshape(images.shape[0], -1) if flatten else images
    x = xp.divide(asarray(u8), dt.type(255), dtype=dt)  # one pass, correctly rounded
    y = asarray(labels).astype(xp.int64)
    return x, y
