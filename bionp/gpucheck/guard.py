"""Time budgets for the device check's phases (:mod:`bionp.gpucheck`)."""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["PhaseTimeout", "time_limit"]


class PhaseTimeout(Exception):
    """A phase ran past its time budget (raised by :func:`time_limit`)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str = "phase"):
    """Raise :class:`PhaseTimeout` in the block after ``seconds`` (``SIGALRM``; a no-op
    off the main thread or where the platform has no interval timer).  A call into C
    that does not return is interrupted when it returns, so subprocesses get their own
    timeout too.

    Parameters
    ----------
    seconds : float or None
        The budget in seconds; ``None``: no limit.
    what : str, default "phase"
        What is timed, named in the :class:`PhaseTimeout` message.
    """
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise PhaseTimeout(f"{what} ran past its budget of {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)

