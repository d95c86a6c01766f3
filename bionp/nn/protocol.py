"""Pieces of the layer protocol that several layers share.

A layer has ``params()`` (a dict of its arrays, the arrays themselves, ``{}`` for
parameter-free layers) and, once it is part of a network, per-sample ``input_shape`` and
``output_shape``; :class:`bionp.nn.Sequential` reads ``in_features``/``out_features`` (the
flattened sizes) from them.
"""

from __future__ import annotations

from bionp.nn.shapes import prod

__all__ = ["ShapedFeatures", "WeightAndBias"]


class WeightAndBias:
    """A weight ``W`` and an optional bias ``b`` (``None`` without one): Dense, Conv2d."""

    @property
    def has_bias(self) -> bool:
        return self.b is not None

    def params(self) -> dict:
        """``{"W": W, "b": b}`` (``b`` only if the layer has one); the arrays themselves."""
        return {"W": self.W} if self.b is None else {"W": self.W, "b": self.b}

    @property
    def n_params(self) -> int:
        return int(self.W.size + (0 if self.b is None else self.b.size))


class ShapedFeatures:
    """``in_features``/``out_features`` as the sizes of ``input_shape``/``output_shape``
    (None until the layer is built into a network): convolution and pooling."""

    @property
    def in_features(self):
        """``C*H*W`` of the input once built, else None."""
        return None if self.input_shape is None else prod(self.input_shape)

    @property
    def out_features(self):
        return None if self.output_shape is None else prod(self.output_shape)
