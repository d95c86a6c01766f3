"""Dendritic layers with synaptic resampling, and tools to analyse them.

* :class:`DendriticLayer` — neurons with several dendrites, each sampling a few
  inputs, learned soma weights, hand-derived backward pass
  (:mod:`bionp.dendritic.layer`);
* synaptic resampling of the weakest (or probabilistically chosen) synapses
  (:mod:`bionp.dendritic.resampling`);
* parameter counts, eigenvalue spectra and weight plots
  (:mod:`bionp.dendritic.analysis`; matplotlib/scipy imported when called);
* :func:`compare_models` and :func:`hyperparameter_tuning` — train and compare
  models, grid search through :mod:`bionp.sweep` (:mod:`bionp.dendritic.compare`).
"""

from bionp.dendritic.analysis import (
    calculate_eigenvalues,
    count_parameters,
    plot_dendritic_weights_full_model,
    plot_dendritic_weights_single_image,
    plot_eigenvalue_spectrum,
)
from bionp.dendritic.compare import (
    Comparison,
    ModelConfig,
    TuningResult,
    compare_models,
    hyperparameter_tuning,
)
from bionp.dendritic.hooks import after_step, trainer_callback
from bionp.dendritic.layer import DendriticLayer
from bionp.dendritic.resampling import (
    draw_unconnected_inputs,
    prune_probability,
    resample_probabilistic,
    resample_weakest,
    reset_optimizer_state,
)

__all__ = [
    "Comparison",
    "DendriticLayer",
    "ModelConfig",
    "TuningResult",
    "after_step",
    "calculate_eigenvalues",
    "compare_models",
    "count_parameters",
    "draw_unconnected_inputs",
    "hyperparameter_tuning",
    "plot_dendritic_weights_full_model",
    "plot_dendritic_weights_single_image",
    "plot_eigenvalue_spectrum",
    "prune_probability",
    "resample_probabilistic",
    "resample_weakest",
    "reset_optimizer_state",
    "trainer_callback",
]
