"""Threads of :mod:`bionp.random` on NumPy: large draws cut into one contiguous chunk per thread.

A draw's numbers are a function of the key and the counter only (see
:mod:`bionp.random.philox`), so filling ``out[a:b]`` in several threads gives the
same array as one thread; :func:`set_num_threads` changes the speed, never the
numbers.  NumPy's ufuncs and its compiled Philox release the GIL.
"""

from __future__ import annotations

import numbers
import os
import threading

__all__ = ["get_num_threads", "set_num_threads"]

_PIECE = 1 << 15  # elements per piece of work: small enough to stay in cache
_THREADED_MIN = 1 << 17  # below this many elements one thread does everything
_num_threads = None
_pool = None
_pool_threads = 0
_pool_pid = None  # a forked child must not reuse its parent's pool (its threads are gone)
_pool_lock = threading.Lock()


def _default_threads() -> int:
    env = os.environ.get("BIONP_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"BIONP_NUM_THREADS must be a positive int, got {env!r}") from None
        if n < 1:
            raise ValueError(f"BIONP_NUM_THREADS must be a positive int, got {env!r}")
        return n
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(os.cpu_count() or 1, 8))


def get_num_threads() -> int:
    """Threads the NumPy backend uses for large draws (``BIONP_NUM_THREADS``, else the
    CPUs available, at most 8)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the threads used for large draws on NumPy; the numbers drawn do not change.

    Parameters
    ----------
    n : int
        Number of threads, >= 1.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"number of threads must be a positive int, got {n!r}")
    _num_threads = int(n)


def _run_chunks(fn, n: int) -> None:
    """``fn(a, b)`` over ``[0, n)`` cut into one contiguous chunk per thread (a single
    call below ``_THREADED_MIN`` elements or with one thread)."""
    threads = get_num_threads() if n >= _THREADED_MIN else 1
    if threads == 1 or n == 0:
        if n:
            fn(0, n)
        return
    step = -(-n // threads)
    bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
    _run_pieces(lambda ab: fn(*ab), bounds)


def _run_pieces(fn, starts) -> None:
    """``fn(start)`` for every start; in a thread pool when there are several and
    threads are enabled (NumPy's ufuncs and Philox release the GIL)."""
    global _pool, _pool_threads, _pool_pid
    starts = list(starts)
    threads = get_num_threads()
    if len(starts) <= 1 or threads == 1:
        for a in starts:
            fn(a)
        return
    with _pool_lock:
        if _pool is None or _pool_threads != threads or _pool_pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bionp-random")
            _pool_threads, _pool_pid = threads, os.getpid()
        pool = _pool
    for f in [pool.submit(fn, a) for a in starts]:
        f.result()
