"""Bio transformations on Fashion-MNIST: each mechanism alone and the default chain, with backprop and FA.

A 784-500-10 ReLU MLP (cross-entropy on the logits, standardised inputs, SGD
with Nesterov momentum and a cosine learning-rate decay) is trained with
backprop and with feedback alignment: once plainly (``baseline``), once with
each bio transformation alone, and once with the full default chain of
:class:`bionp.plasticity.BioConfig` (fuzzy learning rates, crystallisation,
volume-dependent learning rates).  ``--transforms`` picks a
subset of the variants.

Writes ``OUT/results.json`` (per run: test accuracy and seconds per epoch, the
share of crystallised weights, histograms of the first layer's |W| before and
after training), ``OUT/accuracy_<rule>.png``, ``OUT/weights_<rule>.png`` and
``OUT/crystallized.png``, and prints a table (final accuracy, seconds).
"""

from __future__ import annotations

import math
import time

import numpy as np

import bionp as bnp
from bionp import asnumpy, experiment, nn, optim, plasticity, plot, rules
from bionp.train import Trainer

RULES = ("backprop", "feedback_alignment")
#: variant name -> BioConfig overrides (transforms=() switches the default chain off)
VARIANTS = {
    "baseline": None,
    "fuzzy_learning_rates": {"transforms": ("fuzzy_learning_rates",)},
    "crystallize": {"transforms": ("crystallize",)},
    # the seed's scale (the default): the rate multiplies the optimiser's lr by ~base_lr
    # (see bionp.plasticity.volume)
    "volume_dependent_lr": {"transforms": ("volume_dependent_lr",)},
    # divided by base_lr: the optimiser's lr keeps its meaning
    "volume_dependent_lr_relative": {"transforms": ("volume_dependent_lr",), "lr_relative": True},
    "scale_grad": {"transforms": ("scale_grad",)},
    "l1_reg": {"transforms": ("l1_reg",)},
    "rejuvenate_weights": {"transforms": ("rejuvenate_weights",)},
    "dales_principle": {"transforms": (), "apply_dales_principle": True},
    "weight_splitting": {"transforms": (), "weight_splitting_Gamma": 2},
    "default_chain": {},
}
HIST_BINS = np.linspace(0.0, 1.0, 51)


def parse_args(argv=None):
    ap = experiment.example_parser(__doc__.splitlines()[0], epochs=10, data="fashion-mnist", seed=0,
                                   out="results/bio_transformations")
    ap.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES), help="learning rules")
    ap.add_argument("--transforms", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                    help="variants to train: baseline (no transform), one transform alone, "
                         "volume_dependent_lr (the seed's factor, ~base_lr times the optimiser's "
                         "lr), volume_dependent_lr_relative (lr_relative=True: divided by "
                         "base_lr), dales_principle (Dalian init + "
                         "enforcement), weight_splitting (Gamma, see --gamma) or default_chain "
                         "(BioConfig())")
    ap.add_argument("--hidden", type=int, default=500, help="hidden units")
    ap.add_argument("--batch-size", type=int, default=100, help="minibatch size")
    ap.add_argument("--lr", type=float, default=0.05, help="peak SGD learning rate (cosine decay)")
    ap.add_argument("--momentum", type=float, default=0.9, help="SGD (Nesterov) momentum")
    ap.add_argument("--gamma", type=int, default=2, help="weight_splitting_Gamma of the weight_splitting variant")
    ap.add_argument("--rejuvenate-every", type=int, default=None,
                    help="steps between rejuvenations (None: the steps of one epoch)")
    return ap.parse_args(argv)


def make_rule(name, seed):
    return rules.Backprop() if name == "backprop" else rules.FeedbackAlignment(rng=seed)


def _hist(net):
    w = np.abs(asnumpy(net.layers[0].W)).ravel()
    counts, _ = np.histogram(np.minimum(w, HIST_BINS[-1]), bins=HIST_BINS)
    return counts.tolist()


def train_one(args, rule_name, variant, data, steps_per_epoch):
    x_tr, y_tr, x_te, y_te = data
    net = nn.MLP([x_tr.shape[1], args.hidden, 10], activation="relu", init="he_normal",
                 rng=bnp.random.named_stream(args.seed, "init"))
    overrides = VARIANTS[variant]
    config = None
    if overrides is not None:
        overrides = dict(overrides)
        if variant == "weight_splitting":
            overrides["weight_splitting_Gamma"] = args.gamma
        overrides.setdefault("rejuvenate_every", args.rejuvenate_every or steps_per_epoch)
        config = plasticity.BioConfig(**overrides)
        plasticity.convert(net, config, rng=bnp.random.named_stream(args.seed, "plasticity"))
    hist_before = _hist(net)
    rule = make_rule(rule_name, bnp.random.named_stream(args.seed, rule_name))
    opt = optim.SGD(net, lr=args.lr, momentum=args.momentum, nesterov=True)

    def schedule(epoch):
        return 0.5 * args.lr * (1 + math.cos(math.pi * epoch / max(args.epochs, 1)))

    chain = getattr(net, "plasticity", None)
    cryst = chain.find("crystallize") if chain is not None else None
    diagnostics = {}
    if cryst is not None:
        diagnostics["crystallized_fraction"] = lambda trainer, epoch: cryst.crystallized_fraction()
    trainer = Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=args.batch_size,
                      rng=bnp.random.named_stream(args.seed, "batches"), schedule=schedule, diagnostics=diagnostics, progress=False if args.quiet else None)
    t0 = time.perf_counter()
    h = trainer.fit(x_tr, y_tr, epochs=args.epochs, x_test=x_te, labels_test=y_te)
    run = {"test_accuracy": h.test_accuracy, "epoch_seconds": h.epoch_seconds, "epoch_loss": h.epoch_loss,
           "seconds": time.perf_counter() - t0, "stopped": h.stopped,
           "weight_hist_before": hist_before, "weight_hist_after": _hist(net),
           "bio_config": None if config is None else config.to_dict()}
    if cryst is not None:
        run["crystallized_fraction"] = h.diagnostics["crystallized_fraction"]
    dale = chain.find("enforce_dales_principle") if chain is not None else None
    if dale is not None:
        run["dale_violations"] = dale.violations(net)
    return run


def main(argv=None):
    args = parse_args(argv)
    experiment.setup(args)
    if args.gamma < 1:
        raise SystemExit(f"--gamma must be >= 1, got {args.gamma}")
    if args.rejuvenate_every is not None and args.rejuvenate_every < 1:
        raise SystemExit(f"--rejuvenate-every must be >= 1, got {args.rejuvenate_every}")
    from bionp.data import standardize

    x_tr, y_tr, x_te, y_te = experiment.load_data(args)
    x_tr, x_te, _ = standardize(x_tr, x_te)
    steps_per_epoch = x_tr.shape[0] // args.batch_size
    runs, table = {}, []
    for rule_name in args.rules:
        for variant in args.transforms:
            run = train_one(args, rule_name, variant, (x_tr, y_tr, x_te, y_te), steps_per_epoch)
            runs[f"{rule_name}/{variant}"] = run
            acc = run["test_accuracy"][-1] if run["test_accuracy"] else float("nan")
            row = {"rule": rule_name, "variant": variant, "final acc %": acc,
                   "best acc %": max(run["test_accuracy"]) if run["test_accuracy"] else float("nan"),
                   "seconds": run["seconds"]}
            table.append(row)
            print(experiment.format_table([row]).splitlines()[-1], flush=True)
    print()
    print(experiment.format_table(table))
    experiment.write_results(args.out, vars(args), runs, table=table)
    figures = []
    for rule_name in args.rules:
        curves = {k.split("/", 1)[1]: v["test_accuracy"] for k, v in runs.items() if k.startswith(rule_name + "/")}
        figures.append(plot.plot_curves(curves, f"{args.out}/accuracy_{rule_name}.png",
                                        ylabel="test accuracy (%)", title=f"Fashion-MNIST, {rule_name}"))
        figures.append(_plot_hists({k.split("/", 1)[1]: v for k, v in runs.items()
                                    if k.startswith(rule_name + "/")}, f"{args.out}/weights_{rule_name}.png",
                                   rule_name))
    cr = {k: v["crystallized_fraction"] for k, v in runs.items() if "crystallized_fraction" in v}
    if cr:
        figures.append(plot.plot_curves({k: [100 * c for c in v] for k, v in cr.items()},
                                        f"{args.out}/crystallized.png",
                                        ylabel="crystallised weights (%)", title="Share of crystallised weights"))
    print(f"\nwrote {args.out}/results.json and {len(figures)} figures")
    return runs


def _plot_hists(runs, path, rule_name):
    plt = plot.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    centres = 0.5 * (HIST_BINS[1:] + HIST_BINS[:-1])
    first = next(iter(runs.values()), None)
    if first is not None:
        ax.step(centres, first["weight_hist_before"], where="mid", color="k", lw=2, label="before (init)")
    for name, run in runs.items():
        ax.step(centres, run["weight_hist_after"], where="mid", label=f"after: {name}", alpha=0.8)
    ax.set_yscale("log")
    ax.set_xlabel(f"|W| of the first layer (last bin: >= {HIST_BINS[-1]:g})")
    ax.set_ylabel("weights")
    ax.set_title(f"Weight magnitudes before/after training, {rule_name}")
    ax.legend(fontsize=6, ncol=2)
    return plot.save_figure(fig, path)


if __name__ == "__main__":
    main()
