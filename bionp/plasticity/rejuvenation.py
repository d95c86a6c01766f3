r"""Rejuvenation: weak synapses are pruned and regrow with a random strength.

For each weight matrix with :math:`M = \max_{ij}|w_{ij}|`, a threshold is drawn
per weight and every weight below its threshold is replaced:

.. math::

    t_{ij} = |\varepsilon_{ij}|,\ \ \varepsilon_{ij} \sim \mathcal N\big(0, (M/d_{re})^2\big),
    \qquad
    w_{ij} \leftarrow u_{ij} \sim \mathcal U(-M, M) \quad \text{if } t_{ij} > |w_{ij}| ,

so a weight is replaced with probability

.. math::

    p(w) = P\big(|\varepsilon| > |w|\big) = \operatorname{erfc}\!\Big(\frac{|w|\, d_{re}}{\sqrt2\, M}\Big),

1 for :math:`w = 0`, falling with :math:`|w|`; a larger :math:`d_{re}` means less
turnover (spine turnover: small spines are pruned and new ones appear).  The
seed adds :math:`10^{-13}` to the scale so that an all-zero matrix gets a
positive scale; bionp does the same.  The seed's tutorial rejuvenates once per
epoch (``every`` = the number of steps in an epoch).

Applied repeatedly, the rule feeds on itself: regrown weights are uniform up to
:math:`M`, far larger than a trained layer's typical weight, and the largest
weight is almost never replaced, so every application moves more of the matrix
toward :math:`|w| \sim M`.  On the 784-500-10 Fashion-MNIST MLP, ten
applications (once per epoch) leave most first-layer weights above 0.5 and cost
about 7 points of test accuracy (``examples/bio_transformations.py``), which is
why :class:`~bionp.plasticity.BioConfig` does not switch it on by default.

This is a weight operation (after the optimiser step).  Together with Dale's
principle put it before :func:`~bionp.plasticity.enforce_dales_principle` in the
chain, which then zeroes regrown weights of the wrong sign.
"""

from __future__ import annotations

import math

from bionp.backend import get_array_module, to_scalar
from bionp.plasticity.base import WeightOperation, check_positive

__all__ = ["Rejuvenation", "rejuvenate_weights", "replacement_probability"]


def replacement_probability(w, dre: float, max_abs: float):
    r""":math:`p(w) = \operatorname{erfc}\big(|w| / (\sqrt2\,(M / d_{re} + 10^{-13}))\big)`
    (host NumPy, float64).

    Parameters
    ----------
    w : array
    dre : float
        :math:`d_{re}`.
    max_abs : float
        :math:`M`, the largest :math:`|w|` of the matrix.
    """
    import numpy as np
    from scipy.special import erfc

    from bionp.backend import asnumpy

    w = np.abs(asnumpy(w).astype(np.float64))
    return erfc(w / (math.sqrt(2.0) * (max_abs / dre + 1e-13)))


class Rejuvenation(WeightOperation):
    """Replace weights below a random :math:`|N(0, (M/d_{re})^2)|` threshold by :math:`U(-M, M)`.

    Parameters
    ----------
    dre : float > 0, default 8.0
        The seed's ``rejuvenation_parameter_dre``.
    every : int, default 1
        Optimiser steps between rejuvenations (see :class:`~bionp.plasticity.base.WeightOperation`).
    keys, layers, rng : see :class:`bionp.plasticity.base.Transform`

    Attributes
    ----------
    last_replaced : dict ``"l.k" -> int`` weights replaced by the last application
    """

    name = "rejuvenate_weights"

    def __init__(self, dre: float = 8.0, *, every: int = 1, keys=("W",), layers=None, rng=None):
        super().__init__(every=every, keys=keys, layers=layers, rng=rng)
        self.dre = check_positive("dre (rejuvenation_parameter_dre)", dre)
        self.last_replaced = {}

    def _apply_target(self, key, p):
        xp = get_array_module(p)
        dt = p.dtype.type
        m = xp.max(xp.abs(p))
        thr = self.rng.normal(0.0, 1.0, p.shape, dtype=p.dtype, xp=xp)
        xp.abs(thr, out=thr)
        thr *= m / dt(self.dre) + dt(1e-13)
        mask = thr > xp.abs(p)
        new = self.rng.uniform(-1.0, 1.0, p.shape, dtype=p.dtype, xp=xp)
        new *= m
        xp.copyto(p, new, where=mask)
        self.last_replaced[key] = int(to_scalar(xp.count_nonzero(mask)))  # one sync, rarely

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["dre"] = self.dre
        return cfg


def rejuvenate_weights(dre: float = 8.0, **kwargs) -> Rejuvenation:
    """:class:`Rejuvenation` (``every=``, ``keys=``, ``layers=``, ``rng=``).

    Parameters
    ----------
    dre : float > 0, default 8.0
        :math:`d_{re}`: larger means less turnover.
    **kwargs
        ``every=``, ``keys=``, ``layers=``, ``rng=``.
    """
    return Rejuvenation(dre, **kwargs)
