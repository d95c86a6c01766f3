"""Errors of sweeps (the store has its own, in :mod:`bionp.sweep.store`)."""

from __future__ import annotations

__all__ = ["DaskUnavailableError", "SchedulerUnreachableError", "SweepError"]


class SweepError(RuntimeError):
    """A sweep cannot be started or continued."""


class DaskUnavailableError(SweepError, ImportError):
    """A cluster was asked for but ``dask.distributed`` is not installed."""


class SchedulerUnreachableError(SweepError, ConnectionError):
    """No Dask scheduler answered at the given address within the timeout."""
