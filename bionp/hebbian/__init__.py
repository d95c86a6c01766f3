"""Hebbian learning with competing hidden units (Krotov & Hopfield, PNAS 2019).

* :class:`KrotovHopfield` — one layer trained by the Hebbian/anti-Hebbian rule
  (optionally with Dale's principle on its inputs);
* :class:`HebbianStack` — layers trained one after the other, each on the
  previous layer's features;
* :func:`draw_weights` — the learned weights as an image grid (grey or RGB).
"""

from bionp.hebbian.krotov_hopfield import (
    KrotovHopfield,
    competition,
    hebbian_currents,
    krotov_hopfield_update,
    power_weights,
)
from bionp.hebbian.plotting import draw_weights
from bionp.hebbian.stack import HebbianStack, layer_features

__all__ = [
    "HebbianStack",
    "KrotovHopfield",
    "competition",
    "draw_weights",
    "hebbian_currents",
    "krotov_hopfield_update",
    "layer_features",
    "power_weights",
]
