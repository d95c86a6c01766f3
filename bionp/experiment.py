"""What every example script shares: one command-line style, data loading, results files.

Every example accepts::

    --backend {numpy,cupy,strict} --dtype {float32,float64} --seed N --epochs N
    --data NAME --subset N --out DIR --quiet

and writes ``DIR/results.json``::

    {"config": {...}, "backend": "numpy", "dtype": "float32", "versions": {...},
     "runs": {"<run name>": {"test_accuracy": [...], "epoch_seconds": [...], ...}}}

plus its PNG figures.  Floats in ``results.json`` are written with 12 significant
digits (:func:`readable`): an accuracy of 791/1000 images reads ``79.1``, not
``79.10000000000001``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from typing import Any, Mapping, Sequence

import numpy as np

from bionp.backend import BACKENDS, get_dtype, set_dtype, use

__all__ = ["example_parser", "setup", "load_data", "versions", "write_results", "format_table",
           "readable"]

DATASETS = ("fashion-mnist-small", "fashion-mnist", "mnist", "cifar10")


def example_parser(description: str, *, epochs: int = 3, data: str = "fashion-mnist-small",
                   subset: int | None = None, seed: int = 0, out: str = "results/example") -> argparse.ArgumentParser:
    """An ``argparse`` parser with the options every example shares.

    Parameters
    ----------
    description : str
        The ``--help`` text's first line.
    epochs, data, subset, seed, out
        The example's defaults of ``--epochs``, ``--data``, ``--subset``, ``--seed``, ``--out``.
    """
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = ap.add_argument_group("common options")
    g.add_argument("--backend", choices=BACKENDS, default="numpy",
                   help="array backend: numpy (CPU), cupy (GPU) or strict (CPU stand-in for a GPU)")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point precision of weights and data")
    g.add_argument("--seed", type=int, default=seed, help="random seed (data order, initialisation, noise)")
    g.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    g.add_argument("--data", choices=DATASETS, default=data,
                   help="dataset (fashion-mnist-small is bundled and works offline; the others are "
                        "found via --data-root/$BIONP_DATA/the cache, or downloaded)")
    g.add_argument("--data-root", default=None, help="folder holding the dataset files (default: $BIONP_DATA)")
    g.add_argument("--subset", type=int, default=subset,
                   help="use a class-balanced subset of this many training images (default: all)")
    g.add_argument("--out", default=out, help="output folder for results.json and figures")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def setup(args) -> None:
    """Select backend and dtype from parsed arguments; validate the common ones.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`example_parser`.
    """
    if args.epochs < 0:
        raise SystemExit(f"--epochs must be >= 0, got {args.epochs}")
    if args.subset is not None and args.subset < 1:
        raise SystemExit(f"--subset must be >= 1, got {args.subset}")
    if args.seed < 0:
        raise SystemExit(f"--seed must be >= 0, got {args.seed}")
    use(args.backend)
    set_dtype(args.dtype)
    os.makedirs(args.out, exist_ok=True)
    if args.quiet:
        os.environ["BIONP_PROGRESS"] = "0"


def load_data(args, *, test_size: int | None = None, rng=None):
    """``(x_train, y_train, x_test, y_test)`` on the active backend, per ``--data``/``--subset``.

    ``test_size`` draws that many test images at random with ``rng`` (the
    Microlearning tutorial evaluates on 1000 random test images).

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`example_parser` (``--data``, ``--data-root``, ``--subset``, ``--seed``).
    test_size : int or None
    rng : int, Generator or None
        Draws the test images (default: ``--seed``; the subset is drawn with ``--seed``).
    """
    from bionp import data
    from bionp.random import check_rng

    x_tr, y_tr = data.load(args.data, split="train", root=args.data_root)
    x_te, y_te = data.load(args.data, split="test", root=args.data_root)
    if args.subset is not None and args.subset < x_tr.shape[0]:
        x_tr, y_tr = data.stratified_subset(x_tr, y_tr, args.subset, rng=args.seed)
    if test_size is not None and test_size < x_te.shape[0]:
        idx = check_rng(rng if rng is not None else args.seed).choice(x_te.shape[0], size=test_size, replace=False)
        x_te, y_te = x_te[idx], y_te[idx]
    return x_tr, y_tr, x_te, y_te


def versions() -> dict:
    """Versions of bionp and the libraries the numbers depend on."""
    import importlib

    from bionp import __version__

    out = {"bionp": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("scipy", "cupy", "torch"):
        mod = importlib.import_module(name) if _imported(name) else None
        if mod is not None:
            out[name] = mod.__version__
    return out


def _imported(name: str) -> bool:
    import sys

    return name in sys.modules


def write_results(out_dir: str, config: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]],
                  **extra) -> str:
    """Write ``out_dir/results.json`` atomically (schema in the module docstring).

    Parameters
    ----------
    out_dir : str
    config : dict
        The example's configuration (its parsed options).
    runs : dict of str -> dict
        Per model or rule: ``test_accuracy`` (per epoch, %), ``epoch_seconds``, ...
    **extra
        More top-level keys.
    """
    from bionp.backend import backend_name

    doc = {
        "config": dict(config),
        "backend": backend_name(),
        "dtype": get_dtype().name,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": {k: dict(v) for k, v in runs.items()},
    }
    doc.update(extra)
    doc = readable(doc)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "results.json")
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2, default=_jsonable)
    os.replace(tmp, path)
    return path


def readable(obj, digits: int = 12):
    """``obj`` with every float rounded to ``digits`` significant digits, recursively
    (dicts, lists, tuples, NumPy scalars and arrays), for files and lines people read.

    Rounding to 12 digits changes a float64 by at most 5e-13 relative and removes the
    binary tail of decimal values (``100 * 0.791 = 79.10000000000001`` reads ``79.1``);
    float32 values keep every digit they have.  NaN and infinities stay as they are.

    Parameters
    ----------
    obj : object
    digits : int, default 12
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, (np.float32, np.float16)):
        v = float(str(obj))  # the shortest decimal of the float32 (0.1, not 0.100000001490)
        return v if not np.isfinite(v) else float(f"{v:.{digits}g}")
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return float(f"{v:.{digits}g}") if np.isfinite(v) else v
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return readable(obj.tolist(), digits)
    if isinstance(obj, Mapping):
        return {k: readable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [readable(v, digits) for v in obj]
    return obj


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Plain-text table; floats with 4 significant digits.

    Parameters
    ----------
    rows : list of dict
    columns : list of str or None
        The columns in order (default: the first row's keys).
    """
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    body = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(lines)
