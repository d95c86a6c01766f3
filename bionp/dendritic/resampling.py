r"""Synaptic resampling: structural plasticity of a dendritic layer's connectivity.

A dendritic layer keeps, per dendrite :math:`k`, ``n`` input indices
:math:`\mathrm{idx}_{k,\cdot}` (distinct) and weights :math:`w_{k,\cdot}`.
A resampling event replaces some synapses of every dendrite at once:

**weakest** (deterministic pruning)
    :math:`r = \lfloor n \cdot p \rfloor` synapses with the smallest
    :math:`|w_{kj}|` are removed from each dendrite (``argpartition`` along the
    synapse axis) and replaced by :math:`r` inputs drawn uniformly, without
    replacement, among the inputs the dendrite is **not** connected to; their
    weights are drawn afresh, :math:`w \sim \mathcal N(0, \sigma^2)` with the
    layer's initial standard deviation :math:`\sigma`.

**probabilistic** (the original NumPy implementation's variant)
    each synapse is removed independently with probability

    .. math::

        P(|w|) = \frac{p_{\max}}{1 + \exp\big((|w| - \theta)/s\big)},

    (:math:`p_{\max} = 0.95`, :math:`\theta = 0.6`, :math:`s = 0.1` by default), so
    weak synapses are very likely and strong ones unlikely to be replaced; new
    inputs are drawn as above and new weights from a Laplace distribution with
    the layer's initial standard deviation, :math:`b = \sigma/\sqrt2`.  With the
    original's constants and its initialisation (:math:`\sigma = \sqrt{2/784}
    \approx 0.05`), :math:`P \approx 0.95` for almost every synapse until the weights
    grow towards :math:`\theta`: events replace most synapses (94 % at the first
    event of the seed's ``DendriticLayer(784, 10, 32, 23)`` trained with Adam,
    lr 0.004, on standardised Fashion-MNIST; only 0.2 % of its weights then exceed
    0.3), so the test accuracy drops after every event (``examples/dendritic.py``).

New inputs never duplicate an input of the dendrite (including the ones being
removed in the same event), so the synapse count per dendrite is constant.

Vectorised draw of new inputs
-----------------------------
For all dendrites at once a key :math:`u_{ki} \sim U[0, 1)` is drawn for every
input :math:`i`; keys of connected inputs are set to 2 and the ``m`` smallest
keys per row are taken with ``argpartition`` (``O(D · in_dim)`` work, no
Python loop over dendrites).  The selected inputs are then ordered by key, so
the result does not depend on the backend's ``argpartition`` order.
"""

from __future__ import annotations

import math

from bionp.backend import get_array_module

__all__ = [
    "draw_unconnected_inputs",
    "resample_weakest",
    "resample_probabilistic",
    "prune_probability",
    "reset_optimizer_state",
]


def _k_smallest_sorted(xp, keys, k: int):
    """Column indices of the ``k`` smallest entries of each row, ascending by key."""
    if k < keys.shape[1]:
        part = xp.argpartition(keys, k - 1, axis=1)[:, :k]
    else:
        part = xp.argsort(keys, axis=1)
        return part
    order = xp.argsort(xp.take_along_axis(keys, part, axis=1), axis=1)
    return xp.take_along_axis(part, order, axis=1)


def draw_unconnected_inputs(idx, in_dim: int, m: int, rng):
    """``(D, m)`` distinct input indices per dendrite, none of them already in ``idx[k]``.

    Parameters
    ----------
    idx : int array (D, n) or None
        Current connectivity (``None``: no input connected yet).
    in_dim : int
    m : int
        Number of inputs per dendrite, ``m <= in_dim - n``.
    rng : bionp.random.Generator
    """
    xp = get_array_module(idx)
    n_dend = idx.shape[0]
    n = idx.shape[1]
    if m > in_dim - n:
        raise ValueError(f"cannot draw {m} new inputs per dendrite: only {in_dim - n} of "
                         f"{in_dim} inputs are unconnected")
    keys = rng.random((n_dend, in_dim), dtype="float64", xp=xp)
    if n:
        rows = xp.arange(n_dend)[:, None]
        keys[rows, idx] = 2.0  # above every uniform key: never chosen
    return _k_smallest_sorted(xp, keys, m)


def resample_weakest(idx, w, in_dim: int, n_replace: int, rng, init_std: float):
    """Replace the ``n_replace`` weakest synapses of every dendrite, in place.

    Returns
    -------
    mask : bool array like ``w``, True where a synapse was replaced.
    """
    xp = get_array_module(idx, w)
    n_dend, n = w.shape
    mask = xp.zeros(w.shape, dtype=bool)
    if n_replace == 0:
        return mask
    if n_replace < n:
        slots = xp.argpartition(xp.abs(w), n_replace - 1, axis=1)[:, :n_replace]
        slots = xp.sort(slots, axis=1)
    else:
        slots = xp.broadcast_to(xp.arange(n), (n_dend, n))
    new_inputs = draw_unconnected_inputs(idx, in_dim, n_replace, rng)
    new_w = rng.normal(0.0, init_std, (n_dend, n_replace), dtype=w.dtype, xp=xp)
    rows = xp.arange(n_dend)[:, None]
    idx[rows, slots] = new_inputs
    w[rows, slots] = new_w
    mask[rows, slots] = True
    return mask


def prune_probability(w, p_max: float = 0.95, threshold: float = 0.6, steepness: float = 0.1):
    r""":math:`p_{\max} / (1 + e^{(|w| - \theta)/s})`, computed without overflow
    as :math:`\tfrac{p_{\max}}2 (1 - \tanh((|w| - \theta)/2s))`."""
    xp = get_array_module(w)
    dt = w.dtype.type
    z = xp.abs(w)
    z -= dt(threshold)
    z *= dt(1.0 / (2.0 * steepness))
    xp.tanh(z, out=z)
    xp.subtract(dt(1.0), z, out=z)
    z *= dt(0.5 * p_max)
    return z


def resample_probabilistic(idx, w, in_dim: int, rng, init_std: float, p_max: float = 0.95,
                           threshold: float = 0.6, steepness: float = 0.1):
    """Replace each synapse with probability :func:`prune_probability`, in place.

    At most ``in_dim - n`` synapses of a dendrite can be replaced in one event
    (there are no more unconnected inputs); beyond that the later ones (in
    synapse order) are kept.  New weights are Laplace with standard deviation
    ``init_std``.

    Returns
    -------
    mask : bool array like ``w``, True where a synapse was replaced.
    """
    xp = get_array_module(idx, w)
    n_dend, n = w.shape
    n_avail = in_dim - n
    m = min(n, n_avail)
    u = rng.random(w.shape, dtype=w.dtype, xp=xp)
    prune = u < prune_probability(w, p_max, threshold, steepness)
    if m <= 0:
        return xp.zeros(w.shape, dtype=bool)
    rank = xp.cumsum(prune, axis=1) - 1  # rank of a pruned synapse among its dendrite's pruned
    prune &= rank < m
    cand = draw_unconnected_inputs(idx, in_dim, m, rng)
    new_inputs = xp.take_along_axis(cand, xp.clip(rank, 0, m - 1), axis=1)
    new_w = rng.laplace(0.0, init_std / math.sqrt(2.0), w.shape, dtype=w.dtype, xp=xp)
    idx[...] = xp.where(prune, new_inputs, idx)
    w[...] = xp.where(prune, new_w, w)
    return prune


def reset_optimizer_state(optimizer, param, mask) -> int:
    """Zero an optimiser's per-parameter state (momenta, Adam's m and v) where ``mask``.

    Works with :mod:`bionp.optim` optimisers (``optimizer.params``, a list of
    dicts of arrays, and ``optimizer.state[name][layer][key]``): the state
    buffers of the parameter that *is* ``param`` are found by identity.

    Returns the number of state buffers reset (0 if the optimiser keeps none for
    ``param``).
    """
    params = getattr(optimizer, "params", None)
    state = getattr(optimizer, "state", None)
    if not params or not isinstance(state, dict):
        return 0
    n = 0
    for i, p in enumerate(params):
        for k, v in p.items():
            if v is param:
                for per_layer in state.values():
                    buf = per_layer[i].get(k)
                    if buf is not None:
                        buf[mask] = 0
                        n += 1
    return n
