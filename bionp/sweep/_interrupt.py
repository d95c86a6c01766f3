"""Ctrl-C during a sweep: one line from the driver, not the Dask workers' shutdown log.

A terminal's Ctrl-C sends SIGINT to its whole foreground process group, which includes
the worker processes of a local cluster the sweep started.  Those workers ignore it
(:func:`_own_workers_ignore_ctrl_c`, run when the cluster starts); the driver gets
``KeyboardInterrupt``, silences the Dask loggers here and on its own workers
(:func:`_quiet_dask`, :func:`_silence_worker`), cancels what is left and closes the
cluster; ``python -m bionp sweep`` then prints one line and exits with status 130.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

@contextlib.contextmanager
def _quiet_dask():
    """Within the block, this process's Dask loggers and warnings are silent (shutting
    down after Ctrl-C); their levels and the warning filters are restored after it."""
    names = {n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in ("distributed", "tornado", "asyncio", "bokeh")}
    names |= {"distributed", "tornado", "asyncio"}
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for n in names:
                logging.getLogger(n).setLevel(logging.CRITICAL)
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def _ignore_sigint() -> None:
    """On a worker: leave Ctrl-C (SIGINT to the terminal's process group) to the driver."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _own_workers_ignore_ctrl_c(client) -> None:
    """The worker processes of a cluster this sweep starts share the terminal's process
    group: without this a Ctrl-C would stop each of them on its own, mid-task, with its
    own log; the driver stops them instead (quietly, see :func:`_run_dask`)."""
    try:
        client.run(_ignore_sigint)
    except Exception:  # pragma: no cover - best effort: the sweep runs either way
        pass


def _silence_worker() -> None:
    """Run on each worker of a cluster this sweep started, before it closes after Ctrl-C."""
    import logging

    for name in ("distributed", "distributed.worker", "distributed.worker.state_machine",
                 "distributed.nanny", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
