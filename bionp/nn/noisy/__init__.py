r"""Noisy weights: fresh Gaussian weight noise at every training step, and learnable noise.

A noisy layer computes its output with perturbed weights

.. math::

    W_{\mathrm{eff}} = W + \sigma\,\varepsilon \quad (\text{additive}), \qquad
    W_{\mathrm{eff}} = W \odot (1 + \sigma\,\varepsilon) \quad (\text{multiplicative}),
    \qquad \varepsilon_{ij} \sim \mathcal N(0, 1),

with one draw :math:`\varepsilon` per training forward pass; the bias is not
perturbed and evaluation is noise-free unless asked.  Three modules:

* :mod:`bionp.nn.noisy.functional` — the maths as pure functions on arrays:
  :func:`noisy_weight`, the clamped :math:`\sigma` of a log-variance and its
  gradient (:func:`sigma_from_log_var`, :func:`log_var_grad`,
  :func:`log_var_regularization`), and the argument checks;
* :mod:`bionp.nn.noisy.weights` — :class:`NoisyWeights` (makes any Dense-like
  layer's weights noisy: the draw, the buffers, the backward pass
  :math:`\partial L/\partial W` from :math:`\partial L/\partial W_{\mathrm{eff}}`)
  and :class:`NoisyDense`;
* :mod:`bionp.nn.noisy.learnable` — :class:`LearnableNoiseDense`, whose
  :math:`\log\sigma^2` (per layer or per weight, clamped) is a parameter.

Learning rules
--------------
The layers follow bionp's layer protocol, so :class:`~bionp.rules.Backprop`,
:class:`~bionp.rules.FeedbackAlignment`,
:class:`~bionp.rules.DirectFeedbackAlignment` and
:class:`~bionp.rules.KolenPollack` train them through
:class:`~bionp.nn.Sequential` (the rule's backward pass hands each layer its
cache).  They make no sense with the perturbation rules:
:class:`~bionp.rules.WeightPerturbation` estimates the gradient from loss
differences of *evaluation* passes, in which training noise is off (so the
noise never acts and :math:`\log\sigma^2`, which the evaluation does not
depend on, gets a pure-noise estimate); with evaluation noise on, the
difference of two independently perturbed passes would be dominated by the
weight noise itself.  :class:`~bionp.rules.NodePerturbation` perturbs the
activities of Dense layers and has no notion of a weight-noise parameter.
Weight decay (in the optimiser or Kolen–Pollack's :math:`\lambda`) also acts on
``log_var`` and pulls it toward 0, i.e. :math:`\sigma` toward 1 (clamped at
:math:`\sigma_{\max}`): train learnable-noise layers without it.
"""

from __future__ import annotations

from bionp.nn.noisy.functional import (
    NOISE_MODES,
    check_noise_mode,
    check_sigma,
    check_sigma_bounds,
    inside_clamp,
    log_var_grad,
    log_var_regularization,
    noisy_weight,
    sigma_from_log_var,
)
from bionp.nn.noisy.learnable import LearnableNoiseDense
from bionp.nn.noisy.weights import NoiseCache, NoisyDense, NoisyWeights

__all__ = ["NOISE_MODES", "NoisyWeights", "NoisyDense", "LearnableNoiseDense", "NoiseCache",
           "noisy_weight", "check_sigma", "check_noise_mode", "check_sigma_bounds",
           "sigma_from_log_var", "inside_clamp", "log_var_regularization", "log_var_grad"]
