"""Compare the supervised learning rules over seeds and learning rates with bionp.sweep.

Every rule (backprop, feedback alignment, Kolen-Pollack, weight perturbation,
node perturbation) × ``--lrs`` learning rates × ``--repeats`` seeds trains a
784-256-10 ReLU MLP with softmax cross-entropy and SGD with momentum on
Fashion-MNIST, as one task each of a :func:`bionp.sweep.run` sweep: on a local
Dask cluster by default (one single-threaded worker process per core, or
``--workers N``), on an existing cluster with ``--scheduler tcp://HOST:PORT``,
or in this process with ``--scheduler serial``. Every finished task is
appended to ``--store`` (default ``OUT/sweep.jsonl``), so rerunning the same
command after an interruption runs only what is missing.

Writes ``OUT/results.json`` (per rule and learning rate: test accuracy per
epoch, mean and std over seeds), ``OUT/rule_comparison.png`` (final accuracy
of each rule at its best learning rate, error bars = std over seeds) and
``OUT/accuracy_vs_lr.png``.

Workers on other machines find the data through their own ``$BIONP_DATA``.
Run ``python examples/sweep_rules.py --help`` for the options.
"""

from __future__ import annotations

import os

import bionp as bnp
from bionp import experiment, sweep

RULES = ("backprop", "feedback_alignment", "kolen_pollack", "weight_perturbation", "node_perturbation")


def parse_args(argv=None):
    ap = experiment.example_parser(__doc__.splitlines()[0], epochs=3, data="fashion-mnist",
                                   seed=0, out="results/sweep_rules")
    ap.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES), help="rules to compare")
    ap.add_argument("--lrs", nargs="+", type=float, default=[0.01, 0.05], help="learning rates")
    ap.add_argument("--repeats", type=int, default=3, help="seeds per (rule, learning rate)")
    ap.add_argument("--hidden", type=int, default=256, help="hidden units")
    ap.add_argument("--batch-size", type=int, default=100, help="minibatch size")
    ap.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    ap.add_argument("--sigma", type=float, default=1e-3, help="perturbation SD (WP, NP)")
    ap.add_argument("--test-size", type=int, default=None,
                    help="evaluate on this many random test images (default: all)")
    ap.add_argument("--scheduler", default=None,
                    help="'local' (default when Dask is installed), 'serial', tcp://HOST:PORT, "
                         "or a Dask scheduler-file .json")
    ap.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster")
    ap.add_argument("--store", default=None, help="result store (default: OUT/sweep.jsonl)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.workers is not None and args.workers < 1:
        ap.error(f"--workers must be >= 1, got {args.workers}")
    if any(lr <= 0 for lr in args.lrs):
        ap.error(f"--lrs must be positive, got {args.lrs}")
    return args


def make_rule(name, sigma, rng):
    from bionp import rules

    if name == "backprop":
        return rules.Backprop()
    if name == "feedback_alignment":
        return rules.FeedbackAlignment(rng=rng)
    if name == "kolen_pollack":
        return rules.KolenPollack(rng=rng)
    if name == "weight_perturbation":
        return rules.WeightPerturbation(sigma=sigma, rng=rng)
    if name == "node_perturbation":
        return rules.NodePerturbation(sigma=sigma, rng=rng)
    raise ValueError(f"unknown rule {name!r}; expected one of {RULES}")


def _data(config):
    """The (sub)set of the data, loaded once per worker process."""
    from types import SimpleNamespace

    args = SimpleNamespace(data=config["data"], data_root=None, subset=config["subset"],
                           seed=config["data_seed"])
    key = ("sweep_rules", config["backend"], config["dtype"], config["data"], config["subset"],
           config["test_size"], config["data_seed"])
    return sweep.cached(key, lambda: experiment.load_data(args, test_size=config["test_size"]))


def train(config, seed):
    """One task: train one rule at one learning rate from one seed; metrics per epoch."""
    from bionp import nn, optim
    from bionp.train import Trainer

    bnp.use(config["backend"])          # worker processes choose their backend here
    bnp.set_dtype(config["dtype"])
    x_tr, y_tr, x_te, y_te = _data(config)
    net_rng, rule_rng, order_rng = bnp.random.Generator(seed).spawn(3)
    net = nn.MLP([x_tr.shape[1], config["hidden"], 10], activation="relu",
                 output_activation="identity", rng=net_rng)
    rule = make_rule(config["rule"], config["sigma"], rule_rng)
    opt = optim.SGD(net, lr=config["lr"], momentum=config["momentum"])
    trainer = Trainer(net, rule, opt, nn.CrossEntropyLoss(), batch_size=config["batch_size"],
                      rng=order_rng, progress=False)
    h = trainer.fit(x_tr, y_tr, epochs=config["epochs"], x_test=x_te, labels_test=y_te,
                    target_test=y_te)
    return {"test_accuracy": list(h.test_accuracy), "epoch_seconds": list(h.epoch_seconds)}


train.params = ("rule", "lr", "backend", "dtype", "data", "subset", "test_size", "data_seed",
                "hidden", "batch_size", "momentum", "sigma", "epochs")


def main(argv=None):
    args = parse_args(argv)
    experiment.setup(args)
    if args.data_root:  # local worker processes inherit the environment
        os.environ["BIONP_DATA"] = os.path.abspath(args.data_root)
    store = args.store or os.path.join(args.out, "sweep.jsonl")
    defaults = {"backend": args.backend, "dtype": args.dtype, "data": args.data, "subset": args.subset,
                "test_size": args.test_size, "data_seed": args.seed, "hidden": args.hidden,
                "batch_size": args.batch_size, "momentum": args.momentum, "sigma": args.sigma,
                "epochs": args.epochs}
    configs = sweep.grid({"rule": args.rules, "lr": args.lrs})
    records = sweep.run(train, configs, defaults=defaults, repeats=args.repeats, rng=args.seed,
                        store=store, scheduler=args.scheduler, n_workers=args.workers,
                        progress=None if not args.quiet else False)
    ok = [r for r in records if r["status"] == "ok"]
    for r in records:
        if r["status"] != "ok":
            print(f"FAILED {r['config']['rule']} lr={r['config']['lr']} repeat {r['repeat']}: {r['error']}")
    if not ok:
        raise SystemExit(f"every task failed; see the tracebacks in {store}")

    rows = sweep.summarize(ok, "test_accuracy", by=["rule", "lr"])
    print()
    print(sweep.format_summary(rows))
    top = sweep.best(ok, "test_accuracy", by=["rule", "lr"])
    print(f"\nbest: {top['rule']} at lr={top['lr']}: {top['mean']:.2f} ± {top['std']:.2f} % "
          f"(n={top['n']})")

    import numpy as np

    runs = {}
    for rule in args.rules:
        for lr in args.lrs:
            group = [r for r in ok if r["config"]["rule"] == rule and r["config"]["lr"] == lr]
            if not group:
                continue
            acc = np.array([r["metrics"]["test_accuracy"] for r in group], dtype=np.float64)
            sec = np.array([r["metrics"]["epoch_seconds"] for r in group], dtype=np.float64)
            runs[f"{rule}@lr={lr:g}"] = {
                "test_accuracy": acc.mean(axis=0).tolist(),
                "test_accuracy_std": (acc.std(axis=0, ddof=1) if len(group) > 1
                                      else np.zeros(acc.shape[1])).tolist(),
                "test_accuracy_per_seed": acc.tolist(),
                "epoch_seconds": sec.mean(axis=0).tolist(),
                "seeds": [r["seed"] for r in group],
            }
    experiment.write_results(args.out, vars(args), runs, store=store,
                             summary=rows, best={k: top[k] for k in ("rule", "lr", "mean", "std", "n")})
    sweep.plot_rule_comparison(ok, "test_accuracy", os.path.join(args.out, "rule_comparison.png"),
                               ylabel="test accuracy (%)",
                               title="Final test accuracy at each rule's best learning rate")
    sweep.plot_metric_vs_param(ok, "test_accuracy", "lr", os.path.join(args.out, "accuracy_vs_lr.png"),
                               hue="rule", ylabel="test accuracy (%)", title="Accuracy vs learning rate")
    print(f"\nwrote {args.out}/results.json, rule_comparison.png, accuracy_vs_lr.png; records in {store}")
    return records


if __name__ == "__main__":
    main()
