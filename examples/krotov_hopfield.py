"""Krotov-Hopfield competing hidden units: unsupervised features, then a supervised readout.

Trains a layer of competing hidden units with the local Hebbian/anti-Hebbian rule of
Krotov & Hopfield ("Unsupervised learning by competing hidden units", PNAS 2019) on
unlabelled images, freezes it, and trains the paper's readout
c = tanh(beta * (V max(W x, 0)^n + b)) with the loss sum |c - t|^m on top.  For
comparison the same readout is trained on untrained random weights of the same shape
(standard normal, as the layer's initialisation; with --feature-scaling none each random
unit is rescaled to the learned unit's sum_i |W_i|^p so that the features have the same
size).
Every run is repeated for --seeds seeds (mean +- std).

Configurations (--config; any of --hidden --p --k --delta --lr ... overrides them):

* ``paper`` (the default): 2000 hidden units, p = 3, k = 7, Delta = 0.4, each image
  scaled to unit Euclidean norm, readout n = 4.5, m = 6 (the paper's MNIST setup); N(0, 1)
  initial weights, lr 0.1, batch 100, only 3 Hebbian epochs (see below why not more),
  power-loss readout, Adam lr 0.01 decaying linearly over 30 epochs;
* ``converged``: the same layer and schedule as Krotov's reference code (N(0, 1) initial
  weights, lr 0.02 decaying linearly to 0, batch 100), trained 100 epochs, but with
  Delta = 0.1 (with Delta = 0.4 the units do not converge on Fashion-MNIST, see below);
  readout n = 4.5 on per-unit standardised features (``--feature-scaling standardize``),
  cross-entropy with beta = 1, Adam lr 0.002 decaying linearly over 60 epochs;
* ``seed``: the PyTorch notebook's small defaults (28 hidden units, p = 2, k = 5,
  Delta = 0.3, lr 0.01, precision 0.1, uniform [0, 1) initial weights, pixels mapped to
  [-1, 1]).

Runs on --data (Fashion-MNIST by default) and, with --also, on MNIST / CIFAR-10 when
their files are present (found via --data-root or $BIONP_DATA; never downloaded here):
a missing dataset is skipped with a message.

Prints and writes to --out: ``results.json`` (test accuracy per readout epoch for every
seed, learned and random; the per-epoch convergence curve of the Hebbian layer: the
fraction of units that ever won whose sum_i |W_i|^p lies within 5% of 1, and the norm
statistics; a summary with mean +- std), ``weights_<data>.png`` (the learned weight grid
of the first seed), ``training_<data>.png`` (convergence and readout curves) and the
learned weights ``weights_<data>_seed<N>.npy``.

What to expect on Fashion-MNIST (full set, 3 seeds, measured on a loaded shared CPU):

* ``--config converged``: learned 87.44 +- 0.08 % vs random 85.13 +- 0.10 %; 91.9 +- 0.4 %
  of the units within 5 % of sum |W|^p = 1, all units active (a positive feature on at
  least 1 % of the images), weights of both signs (about 74 % positive).  With the paper's
  power loss instead (``--loss power --beta 0.3``) the same weights read out at 87.2 %
  (seed 0); with the per-sample ``--feature-scaling max`` at 84 %.
* the defaults (paper configuration, 3 Hebbian epochs, power-loss readout): learned
  86.72 +- 0.08 % vs random 85.37 +- 0.24 %; with ``--loss cross_entropy --beta 1``:
  87.02 +- 0.10 % vs 85.78 +- 0.11 %.  After 3 epochs the units are far from converged
  (median sum |W|^p about 200): the features are shrunk random weights plus data.
* trained longer with the paper's Delta = 0.4, k = 7, the layer *collapses*: with lr 0.1
  between epochs 8 and 12, with Krotov's lr 0.02 (decaying over 200 epochs) between
  epochs 30 and 40; on 500-unit, 20k-image runs also with raw [0, 1] pixels, pixels in
  [-1, 1], p = 2, and (slowly) at a constant lr 0.001.  Only a handful of units (about
  k - 1) keep winning, all others end as *negative* prototypes at sum |W|^p = 1:
  ``--epochs 40`` (1 seed) gives 98.0 % "converged" but ``active`` 0.001 and a readout
  of 41.1 % (random 85.5 %).  Its convergence table shows the onset: ``attracting`` falls
  from 0.97 to 0.30 at epoch 7, then the share of units that win falls from 0.93 to 0.21
  (epoch 12) and 0.001.  The cause is the norm dynamics documented in
  :mod:`bionp.hebbian.krotov_hopfield`: the unit sphere attracts a unit only while its
  balance sum_b g I (currents where it wins minus Delta times those where it comes k-th)
  is positive.  Fashion-MNIST images overlap strongly; a few broad units win a large
  share of the images (on a 500-unit, 20k-image run one unit won 15 % of them) and most
  units come k-th several times as often as they win, so their balance is negative and
  their norm moves away from 1 while the anti-Hebbian push drives them below zero; a
  unit whose currents are negative then converges to norm 1 as a negative prototype.
  The implementation reproduces Krotov's reference loop to 1e-15 (float64, 300 units,
  1000 updates), so this is the rule on this data set, not a bug.  With Delta = 0.1 the
  balance stays positive for 99 % of the updated units (``attracting`` 0.99).
* ``--config seed`` diverges: with inputs in [-1, 1] the winner's current can be
  negative, which pushes its norm away from 1 (sum |W|^2 about 4e5 after 40 epochs,
  14.5 % vs 52 %); with ``--inputs unit-norm`` it converges (49.6 % vs 56.1 %).

Example::

    BIONP_DATA=../shared/datasets OPENBLAS_NUM_THREADS=1 \\
        python examples/krotov_hopfield.py --config converged --out results/kh
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np

import bionp as bnp
from bionp import experiment, plot
from bionp.hebbian import BioClassifier, KrotovHopfield, draw_weights, random_features_baseline

#: hyperparameters of the two configurations; ``None`` in the command line means "take these"
CONFIGS = {
    "paper": dict(epochs=3, hidden=2000, p=3.0, k=7, delta=0.4, lr=0.1, precision=1e-30, batch_size=100,
                  init="normal", init_mean=0.0, init_std=1.0, inputs="unit-norm",
                  power=4.5, m=6.0, beta=0.1, loss="power", feature_scaling="max", clf_lr=0.01,
                  clf_epochs=30, clf_lr_decay="linear", clf_batch_size=100),
    "converged": dict(epochs=100, hidden=2000, p=3.0, k=7, delta=0.1, lr=0.02, precision=1e-30,
                      batch_size=100, init="normal", init_mean=0.0, init_std=1.0,
                      inputs="unit-norm", power=4.5, m=6.0, beta=1.0, loss="cross_entropy",
                      feature_scaling="standardize", clf_lr=0.002, clf_epochs=60,
                      clf_lr_decay="linear", clf_batch_size=100),
    "seed": dict(epochs=40, hidden=28, p=2.0, k=5, delta=0.3, lr=0.01, precision=0.1, batch_size=100,
                 init="uniform", init_mean=0.5, init_std=0.5, inputs="signed",
                 power=4.5, m=6.0, beta=0.1, loss="power", feature_scaling="max", clf_lr=0.01,
                 clf_epochs=30, clf_lr_decay="linear", clf_batch_size=100),
}
INPUTS = ("unit-norm", "signed", "raw")
IMAGE_SHAPES = {"mnist": (28, 28), "fashion-mnist": (28, 28), "fashion-mnist-small": (28, 28),
                "cifar10": (3, 32, 32)}


def parse_args(argv=None):
    ap = experiment.example_parser(__doc__.splitlines()[0], epochs=None, data="fashion-mnist",
                                   seed=0, out="results/krotov_hopfield")
    for action in ap._actions:
        if action.dest == "epochs":
            action.help = ("Hebbian training epochs (default: from --config, 3 for paper, 100 "
                           "for converged, 40 for seed; the learning rate decays linearly to 0 "
                           "over them)")
            action.default = argparse.SUPPRESS
    ap.add_argument("--config", choices=tuple(CONFIGS), default="paper",
                    help="hyperparameter set (see the module docstring); the options below "
                         "override single values")
    g = ap.add_argument_group("Hebbian layer (default: from --config)")
    g.add_argument("--hidden", type=int, help="number of hidden units")
    g.add_argument("--p", type=float, help="Lebesgue exponent p of the rule (>= 1)")
    g.add_argument("--k", type=int, help="rank of the unit that gets the anti-Hebbian update")
    g.add_argument("--delta", type=float, help="anti-Hebbian strength Delta (>= 0)")
    g.add_argument("--lr", type=float,
                   help="initial learning rate of the rule, decayed linearly to 0 over --epochs")
    g.add_argument("--precision", type=float, help="floor of the update normaliser max|dW|")
    g.add_argument("--batch-size", type=int, help="minibatch size of the rule")
    g.add_argument("--init", choices=("normal", "uniform"), help="initial weight distribution")
    g.add_argument("--init-mean", type=float, help="mean of the initial weights")
    g.add_argument("--init-std", type=float,
                   help="std (normal) or half-width (uniform) of the initial weights")
    g.add_argument("--inputs", choices=INPUTS,
                   help="input scaling: unit-norm (every image to unit Euclidean norm), "
                        "signed (pixels mapped to [-1, 1]) or raw (pixels in [0, 1])")
    g = ap.add_argument_group("readout (default: from --config)")
    g.add_argument("--power", type=float, help="exponent n of the hidden features max(Wx, 0)^n")
    g.add_argument("--m", type=float, help="exponent m of the loss sum |c - t|^m")
    g.add_argument("--beta", type=float, help="slope beta of the readout tanh")
    g.add_argument("--feature-scaling", choices=("max", "l2", "standardize", "none"),
                   help="scaling of the hidden features before the readout: per sample, divide by "
                        "their maximum or by their Euclidean norm; per unit, standardise with the "
                        "training set's mean and std; or none (the paper's literal readout)")
    g.add_argument("--loss", choices=("power", "cross_entropy"),
                   help="readout loss (power: the paper's sum |c - t|^m)")
    g.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="readout optimiser")
    g.add_argument("--clf-lr", type=float, help="readout learning rate")
    g.add_argument("--clf-epochs", type=int, help="readout training epochs")
    g.add_argument("--clf-lr-decay", choices=("constant", "linear"),
                   help="readout learning rate: constant, or decaying linearly to 0 over the epochs")
    g.add_argument("--clf-batch-size", type=int, help="readout minibatch size")
    g = ap.add_argument_group("experiment")
    g.add_argument("--seeds", type=int, default=3,
                   help="repeats (seeds --seed, --seed+1, ...): learned and random features each")
    g.add_argument("--also", nargs="*", choices=("mnist", "cifar10"), default=["mnist", "cifar10"],
                   help="further datasets, run when their files are present (never downloaded)")
    g.add_argument("--grid", type=int, nargs=2, default=(10, 10), metavar=("ROWS", "COLS"),
                   help="size of the weight grid figure")
    g.add_argument("--grid-scale", choices=("unit", "global"), default="unit",
                   help="colour scale of the weight grid: per unit (default), or one max|W| for "
                        "all tiles")
    g.add_argument("--no-save-weights", action="store_true",
                   help="do not write the learned weights (OUT/weights_<data>_seed<N>.npy)")
    g.add_argument("--tol", type=float, default=0.05,
                   help="convergence check: |sum_i |W_i|^p - 1| <= tol")
    args = ap.parse_args(argv)
    for name, value in CONFIGS[args.config].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if args.epochs < 1:
        ap.error(f"--epochs must be >= 1 for this example (Hebbian epochs), got {args.epochs}")
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.clf_epochs < 1:
        ap.error(f"--clf-epochs must be >= 1, got {args.clf_epochs}")
    return args


def scale_inputs(x, how: str):
    """The input scaling of ``--inputs`` (a new array)."""
    xp = bnp.get_array_module(x)
    if how == "raw":
        return x.copy()
    if how == "signed":
        return x * x.dtype.type(2) - x.dtype.type(1)
    norms = xp.sqrt(xp.sum(x * x, axis=1, keepdims=True))
    xp.maximum(norms, xp.finfo(x.dtype).tiny, out=norms)
    return x / norms


def load_dataset(args, name: str, primary: bool):
    """``(x_tr, y_tr, x_te, y_te)`` or None (with a message) when the files are absent."""
    from bionp import data

    if primary:
        return experiment.load_data(args)
    try:
        x_tr, y_tr = data.load(name, "train", root=args.data_root, download=False)
        x_te, y_te = data.load(name, "test", root=args.data_root, download=False)
    except data.DatasetNotFoundError:
        print(f"[skip] {name}: its files were not found (give their folder with --data-root "
              f"or BIONP_DATA; this example does not download)", flush=True)
        return None
    if args.subset is not None and args.subset < x_tr.shape[0]:
        x_tr, y_tr = data.stratified_subset(x_tr, y_tr, args.subset, rng=args.seed)
    return x_tr, y_tr, x_te, y_te


def make_layer(args, seed: int) -> KrotovHopfield:
    return KrotovHopfield(args.hidden, p=args.p, k=args.k, delta=args.delta, lr=args.lr,
                          precision=args.precision, batch_size=args.batch_size, init=args.init,
                          init_mean=args.init_mean, init_std=args.init_std, rng=seed,
                          progress=False if args.quiet else None)


def make_readout(args, features, seed: int) -> BioClassifier:
    return BioClassifier(features, n_classes=10, power=args.power, m=args.m, beta=args.beta,
                         feature_scaling=None if args.feature_scaling == "none" else args.feature_scaling,
                         loss=args.loss, optimizer=args.optimizer, lr=args.clf_lr,
                         lr_decay=args.clf_lr_decay,
                         batch_size=args.clf_batch_size, epochs=args.clf_epochs, rng=seed,
                         precompute=True, progress=False if args.quiet else None)


def norm_statistics(layer: KrotovHopfield, tol: float, x_probe=None) -> dict:
    """Final :math:`\\sum_i|W_i|^p` of the units that ever won: quantiles and the convergence check.

    With ``x_probe`` (training images) also the share of units whose feature is positive on
    at least 1 % of them (``active_fraction``): a unit that ended as a negative prototype
    has norm 1 (it counts as converged) but a zero feature.
    """
    xp = bnp.get_array_module(layer.weights_)
    norms = bnp.asnumpy(layer.unit_norms()).astype(np.float64)
    ever = bnp.asnumpy(layer.win_counts_ > 0)
    won = norms[ever]
    q = np.quantile(won, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]) if won.size else [math.nan] * 7
    return {
        "ever_won_fraction": float(ever.mean()),
        "converged_fraction": layer.convergence_fraction(tol),
        "tol": tol,
        "norm_quantiles_of_winners": dict(zip(("min", "q05", "q25", "median", "q75", "q95", "max"),
                                              (float(v) for v in q))),
        "norm_mean_of_winners": float(won.mean()) if won.size else math.nan,
        "n_units_never_won": int(to_int(xp.count_nonzero(~(layer.win_counts_ > 0)))),
        "active_fraction": layer.active_fraction(x_probe) if x_probe is not None else math.nan,
        "attracting_fraction_last_epoch": (layer.history_[-1]["attracting_fraction"]
                                           if layer.history_ else math.nan),
    }


def save_array(path: str, array) -> None:
    """``np.save`` to a temporary file, then an atomic rename (a crash leaves no half file)."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".weights-", suffix=".npy", dir=folder)
    with os.fdopen(fd, "wb") as f:
        np.save(f, bnp.asnumpy(array), allow_pickle=False)
    os.replace(tmp, path)


def to_int(v) -> int:
    return int(bnp.to_scalar(v))


def readout_record(clf: BioClassifier, seconds: float) -> dict:
    h = clf.history_
    return {"test_accuracy": [r["test_accuracy"] for r in h],
            "epoch_seconds": [r["seconds"] for r in h],
            "train_loss": [r["loss"] for r in h],
            "train_accuracy": [r["train_accuracy"] for r in h],
            "final_test_accuracy": h[-1]["test_accuracy"],
            "readout_seconds": seconds}


def run_dataset(args, name: str, arrays, runs: dict, summary: dict) -> None:
    x_tr, y_tr, x_te, y_te = arrays
    x_tr, x_te = scale_inputs(x_tr, args.inputs), scale_inputs(x_te, args.inputs)
    print(f"\n== {name}: {x_tr.shape[0]} train / {x_te.shape[0]} test images, {args.config} "
          f"configuration: {args.hidden} hidden, p={args.p:g}, k={args.k}, delta={args.delta:g}, "
          f"lr={args.lr:g}, {args.epochs} Hebbian epochs, readout n={args.power:g} m={args.m:g} "
          f"beta={args.beta:g} {args.loss} loss, {args.feature_scaling} feature scaling, "
          f"{args.optimizer} lr={args.clf_lr:g} x {args.clf_epochs} epochs",
          flush=True)
    learned, random, first_layer, curves = [], [], None, {}
    for i in range(args.seeds):
        seed = args.seed + i
        t0 = time.perf_counter()
        layer = make_layer(args, seed).fit(x_tr, epochs=args.epochs)
        hebb_seconds = time.perf_counter() - t0
        stats = norm_statistics(layer, args.tol, x_tr[:10_000])
        if not args.no_save_weights:
            save_array(f"{args.out}/weights_{name}_seed{seed}.npy", layer.weights_)
        t0 = time.perf_counter()
        clf = make_readout(args, layer, seed).fit(x_tr, y_tr, x_te, y_te)
        rec = readout_record(clf, time.perf_counter() - t0)
        rec.update(hebbian_seconds=hebb_seconds, hebbian_epochs=args.epochs,
                   hebbian_history=layer.history_,
                   convergence_curve=[r["converged_fraction"] for r in layer.history_],
                   norm_statistics=stats)
        runs[f"{name}/learned/seed{seed}"] = rec
        learned.append(rec["final_test_accuracy"])
        W_random = random_features_baseline(layer, rng=10_000 + seed,
                                            match_norms=args.feature_scaling == "none")
        t0 = time.perf_counter()
        clf_r = make_readout(args, W_random, seed).fit(x_tr, y_tr, x_te, y_te)
        rec_r = readout_record(clf_r, time.perf_counter() - t0)
        runs[f"{name}/random/seed{seed}"] = rec_r
        random.append(rec_r["final_test_accuracy"])
        print(f"seed {seed}: learned {learned[-1]:.2f}%  random {random[-1]:.2f}%  "
              f"converged {stats['converged_fraction']:.3f} of the {stats['ever_won_fraction']:.3f} "
              f"that won (median norm {stats['norm_quantiles_of_winners']['median']:.3f}), "
              f"active {stats['active_fraction']:.3f}  "
              f"Hebbian {hebb_seconds:.0f} s ({hebb_seconds / args.epochs:.2f} s/epoch), "
              f"readouts {rec['readout_seconds'] + rec_r['readout_seconds']:.0f} s", flush=True)
        print_convergence(layer.history_)
        if first_layer is None:
            first_layer = layer
            curves = {"learned": rec["test_accuracy"], "random": rec_r["test_accuracy"]}
    s = {
        "learned": _mean_std(learned), "random": _mean_std(random),
        "margin": float(np.mean(learned) - np.mean(random)),
        "spread": float(max(np.std(learned), np.std(random))),
        "converged_fraction": _mean_std([runs[f"{name}/learned/seed{args.seed + i}"]
                                         ["norm_statistics"]["converged_fraction"]
                                         for i in range(args.seeds)]),
        "active_fraction": _mean_std([runs[f"{name}/learned/seed{args.seed + i}"]
                                      ["norm_statistics"]["active_fraction"]
                                      for i in range(args.seeds)]),
    }
    s["learned_beats_random_by_more_than_spread"] = bool(s["margin"] > s["spread"])
    summary[name] = s
    print(experiment.format_table([
        {"features": "learned", "test acc % (mean)": s["learned"]["mean"],
         "std": s["learned"]["std"], "seeds": args.seeds},
        {"features": "random", "test acc % (mean)": s["random"]["mean"],
         "std": s["random"]["std"], "seeds": args.seeds},
    ]))
    print(f"margin {s['margin']:.2f} points vs spread {s['spread']:.2f}; converged fraction "
          f"{s['converged_fraction']['mean']:.3f} +- {s['converged_fraction']['std']:.3f}; active "
          f"fraction {s['active_fraction']['mean']:.3f} +- {s['active_fraction']['std']:.3f}",
          flush=True)
    shape = IMAGE_SHAPES[name]
    rows, cols = args.grid
    draw_weights(first_layer.weights_, rows, cols, shape, path=f"{args.out}/weights_{name}.png",
                 title=f"{name}: first {min(rows * cols, args.hidden)} of {args.hidden} units "
                       f"(seed {args.seed})", scale=args.grid_scale)
    training_figure(first_layer, curves, f"{args.out}/training_{name}.png", name, args.tol)


def print_convergence(history, points: int = 8) -> None:
    """The convergence curve at up to ``points`` epochs, one row each."""
    picks = sorted({round(i * (len(history) - 1) / max(points - 1, 1)) for i in range(points)})
    rows = [{"epoch": history[i]["epoch"] + 1, "lr": history[i]["lr"],
             "converged (of winners)": history[i]["converged_fraction"],
             "mean norm (winners)": history[i]["mean_norm"],
             "ever won": history[i]["ever_won_fraction"],
             "won this epoch": history[i]["winner_fraction"],
             "attracting": history[i]["attracting_fraction"],
             "s": history[i]["seconds"]} for i in picks]
    print("  " + experiment.format_table(rows).replace("\n", "\n  "), flush=True)


def _mean_std(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "values": [float(a) for a in v]}


def training_figure(layer: KrotovHopfield, curves: dict, path: str, name: str, tol: float) -> None:
    plt = plot.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    h = layer.history_
    ep = np.arange(1, len(h) + 1)
    ax = axes[0]
    ax.plot(ep, [r["converged_fraction"] for r in h], label=f"|sum|W|^p - 1| <= {tol:g} (of winners)")
    ax.plot(ep, [r["ever_won_fraction"] for r in h], label="units that ever won")
    ax.plot(ep, [r["winner_fraction"] for r in h], label="units that won this epoch")
    ax.set(xlabel="Hebbian epoch", ylabel="fraction of units", title="Convergence", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(ep, [r["mean_norm"] for r in h])
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set(xlabel="Hebbian epoch", ylabel="mean sum_i |W_i|^p of winners", yscale="log",
           title="Norm of the winning units")
    ax = axes[2]
    for label, acc in curves.items():
        ax.plot(np.arange(1, len(acc) + 1), acc, label=f"{label} features")
    ax.set(xlabel="readout epoch", ylabel="test accuracy (%)", title="Readout")
    ax.legend()
    for a in axes:
        a.grid(alpha=0.3)
    fig.suptitle(f"Krotov-Hopfield on {name}")
    plot.save_figure(fig, path)


def main(argv=None):
    args = parse_args(argv)
    experiment.setup(args)
    runs, summary = {}, {}
    names = [args.data] + [n for n in args.also if n != args.data]
    for i, name in enumerate(names):
        arrays = load_dataset(args, name, primary=(i == 0))
        if arrays is not None:
            run_dataset(args, name, arrays, runs, summary)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
    path = experiment.write_results(args.out, config, runs, summary=summary)
    print(f"\nwrote {path} and the figures in {args.out}")
    return {"runs": runs, "summary": summary}


if __name__ == "__main__":
    main()
