"""Throughput of bionp.random.Generator vs NumPy's own generators (JSON on stdout).

For float32 and float64 and each size (default 1e5, 4e5, 1e7 draws), in one run:
bionp's ``normal`` and ``random`` (uniforms) into a reused buffer, with the compiled
kernels (``BIONP_NUMBA=1``) and without (``BIONP_NUMBA=0``: NumPy's Philox and ufuncs), next
to ``numpy.random.Generator(PCG64)`` and ``Generator(Philox)`` (``standard_normal`` and
``random`` into a buffer).  Rates are numbers per second, best of ``--repeats`` calls,
the variants interleaved call by call so that a change in machine load hits all alike.

The float32 ``normal()`` target (issue 20: a buffer of 397,510, the 784-500-10 network's
weights), in its own interleaved block: ``array_before`` -- the array code with NumPy's
float32 log/cos/sin loops, the definition before float32 normals became correctly rounded
("today" of the issue, ``BIONP_NUMBA=0``); ``array`` -- the array code now (float64
log/cos/sin rounded once); ``kernel`` -- the compiled float32 kernel
(:mod:`bionp._box_muller`); ``philox_floor`` -- the compiled uniforms into the same buffer
(one uniform per normal: the Philox arithmetic and the write, what any normal costs).

Floors measured in the same run (float32, per number, one thread unless noted):
``write_once``: filling the buffer with a constant (the memory traffic of any draw);
``philox_uniform_kernel``: the compiled kernel's uniforms (the Philox arithmetic);
``box_muller_math``: the kernel's vectorised float32 transform (float64 log, cos, sin) on
cache-resident words, per normal; ``normal_floor`` = Philox + that;
``numpy_transcendentals``: NumPy's float32 log, cos and sin loops, (log + cos + sin) / 2
per normal (what the kernel before this change called).

Usage: python benchmarks/random.py [--sizes 1e5 4e5 1e7] [--dtypes float32 float64]
       [--repeats R] [--threads T] [--clock wall|cpu]
"""

from __future__ import annotations

import os
import sys

# this file is called random.py: keep the standard library's ``random`` importable
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install


def _threads_from_argv(argv):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


_T = _threads_from_argv(sys.argv[1:])
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if _T is not None:
    os.environ["BIONP_NUM_THREADS"] = _T

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp import kernels  # noqa: E402


def _numba(on: bool) -> None:
    os.environ["BIONP_NUMBA"] = "1" if on else "0"


from bionp.random import _normal  # noqa: E402

_ROUNDED = _normal._rounded


CLOCK = [time.perf_counter]


def interleaved_best(fns: dict, repeats: int) -> dict:
    """Best seconds of each callable, calls interleaved round-robin."""
    clock = CLOCK[0]
    for name, (fn, setup) in fns.items():
        setup()
        fn()  # warm-up (and first compilation)
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for name, (fn, setup) in fns.items():
            setup()
            t = clock()
            fn()
            best[name] = min(best[name], clock() - t)
    return best


class array_before:  # noqa: N801  (a switch, used as setup function)
    """The array code's float32 log/cos/sin as NumPy's float32 loops: the definition before
    float32 normals became correctly rounded (issue 20's "today"); ``on()``/``off()``."""

    @staticmethod
    def on():
        from bionp.random import _normal

        _numba(False)
        _normal._rounded = lambda xp, f, a, out: f(a, out=out)

    @staticmethod
    def off():
        from bionp.random import _normal

        _normal._rounded = _ROUNDED


def _setup(numba_on: bool):
    def setup():
        array_before.off()
        _numba(numba_on)
    return setup


def box_muller_math_seconds(m: int = 2048, calls: int = 50):
    """One call of ``calls`` passes of the kernel's float32 transform over ``m`` cache-resident
    pairs (``None`` without the kernel); the per-normal cost is ``t / (2 m calls)``."""
    if not kernels.philox_fill_available(np, "float32", normal=True):
        return None
    from bionp import _box_muller  # noqa: PLC0415

    w = np.random.default_rng(0).integers(0, 2**32, (2, m), dtype=np.uint64).astype(np.uint32)
    zc, zs = np.empty(m, np.float32), np.empty(m, np.float32)
    consts = np.array([1, -2, 2 * np.pi, 1, 0], dtype=np.float32)

    def run():
        for _ in range(calls):
            _box_muller.pairs32(w[0], w[1], zc, zs, m, consts, 0)
    return run


def floors(repeats: int) -> dict:
    """Per-number floors in seconds (float32): the memory write, Philox, the transform."""
    n = 400_000
    out = np.empty(n, np.float32)
    a = np.linspace(0.5, 1.0, 1024, dtype=np.float32)
    o = np.empty_like(a)
    key = (1, 2)
    _numba(True)
    fns = {
        "write_once": (lambda: out.fill(1.0), lambda: None),
        "log": (lambda: [np.log(a, out=o) for _ in range(100)], lambda: None),
        "cos": (lambda: [np.cos(a, out=o) for _ in range(100)], lambda: None),
        "sin": (lambda: [np.sin(a, out=o) for _ in range(100)], lambda: None),
    }
    math = box_muller_math_seconds()
    if math is not None:
        fns["philox_uniform_kernel"] = (lambda: kernels.philox_fill_uniform(key, 0, out, 0),
                                        lambda: None)
        fns["box_muller_math"] = (math, lambda: None)
    t = interleaved_best(fns, repeats)
    per = {k: t[k] / n for k in ("write_once", "philox_uniform_kernel") if k in t}
    per.update({k: t[k] / 102_400 for k in ("log", "cos", "sin")})
    per["numpy_transcendentals_per_normal"] = (per["log"] + per["cos"] + per["sin"]) / 2
    if math is not None:
        per["box_muller_math"] = t["box_muller_math"] / (2 * 2048 * 50)
        per["normal_floor"] = per["box_muller_math"] + per["philox_uniform_kernel"]
    return {k: v * 1e9 for k, v in per.items()}


def normal_target(repeats: int, n: int = 397_510) -> dict:
    """float32 ``normal()`` into a buffer of ``n``: the array code before and now, the kernel,
    and the Philox floor, interleaved (rates in normals per second)."""
    g = bnp.random.Generator(0)
    out = np.empty(n, np.float32)
    fns = {
        "array_before": (lambda: g.normal(size=n, dtype="float32", out=out), array_before.on),
        "array": (lambda: g.normal(size=n, dtype="float32", out=out), _setup(False)),
        "kernel": (lambda: g.normal(size=n, dtype="float32", out=out), _setup(True)),
        "philox_floor": (lambda: g.random(n, dtype="float32", out=out), _setup(True)),
    }
    best = interleaved_best(fns, repeats)
    array_before.off()
    _numba(True)
    rates = {k: float(f"{n / t:.4g}") for k, t in best.items()}
    return {"n": n, "per_s": rates, "ns_per_normal": {k: round(1e9 * t / n, 3)
                                                      for k, t in best.items()},
            "kernel_over_array_before": round(best["array_before"] / best["kernel"], 3),
            "kernel_over_array": round(best["array"] / best["kernel"], 3),
            "kernel_over_philox_floor": round(best["kernel"] / best["philox_floor"], 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e5, 4e5, 1e7],
                    help="numbers per draw")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                    choices=["float32", "float64"], help="dtypes to time, each in turn")
    ap.add_argument("--repeats", type=int, default=10, help="timed calls; the best is reported")
    ap.add_argument("--threads", type=int, default=None,
                    help="bionp's threads for large draws (default: bionp's setting)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall clock, or the process's CPU time (with --threads 1 on a shared "
                         "machine: the work of each generator rather than its share of the CPUs)")
    args = ap.parse_args()
    CLOCK[0] = time.perf_counter if args.clock == "wall" else time.process_time
    bnp.use("numpy")
    threads = bnp.random.get_num_threads()
    g = bnp.random.Generator(0)
    ng = np.random.Generator(np.random.Philox(0))
    pg = np.random.Generator(np.random.PCG64(0))
    rates = {}
    target = normal_target(args.repeats)
    for dt in args.dtypes:
        for size in args.sizes:
            n = int(size)
            out = np.empty(n, dtype=dt)
            on, off = (lambda: _numba(True)), (lambda: _numba(False))
            fns = {
                "bionp_normal_kernels": (lambda: g.normal(size=n, dtype=dt, out=out), on),
                "bionp_normal_no_kernels": (lambda: g.normal(size=n, dtype=dt, out=out), off),
                "bionp_uniform_kernels": (lambda: g.random(n, dtype=dt, out=out), on),
                "bionp_uniform_no_kernels": (lambda: g.random(n, dtype=dt, out=out), off),
                "numpy_pcg64_normal": (lambda: pg.standard_normal(dtype=dt, out=out), on),
                "numpy_philox_normal": (lambda: ng.standard_normal(dtype=dt, out=out), on),
                "numpy_pcg64_uniform": (lambda: pg.random(dtype=dt, out=out), on),
                "numpy_philox_uniform": (lambda: ng.random(dtype=dt, out=out), on),
            }
            reps = max(2, args.repeats if n <= 1_000_000 else args.repeats // 3)
            best = interleaved_best(fns, reps)
            rates[f"{dt}_n{n}"] = {k: float(f"{n / t:.4g}") for k, t in best.items()}
    _numba(True)
    f32 = {k: v for k, v in rates.items() if k.startswith("float32")}
    ratios = {k: {
        "normal_kernels_over_no_kernels": round(r["bionp_normal_kernels"]
                                                / r["bionp_normal_no_kernels"], 3),
        "uniform_kernels_over_no_kernels": round(r["bionp_uniform_kernels"]
                                                 / r["bionp_uniform_no_kernels"], 3),
        "uniform_kernels_over_pcg64": round(r["bionp_uniform_kernels"]
                                            / r["numpy_pcg64_uniform"], 3),
        "normal_kernels_over_numpy_philox": round(r["bionp_normal_kernels"]
                                                  / r["numpy_philox_normal"], 3),
    } for k, r in f32.items()}
    fl = floors(max(3, args.repeats))
    out = {
        "benchmark": "random",
        "unit": "numbers per second (best of repeats, variants interleaved, one process)",
        "clock": args.clock,
        "threads": threads,
        "kernels_available": kernels.philox_fill_available(np, "float32", normal=True),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "loadavg": open("/proc/loadavg").read().split()[:3]
                    if os.path.exists("/proc/loadavg") else None},
        "rates": rates,
        "float32_ratios": ratios,
        "float32_normal_target": target,
        "floors_ns_per_number_float32_one_thread": {k: round(v, 3) for k, v in fl.items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
