"""One task of a sweep, as run on a worker: thread limits, versions, the task's result record,
per-process caching, and functions shipped to workers by value."""

from __future__ import annotations

import os
import platform
import socket
import time
import traceback
from typing import Any, Callable, Mapping

from bionp.sweep.errors import SweepError

__all__ = ["BLAS_ENV", "cached", "execute_pickled", "execute_task"]

#: Environment that limits BLAS/OpenMP pools and bionp's random-number threads to one thread
#: (set in each worker process).
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1", "BIONP_NUM_THREADS": "1"}




def _versions() -> dict:
    import numpy as np

    from bionp import __version__

    return {"bionp": __version__, "numpy": np.__version__, "python": platform.python_version()}


class _ThreadLimits:
    """BLAS pools (threadpoolctl, when installed) and bionp's generator threads limited to
    ``n`` for one task; :meth:`restore_original_limits` undoes both."""

    def __init__(self, n: int):
        from bionp import random as bionp_random

        self._random = bionp_random
        self._random_threads = bionp_random.get_num_threads()
        bionp_random.set_num_threads(n)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self._blas = None
        else:
            self._blas = threadpool_limits(limits=n)

    def restore_original_limits(self) -> None:
        self._random.set_num_threads(self._random_threads)
        if self._blas is not None:
            self._blas.restore_original_limits()


def _blas_limits(blas_threads):
    if blas_threads is None:
        return None
    return _ThreadLimits(int(blas_threads))


def execute_task(fn: Callable, config: dict, seed: int, blas_threads: int | None = 1) -> dict:
    """Run ``fn(config, seed)``; the worker's half of a record (never raises ``Exception``).

    The metrics are checked (a dict, JSON-serialisable; NumPy scalars and arrays
    are converted) here on the worker, so an error carries the worker's traceback.
    A backend or dtype the task selects (``bionp.use``, ``bionp.set_dtype``) is
    switched back afterwards, so no task inherits another's choice.

    Parameters
    ----------
    fn : callable
        The task function ``fn(config, seed) -> dict`` of metrics.
    config : dict
        The task's parameters (``fn`` gets a copy).
    seed : int
        The task's seed.
    blas_threads : int or None, default 1
        BLAS/OpenMP threads while ``fn`` runs; ``None`` leaves them as they are.
    """
    import json

    from bionp.backend import preserved_defaults
    from bionp.sweep.configs import _jsonable

    t0, c0 = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {"status": "ok", "metrics": {}, "error": None, "traceback": None}
    limits = _blas_limits(blas_threads)
    try:
        with preserved_defaults():  # a task's bionp.use()/set_dtype() ends with it
            metrics = fn(dict(config), seed)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"the task function must return a dict of metrics, got "
                            f"{type(metrics).__name__}: {metrics!r:.80}")
        out["metrics"] = json.loads(json.dumps(dict(metrics), default=_jsonable))
    except Exception as exc:  # recorded, the sweep goes on; KeyboardInterrupt propagates
        out.update(status="error", metrics={}, error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc())
    finally:
        if limits is not None:
            limits.restore_original_limits()
    out.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
               host=socket.gethostname(), pid=os.getpid(), versions=_versions())
    return out


_PROCESS_CACHE: dict = {}


def cached(key, make: Callable[[], Any]):
    """``make()`` once per process and key, then the same object (e.g. a data set in each worker).

    A task function pickled to a worker cannot keep a cache in its own module's
    globals (they travel with it); this one lives in the worker process::

        def task(config, seed):
            x, y = bionp.sweep.cached(("fmnist", "train"),
                                      lambda: bionp.data.load("fashion-mnist", split="train"))

    Parameters
    ----------
    key : hashable
    make : callable
        Called without arguments the first time ``key`` is asked for in this process.
    """
    try:
        return _PROCESS_CACHE[key]
    except KeyError:
        value = _PROCESS_CACHE[key] = make()
        return value



def _pickle_function(fn) -> bytes:
    """``fn`` pickled with cloudpickle: by value when it comes from ``__main__`` or a file
    registered with ``cloudpickle.register_pickle_by_value`` (plain pickle, which Dask tries
    first, would send such functions by reference and workers could not import them)."""
    import cloudpickle

    try:
        return cloudpickle.dumps(fn)
    except Exception as exc:
        raise SweepError(
            f"the task function cannot be pickled to send it to the workers ({type(exc).__name__}: "
            f"{exc}). Define it at module level, without references to open files, locks or "
            "clients, or run with scheduler='serial'.") from None


def execute_pickled(fn_bytes: bytes, config: dict, seed: int, blas_threads: int | None = 1) -> dict:
    """:func:`execute_task` with the function sent as cloudpickle bytes (unpickled once per process).

    Parameters
    ----------
    fn_bytes : bytes
        The task function, pickled with cloudpickle.
    config, seed, blas_threads
        As for :func:`execute_task`.
    """
    import hashlib

    def load():
        import cloudpickle

        return cloudpickle.loads(fn_bytes)

    try:
        fn = cached(("bionp.sweep.fn", hashlib.sha256(fn_bytes).hexdigest()), load)
    except Exception as exc:
        def fail(config, seed, error=exc):  # reports the unpickling error as the task's
            raise error

        out = execute_task(fail, config, seed, None)
        out["error"] = f"could not unpickle the task function on the worker: {out['error']}"
        return out
    return execute_task(fn, config, seed, blas_threads)
