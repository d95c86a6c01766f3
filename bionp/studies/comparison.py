r"""Train several models on one data set and compare them; grid search over a model factory.

:func:`compare_models` trains every configuration (a name, a model or a model
factory, an optimiser, a learning rule) with :class:`bionp.train.Trainer` for
each seed and returns a :class:`Comparison`: per model the test accuracy after
every epoch (per seed, mean and sample standard deviation over seeds), the
number of learned parameters (:func:`bionp.dendritic.count_parameters`:
synapses, not dense masks) and the training seconds; :meth:`Comparison.plot`
draws the table as a bar chart and the training curves (PNG).

:func:`hyperparameter_tuning` trains a model factory on every combination of a
parameter grid through :func:`bionp.sweep.run` (serially by default, or on a
Dask cluster with ``scheduler=``; resumable with ``store=``) and returns a
:class:`TuningResult` with the best parameters and the whole table.

Both train with the Trainer, which calls ``net.after_update()`` after every
optimiser step, so dendritic layers resample their synapses during training.
Data are used as given (:func:`bionp.data.load` scales pixels to [0, 1]);
``preprocess="standardize"`` standardises every feature with training-set
statistics, ``preprocess="standardize_global"`` subtracts one mean and divides
by one standard deviation over all training pixels (the original dendritic
implementation's preprocessing, :math:`x \leftarrow (x - \bar x)/s`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bionp.dendritic.analysis import count_parameters

__all__ = ["ModelConfig", "Comparison", "TuningResult", "compare_models",
           "hyperparameter_tuning", "load_dataset", "train_model", "TRAINING_PARAMS"]

#: Grid parameters that :func:`hyperparameter_tuning` itself understands (the factory
#: may take them too): the optimiser's learning rate, the batch size, the optimiser's
#: name and the learning rule's name.
TRAINING_PARAMS = ("lr", "batch_size", "optimizer", "rule")
_PREPROCESS = (None, "none", "standardize", "standardize_global")


# -- data ---------------------------------------------------------------------------------------
def load_dataset(dataset, *, subset: int | None = None, data_root=None, seed: int = 0,
                 preprocess: str | None = None):
    """``(x_train, y_train, x_test, y_test)`` on the active backend.

    Parameters
    ----------
    dataset : str or sequence of 4 arrays
        A name for :func:`bionp.data.load` (``"fashion-mnist"``,
        ``"fashion-mnist-small"``, ``"mnist"`` …) or ``(x_train, y_train, x_test,
        y_test)`` (``x`` of shape ``(N, features)``, ``y`` integer labels).
    subset : int, optional
        A class-balanced subset of this many training samples (seeded by ``seed``).
    preprocess : {None, "standardize", "standardize_global"}
        Per-feature standardisation, or one mean and standard deviation over all
        training values; statistics from the training split only.
    """
    from bionp import data

    if preprocess not in _PREPROCESS:
        raise ValueError(f"preprocess must be None, 'standardize' or 'standardize_global', got "
                         f"{preprocess!r}")
    if isinstance(dataset, str):
        x_tr, y_tr = data.load(dataset, split="train", root=data_root)
        x_te, y_te = data.load(dataset, split="test", root=data_root)
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 4:
        x_tr, y_tr, x_te, y_te = dataset
    else:
        raise TypeError(f"dataset must be a data set name (e.g. 'fashion-mnist') or a tuple "
                        f"(x_train, y_train, x_test, y_test), got {type(dataset).__name__}")
    for name, a in (("x_train", x_tr), ("x_test", x_te)):
        if getattr(a, "ndim", None) != 2:
            raise ValueError(f"{name} must be 2-D (samples, features), got shape "
                             f"{tuple(getattr(a, 'shape', ()))}")
    if subset is not None:
        if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 1:
            raise ValueError(f"subset must be a positive int (training samples), got {subset!r}")
        if subset < x_tr.shape[0]:
            x_tr, y_tr = data.stratified_subset(x_tr, y_tr, int(subset), rng=seed)
    if preprocess == "standardize":
        x_tr, x_te, _ = data.standardize(x_tr, x_te)
    elif preprocess == "standardize_global":
        x_tr, x_te = _standardize_global(x_tr, x_te)
    return x_tr, y_tr, x_te, y_te


def _standardize_global(x_tr, x_te):
    """``(x - mean) / std`` with one mean and one standard deviation of all training values."""
    from bionp.backend import check_same_backend, to_scalar

    xp = check_same_backend(x_tr, x_te, names=("x_train", "x_test"))
    if x_tr.dtype.kind != "f":
        raise ValueError(f"standardize_global needs float data, got {x_tr.dtype}")
    mean = float(to_scalar(xp.mean(x_tr, dtype=xp.float64)))
    std = float(to_scalar(xp.std(x_tr, dtype=xp.float64)))
    if not std > 0:
        raise ValueError("the training data are constant: cannot standardise them")
    dt = x_tr.dtype.type
    return ((x_tr - dt(mean)) * dt(1.0 / std), (x_te - dt(mean)) * dt(1.0 / std))


# -- one model ----------------------------------------------------------------------------------
@dataclasses.dataclass
class ModelConfig:
    """One model of a comparison.

    Attributes
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


def _is_network(obj) -> bool:
    return hasattr(obj, "layers") and hasattr(obj, "forward")


def _split_built(obj, where: str):
    """``(net, optimizer or None)`` from what a factory returned."""
    if isinstance(obj, tuple) and len(obj) == 2 and _is_network(obj[0]):
        return obj[0], obj[1]
    if _is_network(obj):
        return obj, None
    raise TypeError(f"{where} must give a network (with layers and forward) or (network, "
                    f"optimizer), got {type(obj).__name__}")


def make_optimizer(spec, net, lr: float, **kwargs):
    """An optimiser for ``net``: a name (``"adam"``, ``"sgd"``), a callable ``spec(net)`` or
    an optimiser instance (anything with ``step``)."""
    from bionp import optim

    if isinstance(spec, str):
        table = {"adam": optim.Adam, "sgd": optim.SGD}
        key = spec.lower()
        if key not in table:
            raise ValueError(f"unknown optimizer {spec!r}; use 'adam', 'sgd', a callable "
                             "optimizer(net) or an optimiser instance")
        return table[key](net, lr=lr, **kwargs)
    if hasattr(spec, "step"):
        return spec
    if callable(spec):
        return spec(net)
    raise TypeError(f"optimizer must be a name, a callable or an optimiser, got "
                    f"{type(spec).__name__}")


def make_rule(spec, rng=None, **kwargs):
    """A learning rule: a name of :data:`bionp.rules.RULES` (given ``rng=`` if it takes one),
    a :class:`~bionp.rules.Rule` or a callable ``spec(rng)``."""
    from bionp import rules

    if isinstance(spec, str):
        cls = rules.RULES.get(spec.lower().replace("-", "_"))
        if cls is not None and "rng" in inspect.signature(cls).parameters:
            kwargs.setdefault("rng", rng)
        return rules.get_rule(spec, **kwargs)
    if hasattr(spec, "gradients"):
        return spec
    if callable(spec):
        return spec(rng)
    raise TypeError(f"rule must be a name, a Rule or a callable, got {type(spec).__name__}")


def _resample_reset_hooks(net, optimizer) -> None:
    from bionp.dendritic.resampling import reset_optimizer_state

    for layer in net.layers:
        if hasattr(layer, "add_resample_callback"):
            layer.add_resample_callback(
                lambda lay, mask: reset_optimizer_state(optimizer, lay.w, mask))


def train_model(net, optimizer, rule, data, *, epochs: int, batch_size: int, rng=None,
                loss="cross_entropy", progress: bool | None = None) -> dict:
    """Train ``net`` with :class:`bionp.train.Trainer`; JSON-able metrics.

    Returns ``{"test_accuracy": [% per epoch], "test_loss", "epoch_loss",
    "epoch_seconds", "seconds", "best_test_accuracy", "n_params",
    "n_resamplings", "stopped"}``.
    """
    from bionp.nn import get_loss
    from bionp.train import Trainer

    x_tr, y_tr, x_te, y_te = data
    trainer = Trainer(net, rule, optimizer, get_loss(loss), batch_size=batch_size, rng=rng,
                      progress=progress)
    h = trainer.fit(x_tr, y_tr, epochs=epochs, x_test=x_te, labels_test=y_te, target_test=y_te)
    return {
        "test_accuracy": list(h.test_accuracy),
        "test_loss": list(h.test_loss),
        "epoch_loss": list(h.epoch_loss),
        "epoch_seconds": list(h.epoch_seconds),
        "seconds": float(sum(h.epoch_seconds)),
        "best_test_accuracy": max(h.test_accuracy) if h.test_accuracy else None,
        "n_params": count_parameters(net),
        "n_resamplings": int(sum(getattr(layer, "n_resamplings", 0) for layer in net.layers)),
        "stopped": h.stopped,
    }


def _seed_streams(seed: int):
    """Independent generators for shuffling and for the rule, derived from ``seed``."""
    from bionp.random import Generator

    return Generator(seed).spawn(2)


# -- comparison ---------------------------------------------------------------------------------
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

    Attributes
    ----------
    runs : dict name -> dict
        ``test_accuracy`` (per epoch, mean over seeds, %), ``test_accuracy_std``,
        ``test_accuracy_per_seed`` (list per seed), ``final_test_accuracy`` (per
        seed), ``epoch_seconds`` (mean per epoch), ``seconds`` (per seed),
        ``n_params``, ``seeds``.
    table : list of dict
        One row per model: final test accuracy mean and std, best epoch's mean,
        parameters, seconds per epoch and in total (mean over seeds).
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


def _as_list(v, name):
    if isinstance(v, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be a list, got {type(v).__name__}")
    try:
        return list(v)
    except TypeError:
        raise TypeError(f"{name} must be a list, got {type(v).__name__}") from None


def _check_positive(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")


# -- grid search --------------------------------------------------------------------------------
def _factory_params(factory):
    """(names the factory accepts, whether it takes **kwargs, its seed argument's name)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return set(), True, None
    names, var_kw, seed_name = set(), False, None
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.name in ("seed", "rng") and seed_name is None:
                seed_name = p.name
            else:
                names.add(p.name)
    return names, var_kw, seed_name


class _TuningTask:
    """``fn(config, seed)`` for :func:`bionp.sweep.run`: build, train, report (picklable)."""

    def __init__(self, factory, dataset, epochs, batch_size, optimizer, rule, loss, subset,
                 data_root, preprocess, backend, dtype, factory_names, var_kw, seed_name):
        self.factory = factory
        self.dataset = dataset
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.rule = rule
        self.loss = loss
        self.subset = subset
        self.data_root = data_root
        self.preprocess = preprocess
        self.backend = backend
        self.dtype = dtype
        self.factory_names = factory_names
        self.var_kw = var_kw
        self.seed_name = seed_name
        self.params = None if var_kw else sorted(set(factory_names) | set(TRAINING_PARAMS))

    def _data(self):
        if not isinstance(self.dataset, str):
            return load_dataset(self.dataset, subset=self.subset, seed=0,
                                preprocess=self.preprocess)
        from bionp.sweep import cached

        key = ("bionp.studies.tuning", self.backend, self.dtype, self.dataset, self.subset,
               None if self.data_root is None else os.fspath(self.data_root), self.preprocess)
        return cached(key, lambda: load_dataset(self.dataset, subset=self.subset,
                                                data_root=self.data_root, seed=0,
                                                preprocess=self.preprocess))

    def __call__(self, config, seed):
        from bionp.backend import set_dtype, use

        use(self.backend)  # a worker process starts on bionp's defaults
        set_dtype(self.dtype)
        data = self._data()
        kwargs = {k: v for k, v in config.items()
                  if self.var_kw or k in self.factory_names}
        if self.seed_name is not None:
            kwargs[self.seed_name] = int(seed)
        net, opt = _split_built(self.factory(**kwargs), "the factory")
        if opt is None:
            opt = make_optimizer(config.get("optimizer", self.optimizer), net,
                                 float(config.get("lr", 1e-3)))
        shuffle_rng, rule_rng = _seed_streams(int(seed) % (1 << 63))
        rule = make_rule(config.get("rule", self.rule), rule_rng)
        return train_model(net, opt, rule, data, epochs=self.epochs,
                           batch_size=int(config.get("batch_size", self.batch_size)),
                           rng=shuffle_rng, loss=self.loss, progress=False)


_METRICS = ("test_accuracy", "best_test_accuracy", "test_loss", "epoch_loss")


@dataclasses.dataclass
class TuningResult:
    """What :func:`hyperparameter_tuning` returns.

    Attributes
    ----------
    best_params : dict
        The grid's values of the best configuration.
    best_score : float
        Its metric (mean over repeats).
    metric, mode : str
    table : list of dict
        One row per configuration (its parameters, ``mean``, ``std``, ``n`` …
        as :func:`bionp.sweep.summarize` gives), best first.
    records : list of dict
        The sweep's records (every task's metrics, seconds, seed).
    """

    best_params: dict
    best_score: float
    metric: str
    mode: str
    table: list
    records: list

    def format_table(self) -> str:
        from bionp.sweep import format_summary

        return format_summary(self.table)


def hyperparameter_tuning(factory: Callable, param_grid, dataset="fashion-mnist-small",
                          epochs: int = 10, metric: str = "test_accuracy", *,
                          batch_size: int = 128, optimizer="adam", rule="backprop",
                          loss="cross_entropy", mode: str | None = None, repeats: int = 1,
                          rng=0, subset: int | None = None, data_root=None,
                          preprocess: str | None = None, scheduler: str | None = "serial",
                          client=None, n_workers: int | None = None,
                          store: str | os.PathLike | None = None,
                          progress: bool | None = None, verbose: bool = False) -> TuningResult:
    """Grid search: train ``factory(**params)`` for every combination of ``param_grid``.

    Parameters
    ----------
    factory : callable
        ``factory(**params) -> net`` or ``-> (net, optimizer)``, e.g. the seed's
        ``model_factory(lr, n_dendrite_inputs, n_dendrites)``. If it has a
        ``seed`` (or ``rng``) argument it receives the task's seed (from
        ``rng``, the config and the repeat: see :func:`bionp.sweep.run`); without
        one its initialisation is not reproducible.
    param_grid : dict name -> list of values (or a list of such dicts)
        Names must be arguments of ``factory`` or one of :data:`TRAINING_PARAMS`
        (``lr``, ``batch_size``, ``optimizer``, ``rule``: used for training when
        the factory does not consume them — it may also take them). Any other
        name, an empty list or a non-list value is a
        :class:`bionp.sweep.SweepConfigError` (a ``ValueError``) before anything runs.
    dataset, subset, data_root, preprocess : see :func:`load_dataset`
        A data set given by name is loaded once per process (Dask workers load
        their own copy).
    epochs : int
    metric : {"test_accuracy", "best_test_accuracy", "test_loss", "epoch_loss"}
        ``test_accuracy`` and the losses are taken after the last epoch.
    batch_size, optimizer, rule, loss
        Training defaults for the parameters the grid does not set.
    mode : {"max", "min"}, optional
        Default ``"min"`` for losses, ``"max"`` otherwise.
    repeats : int
        Runs per configuration (seeds differ); the table has mean ± std.
    rng : seed of the per-task seeds (:func:`bionp.sweep.run`)
    scheduler, client, n_workers, store, progress
        Passed to :func:`bionp.sweep.run`; ``scheduler="serial"`` by default
        (``None``: a local Dask cluster). ``store`` makes the search resumable.

    Returns
    -------
    TuningResult

    Raises
    ------
    bionp.sweep.SweepConfigError
        Unknown parameter names, an empty grid or an empty list of values.
    RuntimeError
        Every configuration failed (the first error's traceback is in the message);
        if only some failed, they are left out of the table with a warning.
    """
    from bionp import sweep
    from bionp.backend import backend_name, get_dtype

    if not callable(factory):
        raise TypeError(f"factory must be callable factory(**params), got "
                        f"{type(factory).__name__}")
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    if mode is None:
        mode = "min" if metric.endswith("loss") else "max"
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    _check_positive("epochs", epochs, minimum=1)
    _check_positive("batch_size", batch_size)
    configs = sweep.grid(param_grid)
    names, var_kw, seed_name = _factory_params(factory)
    grid_names = list(dict.fromkeys(k for c in configs for k in c))
    # unknown grid names are refused by sweep.run (task.params: the factory's and training's)
    task = _TuningTask(factory, dataset, int(epochs), int(batch_size), optimizer, rule, loss,
                       subset, data_root, preprocess, backend_name(), get_dtype().name, names,
                       var_kw, seed_name)
    records = sweep.run(task, configs, repeats=repeats, rng=rng, scheduler=scheduler,
                        client=client, n_workers=n_workers, store=store, progress=progress,
                        verbose=verbose)
    failed = [r for r in records if r.get("status") != "ok"]
    if len(failed) == len(records):
        raise RuntimeError(f"every configuration failed; the first ({failed[0]['config']}) "
                           f"with:\n{failed[0].get('traceback') or failed[0].get('error')}")
    if failed:
        warnings.warn(f"{len(failed)} of {len(records)} runs failed and are left out: "
                      f"{failed[0]['config']}: {failed[0].get('error')}", RuntimeWarning,
                      stacklevel=2)
    ok = [r for r in records if r.get("status") == "ok"]
    rows = []
    for c in dict.fromkeys(sweep.canonical_json(r["config"]) for r in ok):  # config order
        group = [r for r in ok if sweep.canonical_json(r["config"]) == c]
        rows += sweep.summarize(group, metric, by=list(group[0]["config"]))
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (math.isnan(r["mean"]), 0.0 if math.isnan(r["mean"])
                             else sign * r["mean"]))
    if math.isnan(rows[0]["mean"]):
        raise RuntimeError(f"every configuration gave NaN for {metric!r} (diverged?)")
    best = rows[0]
    best_params = {k: best[k] for k in grid_names if k in best}
    return TuningResult(best_params=best_params, best_score=float(best["mean"]), metric=metric,
                        mode=mode, table=rows, records=records)
