r"""Compiled CPU kernels for products with row-sparse matrices (optional: Numba).

A row-sparse matrix :math:`S` (``rows × n_cols``) has ``per_row`` nonzeros in every
row, :math:`S_{k,\mathrm{idx}_{kj}} = w_{kj}` (a dendritic layer's synapses).  The three
products of a training step are

.. math::

    (S D)_{k b} = \sum_j w_{kj} D_{\mathrm{idx}_{kj}, b}, \qquad
    (S^\top E)_{i b} = \sum_{(k, j):\, \mathrm{idx}_{kj} = i} w_{kj} E_{k b}, \qquad
    P_{kj} = \sum_b E_{k b}\, D_{\mathrm{idx}_{kj}, b},

the last one a *sampled* dense-dense product (:math:`(E D^\top)` evaluated at the
synapses only: the weight gradient).  NumPy and SciPy have no vectorised kernel for
any of them (SciPy's CSR product runs a scalar loop; the sampled product needs the
gathered rows materialised), so each is written here as loops over rows and synapses
with a contiguous innermost loop over ``b`` that the compiler turns into SIMD
instructions, four synapses at a time (one pass over the output row per four
synapses).  Sums over ``b`` may be reassociated (``fastmath`` ``reassoc``/``contract``
only: NaN and Inf keep their meaning), so results differ from a sequential sum by
rounding.  Every index is checked against ``n_cols`` (an out-of-range index raises
``IndexError`` instead of reading or writing outside the arrays).

Used through :func:`bionp.kernels.sparse_rows_matmul` and
:func:`bionp.kernels.sparse_rows_dot` on NumPy and the strict stand-in when Numba is
installed (``pip install bionp[fast]``) and ``BIONP_NUMBA`` is not ``0``; compiled on
first use (about a second per dtype) and cached on disk by Numba.  This module
imports Numba only when :func:`load` is called.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["available", "load", "load_built"]

_state: dict[str, Any] = {}
_FASTMATH = {"reassoc", "contract"}


_OFF = ("0", "false", "no", "off")
_ENV_KEY = b"BIONP_NUMBA"
_decided: dict = {}


def _enabled() -> bool:
    # os.environ's own dict of encoded names and values (CPython, POSIX) read directly: a
    # dictionary access instead of os.environ.get's encode and KeyError round trip (the dense
    # kernels ask on every call); os.environ.get where the mapping is another
    data = getattr(os.environ, "_data", None) if os.name == "posix" else None
    if type(data) is not dict:
        return os.environ.get("BIONP_NUMBA", "1").strip().lower() not in _OFF
    raw = data.get(_ENV_KEY)
    on = _decided.get(raw)
    if on is None:
        value = "1" if raw is None else os.fsdecode(raw)
        on = _decided[raw] = value.strip().lower() not in _OFF
    return on


def _build():
    import numba  # noqa: PLC0415  (optional dependency, loaded on first use)
    import numpy as np  # noqa: PLC0415

    jit = numba.njit(nogil=True, cache=True, fastmath=_FASTMATH, boundscheck=False)

    @jit
    def checked(indices, k, j, n_cols):
        """``indices[k, j]``, refused outside ``[0, n_cols)``."""
        c = indices[k, j]
        if c < 0 or c >= n_cols:
            raise IndexError("row-sparse product: an index is out of range")
        return c

    @jit
    def checked4(indices, k, j, n_cols):
        """``indices[k, j:j + 4]`` as four numbers, each refused outside ``[0, n_cols)``."""
        return (checked(indices, k, j, n_cols), checked(indices, k, j + 1, n_cols),
                checked(indices, k, j + 2, n_cols), checked(indices, k, j + 3, n_cols))

    @jit
    def rows_matmul(weights, indices, dense, out):
        """``out = S @ dense`` (``out``: (rows, m), overwritten)."""
        rows, per_row = weights.shape
        n_cols, m = dense.shape
        for k in range(rows):
            o = out[k]
            for b in range(m):
                o[b] = 0
            j = 0
            while j < per_row:
                if j + 4 <= per_row:
                    c0, c1, c2, c3 = checked4(indices, k, j, n_cols)
                    r0, r1, r2, r3 = dense[c0], dense[c1], dense[c2], dense[c3]
                    w0, w1, w2, w3 = (weights[k, j], weights[k, j + 1], weights[k, j + 2],
                                      weights[k, j + 3])
                    for b in range(m):
                        o[b] += (w0 * r0[b] + w1 * r1[b]) + (w2 * r2[b] + w3 * r3[b])
                    j += 4
                else:
                    r0 = dense[checked(indices, k, j, n_cols)]
                    w0 = weights[k, j]
                    for b in range(m):
                        o[b] += w0 * r0[b]
                    j += 1

    @jit
    def rows_matmul_t(weights, indices, other, out):
        """``out = S.T @ other`` (``other``: (rows, m); ``out``: (n_cols, m), overwritten)."""
        rows, per_row = weights.shape
        n_cols, m = out.shape
        for i in range(n_cols):
            for b in range(m):
                out[i, b] = 0
        for k in range(rows):
            e = other[k]
            for j in range(per_row):
                o = out[checked(indices, k, j, n_cols)]
                wv = weights[k, j]
                for b in range(m):
                    o[b] += wv * e[b]

    @jit
    def rows_dot(indices, dense, other, out):
        """``out[k, j] = dense[indices[k, j]] . other[k]`` (``out``: (rows, per_row))."""
        rows, per_row = indices.shape
        n_cols, m = dense.shape
        zero = np.zeros(1, dtype=out.dtype)[0]  # accumulate in the output's dtype
        for k in range(rows):
            e = other[k]
            j = 0
            while j < per_row:
                if j + 4 <= per_row:
                    c0, c1, c2, c3 = checked4(indices, k, j, n_cols)
                    r0, r1, r2, r3 = dense[c0], dense[c1], dense[c2], dense[c3]
                    s0 = s1 = s2 = s3 = zero
                    for b in range(m):
                        eb = e[b]
                        s0 += eb * r0[b]
                        s1 += eb * r1[b]
                        s2 += eb * r2[b]
                        s3 += eb * r3[b]
                    out[k, j], out[k, j + 1], out[k, j + 2], out[k, j + 3] = s0, s1, s2, s3
                    j += 4
                else:
                    r0 = dense[checked(indices, k, j, n_cols)]
                    s0 = zero
                    for b in range(m):
                        s0 += e[b] * r0[b]
                    out[k, j] = s0
                    j += 1

    return {"rows_matmul": rows_matmul, "rows_matmul_t": rows_matmul_t, "rows_dot": rows_dot}


def available() -> bool:
    """Whether the compiled kernels can be used (Numba importable, ``BIONP_NUMBA`` not 0)."""
    return load() is not None


def load():
    """The compiled kernels (a dict of Numba functions), or ``None`` without Numba or
    with ``BIONP_NUMBA=0``; the environment variable is read on every call, Numba is
    imported once."""
    return load_built(_state, _build)


def load_built(state: dict, build):
    """``build()``'s kernels, built once into ``state`` (``None`` if Numba is missing), or
    ``None`` while ``BIONP_NUMBA=0``: the switch shared by every compiled-kernel module."""
    if not _enabled():
        return None
    if "kernels" not in state:
        try:
            state["kernels"] = build()
        except ImportError:
            state["kernels"] = None
    return state["kernels"]
