"""Progress bars for bionp's long loops: shown on a terminal, quiet otherwise.

Every training loop of bionp (:class:`bionp.train.Trainer`, the Hebbian models, sweeps)
asks :func:`progress_enabled` whether to draw a tqdm bar: an explicit ``progress=True`` or
``False`` wins; otherwise the bar is shown when standard error is a terminal and the
environment variable ``BIONP_PROGRESS`` is not ``"0"``.  tqdm is imported only when a bar
is drawn.
"""

from __future__ import annotations

import os
import sys

__all__ = ["progress_enabled", "progress_range"]


def progress_enabled(progress) -> bool:
    """Whether to show a progress bar: ``progress`` if given, else when stderr is a terminal
    and ``BIONP_PROGRESS`` is not ``"0"`` (shared by every training loop of bionp).

    Parameters
    ----------
    progress : bool or None
    """
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and os.environ.get("BIONP_PROGRESS", "1") != "0"


def progress_range(n: int, progress, desc: str, unit: str = "epoch"):
    """``range(n)``, wrapped in a tqdm bar labelled ``desc`` when :func:`progress_enabled`.

    Parameters
    ----------
    n : int
    progress : bool or None
        See :func:`progress_enabled`.
    desc : str
    unit : str, default "epoch"
    """
    if not progress_enabled(progress):
        return range(n)
    from tqdm.auto import tqdm  # noqa: PLC0415  (imported only when a bar is drawn)

    return tqdm(range(n), desc=desc, unit=unit)
