"""A pytest plugin for the device check's ``tests`` phase (:mod:`bionp.gpucheck`).

Loaded with ``-p bionp.gpucheck.pytest_log``; writes one JSON line per test outcome
(``{"nodeid", "when", "outcome"}``) to the file named by ``BIONP_GPUCHECK_LOG`` as each
test finishes, so a run stopped at its time budget still says which tests passed or
failed.  Imports nothing but the standard library (``pytest`` calls the hook by name).
"""

from __future__ import annotations

import json
import os

__all__ = ["pytest_runtest_logreport", "read_log"]

ENV = "BIONP_GPUCHECK_LOG"


def pytest_runtest_logreport(report) -> None:
    """pytest hook: record the call's outcome, a setup that did not pass (skip, error)
    and a teardown that failed.

    Parameters
    ----------
    report : pytest.TestReport
        One phase (setup, call, teardown) of a test; appended as a JSON line to the file
        named by ``BIONP_GPUCHECK_LOG``, if set.
    """
    path = os.environ.get(ENV)
    keep = (report.when == "call" or (report.when == "setup" and report.outcome != "passed")
            or (report.when == "teardown" and report.outcome == "failed"))
    if path and keep:
        with open(path, "a") as fh:
            fh.write(json.dumps({"nodeid": report.nodeid, "when": report.when,
                                 "outcome": report.outcome}) + "\n")


def read_log(path: str) -> tuple[dict, list[str]]:
    """``({"tests", "passed", "failed", "errors", "skipped"}, [ids of failed/errored tests])``
    from a log written by this plugin (zeros if there is none).

    Parameters
    ----------
    path : str
        The JSON-lines log file.
    """
    counts = dict.fromkeys(("passed", "failed", "errors", "skipped"), 0)
    failed: list[str] = []
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                try:
                    r = json.loads(line)
                except ValueError:  # a line cut short by a kill
                    continue
                if r["outcome"] == "skipped":
                    counts["skipped"] += 1
                elif r["outcome"] == "passed":
                    counts["passed"] += 1
                else:
                    counts["failed" if r["when"] == "call" else "errors"] += 1
                    failed.append(r["nodeid"] if r["when"] == "call" else f"{r['nodeid']} ({r['when']})")
    counts["tests"] = counts["passed"] + counts["failed"] + counts["skipped"] + sum(
        1 for f in failed if f.endswith("(setup)"))
    return counts, failed
