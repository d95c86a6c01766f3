"""The table of bionp's public entry points and what each argument accepts.

One :class:`Entry` per callable; one :class:`Arg` per argument it checks.  The
suite in ``test_bad_input.py`` draws bad values for every ``Arg`` (and valid
ones, for the other side of the boundary) from its ``kind``:

``int``    an int in ``[lo, hi]`` (``bool`` and floats refused)
``real``   a finite real in ``[lo, hi]`` (open ends with ``lo_open``/``hi_open``)
``name``   one of ``choices`` (strings; an unknown name is refused)
``rng``    a seed int >= 0, a ``bionp.random.Generator`` or ``None``
``dtype``  ``"float32"``/``"float64"`` (or ``None`` when ``none_ok``)
``floats`` a float array of shape ``shape(ctx)`` (``ranks``: other ranks accepted)
``labels`` int labels ``(n,)`` in ``0 … n_classes - 1``
``root``   a dataset folder (``data.load``); ``file``: a checkpoint / store / sweep file
``size``   a draw's size; ``grads``: an optimiser's gradients; ``grid``/``configs``: sweep
           parameter grids and config lists; ``gstate``: a ``Generator.get_state()`` dict

``ctx`` is built afresh for every example (a small network, optimiser,
generator ...); ``call(ctx, kw)`` calls the entry with ``defaults(ctx)`` updated
by ``kw``.  Everything reachable from ``ctx`` is compared before and after a
refused call: weights, optimiser moments, generator counters, files.

``COVERED`` maps each public package to the names the table covers;
``EXCLUDED`` lists the names deliberately left out, each with its reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

import bionp as bnp
from bionp import checkpoint, data, dendritic, hebbian, nn, optim, plasticity, rules, sweep
from bionp.random import Generator


@dataclasses.dataclass
class Arg:
    name: str
    kind: str
    lo: Any = None
    hi: Any = None
    lo_open: bool = False
    hi_open: bool = False
    none_ok: bool = False
    choices: tuple = ()
    shape: Callable | None = None  # ctx -> valid shape (floats); ctx -> (n, n_classes) (labels)
    ranks: tuple = ()  # other ranks accepted (floats)
    valid: Any = None  # hypothesis strategy of valid values, overrides the kind's
    bad: Any = None  # extra hypothesis strategy of bad values
    names: tuple = ()  # other words a message may use for this argument
    valid_span: float | None = None  # valid values drawn in [lo, lo + span] (cheap calls)
    array_ok: bool = False  # numbers: arrays and lists broadcast (NumPy's loc/scale/low/high);
    # for ints: tuples are valid too (the (h, w) pairs of kernel_size, stride, padding)
    free: tuple = (0,)  # floats: axes whose length may vary (the others are checked)
    checks: tuple = ("rank", "shape", "dtype", "nonfinite", "empty", "type")  # floats: refusals


@dataclasses.dataclass
class Entry:
    name: str
    call: Callable  # (ctx, kwargs) -> result
    args: list
    defaults: Callable = lambda ctx: {}
    ctx: Callable = lambda: {}
    covers: tuple = ()  # public names this row stands for


def _gen():
    return {"rng": Generator(7)}


def _net(n_in=6, n_out=3):
    return nn.MLP([n_in, 5, n_out], activation="tanh", rng=0)


def _x(shape, seed=0):
    return Generator(seed).normal(0, 1, shape).astype(np.float32)


def _fit_ctx():
    net = _net()
    return {"net": net, "opt": optim.SGD(net, lr=0.1), "rng": Generator(3),
            "x": _x((8, 6)), "y": np.arange(8) % 3, "t": _x((8, 3), 1)}


def _kw(fn):
    """``call`` for a plain function or class: ``fn(**defaults | kw)``."""
    return lambda ctx, kw: fn(**kw)


# ------------------------------------------------------------------------------------- layers
X = Arg("x", "floats", shape=lambda c: (4, 6))
ENTRIES: list[Entry] = [
    Entry("nn.Dense", _kw(nn.Dense), [
        Arg("in_features", "int", lo=1, valid_span=8),
        Arg("out_features", "int", lo=1, valid_span=8),
        Arg("init_scale", "real", lo=0, valid_span=1),
        Arg("init", "name", choices=("normal", "uniform", "xavier_uniform", "xavier_normal",
                                      "he_uniform", "he_normal")),
        Arg("bias_init", "name", choices=("zeros", "normal", "uniform")),
        Arg("rng", "rng"), Arg("dtype", "dtype", none_ok=True)],
        defaults=lambda c: {"in_features": 3, "out_features": 2, "rng": c["rng"]}, ctx=_gen,
        covers=("Dense",)),
    Entry("nn.Conv2d", _kw(nn.Conv2d), [
        Arg("in_channels", "int", lo=1, valid_span=3),
        Arg("out_channels", "int", lo=1, valid_span=3),
        Arg("kernel_size", "int", lo=1, valid_span=3, array_ok=True),
        Arg("stride", "int", lo=1, valid_span=3, array_ok=True),
        Arg("padding", "int", lo=0, valid_span=3, array_ok=True),
        Arg("init_scale", "real", lo=0, valid_span=1), Arg("rng", "rng")],
        defaults=lambda c: {"in_channels": 1, "out_channels": 2, "kernel_size": 3,
                            "rng": c["rng"]}, ctx=_gen, covers=("Conv2d",)),
    Entry("nn.MaxPool2d", _kw(nn.MaxPool2d), [
        Arg("kernel_size", "int", lo=1, valid_span=4, array_ok=True),
        Arg("stride", "int", lo=1, none_ok=True, valid_span=4, array_ok=True)],
        defaults=lambda c: {"kernel_size": 2}, covers=("MaxPool2d",)),
    Entry("nn.AvgPool2d", _kw(nn.AvgPool2d), [
        Arg("kernel_size", "int", lo=1, valid_span=4, array_ok=True),
        Arg("stride", "int", lo=1, none_ok=True, valid_span=4, array_ok=True)],
        defaults=lambda c: {"kernel_size": 2}, covers=("AvgPool2d",)),
    Entry("nn.BatchNorm1d", _kw(nn.BatchNorm1d), [
        Arg("num_features", "int", lo=1, valid_span=8),
        Arg("eps", "real", lo=0, lo_open=True, valid_span=1),
        Arg("momentum", "real", lo=0, hi=1)],
        defaults=lambda c: {"num_features": 3}, covers=("BatchNorm1d",)),
    Entry("nn.BatchNorm2d", _kw(nn.BatchNorm2d), [
        Arg("num_features", "int", lo=1, valid_span=8),
        Arg("eps", "real", lo=0, lo_open=True, valid_span=1),
        Arg("momentum", "real", lo=0, hi=1)],
        defaults=lambda c: {"num_features": 3}, covers=("BatchNorm2d",)),
    Entry("nn.ResidualBlock", _kw(nn.ResidualBlock), [
        Arg("in_channels", "int", lo=1, valid_span=2),
        Arg("stride", "int", lo=1, valid_span=2),
        Arg("shortcut", "name", choices=("A", "B")),
        Arg("bn_momentum", "real", lo=0, hi=1, names=("momentum",)), Arg("rng", "rng")],
        defaults=lambda c: {"in_channels": 2, "out_channels": 2, "rng": c["rng"],
                            "shortcut": "B"}, ctx=_gen, covers=("ResidualBlock",)),
    Entry("nn.NoisyDense", _kw(nn.NoisyDense), [
        Arg("in_features", "int", lo=1, valid_span=8),
        Arg("sigma", "real", lo=0, valid_span=1),
        Arg("mode", "name", choices=("additive", "multiplicative"), names=("mode",)),
        Arg("rng", "rng"), Arg("noise_rng", "rng")],
        defaults=lambda c: {"in_features": 3, "out_features": 2, "rng": c["rng"]}, ctx=_gen,
        covers=("NoisyDense", "NOISE_MODES")),
    Entry("nn.LearnableNoiseDense", _kw(nn.LearnableNoiseDense), [
        Arg("log_var_init", "real"),
        Arg("sigma_reg", "real", lo=0, valid_span=1),
        Arg("mode", "name", choices=("additive", "multiplicative")), Arg("rng", "rng")],
        defaults=lambda c: {"in_features": 3, "out_features": 2, "rng": c["rng"]}, ctx=_gen,
        covers=("LearnableNoiseDense",)),
    Entry("nn.NoisyWeights", lambda c, kw: nn.NoisyWeights(c["layer"], **kw), [
        Arg("sigma", "real", lo=0, valid_span=1),
        Arg("mode", "name", choices=("additive", "multiplicative")), Arg("rng", "rng")],
        ctx=lambda: {"layer": nn.Dense(3, 2, rng=0)}, covers=("NoisyWeights",)),
    Entry("nn.MLP", _kw(nn.MLP), [
        Arg("init_scale", "real", lo=0, valid_span=1),
        Arg("activation", "name", choices=("sigmoid", "tanh", "relu", "identity",
                                            "leaky_relu"), none_ok=True),
        Arg("rng", "rng"), Arg("dtype", "dtype", none_ok=True)],
        defaults=lambda c: {"sizes": [3, 4, 2], "rng": c["rng"]}, ctx=_gen,
        covers=("MLP", "Sequential", "get_activation", "ACTIVATIONS")),
    Entry("dendritic.DendriticLayer", _kw(dendritic.DendriticLayer), [
        Arg("in_dim", "int", lo=2, valid_span=4),  # >= n_dendrite_inputs (2 here)
        Arg("n_neurons", "int", lo=1, valid_span=4),
        Arg("n_dendrite_inputs", "int", lo=1, hi=3),
        Arg("n_dendrites", "int", lo=1, valid_span=3),
        Arg("percentage_resample", "real", lo=0, hi=1),
        Arg("steps_to_resample", "int", lo=1, valid_span=100),
        Arg("leaky_slope", "real", lo=0, hi=1),
        Arg("dendrite_activation", "name", choices=("leaky_relu", "relu", "tanh", "identity")),
        Arg("resampling", "name", choices=("weakest", "probabilistic")),
        Arg("path", "name", choices=("auto", "gather", "dense")),
        Arg("rng", "rng"), Arg("dtype", "dtype", none_ok=True)],
        defaults=lambda c: {"in_dim": 4, "n_neurons": 3, "n_dendrite_inputs": 2,
                            "n_dendrites": 2, "rng": c["rng"]}, ctx=_gen,
        covers=("DendriticLayer",)),
    # ------------------------------------------------------------------------------ rules
    Entry("rules.FeedbackAlignment", _kw(rules.FeedbackAlignment), [
        Arg("scale", "real", lo=0, lo_open=True, none_ok=True, valid_span=1),
        Arg("init", "name", choices=("normal", "uniform")), Arg("rng", "rng")],
        covers=("FeedbackAlignment", "Backprop", "Rule", "RULES")),
    Entry("rules.DirectFeedbackAlignment", _kw(rules.DirectFeedbackAlignment), [
        Arg("scale", "real", lo=0, lo_open=True, none_ok=True, valid_span=1),
        Arg("init", "name", choices=("normal", "uniform")), Arg("rng", "rng"),
        Arg("blocks", "name", choices=("backprop", "feedback")),
        Arg("maps", "name", choices=("full", "channel")),
        Arg("at", "name", choices=("output", "next_input"))],
        covers=("DirectFeedbackAlignment",)),
    Entry("rules.KolenPollack", _kw(rules.KolenPollack), [
        Arg("weight_decay", "real", lo=0, valid_span=1),
        Arg("feedback_lr", "real", lo=0, lo_open=True, none_ok=True, valid_span=1),
        Arg("feedback_lr_scale", "real", lo=0, lo_open=True, valid_span=1),
        Arg("feedback_optimizer", "name", choices=("mirror", "sgd")), Arg("rng", "rng"),
        Arg("align_decay", "real", lo=0, valid_span=1),
        Arg("align_steps", "int", lo=0, valid_span=8)],
        defaults=lambda c: {"feedback_optimizer": "sgd"}, covers=("KolenPollack",)),
    Entry("rules.SignSymmetry", _kw(rules.SignSymmetry), [
        Arg("variant", "name", choices=("usf", "brsf", "frsf")), Arg("rng", "rng")],
        covers=("SignSymmetry",)),
    Entry("rules.WeightMirror", _kw(rules.WeightMirror), [
        Arg("mirror_steps", "int", lo=1, valid_span=8),
        Arg("noise", "real", lo=0, lo_open=True, valid_span=1),
        Arg("mirror_lr", "real", lo=0, lo_open=True, none_ok=True, valid_span=1),
        Arg("mirror_batch_size", "int", lo=1, valid_span=64),
        Arg("warmup_steps", "int", lo=0, valid_span=8), Arg("rng", "rng"),
        Arg("noise_dist", "name", choices=("normal", "uniform", "rademacher")),
        Arg("balance", "real", lo=1, valid_span=8)],
        covers=("WeightMirror",)),
    Entry("rules.WeightPerturbation", _kw(rules.WeightPerturbation), [
        Arg("sigma", "real", lo=0, lo_open=True, valid_span=1),
        Arg("n_samples", "int", lo=1, valid_span=8),
        Arg("noise", "name", choices=("gaussian", "rademacher")), Arg("rng", "rng")],
        covers=("WeightPerturbation",)),
    Entry("rules.NodePerturbation", _kw(rules.NodePerturbation), [
        Arg("sigma", "real", lo=0, lo_open=True, valid_span=1),
        Arg("n_samples", "int", lo=1, valid_span=8),
        Arg("estimator", "name", choices=("unbiased", "tutorial")), Arg("rng", "rng")],
        covers=("NodePerturbation",)),
    Entry("rules.get_rule", lambda c, kw: rules.get_rule(**kw), [
        Arg("name", "name", choices=tuple(rules.RULES),
            names=("rule",))],
        defaults=lambda c: {"name": "fa"}, covers=("get_rule",)),
    # -------------------------------------------------------------------------- optimisers
    Entry("optim.SGD", lambda c, kw: optim.SGD(c["net"], **kw), [
        Arg("lr", "real", lo=0, lo_open=True, valid_span=1),
        Arg("momentum", "real", lo=0, hi=1, hi_open=True),
        Arg("weight_decay", "real", lo=0, valid_span=1)],
        defaults=lambda c: {"lr": 0.1}, ctx=lambda: {"net": _net()},
        covers=("SGD", "Optimizer")),
    Entry("optim.Adam", lambda c, kw: optim.Adam(c["net"], **kw), [
        Arg("lr", "real", lo=0, lo_open=True, valid_span=1),
        Arg("eps", "real", lo=0, lo_open=True, valid_span=1),
        Arg("weight_decay", "real", lo=0, valid_span=1)],
        ctx=lambda: {"net": _net()}, covers=("Adam",)),
    # -------------------------------------------------------------------------- plasticity
    Entry("plasticity.FuzzyLearningRates", _kw(plasticity.FuzzyLearningRates), [
        Arg("nu", "real", lo=0, hi=1, hi_open=True), Arg("rng", "rng")],
        covers=("FuzzyLearningRates", "fuzzy_learning_rates", "Transform",
                "GradientTransform", "WeightOperation", "TRANSFORMS", "DEFAULT_TRANSFORMS")),
    Entry("plasticity.Crystallize", _kw(plasticity.Crystallize), [
        Arg("threshold", "real", lo=0, lo_open=True, valid_span=1), Arg("dampening", "real", lo=0, hi=1, lo_open=True, hi_open=True),
        Arg("every", "int", lo=1, valid_span=100)], covers=("Crystallize", "crystallize")),
    Entry("plasticity.Rejuvenation", _kw(plasticity.Rejuvenation), [
        Arg("dre", "real", lo=0, lo_open=True, valid_span=10),
        Arg("every", "int", lo=1, valid_span=100)], covers=("Rejuvenation",)),
    Entry("plasticity.L1Regularization", _kw(plasticity.L1Regularization), [
        Arg("strength", "real", lo=0, valid_span=1)], covers=("L1Regularization",)),
    Entry("plasticity.SynapticScaling", _kw(plasticity.SynapticScaling), [
        Arg("strength", "real", lo=0, valid_span=1)], covers=("SynapticScaling",)),
    Entry("plasticity.VolumeDependentLR", _kw(plasticity.VolumeDependentLR), [
        Arg("base_lr", "real", lo=0, lo_open=True, valid_span=1),
        Arg("stability", "real", lo=0, valid_span=5),
        Arg("lr_variability", "real", lo=0, valid_span=1),
        Arg("redraw_every", "int", lo=1, valid_span=100)], covers=("VolumeDependentLR",)),
    Entry("plasticity.WeightSplitting", lambda c, kw: plasticity.WeightSplitting(c["d"], **kw), [
        Arg("gamma", "int", lo=1, valid_span=3, names=("Gamma",))],
        defaults=lambda c: {"gamma": 2}, ctx=lambda: {"d": nn.Dense(3, 12, rng=0)},
        covers=("WeightSplitting",)),
    Entry("plasticity.DalesPrinciple", _kw(plasticity.DalesPrinciple), [Arg("rng", "rng")],
          covers=("DalesPrinciple", "BioConfig", "BioConverter", "Chain", "chain", "convert")),
    # ---------------------------------------------------------------------------- hebbian
    Entry("hebbian.KrotovHopfield", _kw(hebbian.KrotovHopfield), [
        Arg("n_hidden", "int", lo=3, valid_span=8), Arg("p", "real", lo=1, valid_span=3),
        Arg("k", "int", lo=2, hi=3), Arg("delta", "real", lo=0, valid_span=1),
        Arg("lr", "real", lo=0, valid_span=1),
        Arg("precision", "real", lo=0, lo_open=True, valid_span=1),
        Arg("batch_size", "int", lo=1, valid_span=100), Arg("rng", "rng")],
        defaults=lambda c: {"n_hidden": 4}, covers=("KrotovHopfield",)),
    Entry("hebbian.HebbianStack", _kw(hebbian.HebbianStack), [
        Arg("power", "real", lo=0, lo_open=True, valid_span=5), Arg("rng", "rng")],
        defaults=lambda c: {"layers": [3]}, covers=("HebbianStack",)),
    Entry("hebbian.BioClassifier", lambda c, kw: hebbian.BioClassifier(c["kh"], **kw), [
        Arg("n_classes", "int", lo=2, valid_span=8), Arg("power", "real", lo=0, lo_open=True,
                                                        valid_span=5),
        Arg("m", "real", lo=1, valid_span=5), Arg("beta", "real", lo=0, lo_open=True,
                                                  valid_span=1),
        Arg("lr", "real", lo=0, lo_open=True, valid_span=1),
        Arg("batch_size", "int", lo=1, valid_span=100), Arg("epochs", "int", lo=1, valid_span=10),
        Arg("loss", "name", choices=("power", "cross_entropy")),
        Arg("optimizer", "name", choices=("adam", "sgd")), Arg("rng", "rng")],
        ctx=lambda: {"kh": hebbian.KrotovHopfield(3, rng=0)}, covers=("BioClassifier",)),
]

# ------------------------------------------------------------------------- methods on state
_FORWARD_X = Arg("x", "floats", shape=lambda c: (4, 6))
ENTRIES += [
    Entry("Sequential.forward", lambda c, kw: c["net"].forward(**kw), [_FORWARD_X],
          ctx=_fit_ctx, covers=("Sequential.forward",)),
    Entry("Rule.gradients (FA)", lambda c, kw: rules.FeedbackAlignment(rng=c["rng"]).gradients(
        c["net"], kw.get("x", c["x"]), kw.get("target", c["y"]), nn.CrossEntropyLoss()), [
        Arg("x", "floats", shape=lambda c: (8, 6), free=()),
        Arg("target", "labels", shape=lambda c: (8, 3), names=("labels",))], ctx=_fit_ctx,
        covers=("Rule.gradients", "CrossEntropyLoss", "Loss", "LOSSES", "get_loss")),
    Entry("Rule.gradients (WP)", lambda c, kw: rules.WeightPerturbation(rng=c["rng"]).gradients(
        c["net"], kw.get("x", c["x"]), kw.get("target", c["t"]), nn.MSELoss()), [
        Arg("x", "floats", shape=lambda c: (8, 6), free=()),
        Arg("target", "floats", shape=lambda c: (8, 3), free=(), checks=(
            "rank", "shape", "nonfinite", "empty", "type"))], ctx=_fit_ctx, covers=("MSELoss",)),
    Entry("Optimizer.step", lambda c, kw: c["opt"].step(kw["grads"]), [
        Arg("grads", "grads", names=("gradient",))], ctx=_fit_ctx, covers=("Optimizer.step",)),
    Entry("KrotovHopfield.partial_fit",
          lambda c, kw: c["kh"].partial_fit(**{"x_batch": c["x"], **kw}), [
              Arg("x_batch", "floats", shape=lambda c: (8, 6)),
              Arg("lr", "real", lo=0, none_ok=True, valid_span=0.1)],
          ctx=lambda: {**_fit_ctx(), "kh": _fitted_kh()}, covers=("partial_fit",)),
    Entry("KrotovHopfield.fit", lambda c, kw: c["kh"].fit(**{"x": c["x"], "epochs": 1, **kw}), [
        Arg("x", "floats", shape=lambda c: (8, 6)),
        Arg("epochs", "int", lo=1, valid_span=1)],
        ctx=lambda: {**_fit_ctx(), "kh": _fitted_kh()}, covers=("fit",)),
    Entry("Trainer.fit", lambda c, kw: c["tr"].fit(**{"x": c["x"], "target": c["y"],
                                                      "epochs": 1, **kw}), [
        Arg("x", "floats", shape=lambda c: (8, 6), free=()),
        Arg("target", "labels", shape=lambda c: (8, 3), names=("labels",)),
        Arg("epochs", "int", lo=0, valid_span=1, none_ok=True)],
        ctx=lambda: _trainer_ctx(), covers=("Trainer",)),
]


def _fitted_kh():
    kh = hebbian.KrotovHopfield(4, rng=0, batch_size=4, progress=False)
    kh.partial_fit(_x((4, 6), 5))
    return kh


def _trainer_ctx():
    from bionp.train import Trainer

    c = _fit_ctx()
    c["tr"] = Trainer(c["net"], rules.Backprop(), c["opt"], nn.CrossEntropyLoss(), batch_size=4,
                      rng=c["rng"], progress=False)
    return c


# ---------------------------------------------------------------------- data helpers
_X2 = Arg("x", "floats", shape=lambda c: (12, 4))
ENTRIES += [
    Entry("data.load", lambda c, kw: data.load(**kw), [
        Arg("name", "name", choices=("mnist", "fashion-mnist", "cifar10", "fashion-mnist-small"),
            names=("dataset",), valid=__import__("hypothesis").strategies.just(
                "fashion-mnist-small")),
        Arg("split", "name", choices=("train", "test")),
        Arg("dtype", "dtype", none_ok=True), Arg("root", "root")],
        defaults=lambda c: {"name": "fashion-mnist-small", "split": "test"},
        covers=("load", "load_uint8", "load_images", "available_datasets", "DATASET_NAMES",
                "load_info", "cache_dir")),
    Entry("data.one_hot", lambda c, kw: data.one_hot(**{"y": c["y"], "n_classes": 3, **kw}), [
        Arg("y", "labels", shape=lambda c: (8, 3), names=("labels",), checks=("range", "float",
                                                                             "2d", "type")),
        Arg("n_classes", "int", lo=3, valid_span=5, none_ok=True),
        Arg("dtype", "dtype", none_ok=True)], ctx=_fit_ctx, covers=("one_hot",)),
    Entry("data.standardize", lambda c, kw: data.standardize(**{"x_train": c["x"], **kw}), [
        Arg("x_train", "floats", shape=lambda c: (8, 6), free=(0, 1), ranks=(3, 4, 5)),
        Arg("eps", "real", lo=0, valid_span=1)], ctx=_fit_ctx, covers=("standardize",)),
    Entry("data.normalize_rows", lambda c, kw: data.normalize_rows(**{"x": c["x"], **kw}), [
        Arg("x", "floats", shape=lambda c: (8, 6), free=(0, 1),
            checks=("rank", "dtype", "nonfinite", "type")),
        Arg("eps", "real", lo=0, valid_span=1)],
        ctx=_fit_ctx, covers=("normalize_rows",)),
    Entry("data.stratified_subset", lambda c, kw: data.stratified_subset(
        **{"x": c["x"], "y": c["y"], "n": 3, "rng": c["rng"], **kw}), [
        Arg("x", "floats", shape=lambda c: (8, 6), ranks=(1, 3, 4, 5), free=(1,),
            checks=("rank", "shape", "empty", "type")),
        Arg("n", "int", lo=1, hi=8), Arg("rng", "rng")], ctx=_fit_ctx,
        covers=("stratified_subset",)),
    Entry("data.train_val_split", lambda c, kw: data.train_val_split(
        **{"x": c["x"], "y": c["y"], "val_fraction": 0.5, "rng": c["rng"], **kw}), [
        Arg("val_fraction", "real", lo=0, hi=1, lo_open=True, hi_open=True,
            valid=__import__("hypothesis").strategies.floats(0.375, 0.625)), Arg("rng", "rng")], ctx=_fit_ctx,
        covers=("train_val_split",)),
    Entry("data.iterate_batches", lambda c, kw: list(data.iterate_batches(
        **{"x": c["x"], "y": c["y"], "rng": c["rng"], **kw})), [
        Arg("x", "floats", shape=lambda c: (8, 6), ranks=(1, 3, 4, 5), free=(1,),
            checks=("rank", "shape", "empty", "type")),
        Arg("batch_size", "int", lo=1, valid_span=10), Arg("rng", "rng")], ctx=_fit_ctx,
        covers=("iterate_batches", "BatchIterator")),
    Entry("data.pad_images", lambda c, kw: data.pad_images(**{"x": c["img"], "pad": 1, **kw}), [
        Arg("x", "floats", shape=lambda c: (2, 1, 4, 4), free=(0, 1, 2, 3),
            checks=("rank", "type")),
        Arg("pad", "int", lo=0, valid_span=3)], ctx=lambda: {"img": _x((2, 1, 4, 4))}, covers=("pad_images",)),
    Entry("data.random_crop_flip", lambda c, kw: data.random_crop_flip(
        **{"x": c["img"], "rng": c["rng"], "pad": 1, **kw}), [
        Arg("x", "floats", shape=lambda c: (2, 1, 4, 4), free=(0, 1, 2, 3),
            checks=("rank", "type")),
        Arg("pad", "int", lo=0, valid_span=3), Arg("rng", "rng")], ctx=lambda: {"img": _x((2, 1, 4, 4)), "rng": Generator(1)},
        covers=("random_crop_flip",)),
    Entry("data.standardize_channels", lambda c, kw: data.standardize_channels(
        **{"x_train": c["img"], **kw}), [
        Arg("x_train", "floats", shape=lambda c: (2, 3, 4, 4), free=(0, 1, 2, 3)),
        Arg("eps", "real", lo=0, valid_span=1)],
        ctx=lambda: {"img": _x((2, 3, 4, 4))}, covers=("standardize_channels",
                                                        "apply_channel_stats")),
    Entry("data.as_images", lambda c, kw: data.as_images(**{"x": c["x"], "shape": (1, 2, 3),
                                                            **kw}), [
        Arg("x", "floats", shape=lambda c: (8, 6), ranks=(4,), checks=("rank", "shape",
                                                                        "type"))], ctx=_fit_ctx,
        covers=("as_images", "flatten")),
]

# ---------------------------------------------------------------- checkpoints, sweeps, globals
ENTRIES += [
    Entry("checkpoint.load_checkpoint", lambda c, kw: checkpoint.load_checkpoint(
        kw["path"], c["net"]), [Arg("path", "file")], ctx=_fit_ctx,
        covers=("load_checkpoint", "save_checkpoint", "read_checkpoint")),
    Entry("sweep.grid", lambda c, kw: sweep.grid(**kw), [Arg("param_grid", "grid", names=("grid",))],
          covers=("grid",)),
    Entry("sweep.run", lambda c, kw: sweep.run(**{"fn": _sweep_fn, "configs": [{"a": 1}],
                                                   "verbose": False, "progress": False,
                                                   "store": c["store"], **kw}), [
        Arg("repeats", "int", lo=1, valid_span=2), Arg("rng", "rng"),
        Arg("blas_threads", "int", lo=1, none_ok=True, valid_span=2),
        Arg("timeout", "real", lo=0, lo_open=True, valid_span=30),
        Arg("configs", "configs", names=("config",))], ctx=lambda: {"store": None}, covers=("run",)),
    Entry("sweep.load_sweep_file", lambda c, kw: sweep.load_sweep_file(kw["path"]), [
        Arg("path", "file")], covers=("load_sweep_file",)),
    Entry("sweep.read_store", lambda c, kw: sweep.read_store(kw["path"]), [
        Arg("path", "file", bad="store")], covers=("read_store", "load_results")),
    Entry("bionp.use", lambda c, kw: bnp.use(**kw), [
        Arg("name", "name", choices=("numpy",), names=("backend",))],
        defaults=lambda c: {"name": "numpy"}, covers=("use", "backend")),
    Entry("bionp.set_dtype", lambda c, kw: _set_dtype(**kw), [
        Arg("dtype", "dtype")], defaults=lambda c: {"dtype": "float32"},
        covers=("set_dtype", "get_dtype", "default_dtype")),
]


def _set_dtype(dtype):
    try:
        return bnp.set_dtype(dtype)
    finally:
        bnp.set_dtype("float32")


def _sweep_fn(config, seed):
    return {"accuracy": float(config.get("a", 0))}


# ----------------------------------------------------------------------------- the generator
_G = lambda: {"g": Generator(11)}  # noqa: E731
_SIZE = Arg("size", "size")
ENTRIES += [
    Entry("random.Generator", lambda c, kw: Generator(**kw), [
        Arg("seed", "int", lo=0, none_ok=True)],
        covers=("Generator", "default_rng", "check_rng", "random")),
    Entry("Generator.normal", lambda c, kw: c["g"].normal(**{"size": 3, **kw}), [
        Arg("loc", "real", array_ok=True),
        Arg("scale", "real", lo=0, valid_span=10, array_ok=True), _SIZE], ctx=_G,
        covers=("Generator.normal", "Generator.standard_normal")),
    Entry("Generator.uniform", lambda c, kw: c["g"].uniform(**{"size": 3, **kw}), [
        Arg("low", "real", array_ok=True), Arg("high", "real", array_ok=True), _SIZE],
        ctx=_G, covers=("Generator.uniform", "Generator.random")),
    Entry("Generator.integers", lambda c, kw: c["g"].integers(**{"low": 0, "high": 5,
                                                                  "size": 3, **kw}), [
        Arg("low", "int", hi=4), Arg("high", "int", lo=1, valid_span=100), _SIZE], ctx=_G,
        covers=("Generator.integers",)),
    Entry("Generator.permutation", lambda c, kw: c["g"].permutation(**kw), [
        Arg("n", "int", lo=0, valid_span=50, array_ok=True)], defaults=lambda c: {"n": 5}, ctx=_G,
        covers=("Generator.permutation",)),
    Entry("Generator.choice", lambda c, kw: c["g"].choice(**{"a": 5, "size": 3, **kw}), [
        Arg("a", "int", lo=1, valid_span=50, array_ok=True), _SIZE], ctx=_G, covers=("Generator.choice",)),
    Entry("Generator.spawn", lambda c, kw: c["g"].spawn(**kw), [
        Arg("n_children", "int", lo=0, valid_span=8)], defaults=lambda c: {"n_children": 2},
        ctx=_G, covers=("Generator.spawn",)),
    Entry("Generator.set_state", lambda c, kw: c["g"].set_state(**kw), [
        Arg("state", "gstate")], ctx=_G, covers=("Generator.set_state", "Generator.get_state")),
]

#: public names deliberately without a row, and why (exception and warning classes of every
#: package are left out too: they are raised, not called with user input)
_REASONS = {
    "plotting": "matplotlib figures of results already computed; no numerical input beyond "
                "what the computing entry points check",
    "functional core": "array functions behind the classes of the table, called by them with "
                       "checked input (hebbian_currents, noisy_weight, l1_penalty ...)",
    "constant": "a table, module or version string: read, not called",
    "backend helper": "takes any array of any backend (exercised by every row); the backend "
                      "switch itself is the bionp.use row",
    "cluster": "starts Dask processes; its arguments are tested in test_sweep.py",
    "analysis": "reads results a run wrote (sweep records, trainer histories); tested with "
                "test_sweep.py / test_dendritic_analysis.py",
    "layer object": "activation layers and Flatten take no argument to check; their input is "
                    "checked by the network's forward (the Sequential.forward row)",
}
EXCLUDED = {
    "bionp": {"__version__": "constant", "asarray": "backend helper", "asnumpy": "backend helper",
              "available_backends": "backend helper", "backend_name": "backend helper",
              "get_array_module": "backend helper", "get_xp": "backend helper",
              "to_scalar": "backend helper",
              "preserved_defaults": "backend helper"},  # bad names: test_backend.py
    "bionp.nn": {**dict.fromkeys(["Activation", "Flatten", "Identity", "LeakyReLU", "ReLU",
                                  "Sigmoid", "Softmax", "Tanh"], "layer object"),
                 "ForwardCache": "functional core", "init": "constant", "models": "constant",
                 **dict.fromkeys(["is_dense_like", "output_delta", "output_loss",
                                  "prepare_target"], "functional core")},
    "bionp.plasticity": dict.fromkeys([
        "crystallization_mask", "dalian_init", "enforce_dales_principle", "l1_penalty", "l1_reg",
        "mean_rate", "rejuvenate_weights", "replacement_probability", "scale_grad",
        "scaling_penalty", "sign_violations", "split_weights", "synapse_volume", "volume",
        "volume_dependent_lr"], "functional core"),
    "bionp.hebbian": dict.fromkeys([
        "competition", "draw_weights", "hebbian_currents", "krotov_hopfield_update",
        "layer_features", "power_loss", "power_loss_grad", "power_weights",
        "random_features_baseline", "readout_forward", "readout_gradients"], "functional core"),
    "bionp.dendritic": {**dict.fromkeys([
        "after_step", "calculate_eigenvalues", "count_parameters", "draw_unconnected_inputs",
        "prune_probability", "resample_probabilistic", "resample_weakest",
        "reset_optimizer_state", "trainer_callback"], "functional core"),
        **dict.fromkeys(["plot_dendritic_weights_full_model",
                         "plot_dendritic_weights_single_image", "plot_eigenvalue_spectrum"],
                        "plotting")},
    "bionp.rules": {"ALIASES": "constant"},
    "bionp.random": {"named_stream": "functional core", "philox4x64_10": "functional core",
                     "get_num_threads": "backend helper", "set_num_threads": "backend helper"},
    "bionp.checkpoint": {"state_arrays": "functional core", "load_state_arrays":
                         "functional core", "setup_record": "functional core"},
    "bionp.sweep": {"BLAS_ENV": "constant", "best": "analysis", "best_per_group": "analysis",
                    "cached": "analysis", "canonical_json": "functional core",
                    "config_hash": "functional core", "execute_task": "functional core",
                    "format_summary": "analysis", "gpu_cluster": "cluster",
                    "local_cluster": "cluster", "metric_value": "analysis",
                    "plot_metric_vs_param": "plotting", "plot_rule_comparison": "plotting",
                    "summarize": "analysis", "task_seed": "functional core"},
}

#: the packages whose ``__all__`` the table must cover
PACKAGES = {
    "bionp": bnp, "bionp.nn": nn, "bionp.rules": rules, "bionp.optim": optim,
    "bionp.plasticity": plasticity, "bionp.hebbian": hebbian, "bionp.dendritic": dendritic,
    "bionp.data": data, "bionp.random": __import__("bionp.random").random,
    "bionp.checkpoint": checkpoint, "bionp.sweep": sweep,
}
