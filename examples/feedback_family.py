"""The shape of Akrout et al.'s (2019) figure: how far each rule's feedback is from the weights.

Trains feedback alignment, sign symmetry (uSF, brSF, frSF), Kolen-Pollack, weight mirrors
and backprop with ``examples/compare_rules.py`` (its defaults: the 784-256-256-10 ReLU MLP
on Fashion-MNIST, SGD with Nesterov momentum, lr 0.02 with a per-update cosine decay,
weight decay 5e-4, 20 epochs; every ``compare_rules`` option is accepted), then draws

* ``feedback_family.png``: top row, per layer above the first, the angle between ``B_l``
  and ``W_l`` at initialisation and after every epoch (:func:`bionp.metrics.layer_alignment`);
  bottom row, per layer below the output, the angle between the rule's weight update and
  backprop's on 1000 test images (:func:`bionp.metrics.compare_to_backprop`; the output
  layer's update is exact for all of them).  FA stays near 90 degrees from ``W`` while its
  updates come within ~60 of backprop's; sign symmetry sits at the angle of
  ``sign(W)`` to ``W`` (~37 degrees for Gaussian weights; brSF and frSF ~50);
  Kolen-Pollack (with its one-epoch alignment phase) and weight mirrors come within a
  few degrees.
* ``feedback_family.json``: per rule the final and best test accuracy, both angles per
  layer and epoch, and the seconds per epoch; and the accuracy table on stdout.

``--from-results DIR [DIR ...]`` merges the ``results.json`` of earlier ``compare_rules``
runs (e.g. rules trained in parallel processes) and draws them without training.

Measured (one seed, 20 epochs, full Fashion-MNIST, the defaults): the table in
``examples/compare_rules.py``'s docstring.  After 20 epochs the W-B angles are about 0
(Kolen-Pollack), 6.5 (weight mirrors), 30-36 (uSF), 35-50 (frSF, brSF) and 73-83 degrees
(FA) in layers 1 and 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

FAMILY = ("feedback_alignment", "usf", "brsf", "frsf", "kolen_pollack", "weight_mirror",
          "backprop")


def _compare_rules():
    """``examples/compare_rules.py`` as a module (it sits next to this file)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_rules.py")
    spec = importlib.util.spec_from_file_location("compare_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _degrees(c):
    return math.degrees(math.acos(max(-1.0, min(1.0, c)))) if c == c else c


def summarize(runs: dict) -> dict:
    """Per rule: final/best accuracy, the W-B angle ``[epoch][layer]``, the update angle to
    backprop ``[epoch][layer]`` and the mean seconds per epoch."""
    out = {}
    for name, run in runs.items():
        acc = run.get("test_accuracy") or []
        secs = run.get("epoch_seconds") or []
        out[name] = {
            "final_test_accuracy": acc[-1] if acc else None,
            "best_test_accuracy": max(acc) if acc else None,
            "epochs": len(acc),
            "wb_angle": run.get("layer_alignment"),
            "update_angle": run.get("alignment_angle")
            or [[_degrees(c) for c in e] for e in run.get("cosine_similarity", [])],
            "seconds_per_epoch": sum(secs) / len(secs) if secs else None,
        }
    return out


def plot_family(summary: dict, path: str) -> str:
    """The two-row figure described in the module docstring."""
    from bionp import plot

    plt = plot.pyplot()
    wb = {k: v["wb_angle"] for k, v in summary.items() if v["wb_angle"] and k != "backprop"}
    upd = {k: v["update_angle"] for k, v in summary.items() if v["update_angle"]
           and k != "backprop"}
    n_layers = max([len(a[0]) for a in list(wb.values()) + list(upd.values())] or [2])
    cols = max(1, n_layers - 1)
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, cols, figsize=(4.2 * cols, 7), squeeze=False)
    top = max([95.0] + [a + 5 for v in upd.values() for e in v for a in e if a == a])
    for l in range(1, n_layers):
        ax = axes[0][l - 1]
        for name, ang in wb.items():
            ax.plot(range(len(ang)), [e[l] for e in ang], marker="o", ms=3, label=name)
        ax.set_title(f"B vs W, layer {l}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("angle (degrees)")
        ax.set_ylim(0, 95)
    for l in range(0, n_layers - 1):
        ax = axes[1][l]
        for name, ang in upd.items():
            ax.plot(range(len(ang)), [e[l] for e in ang], marker="o", ms=3, label=name)
        ax.set_title(f"update vs backprop's, layer {l}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("angle (degrees)")
        ax.set_ylim(0, min(180.0, top))
    for ax in axes.ravel():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return plot.save_figure(fig, path)


def table(summary: dict) -> str:
    from bionp import experiment

    rows = []
    for name, s in summary.items():
        wb1 = s["wb_angle"][1] if s["wb_angle"] and len(s["wb_angle"]) > 1 else []
        rows.append({"rule": name, "final acc %": s["final_test_accuracy"],
                     "best acc %": s["best_test_accuracy"],
                     "W-B angle @1 per layer": " ".join(f"{a:.1f}" for a in wb1[1:]) or "-",
                     "s/epoch": round(s["seconds_per_epoch"], 2)
                     if s["seconds_per_epoch"] else None})
    return experiment.format_table(rows)


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    ap.add_argument("--from-results", nargs="+", default=None, metavar="DIR",
                    help="draw the results.json of earlier compare_rules runs (no training)")
    ap.add_argument("--out", default="results/feedback_family", help="output folder")
    ap.add_argument("-h", "--help", action="store_true", help="show this message and exit")
    return ap.parse_known_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = _parse(argv)
    if args.help:
        print(__doc__)
        print("Options: --from-results DIR [DIR ...], --out DIR, and compare_rules' own:")
        _compare_rules().parse_args(["--help"])
    if args.from_results:
        if rest:
            raise ValueError(f"--from-results draws earlier runs: training options {rest} "
                             "do not apply")
        runs = {}
        for folder in args.from_results:
            path = os.path.join(folder, "results.json")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"--from-results: no results.json in {folder!r}")
            with open(path) as f:
                runs.update(json.load(f)["runs"])
    else:
        if "--rules" not in rest:
            rest += ["--rules", *FAMILY]
        runs = _compare_rules().main(rest + ["--out", args.out])
    summary = summarize(runs)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "feedback_family.json"), "w") as f:
        json.dump(summary, f, indent=1)
    png = plot_family(summary, os.path.join(args.out, "feedback_family.png"))
    print(table(summary))
    print(f"\nwrote {os.path.join(args.out, 'feedback_family.json')} and {png}")
    return summary


if __name__ == "__main__":
    main()
