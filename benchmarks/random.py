"""Throughput of bionp.random.Generator vs NumPy's own generators (JSON on stdout).

Usage: python benchmarks/random.py [--n N] [--repeats R]
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402


def best_rate(fn, n, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="draws per call (default 1e7)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls; the best is reported")
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "strict"],
                    help="backend for bionp's generator (NumPy's are always on the CPU)")
    args = ap.parse_args()
    n, r = args.n, args.repeats
    bnp.use(args.backend)
    xp = bnp.get_xp()
    g = bnp.random.Generator(0)
    ng = np.random.Generator(np.random.Philox(0))
    pg = np.random.default_rng(0)

    with bnp.backend("strict") as strict_xp:
        pass  # the array implementation of Philox (what CuPy runs), timed on the CPU
    rows = {}
    for dt in ("float32", "float64"):
        rows[f"bionp_uniform_{dt}"] = best_rate(lambda: g.uniform(size=n, dtype=dt), n, r)
        rows[f"bionp_normal_{dt}"] = best_rate(lambda: g.normal(size=n, dtype=dt), n, r)
        rows[f"numpy_philox_uniform_{dt}"] = best_rate(lambda: ng.random(n, dtype=dt), n, r)
        rows[f"numpy_pcg64_uniform_{dt}"] = best_rate(lambda: pg.random(n, dtype=dt), n, r)
        rows[f"numpy_pcg64_normal_{dt}"] = best_rate(lambda: pg.standard_normal(n, dtype=dt), n, r)
    rows["bionp_integers_0_1000"] = best_rate(lambda: g.integers(0, 1000, size=n), n, r)
    rows["bionp_permutation_1e6"] = best_rate(lambda: g.permutation(1_000_000), 1_000_000, r)
    rows["bionp_raw_array_path_uint64"] = best_rate(
        lambda: g.random_raw(1_000_000, xp=strict_xp), 1_000_000, 2)
    out = {
        "benchmark": "random",
        "unit": "draws per second (best of repeats, one process)",
        "n_per_call": n,
        "backend": args.backend,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "rates": {k: round(v) for k, v in rows.items()},
        "target": {"bionp_uniform_float32": 1e8},
        "meets_target": rows["bionp_uniform_float32"] >= 1e8,
        "xp": xp.__name__,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
