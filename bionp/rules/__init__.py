"""Supervised learning rules: each returns its estimate of ∂L/∂θ per layer.

Contract::

    rule = bionp.rules.Backprop()   # FeedbackAlignment, DirectFeedbackAlignment,
                                    # KolenPollack, SignSymmetry (uSF, brSF, frSF),
                                    # WeightMirror, WeightPerturbation, NodePerturbation
    grads = rule.gradients(net, x, target, loss_fn)   # [{"W": ..., "b": ...}, ...]
    optimizer.step(grads)                             # θ -= lr · g
    rule.after_step(net, optimizer)                   # KP updates B here; no-op otherwise
    # (or rule.update_after_step(net, grads, lr): all but KolenPollack's default
    #  feedback_optimizer="mirror", which needs the optimiser)

See :mod:`bionp.rules.base` for the sign/scale convention and how it maps to the
Microlearning tutorial's learning rates.
"""

from bionp.rules.backprop import Backprop
from bionp.rules.base import Rule
from bionp.rules.feedback_alignment import DirectFeedbackAlignment, FeedbackAlignment
from bionp.rules.kolen_pollack import KolenPollack
from bionp.rules.perturbation import NodePerturbation, WeightPerturbation
from bionp.rules.sign_symmetry import SignSymmetry
from bionp.rules.weight_mirror import WeightMirror

RULES = {
    "backprop": Backprop,
    "feedback_alignment": FeedbackAlignment,
    "direct_feedback_alignment": DirectFeedbackAlignment,
    "kolen_pollack": KolenPollack,
    "weight_perturbation": WeightPerturbation,
    "node_perturbation": NodePerturbation,
    "sign_symmetry": SignSymmetry,
    "weight_mirror": WeightMirror,
}

#: names for a rule with its settings: the three sign-symmetry variants
ALIASES = {
    "usf": (SignSymmetry, {"variant": "usf"}),
    "brsf": (SignSymmetry, {"variant": "brsf"}),
    "frsf": (SignSymmetry, {"variant": "frsf"}),
}


def get_rule(name, **kwargs) -> Rule:
    """A rule from its name (``"backprop"``, ``"feedback_alignment"``, …) or a Rule instance.

    Parameters
    ----------
    name : str or bionp.rules.Rule
        A rule's name or alias (case-insensitive, ``-`` as ``_``); a Rule is returned as it is.
    **kwargs
        Arguments of the rule's constructor (over an alias's preset).
    """
    if isinstance(name, Rule):
        return name
    key = str(name).lower().replace("-", "_")
    if key in ALIASES:
        cls, preset = ALIASES[key]
        return cls(**{**preset, **kwargs})
    if key not in RULES:
        raise ValueError(f"unknown rule {name!r}; known rules: {', '.join([*RULES, *ALIASES])}")
    return RULES[key](**kwargs)


__all__ = ["ALIASES", "Backprop", "DirectFeedbackAlignment", "FeedbackAlignment", "KolenPollack",
           "NodePerturbation", "RULES", "Rule", "SignSymmetry", "WeightMirror", "WeightPerturbation",
           "get_rule"]
