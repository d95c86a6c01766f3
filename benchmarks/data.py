"""Load times of bionp.data (JSON on stdout): first load (read, verify, write the .npy cache)
and repeat load (memory-mapped cache), both including the conversion to floats.

Repeat loads are timed in the same process (best and median of --repeats) and once in a
new process (the cost a script pays when it is run again: fresh memory pages for x).

Usage: python benchmarks/data.py [--data FOLDER] [--repeats R] [--backend numpy]

The full Fashion-MNIST is looked for in --data, else $BIONP_DATA, else
``../shared/datasets`` relative to the repository; the cache is a fresh
temporary folder (BIONP_CACHE), removed at the end.
"""

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random`` (used by tempfile)
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import bionp as bnp  # noqa: E402
from bionp.backend import synchronize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(fn):
    synchronize()
    t = time.perf_counter()
    out = fn()
    synchronize()
    return time.perf_counter() - t, out


def _fresh_process_load(split, data, dtype, cache):
    """One load timed inside a new Python process (a script run again later)."""
    code = (
        "import time, bionp as bnp; t = time.perf_counter(); "
        f"bnp.data.load('fashion-mnist', {split!r}, root={data!r}, dtype={dtype!r}, "
        f"cache_dir={cache!r}, download=False); print(time.perf_counter() - t)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=str(REPO),
    )
    return round(float(out.stdout.strip().splitlines()[-1]), 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default=None, help="folder holding fashion-mnist/ (default: BIONP_DATA)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="repeat loads timed; the best and median are reported",
    )
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "strict"],
                    help="array backend the data is loaded onto")
    args = ap.parse_args()
    data = args.data or os.environ.get("BIONP_DATA") or str(REPO.parent / "shared" / "datasets")
    if not (Path(data) / "fashion-mnist").is_dir():
        raise SystemExit(
            f"full Fashion-MNIST not found under {data}: pass --data or set BIONP_DATA"
        )
    bnp.use(args.backend)
    result = {
        "benchmark": "data",
        "backend": args.backend,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "runs": {},
    }
    for split in ("train", "test"):
        for dtype in ("float32", "float64"):
            cache = tempfile.mkdtemp(prefix="bionp-bench-cache-")
            try:
                first, (x, y) = timed(
                    lambda: bnp.data.load(
                        "fashion-mnist",
                        split,
                        root=data,
                        dtype=dtype,
                        cache_dir=cache,
                        download=False,
                    )
                )
                shape = tuple(x.shape)
                del x, y
                fresh = _fresh_process_load(split, data, dtype, cache)
                reps = []
                for _ in range(args.repeats):
                    t, (x, y) = timed(
                        lambda: bnp.data.load(
                            "fashion-mnist",
                            split,
                            root=data,
                            dtype=dtype,
                            cache_dir=cache,
                            download=False,
                        )
                    )
                    reps.append(t)
                    del x, y
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            result["runs"][f"fashion-mnist/{split}/{dtype}"] = {
                "shape": shape,
                "first_load_s": round(first, 4),
                "repeat_load_best_s": round(min(reps), 4),
                "repeat_load_median_s": round(float(np.median(reps)), 4),
                "repeat_load_new_process_s": fresh,
            }
    for dtype in ("float32", "float64"):
        t, _ = timed(lambda: bnp.data.load("fashion-mnist-small", "train", dtype=dtype))
        result["runs"][f"fashion-mnist-small/train/{dtype}"] = {"first_load_s": round(t, 4)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
