"""``fashion-mnist-small``: the class-balanced Fashion-MNIST subset shipped inside bionp.

10,000 training images (1,000 per class) and 2,000 test images (200 per
class), uint8, stored with :func:`numpy.savez_compressed` in
``bionp/data/bundled/fashion-mnist-small.npz`` and read back with
``allow_pickle=False``.  The file is made by :mod:`bionp.data.make_bundled`
from the full Fashion-MNIST files; :data:`BUNDLED_MD5` holds the MD5 of each
stored array (its C-order bytes), checked at every load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bionp.data.errors import ChecksumError, DataFormatError, DatasetNotFoundError
from bionp.data.idx import md5_hex

__all__ = ["BUNDLED_FILE", "BUNDLED_MD5", "load_bundled"]

BUNDLED_FILE = Path(__file__).resolve().parent / "bundled" / "fashion-mnist-small.npz"

#: MD5 of the C-order bytes of each array in the bundled file (written by make_bundled).
BUNDLED_MD5 = {
    "x_train": "61c0a1a8d225fbd00c8ac8c863aa5064",
    "y_train": "b8d620fe4583daa1d73d4ae497ee8748",
    "x_test": "c2e86487c9d8e375b27e58e3b9c048be",
    "y_test": "2abfe6bbd19301138bbc96890167767e",
}

_MEMO: dict = {}


def load_bundled(split: str, path: Path | None = None):
    """uint8 images ``(N, 28, 28)`` and labels ``(N,)`` of the bundled subset (read-only arrays).

    Parameters
    ----------
    split : {"train", "test"}
        Which split (the arrays ``x_<split>`` and ``y_<split>`` of the file).
    path : path-like, optional
        The ``.npz`` file; the one shipped with bionp when ``None``.
    """
    path = Path(path) if path is not None else BUNDLED_FILE
    key = (str(path), split)
    if key in _MEMO:
        return _MEMO[key]
    if not path.is_file():
        raise DatasetNotFoundError(
            f"the bundled file {path} is missing: the bionp installation is incomplete "
            "(reinstall bionp, or run `python -m bionp.data.make_bundled` in a source checkout)"
        )
    names = (f"x_{split}", f"y_{split}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = [npz[n] for n in names]
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(
            f"{path}: unreadable bundled subset ({type(exc).__name__}: {exc}); reinstall bionp"
        ) from None
    for n, a in zip(names, arrays):
        want = BUNDLED_MD5.get(n)
        if a.dtype != np.uint8:
            raise DataFormatError(f"{path}: array {n} is {a.dtype}, expected uint8")
        if want is not None:
            found = md5_hex(np.ascontiguousarray(a))
            if found != want:
                raise ChecksumError(
                    f"{path}: array {n}: checksum mismatch: expected MD5 {want}, "
                    f"found {found}; reinstall bionp"
                )
        a.flags.writeable = False
    images, labels = arrays
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise DataFormatError(f"{path}: unexpected shapes {images.shape} and {labels.shape}")
    _MEMO[key] = (images, labels)
    return images, labels
