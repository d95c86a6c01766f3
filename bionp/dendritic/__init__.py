"""Dendritic layers with synaptic resampling, and tools to analyse them.

* :class:`DendriticLayer` — neurons with several dendrites, each sampling a few
  inputs, learned soma weights, hand-derived backward pass
  (:mod:`bionp.dendritic.layer`);
* synaptic resampling of the weakest (or probabilistically chosen) synapses
  (:mod:`bionp.dendritic.resampling`);
* parameter counts, eigenvalue spectra and weight plots
  (:mod:`bionp.dendritic.analysis`; matplotlib/scipy imported when called).
"""

from bionp.dendritic.analysis import (
    calculate_eigenvalues,
    count_parameters,
    plot_dendritic_weights_full_model,
    plot_dendritic_weights_single_image,
    plot_eigenvalue_spectrum,
)
from bionp.dendritic.layer import DendriticLayer, after_step, trainer_callback
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
