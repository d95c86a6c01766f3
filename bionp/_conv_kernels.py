r"""Compiled CPU kernels for convolution, max-pooling and the rectifier (optional: Numba).

The plain array code of :mod:`bionp.nn.conv`, :mod:`bionp.nn.pooling` and
:mod:`bionp.nn.activations` is the definition; these loops compute the same numbers
without its temporaries (one pass over memory each, where the array code makes
:math:`k_h k_w` strided passes, stacks the windows, or builds masks):

* ``im2col`` / ``col2im``: :math:`X_{(c,u,v),(n,i,j)} = x_{n,c,s_h i+u-p_h,s_w j+v-p_w}`
  and its adjoint.  col2im adds a pixel's contributions in the order of the kernel
  offsets :math:`(u, v)` (row-major), as the array code does, so the sums are bit-identical.
* ``bias_to_nchw``: :math:`z_{n,o,i,j} = Z_{o,(n,i,j)} + b_o` (the GEMM's output moved
  to NCHW, the bias added in the same pass: one addition per entry, as before).
* ``maxpool_forward``: each window's maximum and the row-major index :math:`u k_w + v`
  of its *first* maximum (a NaN counts as the maximum, as in ``argmax``).
* ``maxpool_backward``: :math:`\partial L/\partial x_p \mathrel{+}= \delta_{ij}\,
  [a_{ij} = (u,v)]` for every window and offset, in the array code's order of offsets
  (bit-identical sums where windows overlap; a non-finite :math:`\delta` spreads NaN
  over its window as the mask product does).
* ``relu_vjp``: :math:`\partial L/\partial z = [z > 0]\,\partial L/\partial a`.

``im2col_s1``/``col2im_s1`` (stride 1; padding by one pad or cut around them) and
``maxpool2_forward``/``maxpool2_backward`` (2x2 windows, stride 2) are the same loops for
the common geometries: their innermost loops have constant strides, which LLVM vectorises
(a loop whose stride is a run-time number ran 3-8x slower, measured).  The max-pool
forward loops compare with ``>`` only and redo, by the exact ``argmax`` rule, any window
whose sum is NaN (a NaN inside, or infinities of both signs).

No ``fastmath``: every kernel performs the array code's floating-point operations in the
array code's order.  Used through :mod:`bionp.backend_conv` on NumPy and the strict
stand-in when Numba is installed and ``BIONP_NUMBA`` is not ``0``; compiled on first use
and cached on disk by Numba.  Numba is imported only when :func:`load` is called.
"""

from __future__ import annotations

from typing import Any

from bionp._kernels import load_built

__all__ = ["load", "available"]

_state: dict[str, Any] = {}


def _build():
    import numba  # noqa: PLC0415  (optional dependency, loaded on first use)

    jit = numba.njit(nogil=True, cache=True, boundscheck=False)
    # Every array is indexed with all its axes (no row views, no flat offsets), and the
    # common geometries (stride 1; 2x2 pooling with stride 2) have kernels of their own
    # whose innermost loops have unit or constant strides: LLVM vectorises those, not loops
    # whose stride is a run-time number (measured: 3-8x slower).

    @jit
    def span(ow, v, sw, pw, w):
        """``lo, hi``: the output columns ``j`` with ``0 <= sw*j + v - pw < w``."""
        lo = 0
        if v < pw:
            lo = (pw - v + sw - 1) // sw
        lim = w - 1 - v + pw
        hi = 0 if lim < 0 else min(ow, lim // sw + 1)
        return lo, max(lo, hi)

    @jit
    def im2col_s1(x, cols):
        """Stride 1, no padding: ``cols[c, u, v, n, i, j] = x[n, c, i + u, j + v]``."""
        n_, c_ = x.shape[0], x.shape[1]
        kh, kw, oh, ow = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
        for c in range(c_):
            for u in range(kh):
                for v in range(kw):
                    for n in range(n_):
                        for i in range(oh):
                            for j in range(ow):
                                cols[c, u, v, n, i, j] = x[n, c, i + u, j + v]

    @jit
    def im2col(x, sh, sw, ph, pw, cols):
        """``cols`` (C, kh, kw, N, oh, ow) from ``x`` (N, C, H, W) (zeros in the padding)."""
        n_, c_, h, w = x.shape
        kh, kw, oh, ow = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
        for c in range(c_):
            for u in range(kh):
                for v in range(kw):
                    lo, hi = span(ow, v, sw, pw, w)
                    off = v - pw
                    for n in range(n_):
                        for i in range(oh):
                            p = sh * i + u - ph
                            if p < 0 or p >= h:
                                for j in range(ow):
                                    cols[c, u, v, n, i, j] = 0
                                continue
                            for j in range(lo):
                                cols[c, u, v, n, i, j] = 0
                            for j in range(lo, hi):
                                cols[c, u, v, n, i, j] = x[n, c, p, sw * j + off]
                            for j in range(hi, ow):
                                cols[c, u, v, n, i, j] = 0

    @jit
    def col2im_s1(cols, dx):
        """Stride 1, no padding: ``dx`` zeroed, then ``dx[n, c, i + u, j + v] +=
        cols[c, u, v, n, i, j]`` (offsets in row-major order)."""
        n_, c_, h, w = dx.shape
        kh, kw, oh, ow = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
        for n in range(n_):
            for c in range(c_):
                for p in range(h):
                    for q in range(w):
                        dx[n, c, p, q] = 0
        for c in range(c_):
            for u in range(kh):
                for v in range(kw):
                    for n in range(n_):
                        for i in range(oh):
                            for j in range(ow):
                                dx[n, c, i + u, j + v] += cols[c, u, v, n, i, j]

    @jit
    def col2im(cols, sh, sw, ph, pw, dx):
        """``dx`` (N, C, H, W), zeroed, then every entry of ``cols`` (C, kh, kw, N, oh, ow)
        added onto the pixel it was read from (kernel offsets in row-major order)."""
        n_, c_, h, w = dx.shape
        kh, kw, oh, ow = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
        for n in range(n_):
            for c in range(c_):
                for p in range(h):
                    for q in range(w):
                        dx[n, c, p, q] = 0
        for c in range(c_):
            for u in range(kh):
                for v in range(kw):
                    lo, hi = span(ow, v, sw, pw, w)
                    off = v - pw
                    for n in range(n_):
                        for i in range(oh):
                            p = sh * i + u - ph
                            if p < 0 or p >= h:
                                continue
                            for j in range(lo, hi):
                                dx[n, c, p, sw * j + off] += cols[c, u, v, n, i, j]

    @jit
    def bias_to_nchw(z, b, out):
        """``out[n, o] = z[o, n] + b[o]`` (``z``: (O, N, P); ``out``: (N, O, P))."""
        o_, n_, m = z.shape
        for n in range(n_):
            for o in range(o_):
                bo = b[o]
                for k in range(m):
                    out[n, o, k] = z[o, n, k] + bo

    @jit
    def window_max_exact(x, n, c, p0, q0, kh, kw):
        """First maximum of one window and its index, a NaN being the maximum (argmax)."""
        best = x[n, c, p0, q0]
        k = 0
        for u in range(kh):
            for v in range(kw):
                val = x[n, c, p0 + u, q0 + v]
                if val > best or (val != val and best == best):
                    best = val
                    k = u * kw + v
        return best, k

    @jit
    def maxpool_forward(x, kh, kw, sh, sw, z, arg):
        """``z`` and ``arg`` (N, C, oh, ow): each window's first maximum and its row-major
        index.  The fast loop compares with ``>`` only and sums the window on the side; a
        window whose sum is NaN (a NaN, or infinities of both signs) is redone by the exact
        rule (a NaN is the maximum and the first NaN wins, as in ``argmax``)."""
        n_, c_, oh, ow = z.shape
        for n in range(n_):
            for c in range(c_):
                for i in range(oh):
                    for j in range(ow):
                        p0, q0 = sh * i, sw * j
                        best = x[n, c, p0, q0]
                        k = 0
                        total = best - best
                        for u in range(kh):
                            for v in range(kw):
                                val = x[n, c, p0 + u, q0 + v]
                                total += val
                                if val > best:
                                    best = val
                                    k = u * kw + v
                        if total != total:
                            best, k = window_max_exact(x, n, c, p0, q0, kh, kw)
                        z[n, c, i, j] = best
                        arg[n, c, i, j] = k

    @jit
    def maxpool2_forward(x, z, arg):
        """:func:`maxpool_forward` for 2x2 windows with stride 2."""
        n_, c_, oh, ow = z.shape
        for n in range(n_):
            for c in range(c_):
                for i in range(oh):
                    for j in range(ow):
                        b = x[n, c, 2 * i, 2 * j]
                        k = 0
                        v1 = x[n, c, 2 * i, 2 * j + 1]
                        v2 = x[n, c, 2 * i + 1, 2 * j]
                        v3 = x[n, c, 2 * i + 1, 2 * j + 1]
                        if v1 > b:
                            b = v1
                            k = 1
                        if v2 > b:
                            b = v2
                            k = 2
                        if v3 > b:
                            b = v3
                            k = 3
                        total = b + v1 + v2 + v3
                        if total != total:
                            b, k = window_max_exact(x, n, c, 2 * i, 2 * j, 2, 2)
                        z[n, c, i, j] = b
                        arg[n, c, i, j] = k

    @jit
    def maxpool_backward(delta, arg, kh, kw, sh, sw, dx):
        """``dx`` (N, C, H, W), zeroed, then ``delta * [arg == u*kw + v]`` added at offset
        ``(u, v)`` of every window, offsets in row-major order."""
        n_, c_, h, w = dx.shape
        oh, ow = delta.shape[2], delta.shape[3]
        for n in range(n_):
            for c in range(c_):
                for p in range(h):
                    for q in range(w):
                        dx[n, c, p, q] = 0
                for u in range(kh):
                    for v in range(kw):
                        k = u * kw + v
                        for i in range(oh):
                            for j in range(ow):
                                d = delta[n, c, i, j]
                                dx[n, c, sh * i + u, sw * j + v] += (
                                    d if arg[n, c, i, j] == k else d * 0)

    @jit
    def maxpool2_backward(delta, arg, dx):
        """:func:`maxpool_backward` for 2x2 windows with stride 2 (no overlap: each pixel is
        written once: ``0 + delta * mask``, as the array code computes it)."""
        n_, c_, oh, ow = delta.shape
        for n in range(n_):
            for c in range(c_):
                for i in range(oh):
                    for j in range(ow):
                        d = delta[n, c, i, j]
                        a = arg[n, c, i, j]
                        off = d * 0  # 0 for a finite delta, NaN otherwise (as the mask product)
                        dx[n, c, 2 * i, 2 * j] = 0 + (d if a == 0 else off)
                        dx[n, c, 2 * i, 2 * j + 1] = 0 + (d if a == 1 else off)
                        dx[n, c, 2 * i + 1, 2 * j] = 0 + (d if a == 2 else off)
                        dx[n, c, 2 * i + 1, 2 * j + 1] = 0 + (d if a == 3 else off)
                if dx.shape[2] > 2 * oh or dx.shape[3] > 2 * ow:  # rows/columns no window covers
                    for p in range(dx.shape[2]):
                        for q in range(dx.shape[3]):
                            if p >= 2 * oh or q >= 2 * ow:
                                dx[n, c, p, q] = 0

    @jit
    def relu_vjp(z, g, out):
        """``out = g`` where ``z > 0``, else 0 (flat arrays)."""
        for k in range(z.size):
            out[k] = g[k] if z[k] > 0 else 0

    return {"im2col": im2col, "im2col_s1": im2col_s1, "col2im": col2im,
            "col2im_s1": col2im_s1, "bias_to_nchw": bias_to_nchw,
            "maxpool_forward": maxpool_forward, "maxpool2_forward": maxpool2_forward,
            "maxpool_backward": maxpool_backward, "maxpool2_backward": maxpool2_backward,
            "relu_vjp": relu_vjp}


def available() -> bool:
    """Whether the compiled kernels can be used (Numba importable, ``BIONP_NUMBA`` not 0)."""
    return load() is not None


def load():
    """The compiled kernels (a dict of Numba functions), or ``None`` without Numba or with
    ``BIONP_NUMBA=0`` (read on every call; Numba is imported once)."""
    return load_built(_state, _build)
