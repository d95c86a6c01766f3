"""Where bionp looks for dataset files, and where it caches them.

Search order used by :func:`bionp.data.load` (the first place holding every
file of the requested split wins):

1. the ``root=`` argument -- when given, it is the only place searched: a
   folder the user named is used or refused (:func:`check_root`), never
   silently passed over for another copy;
2. the folders in the environment variable ``BIONP_DATA`` (several may be
   joined with ``os.pathsep``);
3. the cache directory (:func:`cache_dir`), where downloads are kept;
4. the folders of Debian's dataset packages (:data:`SYSTEM_DATA_DIRS`;
   ``apt-get install dataset-fashion-mnist`` installs Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist/``);
5. a download through torchvision (see :mod:`bionp.data.download`).

In each of the folders 1-4 the files may sit in a sub-folder named after the
dataset (``$BIONP_DATA/fashion-mnist/train-images-idx3-ubyte.gz``), in the
layout torchvision writes (``MNIST/raw/``, ``FashionMNIST/raw/``,
``cifar-10-batches-py/``, ``cifar-10-batches-bin/``), or directly in the
folder.  IDX files may be gzip-compressed or not.

The cache directory
-------------------
* ``$BIONP_CACHE`` when set;
* otherwise, when bionp runs from a source checkout (the folder holding the
  ``bionp`` package also holds ``pyproject.toml``), the checkout's
  ``data_cache/``;
* otherwise (an installed package) the user cache directory
  ``$XDG_CACHE_HOME/bionp``, or ``~/.cache/bionp`` when ``XDG_CACHE_HOME`` is
  unset.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from bionp.data.errors import DatasetNotFoundError, DataRootError
from bionp.data.registry import DatasetSpec, FileSpec

__all__ = [
    "SYSTEM_DATA_DIRS", "cache_dir", "check_root", "search_locations", "find_source", "Source",
]

#: Folders of Debian's ``dataset-*`` packages (``dpkg -L dataset-fashion-mnist``
#: lists ``/usr/share/datasets/fashion-mnist/*.gz``).
SYSTEM_DATA_DIRS = ("/usr/share/datasets", "/usr/local/share/datasets")


def cache_dir() -> Path:
    """The folder where downloads and ``.npy`` copies are kept (see the module docstring)."""
    env = os.environ.get("BIONP_CACHE")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "bionp").is_dir():
        return checkout / "data_cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "bionp"


def check_root(root) -> Path | None:
    """``root`` as a :class:`~pathlib.Path` of an existing folder (``None`` stays ``None``).

    Parameters
    ----------
    root : str, path-like or None
        The folder given as ``root=``.

    Raises
    ------
    DataRootError
        ``root`` is not a path (``TypeError``-like use: an int, a list ...) or names a file.
    DatasetNotFoundError
        ``root`` names nothing.
    """
    if root is None:
        return None
    if isinstance(root, bytes):
        root = os.fsdecode(root)
    if not isinstance(root, (str, os.PathLike)) or (isinstance(root, str) and not root.strip()):
        raise DataRootError(
            f"root must be the path of a folder holding the dataset files (str or os.PathLike),"
            f" got {type(root).__name__} {root!r}"
        )
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(
            f"root={str(root)!r}: no such folder ({path}). Pass the folder holding the dataset"
            " files, or leave root=None to search BIONP_DATA, the cache and the system folders."
        )
    if not path.is_dir():
        raise DataRootError(
            f"root={str(root)!r} is a file, not a folder: pass the folder that holds the dataset"
            " files (or a sub-folder named after the dataset)"
        )
    return path


def search_locations(root=None, cache: Path | None = None) -> list[tuple[str, Path]]:
    """``(label, folder)`` pairs in the order they are searched.

    A ``root`` given is the only place (checked by :func:`check_root`).

    Parameters
    ----------
    root : str, path-like, optional
        A folder given by the caller: then the only place searched.
    cache : path-like, optional
        The cache folder; :func:`cache_dir` when ``None``.
    """
    out: list[tuple[str, Path]] = []
    if root is not None:
        return [("root argument", check_root(root))]
    for part in os.environ.get("BIONP_DATA", "").split(os.pathsep):
        if part.strip():
            out.append(("BIONP_DATA", Path(part.strip()).expanduser()))
    out.append(("cache", Path(cache) if cache is not None else cache_dir()))
    for d in SYSTEM_DATA_DIRS:
        out.append(("system dataset package", Path(d)))
    return out


@dataclasses.dataclass(frozen=True)
class Source:
    """Files of one split found in one folder.

    Parameters
    ----------
    folder : pathlib.Path
        The folder the files are in.
    fmt : {"idx", "python", "binary"}
        Their format.
    files : tuple
        ``(FileSpec, Path)`` pairs, one per file of the split.
    where : str, default ""
        Label of the search location the files were found in.
    """

    folder: Path
    fmt: str  # "idx", "python" or "binary"
    files: tuple  # of (FileSpec, Path)
    where: str = ""

    def signature(self) -> list:
        """``[path, size, mtime_ns]`` per file: cheap to compare, changes when a file does."""
        sig = []
        for _, p in self.files:
            st = p.stat()
            sig.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        return sig


def _file_in(folder: Path, spec: FileSpec, fmt: str) -> Path | None:
    names = (spec.name, spec.name + ".gz") if fmt == "idx" else (spec.name,)
    for n in names:
        p = folder / n
        if p.is_file():
            return p
    return None


def _formats(spec: DatasetSpec, split: str):
    if spec.kind == "cifar10":
        return [(fmt, per[split]) for fmt, per in spec.files.items()]
    return [("idx", spec.files[split])]


def find_in(spec: DatasetSpec, split: str, base: Path, where: str = "") -> Source | None:
    """The split's files in ``base`` (or its dataset sub-folders), or None."""
    for folder in [base / f for f in spec.folders] + [base]:
        if not folder.is_dir():
            continue
        for fmt, files in _formats(spec, split):
            found = [(f, _file_in(folder, f, fmt)) for f in files]
            if all(p is not None for _, p in found):
                return Source(folder, fmt, tuple(found), where)
    return None


def find_source(spec: DatasetSpec, split: str, root=None, cache: Path | None = None):
    """First :class:`Source` along :func:`search_locations`, and the list of places searched.

    Parameters
    ----------
    spec : bionp.data.registry.DatasetSpec
        The data set.
    split : {"train", "test"}
        Which split.
    root, cache
        As for :func:`search_locations`.
    """
    searched = []
    for label, base in search_locations(root, cache):
        searched.append((label, base))
        src = find_in(spec, split, base, label)
        if src is not None:
            return src, searched
    return None, searched
