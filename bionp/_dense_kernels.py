r"""Compiled CPU kernels of the dense training step (optional: Numba).

Each kernel fuses several elementwise passes of the plain array code into one pass and
performs the plain code's floating-point operations, in its order and in the arrays'
dtype, so that both give the same bits:

* ``sgd(theta, g, v, backup, lr, mu, wd, use_v, nesterov, use_wd, keep)`` (and
  ``sgd_plain(theta, g, lr)``, ``sgd_plain_backup(theta, g, backup, lr)`` without momentum
  and weight decay, with fewer arguments to pass): one SGD step
  (:mod:`bionp.optim`) in place, with the copy of :math:`\theta` the training loop keeps
  (``backup``) written in the same pass,

  .. math::

      g' = \lambda\theta + g, \quad v \leftarrow \mu v + g', \quad
      \theta \leftarrow \theta - \mathrm{lr}\,(g' + \mu v \text{ or } v \text{ or } g');

* ``sigmoid32(z, out)`` (``sigmoid32_inplace(a)``): the float32 sigmoid :math:`1/(1 + e^{-z})` in one pass, with
  NumPy's float32 exponential reproduced (:mod:`bionp._exp32`; ``exp32(x, out)`` is that
  exponential alone), present only where that agrees with ``numpy.exp`` on this machine
  (compared when the kernels are built);
* ``sigmoid_tail(e)``: :math:`e \leftarrow 1/(1 + e)` (the last two of the sigmoid's four
  passes, the exponential NumPy's: float64, or where ``sigmoid32`` does not apply);
* ``sigmoid_vjp(a, g, out)``: :math:`((1 - a)\,a)\,g`;
* ``column_sum(a, out, zero)``: :math:`o_j = \sum_i a_{ij}` of a C-contiguous matrix, each
  column summed from zero in row order, as NumPy's ``a.sum(axis=0)`` sums a matrix of two
  or more columns (a bias gradient), in one pass with the rows read contiguously.
* ``sign_times(w, m, out, one, use_m)``: :math:`\operatorname{sign}(w)\,|m|`
  (:math:`\operatorname{sign}` of NaN is NaN, of :math:`\pm 0` is 0), or
  :math:`\operatorname{sign}(w)` without ``use_m`` (sign-concordant feedback);
* ``scale_add(b, a, g)``: :math:`b \leftarrow b\,a + g` (a weight mirror's decay and
  increment);
* ``half_signs(octets, out, h)``: ``out[i]`` = bit ``i % 8`` of ``octets[i // 8]`` minus
  :math:`\tfrac12`, written as ``+h`` or ``-h`` with ``h`` = :math:`\tfrac12` (a weight
  mirror's noise from random bits).

No ``fastmath``: every product and sum is rounded on its own (no fused multiply-add), as
NumPy rounds them.  Arrays are one-dimensional contiguous views; scalars come in the
arrays' dtype.  Used through :mod:`bionp.backend_dense`; imports Numba only when
:func:`load` is called (``BIONP_NUMBA=0`` turns the kernels off).
"""

from __future__ import annotations

from typing import Any

from bionp._kernels import load_built

__all__ = ["load"]

_state: dict[str, Any] = {}


def _build():
    import numba  # noqa: PLC0415  (optional dependency, loaded on first use)

    jit = numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)

    @jit
    def sgd_plain(theta, g, lr):
        for i in range(theta.shape[0]):
            theta[i] = theta[i] - g[i] * lr

    @jit
    def sgd_plain_backup(theta, g, backup, lr):
        for i in range(theta.shape[0]):
            t = theta[i]
            backup[i] = t
            theta[i] = t - g[i] * lr

    @jit
    def sgd(theta, g, v, backup, lr, mu, wd, use_v, nesterov, use_wd, keep):
        for i in range(theta.shape[0]):
            t = theta[i]
            if keep:
                backup[i] = t
            gi = g[i]
            if use_wd:
                gi = t * wd + gi
            if use_v:
                vi = v[i] * mu + gi
                v[i] = vi
                d = vi * mu + gi if nesterov else vi
            else:
                d = gi
            theta[i] = t - d * lr

    @jit
    def sigmoid_tail(e, one):
        for i in range(e.shape[0]):
            e[i] = one / (e[i] + one)

    @jit
    def sigmoid_vjp(a, g, out, one):
        for i in range(a.shape[0]):
            ai = a[i]
            out[i] = ((one - ai) * ai) * g[i]

    @jit
    def column_sum(a, out, zero):
        n, m = a.shape
        for j in range(m):
            out[j] = zero
        for i in range(n):
            row = a[i]
            for j in range(m):
                out[j] += row[j]

    @jit
    def sign_times(w, m, out, one, use_m):
        for i in range(w.shape[0]):
            wi = w[i]
            if wi > 0:
                s = one
            elif wi < 0:
                s = -one
            elif wi == 0:
                s = one - one
            else:
                s = wi  # NaN
            out[i] = s * abs(m[i]) if use_m else s

    @jit
    def scale_add(b, a, g):
        for i in range(b.shape[0]):
            b[i] = b[i] * a + g[i]

    @jit
    def half_signs(octets, out, h):  # bit - 1/2 = +h or -h (h = 1/2), eight per byte
        n = out.shape[0]
        whole = n >> 3
        for i in range(whole):
            b = octets[i]
            for j in range(8):
                out[8 * i + j] = h if (b >> j) & 1 else -h
        for i in range(8 * whole, n):
            out[i] = h if (octets[i >> 3] >> (i & 7)) & 1 else -h

    kernels = {}
    try:  # NumPy's float32 exp on this machine: the one-pass sigmoid (else the array code's)
        from bionp import _exp32  # noqa: PLC0415  (imports Numba)

        kernels["exp32"] = _exp32.exp32_array
        if _exp32.matches_numpy(_exp32.exp32_array):
            kernels.update(sigmoid32=_exp32.sigmoid32,
                           sigmoid32_inplace=_exp32.sigmoid32_inplace)
    except Exception:  # noqa: BLE001  (a compiler that cannot build it: the other kernels stay)
        kernels = {}
    return kernels | {"sgd": sgd, "sgd_plain": sgd_plain, "sgd_plain_backup": sgd_plain_backup,
                      "sigmoid_tail": sigmoid_tail, "sigmoid_vjp": sigmoid_vjp,
                      "sign_times": sign_times, "scale_add": scale_add, "half_signs": half_signs,
                      "column_sum": column_sum}


def load():
    """The compiled kernels (a dict of Numba functions), or ``None`` without Numba or with
    ``BIONP_NUMBA=0`` (:func:`bionp._kernels.load_built`)."""
    return load_built(_state, _build)
