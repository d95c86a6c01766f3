r"""Two-dimensional convolution (cross-correlation, as in every deep-learning library).

For input :math:`x \in \mathbb R^{N\times C\times H\times W}` padded with zeros by
:math:`(p_h, p_w)`, weights :math:`W \in \mathbb R^{O\times C\times k_h\times k_w}`,
bias :math:`b \in \mathbb R^{O}` and stride :math:`(s_h, s_w)`,

.. math::

    z_{n,o,i,j} = b_o + \sum_{c=0}^{C-1}\sum_{u=0}^{k_h-1}\sum_{v=0}^{k_w-1}
        W_{o,c,u,v}\, x_{n,c,\,s_h i + u - p_h,\,s_w j + v - p_w},
    \qquad 0 \le i < H', \; 0 \le j < W',

with :math:`H' = \lfloor (H + 2p_h - k_h)/s_h\rfloor + 1` (likewise :math:`W'`).

**im2col.**  Gather the patches into :math:`X \in \mathbb R^{(C k_h k_w)\times(N H' W')}`,
:math:`X_{(c,u,v),(n,i,j)} = x_{n,c,s_h i+u-p_h,s_w j+v-p_w}`; then with
:math:`\bar W = W` reshaped to :math:`O\times(C k_h k_w)` the forward pass is one GEMM,
:math:`Z = \bar W X + b\mathbf 1^\top`, reshaped to ``(N, O, H', W')``.

**Backward.**  Given :math:`\delta = \partial L/\partial z` (the batch-mean :math:`1/N`
inside) reshaped to :math:`\Delta \in \mathbb R^{O\times(N H' W')}`:

.. math::

    \frac{\partial L}{\partial \bar W} = \Delta X^\top, \qquad
    \frac{\partial L}{\partial b_o} = \sum_{n,i,j}\delta_{n,o,i,j}, \qquad
    \frac{\partial L}{\partial X} = \bar M^\top \Delta, \qquad
    \frac{\partial L}{\partial x} = \mathrm{col2im}\Big(\frac{\partial L}{\partial X}\Big),

with :math:`\bar M = \bar W` for the exact gradient, or a feedback tensor of ``W``'s
shape (``feedback=``) for rules that do not transport weights (feedback alignment,
Kolen–Pollack).  col2im is the adjoint of im2col: every patch entry is added back to
the input pixel it was read from (overlapping windows add up; the padding is cut off).
Three GEMMs per step; the patch gathering and col2im are :math:`k_h k_w` strided copies
each (loops over kernel offsets, never over samples).  On NumPy and the strict stand-in
with Numba, :mod:`bionp.backend_conv` runs im2col, col2im and the move of the GEMM's
output to NCHW (bias added in the same pass) as compiled single-pass kernels that give the
same numbers (``BIONP_NUMBA=0`` turns them off); the array code here is the definition.
"""

from __future__ import annotations

import numbers

from bionp import backend_conv
from bionp.backend import check_same_backend, get_array_module, get_xp, resolve_dtype
from bionp.nn._spatial import check_image, nonnegative_pair, pair, shape_tuple, window_count
from bionp.nn.init import initialize
from bionp.nn.protocol import ShapedFeatures, WeightAndBias
from bionp.random import check_rng
from bionp.validation import check_real

__all__ = ["Conv2d", "im2col", "col2im", "conv2d"]


def _geometry(x_shape, kernel, stride, padding):
    n, c, h, w = (int(s) for s in x_shape)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    return n, c, h, w, oh, ow


def im2col(x, kernel, stride=(1, 1), padding=(0, 0)):
    r"""Patches of ``x`` (NCHW) as the matrix :math:`X` of shape ``(C*kh*kw, N*H'*W')``.

    Row ``(c, u, v)`` (C order), column ``(n, i, j)`` holds
    :math:`x_{n,c,s_h i+u-p_h,s_w j+v-p_w}` (zero in the padding).

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel : (kh, kw)
    stride, padding : (int, int)
    """
    xp = get_array_module(x)
    fast = backend_conv.im2col(xp, x, kernel, stride, padding)
    if fast is not None:
        return fast
    n, c, h, w, oh, ow = _geometry(x.shape, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        xpad[:, :, ph:ph + h, pw:pw + w] = x
    else:
        xpad = x
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            window = xpad[:, :, u:u + sh * (oh - 1) + 1:sh, v:v + sw * (ow - 1) + 1:sw]
            cols[:, u, v] = window.transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel, stride=(1, 1), padding=(0, 0)):
    r"""Adjoint of :func:`im2col`: sum the entries of ``cols`` ``(C*kh*kw, N*H'*W')`` back
    into an array of ``x_shape`` (NCHW), each onto the pixel it was read from.

    Parameters
    ----------
    cols : array ``(C*kh*kw, N*H'*W')``
    x_shape : (N, C, H, W)
    kernel : (kh, kw)
    stride, padding : (int, int)
    """
    xp = get_array_module(cols)
    fast = backend_conv.col2im(xp, cols, x_shape, kernel, stride, padding)
    if fast is not None:
        return fast
    n, c, h, w, oh, ow = _geometry(x_shape, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    dpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            dpad[:, :, u:u + sh * (oh - 1) + 1:sh, v:v + sw * (ow - 1) + 1:sw] += \
                cols[:, u, v].transpose(1, 0, 2, 3)
    if ph or pw:
        return xp.ascontiguousarray(dpad[:, :, ph:ph + h, pw:pw + w])
    return dpad


def conv2d(x, W, b=None, stride=(1, 1), padding=(0, 0), cols=None):
    r"""Functional forward pass :math:`z = \bar W X + b` (module docstring); returns
    ``(z, cols)`` with ``cols`` the im2col matrix :math:`X` (what the backward pass needs).

    Parameters
    ----------
    x : array (N, C, H, W)
    W : array (out, C, kh, kw)
    b : array (out,) or None
    stride, padding : (int, int)
    cols : array or None
        :math:`X` when already computed (it is then not recomputed).
    """
    xp = check_same_backend(x, W, names=("x", "W"))
    kernel = (int(W.shape[2]), int(W.shape[3]))
    n, _, _, _, oh, ow = _geometry(x.shape, kernel, stride, padding)
    if cols is None:
        cols = im2col(x, kernel, stride, padding)
    o = int(W.shape[0])
    z = xp.matmul(W.reshape(o, -1), cols)                      # (O, N*H'*W'): one GEMM
    if b is not None:
        fast = backend_conv.conv_output(xp, z, b, (n, o, oh, ow))
        if fast is not None:
            return fast, cols
        z += b[:, None]
    z = xp.ascontiguousarray(z.reshape(o, n, oh, ow).transpose(1, 0, 2, 3))
    return z, cols


class Conv2d(WeightAndBias, ShapedFeatures):
    r"""2-D convolution layer on NCHW images (see the module docstring for the equations).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Zeros added on each side of both spatial axes.
    bias : bool, default True
    init : str or callable, default ``"he_uniform"``
        Initialiser of ``W`` (:mod:`bionp.nn.init`; fans are :math:`C k_h k_w` in and
        :math:`O k_h k_w` out).
    init_scale : float, default 0.1
        Scale of the ``normal``/``uniform`` initialisers.
    rng : int, Generator or None
    dtype : float dtype, default ``bionp.get_dtype()``

    Attributes
    ----------
    W : array (out_channels, in_channels, kh, kw)
    b : array (out_channels,) or None
    input_shape, output_shape : tuple or None
        Per-sample shapes ``(C, H, W)`` and ``(O, H', W')`` once the layer is part of a
        network (:meth:`build`); the layer itself takes any image size.
    """

    dense_like = False
    #: forward() is the training pass's function of (x, params): no noise, no batch state
    pure_forward = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, init="he_uniform", init_scale: float = 0.1, rng=None,
                 dtype=None):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = pair("stride", stride)
        self.padding = nonnegative_pair("padding", padding)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.init = init
        self.init_scale = check_real("init_scale", init_scale, low=0)
        self.dtype = resolve_dtype(dtype)
        rng = check_rng(rng)
        self.W = initialize(init, (self.out_channels, self.in_channels) + self.kernel_size,
                            self.init_scale, rng, self.dtype)
        self.b = get_xp().zeros(self.out_channels, dtype=self.dtype) if bias else None
        self.input_shape = None
        self.output_shape = None

    # -- protocol ----------------------------------------------------------------------
    def output_shape_for(self, input_shape) -> tuple:
        """Per-sample output shape for a per-sample ``input_shape`` ``(C, H, W)`` (checked)."""
        shape = shape_tuple(input_shape)
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise ValueError(
                f"{self!r} takes images of shape ({self.in_channels}, height, width), got inputs "
                f"of shape {shape}")
        oh = window_count(self, shape[1], self.kernel_size[0], self.stride[0], self.padding[0],
                          "height")
        ow = window_count(self, shape[2], self.kernel_size[1], self.stride[1], self.padding[1],
                          "width")
        return (self.out_channels, oh, ow)

    def build(self, input_shape) -> tuple:
        """Fix the per-sample input shape (a network does this); returns the output shape."""
        out = self.output_shape_for(input_shape)
        self.input_shape, self.output_shape = shape_tuple(input_shape), out
        return out

    def _check_x(self, x):
        check_image(self, x, self.in_channels)
        self.output_shape_for(tuple(x.shape[1:]))

    def _weights(self, params):
        W, b = self.W, self.b
        if params is not None:
            W = params.get("W", W)
            b = params.get("b", b)
        return W, b

    def forward(self, x, params=None):
        """:math:`z` of shape ``(N, O, H', W')``; ``params={"W": …, "b": …}`` overrides the
        layer's arrays (perturbed copies)."""
        self._check_x(x)
        W, b = self._weights(params)
        return conv2d(x, W, b, self.stride, self.padding)[0]

    __call__ = forward

    def forward_cache(self, x, params=None):
        """Training forward pass: ``(z, cols)`` with ``cols`` the im2col matrix."""
        self._check_x(x)
        W, b = self._weights(params)
        return conv2d(x, W, b, self.stride, self.padding)

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        r"""Gradients and :math:`\partial L/\partial x` (module docstring).

        Parameters
        ----------
        x : (N, C, H, W) the layer's input
        delta : (N, O, H', W') :math:`\partial L/\partial z`
        feedback : array of ``W``'s shape, optional
            Used in place of ``W`` to send ``delta`` back (FA/KP).
        need_input_grad : bool
        cache : the im2col matrix from :meth:`forward_cache` (recomputed if None)

        Returns
        -------
        grads : dict ``{"W": …, "b": …}``
        delta_in : (N, C, H, W) or None
        """
        self._check_x(x)
        out_shape = (int(x.shape[0]),) + self.output_shape_for(tuple(x.shape[1:]))
        if getattr(delta, "ndim", None) != 4 or tuple(delta.shape) != out_shape:
            raise ValueError(f"delta must have shape {out_shape}, got "
                             f"{tuple(getattr(delta, 'shape', ()))}")
        M = self.W if feedback is None else feedback
        if need_input_grad and tuple(M.shape) != tuple(self.W.shape):
            raise ValueError(f"feedback tensor must have W's shape {tuple(self.W.shape)}, "
                             f"got {tuple(M.shape)}")
        xp = check_same_backend(x, delta, names=("x", "delta"))
        cols = im2col(x, self.kernel_size, self.stride, self.padding) if cache is None else cache
        o = self.out_channels
        d2 = xp.ascontiguousarray(delta.transpose(1, 0, 2, 3)).reshape(o, -1)
        # dW = Delta X^T, computed as (X Delta^T)^T: OpenBLAS is several times faster with the
        # long summed axis (N*H'*W') in the second operand's rows
        dW = xp.matmul(cols, d2.T)
        grads = {"W": xp.ascontiguousarray(dW.T).reshape(self.W.shape)}
        if self.b is not None:
            grads["b"] = xp.sum(d2, axis=1)
        delta_in = None
        if need_input_grad:
            dcols = xp.matmul(M.reshape(o, -1).T, d2)
            delta_in = col2im(dcols, x.shape, self.kernel_size, self.stride, self.padding)
        return grads, delta_in

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "bias": self.has_bias,
                "init": self.init if isinstance(self.init, str) else "custom",
                "init_scale": self.init_scale, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        extra = ""
        if self.stride != (1, 1):
            extra += f", stride={_short(self.stride)}"
        if self.padding != (0, 0):
            extra += f", padding={_short(self.padding)}"
        return (f"Conv2d({self.in_channels}, {self.out_channels}, "
                f"kernel_size={_short(self.kernel_size)}{extra})")


def _short(p):
    return p[0] if p[0] == p[1] else p
