"""Dendritic layers with synaptic resampling, and tools to analyse them.

* :class:`DendriticLayer` — neurons with several dendrites, each sampling a few
  inputs, learned soma weights, hand-derived backward pass
  (:mod:`bionp.dendritic.layer`);
* synaptic resampling of the weakest (or probabilistically chosen) synapses
  (:mod:`bionp.dendritic.resampling`);
* parameter counts, eigenvalue spectra and weight plots
  (:mod:`bionp.dendritic.analysis`; matplotlib/scipy imported when called).

Comparing trained models and grid searches are experiments, not part of the
model: :func:`bionp.studies.compare_models` and
:func:`bionp.studies.hyperparameter_tuning` (formerly here).
"""

from bionp.dendritic.analysis import (
    calculate_eigenvalues,
    count_parameters,
    plot_dendritic_weights_full_model,
    plot_dendritic_weights_single_image,
    plot_eigenvalue_spectrum,
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
    "DendriticLayer",
    "after_step",
    "calculate_eigenvalues",
    "count_parameters",
    "draw_unconnected_inputs",
    "plot_dendritic_weights_full_model",
    "plot_dendritic_weights_single_image",
    "plot_eigenvalue_spectrum",
    "prune_probability",
    "resample_probabilistic",
    "resample_weakest",
    "reset_optimizer_state",
    "trainer_callback",
]

#: Names that lived here before the studies (experiments) moved to :mod:`bionp.studies`.
_MOVED_TO_STUDIES = frozenset({"Comparison", "ModelConfig", "TuningResult", "compare_models",
                               "hyperparameter_tuning"})


def __getattr__(name: str):
    if name in _MOVED_TO_STUDIES:
        raise AttributeError(f"bionp.dendritic.{name} moved to bionp.studies (comparisons and grid "
                             f"searches are experiments, not part of the dendritic model): use "
                             f"`from bionp.studies import {name}`")
    raise AttributeError(f"module 'bionp.dendritic' has no attribute {name!r}")
