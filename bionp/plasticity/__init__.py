r"""Bio transformations: biologically motivated changes of gradients and weights for any rule.

The mechanisms of the ``bio_transformations`` package (seed 001), written for
bionp's learning rules: they act on the rules' gradient estimates and on the
parameters, not on autograd, so backprop, feedback alignment, Kolen–Pollack,
the perturbation rules and dendritic layers all combine with them.

Gradient transforms (between the rule and the optimiser)
    :func:`fuzzy_learning_rates`, :func:`volume_dependent_lr`, :func:`crystallize`,
    :func:`scale_grad` (synaptic scaling), :func:`l1_reg`.
Weight operations (after the optimiser step)
    :func:`rejuvenate_weights`, :func:`enforce_dales_principle` / :func:`dalian_init`.
Helpers
    :func:`synapse_volume`, :func:`mean_rate` (``help(bionp.plasticity.volume)``:
    volume-dependent rates and the scale of their default).
Structure
    :func:`split_weights` / :class:`WeightSplitting` (each output the sum of Γ sub-units).
Composition
    :func:`chain`; :class:`BioConfig` + :func:`convert` attach a chain to a network,
    which :class:`bionp.train.Trainer` then applies and checkpoints.

Example::

    from bionp import plasticity as bio
    net = bnp.nn.MLP([784, 500, 10], activation="relu", rng=0)
    bio.convert(net, bio.BioConfig(apply_dales_principle=True), rng=1)
    Trainer(net, rule, opt, loss).fit(x, y, epochs=10)      # picks up net.plasticity

    # or by hand, optax-style:
    tx = bio.chain(bio.fuzzy_learning_rates(0.16, rng=2), bio.crystallize())
    tx.init(net.parameters())
    grads = tx.update(net.parameters(), rule.gradients(net, x, y, loss))
"""

from bionp.plasticity.base import Chain, GradientTransform, Transform, WeightOperation, chain
from bionp.plasticity.config import (
    DEFAULT_TRANSFORMS, TRANSFORMS, BioConfig, BioConverter, convert,
)
from bionp.plasticity.crystallize import Crystallize, crystallization_mask, crystallize
from bionp.plasticity.dale import (
    DalesPrinciple, dalian_init, enforce_dales_principle, sign_violations,
)
from bionp.plasticity.fuzzy import FuzzyLearningRates, fuzzy_learning_rates
from bionp.plasticity.l1 import L1Regularization, l1_penalty, l1_reg
from bionp.plasticity.rejuvenation import Rejuvenation, rejuvenate_weights, replacement_probability
from bionp.plasticity.scaling import SynapticScaling, scale_grad, scaling_penalty
from bionp.plasticity.splitting import WeightSplitting, split_weights
from bionp.plasticity.volume import (
    VolumeDependentLR, mean_rate, synapse_volume, volume_dependent_lr,
)

__all__ = [
    "BioConfig", "BioConverter", "Chain", "Crystallize", "DEFAULT_TRANSFORMS", "DalesPrinciple",
    "FuzzyLearningRates", "GradientTransform", "L1Regularization", "Rejuvenation",
    "SynapticScaling", "TRANSFORMS", "Transform", "VolumeDependentLR", "WeightOperation",
    "WeightSplitting", "chain", "convert", "crystallization_mask", "crystallize", "dalian_init",
    "enforce_dales_principle", "fuzzy_learning_rates", "l1_penalty", "l1_reg", "mean_rate",
    "rejuvenate_weights", "replacement_probability", "scale_grad", "scaling_penalty",
    "sign_violations", "split_weights", "synapse_volume", "volume", "volume_dependent_lr",
]
