r"""Backpropagation of error (Rumelhart, Hinton & Williams 1986): the exact gradient.

.. math::

    \delta_{L-1} = \frac{\partial L}{\partial z_{L-1}}, \qquad
    \delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l W_l), \qquad
    \frac{\partial L}{\partial W_l} = \delta_l^\top a_{l-1}, \qquad
    \frac{\partial L}{\partial b_l} = \textstyle\sum_n \delta_{l,n},

with :math:`L` the batch-mean loss (the :math:`1/N` sits in
:math:`\delta_{L-1}`).  Sign: the returned values are :math:`+\partial L/\partial\theta`
(descent is :math:`\theta \leftarrow \theta - \mathrm{lr}\,g`).  The
Microlearning tutorial's backprop update is :math:`\Delta W = -\frac N2
\partial L/\partial W` added with rate η, i.e. bionp ``lr = η N / 2``
(see :mod:`bionp.rules.base`).
"""

from __future__ import annotations

from bionp.rules.base import ErrorPropagationRule

__all__ = ["Backprop"]


class Backprop(ErrorPropagationRule):
    """Exact gradient of the batch-mean loss by backpropagation (see module docstring)."""

    name = "backprop"
