r"""Crystallisation: synapses that have settled (or are hit very hard) stabilise.

Every ``every`` steps the weights are tested with the seed's criterion,

.. math::

    m_{ij} = \Big[\frac{|g_{ij}|}{|w_{ij}|} < \theta\Big] \;\lor\;
             \Big[|g_{ij}| > \overline{|w|}\Big], \qquad
    \overline{|w|} = \frac{1}{n}\sum_{ij} |w_{ij}| \ \text{(per weight matrix)},

(a relative change below the threshold :math:`\theta`, or a gradient larger than
the mean weight magnitude), and the plasticity factor of every selected weight
is multiplied by the dampening :math:`d \in (0, 1)`,
:math:`c_{ij} \leftarrow c_{ij}\, d^{\,m_{ij}}`.  Every step the gradient is
scaled by the factors, :math:`g \leftarrow c \odot g`.  The first condition is
evaluated as :math:`|g| < \theta |w|` (no division; a zero weight is never
selected by it, as :math:`0/0` and :math:`x/0` are not below :math:`\theta`).

In the seed the dampening multiplies the *fuzzy* learning-rate factors and the
test reads the gradient after those factors were applied.  Chained after
:mod:`bionp.plasticity.fuzzy`, :math:`c` multiplies the same gradient, so the
product :math:`c f` is the seed's dampened fuzzy factor; on its own the
transform starts from :math:`c = 1`.  Order within a step: the gradient is
scaled with the current :math:`c`, then (on a test step) the mask is evaluated
on that scaled gradient and :math:`c` is dampened for the following steps, as in
the seed where ``crystallize()`` runs after ``fuzzy_learning_rates()`` and before
the optimiser.  The seed's tutorial crystallises every 100 batches (``every=100``).

A weight counts as *crystallised* once :math:`c_{ij} < 1`
(:meth:`Crystallize.crystallized_fraction`).
"""

from __future__ import annotations

from bionp.backend import get_array_module
from bionp.plasticity.base import GradientTransform, check_every, check_positive

__all__ = ["Crystallize", "crystallize", "crystallization_mask", "check_dampening"]


def check_dampening(dampening) -> float:
    """``dampening`` as float; ``ValueError`` unless it lies in (0, 1).

    Parameters
    ----------
    dampening : real
        The crystallisation's dampening factor :math:`d`.
    """
    d = check_positive("dampening (dampening_factor)", dampening)
    if not d < 1:
        raise ValueError(f"dampening (dampening_factor) must be in (0, 1), got {dampening!r}")
    return d


def crystallization_mask(w, g, threshold: float):
    r"""Boolean mask :math:`(|g| < \theta|w|) \lor (|g| > \mathrm{mean}|w|)`, shaped like ``w``.

    Parameters
    ----------
    w, g : arrays of one shape
        Weights and their gradient.
    threshold : float
        :math:`\theta`.
    """
    xp = get_array_module(w, g)
    aw = xp.abs(w)
    ag = xp.abs(g)
    mean = xp.mean(aw)
    big = ag > mean
    aw *= w.dtype.type(threshold)
    small = ag < aw
    small |= big
    return small


class Crystallize(GradientTransform):
    """Scale gradients by per-weight plasticity factors that are dampened where weights settle.

    Parameters
    ----------
    threshold : float > 0, default 4.5e-5
        :math:`\\theta` (the seed's ``crystal_thresh``).
    dampening : float in (0, 1), default 0.6
        :math:`d` (the seed's ``dampening_factor``).
    every : int, default 100
        Steps between tests (the first test is at the first step).
    keys, layers : see :class:`bionp.plasticity.base.Transform`

    Attributes
    ----------
    state["factors"] : dict ``"l.k" -> array`` of :math:`c`
    last_mask : dict ``"l.k" -> bool array`` of the last test (None before it)
    """

    name = "crystallize"
    _state_arrays = ("factors",)

    def __init__(self, threshold: float = 4.5e-5, dampening: float = 0.6, *, every: int = 100,
                 keys=("W",), layers=None, rng=None):
        super().__init__(keys=keys, layers=layers, rng=rng)
        self.threshold = check_positive("threshold (crystal_thresh)", threshold)
        self.dampening = check_dampening(dampening)
        self.every = check_every("every", every)
        self.last_mask = None

    def _init_target(self, key, p):
        self.state["factors"][key] = get_array_module(p).ones_like(p)

    def update(self, params, grads):
        self._test = self.step % self.every == 0
        if self._test:
            self.last_mask = {}
        return super().update(params, grads)

    def _update_target(self, key, p, g):
        c = self.state["factors"][key]
        g *= c
        if self._test:
            xp = get_array_module(p)
            mask = crystallization_mask(p, g, self.threshold)
            self.last_mask[key] = mask
            dt = c.dtype.type
            c *= xp.where(mask, dt(self.dampening), dt(1.0))
        return g

    def crystallized_fraction(self) -> float:
        """Share of the targeted weights whose factor was ever dampened (host float)."""
        from bionp.backend import to_scalar

        if self.state is None:
            return 0.0
        n = 0
        hit = 0
        for c in self.state["factors"].values():
            xp = get_array_module(c)
            n += c.size
            hit += int(to_scalar(xp.count_nonzero(c < c.dtype.type(1.0))))
        return hit / n if n else 0.0

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(threshold=self.threshold, dampening=self.dampening, every=self.every)
        return cfg


def crystallize(threshold: float = 4.5e-5, dampening: float = 0.6, **kwargs) -> Crystallize:
    """:class:`Crystallize` (``every=``, ``keys=``, ``layers=``).

    Parameters
    ----------
    threshold : float > 0, default 4.5e-5
        :math:`\\theta`.
    dampening : float in (0, 1), default 0.6
        :math:`d`.
    **kwargs
        ``every=``, ``keys=``, ``layers=`` (see :class:`Crystallize`).
    """
    return Crystallize(threshold, dampening, **kwargs)
