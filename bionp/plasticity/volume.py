r"""Volume-dependent learning rates: large synapses learn slower.

With the synapse's "volume" :math:`v = |w| / (|w| + 1) \in [0, 1)` the
per-weight learning-rate factor is drawn as

.. math::

    \mu(v) = \mathrm{base\_lr}\; e^{-\mathrm{stability}\cdot v}, \qquad
    r \sim \big|\mathcal N\big(\mu(v),\, (\mathrm{lr\_variability}\cdot\mu(v))^2\big)\big|
      = \mu(v)\,\big|1 + \mathrm{lr\_variability}\cdot\zeta\big|,\quad \zeta\sim\mathcal N(0,1),

and the gradient becomes :math:`g \leftarrow r\, g`: plasticity falls
continuously and exponentially with size and varies between synapses of the
same size (observations on dendritic spines).  :math:`\mathbb E\,r = \mu(v)` up
to the fold at zero, which for ``lr_variability = 0.2`` changes the mean by
less than :math:`10^{-12}` relative.

Relation to the optimiser's learning rate
-----------------------------------------
The seed multiplies the gradient by :math:`r`, so with SGD the step is
:math:`\mathrm{lr}\cdot r\cdot g`: ``base_lr`` *multiplies* the optimiser's
``lr`` (a small synapse, :math:`v \to 0`, steps with ``lr * base_lr``).  An
optimiser tuned without the transform therefore trains about ``1/base_lr``
(10×) slower with it.  This is the default everywhere (``relative=False`` here,
``lr_relative=False`` in :class:`bionp.plasticity.BioConfig`): the seed's
``volume_dependent_lr`` scales the gradient by the drawn rate itself, with
``base_lr = 0.1``.  ``relative=True`` divides by ``base_lr``: the factor is
:math:`r / \mathrm{base\_lr} = e^{-\mathrm{stability}\,v}\,|1 + \sigma\zeta|`
(median about 0.93 at initialisation instead of 0.093), which keeps an optimiser's
``lr`` tuned without the transform meaningful.  Adam is invariant to a constant
gradient scale, so there only the relative, volume-dependent part matters.

Names
-----
:func:`synapse_volume` is :math:`v`; ``volume`` is its old name, kept as an alias
(``bionp.plasticity.volume.volume``).  ``bionp.plasticity.volume`` is this module, so
that ``help(bionp.plasticity.volume)`` shows this text; calling it,
``bionp.plasticity.volume(w)``, still works (deprecated: call
``bionp.plasticity.synapse_volume(w)``).

Cost
----
The rates are re-evaluated every ``redraw_every`` steps (default 1, the seed's
behaviour: a fresh draw every step) and reused in between.  One normal draw
per weight costs more than a whole backprop step of a 784-500-10 MLP on a CPU,
and evaluating :math:`\mu(v)` costs several passes over the weights; with
``redraw_every=k`` a step costs one multiplication, and both the noise
:math:`\zeta` and :math:`\mu(v)` (from the weights of that step) are renewed
every ``k`` steps.  Every step's rates then have exactly the distribution above
given the weights of their last evaluation, which differ from the current ones
by at most ``k - 1`` optimiser steps.
"""

from __future__ import annotations

import sys
import types
import warnings

from bionp.backend import get_array_module
from bionp.plasticity.base import GradientTransform, check_every, check_nonnegative, check_positive

__all__ = ["VolumeDependentLR", "volume_dependent_lr", "synapse_volume", "volume", "mean_rate"]


def synapse_volume(w, out=None):
    r"""The synapse's "volume" :math:`v = |w| / (|w| + 1)` elementwise (``out`` may be given).

    Parameters
    ----------
    w : array
    out : array or None
        Written in place when given.
    """
    xp = get_array_module(w)
    v = xp.abs(w, out=out)
    d = v + w.dtype.type(1.0)
    v /= d
    return v


#: old name of :func:`synapse_volume`
volume = synapse_volume


def mean_rate(w, base_lr: float = 0.1, stability: float = 2.0, out=None):
    r""":math:`\mu(v) = \mathrm{base\_lr}\,e^{-\mathrm{stability}\,v}` for weights ``w``.

    Evaluated without a temporary as :math:`e^{-s + s/(|w| + 1)}`, since
    :math:`v = 1 - 1/(|w| + 1)`.

    Parameters
    ----------
    w : array
    base_lr : float, default 0.1
    stability : float, default 2.0
    out : array or None
        Written in place when given.
    """
    xp = get_array_module(w)
    dt = w.dtype.type
    r = xp.abs(w, out=out)
    r += dt(1.0)
    xp.reciprocal(r, out=r)
    r *= dt(stability)
    r -= dt(stability)
    xp.exp(r, out=r)
    if base_lr != 1.0:
        r *= dt(base_lr)
    return r


class VolumeDependentLR(GradientTransform):
    """Scale each gradient by a rate drawn from :math:`|N(\\mu(v), (\\sigma\\mu(v))^2)|`.

    Parameters
    ----------
    base_lr : float > 0, default 0.1
    stability : float >= 0, default 2.0
    lr_variability : float >= 0, default 0.2
        :math:`\\sigma`, the relative standard deviation of the rate.
    relative : bool, default False
        Divide the rate by ``base_lr`` (see the module docstring).  ``False``, the seed's
        scale, is also :class:`~bionp.plasticity.BioConfig`'s default (``lr_relative``).
    redraw_every : int, default 1
        Steps between evaluations of the rates (noise and :math:`\\mu(v)`).
    keys, layers, rng : see :class:`bionp.plasticity.base.Transform`
    """

    name = "volume_dependent_lr"
    _state_arrays = ("rates",)

    def __init__(self, base_lr: float = 0.1, stability: float = 2.0, lr_variability: float = 0.2, *,
                 relative: bool = False, redraw_every: int = 1, keys=("W",), layers=None, rng=None):
        super().__init__(keys=keys, layers=layers, rng=rng)
        self.base_lr = check_positive("base_lr", base_lr)
        self.stability = check_nonnegative("stability", stability)
        self.lr_variability = check_nonnegative("lr_variability", lr_variability)
        self.relative = bool(relative)
        self.redraw_every = check_every("redraw_every", redraw_every)

    def _init_target(self, key, p):
        # the current rates r (evaluated on the first update)
        self.state["rates"][key] = get_array_module(p).empty_like(p)

    def _evaluate(self, key, p):
        r"""Draw :math:`r = \mu(v)|1 + \sigma\zeta|` (``/ base_lr`` if relative) for ``p``."""
        r = self.state["rates"][key]
        xp = get_array_module(p)
        dt = p.dtype.type
        z = self.rng.normal(0.0, 1.0, p.shape, dtype=p.dtype, xp=xp, out=self._scratch(key, p))
        z *= dt(self.lr_variability)
        z += dt(1.0)
        xp.abs(z, out=z)
        mean_rate(p, 1.0 if self.relative else self.base_lr, self.stability, out=r)
        r *= z

    def update(self, params, grads):
        self._due = self.state is None or self.step % self.redraw_every == 0
        return super().update(params, grads)

    def _update_target(self, key, p, g):
        if self._due:
            self._evaluate(key, p)
        g *= self.state["rates"][key]
        return g

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(base_lr=self.base_lr, stability=self.stability,
                   lr_variability=self.lr_variability, relative=self.relative,
                   redraw_every=self.redraw_every)
        return cfg


def volume_dependent_lr(base_lr: float = 0.1, stability: float = 2.0, lr_variability: float = 0.2,
                        **kwargs) -> VolumeDependentLR:
    """:class:`VolumeDependentLR` (``relative=``, ``redraw_every=``, ``keys=``, ``layers=``,
    ``rng=``).

    Parameters
    ----------
    base_lr : float > 0, default 0.1
    stability : float >= 0, default 2.0
    lr_variability : float >= 0, default 0.2
    **kwargs
        ``relative=``, ``redraw_every=``, ``keys=``, ``layers=``, ``rng=``.
    """
    return VolumeDependentLR(base_lr, stability, lr_variability, **kwargs)


class _VolumeModule(types.ModuleType):
    """This module, callable as its old function ``volume`` (deprecated)."""

    def __call__(self, w, out=None):
        warnings.warn("bionp.plasticity.volume is the module now; call "
                      "bionp.plasticity.synapse_volume(w) (same function)", DeprecationWarning,
                      stacklevel=2)
        return synapse_volume(w, out=out)


sys.modules[__name__].__class__ = _VolumeModule
