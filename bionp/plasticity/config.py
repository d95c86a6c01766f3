r"""``BioConfig`` and ``convert``: attach the bio transformations to a network.

:class:`BioConfig` holds the seed's ten parameters with the seed's defaults
(same names as the seed's ``BioConverter``) plus bionp's choices of which
mechanisms run and how often.  :func:`convert` (or :class:`BioConverter`)
applies the structural parts to a network in place — the Dalian
initialisation when ``apply_dales_principle``, weight splitting when
``weight_splitting_Gamma > 1`` — and attaches a :func:`~bionp.plasticity.chain`
as ``net.plasticity``, which a :class:`bionp.train.Trainer` applies: gradient
transforms after the rule and before the optimiser, weight operations after
the optimiser step; their state is saved in the Trainer's checkpoints.

Order of the chain (fixed, whatever the order of ``transforms``):
``fuzzy_learning_rates`` → ``crystallize`` → ``volume_dependent_lr`` →
``scale_grad`` → ``l1_reg`` (gradients), then ``rejuvenate_weights`` →
``enforce_dales_principle`` (weights).  Fuzzy factors come first so that
crystallisation dampens them as in the seed; Dale's principle comes last so
that nothing after it can break the signs.

The default chain is the seed's synaptic-plasticity functions — fuzzy learning
rates, crystallisation (every 100 steps, as in the seed's tutorial) and
volume-dependent learning rates.  Rejuvenation, the seed's fourth exposed
function, is available (``transforms=(..., "rejuvenate_weights")``, every
``rejuvenate_every`` = 600 steps: one epoch of a 60,000-image set at batch size
100, as the seed's tutorial rejuvenates once per epoch) but not on by default:
at the seed's ``dre = 8`` it replaces about a third of a trained layer's weights
by draws from :math:`U(-M, M)` each time, which on Fashion-MNIST costs about 7
points of accuracy after 10 epochs (see ``examples/bio_transformations.py``).
The volume-dependent rate has the seed's scale, ``lr_relative=False``, as
:func:`~bionp.plasticity.volume_dependent_lr` (one default): it multiplies the
optimiser's step by about ``base_lr`` (0.1) for small weights, so an ``lr`` tuned
without the chain trains about 10x slower with it; ``lr_relative=True`` divides the
rate by ``base_lr`` and keeps that ``lr`` meaningful.  ``lr_redraw_every=100``
(bionp's choice) keeps the cost of a step down: the volume-dependent rates are
re-evaluated every 100 steps instead of every step (see
:mod:`bionp.plasticity.volume`).
"""

from __future__ import annotations

import dataclasses
import numbers

from bionp.nn.activations import get_activation
from bionp.plasticity.base import chain, check_every, check_nonnegative, check_positive
from bionp.plasticity.crystallize import Crystallize, check_dampening
from bionp.plasticity.dale import DalesPrinciple
from bionp.plasticity.fuzzy import FuzzyLearningRates, check_nu
from bionp.plasticity.l1 import L1Regularization
from bionp.plasticity.rejuvenation import Rejuvenation
from bionp.plasticity.scaling import SynapticScaling
from bionp.plasticity.splitting import check_gamma, split_weights
from bionp.plasticity.volume import VolumeDependentLR
from bionp.random import check_rng

__all__ = ["BioConfig", "BioConverter", "convert", "TRANSFORMS", "DEFAULT_TRANSFORMS"]

#: names accepted in ``BioConfig.transforms``, in the order the chain applies them
TRANSFORMS = ("fuzzy_learning_rates", "crystallize", "volume_dependent_lr", "scale_grad", "l1_reg",
              "rejuvenate_weights")
DEFAULT_TRANSFORMS = ("fuzzy_learning_rates", "crystallize", "volume_dependent_lr")


@dataclasses.dataclass(frozen=True)
class BioConfig:
    """Parameters of the bio transformations (the seed's names and defaults first).

    Parameters
    ----------
    weight_splitting_activation_function : str, default ``"identity"``
        Sub-unit activation :math:`\\varphi` of weight splitting (a bionp activation name).
    fuzzy_learning_rate_factor_nu : float in [0, 1), default 0.16
    dampening_factor : float in (0, 1), default 0.6
    crystal_thresh : float > 0, default 4.5e-5
    rejuvenation_parameter_dre : float > 0, default 8.0
    weight_splitting_Gamma : int >= 0, default 0
        0 or 1: no splitting; :math:`\\Gamma > 1` must divide the outputs of every split layer.
    apply_dales_principle : bool, default False
    base_lr : float > 0, default 0.1
    stability_factor : float >= 0, default 2.0
    lr_variability : float >= 0, default 0.2
    transforms : tuple of str, default :data:`DEFAULT_TRANSFORMS`
        Any of :data:`TRANSFORMS` (fuzzy learning rates, crystallisation and
        volume-dependent rates by default).
    crystallize_every, rejuvenate_every, lr_redraw_every : int >= 1 (100, 600, 100)
    lr_relative : bool, default False
        Divide the volume-dependent rate by ``base_lr`` (``relative=`` of
        :class:`~bionp.plasticity.VolumeDependentLR`, same default: the seed's scale).
    scale_grad_strength : float >= 0, default 0.01
    l1_strength : float >= 0, default 1e-5
    keys : tuple of str, default ``("W",)``
        Parameters the transforms act on.
    weight_splitting_layers : tuple of int or None
        Layers to split (default: all but the output layer).
    """

    weight_splitting_activation_function: str = "identity"
    fuzzy_learning_rate_factor_nu: float = 0.16
    dampening_factor: float = 0.6
    crystal_thresh: float = 4.5e-5
    rejuvenation_parameter_dre: float = 8.0
    weight_splitting_Gamma: int = 0
    apply_dales_principle: bool = False
    base_lr: float = 0.1
    stability_factor: float = 2.0
    lr_variability: float = 0.2
    # bionp's additions
    transforms: tuple = DEFAULT_TRANSFORMS
    crystallize_every: int = 100
    rejuvenate_every: int = 600
    lr_relative: bool = False
    lr_redraw_every: int = 100
    scale_grad_strength: float = 0.01
    l1_strength: float = 1e-5
    keys: tuple = ("W",)
    weight_splitting_layers: tuple | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        act = self.weight_splitting_activation_function
        if not isinstance(act, str):
            act = getattr(act, "name", act)
        if not isinstance(act, str):
            raise ValueError("weight_splitting_activation_function must be an activation name "
                             f"such as 'identity' or 'relu', got {act!r}")
        get_activation(act)  # unknown names raise with the list of known ones
        set_(self, "weight_splitting_activation_function", act)
        set_(self, "fuzzy_learning_rate_factor_nu", check_nu(self.fuzzy_learning_rate_factor_nu))
        set_(self, "dampening_factor", check_dampening(self.dampening_factor))
        set_(self, "crystal_thresh", check_positive("crystal_thresh", self.crystal_thresh))
        set_(self, "rejuvenation_parameter_dre",
             check_positive("rejuvenation_parameter_dre", self.rejuvenation_parameter_dre))
        set_(self, "weight_splitting_Gamma", check_gamma(self.weight_splitting_Gamma))
        if not isinstance(self.apply_dales_principle, (bool,)):
            raise ValueError(f"apply_dales_principle must be True or False, got "
                             f"{self.apply_dales_principle!r}")
        set_(self, "base_lr", check_positive("base_lr", self.base_lr))
        set_(self, "stability_factor", check_nonnegative("stability_factor", self.stability_factor))
        set_(self, "lr_variability", check_nonnegative("lr_variability", self.lr_variability))
        tr = self.transforms
        if isinstance(tr, str):
            tr = (tr,)
        tr = tuple(tr)
        unknown = [t for t in tr if t not in TRANSFORMS]
        if unknown:
            hint = ""
            if any(isinstance(t, str) and "dale" in t.lower() for t in unknown):
                hint = ("; Dale's principle is not a gradient transform: pass "
                        "apply_dales_principle=True (Dalian initialisation and sign enforcement "
                        "after every step)")
            elif any(isinstance(t, str) and "split" in t.lower() for t in unknown):
                hint = "; weight splitting is structural: pass weight_splitting_Gamma=2 (or more)"
            raise ValueError(
                f"unknown transform(s) {unknown}; choose from {list(TRANSFORMS)}{hint}")
        if len(set(tr)) != len(tr):
            raise ValueError(f"transforms lists a name twice: {list(tr)}")
        set_(self, "transforms", tr)
        for name in ("crystallize_every", "rejuvenate_every", "lr_redraw_every"):
            set_(self, name, check_every(name, getattr(self, name)))
        if not isinstance(self.lr_relative, bool):
            raise ValueError(f"lr_relative must be True or False, got {self.lr_relative!r}")
        set_(self, "scale_grad_strength", check_nonnegative("scale_grad_strength",
                                                            self.scale_grad_strength))
        set_(self, "l1_strength", check_nonnegative("l1_strength", self.l1_strength))
        keys = (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"keys must be parameter names such as ('W',), got {self.keys!r}")
        set_(self, "keys", keys)
        if self.weight_splitting_layers is not None:
            layers = tuple(self.weight_splitting_layers)
            if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0
                       for i in layers):
                raise ValueError("weight_splitting_layers must be non-negative layer indices, got "
                                 f"{self.weight_splitting_layers!r}")
            set_(self, "weight_splitting_layers", tuple(int(i) for i in layers))

    # -- dict round trip ------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, config: dict) -> "BioConfig":
        """Build from a dict (e.g. :meth:`to_dict`'s); an unknown key is a ``ValueError``."""
        if not isinstance(config, dict):
            raise TypeError(f"from_dict needs a dict, got {type(config).__name__}")
        known = cls.field_names()
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"unknown BioConfig key(s) {unknown}; known keys: {list(known)}")
        return cls(**config)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples as lists); ``BioConfig.from_dict(c.to_dict()) == c``."""
        out = {}
        for name in self.field_names():
            v = getattr(self, name)
            out[name] = list(v) if isinstance(v, tuple) else v
        return out

    def get_config(self) -> dict:
        return self.to_dict()

    def replace(self, **changes) -> "BioConfig":
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(f"unknown BioConfig key(s) {unknown}; known keys: "
                             f"{list(self.field_names())}")
        return dataclasses.replace(self, **changes)

    # -- the chain -------------------------------------------------------------------------
    def build(self, rng=None):
        """The :func:`~bionp.plasticity.chain` of the configured transforms (not initialised);
        Dale's principle included when ``apply_dales_principle``."""
        rng = check_rng(rng)
        names = [t for t in TRANSFORMS if t in self.transforms]
        seeds = rng.spawn(len(names) + 1)
        kw = {"keys": self.keys}
        made = []
        for name, g in zip(names, seeds):
            if name == "fuzzy_learning_rates":
                made.append(FuzzyLearningRates(self.fuzzy_learning_rate_factor_nu, rng=g, **kw))
            elif name == "crystallize":
                made.append(Crystallize(self.crystal_thresh, self.dampening_factor,
                                        every=self.crystallize_every, rng=g, **kw))
            elif name == "volume_dependent_lr":
                made.append(VolumeDependentLR(
                    self.base_lr, self.stability_factor, self.lr_variability,
                    relative=self.lr_relative, redraw_every=self.lr_redraw_every, rng=g, **kw))
            elif name == "scale_grad":
                made.append(SynapticScaling(self.scale_grad_strength, rng=g, **kw))
            elif name == "l1_reg":
                made.append(L1Regularization(self.l1_strength, rng=g, **kw))
            elif name == "rejuvenate_weights":
                made.append(Rejuvenation(self.rejuvenation_parameter_dre,
                                         every=self.rejuvenate_every, rng=g, **kw))
        if self.apply_dales_principle:
            made.append(DalesPrinciple(keys=("W",), rng=seeds[-1]))
        return chain(*made)


def convert(net, config: BioConfig | dict | None = None, *, rng=None, **overrides):
    """Apply ``config`` to ``net`` in place and attach its chain as ``net.plasticity``.

    Parameters
    ----------
    net : bionp network (``layers``, ``parameters()``)
    config : BioConfig, dict or None (defaults)
    rng : int, Generator or None
        Seeds every transform (independent streams via ``spawn``).
    **overrides : BioConfig fields, e.g. ``apply_dales_principle=True``

    Returns
    -------
    net, with weight splitting applied (``weight_splitting_Gamma > 1``), the Dalian
    initialisation done (``apply_dales_principle``) and ``net.plasticity`` (a
    :class:`~bionp.plasticity.Chain`, initialised for ``net.parameters()``).
    """
    if config is None:
        config = BioConfig()
    elif isinstance(config, dict):
        config = BioConfig.from_dict(config)
    elif not isinstance(config, BioConfig):
        raise TypeError(f"config must be a BioConfig, a dict or None, got {type(config).__name__}")
    if overrides:
        config = config.replace(**overrides)
    if getattr(net, "plasticity", None) is not None:
        raise ValueError("this network already has bio transformations attached (net.plasticity); "
                         "convert a fresh network")
    if config.weight_splitting_Gamma > 1:
        split_weights(net, config.weight_splitting_Gamma,
                      config.weight_splitting_activation_function,
                      layers=config.weight_splitting_layers)
    ch = config.build(rng)
    ch.init(net.parameters())  # Dalian initialisation happens here
    net.plasticity = ch
    net.bio_config = config
    return net


class BioConverter:
    """The seed's converter interface: ``BioConverter(**fields)(net)``.

    ``BioConverter.from_dict(d)``, ``get_config()`` (the :class:`BioConfig`),
    ``convert(net, rng=None)``.

    Parameters
    ----------
    config : BioConfig or None
        The configuration (default: ``BioConfig()``).
    **kwargs
        :class:`BioConfig` fields that replace ``config``'s (the seed's names).
    """

    def __init__(self, config: BioConfig | None = None, **kwargs):
        if config is not None and not isinstance(config, BioConfig):
            raise TypeError(f"config must be a BioConfig, got {type(config).__name__}")
        base = config if config is not None else BioConfig()
        self.config = base.replace(**kwargs) if kwargs else base

    @classmethod
    def from_dict(cls, config: dict) -> "BioConverter":
        return cls(BioConfig.from_dict(config))

    def get_config(self) -> BioConfig:
        return self.config

    def convert(self, net, rng=None):
        return convert(net, self.config, rng=rng)

    __call__ = convert

    def __repr__(self) -> str:
        return f"BioConverter({self.config!r})"
