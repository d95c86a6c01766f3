"""bionp: biologically plausible learning rules on one NumPy/CuPy array backend.

Quick start::

    import bionp as bnp
    bnp.use("numpy")                      # or "cupy" (GPU), or "strict" (CPU stand-in)
    rng = bnp.random.default_rng(0)
    x = rng.normal(size=(4, 3))           # an array of the active backend

Submodules (``data``, ``nn``, ``rules``, ``hebbian``, ``plasticity``, ``optim``,
``metrics``, ``train``, ``plot``, ``sweep``, …) are imported on first use, so
``import bionp`` stays light: it never imports CuPy, PyTorch, torchvision,
matplotlib or Dask.

The library is built in layers; a module imports only from its own layer or below
(function-local imports included), and ``tests/test_architecture.py`` reads the imports
and keeps it so::

    faces      cli, gpucheck/, parity/ (scenarios), sweep/, experiment, studies/ (comparisons,
               grids)
       |
    training   train (Trainer), history, checkpoint, evaluation_data, metrics, robustness
       |
    rules      rules/, optim, schedules, plasticity/, hebbian/ (models), dendritic/ (layer,
               resampling)
       |
    nn         nn/ (layers, activations, losses, init, networks)
       |
    data       data/ (readers, registry, preprocessing, batches)
       |
    random     random (the counter-based generator)
       |
    backend    backend, dtypes, kernels, backend_conv, backend_dense, _errors, _surface,
               _host_syncs, _strict, _kernels, _conv_kernels, _dense_kernels, _cuda_kernels,
               _random_kernels, _random_numba, validation, progress, plot (leaf helpers)

A package's ``__init__`` sits at the layer of the highest module it re-exports.
"""

from __future__ import annotations

import importlib

from bionp import random
from bionp._version import __version__
from bionp.backend import (
    BackendError,
    BackendUnavailableError,
    MixedBackendError,
    asarray,
    asnumpy,
    available_backends,
    backend,
    backend_name,
    default_dtype,
    get_array_module,
    get_dtype,
    get_xp,
    preserved_defaults,
    set_dtype,
    to_scalar,
    use,
)

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "MixedBackendError",
    "__version__",
    "asarray",
    "asnumpy",
    "available_backends",
    "backend",
    "backend_name",
    "default_dtype",
    "get_array_module",
    "get_dtype",
    "get_xp",
    "preserved_defaults",
    "random",
    "set_dtype",
    "to_scalar",
    "use",
]

_LAZY_SUBMODULES = frozenset({
    "checkpoint", "cli", "data", "dendritic", "evaluation_data", "experiment", "hebbian",
    "history", "kernels", "metrics", "nn", "optim", "parity", "plasticity", "plot", "progress",
    "robustness", "rules", "schedules", "studies", "sweep", "testing", "train", "validation",
})


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"bionp.{name}")
    raise AttributeError(f"module 'bionp' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES)
