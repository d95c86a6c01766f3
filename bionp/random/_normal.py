r"""Box–Muller as array code: the definition of :meth:`bionp.random.Generator.normal`'s numbers.

For pairs of uniforms :math:`(u_1, u_2)` of the stream (float32: :math:`u = k\,2^{-24}`,
float64: :math:`u = k\,2^{-53}`), every step rounded in the draw's dtype in this order:

.. math::

    x = 1 - u_1,\quad \ell = \mathrm{L}(x),\quad r = \sqrt{-2\,\ell},\quad
    \theta = u_2 \cdot \mathrm{fl}(2\pi),\quad
    z_{\cos} = \mathrm{C}(\theta)\, r,\quad z_{\sin} = \mathrm{S}(\theta)\, r,

then ``* scale`` and ``+ loc`` (each only when given).  The transcendental steps
:math:`\mathrm{L}, \mathrm{C}, \mathrm{S}` are

* **float32**: the float64 :math:`\ln`, :math:`\cos`, :math:`\sin` of the (exactly
  converted) float32 argument, rounded to float32.  On this domain that is the **correctly
  rounded** float32 value: :math:`x` is one of the :math:`2^{24}` numbers
  :math:`j\,2^{-24}` and :math:`\theta` one of :math:`2^{24}` values in :math:`[0, 2\pi)`, and
  for every one of them the float64 result of NumPy lies at least 21 (log), 9 (cos) and 46
  (sin) float64 ulp from the midpoint between two float32 numbers (checked exhaustively,
  the closest cases against 200-bit arithmetic: ``tests/test_box_muller.py``).  Any float64
  evaluation with an error below a few ulp (NumPy's, glibc's, CUDA's, the Numba kernel's
  polynomials) therefore gives the same bits, so float32 normals are **bit-identical** on
  NumPy, the strict stand-in, CuPy, the compiled kernels and every CPU;
* **float64**: the backend's own float64 ``log``, ``cos``, ``sin`` (NumPy and CuPy agree
  to a few ulp).

The uniforms, the counter and the pairing (cosines first, then sines) are those of
:meth:`bionp.random.Generator.normal`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["transform"]


def _rounded(xp, f, a, out) -> None:
    """``out = f(a)`` in ``a``'s float dtype: float32 through float64, rounded once."""
    if a.dtype == np.float32:
        out[...] = f(a.astype(xp.float64))
    else:
        f(a, out=out)


def transform(xp, z, a: int, b: int, half: int, s=None, c=None) -> None:
    r"""Box–Muller in place on the pairs ``a … b-1`` of ``z``: ``z[i]`` holds :math:`u_1`
    and ``z[half + i]`` :math:`u_2` of pair ``i`` and become the cosine and the sine
    normal of the pair (module docstring), then ``* s`` and ``+ c`` where not ``None``.

    Parameters
    ----------
    xp : module
        The array module of ``z``.
    z : array
        Flat float32 or float64 array of length ``>= 2 * half``.
    a, b : int
        The pairs transformed.
    half : int
        Number of pairs of the whole draw (the offset of the :math:`u_2`).
    s, c : scalar of ``z``'s dtype or None
        Scale and location, applied to every value in that order.
    """
    dt = z.dtype
    r = xp.subtract(1, z[a:b])  # 1 - u1 in (0, 1]
    _rounded(xp, xp.log, r, r)
    r *= -2
    xp.sqrt(r, out=r)
    cos_part, sin_part = z[a:b], z[half + a:half + b]
    sin_part *= dt.type(2 * np.pi)
    _rounded(xp, xp.cos, sin_part, cos_part)
    _rounded(xp, xp.sin, sin_part, sin_part)
    for part in (cos_part, sin_part):
        part *= r
        if s is not None:
            part *= s
        if c is not None:
            part += c
