r"""Stacked layers of competing hidden units, trained layer by layer.

Layer :math:`l` is a :class:`~bionp.hebbian.KrotovHopfield` layer trained on the
features of layer :math:`l-1` (layer 1 on the data), one layer after the other,
each to the end before the next starts.  The features a trained layer passes on
are the paper's classifier features, rectified and raised to a power, then
scaled to unit Euclidean norm per sample:

.. math::

    h = \max(x W^\top, 0)^{n}, \qquad x^{(l+1)} = h / \lVert h \rVert_2

(samples whose features are all zero stay zero).  The normalisation keeps the
inputs of every layer on the same scale, so one learning rate fits all layers.
:meth:`HebbianStack.transform` returns the features of the last layer.

Excitatory/inhibitory synapses: ``inhibitory_fraction=f`` gives every layer a
fixed Dale sign per presynaptic (input) unit (see
:mod:`bionp.hebbian.krotov_hopfield`); since features of a trained layer are
non-negative, an inhibitory input unit can only lower the currents of the next
layer.

This follows the layer-wise multi-layer training of the competing-hidden-units
notebook built on Krotov & Hopfield (PNAS 2019).
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from bionp.backend import get_array_module
from bionp.hebbian.krotov_hopfield import KrotovHopfield, _check_number
from bionp.random import Generator, check_rng

__all__ = ["HebbianStack", "layer_features"]


def layer_features(layer: KrotovHopfield, x, power: float = 4.5, normalize: bool = True,
                   chunk_size: int = 8192):
    r"""Features :math:`\max(xW^\top, 0)^n` of a trained layer, unit-norm rows if ``normalize``.

    Computed in chunks of ``chunk_size`` samples into one preallocated output.

    Parameters
    ----------
    layer : KrotovHopfield
        A fitted layer.
    x : array (N, n_in)
    power : float, default 4.5
        :math:`n`.
    normalize : bool, default True
    chunk_size : int, default 8192
    """
    _check_number("chunk_size", chunk_size, low=1, integer=True)
    x = layer._check_input(x)
    xp = get_array_module(layer.weights_)
    W = layer.weights_
    out = xp.empty((x.shape[0], W.shape[0]), dtype=W.dtype)
    tiny = W.dtype.type(xp.finfo(W.dtype).tiny)
    for start in range(0, x.shape[0], chunk_size):
        stop = min(start + chunk_size, x.shape[0])
        h = xp.matmul(x[start:stop], W.T, out=out[start:stop])
        xp.maximum(h, 0, out=h)
        if power != 1:
            xp.power(h, W.dtype.type(power), out=h)
        if normalize:
            norms = xp.sqrt((h * h).sum(axis=1, keepdims=True))
            xp.maximum(norms, tiny, out=norms)
            h /= norms
    return out


class HebbianStack:
    """Layers of :class:`~bionp.hebbian.KrotovHopfield` units trained one after the other.

    Parameters
    ----------
    layers : sequence of int, dict or KrotovHopfield
        One entry per layer: its number of hidden units (the other settings come
        from ``**layer_kwargs``), a dict of ``KrotovHopfield`` arguments (defaults
        from ``**layer_kwargs``), or a ready ``KrotovHopfield``.
    power : float > 0
        Exponent ``n`` of the features passed on, :math:`\\max(xW^\\top, 0)^n`.
    normalize_features : bool
        Scale the features passed on to unit Euclidean norm per sample.
    inhibitory_fraction : float in [0, 1] or None
        Dale's principle for every layer built here (fraction of inhibitory input units).
    rng : int, Generator or None
        Every layer built here gets its own generator spawned from it.
    **layer_kwargs
        Default ``KrotovHopfield`` arguments (``p``, ``k``, ``delta``, ``lr``, ...).

    Attributes
    ----------
    layers_ : list of KrotovHopfield
    """

    def __init__(self, layers: Sequence[Any], *, power: float = 4.5,
                 normalize_features: bool = True, inhibitory_fraction: float | None = None,
                 rng: int | Generator | None = None, **layer_kwargs):
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(f"layers must be a non-empty list of layer sizes, dicts of "
                             f"KrotovHopfield arguments or KrotovHopfield layers; got {layers!r}")
        _check_number("power", power, low=0, low_open=True)
        self.power = float(power)
        self.normalize_features = bool(normalize_features)
        self.inhibitory_fraction = inhibitory_fraction
        self.rng = rng
        self._rng = check_rng(rng)
        children = self._rng.spawn(len(layers))
        built = []
        for i, (spec, child) in enumerate(zip(layers, children)):
            if isinstance(spec, KrotovHopfield):
                built.append(spec)
                continue
            kwargs = dict(layer_kwargs)
            if inhibitory_fraction is not None:
                kwargs["inhibitory_fraction"] = inhibitory_fraction
            if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
                kwargs["n_hidden"] = int(spec)
            elif isinstance(spec, dict):
                kwargs.update(spec)
            else:
                raise TypeError(
                    f"layers[{i}] must be an int, a dict or a KrotovHopfield, got {spec!r}")
            kwargs.setdefault("rng", child)
            built.append(KrotovHopfield(**kwargs))
        self.layers_ = built

    def __len__(self) -> int:
        return len(self.layers_)

    def fit(self, x, epochs: int | Sequence[int] = 1, shuffle: bool = True):
        """Train layer 1 on ``x``, then each next layer on the previous layer's features.

        ``epochs`` is one number for all layers or one per layer.
        """
        if isinstance(epochs, Sequence):
            if len(epochs) != len(self.layers_):
                raise ValueError(f"epochs has {len(epochs)} entries for {len(self.layers_)} layers")
            per_layer = list(epochs)
        else:
            per_layer = [epochs] * len(self.layers_)
        h = x
        for i, (layer, e) in enumerate(zip(self.layers_, per_layer)):
            layer.fit(h, epochs=e, shuffle=shuffle)
            if i + 1 < len(self.layers_):
                h = self._features(layer, h)
        return self

    def _features(self, layer, x):
        return layer_features(layer, x, power=self.power, normalize=self.normalize_features)

    def transform(self, x, n_layers: int | None = None):
        """Features after the first ``n_layers`` layers (default all): ``(n_samples, n_hidden)``."""
        n = len(self.layers_) if n_layers is None else n_layers
        _check_number("n_layers", n, low=1, integer=True)
        if n > len(self.layers_):
            raise ValueError(f"n_layers={n} but the stack has {len(self.layers_)} layers")
        h = x
        for layer in self.layers_[:n]:
            if layer.weights_ is None:
                raise RuntimeError("the stack is not trained yet: call fit(x) first")
            h = self._features(layer, h)
        return h
