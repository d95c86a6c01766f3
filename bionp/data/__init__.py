"""Datasets: MNIST, Fashion-MNIST and CIFAR-10 read, verified and cached by bionp itself.

Quick start::

    import bionp as bnp
    x, y = bnp.data.load("fashion-mnist-small")          # bundled, offline
    x, y = bnp.data.load("fashion-mnist", split="test")  # x (N, 784) in [0, 1], y (N,) int64
    bnp.data.load_info("cifar10")["classes"]

Where files are looked for (``root`` → ``$BIONP_DATA`` → the cache → Debian's
``dataset-*`` packages → a torchvision download) and where the cache lives are
described in :mod:`bionp.data.locate`; what is verified, in
:mod:`bionp.data.registry`.  torchvision is used for one thing only, fetching
files, and is imported only when a download actually happens.

Modules
-------
=============  ==========================================================================
registry       names, checksums, shapes, classes, licences; :func:`load_info`
idx, cifar     readers for the IDX and CIFAR-10 formats (restricted unpickler)
locate         search order and cache folder
loading        :func:`load`: find → verify → cache (``.npy``, memory-mapped) → backend
download       the optional torchvision fetch
preprocess     one-hot, standardise, unit-norm rows, flatten, stratified subsets, splits
images         NCHW images: load_images (padded to 32x32), per-channel standardisation,
               random crop + flip augmentation
batching       :class:`BatchIterator` / :func:`iterate_batches`
=============  ==========================================================================
"""

from bionp.data.batching import BatchIterator, iterate_batches
from bionp.data.errors import (
    ChecksumError,
    DataError,
    DataFormatError,
    DataRootError,
    DatasetNotFoundError,
    UnknownDatasetError,
    UnsafePickleError,
)
from bionp.data.images import (
    apply_channel_stats,
    as_images,
    load_images,
    pad_images,
    random_crop_flip,
    standardize_channels,
)
from bionp.data.loading import load, load_uint8
from bionp.data.locate import cache_dir
from bionp.data.preprocess import (
    flatten,
    normalize_rows,
    one_hot,
    standardize,
    stratified_subset,
    train_val_split,
)
from bionp.data.registry import DATASET_NAMES, load_info

__all__ = [
    "apply_channel_stats",
    "as_images",
    "load_images",
    "pad_images",
    "random_crop_flip",
    "standardize_channels",
    "BatchIterator",
    "ChecksumError",
    "DATASET_NAMES",
    "DataError",
    "DataFormatError",
    "DataRootError",
    "DatasetNotFoundError",
    "UnknownDatasetError",
    "UnsafePickleError",
    "available_datasets",
    "cache_dir",
    "flatten",
    "iterate_batches",
    "load",
    "load_info",
    "load_uint8",
    "normalize_rows",
    "one_hot",
    "standardize",
    "stratified_subset",
    "train_val_split",
]


def available_datasets() -> tuple:
    """Names accepted by :func:`load`."""
    return DATASET_NAMES
