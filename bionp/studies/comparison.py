"""Train several models on one data set and compare them over seeds.

:func:`compare_models` trains every configuration (a name, a model or a model
factory, an optimiser, a learning rule) with :class:`bionp.train.Trainer` for
each seed and returns a :class:`Comparison`: per model the test accuracy after
every epoch (per seed, mean and sample standard deviation over seeds), the
number of learned parameters (:func:`bionp.dendritic.count_parameters`:
synapses, not dense masks) and the training seconds; :meth:`Comparison.plot`
draws the table as a bar chart and the training curves (PNG).  The data come
from :func:`bionp.studies.datasets.load_dataset`, each run from
:func:`bionp.studies.runs.train_model`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from bionp.studies.datasets import load_dataset
from bionp.studies.runs import (
    _as_list,
    _check_positive,
    _is_network,
    _resample_reset_hooks,
    _seed_streams,
    _split_built,
    make_optimizer,
    make_rule,
    train_model,
)

__all__ = ["ModelConfig", "Comparison", "compare_models"]


@dataclasses.dataclass
class ModelConfig:
    """One model of a comparison.

    Parameters
    ----------
    name : str
    model : callable ``model(seed) -> net`` or ``-> (net, optimizer)``, or a built network
        A factory is called once per seed with an int seed (use it for every
        ``rng=`` of the layers). A built network (or ``(net, optimizer)``) can
        only be trained once, so it allows a single seed.
    optimizer : "adam", "sgd", a callable ``optimizer(net) -> Optimizer`` or an Optimizer
        Ignored when ``model`` returns its own optimiser.
    lr : float
        Learning rate of a named optimiser.
    optimizer_kwargs : dict
        More arguments of a named optimiser (``momentum``, ``weight_decay`` …).
    rule : str, Rule or callable ``rule(seed) -> Rule``
        A name of :data:`bionp.rules.RULES` (``"backprop"``, ``"feedback_alignment"``…).
    rule_kwargs : dict
        Arguments of a named rule.
    batch_size : int, optional
        Overrides :func:`compare_models`'s ``batch_size``.
    reset_optimizer_state : bool
        Zero the optimiser's state (momenta, Adam's moments) of resampled synapses.
    """

    name: str
    model: Any
    optimizer: Any = "adam"
    lr: float = 1e-3
    optimizer_kwargs: dict = dataclasses.field(default_factory=dict)
    rule: Any = "backprop"
    rule_kwargs: dict = dataclasses.field(default_factory=dict)
    batch_size: int | None = None
    reset_optimizer_state: bool = False


_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig))


def _as_config(cfg, i: int) -> ModelConfig:
    if isinstance(cfg, ModelConfig):
        out = cfg
    elif isinstance(cfg, Mapping):
        unknown = sorted(set(cfg) - set(_CONFIG_FIELDS))
        if unknown:
            raise ValueError(f"config {i}: unknown key(s) {unknown}; a model config takes "
                             f"{list(_CONFIG_FIELDS)}")
        missing = [k for k in ("name", "model") if k not in cfg]
        if missing:
            raise ValueError(f"config {i}: missing {missing}; e.g. {{'name': 'dendritic', "
                             "'model': lambda seed: Sequential([...]), 'lr': 1e-3}")
        out = ModelConfig(**cfg)
    elif isinstance(cfg, (tuple, list)) and len(cfg) in (2, 3):
        # the seed's (model, optimizer, name) triples, or (model, name)
        out = ModelConfig(name=cfg[-1], model=cfg[0],
                          **({"optimizer": cfg[1]} if len(cfg) == 3 else {}))
    else:
        raise TypeError(f"config {i} must be a ModelConfig, a dict or a (model, optimizer, name) "
                        f"tuple, got {type(cfg).__name__}")
    if not isinstance(out.name, str) or not out.name:
        raise ValueError(f"config {i}: name must be a non-empty str, got {out.name!r}")
    if not (callable(out.model) or hasattr(out.model, "layers")
            or (isinstance(out.model, tuple) and len(out.model) == 2)):
        raise TypeError(f"config {out.name!r}: model must be a factory model(seed), a network or "
                        f"(network, optimizer), got {type(out.model).__name__}")
    return out


def _mean_std(rows: Sequence[Sequence[float]]):
    """Per-epoch mean and sample std over seeds (runs that stopped early: shorter rows)."""
    n = min((len(r) for r in rows), default=0)
    if n == 0:
        return [], []
    a = np.asarray([list(r)[:n] for r in rows], dtype=np.float64)
    std = a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(n)
    return a.mean(axis=0).tolist(), std.tolist()


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_models` returns.

    Parameters
    ----------
    runs : dict name -> dict
        ``test_accuracy`` (per epoch, mean over seeds, %), ``test_accuracy_std``,
        ``test_accuracy_per_seed`` (list per seed), ``final_test_accuracy`` (per
        seed), ``epoch_seconds`` (mean per epoch), ``seconds`` (per seed),
        ``n_params``, ``seeds``.
    table : list of dict
        One row per model: final test accuracy mean and std, best epoch's mean,
        parameters, seconds per epoch and in total (mean over seeds).
    epochs : int
        Epochs each model was trained.
    dataset : str
        The data set's name.
    models : dict name -> list of trained networks (one per seed; with ``keep_models=True``)
    """

    runs: dict
    table: list
    epochs: int
    dataset: str
    models: dict = dataclasses.field(default_factory=dict)

    def format_table(self) -> str:
        from bionp.experiment import format_table

        return format_table(self.table)

    def plot(self, out_dir, prefix: str = "") -> list:
        """``OUT/{prefix}comparison.png`` (final test accuracy, mean ± std over seeds, with the
        parameter counts) and ``OUT/{prefix}curves.png`` (test accuracy per epoch, ± std)."""
        from bionp import plot

        os.makedirs(out_dir, exist_ok=True)
        names = list(self.runs)
        labels = {n: f"{n}\n({self.runs[n]['n_params']:,} params)" for n in names}
        final = {labels[n]: r["final_mean"] for n, r in zip(names, self.runs.values())}
        err = {labels[n]: r["final_std"] for n, r in zip(names, self.runs.values())}
        finite = [v for v in final.values() if not math.isnan(v)]
        fig = plot.plot_bars(final, None, errors=err, ylabel="final test accuracy (%)",
                             title=f"{self.dataset}: {self.epochs} epochs")
        ax = fig.axes[0]
        if finite:
            lo = max(0.0, min(finite) - 10.0)
            ax.set_ylim(lo, min(100.0, max(finite) + 3.0))
        for i, n in enumerate(names):
            r = self.runs[n]
            if not math.isnan(r["final_mean"]):
                ax.annotate(f"{r['final_mean']:.2f}", (i, r["final_mean"]), ha="center",
                            va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
        bars = plot.save_figure(fig, os.path.join(out_dir, f"{prefix}comparison.png"))
        curves = os.path.join(out_dir, f"{prefix}curves.png")
        plot.plot_curves({n: r["test_accuracy"] for n, r in self.runs.items()}, curves,
                         errors={n: r["test_accuracy_std"] for n, r in self.runs.items()},
                         ylabel="test accuracy (%)", title=f"{self.dataset}: test accuracy")
        return [bars, curves]


def compare_models(configs, dataset="fashion-mnist-small", epochs: int = 10,
                   batch_size: int = 128, *, seeds: Sequence[int] = (0,), subset: int | None = None,
                   data_root=None, preprocess: str | None = None, loss="cross_entropy",
                   out: str | os.PathLike | None = None, progress: bool | None = None,
                   keep_models: bool = False, verbose: bool = False) -> Comparison:
    """Train every model in ``configs`` for each seed and compare them.

    Parameters
    ----------
    configs : list of :class:`ModelConfig`, dicts with its fields, or ``(model, optimizer, name)``
    dataset : str or ``(x_train, y_train, x_test, y_test)``
        See :func:`load_dataset`. The test set is evaluated after every epoch.
    epochs, batch_size : int
    seeds : sequence of int
        One training run per seed per model: the seed goes to the model factory
        and, through :meth:`bionp.random.Generator.spawn`, to the batch order and
        the rule's generator.
    subset, data_root, preprocess : see :func:`load_dataset`
    loss : str or Loss, default cross-entropy on the logits
    out : folder, optional
        Write the two figures of :meth:`Comparison.plot` there.
    keep_models : bool
        Keep the trained networks in :attr:`Comparison.models` (for weight plots).
    verbose : bool
        Print one line per finished run.

    Returns
    -------
    Comparison
    """
    configs = [_as_config(c, i) for i, c in enumerate(_as_list(configs, "configs"))]
    if not configs:
        raise ValueError("configs is empty: give at least one model to train")
    names = [c.name for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"model names must be unique, got {dup} more than once")
    _check_positive("epochs", epochs, minimum=1)
    _check_positive("batch_size", batch_size)
    seeds = [int(s) for s in _as_list(seeds, "seeds")]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=(0,)")
    data = load_dataset(dataset, subset=subset, data_root=data_root, seed=seeds[0],
                        preprocess=preprocess)
    runs, table, models = {}, [], {}
    for cfg in configs:
        built = not callable(cfg.model) or _is_network(cfg.model)
        if built and len(seeds) > 1:
            raise ValueError(f"config {cfg.name!r}: a built network trains once; give a factory "
                             "model(seed) to train it for several seeds")
        per_seed = []
        for seed in seeds:
            obj = cfg.model if built else cfg.model(seed)
            net, opt = _split_built(obj, f"model of config {cfg.name!r}")
            if opt is None:
                opt = make_optimizer(cfg.optimizer, net, cfg.lr, **cfg.optimizer_kwargs)
            shuffle_rng, rule_rng = _seed_streams(seed)
            rule = make_rule(cfg.rule, rule_rng, **cfg.rule_kwargs)
            if cfg.reset_optimizer_state:
                _resample_reset_hooks(net, opt)
            m = train_model(net, opt, rule, data, epochs=epochs,
                            batch_size=cfg.batch_size or batch_size, rng=shuffle_rng, loss=loss,
                            progress=progress)
            m["seed"] = seed
            per_seed.append(m)
            if keep_models:
                models.setdefault(cfg.name, []).append(net)
            if verbose:
                acc = m["test_accuracy"][-1] if m["test_accuracy"] else float("nan")
                print(f"{cfg.name} seed {seed}: {acc:.2f} % after {len(m['test_accuracy'])} "
                      f"epochs, {m['seconds']:.1f} s", flush=True)
        runs[cfg.name] = _summarise_runs(per_seed)
        r = runs[cfg.name]
        table.append({"model": cfg.name, "final acc %": r["final_mean"],
                      "± std": r["final_std"], "best acc %": r["best_mean"],
                      "parameters": r["n_params"], "s/epoch": r["seconds_per_epoch"],
                      "seconds": r["seconds_mean"], "seeds": len(seeds)})
    name = dataset if isinstance(dataset, str) else "data"
    result = Comparison(runs=runs, table=table, epochs=int(epochs), dataset=name, models=models)
    if out is not None:
        result.plot(out)
    return result


def _summarise_runs(per_seed: list) -> dict:
    curves = [m["test_accuracy"] for m in per_seed]
    mean, std = _mean_std(curves)
    finals = [c[-1] if c else math.nan for c in curves]
    bests = [m["best_test_accuracy"] if m["best_test_accuracy"] is not None else math.nan
             for m in per_seed]
    ep_mean, _ = _mean_std([m["epoch_seconds"] for m in per_seed])
    secs = [m["seconds"] for m in per_seed]
    return {
        "test_accuracy": mean, "test_accuracy_std": std,
        "test_accuracy_per_seed": curves,
        "final_test_accuracy": finals,
        "final_mean": float(np.mean(finals)),
        "final_std": float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0,
        "best_mean": float(np.mean(bests)),
        "epoch_seconds": ep_mean,
        "seconds": secs, "seconds_mean": float(np.mean(secs)),
        "seconds_per_epoch": float(np.mean(ep_mean)) if ep_mean else math.nan,
        "n_params": per_seed[0]["n_params"],
        "n_resamplings": [m["n_resamplings"] for m in per_seed],
        "stopped": [m["stopped"] for m in per_seed],
        "seeds": [m["seed"] for m in per_seed],
    }
