"""Seconds per epoch of the Krotov-Hopfield rule (JSON on stdout).

Times, in one run on one machine:

* ``bionp``: one epoch of ``KrotovHopfield.fit`` (60,000 inputs, 2000 hidden units,
  p = 3, k = 7, batch 100, float32, shuffled);
* ``matmul_floor``: just the two matmuls of the dense formulation per batch
  (currents ``x @ Wp.T`` and ``g.T @ x``) over an epoch;
* ``torch_reference`` (if PyTorch imports): the per-batch update as written in the
  PyTorch notebook built on Krotov & Hopfield (2019) (full ``argsort`` over the
  hidden units, dense ``yl`` and ``ds``), run in a separate process with the same
  number of threads.

Inputs are Fashion-MNIST's training images (rows scaled to unit norm) when
``BIONP_DATA`` is set and ``bionp.data`` can load them, otherwise random
non-negative rows of unit norm.

Usage: python benchmarks/hebbian.py [--n 60000] [--hidden 2000] [--threads N] [--no-torch]
"""

import os
import sys

# this folder holds a benchmark named random.py: keep it from shadowing the standard library
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def _parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000, help="inputs per epoch")
    ap.add_argument("--n-in", type=int, default=784, help="input dimension")
    ap.add_argument("--hidden", type=int, default=2000, help="hidden units")
    ap.add_argument("--p", type=float, default=3.0, help="Lebesgue norm exponent p")
    ap.add_argument("--k", type=int, default=7, help="rank of the anti-Hebbian unit")
    ap.add_argument("--delta", type=float, default=0.4, help="anti-Hebbian strength")
    ap.add_argument("--batch", type=int, default=100, help="inputs per update")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="BLAS / PyTorch threads (default: all cores)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="timed epochs of bionp and of the matmul floor; the best is reported")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    return ap.parse_args()


ARGS = _parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402


def torch_reference_epoch(path, args):
    """The PyTorch notebook's per-batch update over one epoch; seconds (and the argsort's)."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = torch.from_numpy(np.load(path))
    n, n_in = data.shape
    n_hidden, batch_size, p, rank, delta = args.hidden, args.batch, args.p, args.k, args.delta
    synapses = torch.randn((n_hidden, n_in), dtype=torch.float)
    eps, precision = 0.02, 1e-30
    argsort_seconds = 0.0
    t0 = time.perf_counter()
    shuffled = data[torch.randperm(n), :]
    for i in range(0, n, batch_size):
        mini_batch = shuffled[i:i + batch_size, :].transpose(0, 1)
        sign = torch.sign(synapses)
        tot_input = torch.mm(sign * torch.abs(synapses).pow(p - 1), mini_batch)
        ta = time.perf_counter()
        y = torch.argsort(tot_input, dim=0)
        argsort_seconds += time.perf_counter() - ta
        yl = torch.zeros((n_hidden, batch_size))
        cols = torch.arange(batch_size)
        yl[y[n_hidden - 1, :], cols] = 1.0
        yl[y[n_hidden - rank, :], cols] = -delta
        xx = torch.sum(torch.mul(yl, tot_input), 1)
        ds = torch.matmul(yl, torch.transpose(mini_batch, 0, 1)) - torch.mul(
            xx.reshape(xx.shape[0], 1).repeat(1, n_in), synapses)
        nc = torch.max(torch.abs(ds))
        if nc < precision:
            nc = precision
        synapses += torch.mul(torch.div(ds, nc), eps)
    seconds = time.perf_counter() - t0
    return {"epoch_seconds": seconds, "argsort_seconds": argsort_seconds,
            "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}


def load_inputs(args):
    """Fashion-MNIST training rows if available, else random non-negative unit-norm rows."""
    if os.environ.get("BIONP_DATA") and args.n_in == 784:
        try:
            import bionp as bnp

            x, _ = bnp.data.load("fashion-mnist", split="train")
            x = bnp.asnumpy(x).astype(np.float32)[: args.n]
            if len(x) == args.n:
                x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
                return x, "fashion-mnist (train, unit-norm rows)"
        except Exception as exc:  # noqa: BLE001  (fall back to random data, say why)
            print(f"note: Fashion-MNIST not used ({exc}); random inputs instead", file=sys.stderr)
    import bionp as bnp

    x = bnp.random.Generator(0).random((args.n, args.n_in), dtype="float32", xp=np)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, "random non-negative unit-norm rows"


def matmul_floor(x, args):
    """The two matmuls of one batch (currents and g.T @ x), over one epoch."""
    import bionp as bnp

    rs = bnp.random.Generator(1)
    Wp = rs.normal(0.0, 1.0, (args.hidden, x.shape[1]), dtype="float32", xp=np)
    cur = np.empty((args.batch, args.hidden), dtype=np.float32)
    g = np.zeros((args.batch, args.hidden), dtype=np.float32)
    g[np.arange(args.batch), rs.integers(0, args.hidden, args.batch, xp=np)] = 1.0
    ds = np.empty_like(Wp)
    t0 = time.perf_counter()
    for s in range(0, len(x) - args.batch + 1, args.batch):
        xb = x[s:s + args.batch]
        np.matmul(xb, Wp.T, out=cur)
        np.matmul(g.T, xb, out=ds)
    return time.perf_counter() - t0


def bionp_epoch(x, args):
    import bionp as bnp
    from bionp.hebbian import KrotovHopfield

    bnp.use("numpy")
    kh = KrotovHopfield(args.hidden, p=args.p, k=args.k, delta=args.delta, lr=0.02,
                        batch_size=args.batch, rng=0, dtype="float32", progress=False)
    kh.fit(x[: 20 * args.batch], epochs=1)  # warm-up
    best = float("inf")
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        kh.fit(x, epochs=1)
        best = min(best, time.perf_counter() - t0)
    return best, kh.history_[-1]


def main():
    args = ARGS
    if args.torch_child:
        print(json.dumps(torch_reference_epoch(args.torch_child, args)))
        return
    x, source = load_inputs(args)
    out = {
        "benchmark": "hebbian.krotov_hopfield",
        "config": {"n": args.n, "n_in": x.shape[1], "hidden": args.hidden, "p": args.p,
                   "k": args.k, "delta": args.delta, "batch": args.batch, "dtype": "float32",
                   "threads": args.threads, "inputs": source},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count()},
    }
    matmul_floor(x[: 20 * args.batch], args)  # warm-up
    floor = min(matmul_floor(x, args) for _ in range(max(1, args.repeats)))
    seconds, record = bionp_epoch(x, args)
    out["bionp_epoch_seconds"] = seconds
    out["matmul_floor_seconds"] = floor
    out["bionp_over_matmul_floor"] = seconds / floor
    out["bionp_epoch_winner_fraction"] = record["winner_fraction"]
    if not args.no_torch:
        try:
            import importlib.util

            have_torch = importlib.util.find_spec("torch") is not None
        except Exception:  # noqa: BLE001
            have_torch = False
        if have_torch:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "inputs.npy")
                np.save(path, x)
                cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", path,
                       "--hidden", str(args.hidden), "--p", str(args.p), "--k", str(args.k),
                       "--delta", str(args.delta), "--batch", str(args.batch),
                       "--threads", str(args.threads), "--n", str(args.n),
                       "--n-in", str(x.shape[1])]
                res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode == 0:
                ref = json.loads(res.stdout.strip().splitlines()[-1])
                out["torch_reference"] = ref
                out["bionp_over_torch_reference"] = seconds / ref["epoch_seconds"]
            else:
                out["torch_reference"] = {"error": res.stderr.strip()[-500:]}
        else:
            out["torch_reference"] = None
    out["targets"] = {"bionp_over_torch_reference": "<= 0.4", "bionp_over_matmul_floor": "<= 1.3"}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
