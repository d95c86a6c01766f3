r"""Synaptic scaling: homeostatic, multiplicative regulation of each neuron's input strength.

Biological synaptic scaling (Turrigiano et al. 1998) multiplies *all* synapses
onto a neuron by one common factor so that the neuron keeps a set-point level
of drive, without changing the relative strengths that learning wrote into
them.  bionp's rule (``scale_grad``) regulates the strength of each
postsynaptic unit's input, the L2 norm of row :math:`i` of
:math:`W \in \mathbb R^{n_{out}\times n_{in}}`,
:math:`r_i = \lVert W_{i,:}\rVert_2`, toward its value at initialisation
:math:`r_i^\ast` by adding the gradient of the homeostatic penalty

.. math::

    P(W) = \frac{\lambda}{2} \sum_i \big(r_i - r_i^\ast\big)^2, \qquad
    \frac{\partial P}{\partial W_{ij}} = \lambda\Big(1 - \frac{r_i^\ast}{r_i}\Big) W_{ij},

i.e. :math:`g \leftarrow g + \lambda (1 - r^\ast / r) \odot W` row by row.  The added
term is parallel to :math:`W_{i,:}`: a descent step rescales the whole row by
:math:`1 - \mathrm{lr}\,\lambda(1 - r_i^\ast/r_i)` — a multiplicative scaling of every
synapse of neuron :math:`i` by the same factor, up when the neuron's input has
weakened below its set point, down when it has grown — and leaves the
direction of the row (what it learned) untouched.

Why this rule: a transform sees only parameters and gradients, for every
learning rule alike, not the neurons' activity; the norm of a neuron's input
weights is the standard activity-free proxy of its drive (it bounds the
neuron's response to inputs of a given size), and regulating it
multiplicatively is what distinguishes synaptic scaling from additive weight
decay.  A row with :math:`r_i = 0` gets no term.
"""

from __future__ import annotations

from bionp.backend import get_array_module
from bionp.plasticity.base import GradientTransform, check_nonnegative

__all__ = ["SynapticScaling", "scale_grad", "scaling_penalty"]


def _row_norms(W):
    xp = get_array_module(W)
    return xp.sqrt(xp.einsum("ij,ij->i", W, W))


def scaling_penalty(W, target, strength: float):
    r""":math:`\frac{\lambda}{2}\sum_i (\lVert W_{i,:}\rVert - r_i^\ast)^2` (0-d array).

    Parameters
    ----------
    W : array (out, in)
    target : array (out,)
        The set points :math:`r^\ast`.
    strength : float
        :math:`\lambda`.
    """
    xp = get_array_module(W)
    d = _row_norms(W) - target
    return W.dtype.type(0.5 * strength) * xp.sum(d * d)


class SynapticScaling(GradientTransform):
    """Add :math:`\\lambda(1 - r^\\ast/r)\\,W` row-wise: each unit's input norm to its set point.

    Parameters
    ----------
    strength : float >= 0, default 0.01
        :math:`\\lambda` (per unit of the optimiser's learning rate).
    keys, layers : see :class:`bionp.plasticity.base.Transform`; targets must be 2-D.

    Attributes
    ----------
    state["target"] : dict ``"l.k" -> (out,) array`` of the set points :math:`r^\\ast`
    """

    name = "scale_grad"
    _state_arrays = ("target",)

    def __init__(self, strength: float = 0.01, *, keys=("W",), layers=None, rng=None):
        super().__init__(keys=keys, layers=layers, rng=rng)
        self.strength = check_nonnegative("strength", strength)

    def _check_param(self, l, k, p):
        if p.ndim != 2:
            raise ValueError(f"scale_grad acts on weight matrices of shape (out, in); layer {l} "
                             f"'{k}' has shape {tuple(p.shape)} (use keys=('W',))")

    def _init_target(self, key, p):
        self.state["target"][key] = _row_norms(p)

    def _state_shape(self, name, shape):
        return (shape[0],)

    def _update_target(self, key, p, g):
        xp = get_array_module(p)
        r = _row_norms(p)
        target = self.state["target"][key]
        safe = xp.where(r > 0, r, r.dtype.type(1.0))
        coef = target / safe
        coef -= coef.dtype.type(1.0)
        coef *= coef.dtype.type(-self.strength)  # lambda (1 - r*/r)
        coef *= r > 0
        buf = self._scratch(key, p)
        xp.multiply(p, coef[:, None], out=buf)
        g += buf
        return g

    def _penalty_target(self, key, p):
        return scaling_penalty(p, self.state["target"][key], self.strength)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["strength"] = self.strength
        return cfg


def scale_grad(strength: float = 0.01, **kwargs) -> SynapticScaling:
    """:class:`SynapticScaling` (synaptic scaling toward the initial input norms).

    Parameters
    ----------
    strength : float >= 0, default 0.01
        :math:`\\lambda`.
    **kwargs
        ``keys=``, ``layers=``.
    """
    return SynapticScaling(strength, **kwargs)
