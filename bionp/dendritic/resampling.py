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
    0.3), so the test accuracy drops after every event (``examples/dendritic.py``:
    78.5 ± 0.5 % after 10 epochs of the original's setting, against 86.5 % for the
    weakest-synapse variant).  Zeroing the replaced synapses' Adam moments
    (``reset_optimizer_state=True``: new synapses then take steps of several times the
    learning rate, as new positions of the original's dense moments did) gives
    80.8 %; the soma activation and the input scaling change nothing measurable.  The
    original's own constants for this run (new weights from Laplace(0, 0.05), i.e.
    ``new_weight_scale=0.05``, and an event every 64 updates: ``examples/dendritic.py
    --preset original_probabilistic``) give 77.1 ± 0.6 % (3 seeds; best epoch 79.4 %),
    against 86.3 ± 0.05 % for the weakest-synapse variant in the same setting.  The
    original's reported 86.6 % is not reproduced.

New inputs never duplicate an input of the dendrite (including the ones being
removed in the same event), so the synapse count per dendrite is constant.

Vectorised draw of new inputs
-----------------------------
All dendrites draw at once, with no Python loop over dendrites
(:func:`draw_unconnected_inputs`).  With ``N = in_dim - n`` free inputs per dendrite:

**rejection** (used when few inputs are taken, :math:`n + m \ll` ``in_dim``)
    candidates :math:`u \sim U\{0, \dots, \mathrm{in\_dim} - 1\}` are drawn
    independently, a block of columns for every dendrite at a time, and one is
    accepted for dendrite :math:`k` if it is neither connected to :math:`k` nor
    accepted for :math:`k` before; the first ``m`` accepted, in the order drawn,
    are the new inputs.  Given the :math:`t` accepted so far, the next accepted
    candidate is uniform over the :math:`N - t` inputs still free, so an ordered
    result :math:`(a_1, \dots, a_m)` has probability
    :math:`\prod_{t=0}^{m-1} (N - t)^{-1}`: exactly sampling without replacement.
    At most about :math:`m / (1 - (n + m)/\mathrm{in\_dim})` candidates per dendrite, so
    ``O(D · m)`` work instead of ``O(D · in_dim)``.

**keys** (otherwise)
    a key :math:`u_{ki} \sim U[0, 1)` for every input :math:`i`; keys of connected
    inputs are set to 2 and the ``m`` smallest keys per row are taken with
    ``argpartition``, ordered by key (so the result does not depend on the
    backend's ``argpartition`` order).  Ordering i.i.d. keys gives every ordered
    ``m``-tuple of free inputs the same probability as well.

Which one is used depends only on the sizes, so every backend draws the same
numbers.
"""

from __future__ import annotations

import functools
import math

from bionp.backend import get_array_module, to_scalar

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


# The first rejection round is made wide enough that a second one is needed in at most
# about one event in this many (see :func:`_rejection_width`).
_ROUNDS_TARGET = 100
# Rejection is used while its round is at most this fraction of ``in_dim`` wide (see
# :func:`_use_rejection`).
_REJECTION_MAX_WIDTH = 0.25


def _binomial_upper_tail(c: int, q: float, k_min: int) -> float:
    r""":math:`P[\mathrm{Bin}(c, q) \ge k_{\min}]`, summed term by term in log space."""
    if k_min <= 0:
        return 1.0
    if k_min > c:
        return 0.0
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    log_q, log_p = math.log(q), math.log1p(-q)
    lg_c = math.lgamma(c + 1)
    return math.fsum(
        math.exp(lg_c - math.lgamma(k + 1) - math.lgamma(c - k + 1) + k * log_q + (c - k) * log_p)
        for k in range(k_min, c + 1))


@functools.lru_cache(maxsize=256)
def _rejection_width(n_rows: int, n: int, m: int, in_dim: int) -> int:
    r"""Candidates per row in the first round of the rejection sampler.

    A candidate of row :math:`k` is rejected when it is one of the at most
    :math:`n + m - 1` inputs already taken there, so with probability at most
    :math:`q = (n + m - 1)/\mathrm{in\_dim}`, independently of the other candidates.
    A row is still short after :math:`c` candidates only if more than :math:`c - m`
    of them were rejected, hence

    .. math::

        P[\text{row short}] \le P[\mathrm{Bin}(c, q) \ge c - m + 1],

    and :math:`c` is the smallest width with ``n_rows`` times this bound at most
    1/100: a second round (for the few rows still short) is needed in about one
    event in a hundred or fewer.  The width depends only on the four sizes, never
    on the backend, so every backend draws the same candidates.
    """
    q = (n + m - 1) / in_dim

    def short_rows(c):
        return n_rows * _binomial_upper_tail(c, q, c - m + 1)

    hi = m
    while short_rows(hi) > 1.0 / _ROUNDS_TARGET:
        hi *= 2
    lo = max(m, hi // 2)
    while lo < hi:  # the bound falls as c grows: bisect for the smallest c that meets it
        mid = (lo + hi) // 2
        if short_rows(mid) > 1.0 / _ROUNDS_TARGET:
            lo = mid + 1
        else:
            hi = mid
    return hi


def _draw_by_keys(xp, idx, in_dim: int, m: int, rng):
    """The ``m`` unconnected inputs of smallest uniform key per row, ordered by key."""
    n_dend, n = idx.shape
    keys = rng.random((n_dend, in_dim), dtype="float64", xp=xp)
    if n:
        rows = xp.arange(n_dend)[:, None]
        keys[rows, idx] = 2.0  # above every uniform key: never chosen
    return _k_smallest_sorted(xp, keys, m)


def _draw_by_rejection(xp, idx, in_dim: int, m: int, rng, width: int | None = None):
    """Sequential rejection, vectorised over the dendrites (see :func:`draw_unconnected_inputs`).

    ``width``: candidates per row and round, :func:`_rejection_width` by default (the
    tests make it small to force many rounds).  Any width gives the same law; the
    numbers drawn differ.
    """
    n_dend, n = idx.shape
    if width is None:
        width = _rejection_width(n_dend, n, m, in_dim)
    # taken[k * in_dim + i]: input i is connected to dendrite k or already accepted for it
    taken = xp.zeros(n_dend * in_dim, dtype=bool)
    row_base = xp.arange(n_dend, dtype=xp.int64) * in_dim
    taken[(idx + row_base[:, None]).reshape(-1)] = True
    # accepted inputs, row by row, with one spill slot (column m) for the candidates not taken
    out = xp.empty(n_dend * (m + 1), dtype=xp.int64)
    n_accepted = xp.zeros(n_dend, dtype=xp.int64)
    column = xp.arange(width, dtype=xp.int64)
    rows = None  # the rows still short; None: all of them (the first round)
    n_rows = n_dend
    while True:
        cand = rng.integers(0, in_dim, (n_rows, width), xp=xp)
        base = row_base if rows is None else row_base[rows]
        flat = cand + base[:, None]
        # a candidate equal to an earlier one of its row and round: sort value * width + column,
        # so equal values lie side by side with the earliest first
        order_key = xp.sort(cand * width + column, axis=1)
        value_sorted = order_key // width
        repeat_sorted = xp.zeros((n_rows, width), dtype=bool)
        repeat_sorted[:, 1:] = value_sorted[:, 1:] == value_sorted[:, :-1]
        repeat = xp.empty(n_rows * width, dtype=bool)
        local_base = xp.arange(n_rows, dtype=xp.int64)[:, None] * width
        repeat[(order_key % width + local_base).reshape(-1)] = repeat_sorted.reshape(-1)
        accept = ~(taken[flat] | repeat.reshape(n_rows, width))
        # every candidate is now taken: the accepted ones, the rest were already; rows that
        # fill up in this round are not looked at again
        taken[flat.reshape(-1)] = True
        rank = xp.cumsum(accept, axis=1, dtype=xp.int64)  # 1, 2, ... at the accepted
        before = n_accepted if rows is None else n_accepted[rows]
        slot = rank + (before - 1)[:, None]
        keep = accept & (slot < m)
        out_base = (xp.arange(n_dend, dtype=xp.int64) if rows is None else rows) * (m + 1)
        out[(xp.where(keep, slot, m) + out_base[:, None]).reshape(-1)] = cand.reshape(-1)
        after = xp.minimum(before + rank[:, -1], m)
        if rows is None:
            n_accepted = after
        else:
            n_accepted[rows] = after
        short = n_accepted < m
        n_rows = int(to_scalar(xp.count_nonzero(short)))
        if n_rows == 0:
            return xp.ascontiguousarray(out.reshape(n_dend, m + 1)[:, :m])
        rows = xp.nonzero(short)[0]


def _use_rejection(n_dend: int, n: int, m: int, in_dim: int) -> bool:
    """Whether :func:`draw_unconnected_inputs` draws by rejection: sizes only, so every
    backend takes the same path.

    Rejection while its first round, :func:`_rejection_width` candidates per row, is at
    most a quarter of ``in_dim``: measured on NumPy (230 rows, ``in_dim`` 100 to 4000)
    the two methods cost the same at about a third.  An empty ``idx`` takes the keys.
    """
    if n == 0 or m == 0:
        return False
    return _rejection_width(n_dend, n, m, in_dim) <= _REJECTION_MAX_WIDTH * in_dim


def draw_unconnected_inputs(idx, in_dim: int, m: int, rng, method: str = "auto"):
    r"""``(D, m)`` distinct input indices per dendrite, none of them already in ``idx[k]``.

    Row :math:`k` of the result is an ordered sample without replacement from the
    :math:`N = \mathrm{in\_dim} - n` inputs not in ``idx[k]``: every ordered tuple
    :math:`(a_1, \dots, a_m)` of distinct free inputs has probability
    :math:`(N - m)!/N!`, so the set is uniform over the :math:`\binom{N}{m}` subsets
    and each position is uniform over the free inputs.  Rows are independent.

    Parameters
    ----------
    idx : int array (D, n)
        Current connectivity, ``n`` distinct inputs per row (``n = 0``: none yet).
    in_dim : int
    m : int
        Number of inputs per dendrite, ``m <= in_dim - n``.
    rng : bionp.random.Generator
    method : {"auto", "rejection", "keys"}
        ``"auto"``: rejection when the inputs taken are few against ``in_dim`` (the
        first round at most ``in_dim / 4`` candidates per row), else keys.  The choice
        depends only on ``D, n, m, in_dim``.

    Returns
    -------
    new : int64 array (D, m)
        The new inputs, in the order drawn: deterministic for a given generator state
        and the same on every backend.

    Notes
    -----
    **Rejection.**  Candidates :math:`u_{k1}, u_{k2}, \dots` are i.i.d. uniform on
    :math:`\{0, \dots, \mathrm{in\_dim} - 1\}` (``rng.integers``); :math:`u_{kj}` is
    accepted if it is not in ``idx[k]`` and not among the candidates accepted for row
    :math:`k` before it, and row :math:`k` keeps its first ``m`` accepted.  Let
    :math:`F_t` be the :math:`N - t` inputs still free after :math:`t` acceptances.
    Whatever came before, a candidate lands in :math:`F_t` with probability
    :math:`|F_t| / \mathrm{in\_dim}` and, when it does, on each member with
    probability :math:`1/\mathrm{in\_dim}`, so the accepted one is uniform on
    :math:`F_t`:

    .. math::

        P[a_{t+1} = i \mid a_1, \dots, a_t] = \frac{1}{N - t}, \quad i \in F_t,
        \qquad P[a_1, \dots, a_m] = \prod_{t=0}^{m-1} \frac{1}{N - t},

    the law of sampling without replacement.  A row needs
    :math:`\sum_{t<m} \mathrm{in\_dim}/(N - t)` candidates on average.

    The candidates are drawn for all rows at once, ``c`` columns per round
    (:func:`_rejection_width`: a second round is needed in about one event in a
    hundred).  Within a round the test runs over the whole ``(D, c)`` block: a boolean
    scratch ``taken`` of shape ``(D, in_dim)`` marks ``idx`` and the inputs accepted
    in earlier rounds, and a candidate equal to an earlier one of its row in this
    round is found by sorting ``value · c + column`` per row (equal values side by
    side, the earliest first).  That is exactly the sequential rule: an earlier equal
    candidate was either accepted or itself taken already.  The ``m`` first accepted
    go to their slots by a cumulative count; the rows still short (counted on the
    host, one number per round) draw another round.  The number of random words used
    varies between calls but not between backends.

    **Keys.**  :math:`u_{ki} \sim U[0, 1)` for every input, 2 for the connected ones, the
    ``m`` smallest per row in ascending order (``O(D · in_dim)``); ordering i.i.d.
    keys gives the same law.
    """
    if method not in ("auto", "rejection", "keys"):
        raise ValueError(f"method must be 'auto', 'rejection' or 'keys', got {method!r}")
    if idx is None:
        raise TypeError("idx must be an int array of shape (D, n); with no input connected "
                        "yet pass one of shape (D, 0)")
    xp = get_array_module(idx)
    n_dend, n = idx.shape
    if m > in_dim - n:
        raise ValueError(f"cannot draw {m} new inputs per dendrite: only {in_dim - n} of "
                         f"{in_dim} inputs are unconnected")
    if method == "auto":
        method = "rejection" if _use_rejection(n_dend, n, m, in_dim) else "keys"
    if method == "rejection" and m > 0 and n_dend > 0:
        return _draw_by_rejection(xp, idx, in_dim, m, rng)
    return _draw_by_keys(xp, idx, in_dim, m, rng)


def resample_weakest(idx, w, in_dim: int, n_replace: int, rng, init_std: float):
    """Replace the ``n_replace`` weakest synapses of every dendrite, in place.

    Parameters
    ----------
    idx : array
        ``(n_dendrites, n)`` input index of every synapse (updated in place).
    w : array
        ``(n_dendrites, n)`` synaptic weights (updated in place).
    in_dim : int
        Number of inputs; new inputs are drawn among those a dendrite is not connected to.
    n_replace : int
        Synapses replaced per dendrite, ``0 <= n_replace <= n``, at most ``in_dim - n``.
    rng : bionp.random.Generator
        Source of the new inputs and weights.
    init_std : float
        Standard deviation of the new (normal) weights.

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
    as :math:`\tfrac{p_{\max}}2 (1 - \tanh((|w| - \theta)/2s))`.

    Parameters
    ----------
    w : array
    p_max : float, default 0.95
        :math:`p_{\max}`.
    threshold : float, default 0.6
        :math:`\theta`.
    steepness : float, default 0.1
        :math:`s`.
    """
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
                           threshold: float = 0.6, steepness: float = 0.1,
                           laplace_scale: float | None = None):
    """Replace each synapse with probability :func:`prune_probability`, in place.

    At most ``in_dim - n`` synapses of a dendrite can be replaced in one event
    (there are no more unconnected inputs); beyond that the later ones (in
    synapse order) are kept.  New weights are Laplace with scale ``laplace_scale``;
    None gives them the standard deviation ``init_std`` (:math:`b = \\sigma/\\sqrt2`).

    Parameters
    ----------
    idx : array
        ``(n_dendrites, n)`` input index of every synapse (updated in place).
    w : array
        ``(n_dendrites, n)`` synaptic weights (updated in place).
    in_dim : int
        Number of inputs.
    rng : bionp.random.Generator
        Source of the draws.
    init_std : float
        Standard deviation of the new weights when ``laplace_scale`` is ``None``.
    p_max, threshold, steepness : float
        As for :func:`prune_probability` (defaults 0.95, 0.6, 0.1).
    laplace_scale : float, optional
        Scale ``b`` of the new Laplace weights.

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
    b = init_std / math.sqrt(2.0) if laplace_scale is None else laplace_scale
    new_w = rng.laplace(0.0, b, w.shape, dtype=w.dtype, xp=xp)
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

    Parameters
    ----------
    optimizer : bionp.optim.Optimizer
        The optimiser; others (without ``params`` / ``state``) are left alone.
    param : array
        The parameter array, matched by identity.
    mask : array
        Boolean mask of ``param``'s shape: the entries to zero.
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
