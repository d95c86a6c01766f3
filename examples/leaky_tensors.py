"""Leaky tensors: training with weight noise, learnable noise variance, robustness to test-time noise.

Three models of one shape (default 784-256-10, ReLU, cross-entropy) are trained
on Fashion-MNIST from the same initialisation and data order:

* ``baseline``  — a plain MLP;
* ``fixed``     — :class:`bionp.nn.NoisyDense` layers: fresh Gaussian weight noise of
  standard deviation ``--train-sigma`` at every training step;
* ``learnable`` — :class:`bionp.nn.LearnableNoiseDense` layers: each layer learns its
  log σ² (initialised at ``--log-var-init``, σ clamped to [1e-6, 0.1]).

After training, every model's accuracy on the test set is measured under
test-time weight noise (:func:`bionp.robustness.robustness_curve`): each weight
matrix perturbed by σ ε for σ on ``--test-sigmas``, ``--repeats`` independent
draws per σ (the same draws for every model of a seed: a paired comparison).
The noise is really applied at evaluation (the seed notebook's evaluation
switched it off).  With ``--n-seeds K`` everything is repeated for training
seeds ``seed … seed+K-1`` and summarised as mean ± std over seeds.

Writes ``OUT/results.json`` and the figures ``accuracy.png`` (test accuracy per
epoch), ``loss.png`` (training loss), ``sigma.png`` (learned σ per layer during
training) and ``robustness.png`` (accuracy vs test-time σ, mean ± std).
``--merge DIR …`` combines the results of runs made in parallel (one seed each)
into ``OUT`` without training.

Measured with the defaults (full Fashion-MNIST, 10 epochs, seeds 0, 1, 2 run as
three ``--n-seeds 1`` processes and merged; mean ± std over seeds of each seed's
mean over 5 draws):

=========  ============  ==============
model      clean (%)     σ = 0.05 (%)
=========  ============  ==============
baseline   88.68 ± 0.05  85.22 ± 0.22
fixed      87.94 ± 0.23  86.43 ± 0.20
learnable  88.38 ± 0.10  86.01 ± 0.26
=========  ============  ==============

The learned σ falls from e^-3 ≈ 0.05 to about 0.006 (first layer) and 0.013
(second) without a regulariser; the early noisy phase still leaves the
learnable model more robust than the baseline.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from bionp import experiment, nn, optim, plot, rules
from bionp.backend import to_scalar
from bionp.robustness import check_sigma_grid, robustness_curve
from bionp.train import Trainer

MODELS = ("baseline", "fixed", "learnable")
RULES = ("backprop", "feedback_alignment", "kolen_pollack")


def parse_args(argv=None):
    ap = experiment.example_parser(__doc__.splitlines()[0], epochs=10, data="fashion-mnist",
                                   seed=0, out="results/leaky_tensors")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to train")
    ap.add_argument("--hidden", type=int, nargs="+", default=[256], help="hidden layer sizes")
    ap.add_argument("--rule", choices=RULES, default="backprop", help="learning rule")
    ap.add_argument("--batch-size", type=int, default=128, help="minibatch size")
    ap.add_argument("--lr", type=float, default=0.05, help="peak SGD learning rate (cosine decay)")
    ap.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    ap.add_argument("--mode", choices=("additive", "multiplicative"), default="additive",
                    help="weight noise in training and at test time: W + σε or W(1 + σε)")
    ap.add_argument("--train-sigma", type=float, default=0.03,
                    help="training noise σ of the fixed-noise model")
    ap.add_argument("--log-var-init", type=float, default=-6.0,
                    help="initial log σ² of the learnable-noise model (−6: σ ≈ 0.05)")
    ap.add_argument("--per-weight", action="store_true",
                    help="learn one log σ² per weight instead of one per layer")
    ap.add_argument("--sigma-reg", type=float, default=0.0,
                    help="weight λ of the regulariser −λ·mean(log σ) that rewards noise")
    ap.add_argument("--test-sigmas", type=float, nargs="+",
                    default=[0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2],
                    help="test-time weight-noise levels σ")
    ap.add_argument("--eval-sigma", type=float, default=0.05,
                    help="the σ of the headline comparison (must be on --test-sigmas)")
    ap.add_argument("--repeats", type=int, default=5, help="noise draws per test-time σ")
    ap.add_argument("--n-seeds", type=int, default=1, help="training seeds: seed, seed+1, …")
    ap.add_argument("--sigma-every", type=int, default=20,
                    help="record the learned σ every this many updates")
    ap.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                    help="combine the results.json of these folders (no training)")
    args = ap.parse_args(argv)
    try:
        grid = check_sigma_grid(args.test_sigmas)
    except (TypeError, ValueError) as exc:
        ap.error(f"--test-sigmas: {exc}")
    if not any(math.isclose(s, args.eval_sigma) for s in grid):
        ap.error(f"--eval-sigma {args.eval_sigma} is not on --test-sigmas {list(grid)}")
    for name in ("repeats", "n_seeds", "batch_size", "sigma_every"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if not (args.train_sigma >= 0 and math.isfinite(args.train_sigma)):
        ap.error(f"--train-sigma must be a finite number >= 0, got {args.train_sigma}")
    return args


def build(model, sizes, args, seed):
    """The network of ``model``; all three get the same initial weights from ``seed``."""
    from bionp.random import Generator

    g = Generator(seed)
    init_rngs = g.spawn(len(sizes) - 1)
    noise_rngs = Generator(seed + 10_000).spawn(len(sizes) - 1)
    acts = ["relu"] * (len(sizes) - 2) + ["identity"]
    layers = []
    for i in range(len(sizes) - 1):
        if model != "learnable":
            dense = nn.Dense(sizes[i], sizes[i + 1], init="he_normal", rng=init_rngs[i])
        if model == "fixed":
            dense = nn.NoisyWeights(dense, sigma=args.train_sigma, mode=args.mode, rng=noise_rngs[i])
        elif model == "learnable":
            # the same initial weights as the others: rng=init_rngs[i] draws W like Dense does
            dense = nn.LearnableNoiseDense(sizes[i], sizes[i + 1], log_var_init=args.log_var_init,
                                           per_weight=args.per_weight, sigma_reg=args.sigma_reg,
                                           mode=args.mode, init="he_normal", rng=init_rngs[i],
                                           noise_rng=noise_rngs[i])
        layers.append(dense)
    return nn.Sequential(layers, acts)


def make_rule(name, seed):
    """The rule; feedback matrices drawn like the weights, no Kolen-Pollack decay (it would
    also pull log σ² toward 0, see bionp.nn.noisy)."""
    if name == "backprop":
        return rules.Backprop()
    kw = {"weight_decay": 0.0} if name == "kolen_pollack" else {}
    return rules.get_rule(name, init="he_normal", rng=seed, **kw)


def learned_sigmas(net) -> list:
    """Mean learned σ per layer (None for layers without learnable noise)."""
    out = []
    for layer in net.layers:
        if isinstance(layer, nn.LearnableNoiseDense):
            out.append(float(to_scalar(layer.sigma.mean())))
        else:
            out.append(None)
    return out


def train_one(model, seed, data_, args):
    x_tr, y_tr, x_te, y_te = data_
    sizes = [x_tr.shape[1], *args.hidden, 10]
    net = build(model, sizes, args, seed)
    opt = optim.SGD(net, lr=args.lr, momentum=args.momentum)
    sigma_trace = {"step": [0], "sigma": [learned_sigmas(net)]}

    def record(trainer):
        n = trainer.optimizer.step_count
        if n % args.sigma_every == 0:
            sigma_trace["step"].append(n)
            sigma_trace["sigma"].append(learned_sigmas(net))

    def schedule(epoch):
        return 0.5 * args.lr * (1 + math.cos(math.pi * epoch / max(args.epochs, 1)))

    trainer = Trainer(net, make_rule(args.rule, seed + 1), opt, nn.CrossEntropyLoss(),
                      batch_size=args.batch_size, rng=seed, schedule=schedule,
                      progress=False if args.quiet else None,
                      after_step=record if model == "learnable" else None,
                      diagnostics={"learned_sigma": lambda t, e: learned_sigmas(net)})
    h = trainer.fit(x_tr, y_tr, epochs=args.epochs, x_test=x_te, labels_test=y_te)
    curve = robustness_curve(net, x_te, y_te, args.test_sigmas, repeats=args.repeats,
                             rng=seed + 20_000, mode=args.mode)
    rec = {"test_accuracy": h.test_accuracy, "epoch_seconds": h.epoch_seconds,
           "epoch_loss": h.epoch_loss, "stopped": h.stopped, "robustness": curve.to_dict(),
           "learned_sigma": h.diagnostics.get("learned_sigma", []), "n_params": net.n_params}
    if model == "learnable":
        rec["sigma_trace"] = sigma_trace
    return rec


def _grid_index(sigmas, sigma) -> int:
    return next(k for k, s in enumerate(sigmas) if math.isclose(s, sigma))


def _mean_std(values):
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())


def summarize(per_seed: dict, args) -> dict:
    """Aggregate ``{model: {seed: record}}`` over seeds: per-epoch curves and robustness."""
    runs, summary = {}, {"eval_sigma": args.eval_sigma, "models": {}}
    for model, seeds in per_seed.items():
        recs = [seeds[s] for s in sorted(seeds, key=int)]
        k_eval = _grid_index(recs[0]["robustness"]["sigmas"], args.eval_sigma)
        acc = np.asarray([r["test_accuracy"] for r in recs], dtype=np.float64)
        rob = np.asarray([r["robustness"]["mean"] for r in recs], dtype=np.float64)
        clean = [r["robustness"]["mean"][0] if r["robustness"]["sigmas"][0] == 0
                 else r["test_accuracy"][-1] for r in recs]
        noisy = [r["robustness"]["mean"][k_eval] for r in recs]
        runs[model] = {
            "test_accuracy": acc.mean(0).tolist(), "test_accuracy_std": acc.std(0).tolist(),
            "epoch_seconds": np.mean([r["epoch_seconds"] for r in recs], axis=0).tolist(),
            "epoch_loss": np.mean([r["epoch_loss"] for r in recs], axis=0).tolist(),
            "robustness": {"sigmas": recs[0]["robustness"]["sigmas"], "mean": rob.mean(0).tolist(),
                           "std": rob.std(0).tolist(),
                           "note": "mean over seeds of each seed's mean over repeats; std over seeds"},
            "seeds": {str(s): seeds[s] for s in sorted(seeds, key=int)},
        }
        cm, cs = _mean_std(clean)
        nm, ns = _mean_std(noisy)
        summary["models"][model] = {"clean_mean": cm, "clean_std": cs, "noisy_mean": nm,
                                    "noisy_std": ns, "clean_per_seed": clean,
                                    "noisy_per_seed": noisy}
    base = summary["models"].get("baseline")
    if base is not None:
        for model, m in summary["models"].items():
            if model != "baseline":
                m["clean_minus_baseline"] = m["clean_mean"] - base["clean_mean"]
                m["noisy_minus_baseline"] = m["noisy_mean"] - base["noisy_mean"]
    return runs, summary


def figures(runs, out):
    plot.plot_curves({k: v["test_accuracy"] for k, v in runs.items()}, f"{out}/accuracy.png",
                     ylabel="test accuracy (%)", title="Fashion-MNIST test accuracy (clean)",
                     errors={k: v["test_accuracy_std"] for k, v in runs.items()})
    plot.plot_curves({k: v["epoch_loss"] for k, v in runs.items()}, f"{out}/loss.png",
                     ylabel="training loss (cross-entropy, noisy forward pass)", logy=True,
                     title="Training loss")
    plot.plot_robustness({k: v["robustness"] for k, v in runs.items()}, f"{out}/robustness.png",
                         title="Accuracy under test-time weight noise (mean ± std over seeds)")
    if "learnable" in runs:
        seeds = runs["learnable"]["seeds"]
        traces = {}
        for s, rec in seeds.items():
            tr = rec.get("sigma_trace")
            if not tr:
                continue
            n_layers = len(tr["sigma"][0])
            for l in range(n_layers):
                traces[f"layer {l}, seed {s}"] = [row[l] for row in tr["sigma"]]
            step = tr["step"]
        if traces:
            plot.plot_curves(traces, f"{out}/sigma.png", x=step, xlabel="update",
                             ylabel="learned σ (mean over the layer)", logy=True,
                             title="Learned weight-noise σ during training")


def print_summary(summary):
    rows = []
    for model, m in summary["models"].items():
        rows.append({"model": model, "clean %": f"{m['clean_mean']:.2f} ± {m['clean_std']:.2f}",
                     f"σ={summary['eval_sigma']:g} %": f"{m['noisy_mean']:.2f} ± {m['noisy_std']:.2f}",
                     "Δclean": f"{m.get('clean_minus_baseline', 0.0):+.2f}",
                     "Δnoisy": f"{m.get('noisy_minus_baseline', 0.0):+.2f}"})
    print(experiment.format_table(rows), flush=True)


def main(argv=None):
    args = parse_args(argv)
    experiment.setup(args)
    per_seed = {m: {} for m in args.models}
    if args.merge:
        for folder in args.merge:
            with open(os.path.join(folder, "results.json")) as f:
                doc = json.load(f)
            for model, run in doc["runs"].items():
                per_seed.setdefault(model, {}).update({int(s): r for s, r in run["seeds"].items()})
        per_seed = {m: v for m, v in per_seed.items() if v}
    else:
        data_ = experiment.load_data(args)
        for seed in range(args.seed, args.seed + args.n_seeds):
            for model in args.models:
                rec = train_one(model, seed, data_, args)
                per_seed[model][seed] = rec
                k = _grid_index(rec["robustness"]["sigmas"], args.eval_sigma)
                print(f"seed {seed} {model:9s} clean {rec['test_accuracy'][-1]:.2f}%  "
                      f"σ={args.eval_sigma:g}: {rec['robustness']['mean'][k]:.2f} ± "
                      f"{rec['robustness']['std'][k]:.2f}%  "
                      f"({np.mean(rec['epoch_seconds']):.1f} s/epoch)", flush=True)
    runs, summary = summarize(per_seed, args)
    print_summary(summary)
    experiment.write_results(args.out, vars(args), runs, summary=summary)
    figures(runs, args.out)
    print(f"\nwrote {args.out}/results.json and figures")
    return runs, summary


if __name__ == "__main__":
    main()
