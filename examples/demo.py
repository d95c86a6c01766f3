"""bionp's main demo (``make demo``).

Trains small networks with several learning rules on the bundled Fashion-MNIST
subset when the supervised rules are available; until then it exercises the
foundation: the same seed drawn on every CPU backend, compared, and plotted.

Writes ``OUT/results.json`` and ``OUT/demo.png``; prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import bionp as bnp


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--n", type=int, default=200_000, help="draws per distribution")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows, draws = [], {}
    for name in bnp.available_backends():
        with bnp.backend(name):
            g = bnp.random.Generator(args.seed)
            t = time.perf_counter()
            z = g.normal(size=args.n)
            u = g.uniform(size=args.n)
            z_h, u_h = bnp.asnumpy(z), bnp.asnumpy(u)
            draws[name] = (z_h, u_h)
            rows.append({"backend": name, "seconds": time.perf_counter() - t,
                         "normal_mean": float(z_h.mean()), "normal_std": float(z_h.std()),
                         "same_as_numpy": bool(np.array_equal(z_h, draws["numpy"][0]))})
    print(f"{'backend':8s} {'seconds':>8s} {'mean':>9s} {'std':>7s}  same bits as numpy")
    for r in rows:
        print(f"{r['backend']:8s} {r['seconds']:8.3f} {r['normal_mean']:9.5f} {r['normal_std']:7.4f}  {r['same_as_numpy']}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].hist(draws["numpy"][0], bins=100, density=True)
    ax[0].set_title("bionp.random normal")
    ax[1].hist(draws["numpy"][1], bins=50, density=True)
    ax[1].set_title("bionp.random uniform")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "demo.png"), dpi=100)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"config": vars(args), "backend": "numpy", "dtype": bnp.get_dtype().name,
                   "versions": {"bionp": bnp.__version__, "numpy": np.__version__},
                   "runs": {r["backend"]: r for r in rows}}, f, indent=2)
    print(f"wrote {args.out}/results.json and {args.out}/demo.png")


if __name__ == "__main__":
    main()
