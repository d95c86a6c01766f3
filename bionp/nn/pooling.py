r"""Max and average pooling over 2-D windows of NCHW images (no parameters).

A window of size :math:`(k_h, k_w)` moved by :math:`(s_h, s_w)` (default: the kernel,
non-overlapping) over each channel; output size
:math:`H' = \lfloor (H - k_h)/s_h \rfloor + 1` (likewise :math:`W'`): rows and columns
that do not fill a last window are left out, as in PyTorch's default.  With
:math:`R_{ij} = \{(s_h i + u, s_w j + v) : 0 \le u < k_h, 0 \le v < k_w\}`,

.. math::

    \text{max:}\quad z_{n,c,i,j} = \max_{(p,q)\in R_{ij}} x_{n,c,p,q}, \qquad
    \frac{\partial L}{\partial x_{n,c,p,q}} = \sum_{i,j:\,(p,q) = a_{n,c,i,j}}
        \delta_{n,c,i,j},

where :math:`a_{n,c,i,j}` is the position of the maximum in window :math:`(i, j)`;

.. math::

    \text{average:}\quad z_{n,c,i,j} = \frac{1}{k_h k_w}\sum_{(p,q)\in R_{ij}} x_{n,c,p,q},
    \qquad
    \frac{\partial L}{\partial x_{n,c,p,q}} = \frac{1}{k_h k_w}
        \sum_{i,j:\,(p,q)\in R_{ij}} \delta_{n,c,i,j}.

**Ties in max-pooling.**  Where several entries of a window share the maximum, the
whole gradient goes to the *first* of them in row-major window order (smallest
:math:`u`, then smallest :math:`v`), as ``argmax`` picks it; the others get none.  This
is one valid subgradient; at a tie the function is not differentiable, so finite
differences there do not match any choice.

On NumPy and the strict stand-in with Numba, max-pooling's forward pass (maximum and
argmax in one pass) and backward scatter run as compiled kernels of
:mod:`bionp.backend_conv` with the same numbers and the same tie rule (``BIONP_NUMBA=0``
turns them off); the array code here is the definition.
"""

from __future__ import annotations

from bionp import backend_conv
from bionp.backend import get_array_module
from bionp.nn._spatial import check_image, pair, shape_tuple, window_count
from bionp.nn.protocol import ShapedFeatures

__all__ = ["MaxPool2d", "AvgPool2d"]


class _Pool2d(ShapedFeatures):
    """Shared protocol of the pooling layers: no parameters, NCHW in and out."""

    dense_like = False
    #: forward() is the training pass's function of (x, params): no noise, no batch state
    pure_forward = True
    dtype = None
    n_params = 0

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("stride", stride)
        self.input_shape = None
        self.output_shape = None

    def params(self) -> dict:
        """No parameters: ``{}``."""
        return {}

    def output_shape_for(self, input_shape) -> tuple:
        """``(C, H', W')`` for a per-sample ``(C, H, W)``; ``ValueError`` if no window fits."""
        shape = shape_tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(f"{self!r} takes images of shape (channels, height, width), got "
                             f"inputs of shape {shape}")
        oh = window_count(self, shape[1], self.kernel_size[0], self.stride[0], 0, "height")
        ow = window_count(self, shape[2], self.kernel_size[1], self.stride[1], 0, "width")
        return (shape[0], oh, ow)

    def build(self, input_shape) -> tuple:
        out = self.output_shape_for(input_shape)
        self.input_shape, self.output_shape = shape_tuple(input_shape), out
        return out

    def _check_x(self, x):
        check_image(self, x, None if self.input_shape is None else self.input_shape[0])
        return self.output_shape_for(tuple(x.shape[1:]))

    def _windows(self, x, out_hw):
        """The :math:`k_h k_w` strided views ``x[:, :, u::s_h, v::s_w]`` cut to ``out_hw``."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = out_hw
        for u in range(kh):
            for v in range(kw):
                yield u, v, (slice(None), slice(None), slice(u, u + sh * (oh - 1) + 1, sh),
                             slice(v, v + sw * (ow - 1) + 1, sw))

    def _check_delta(self, x, delta):
        want = (int(x.shape[0]),) + self.output_shape_for(tuple(x.shape[1:]))
        if getattr(delta, "ndim", None) != 4 or tuple(delta.shape) != want:
            raise ValueError(f"delta must have shape {want}, got "
                             f"{tuple(getattr(delta, 'shape', ()))}")
        return want

    def __call__(self, x, params=None):
        return self.forward(x, params)

    def get_config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def __repr__(self) -> str:
        k, s = self.kernel_size, self.stride
        ks = k[0] if k[0] == k[1] else k
        st = "" if s == k else f", stride={s[0] if s[0] == s[1] else s}"
        return f"{type(self).__name__}({ks}{st})"


class MaxPool2d(_Pool2d):
    """Maximum over each window (module docstring; ties: the first maximum gets the gradient).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default: ``kernel_size``.
    """

    def forward(self, x, params=None):
        """:math:`z` of shape ``(N, C, H', W')``."""
        out_hw = self._check_x(x)[1:]
        xp = get_array_module(x)
        fast = backend_conv.maxpool_forward(xp, x, self.kernel_size, self.stride, out_hw)
        if fast is not None:
            return fast[0]
        z = None
        for _, _, sl in self._windows(x, out_hw):
            if z is None:
                z = x[sl].copy()
            else:
                xp.maximum(z, x[sl], out=z)
        return z

    def forward_cache(self, x, params=None):
        """``(z, argmax)``: ``argmax[n, c, i, j]`` is the row-major index ``u*kw + v`` of the
        window's first maximum."""
        out_hw = self._check_x(x)[1:]
        xp = get_array_module(x)
        fast = backend_conv.maxpool_forward(xp, x, self.kernel_size, self.stride, out_hw)
        if fast is not None:
            return fast
        stacked = xp.stack([x[sl] for _, _, sl in self._windows(x, out_hw)])
        arg = xp.argmax(stacked, axis=0)
        z = xp.max(stacked, axis=0)
        return z, arg

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        """``({}, dL/dx)``: each window's delta goes to its (first) maximum."""
        if feedback is not None:
            raise ValueError(f"{self!r} has no weights: its feedback must be None")
        self._check_delta(x, delta)
        if not need_input_grad:
            return {}, None
        xp = get_array_module(x)
        arg = self.forward_cache(x)[1] if cache is None else cache
        fast = backend_conv.maxpool_backward(xp, delta, arg, x.shape, self.kernel_size,
                                             self.stride)
        if fast is not None:
            return {}, fast
        dx = xp.zeros(x.shape, dtype=delta.dtype)
        kw = self.kernel_size[1]
        for u, v, sl in self._windows(x, tuple(delta.shape[2:])):
            dx[sl] += delta * (arg == u * kw + v)
        return {}, dx


class AvgPool2d(_Pool2d):
    """Mean over each window (module docstring).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default: ``kernel_size``.
    """

    def forward(self, x, params=None):
        """:math:`z` of shape ``(N, C, H', W')``."""
        out_hw = self._check_x(x)[1:]
        z = None
        for _, _, sl in self._windows(x, out_hw):
            if z is None:
                z = x[sl].copy()
            else:
                z += x[sl]
        z *= z.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        return z

    def forward_cache(self, x, params=None):
        """``(z, None)``: the backward pass needs only shapes."""
        return self.forward(x), None

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        """``({}, dL/dx)``: each window's delta spread evenly over it."""
        if feedback is not None:
            raise ValueError(f"{self!r} has no weights: its feedback must be None")
        self._check_delta(x, delta)
        if not need_input_grad:
            return {}, None
        xp = get_array_module(x)
        share = delta * delta.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        dx = xp.zeros(x.shape, dtype=delta.dtype)
        for _, _, sl in self._windows(x, tuple(delta.shape[2:])):
            dx[sl] += share
        return {}, dx
