r"""Fuzzy learning rates: a fixed random learning-rate factor per synapse.

Each weight :math:`w_{ij}` gets a factor drawn **once**, when the transform is
initialised,

.. math::

    f_{ij} \sim \mathcal U[1 - \nu,\, 1 + \nu), \qquad 0 \le \nu < 1,

and every gradient is multiplied by it, :math:`g_{ij} \leftarrow f_{ij}\, g_{ij}`:
synapses of the same size learn at different, but persistent, speeds (the
synaptic diversity of dendritic spines).  :math:`\mathbb E f = 1`, so the mean
step size of the optimiser is unchanged.  :mod:`bionp.plasticity.crystallize`
dampens these factors where synapses stabilise; in a chain put it after this
transform.

Draw: :math:`f = 1 + \nu (2u - 1)` with :math:`u \sim \mathcal U[0, 1)` from the
transform's :class:`bionp.random.Generator`, in the parameter's dtype.
"""

from __future__ import annotations

import numbers

from bionp.backend import get_array_module
from bionp.plasticity.base import GradientTransform

__all__ = ["FuzzyLearningRates", "fuzzy_learning_rates", "check_nu"]


def check_nu(nu) -> float:
    """``nu`` as float; ``ValueError`` unless ``0 <= nu < 1`` (factors must stay positive).

    Parameters
    ----------
    nu : real
    """
    if isinstance(nu, bool) or not isinstance(nu, numbers.Real) or not 0 <= nu < 1:
        raise ValueError(f"nu (fuzzy_learning_rate_factor_nu) must be in [0, 1) so that every "
                         f"factor 1 ± nu stays positive, got {nu!r}")
    return float(nu)


class FuzzyLearningRates(GradientTransform):
    """Multiply each weight's gradient by its own fixed factor from :math:`U[1-\\nu, 1+\\nu)`.

    Parameters
    ----------
    nu : float in [0, 1), default 0.16
    keys, layers, rng : see :class:`bionp.plasticity.base.Transform`

    Attributes
    ----------
    state["factors"] : dict ``"l.k" -> array`` of the factors (after :meth:`init`)
    """

    name = "fuzzy_learning_rates"
    _state_arrays = ("factors",)

    def __init__(self, nu: float = 0.16, *, keys=("W",), layers=None, rng=None):
        super().__init__(keys=keys, layers=layers, rng=rng)
        self.nu = check_nu(nu)

    def _init_target(self, key, p):
        u = self.rng.random(p.shape, dtype=p.dtype, xp=get_array_module(p))
        u *= p.dtype.type(2.0 * self.nu)
        u += p.dtype.type(1.0 - self.nu)
        self.state["factors"][key] = u

    def factors(self, layer: int, key: str = "W"):
        """The factor array of layer ``layer``'s ``key``."""
        return self.state["factors"][f"{layer}.{key}"]

    def _update_target(self, key, p, g):
        g *= self.state["factors"][key]
        return g

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["nu"] = self.nu
        return cfg


def fuzzy_learning_rates(nu: float = 0.16, **kwargs) -> FuzzyLearningRates:
    """:class:`FuzzyLearningRates` (``nu``, ``keys=``, ``layers=``, ``rng=``).

    Parameters
    ----------
    nu : float in [0, 1), default 0.16
        :math:`\\nu`, the half-width of the factors' interval.
    **kwargs
        ``keys=``, ``layers=``, ``rng=``.
    """
    return FuzzyLearningRates(nu, **kwargs)
