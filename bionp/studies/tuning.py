"""Grid search: train a model factory on every combination of a parameter grid.

:func:`hyperparameter_tuning` trains a model factory on every combination of a
parameter grid through :func:`bionp.sweep.run` (serially by default, or on a
Dask cluster with ``scheduler=``; resumable with ``store=``) and returns a
:class:`TuningResult` with the best parameters and the whole table.  Each task
trains with :func:`bionp.studies.runs.train_model` (the Trainer) on the data of
:func:`bionp.studies.datasets.load_dataset`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import warnings
from typing import Callable

from bionp.studies.datasets import load_dataset
from bionp.studies.runs import (
    _check_positive,
    _seed_streams,
    _split_built,
    make_optimizer,
    make_rule,
    train_model,
)

__all__ = ["TRAINING_PARAMS", "TuningResult", "hyperparameter_tuning"]

#: Grid parameters that :func:`hyperparameter_tuning` itself understands (the factory
#: may take them too): the optimiser's learning rate, the batch size, the optimiser's
#: name and the learning rule's name.
TRAINING_PARAMS = ("lr", "batch_size", "optimizer", "rule")


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

    Parameters
    ----------
    best_params : dict
        The grid's values of the best configuration.
    best_score : float
        Its metric (mean over repeats).
    metric : str
        The metric ranked by.
    mode : {"max", "min"}
        Whether larger or smaller is better.
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
