"""Command line: ``python -m bionp …`` or ``bionp …``.

Sub-commands
------------
``info``
    bionp's version, the backends usable here, versions of the array libraries.
``parity``
    Run every registered rule/layer on NumPy and on CuPy (or the strict CPU
    stand-in when no GPU is visible) from the same seed and compare.
``gpu-check``
    The prepared device check (:mod:`bionp.gpucheck`): CuPy tests, the parity table
    and CPU/GPU epoch timings in one JSON report; one line and exit 0 without a GPU.
``sweep FILE.toml|FILE.json``
    Run the parameter sweep a sweep file describes (see ``bionp.sweep.sweepfile``),
    resuming from its result store; ``--metric NAME`` prints mean ± std per config
    and the best one.
"""

from __future__ import annotations

import argparse
import json
import platform
import importlib
import sys


def _backend_module():
    # ``bionp.backend`` the attribute is the scoped-switch function; the module is this:
    return importlib.import_module("bionp.backend")


def _cmd_info(args) -> int:
    import numpy as np

    from bionp import __version__

    backend = _backend_module()

    info = {
        "bionp": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "backends": list(backend.available_backends()),
        "default_backend": backend.backend_name(),
        "default_dtype": backend.get_dtype().name,
    }
    if backend.cupy_available():
        with backend.backend("cupy"):
            info.update({k: v for k, v in backend.device_info().items() if k in ("cupy", "gpu")})
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:16s} {v}")
    return 0


def _cmd_parity(args) -> int:
    from bionp import parity

    backend = _backend_module()

    if args.list:
        parity.discover()
        for name, check in parity.registered_checks().items():
            print(f"{name:40s} {check.description}")
        return 0
    backends = args.backends.split(",") if args.backends else None
    gpu = backend.cupy_available()
    try:
        rows = parity.run_checks(names=args.only, backends=backends, dtypes=args.dtype)
    except (ValueError, backend.BackendError) as exc:
        print(f"bionp parity: {exc}", file=sys.stderr)
        return 2
    ok = all(r["passed"] for r in rows)
    compared = sorted({r["backend"] for r in rows})
    note = (
        "GPU tested: CuPy compared with NumPy."
        if "cupy" in compared
        else "No GPU was tested: CuPy is not available here, so NumPy was compared with the "
        "strict CPU stand-in (it catches host/device mixing, not GPU arithmetic differences)."
    )
    if args.json:
        print(json.dumps({"gpu_available": gpu, "compared": compared, "note": note,
                          "passed": ok, "summary": parity.summarize(rows), "rows": rows},
                         indent=2))
    else:
        if not args.summary:
            print(parity.format_table(rows))
            print()
        print(parity.format_summary(rows))
        print()
        print(note)
        n_fail = sum(not r["passed"] for r in rows)
        print(f"{len(rows) - n_fail} passed, {n_fail} failed")
    return 0 if ok else 1


def _cmd_gpu_check(args) -> int:
    from bionp import gpucheck

    return gpucheck.run_from_args(args)


def _cmd_sweep(args) -> int:
    from bionp import sweep

    try:
        kwargs = sweep.load_sweep_file(args.file)
        for key in ("scheduler", "store", "repeats"):
            if getattr(args, key) is not None:
                kwargs[key] = getattr(args, key)
        if args.workers is not None:
            kwargs["n_workers"] = args.workers
        if args.quiet:
            kwargs.update(progress=False, verbose=False)
        records = sweep.run(**kwargs)
    except KeyboardInterrupt:
        print(f"\nbionp sweep: interrupted; the finished tasks are in {kwargs['store']}: run the "
              "same command again to resume", file=sys.stderr)
        return 130
    except (FileNotFoundError, sweep.SweepConfigError, sweep.SweepError, sweep.StoreError) as exc:
        print(f"bionp sweep: {exc}", file=sys.stderr)
        return 2
    n_err = sum(r["status"] != "ok" for r in records)
    print(f"{len(records)} tasks: {len(records) - n_err} ok, {n_err} errors; "
          f"results in {kwargs['store']}")
    if args.metric:
        ok = [r for r in records if r["status"] == "ok"]
        if ok:
            try:
                rows = sweep.summarize(ok, args.metric)
                top = sweep.best(ok, args.metric, mode=args.mode)
            except (KeyError, ValueError) as exc:
                print(f"bionp sweep: {exc}", file=sys.stderr)
                return 2
            print(sweep.format_summary(rows))
            from bionp.experiment import readable

            print("best:", json.dumps(readable(top)))
    return 0 if n_err == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bionp", description="bionp: biologically plausible learning rules on NumPy/CuPy."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="versions and the backends usable on this machine")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "parity",
        help="compare every registered rule/layer on NumPy and CuPy (or the strict stand-in)",
        description="Run each registered check from the same seed on the reference backend "
        "(NumPy) and on the compared backend(s), and report the largest relative difference "
        "per result array against the check's tolerance. Exit status 1 if any check fails.",
    )
    p.add_argument("--backends", default=None,
                   help="comma-separated backends to compare with NumPy "
                        "(default: cupy if a GPU is visible, else strict)")
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"],
                   choices=["float32", "float64"], help="dtypes to run (default: both)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="run only these checks: an exact name, or a prefix ('rules' selects "
                        "the group, 'rules.kolen' selects rules.kolen_pollack)")
    p.add_argument("--summary", action="store_true",
                   help="print one line per group instead of one row per result array")
    p.add_argument("--list", action="store_true", help="list the registered checks and exit")
    p.add_argument("--json", action="store_true", help="print JSON (for machines) instead of a table")
    p.set_defaults(func=_cmd_parity)

    from bionp import gpucheck

    p = sub.add_parser(
        "gpu-check",
        help="the prepared device check: CuPy tests, parity table, CPU/GPU timings (JSON report)",
        description="On a GPU machine, in under 8 minutes: the CuPy test cases, every parity "
        "scenario in float32 and float64, and epoch timings against NumPy on this machine's "
        "CPU, each phase under its own time budget; writes one JSON report and prints a table. "
        "Without CuPy or a GPU it prints one line and exits 0.",
    )
    gpucheck.add_arguments(p)
    p.set_defaults(func=_cmd_gpu_check)

    p = sub.add_parser(
        "sweep",
        help="run a parameter sweep described by a TOML/JSON sweep file (resumable)",
        description="Run every config x repeat of a sweep file on a local Dask cluster (default), "
        "an existing one (--scheduler tcp://HOST:PORT) or serially, appending one record per "
        "finished task to the result store; a rerun skips what is done. Exit status 1 if a "
        "task failed, 2 for a bad sweep file.",
    )
    p.add_argument("file", help="sweep file (.toml or .json)")
    p.add_argument("--scheduler", default=None,
                   help="'local', 'serial', 'tcp://HOST:PORT' or a scheduler-file .json "
                        "(overrides the file)")
    p.add_argument("--workers", type=int, default=None, help="worker processes of a local cluster")
    p.add_argument("--store", default=None, help="result store path (overrides the file)")
    p.add_argument("--repeats", type=int, default=None, help="runs per config (overrides the file)")
    p.add_argument("--metric", default=None,
                   help="print mean ± std of this metric and the best config")
    p.add_argument("--mode", choices=("max", "min"), default="max", help="best = highest or lowest")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(func=_cmd_sweep)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
