"""The compiled float32 exponential and sigmoid against NumPy on every float32 input (JSON).

``bionp._exp32`` reproduces NumPy's own float32 ``exp`` (its vector kernel on x86-64 with
AVX2 and FMA3 or AVX-512F) so that the one-pass sigmoid gives the array code's bits.  The
tests compare a probe of inputs; this script compares all 2**32 bit patterns: ``numpy.exp``
against the kernel (NaN for NaN), and the array code's sigmoid (negate, ``numpy.exp``, add
one, reciprocal) against the fused kernel, bit for bit (NaN's bits too), and times both on
a (200, 500) array.  It takes a few minutes (``--step`` compares every n-th pattern only).

Usage: python benchmarks/exp32_check.py [--step 1] [--chunk-log2 24]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def _array_sigmoid(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)


def compare_all(exp32_array, sigmoid32, step=1, chunk=1 << 24):
    """Counts of the inputs (every ``step``-th float32 bit pattern) whose exponential or
    sigmoid differs from the array code's."""
    exp_differ = sigmoid_differ = n = 0
    want, got = np.empty(chunk, np.float32), np.empty(chunk, np.float32)
    for start in range(0, 2**32, chunk * step):
        bits = np.arange(start, min(start + chunk * step, 2**32), step, dtype=np.uint64)
        x = bits.astype(np.uint32).view(np.float32)
        m = x.size
        with np.errstate(all="ignore"):
            np.exp(x, out=want[:m])
            exp32_array(x, got[:m])
            nan = np.isnan(want[:m]) & np.isnan(got[:m])
            exp_differ += int(np.count_nonzero((want[:m].view(np.uint32)
                                                != got[:m].view(np.uint32)) & ~nan))
            _array_sigmoid(x, want[:m])
        sigmoid32(x, got[:m])
        sigmoid_differ += int(np.count_nonzero(want[:m].view(np.uint32)
                                               != got[:m].view(np.uint32)))
        n += m
    return {"inputs": n, "exp_differ": exp_differ, "sigmoid_differ": sigmoid_differ}


def time_sigmoid(sigmoid32, repeats=200):
    """Microseconds per (200, 500) sigmoid: the array code's four passes and the kernel."""
    g = np.random.default_rng(0)
    z = (g.standard_normal(200 * 500) * 3).astype(np.float32)
    out = np.empty_like(z)
    res = {}
    for name, fn in (("array_code", lambda: _array_sigmoid(z, out)),
                     ("kernel", lambda: sigmoid32(z, out))):
        fn()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            best = min(best, (time.perf_counter() - t0) / repeats)
        res[name] = round(best * 1e6, 1)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", type=int, default=1,
                    help="compare every n-th float32 bit pattern (1: all 2**32)")
    ap.add_argument("--chunk-log2", type=int, default=24,
                    help="inputs per chunk, as a power of two (memory: 16 bytes each)")
    args = ap.parse_args(argv)
    if args.step < 1 or not 10 <= args.chunk_log2 <= 28:
        ap.error("--step must be >= 1 and --chunk-log2 in 10 ... 28")
    try:
        from bionp import _exp32
    except ImportError as exc:  # Numba missing: nothing compiled to compare
        print(json.dumps({"benchmark": "exp32_check", "error": str(exc)}))
        return 1
    t0 = time.perf_counter()
    res = compare_all(_exp32.exp32_array, _exp32.sigmoid32, args.step, 1 << args.chunk_log2)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["self_check_passes"] = _exp32.matches_numpy(_exp32.exp32_array)
    res["sigmoid_200x500_us"] = time_sigmoid(_exp32.sigmoid32)
    print(json.dumps({"benchmark": "exp32_check", "numpy": np.__version__, "step": args.step,
                      **res}, indent=2))
    return 0 if res["exp_differ"] == res["sigmoid_differ"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
