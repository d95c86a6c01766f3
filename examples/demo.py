"""bionp's main demo (``make demo``): four learning rules on the bundled Fashion-MNIST subset.

Trains the same 784-256-10 ReLU network from the same seed with backprop,
feedback alignment, direct feedback alignment and Kolen-Pollack (cross-entropy,
SGD with momentum) on ``fashion-mnist-small`` (10,000 training / 2,000 test
images shipped inside the package: no network needed), prints a table and
writes ``OUT/results.json`` and ``OUT/demo.png`` (test accuracy per epoch).
"""

from __future__ import annotations

import numpy as np

import bionp as bnp
from bionp import experiment, nn, optim, plot, rules
from bionp.train import Trainer

RULES = {
    "backprop": lambda seed: rules.Backprop(),
    "feedback_alignment": lambda seed: rules.FeedbackAlignment(rng=seed),
    "direct_feedback_alignment": lambda seed: rules.DirectFeedbackAlignment(rng=seed),
    "kolen_pollack": lambda seed: rules.KolenPollack(weight_decay=1e-4, rng=seed),
}


def main(argv=None):
    ap = experiment.example_parser(__doc__.splitlines()[0], epochs=3, out="results/demo")
    ap.add_argument("--hidden", type=int, default=256, help="hidden units")
    ap.add_argument("--lr", type=float, default=0.02, help="SGD learning rate")
    args = ap.parse_args(argv)
    experiment.setup(args)
    from bionp.data import standardize

    x_tr, y_tr, x_te, y_te = experiment.load_data(args)
    x_tr, x_te, _ = standardize(x_tr, x_te)
    print(f"{args.data}: {x_tr.shape[0]} training / {x_te.shape[0]} test images, "
          f"backend {bnp.backend_name()}, {bnp.get_dtype().name}\n")
    runs, table = {}, []
    for name, make in RULES.items():
        net = nn.MLP([x_tr.shape[1], args.hidden, 10], activation="relu", init="he_normal",
                     rng=bnp.random.named_stream(args.seed, "init"))
        trainer = Trainer(net, make(bnp.random.named_stream(args.seed, name)), optim.SGD(net, lr=args.lr, momentum=0.9),
                          nn.CrossEntropyLoss(), batch_size=64,
                          rng=bnp.random.named_stream(args.seed, "batches"),
                          progress=False if args.quiet else None)
        h = trainer.fit(x_tr, y_tr, epochs=args.epochs, x_test=x_te, labels_test=y_te, target_test=y_te)
        runs[name] = {"test_accuracy": h.test_accuracy, "epoch_seconds": h.epoch_seconds,
                      "test_loss": h.test_loss, "stopped": h.stopped}
        table.append({"rule": name, "test accuracy %": h.test_accuracy[-1] if h.test_accuracy else float("nan"),
                      "test loss": h.test_loss[-1] if h.test_loss else float("nan"),
                      "seconds/epoch": float(np.mean(h.epoch_seconds)) if h.epoch_seconds else float("nan")})
    print(experiment.format_table(table))
    experiment.write_results(args.out, vars(args), runs)
    plot.plot_curves({k: v["test_accuracy"] for k, v in runs.items()}, f"{args.out}/demo.png",
                     ylabel="test accuracy (%)", title=f"{args.data}: learning rules compared")
    print(f"\nwrote {args.out}/results.json and {args.out}/demo.png")
    return runs


if __name__ == "__main__":
    main()
