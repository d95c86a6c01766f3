r"""The Krotov–Hopfield learning rule (Krotov & Hopfield, PNAS 2019) as pure functions
on arrays: currents, the competition between hidden units and one update.

A layer of ``n_hidden`` units with weights :math:`W` (``n_hidden × n_in``) learns
from unlabelled inputs :math:`v` with a local Hebbian/anti-Hebbian rule.  For a
minibatch of inputs (rows of ``x``):

.. math::

    I_{b\mu} &= \sum_i \operatorname{sign}(W_{\mu i})\,|W_{\mu i}|^{p-1}\, x_{bi}
        \qquad\text{(currents, } I = x\,W_p^\top\text{)} \\
    g_{b\mu} &= \begin{cases} 1 & \mu \text{ is the strongest unit for sample } b \\
        -\Delta & \mu \text{ is the } k\text{-th strongest} \\ 0 & \text{otherwise}\end{cases} \\
    \Delta W_{\mu i} &= \sum_b g_{b\mu}\, x_{bi}
        - \Big(\sum_b g_{b\mu} I_{b\mu}\Big) W_{\mu i} \\
    W &\leftarrow W + \varepsilon\,
        \frac{\Delta W}{\max(\max_{\mu i}|\Delta W_{\mu i}|,\ \text{precision})}

with a learning rate :math:`\varepsilon` that decays linearly over training,
:math:`\varepsilon_e = \text{lr}\,(1 - e/E)` in epoch :math:`e = 0, \dots, E-1`.
At the fixed point of a unit that keeps winning, :math:`\sum_i |W_{\mu i}|^p = 1`
(the paper's convergence check, :meth:`KrotovHopfield.unit_norms`).

Norm dynamics and stability
---------------------------
Write :math:`N_\mu = \sum_i |W_{\mu i}|^p` and :math:`s_\mu = \sum_b g_{b\mu} I_{b\mu}`
(the *balance* of unit :math:`\mu`: its currents on the samples it won minus
:math:`\Delta` times those on the samples where it came ``k``-th).  Since
:math:`\partial N_\mu / \partial W_{\mu i} = p\,\operatorname{sign}(W_{\mu i})|W_{\mu i}|^{p-1}`,
one update changes the norm, to first order in :math:`\varepsilon`, by

.. math::

    \delta N_\mu = \frac{p\,\varepsilon}{\max(\max|\Delta W|, \text{precision})}
        \,(1 - N_\mu)\, s_\mu .

The unit sphere :math:`N_\mu = 1` therefore attracts a unit only while
:math:`s_\mu > 0`; a unit that comes ``k``-th with positive currents more often
(or on stronger samples) than it wins has :math:`s_\mu < 0`, and its norm moves
*away* from 1.  A unit whose currents are negative on the samples where it comes
``k``-th has :math:`s_\mu > 0` again: it converges to norm 1 as a *negative*
prototype (:math:`W_\mu \approx -x` up to scale) that never wins and whose
feature :math:`\max(W_\mu x, 0)^n` is zero on non-negative data.
:meth:`KrotovHopfield.fit` records, per epoch, the share of updated units with
:math:`s_\mu > 0` (``attracting_fraction``) and the share of units that won
(``winner_fraction``): a fall of the latter to about ``(k - 1) / n_hidden`` with
a high ``converged_fraction`` is this collapse, not convergence.

Ranking and ties
----------------
Units are ranked per sample by current, largest first, **ties broken by the
lowest unit index**: the winner is the first unit in that order, the
anti-Hebbian unit the ``k``-th.  The selection is O(``n_hidden``) per sample
(``argmax`` and ``partition``, never a full sort); rows whose ``k``-th value is
shared by several units are resolved exactly by the rule above.

Cost of one update
------------------
Only units that won or came ``k``-th for some sample of the batch have a
non-zero :math:`g` and hence a non-zero row of :math:`\Delta W` (all other rows
of :math:`\Delta W` are exactly zero), so the update is computed on those rows
only (at most ``2 * batch`` of them): one full matmul for the currents, the
selection, and ``O(batch · n_in)`` work for the update.  This is the same
arithmetic as the dense formula, not an approximation.

Reference: D. Krotov and J. J. Hopfield, "Unsupervised learning by competing
hidden units", PNAS 116 (16), 7723–7731 (2019).
"""

from __future__ import annotations

from bionp.backend import get_array_module, to_scalar

__all__ = ["competition", "hebbian_currents", "krotov_hopfield_update", "power_weights"]



def power_weights(W, p: float, out=None):
    r""":math:`\operatorname{sign}(W)\,|W|^{p-1}` (fast paths for ``p = 2`` and ``p = 3``).

    For ``p = 2`` this is ``W`` itself (returned without a copy when ``out`` is None).

    Parameters
    ----------
    W : array (n_hidden, n_in)
    p : float >= 1
    out : array or None
        Written in place when given.
    """
    xp = get_array_module(W)
    if p == 2:
        if out is None:
            return W
        out[...] = W
        return out
    if out is None:
        out = xp.empty_like(W)
    if p == 3:
        xp.abs(W, out=out)
        out *= W
        return out
    xp.abs(W, out=out)
    xp.power(out, W.dtype.type(p - 1), out=out)
    out *= xp.sign(W)
    return out


def hebbian_currents(x, W, p: float, out=None):
    r"""Currents :math:`I = x\,(\operatorname{sign}(W)|W|^{p-1})^\top`, ``(batch, n_hidden)``.

    Parameters
    ----------
    x : array (batch, n_in)
    W : array (n_hidden, n_in)
    p : float >= 1
    out : array or None
        Written in place when given.
    """
    xp = get_array_module(x, W)
    return xp.matmul(x, power_weights(W, p).T, out=out)


def competition(currents, k: int):
    """Winner and ``k``-th strongest unit of every row of ``currents``.

    Units are ranked by current, largest first, ties broken by the lowest index.

    Parameters
    ----------
    currents : array (batch, n_hidden)
    k : int, 1 <= k <= n_hidden (``k = 1`` returns the winner twice)

    Returns
    -------
    winner, kth : int arrays (batch,)
    """
    xp = get_array_module(currents)
    n_hidden = currents.shape[1]
    winner = xp.argmax(currents, axis=1)  # first maximum: lowest index among ties
    col = n_hidden - k
    vk = xp.partition(currents, col, axis=1)[:, col:col + 1]  # k-th largest value, (batch, 1)
    equal = currents == vk
    kth = xp.argmax(equal, axis=1)  # lowest index holding the k-th largest value
    n_equal = xp.count_nonzero(equal, axis=1)
    if to_scalar(xp.max(n_equal)) > 1:
        # Some rows share the k-th value among several units: the k-th unit in
        # (value desc, index asc) order is the j-th of the tied units, where
        # j = k - #(units strictly above the k-th value).
        rows = xp.flatnonzero(n_equal > 1)
        sub = currents[rows]
        sub_eq = equal[rows]
        above = xp.count_nonzero(sub > vk[rows], axis=1)
        j = (k - above)[:, None]
        rank_in_ties = xp.cumsum(sub_eq, axis=1)
        kth[rows] = xp.argmax(sub_eq & (rank_in_ties == j), axis=1)
    return winner, kth


def krotov_hopfield_update(W, x, *, p: float, k: int, delta: float, lr: float,
                           precision: float, Wp=None, currents=None, signs=None,
                           balance=None):
    r"""One minibatch update of the Krotov–Hopfield rule, in place on ``W``.

    See the module docstring for the equations.  Only the rows of ``W`` whose
    :math:`\Delta W` is non-zero (units that won or came ``k``-th for some sample)
    are touched.

    Parameters
    ----------
    W : array (n_hidden, n_in)
        Weights, updated in place.
    x : array (batch, n_in)
        Inputs (already validated and of ``W``'s dtype and backend).
    p, k, delta, lr, precision : numbers
        The rule's parameters (``lr`` is the step :math:`\varepsilon` of this update).
    Wp : array (n_hidden, n_in), optional
        ``sign(W)|W|^(p-1)``, kept in sync with ``W``: it is read for the currents
        and its updated rows are recomputed in place.  Computed if None.
    currents : array, optional
        Buffer of shape at least ``(batch, n_hidden)`` for the currents.
    signs : array (n_in,), optional
        Dale signs (+1 excitatory, −1 inhibitory) per input column; weights that
        would cross zero are set to zero.
    balance : array (n_hidden,), optional
        Accumulator: :math:`s_\mu = \sum_b g_{b\mu} I_{b\mu}` of this batch (the
        currents before the update) is added to it in place (see "Norm dynamics
        and stability" in the module docstring).

    Returns
    -------
    winner, kth : int arrays (batch,)
        The winning and the ``k``-th unit of every sample.
    """
    xp = get_array_module(W, x)
    batch = x.shape[0]
    if Wp is None:
        Wp = power_weights(W, p)
    cur = None if currents is None else currents[:batch]
    cur = xp.matmul(x, Wp.T, out=cur)
    winner, kth = competition(cur, k)

    # units with a non-zero g: the only rows of Delta W that are not zero
    touched = xp.zeros(W.shape[0], dtype=bool)
    touched[winner] = True
    touched[kth] = True
    rows = xp.flatnonzero(touched)
    position = xp.cumsum(touched) - 1  # row index -> position in `rows`
    samples = xp.arange(batch)
    g = xp.zeros((rows.shape[0], batch), dtype=W.dtype)
    g[position[winner], samples] = 1
    g[position[kth], samples] = -W.dtype.type(delta)

    # sum_b g_bmu I_bmu for the touched units
    gi = (g * cur[:, rows].T).sum(axis=1)
    if balance is not None:
        balance[rows] += gi
    W_rows = W[rows]
    ds = xp.matmul(g, x)
    ds -= gi[:, None] * W_rows
    floor = max(float(precision), float(xp.finfo(W.dtype).tiny))
    scale = xp.maximum(xp.max(xp.abs(ds)), W.dtype.type(floor))
    ds *= W.dtype.type(lr) / scale
    W_rows += ds
    if signs is not None:
        # Dale: clip weights that crossed zero back to zero
        W_rows *= signs
        xp.maximum(W_rows, 0, out=W_rows)
        W_rows *= signs
    W[rows] = W_rows
    if Wp is not W:
        Wp[rows] = power_weights(W_rows, p)
    return winner, kth
