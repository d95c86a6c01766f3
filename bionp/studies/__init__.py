"""Studies: experiments that train several models with the Trainer and compare them.

A study is a face of the library (it sits above the Trainer, the sweep runner and
the plots), not part of a model: :mod:`bionp.dendritic` and :mod:`bionp.hebbian`
keep the models and their learning rules.

* :func:`compare_models`, :class:`ModelConfig`, :class:`Comparison` — train every
  model for each seed, table of final accuracies (mean ± std), parameter counts,
  seconds, bar chart and curves (:mod:`bionp.studies.comparison`);
* :func:`hyperparameter_tuning`, :class:`TuningResult` — grid search over a model
  factory through :mod:`bionp.sweep`, serial or on Dask, resumable
  (:mod:`bionp.studies.tuning`);
* :func:`load_dataset` — a named data set or given arrays, a class-balanced
  subset, per-feature or global standardisation (:mod:`bionp.studies.datasets`);
* :func:`train_model`, :func:`make_optimizer`, :func:`make_rule` — one training
  run from names (:mod:`bionp.studies.runs`).
"""

from bionp.studies.comparison import Comparison, ModelConfig, compare_models
from bionp.studies.datasets import load_dataset
from bionp.studies.runs import make_optimizer, make_rule, train_model
from bionp.studies.tuning import TRAINING_PARAMS, TuningResult, hyperparameter_tuning

__all__ = [
    "Comparison",
    "ModelConfig",
    "TRAINING_PARAMS",
    "TuningResult",
    "compare_models",
    "hyperparameter_tuning",
    "load_dataset",
    "make_optimizer",
    "make_rule",
    "train_model",
]
