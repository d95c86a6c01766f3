"""Exceptions raised by :mod:`bionp.data`."""

from __future__ import annotations

import pickle

__all__ = [
    "DataError",
    "UnknownDatasetError",
    "DatasetNotFoundError",
    "DataFormatError",
    "DataRootError",
    "ChecksumError",
    "UnsafePickleError",
]


class DataError(Exception):
    """Base class of bionp's dataset errors."""


class UnknownDatasetError(DataError, ValueError):
    """An unknown dataset name or split was asked for."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """The files of a dataset were found nowhere and could not be downloaded."""


class DataFormatError(DataError, ValueError):
    """A file is not in the format it claims (bad magic, truncated, overlong, bad layout)."""


class ChecksumError(DataFormatError):
    """A file's payload does not have the checksum recorded in bionp's registry."""


class UnsafePickleError(DataFormatError, pickle.UnpicklingError):
    """A pickled CIFAR batch asked for something the restricted unpickler refuses."""


class DataRootError(DataError, ValueError):
    """The ``root=`` folder named by the user cannot be used (a file, or not a path at all)."""
