"""Counting device-to-host transfers on the strict stand-in (see
:func:`bionp.testing.count_host_syncs`)."""

from __future__ import annotations

import collections
import sys

__all__ = ["host_syncs"]

#: Explicit device-to-host transfers (``get``, ``item``, ``tolist``: what ``asnumpy`` and
#: ``to_scalar`` do), counted so that tests can bound the host synchronisations of a
#: training step (each one stalls a GPU): ``count`` in total, ``sites`` by the first caller
#: outside the backend modules ("file:line").
host_syncs: dict = {"count": 0, "sites": collections.Counter()}

_BACKEND_FILES = ("_strict.py", "_host_syncs.py", "backend.py", "kernels.py")


def _count_sync() -> None:
    host_syncs["count"] += 1
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.endswith(_BACKEND_FILES):
        frame = frame.f_back
    if frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        short = path.split("/bionp/", 1)[-1] if "/bionp/" in path else path.rsplit("/", 1)[-1]
        host_syncs["sites"][f"{short}:{frame.f_lineno}"] += 1
