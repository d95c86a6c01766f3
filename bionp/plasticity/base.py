r"""The transform protocol shared by every bio transformation, and :func:`chain`.

Two kinds of objects act on a network's parameters
:math:`\theta = [\{W_0, b_0\}, \{W_1, b_1\}, \dots]` (``net.parameters()``: a list
aligned with ``net.layers`` of dicts of arrays) and on a rule's gradient
estimate :math:`g` of the same structure (``rule.gradients(...)``):

* a **gradient transform** maps :math:`g \mapsto T(\theta, g)` between the rule
  and the optimiser (fuzzy and volume-dependent learning rates, crystallisation,
  synaptic scaling, L1);
* a **weight operation** changes :math:`\theta` in place after the optimiser step
  (rejuvenation, Dale's principle).

Both follow one protocol, in the spirit of optax but with the state kept in the
object (so that a :class:`bionp.train.Trainer` can save it in checkpoints):

``init(params)``
    Allocate the per-weight state for these parameters (fuzzy factors,
    crystallisation factors, signs …).  Called automatically on first use.
``update(params, grads) -> grads``
    Gradient transforms: modify ``grads`` **in place** (rules return fresh
    arrays) and return it.  Weight operations return ``grads`` unchanged.
``after_update(params)``
    Weight operations: act on the parameters (the Trainer calls it after every
    optimiser step).  Gradient transforms do nothing.
``state_dict()`` / ``load_state_dict(state)``
    The step count, the generator state and every per-weight array.
``__call__(net, grads)``
    The Trainer's ``transforms=`` signature: ``update(net.parameters(), grads)``.

Which arrays are touched
------------------------
By default only the weight matrices: the entries named ``"W"`` of every layer
that has one.  ``keys=("W", "b")`` includes biases; ``layers=[0, 2]`` restricts
the transform to those layer indices.  A targeted array whose shape differs
from the gradient's or from the state the transform was initialised with is a
``ValueError`` naming the layer, the key and both shapes.
"""

from __future__ import annotations

import numbers

from bionp.backend import get_array_module
from bionp.random import check_rng

__all__ = ["Transform", "GradientTransform", "WeightOperation", "Chain", "chain",
           "check_positive", "check_nonnegative", "check_every"]


# -- argument checks shared by the transforms -----------------------------------------
def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_positive(name: str, value, *, strict: bool = True) -> float:
    """``value`` as float; ``ValueError`` unless it is a finite real ``> 0`` (``>= 0``
    with ``strict=False``).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : real
    strict : bool, default True
        ``False`` accepts 0.
    """
    if not _is_real(value) or value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (value <= 0) if strict else (value < 0):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def check_nonnegative(name: str, value) -> float:
    """``value`` as float; ``ValueError`` unless it is a finite real ``>= 0``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : real
    """
    return check_positive(name, value, strict=False)


def check_every(name: str, value) -> int:
    """``value`` as int; ``ValueError`` unless it is an int ``>= 1`` (steps between
    applications of a transform).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int (steps between applications), "
                         f"got {value!r}")
    return int(value)


def _check_keys(keys) -> tuple:
    if isinstance(keys, str):
        keys = (keys,)
    keys = tuple(keys)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keys must be a non-empty sequence of parameter names such as ('W',), "
                         f"got {keys!r}")
    return keys


def _check_layers(layers):
    if layers is None:
        return None
    out = tuple(int(i) for i in layers)
    if any(i < 0 for i in out):
        raise ValueError(f"layers must be non-negative layer indices, got {layers!r}")
    return out


def _param_list(params):
    """``params`` as a list of dicts (a network is accepted too)."""
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, dict) for p in params):
        raise TypeError("parameters must be a list of dicts of arrays aligned with the network's "
                        f"layers (net.parameters()), got {type(params).__name__}")
    return list(params)


class Transform:
    """Base class of gradient transforms and weight operations (see the module docstring).

    Parameters
    ----------
    keys : sequence of str, default ``("W",)``
        Parameter names the transform acts on.
    layers : sequence of int or None
        Layer indices it acts on (default: every layer that has one of ``keys``).
    rng : int, Generator or None
        Source of every random draw of the transform.
    """

    name = "transform"
    #: per-target state arrays, saved in checkpoints (subclasses list theirs)
    _state_arrays: tuple = ()

    def __init__(self, *, keys=("W",), layers=None, rng=None):
        self.keys = _check_keys(keys)
        self.layers = _check_layers(layers)
        self.rng = check_rng(rng)
        self.step = 0
        self.state = None  # {array name: {"l.k": array}} once initialised
        self._shapes = None

    # -- targets ----------------------------------------------------------------------
    def targets(self, params):
        """``[(layer index, key), …]`` of the arrays this transform acts on."""
        out = []
        for l, p in enumerate(params):
            if self.layers is not None and l not in self.layers:
                continue
            for k in self.keys:
                if k in p:
                    out.append((l, k))
        if self.layers is not None:
            missing = [l for l in self.layers if l >= len(params)]
            if missing:
                raise ValueError(f"{self.name}: layers {missing} do not exist (the network has "
                                 f"{len(params)} layers)")
        return out

    @property
    def initialized(self) -> bool:
        return self.state is not None

    def init(self, params) -> "Transform":
        """Allocate the per-weight state for ``params`` (``net.parameters()`` or a network)."""
        params = _param_list(params)
        tg = self.targets(params)
        for l, k in tg:
            self._check_param(l, k, params[l][k])
        self._shapes = {f"{l}.{k}": tuple(params[l][k].shape) for l, k in tg}
        self.state = {name: {} for name in self._state_arrays}
        for l, k in tg:
            self._init_target(f"{l}.{k}", params[l][k])
        self.step = 0
        return self

    def _init_target(self, key, p) -> None:  # pragma: no cover - overridden where needed
        """Allocate the state of one array ``p`` (stored under ``self.state[name][key]``)."""

    def _state_shape(self, name: str, shape: tuple) -> tuple:
        """Shape of state array ``name`` for a parameter of ``shape`` (default: the same)."""
        return tuple(shape)

    def _check_param(self, l, k, p) -> None:
        """Subclasses: raise ``ValueError`` for arrays they cannot act on (e.g. not 2-D)."""

    def _ensure(self, params):
        if self.state is None:
            self.init(params)

    def _check_shapes(self, params, grads=None):
        """Same number of layers, matching shapes of parameters, gradients and state."""
        tg = self.targets(params)
        if grads is not None:
            if not isinstance(grads, (list, tuple)) or len(grads) != len(params):
                n = len(grads) if isinstance(grads, (list, tuple)) else type(grads).__name__
                raise ValueError(f"{self.name}: gradients must be a list of {len(params)} dicts "
                                 f"(one per layer, as the rules return), got {n}")
        for l, k in tg:
            p = params[l][k]
            key = f"{l}.{k}"
            want = self._shapes.get(key) if self._shapes is not None else None
            if want is None:
                raise ValueError(f"{self.name}: layer {l} '{k}' was not present when the transform "
                                 "was initialised; call init(params) for this network")
            if tuple(p.shape) != want:
                raise ValueError(f"{self.name}: parameter of layer {l} '{k}' has shape "
                                 f"{tuple(p.shape)}, but the transform's state was initialised for "
                                 f"shape {want}; call init(params) again for a new network")
            if grads is not None:
                g = grads[l].get(k) if isinstance(grads[l], dict) else None
                if g is None:
                    got = sorted(grads[l]) if isinstance(grads[l], dict) else grads[l]
                    raise ValueError(f"{self.name}: gradients of layer {l} have no '{k}' entry "
                                     f"(got {got!r})")
                if tuple(g.shape) != tuple(p.shape):
                    raise ValueError(f"{self.name}: gradient of layer {l} '{k}' has shape "
                                     f"{tuple(g.shape)}, the parameter has shape {tuple(p.shape)}")
        return tg

    # -- protocol ---------------------------------------------------------------------
    def update(self, params, grads):
        """Transformed ``grads`` (in place); weight operations return them unchanged."""
        return grads

    def after_update(self, params) -> None:
        """Act on the parameters after the optimiser step (weight operations)."""

    def __call__(self, net, grads):
        return self.update(net.parameters(), grads)

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict:
        shapes = None if self._shapes is None else {k: list(v) for k, v in self._shapes.items()}
        return {"name": self.name, "step": self.step, "rng": self.rng.get_state(), "shapes": shapes,
                "arrays": self.state if self.state is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state is for transform {state.get('name')!r}, not {self.name!r}")
        self.step = int(state["step"])
        self.rng.set_state(state["rng"])
        shapes = state.get("shapes")
        if shapes is None:
            self.state, self._shapes = None, None
            return
        self._shapes = {k: tuple(v) for k, v in shapes.items()}
        arrays = state.get("arrays", {})
        new = {}
        for name in self._state_arrays:
            per = arrays.get(name, {})
            if set(per) != set(self._shapes):
                raise ValueError(f"{self.name}: state '{name}' has entries {sorted(per)}, "
                                 f"expected {sorted(self._shapes)}")
            for key, a in per.items():
                want = self._state_shape(name, self._shapes[key])
                if tuple(a.shape) != want:
                    raise ValueError(f"{self.name}: state '{name}' of {key} has shape "
                                     f"{tuple(a.shape)}, expected {want}")
            if self.state is not None and name in self.state and set(self.state[name]) == set(per):
                for key, a in per.items():  # in place, keeps references
                    own = self.state[name][key]
                    own[...] = get_array_module(own).asarray(a, dtype=own.dtype)
                new[name] = self.state[name]
            else:
                new[name] = {key: a.copy() for key, a in per.items()}
        self.state = new

    def get_config(self) -> dict:
        return {"name": self.name, "keys": list(self.keys),
                "layers": None if self.layers is None else list(self.layers)}

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({cfg})"


class GradientTransform(Transform):
    """A transform of the gradients (between the rule and the optimiser).

    Parameters
    ----------
    keys, layers, rng
        See :class:`Transform`.
    """

    def update(self, params, grads):
        params = _param_list(params)
        self._ensure(params)
        for l, k in self._check_shapes(params, grads):
            grads[l][k] = self._update_target(f"{l}.{k}", params[l][k], grads[l][k])
        self.step += 1
        return grads

    def _update_target(self, key, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def penalty(self, params):
        """For transforms that add the gradient of a penalty (L1, synaptic scaling): the
        penalty summed over the targeted arrays (0-d array)."""
        params = _param_list(params)
        self._ensure(params)
        total = None
        for l, k in self._check_shapes(params):
            v = self._penalty_target(f"{l}.{k}", params[l][k])
            total = v if total is None else total + v
        return total

    def _penalty_target(self, key, p):
        raise TypeError(f"{self.name} is not the gradient of a penalty")

    def _scratch(self, key, p):
        """A preallocated array like ``p`` for target ``key`` (not state; reused every step)."""
        bufs = self.__dict__.setdefault("_bufs", {})
        b = bufs.get(key)
        if b is None or b.shape != p.shape or b.dtype != p.dtype:
            b = bufs[key] = get_array_module(p).empty_like(p)
        return b


class WeightOperation(Transform):
    """An operation on the parameters after the optimiser step, every ``every`` steps.

    :meth:`after_update` acts after optimiser steps ``1, every + 1, 2 every + 1, …``
    (every step when ``every == 1``): the first application comes right after the
    first step, and the network trains ``every - 1`` steps after the last one of
    a run of ``k * every`` steps instead of being evaluated straight after it.

    Parameters
    ----------
    every : int >= 1, default 1
        Optimiser steps between applications.
    keys, layers, rng
        See :class:`Transform`.
    """

    def __init__(self, *, every: int = 1, keys=("W",), layers=None, rng=None):
        super().__init__(keys=keys, layers=layers, rng=rng)
        self.every = check_every("every", every)

    def after_update(self, params) -> None:
        params = _param_list(params)
        self._ensure(params)
        due = self.step % self.every == 0
        self.step += 1
        if due:
            self.apply(params)

    def apply(self, params) -> None:
        """Act on ``params`` now (regardless of the schedule)."""
        params = _param_list(params)
        self._ensure(params)
        for l, k in self._check_shapes(params):
            self._apply_target(f"{l}.{k}", params[l][k])

    def _apply_target(self, key, p) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["every"] = self.every
        return cfg


class Chain:
    """Several transforms applied in order: ``update`` runs every gradient transform,
    ``after_update`` every weight operation (each in the order given).

    ``chain(fuzzy_learning_rates(), crystallize(), rejuvenate_weights())``.  The
    chain is what :func:`bionp.plasticity.convert` attaches to a network and what
    a :class:`bionp.train.Trainer` applies: after the rule and before the
    optimiser (``update``), and after the optimiser step (``after_update``).

    Parameters
    ----------
    *transforms : Transform
        Gradient transforms and weight operations, applied in this order.
    """

    name = "chain"

    def __init__(self, *transforms):
        flat = []
        for t in transforms:
            if isinstance(t, Chain):
                flat.extend(t.transforms)
            elif isinstance(t, Transform):
                flat.append(t)
            else:
                raise TypeError("chain() takes bionp.plasticity transforms, got "
                                f"{type(t).__name__}")
        self.transforms = flat

    def __iter__(self):
        return iter(self.transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, i):
        return self.transforms[i]

    def find(self, name: str):
        """The first transform called ``name`` (e.g. ``"crystallize"``), or None."""
        for t in self.transforms:
            if t.name == name:
                return t
        return None

    def init(self, params) -> "Chain":
        for t in self.transforms:
            t.init(params)
        return self

    def update(self, params, grads):
        params = _param_list(params)
        for t in self.transforms:
            grads = t.update(params, grads)
        return grads

    def after_update(self, params) -> None:
        params = _param_list(params)
        for t in self.transforms:
            t.after_update(params)

    def __call__(self, net, grads):
        return self.update(net.parameters(), grads)

    def state_dict(self) -> dict:
        return {"name": self.name, "transforms": [t.state_dict() for t in self.transforms]}

    def load_state_dict(self, state: dict) -> None:
        states = state.get("transforms")
        if not isinstance(states, list) or len(states) != len(self.transforms):
            got = len(states) if isinstance(states, list) else states
            raise ValueError(f"chain state has {got} transforms, this chain has "
                             f"{len(self.transforms)}")
        for t, s in zip(self.transforms, states):
            t.load_state_dict(s)

    def get_config(self) -> dict:
        return {"name": self.name, "transforms": [t.get_config() for t in self.transforms]}

    def __repr__(self) -> str:
        return "chain(" + ", ".join(repr(t) for t in self.transforms) + ")"


def chain(*transforms) -> Chain:
    """Compose transforms (see :class:`Chain`).

    Parameters
    ----------
    *transforms : Transform
        Applied in this order.
    """
    return Chain(*transforms)
