"""The datasets bionp knows: file names, checksums, shapes, classes, licences.

Every checksum is the MD5 of a file's **decompressed payload** (the bytes of
``train-images-idx3-ubyte``, not of ``train-images-idx3-ubyte.gz``), so a file
recompressed by a distribution (Debian's ``dataset-fashion-mnist`` for
instance) verifies the same as the upstream one.

Where the checksums come from
-----------------------------
* Fashion-MNIST: the MD5 of the four decompressed IDX files of the upstream
  release (Xiao, Rasul & Vollgraf 2017).
* MNIST: the MD5 of the four decompressed IDX files as published by several
  independent projects (one of which lists the Fashion-MNIST values above
  alongside, and another the payload size 47,040,016 bytes); they differ from
  the MD5 of the ``.gz`` files that torchvision checks.  No copy of MNIST was
  at hand when they were recorded, so bionp's tests check only their form; the
  payload sizes (header + 784 bytes per image) are checked at every load too.
* CIFAR-10, python version: the MD5 of the six extracted batch files, the
  values torchvision checks after extracting ``cifar-10-python.tar.gz``.
* CIFAR-10, binary version (``data_batch_N.bin``): no checksum is recorded
  (``None``); those files are verified by structure only (exact length
  10000 x 3073 bytes, labels in range).
* ``fashion-mnist-small``: the MD5 of the uint8 arrays stored in the bundled
  ``.npz`` (written by :mod:`bionp.data.make_bundled`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from bionp.data.errors import UnknownDatasetError

__all__ = [
    "FileSpec",
    "DatasetSpec",
    "DATASETS",
    "DATASET_NAMES",
    "SPLITS",
    "get_spec",
    "load_info",
]

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One raw file: its name, the MD5 of its decompressed payload (or None), its size.

    Parameters
    ----------
    name : str
        The file's name.
    md5 : str or None
        MD5 of the decompressed payload (32 hex digits); ``None``: not checked.
    size : int, optional
        Length of the decompressed payload in bytes; ``None``: not checked.
    """

    name: str
    md5: Optional[str]
    size: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What bionp knows about one dataset.

    Parameters
    ----------
    name : str
        The data set's name, e.g. ``"fashion-mnist"``.
    kind : {"idx", "cifar10", "bundled"}
        The file layout.
    classes : tuple of str
        Class names, index = label.
    shape : tuple of int
        Shape of one sample, e.g. ``(28, 28)`` or ``(3, 32, 32)``.
    n_train, n_test : int
        Number of samples per split.
    files : dict
        ``split -> tuple of FileSpec`` (CIFAR-10: ``format -> split -> files``).
    source : str
        Where the data set comes from.
    license : str
        Its licence.
    folders : tuple of str, default ()
        Sub-folders of a data root that may hold the files.
    torchvision_class : str, optional
        Name of the ``torchvision.datasets`` class that downloads it; ``None``: no download.
    debian_package : str, optional
        Debian package that installs it, named in the not-found message.
    description : str, default ""
        One line about it.
    """

    name: str
    kind: str  # "idx", "cifar10" or "bundled"
    classes: tuple
    shape: tuple  # one sample, e.g. (28, 28) or (3, 32, 32)
    n_train: int
    n_test: int
    files: dict  # split -> tuple of FileSpec (for CIFAR-10: format -> split -> files)
    source: str
    license: str
    folders: tuple = ()  # sub-folders of a data root that may hold the files
    torchvision_class: Optional[str] = None
    debian_package: Optional[str] = None
    description: str = ""


_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_MNIST_CLASSES = tuple(str(d) for d in range(10))
_CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _idx_files(md5: dict[str, str | None], n_train: int, n_test: int, pixels: int) -> dict:
    sizes = {
        "train-images-idx3-ubyte": 16 + n_train * pixels,
        "train-labels-idx1-ubyte": 8 + n_train,
        "t10k-images-idx3-ubyte": 16 + n_test * pixels,
        "t10k-labels-idx1-ubyte": 8 + n_test,
    }
    spec = {k: FileSpec(k, md5[k], sizes[k]) for k in sizes}
    return {
        "train": (spec["train-images-idx3-ubyte"], spec["train-labels-idx1-ubyte"]),
        "test": (spec["t10k-images-idx3-ubyte"], spec["t10k-labels-idx1-ubyte"]),
    }


_CIFAR_PY = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
#: records per CIFAR-10 batch file and bytes per record of the binary version
CIFAR_BATCH_RECORDS = 10000
CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        kind="idx",
        classes=_MNIST_CLASSES,
        shape=(28, 28),
        n_train=60000,
        n_test=10000,
        files=_idx_files(
            {
                "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
            },
            60000,
            10000,
            784,
        ),
        source="http://yann.lecun.com/exdb/mnist/ (LeCun, Cortes & Burges)",
        license="CC BY-SA 3.0 (as distributed by Y. LeCun and C. Cortes)",
        folders=("mnist", "MNIST/raw", "MNIST"),
        torchvision_class="MNIST",
        description="handwritten digits, 28x28 grey levels",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        kind="idx",
        classes=_FASHION_CLASSES,
        shape=(28, 28),
        n_train=60000,
        n_test=10000,
        files=_idx_files(
            {
                "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
                "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
                "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
            },
            60000,
            10000,
            784,
        ),
        source="https://github.com/zalandoresearch/fashion-mnist (Xiao, Rasul & Vollgraf 2017)",
        license="MIT",
        folders=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        torchvision_class="FashionMNIST",
        debian_package="dataset-fashion-mnist",
        description="Zalando article images, 28x28 grey levels",
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        kind="cifar10",
        classes=_CIFAR_CLASSES,
        shape=(3, 32, 32),
        n_train=50000,
        n_test=10000,
        files={
            "python": {
                "train": tuple(
                    FileSpec(f"data_batch_{i}", _CIFAR_PY[f"data_batch_{i}"]) for i in range(1, 6)
                ),
                "test": (FileSpec("test_batch", _CIFAR_PY["test_batch"]),),
            },
            "binary": {
                "train": tuple(
                    FileSpec(f"data_batch_{i}.bin", None, CIFAR_BATCH_RECORDS * CIFAR_RECORD_BYTES)
                    for i in range(1, 6)
                ),
                "test": (
                    FileSpec("test_batch.bin", None, CIFAR_BATCH_RECORDS * CIFAR_RECORD_BYTES),
                ),
            },
        },
        source="https://www.cs.toronto.edu/~kriz/cifar.html (Krizhevsky 2009)",
        license=(
            "no explicit licence; cite Krizhevsky (2009), Learning Multiple Layers of "
            "Features from Tiny Images"
        ),
        folders=(
            "cifar10",
            "cifar-10",
            "cifar10/cifar-10-batches-py",
            "cifar10/cifar-10-batches-bin",
            "cifar-10-batches-py",
            "cifar-10-batches-bin",
        ),
        torchvision_class="CIFAR10",
        description="32x32 colour images, channels first (3, 32, 32)",
    ),
    "fashion-mnist-small": DatasetSpec(
        name="fashion-mnist-small",
        kind="bundled",
        classes=_FASHION_CLASSES,
        shape=(28, 28),
        n_train=10000,
        n_test=2000,
        files={
            # MD5 of the uint8 arrays (C order) inside bundled/fashion-mnist-small.npz
            "train": (FileSpec("x_train", None), FileSpec("y_train", None)),
            "test": (FileSpec("x_test", None), FileSpec("y_test", None)),
        },
        source=(
            "class-balanced subset of Fashion-MNIST made by bionp.data.make_bundled "
            "(1000 train / 200 test images per class), shipped inside bionp"
        ),
        license="MIT (Fashion-MNIST; see bionp/data/bundled/LICENSE-fashion-mnist.txt)",
        description="offline subset of Fashion-MNIST, 28x28 grey levels",
    ),
}

_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "fashion_mnist_small": "fashion-mnist-small",
}

DATASET_NAMES = tuple(DATASETS)


def canonical_name(name) -> str:
    """The registry name of ``name`` (case and ``_``/``-`` spelling are forgiven)."""
    if not isinstance(name, str):
        raise TypeError(
            f"dataset name must be a string, one of {', '.join(DATASET_NAMES)}; "
            f"got {type(name).__name__}"
        )
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}: bionp knows {', '.join(repr(n) for n in DATASET_NAMES)} "
            "('fashion-mnist-small' is bundled with bionp and needs no download)"
        )
    return key


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of dataset ``name``.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`.
    """
    return DATASETS[canonical_name(name)]


def check_split(split) -> str:
    if split not in SPLITS:
        raise UnknownDatasetError(f"unknown split {split!r}: expected 'train' or 'test'")
    return split


def load_info(name: str) -> dict:
    """Facts about dataset ``name``, without touching any file.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`.

    Returns
    -------
    dict
        ``name``, ``classes`` (list of class names), ``n_classes``, ``shape``
        (of one sample, before flattening), ``n_features`` (after flattening),
        ``n_train``, ``n_test``, ``source``, ``license``, ``description`` and
        ``files`` (per split: names and the MD5 of their decompressed payload,
        ``None`` where bionp has no checksum and verifies the structure only).
    """
    spec = get_spec(name)
    n_features = 1
    for s in spec.shape:
        n_features *= s
    if spec.kind == "cifar10":
        files = {
            fmt: {sp: {f.name: f.md5 for f in fs} for sp, fs in per.items()}
            for fmt, per in spec.files.items()
        }
    elif spec.kind == "bundled":
        from bionp.data.bundled_subset import BUNDLED_MD5

        files = {sp: {f.name: BUNDLED_MD5.get(f.name) for f in fs} for sp, fs in spec.files.items()}
    else:
        files = {sp: {f.name: f.md5 for f in fs} for sp, fs in spec.files.items()}
    return {
        "name": spec.name,
        "classes": list(spec.classes),
        "n_classes": len(spec.classes),
        "shape": tuple(spec.shape),
        "n_features": n_features,
        "n_train": spec.n_train,
        "n_test": spec.n_test,
        "source": spec.source,
        "license": spec.license,
        "description": spec.description,
        "files": files,
    }
