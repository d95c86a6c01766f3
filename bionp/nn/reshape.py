r"""Flatten: images (or any per-sample array) to vectors, for the dense layers after them.

.. math::

    z_{n,\,(c h w)} = x_{n,c,h,w}, \qquad
    \frac{\partial L}{\partial x_{n,c,h,w}} = \delta_{n,\,(c h w)},

in C (row-major) order: a ``(C, H, W)`` sample becomes ``C*H*W`` features, the same
order as ``x.reshape(len(x), -1)`` (and PyTorch's ``nn.Flatten``).  No parameters; both
passes are reshapes (views when the input is contiguous).
"""

from __future__ import annotations

from bionp.nn._spatial import shape_tuple
from bionp.validation import check_float_dtype

__all__ = ["Flatten"]


class Flatten:
    """``(N, d1, d2, …) -> (N, d1*d2*…)`` (module docstring)."""

    dense_like = False
    #: forward() is the training pass's function of (x, params): no noise, no batch state
    pure_forward = True
    dtype = None
    n_params = 0

    def __init__(self):
        self.input_shape = None
        self.output_shape = None

    def params(self) -> dict:
        """No parameters: ``{}``."""
        return {}

    @property
    def in_features(self):
        return None if self.output_shape is None else self.output_shape[0]

    @property
    def out_features(self):
        return self.in_features

    def output_shape_for(self, input_shape) -> tuple:
        shape = shape_tuple(input_shape)
        n = 1
        for s in shape:
            n *= s
        return (n,)

    def build(self, input_shape) -> tuple:
        out = self.output_shape_for(input_shape)
        self.input_shape, self.output_shape = shape_tuple(input_shape), out
        return out

    def _check_x(self, x):
        if hasattr(x, "dtype"):
            check_float_dtype(x, "x")
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(f"Flatten expects a batch of shape (batch, ...), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"Flatten was built for samples of shape {self.input_shape}, got "
                             f"an input of shape {tuple(x.shape)}")

    def forward(self, x, params=None):
        """``x.reshape(len(x), -1)``."""
        self._check_x(x)
        return x.reshape(x.shape[0], -1)

    __call__ = forward

    def forward_cache(self, x, params=None):
        return self.forward(x), None

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        """``({}, delta reshaped to x's shape)``."""
        if feedback is not None:
            raise ValueError("Flatten has no weights: its feedback must be None")
        self._check_x(x)
        want = (int(x.shape[0]), int(x.size // max(int(x.shape[0]), 1)))
        if getattr(delta, "ndim", None) != 2 or tuple(delta.shape) != want:
            raise ValueError(f"delta must have shape {want}, got "
                             f"{tuple(getattr(delta, 'shape', ()))}")
        return {}, (delta.reshape(x.shape) if need_input_grad else None)

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return "Flatten()"
