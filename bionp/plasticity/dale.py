r"""Dale's principle: every presynaptic unit is either excitatory or inhibitory.

A neuron releases the same transmitter at all of its synapses, so all its
*outgoing* weights share one sign.  In bionp's layout
:math:`W \in \mathbb R^{n_{out}\times n_{in}}` the outgoing weights of input
unit :math:`j` are column :math:`j`, so there is one sign :math:`s_j \in \{-1, +1\}`
per column.

``dalian_init`` draws :math:`s_j = \pm 1` with probability 1/2 each and sets
:math:`W_{ij} \leftarrow s_j |W_{ij}|` (keeping the magnitudes of the
initialisation).  Enforcement after every optimiser step projects back onto the
constraint set,

.. math::

    W_{ij} \leftarrow s_j \max(s_j W_{ij}, 0),

which zeroes every weight that a step pushed across zero (the seed's
``relu(W * sign) * sign``).  As a weight operation it acts on the parameters
after the optimiser, so it holds for any learning rule.  The signs are state
(saved in checkpoints).

(The seed's code keeps one sign per *row* of a PyTorch weight, which is the
postsynaptic unit; its documentation describes outgoing weights, which is
what bionp implements.)
"""

from __future__ import annotations

from bionp.backend import get_array_module, to_scalar
from bionp.plasticity.base import WeightOperation, _param_list

__all__ = ["DalesPrinciple", "enforce_dales_principle", "dalian_init", "sign_violations"]


def _draw_signs(rng, n, dtype, xp):
    bits = rng.integers(0, 2, n, xp=xp)
    s = bits.astype(dtype)
    s *= dtype.type(2.0)
    s -= dtype.type(1.0)
    return s


class DalesPrinciple(WeightOperation):
    """Keep one sign per presynaptic unit (column of ``W``) through training.

    Parameters
    ----------
    signs : list of arrays or None
        Per targeted matrix, the ``(in,)`` signs in target order; ``None`` draws
        them at :meth:`init` (the Dalian initialisation, which also flips the
        weights to their signs).
    initialize : bool, default True
        With drawn signs, apply :math:`W \\leftarrow s|W|` at :meth:`init`.
    keys, layers, rng : see :class:`bionp.plasticity.base.Transform`; targets must be 2-D.

    Attributes
    ----------
    state["signs"] : dict ``"l.k" -> (1, in) array`` of :math:`\\pm 1`
    """

    name = "enforce_dales_principle"
    _state_arrays = ("signs",)

    def __init__(self, signs=None, *, initialize: bool = True, keys=("W",), layers=None, rng=None):
        super().__init__(every=1, keys=keys, layers=layers, rng=rng)
        self._given = None if signs is None else list(signs)
        self.initialize = bool(initialize)
        self._clip = {}

    def _check_param(self, l, k, p):
        if p.ndim != 2:
            raise ValueError(f"Dale's principle needs weight matrices of shape (out, in); "
                             f"layer {l} '{k}' has shape {tuple(p.shape)}")

    def _state_shape(self, name, shape):
        return (1, shape[1])

    def init(self, params):
        params = _param_list(params)
        if self._given is not None:
            n = len(self.targets(params))
            if len(self._given) != n:
                raise ValueError(f"signs: expected {n} arrays (one per weight matrix), "
                                 f"got {len(self._given)}")
        self._next = 0
        self._clip = {}
        return super().init(params)

    def _init_target(self, key, p):
        xp = get_array_module(p)
        if self._given is not None:
            s = self._given[self._next]
            self._next += 1
            s = xp.asarray(s, dtype=p.dtype).reshape(-1)
            if s.shape != (p.shape[1],):
                raise ValueError(f"signs for {key}: expected shape ({p.shape[1]},) (one per "
                                 f"input column), got {tuple(s.shape)}")
            if not bool(to_scalar(xp.all(xp.abs(s) == 1))):
                raise ValueError(f"signs for {key} must be +1 or -1")
            self.state["signs"][key] = s.reshape(1, -1)
            return
        s = _draw_signs(self.rng, p.shape[1], p.dtype, xp).reshape(1, -1)
        self.state["signs"][key] = s
        if self.initialize:
            xp.abs(p, out=p)
            p *= s

    def _apply_target(self, key, p):
        # s max(s W, 0): clip to [0, inf) in excitatory, (-inf, 0] in inhibitory columns
        # (maximum + minimum with broadcast bounds: faster than clip or two sign flips)
        xp = get_array_module(p)
        lo, hi = self._bounds(key)
        xp.maximum(p, lo, out=p)
        xp.minimum(p, hi, out=p)

    def _bounds(self, key):
        """``(lo, hi)`` clip bounds of the matrix ``key``, derived from its signs (cached)."""
        b = self._clip.get(key)
        if b is None:
            s = self.state["signs"][key]
            xp = get_array_module(s)
            dt = s.dtype.type
            b = self._clip[key] = (xp.where(s > 0, dt(0.0), dt(-xp.inf)),
                                   xp.where(s > 0, dt(xp.inf), dt(0.0)))
        return b

    def load_state_dict(self, state):
        self._clip = {}
        super().load_state_dict(state)

    def signs(self, layer: int, key: str = "W"):
        """The ``(in,)`` signs of layer ``layer``'s matrix."""
        return self.state["signs"][f"{layer}.{key}"].reshape(-1)

    def violations(self, params) -> int:
        """Number of weights whose sign disagrees with their column's sign (host int)."""
        params = _param_list(params)
        return sum(sign_violations(params[l][k], self.state["signs"][f"{l}.{k}"])
                   for l, k in self._check_shapes(params))


def sign_violations(W, signs) -> int:
    """Count of :math:`W_{ij} s_j < 0` (host int).

    Parameters
    ----------
    W : array (out, in)
    signs : array (in,) of +1 / -1
    """
    xp = get_array_module(W)
    return int(to_scalar(xp.count_nonzero(W * signs.reshape(1, -1) < 0)))


def enforce_dales_principle(signs=None, **kwargs) -> DalesPrinciple:
    """:class:`DalesPrinciple` (draws the signs, applies the Dalian initialisation at ``init``).

    Parameters
    ----------
    signs : list of arrays or None
        See :class:`DalesPrinciple`; ``None`` draws them.
    **kwargs
        ``initialize=``, ``keys=``, ``layers=``, ``rng=``.
    """
    return DalesPrinciple(signs, **kwargs)


def dalian_init(params, rng=None, keys=("W",), layers=None) -> DalesPrinciple:
    """Dalian initialisation of ``params`` (a network or ``net.parameters()``) in place.

    Draws one sign per input column of every weight matrix, sets
    :math:`W \\leftarrow s|W|` and returns the :class:`DalesPrinciple` operation that
    keeps the signs (attach it, e.g. in a :func:`~bionp.plasticity.chain`).

    Parameters
    ----------
    params : Sequential, MLP or list of dict
        A network or its ``parameters()``; changed in place.
    rng : int, Generator or None
        Draws the signs.
    keys, layers
        See :class:`bionp.plasticity.base.Transform`.
    """
    op = DalesPrinciple(keys=keys, layers=layers, rng=rng)
    op.init(params)
    return op
