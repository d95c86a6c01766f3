"""Fetching raw files through torchvision, the only thing bionp uses it for.

torchvision (``pip install "bionp[datasets]"``) is imported inside
:func:`fetch` only, so ``import bionp.data`` never imports it (nor PyTorch).
The files torchvision leaves in a temporary folder are verified by bionp's
own readers against bionp's checksums; only then are they moved (one atomic
``os.replace`` each) into ``<cache>/<dataset>/``.  A failed or corrupt
download leaves the cache as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bionp.data.errors import DatasetNotFoundError
from bionp.data.locate import find_in
from bionp.data.registry import SPLITS, DatasetSpec

__all__ = ["download_allowed", "fetch"]


def download_allowed(download) -> bool:
    """``download=None`` means allowed unless the environment sets ``BIONP_OFFLINE=1``.

    Parameters
    ----------
    download : bool or None
        ``True`` / ``False`` as given; ``None`` for the environment's default.
    """
    if download is None:
        return os.environ.get("BIONP_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")
    if not isinstance(download, bool):
        raise TypeError(f"download must be True, False or None, got {download!r}")
    return download


def _find_below(spec: DatasetSpec, split: str, top: Path):
    """The split's files in ``top`` or any folder below it (torchvision's layouts vary)."""
    for folder in [top] + sorted(p for p in top.rglob("*") if p.is_dir()):
        src = find_in(spec, split, folder, "download")
        if src is not None:
            return src
    return None


def fetch(spec: DatasetSpec, cache: Path, verify) -> Path:
    """Download ``spec``'s files with torchvision, verify them, move them into the cache.

    ``verify(source)`` is the loader's verification (raises on a bad file).
    Returns the folder the verified files were moved to.

    Parameters
    ----------
    spec : bionp.data.registry.DatasetSpec
        The data set; it needs a ``torchvision_class``.
    cache : path-like
        The cache folder; the files go to ``cache / spec.name``.
    verify : callable
        ``verify(source)``, called on each split's downloaded files before any is moved.

    Raises
    ------
    ImportError
        torchvision is not installed.
    DatasetNotFoundError
        torchvision failed, or did not leave the files bionp expects.
    """
    if spec.torchvision_class is None:
        raise DatasetNotFoundError(f"{spec.name!r} cannot be downloaded through torchvision")
    import torchvision.datasets as tv_datasets  # noqa: PLC0415  (optional dependency)

    dest = Path(cache) / spec.name
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=dest))
    try:
        cls = getattr(tv_datasets, spec.torchvision_class)
        for train in (True, False):
            try:
                cls(root=str(tmp), train=train, download=True)
            except Exception as exc:  # network errors, torchvision's own checks
                raise DatasetNotFoundError(
                    f"downloading {spec.name!r} through torchvision failed: {type(exc).__name__}:"
                    f" {exc}"
                ) from exc
        sources = []
        for split in SPLITS:
            src = _find_below(spec, split, tmp)
            if src is None:
                raise DatasetNotFoundError(
                    f"torchvision's download of {spec.name!r} did not leave the {split} files bionp"
                    f" expects ({', '.join(f.name for f in spec.files[split])}) under {tmp}"
                    if spec.kind != "cifar10"
                    else (
                        f"torchvision's download of {spec.name!r} did not leave the CIFAR-10"
                        f" {split} batches"
                    )
                )
            verify(src)
            sources.append(src)
        for src in sources:  # everything verified: now move, one atomic rename per file
            for _, p in src.files:
                os.replace(p, dest / p.name)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
