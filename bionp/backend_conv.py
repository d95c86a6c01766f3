r"""Compiled kernels of the image layers, behind the backend (dispatch functions).

Each function takes the array module ``xp`` first and returns the result of a compiled
kernel of :mod:`bionp._conv_kernels` where one applies — NumPy and the strict stand-in
(through :func:`bionp._strict.call_host`, so both give the same bits), float32 or float64
arrays, Numba installed and ``BIONP_NUMBA`` not ``0`` — and ``None`` otherwise: the caller
then runs its plain ``xp`` code, which stays the definition (CuPy always takes that path).
The kernels perform the plain code's floating-point operations in its order, so both
paths give identical numbers (tested in ``tests/test_conv_kernels.py``).

* :func:`im2col` / :func:`col2im`: the patch matrix ``(C*kh*kw, N*H'*W')`` of NCHW
  images and its adjoint (see :mod:`bionp.nn.conv`).
* :func:`conv_output`: the convolution's GEMM output ``(O, N*H'*W')`` moved to NCHW with
  the bias added in the same pass.
* :func:`maxpool_forward` / :func:`maxpool_backward`: window maxima with the row-major
  index of each window's first maximum, and the gradient sent back to it
  (see :mod:`bionp.nn.pooling`).
* :func:`relu_vjp`: :math:`[z > 0]\,g`.
"""

from __future__ import annotations

import types

import numpy as np

from bionp.backend import module_name

__all__ = ["kernels_available", "im2col", "col2im", "conv_output", "maxpool_forward",
           "maxpool_backward", "relu_vjp"]


def _kernels(*arrays):
    """The compiled kernels if they apply to these host arrays (one float32/float64 dtype
    among the float ones), else ``None``."""
    from bionp import _conv_kernels  # noqa: PLC0415  (imports Numba only when first used)

    floats = {a.dtype for a in arrays if a.dtype.kind == "f"}
    if len(floats) != 1 or floats.pop() not in (np.float32, np.float64):
        return None
    return _conv_kernels.load()


def kernels_available(xp: types.ModuleType) -> bool:
    """Whether the functions below have compiled kernels for ``xp``: NumPy or the strict
    stand-in, with Numba installed and ``BIONP_NUMBA`` not ``0``.

    Parameters
    ----------
    xp : module
        The array module (``numpy``, the strict stand-in or ``cupy``).
    """
    from bionp import _conv_kernels  # noqa: PLC0415

    return module_name(xp) in ("numpy", "strict") and _conv_kernels.available()


def _dispatch(xp, host_fn, op, *args):
    name = module_name(xp)
    if name == "numpy":
        return host_fn(*args)
    if name == "strict":
        from bionp import _strict  # noqa: PLC0415

        return _strict.call_host(host_fn, op, *args)
    return None


def _geometry(x_shape, kernel, stride, padding):
    n, c, h, w = (int(s) for s in x_shape)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    return n, c, h, w, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


# -- im2col / col2im ------------------------------------------------------------------

def _host_im2col(x, kernel, stride, padding):
    k = _kernels(x)
    if k is None:
        return None
    n, c, _, _, oh, ow = _geometry(x.shape, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    x = np.ascontiguousarray(x)
    if (sh, sw) == (1, 1):
        if ph or pw:  # pad once, then the unit-stride kernel
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        k["im2col_s1"](x, cols)
    else:
        k["im2col"](x, sh, sw, ph, pw, cols)
    return cols.reshape(c * kh * kw, n * oh * ow)


def im2col(xp: types.ModuleType, x, kernel, stride=(1, 1), padding=(0, 0)):
    r"""Patch matrix :math:`X` ``(C*kh*kw, N*H'*W')`` of ``x`` (NCHW), row ``(c, u, v)``,
    column ``(n, i, j)`` holding :math:`x_{n,c,s_h i+u-p_h,s_w j+v-p_w}` (zero in the
    padding); ``None`` where there is no compiled kernel.

    Parameters
    ----------
    xp : module
        The array module of ``x``.
    x : array
        Input ``(N, C, H, W)``.
    kernel : tuple of int
        Window size ``(kh, kw)``.
    stride : tuple of int, default (1, 1)
        Steps ``(s_h, s_w)`` between windows.
    padding : tuple of int, default (0, 0)
        Zero padding ``(p_h, p_w)`` on each side.
    """
    return _dispatch(xp, _host_im2col, "im2col", x, tuple(kernel), tuple(stride),
                     tuple(padding))


def _host_col2im(cols, x_shape, kernel, stride, padding):
    k = _kernels(cols)
    if k is None:
        return None
    n, c, h, w, oh, ow = _geometry(x_shape, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if cols.shape != (c * kh * kw, n * oh * ow):
        raise ValueError(f"col2im: cols must have shape {(c * kh * kw, n * oh * ow)} for "
                         f"images of shape {tuple(x_shape)}, got {tuple(cols.shape)}")
    cols = np.ascontiguousarray(cols).reshape(c, kh, kw, n, oh, ow)
    if (sh, sw) == (1, 1):  # the unit-stride kernel into the padded image, padding cut off
        dx = np.empty((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
        k["col2im_s1"](cols, dx)
        return np.ascontiguousarray(dx[:, :, ph:ph + h, pw:pw + w]) if ph or pw else dx
    dx = np.empty((n, c, h, w), dtype=cols.dtype)
    k["col2im"](cols, sh, sw, ph, pw, dx)
    return dx


def col2im(xp: types.ModuleType, cols, x_shape, kernel, stride=(1, 1), padding=(0, 0)):
    r"""Adjoint of :func:`im2col`: every entry of ``cols`` added onto the pixel of an
    ``x_shape`` (NCHW) array it was read from, kernel offsets in row-major order (padding
    cut off); ``None`` where there is no compiled kernel.

    Parameters
    ----------
    xp : module
        The array module of ``cols``.
    cols : array
        Patch matrix ``(C*kh*kw, N*H'*W')``, as :func:`im2col` lays it out.
    x_shape : tuple of int
        Shape ``(N, C, H, W)`` of the result.
    kernel : tuple of int
        Window size ``(kh, kw)``.
    stride : tuple of int, default (1, 1)
        Steps ``(s_h, s_w)`` between windows.
    padding : tuple of int, default (0, 0)
        Zero padding ``(p_h, p_w)`` on each side (cut off in the result).
    """
    return _dispatch(xp, _host_col2im, "col2im", cols, tuple(int(s) for s in x_shape),
                     tuple(kernel), tuple(stride), tuple(padding))


# -- GEMM output to NCHW ------------------------------------------------------------------

def _host_conv_output(z, b, n):
    k = _kernels(z, b)
    if k is None:
        return None
    o = z.shape[0]
    if b.shape != (o,) or z.shape[1] % n:
        raise ValueError(f"conv_output: z (O, N*P) and b (O,) expected, got {tuple(z.shape)} "
                         f"and {tuple(b.shape)} for N={n}")
    src = np.ascontiguousarray(z).reshape(o, n, -1)
    out = np.empty((n, o, src.shape[2]), dtype=z.dtype)
    k["bias_to_nchw"](src, np.ascontiguousarray(b), out)
    return out


def conv_output(xp: types.ModuleType, z, b, out_shape):
    r""":math:`z'_{n,o,i,j} = Z_{o,(n,i,j)} + b_o`: the GEMM output ``z`` ``(O, N*H'*W')``
    as an NCHW array of ``out_shape`` ``(N, O, H', W')`` with the bias added in the same
    pass; ``None`` where there is no compiled kernel.

    Parameters
    ----------
    xp : module
        The array module of ``z``.
    z : array
        GEMM output ``(O, N*H'*W')``.
    b : array
        Bias ``(O,)``.
    out_shape : tuple of int
        ``(N, O, H', W')``.
    """
    out = _dispatch(xp, _host_conv_output, "conv_output", z, b, int(out_shape[0]))
    return None if out is None else out.reshape(tuple(int(s) for s in out_shape))


# -- max pooling ------------------------------------------------------------------------

def _host_maxpool_forward(x, kernel, stride, out_hw):
    k = _kernels(x)
    if k is None:
        return None
    n, c = int(x.shape[0]), int(x.shape[1])
    z = np.empty((n, c) + tuple(out_hw), dtype=x.dtype)
    arg = np.empty((n, c) + tuple(out_hw), dtype=np.intp)
    x = np.ascontiguousarray(x)
    if tuple(kernel) == (2, 2) and tuple(stride) == (2, 2):
        k["maxpool2_forward"](x, z, arg)
    else:
        k["maxpool_forward"](x, kernel[0], kernel[1], stride[0], stride[1], z, arg)
    return z, arg


def maxpool_forward(xp: types.ModuleType, x, kernel, stride, out_hw):
    """``(z, arg)``: the maximum of each window of ``x`` (NCHW) and the row-major index
    ``u*kw + v`` of its first maximum (``intp``; a NaN counts as the maximum, as in
    ``argmax``), both ``(N, C) + out_hw``; ``None`` where there is no compiled kernel.

    Parameters
    ----------
    xp : module
        The array module of ``x``.
    x : array
        Input ``(N, C, H, W)``.
    kernel : tuple of int
        Window size ``(kh, kw)``.
    stride : tuple of int
        Steps between windows.
    out_hw : tuple of int
        Output height and width ``(H', W')``.
    """
    return _dispatch(xp, _host_maxpool_forward, "maxpool_forward", x, tuple(kernel),
                     tuple(stride), tuple(int(s) for s in out_hw))


def _host_maxpool_backward(delta, arg, x_shape, kernel, stride):
    k = _kernels(delta)
    if k is None:
        return None
    if arg.shape != delta.shape:
        raise ValueError(f"maxpool_backward: arg must have delta's shape {tuple(delta.shape)}, "
                         f"got {tuple(arg.shape)}")
    dx = np.empty(x_shape, dtype=delta.dtype)
    delta = np.ascontiguousarray(delta)
    arg = np.ascontiguousarray(arg, dtype=np.intp)
    if tuple(kernel) == (2, 2) and tuple(stride) == (2, 2):
        k["maxpool2_backward"](delta, arg, dx)
    else:
        k["maxpool_backward"](delta, arg, kernel[0], kernel[1], stride[0], stride[1], dx)
    return dx


def maxpool_backward(xp: types.ModuleType, delta, arg, x_shape, kernel, stride):
    r""":math:`\partial L/\partial x` of ``x_shape``: for each window and kernel offset
    (row-major), ``delta * [arg == u*kw + v]`` added at that offset; ``None`` where there is
    no compiled kernel.

    Parameters
    ----------
    xp : module
        The array module of ``delta``.
    delta : array
        :math:`\partial L/\partial z`, ``(N, C) + out_hw``.
    arg : array
        The in-window argmax indices from :func:`maxpool_forward`, shape of ``delta``.
    x_shape : tuple of int
        Shape ``(N, C, H, W)`` of the pooled input.
    kernel : tuple of int
        Window size ``(kh, kw)``.
    stride : tuple of int
        Steps between windows.
    """
    return _dispatch(xp, _host_maxpool_backward, "maxpool_backward", delta, arg,
                     tuple(int(s) for s in x_shape), tuple(kernel), tuple(stride))


# -- rectifier --------------------------------------------------------------------------

def _host_relu_vjp(z, g):
    k = _kernels(z, g)
    if k is None or z.shape != g.shape:
        return None
    out = np.empty(g.shape, dtype=g.dtype)
    k["relu_vjp"](np.ascontiguousarray(z).reshape(-1), np.ascontiguousarray(g).reshape(-1),
                  out.reshape(-1))
    return out


def relu_vjp(xp: types.ModuleType, z, g):
    r""":math:`[z > 0]\, g` (``g`` where ``z > 0``, else 0) in ``g``'s dtype; ``None``
    where there is no compiled kernel (or ``z`` and ``g`` differ in shape or dtype).

    Parameters
    ----------
    xp : module
        The array module of ``z`` and ``g``.
    z : array
        Pre-activations.
    g : array
        Upstream gradient, shape and dtype of ``z``.
    """
    return _dispatch(xp, _host_relu_vjp, "relu_vjp", z, g)
