r"""The functional core of weight mirrors (:mod:`bionp.rules.weight_mirror`): one mirror
step of one layer and the noise it is driven by, as pure functions on arrays.

A mirror step of layer :math:`l` (Akrout et al. 2019): the layer's inputs fire noise
:math:`\xi` (``(m, *input_shape)``), the layer responds through its own synapses without
its bias, :math:`y = W\xi`, and each feedback synapse changes by the product of the
activities at its two ends, with decay,

.. math::

    B \leftarrow (1 - \lambda) B + \frac{\eta}{m\,c} \odot \sum_{n,p} y_{n,p}\,
    \xi_{n,p}^\top ,

:math:`c` the number of (noise patch, response) pairs each weight sees (1 for a dense
layer; :func:`pair_counts` for a convolution).
"""

from __future__ import annotations

import numpy as np

from bionp import backend_dense
from bionp.backend import get_array_module, to_scalar
from bionp.nn.network import is_dense_like

__all__ = ["mirror_update", "mirror_increment", "half_signs", "pair_counts", "all_finite"]


def _response(layer, xi):
    """:math:`y = W\\xi`: the layer's response to ``xi`` without its bias."""
    params = layer.params()
    over = {"W": params["W"]}
    if params.get("b") is not None:
        over["b"] = get_array_module(xi).zeros_like(params["b"])
    return layer.forward(xi, params=over)


def mirror_update(layer, B, xi, lr: float, decay: float, counts=None):
    r"""One mirror step of one layer: :math:`(1-\lambda)B + \frac{\eta}{m c}\odot\sum_{n,p}
    y_{n,p}\xi_{n,p}^\top` with :math:`y = W\xi` (a new array; ``B`` is left alone).

    ``xi`` is ``(m, *input_shape)``; for a dense layer (:math:`P = 1`)
    :math:`\sum_n y_n\xi_n^\top = y^\top \xi`, for a convolution the correlation of the
    maps over the :math:`P = H'W'` output positions (the layer's weight gradient for input
    ``xi`` and delta ``y``), each weight's sum divided by the number of pairs it saw
    (``counts``, :func:`pair_counts`; computed when not given).

    Parameters
    ----------
    layer : Dense or Conv2D
        The layer (its forward weights :math:`W`).
    B : array
        Feedback weights, shape of ``layer``'s ``W``.
    xi : array
        Mirror inputs :math:`\xi` ``(m, *input_shape)``.
    lr : float
        Mirror learning rate :math:`\eta`.
    decay : float
        Weight decay :math:`\lambda` of ``B``.
    counts : array, optional
        Pairs per weight (:func:`pair_counts`); computed when ``None``.
    """
    G = mirror_increment(layer, xi, lr, counts)
    G += B * B.dtype.type(1.0 - decay)
    return G


def mirror_increment(layer, xi, lr: float, counts=None, out=None):
    r"""The Hebbian part of a mirror step, :math:`\frac{\eta}{m c}\odot\sum_{n,p}
    y_{n,p}\xi_{n,p}^\top` (:func:`mirror_update` without the decay).

    Parameters
    ----------
    layer : layer
        A dense or conv layer; its response to the noise is :math:`y`.
    xi : array
        The injected noise, ``(m, ...)`` in the layer's input shape.
    lr : float
        The mirror learning rate :math:`\eta`.
    counts : array or None
        Per-weight counts :math:`c` of the terms summed (conv layers); ``None``: computed
        from the layer and the noise shape (1 for a dense layer).
    out : tuple or None
        Dense layers: ``(y, G)``, arrays of shapes ``(m, n_out)`` and ``W``'s that receive
        the response and the result (no allocation); ``None``: new arrays.
    """
    m = int(xi.shape[0])
    if counts is None and getattr(xi, "ndim", 0) == 2 and is_dense_like(layer):
        # a dense layer, directly: y = xi W^T, sum_n y_n xi_n^T = y^T xi (two GEMMs)
        xp = get_array_module(xi)
        y, G = (None, None) if out is None else out
        y = xp.matmul(xi, layer.params()["W"].T, out=y)
        G = xp.matmul(y.T, xi, out=G)
        G *= G.dtype.type(lr / m)
        return G
    y = _response(layer, xi)
    G = layer.backward(xi, y, need_input_grad=False)[0]["W"]
    if counts is None:
        counts = pair_counts(layer, tuple(xi.shape[1:]), G.dtype)
    G *= G.dtype.type(lr / m)
    if counts is not None:  # None: a dense layer, one pair per image
        G /= counts
    return G


def half_signs(rng, shape, dtype, xp, out=None):
    r""":math:`\pm\tfrac12` with equal probability, one bit of ``rng.random_raw`` each (bit
    ``j`` of byte ``i`` is draw ``8i + j``: the bits of
    :func:`bionp.rules.perturbation.rademacher`).

    Parameters
    ----------
    rng : bionp.random.Generator
        The stream the bits come from.
    shape : tuple of int
        Shape of the result.
    dtype : numpy.dtype
        Float dtype of the result.
    xp : module
        Array module of the result.
    out : array or None
        A C-contiguous array of ``shape`` and ``dtype`` on ``xp`` that receives the signs
        (no allocation); ``None``: a new array.
    """
    n = 1
    for d in shape:
        n *= int(d)
    octets = rng.random_raw(-(-n // 64), xp=xp).view(xp.uint8)
    if out is not None and backend_dense.half_signs(xp, octets, out):  # one compiled pass
        return out
    bits = xp.unpackbits(octets, bitorder="little")[:n]
    signs = bits.astype(dtype)
    signs -= dtype.type(0.5)
    if out is None:
        return signs.reshape(shape)
    out[...] = signs.reshape(shape)
    return out


def pair_counts(layer, input_shape, dtype):
    """Per weight, the output positions where it meets the input rather than padding
    (``W``'s shape; the weight gradient of ones), or ``None`` for a dense layer (1 each).

    Parameters
    ----------
    layer : Dense or Conv2D
        The layer.
    input_shape : tuple of int
        One sample's input shape (no batch axis).
    dtype : dtype
        Float dtype of the counts.
    """
    if len(input_shape) < 2:
        return None
    xp = get_array_module(layer.params()["W"])
    ones = xp.ones((1,) + tuple(input_shape), dtype=dtype)
    out_shape = (1,) + tuple(layer.output_shape_for(tuple(input_shape)))
    counts = layer.backward(ones, xp.ones(out_shape, dtype=dtype), need_input_grad=False)[0]["W"]
    xp.maximum(counts, 1, out=counts)  # a tap that never meets the input gets no update
    return counts


def all_finite(G) -> bool:
    r"""Whether ``G`` holds no NaN or Inf: its sum is finite (one pass, no temporary), else
    (a NaN, an Inf, or a finite sum that overflowed) the elementwise check.

    Parameters
    ----------
    G : array
        The array checked (any backend).
    """
    xp = get_array_module(G)
    if np.isfinite(float(to_scalar(xp.sum(G)))):
        return True
    return bool(to_scalar(xp.all(xp.isfinite(G))))
