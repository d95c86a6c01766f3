"""Hebbian learning with competing hidden units (Krotov & Hopfield, PNAS 2019).

* :class:`KrotovHopfield` — one layer trained by the Hebbian/anti-Hebbian rule
  (optionally with Dale's principle on its inputs);
* :class:`HebbianStack` — layers trained one after the other, each on the
  previous layer's features;
* :class:`BioClassifier` — the paper's supervised readout on the frozen features
  (its losses and gradients as functions: :mod:`bionp.hebbian.readout`);
* :func:`draw_weights` — the learned weights as an image grid (grey or RGB).
"""

from bionp.hebbian.classifier import BioClassifier, random_features_baseline
from bionp.hebbian.krotov_hopfield import (
    KrotovHopfield,
    competition,
    hebbian_currents,
    krotov_hopfield_update,
    power_weights,
)
from bionp.hebbian.plotting import draw_weights
from bionp.hebbian.readout import power_loss, power_loss_grad, readout_forward, readout_gradients
from bionp.hebbian.stack import HebbianStack, layer_features

__all__ = [
    "BioClassifier",
    "HebbianStack",
    "KrotovHopfield",
    "competition",
    "draw_weights",
    "hebbian_currents",
    "krotov_hopfield_update",
    "layer_features",
    "power_loss",
    "power_loss_grad",
    "power_weights",
    "random_features_baseline",
    "readout_forward",
    "readout_gradients",
]
