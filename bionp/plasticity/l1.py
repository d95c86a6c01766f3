r"""L1 regularisation: a sparsity penalty and its subgradient.

.. math::

    P(\theta) = \lambda \sum_{ij} |w_{ij}|, \qquad
    \partial P / \partial w_{ij} \ni \lambda\,\mathrm{sign}(w_{ij})

(the subgradient 0 at :math:`w = 0`).  :class:`L1Regularization` adds
:math:`\lambda\,\mathrm{sign}(w)` to the gradient; :func:`l1_penalty` and
:meth:`L1Regularization.penalty` return :math:`P` (the seed's ``l1_reg()``
returns :math:`\sum |w|`; with ``strength=1`` they agree).
"""

from __future__ import annotations

from bionp.backend import get_array_module
from bionp.plasticity.base import GradientTransform, _param_list, check_nonnegative

__all__ = ["L1Regularization", "l1_reg", "l1_penalty"]


def l1_penalty(params, strength: float = 1.0, keys=("W",)):
    r""":math:`\lambda\sum|w|` over the ``keys`` entries of every layer (0-d array).

    Parameters
    ----------
    params : list of dict of arrays
        ``net.parameters()``.
    strength : float, default 1.0
        :math:`\lambda`.
    keys : sequence of str, default ``("W",)``
    """
    total = None
    for p in _param_list(params):
        for k in keys:
            if k in p:
                xp = get_array_module(p[k])
                v = xp.sum(xp.abs(p[k]))
                total = v if total is None else total + v
    if total is None:
        raise ValueError(f"no parameters named {list(keys)} to regularise")
    return total * total.dtype.type(strength)


class L1Regularization(GradientTransform):
    """Add :math:`\\lambda\\,\\mathrm{sign}(w)` to the gradient of every targeted array.

    Parameters
    ----------
    strength : float >= 0
        :math:`\\lambda`.
    keys, layers : see :class:`bionp.plasticity.base.Transform`
    """

    name = "l1_reg"

    def __init__(self, strength: float = 1e-5, *, keys=("W",), layers=None, rng=None):
        super().__init__(keys=keys, layers=layers, rng=rng)
        self.strength = check_nonnegative("strength", strength)

    def _update_target(self, key, p, g):
        if self.strength:
            s = get_array_module(p).sign(p, out=self._scratch(key, p))
            s *= p.dtype.type(self.strength)
            g += s
        return g

    def _penalty_target(self, key, p):
        xp = get_array_module(p)
        return xp.sum(xp.abs(p)) * p.dtype.type(self.strength)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["strength"] = self.strength
        return cfg


def l1_reg(strength: float = 1e-5, **kwargs) -> L1Regularization:
    """:class:`L1Regularization`; its ``penalty(params)`` returns :math:`\\lambda\\sum|w|`.

    Parameters
    ----------
    strength : float >= 0, default 1e-5
        :math:`\\lambda`.
    **kwargs
        ``keys=``, ``layers=``.
    """
    return L1Regularization(strength, **kwargs)
