"""The backend's error types, below both :mod:`bionp.backend` and :mod:`bionp._strict`.

:mod:`bionp.backend` loads the strict stand-in (:mod:`bionp._strict`), and the stand-in
raises :class:`MixedBackendError`; keeping the exceptions here lets both import them
without importing each other.  The public names are ``bionp.BackendError``,
``bionp.BackendUnavailableError`` and ``bionp.MixedBackendError`` (also reachable as
``bionp.backend.<name>``, which is also the classes' ``__module__``, so tracebacks and
pickles name them as before); nothing else should import this module directly.
"""

from __future__ import annotations

__all__ = ["BackendError", "BackendUnavailableError", "MixedBackendError"]


class BackendError(RuntimeError):
    """A backend was asked for something it cannot do."""

    __module__ = "bionp.backend"  # where users meet it (tracebacks, pickling)


class BackendUnavailableError(BackendError):
    """The requested backend (CuPy) is not installed or has no visible GPU."""

    __module__ = "bionp.backend"  # where users meet it (tracebacks, pickling)


class MixedBackendError(TypeError):
    """Arrays from two different backends met in one call."""

    __module__ = "bionp.backend"  # where users meet it (tracebacks, pickling)
