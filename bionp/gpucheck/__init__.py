"""One prepared device check: ``python -m bionp gpu-check`` (``make gpu-check``).

Written for a GPU machine lent for a few minutes: one command, nothing to install
(``PYTHONPATH=. python3 -m bionp gpu-check`` from the source tree), under 8 minutes,
one JSON report (default ``results/gpu-check.json``) and a short table on stdout.
Three phases, each under its own time budget and ``try``/``except``, so that a
failing or slow phase still leaves the others' results in the report (the report is
rewritten after every phase):

``parity``
    every registered parity scenario (:mod:`bionp.parity`), float32 and float64, the
    backend under test against NumPy: :math:`\\max_i|a_i-b_i| / \\max_i|a_i|` per
    result array against the scenario's tolerance.
``timings``
    seconds per epoch of the same run on NumPy (this machine's CPU) and on the backend
    under test, and their ratio :math:`t_\\mathrm{cpu} / t_\\mathrm{device}`: backprop
    (784-500-10 sigmoid MLP, MSE, SGD) at batch 200 (target 10x) and 2000 (target 50x),
    a Krotov-Hopfield epoch (2000 hidden units, target 20x), a dendritic epoch
    (``DendriticLayer(784, 10, 32, 23)`` + ``Dense(10, 10)``, cross-entropy, batch 128)
    and a weight-perturbation epoch (the backprop MLP, batch 200).  Data: the full
    Fashion-MNIST training set if ``BIONP_DATA`` holds it, else the bundled subset
    tiled to 60,000 rows.  An epoch that would not fit the time left is timed on a
    prefix of the data and scaled (``extrapolated_from`` says how many samples ran).
``tests``
    pytest on the test cases parametrised for the backend under test (``-k "(cupy or
    gpu) and not test_gpucheck"``), in a subprocess with a timeout; each test's outcome
    is logged as it finishes (:mod:`bionp.gpucheck.pytest_log`), so a run stopped at
    its budget still reports what ran.

The report (``schema`` ``bionp.gpu-check/1``): ``machine`` (versions, GPU name, CPU
cores), ``budgets_s``, ``passed``, ``seconds`` and ``phases.<name>`` with ``status``
(``passed``, ``failed``, ``timeout``, ``error`` + ``error``/``traceback``),
``seconds``, ``budget_s`` and: for ``parity`` the :func:`bionp.parity.run_checks` rows,
``errors``, ``skipped`` and a ``summary`` (worst relative difference per dtype); for
``timings`` one result per workload (``cpu``/``device``: ``seconds_per_epoch``,
``ms_per_step``, ``extrapolated_from``; ``speedup``, ``target_speedup``,
``meets_target``); for ``tests`` ``counts``, ``failed`` test ids and the output's tail.
The exit status is 0 when every phase passed (a missed speed target is reported, not
failed), 1 otherwise, 2 for bad options.

Without CuPy or a visible GPU the check prints one line saying what it skipped and
exits 0.  ``--backend-under-test strict --quick`` runs every phase on the strict CPU
stand-in with small sizes: how the test-suite checks this module without a GPU.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bionp.gpucheck import pytest_log
from bionp.gpucheck.guard import PhaseTimeout, time_limit
from bionp.gpucheck.timings import TARGETS, WORKLOADS, phase_timings

__all__ = ["DEFAULT_BUDGETS", "PHASES", "TARGETS", "WORKLOADS", "PhaseTimeout", "add_arguments",
           "format_report", "main", "run_from_args", "run_phase", "time_limit"]

PHASES = ("parity", "timings", "tests")
#: Seconds per phase; with start-up they stay under 8 minutes in all.
DEFAULT_BUDGETS = {"parity": 90.0, "timings": 200.0, "tests": 150.0}
SCHEMA = "bionp.gpu-check/1"
#: pytest's -k for the tests phase: the CuPy-parametrised cases and the GPU tests, not this
#: check's own tests (whose module name matches "gpu").
PYTEST_K = "(cupy or gpu) and not test_gpucheck"


# ----------------------------------------------------------------------------------
# the machine
# ----------------------------------------------------------------------------------

def _machine(backend_under_test: str) -> dict:
    import numpy as np

    from bionp import __version__
    from bionp.backend import backend, device_info

    info = {"bionp": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "backend_under_test": backend_under_test}
    try:
        with backend(backend_under_test):
            info.update({k: v for k, v in device_info().items() if k in ("cupy", "gpu")})
    except Exception as exc:  # informational only
        info["device_error"] = f"{type(exc).__name__}: {exc}"
    return info


# ----------------------------------------------------------------------------------
# the phases: each fills its report entry as it goes
# ----------------------------------------------------------------------------------

def _phase_parity(opts, entry, deadline):
    from bionp import parity

    parity.discover()
    names = sorted(parity.registered_checks())
    if opts.parity_only:
        names = [n for n in names if any(n == p or n.startswith(p + ".") for p in opts.parity_only)]
    entry.update(rows=[], errors={}, skipped=[], checks=names)
    for i, name in enumerate(names):
        if time.monotonic() > deadline:
            entry["skipped"] = names[i:]
            break
        try:
            entry["rows"].extend(parity.run_checks(names=[name], backends=[opts.backend_under_test],
                                                   dtypes=("float32", "float64")))
        except PhaseTimeout:
            entry["skipped"] = names[i:]
            raise
        except Exception as exc:
            entry["errors"][name] = f"{type(exc).__name__}: {exc}"
    rows = entry["rows"]
    worst = {}
    for r in rows:
        worst[r["dtype"]] = max(worst.get(r["dtype"], 0.0), r["max_rel_diff"])
    entry["summary"] = {"rows": len(rows), "failed": sum(not r["passed"] for r in rows),
                        "errors": len(entry["errors"]), "skipped": len(entry["skipped"]),
                        "worst_rel_diff": worst}
    return not entry["summary"]["failed"] and not entry["errors"] and not entry["skipped"]


def _phase_tests(opts, entry, deadline):
    root = Path(__file__).resolve().parents[2]
    tests = root / "tests"
    if not tests.is_dir():
        entry["note"] = f"no tests folder next to the package ({tests}): run from a source tree"
        return True
    expr = opts.pytest_k or (PYTEST_K if opts.backend_under_test == "cupy"
                             else f"{opts.backend_under_test} and not test_gpucheck")
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "tests.jsonl")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "bionp.gpucheck.pytest_log", "-k", expr, "--continue-on-collection-errors",
               str(tests)]
        env = dict(os.environ, **{pytest_log.ENV: log})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        env.setdefault("MPLBACKEND", "Agg")
        entry["command"] = ["python", "-m", "pytest", "-q", "-k", expr, "tests"]
        timeout = max(deadline - time.monotonic() - 2.0, 1.0)
        proc = subprocess.Popen(cmd, cwd=str(root), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            entry["output_tail"] = out[-4000:]
            entry["counts"], entry["failed"] = pytest_log.read_log(log)  # those that finished
            raise PhaseTimeout(f"pytest ran past its budget of {timeout:.0f} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        entry["returncode"] = proc.returncode
        entry["output_tail"] = out[-4000:]
        entry["counts"], entry["failed"] = pytest_log.read_log(log)
    return proc.returncode in (0, 5) and not entry["failed"]  # 5: no test selected


_PHASE_FUNCS = {"parity": _phase_parity, "timings": phase_timings, "tests": _phase_tests}


# ----------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------

def _write(report: dict, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh, indent=2, default=str)
    os.replace(tmp, path)


def run_phase(name: str, func, opts, report: dict, budget: float, path: str | None = None) -> dict:
    """Run ``func(opts, entry, deadline)`` under ``budget`` seconds; whatever happens, the
    phase's entry in ``report["phases"]`` gets a ``status`` (``passed``, ``failed``,
    ``timeout`` or ``error``) and ``seconds``, and the report is written to ``path``.

    Parameters
    ----------
    name : str
        The phase's name, its key in ``report["phases"]``.
    func : callable
        ``func(opts, entry, deadline) -> bool``: ``entry`` is the phase's dict to fill,
        ``deadline`` a :func:`time.monotonic` time; True when the phase passed.
    opts : argparse.Namespace
        The parsed options.
    report : dict
        The report being built.
    budget : float
        Seconds the phase may run.
    path : str, optional
        JSON file the report is written to afterwards; not written when ``None``.
    """
    entry = {"status": "running", "budget_s": budget}
    report["phases"][name] = entry
    t0 = time.perf_counter()
    try:
        with time_limit(budget, f"the {name} phase"):
            ok = func(opts, entry, time.monotonic() + budget)
        entry["status"] = "passed" if ok else "failed"
    except PhaseTimeout as exc:
        entry["status"], entry["error"] = "timeout", str(exc)
    except Exception as exc:
        entry["status"], entry["error"] = "error", f"{type(exc).__name__}: {exc}"
        entry["traceback"] = traceback.format_exc(limit=8)
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    if path:
        _write(report, path)
    return entry


def _summary(name: str, e: dict) -> str:
    if "error" in e:
        return e["error"].splitlines()[0][:90]
    if name == "parity":
        s = e.get("summary", {})
        worst = ", ".join(f"{k} {v:.1e}" for k, v in sorted(s.get("worst_rel_diff", {}).items()))
        n = s.get("rows", 0)
        return (f"{n - s.get('failed', 0)}/{n} arrays within tolerance; "
                f"{s.get('errors', 0)} errors, {s.get('skipped', 0)} skipped; worst {worst}")
    if name == "timings":
        return f"data: {e.get('data', '?')}"
    c = e.get("counts") or {}
    return e.get("note") or (f"{c.get('passed', 0)} passed, {c.get('skipped', 0)} skipped, "
                             f"{c.get('failed', 0) + c.get('errors', 0)} failed")


def format_report(report: dict) -> str:
    """The short table printed at the end.

    Parameters
    ----------
    report : dict
        A finished report, as written to the JSON file.
    """
    m = report["machine"]
    lines = [f"bionp gpu-check: {m.get('backend_under_test')} on {m.get('gpu', 'no GPU named')} "
             f"vs NumPy on {m.get('cpu_count')} CPU cores; report {report['report_path']}"]
    for name, e in report["phases"].items():
        lines.append(f"  {name:8s} {e['status']:8s} {e.get('seconds', 0):7.1f} s  "
                     f"{_summary(name, e)}")
    for r in report["phases"].get("timings", {}).get("results", []):
        cpu, dev = r.get("cpu", {}), r.get("device", {})

        def cell(d):
            return f"{d['seconds_per_epoch']:9.3f}" if "seconds_per_epoch" in d else "    error"

        sp = f"{r['speedup']:7.1f}x" if r.get("speedup") else "      - "
        verdict = {True: "met", False: "MISSED", None: "(GPU only)"}[r["meets_target"]]
        tgt = ("" if r["target_speedup"] is None
               else f"  target {r['target_speedup']:.0f}x {verdict}")
        lines.append(f"    {r['name']:20s} cpu {cell(cpu)} s  device {cell(dev)} s  {sp}{tgt}")
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines.append(f"overall: {verdict} in {report['seconds']:.0f} s")
    return "\n".join(lines)


def add_arguments(p) -> None:
    """The ``gpu-check`` sub-command's options (on an :mod:`argparse` parser).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser (or sub-parser) to add them to.
    """
    p.add_argument("--out", default=os.path.join("results", "gpu-check.json"),
                   help="JSON report path (default: results/gpu-check.json)")
    p.add_argument("--backend-under-test", choices=("cupy", "strict"), default="cupy",
                   help="backend compared with NumPy (default cupy; strict: a CPU dry run)")
    p.add_argument("--quick", action="store_true",
                   help="small timing sizes (4000 samples, 100 Krotov-Hopfield units)")
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                   help="phases to run (default: all)")
    p.add_argument("--budget", nargs="+", default=[], metavar="PHASE=SECONDS",
                   help=f"time budgets (default {DEFAULT_BUDGETS})")
    p.add_argument("--parity-only", nargs="+", default=None, metavar="NAME",
                   help="only these parity scenarios (or prefixes)")
    p.add_argument("--pytest-k", default=None,
                   help=f"pytest -k expression (default: {PYTEST_K!r}, or the backend's name)")


def _budgets(items) -> dict:
    budgets = dict(DEFAULT_BUDGETS)
    for item in items:
        name, sep, value = item.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not sep or name not in PHASES or not seconds > 0:
            raise ValueError(f"--budget expects PHASE=SECONDS with PHASE one of {PHASES} and "
                             f"SECONDS > 0, got {item!r}")
        budgets[name] = seconds
    return budgets


def run_from_args(opts) -> int:
    """Run the check for parsed options; the exit status (0: passed or skipped).

    Parameters
    ----------
    opts : argparse.Namespace
        Options parsed by a parser set up with :func:`add_arguments`.
    """
    from bionp.backend import BackendUnavailableError, backend

    try:
        budgets = _budgets(opts.budget)
    except ValueError as exc:
        print(f"bionp gpu-check: {exc}", file=sys.stderr)
        return 2
    try:
        with backend(opts.backend_under_test):
            pass
    except BackendUnavailableError as exc:
        why = " ".join(str(exc).split(";")[0].split())
        print(f"bionp gpu-check: skipped everything (CuPy tests, parity table, timings): {why}")
        return 0
    t0 = time.perf_counter()
    report = {"schema": SCHEMA, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "reference": "numpy", "backend_under_test": opts.backend_under_test,
              "quick": bool(opts.quick), "report_path": opts.out,
              "machine": _machine(opts.backend_under_test), "budgets_s": budgets, "phases": {},
              "passed": False, "seconds": 0.0}
    for name in PHASES:
        if name in opts.phases:
            run_phase(name, _PHASE_FUNCS[name], opts, report, budgets[name], opts.out)
            print(f"[{name}] {report['phases'][name]['status']}", flush=True)
    report["passed"] = all(e["status"] == "passed" for e in report["phases"].values())
    report["seconds"] = round(time.perf_counter() - t0, 3)
    _write(report, opts.out)
    print(format_report(report))
    return 0 if report["passed"] else 1


def main(argv=None) -> int:
    """The check as a function of command-line arguments (``python -m bionp gpu-check``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the sub-command; ``sys.argv[1:]`` when ``None``.
    """
    import argparse

    p = argparse.ArgumentParser(prog="bionp gpu-check", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))
