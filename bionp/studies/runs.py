"""One training run of a study: build the optimiser and the rule, train, report JSON-able metrics.

:func:`train_model` trains with :class:`bionp.train.Trainer`, which calls
``net.after_update()`` after every optimiser step, so dendritic layers resample
their synapses during training.  :func:`make_optimizer` and :func:`make_rule`
turn the names of a study's configuration (``"adam"``, ``"backprop"`` …) into
objects.  Shared by :mod:`bionp.studies.comparison` and :mod:`bionp.studies.tuning`.
"""

from __future__ import annotations

import inspect
from typing import Mapping

import numpy as np

from bionp.dendritic.analysis import count_parameters

__all__ = ["make_optimizer", "make_rule", "train_model"]


def _is_network(obj) -> bool:
    return hasattr(obj, "layers") and hasattr(obj, "forward")


def _split_built(obj, where: str):
    """``(net, optimizer or None)`` from what a factory returned."""
    if isinstance(obj, tuple) and len(obj) == 2 and _is_network(obj[0]):
        return obj[0], obj[1]
    if _is_network(obj):
        return obj, None
    raise TypeError(f"{where} must give a network (with layers and forward) or (network, "
                    f"optimizer), got {type(obj).__name__}")


def make_optimizer(spec, net, lr: float, **kwargs):
    """An optimiser for ``net``: a name (``"adam"``, ``"sgd"``), a callable ``spec(net)`` or
    an optimiser instance (anything with ``step``).

    Parameters
    ----------
    spec : str, callable or optimiser
    net : Sequential or MLP
    lr : float
    **kwargs
        Passed to the optimiser class when ``spec`` is a name.
    """
    from bionp import optim

    if isinstance(spec, str):
        table = {"adam": optim.Adam, "sgd": optim.SGD}
        key = spec.lower()
        if key not in table:
            raise ValueError(f"unknown optimizer {spec!r}; use 'adam', 'sgd', a callable "
                             "optimizer(net) or an optimiser instance")
        return table[key](net, lr=lr, **kwargs)
    if hasattr(spec, "step"):
        return spec
    if callable(spec):
        return spec(net)
    raise TypeError(f"optimizer must be a name, a callable or an optimiser, got "
                    f"{type(spec).__name__}")


def make_rule(spec, rng=None, **kwargs):
    """A learning rule: a name of :data:`bionp.rules.RULES` (given ``rng=`` if it takes one),
    a :class:`~bionp.rules.Rule` or a callable ``spec(rng)``.

    Parameters
    ----------
    spec : str, Rule or callable
    rng : int, Generator or None
    **kwargs
        Passed to the rule class when ``spec`` is a name.
    """
    from bionp import rules

    if isinstance(spec, str):
        key = spec.lower().replace("-", "_")
        cls = rules.RULES.get(key) or rules.ALIASES.get(key, (None,))[0]
        if cls is not None and "rng" in inspect.signature(cls).parameters:
            kwargs.setdefault("rng", rng)
        return rules.get_rule(spec, **kwargs)
    if hasattr(spec, "gradients"):
        return spec
    if callable(spec):
        return spec(rng)
    raise TypeError(f"rule must be a name, a Rule or a callable, got {type(spec).__name__}")


def _resample_reset_hooks(net, optimizer) -> None:
    from bionp.dendritic.resampling import reset_optimizer_state

    for layer in net.layers:
        if hasattr(layer, "add_resample_callback"):
            layer.add_resample_callback(
                lambda lay, mask: reset_optimizer_state(optimizer, lay.w, mask))


def train_model(net, optimizer, rule, data, *, epochs: int, batch_size: int, rng=None,
                loss="cross_entropy", progress: bool | None = None) -> dict:
    """Train ``net`` with :class:`bionp.train.Trainer`; JSON-able metrics.

    Returns ``{"test_accuracy": [% per epoch], "test_loss", "epoch_loss",
    "epoch_seconds", "seconds", "best_test_accuracy", "n_params",
    "n_resamplings", "stopped"}``.

    Parameters
    ----------
    net : Sequential or MLP
    optimizer : Optimizer
    rule : Rule
    data : tuple
        ``(x_train, y_train, x_test, y_test)``.
    epochs, batch_size : int
    rng : int, Generator or None
        Shuffles the batches.
    loss : str or Loss, default "cross_entropy"
    progress : bool or None
    """
    from bionp.nn import get_loss
    from bionp.train import Trainer

    x_tr, y_tr, x_te, y_te = data
    trainer = Trainer(net, rule, optimizer, get_loss(loss), batch_size=batch_size, rng=rng,
                      progress=progress)
    h = trainer.fit(x_tr, y_tr, epochs=epochs, x_test=x_te, labels_test=y_te, target_test=y_te)
    return {
        "test_accuracy": list(h.test_accuracy),
        "test_loss": list(h.test_loss),
        "epoch_loss": list(h.epoch_loss),
        "epoch_seconds": list(h.epoch_seconds),
        "seconds": float(sum(h.epoch_seconds)),
        "best_test_accuracy": max(h.test_accuracy) if h.test_accuracy else None,
        "n_params": count_parameters(net),
        "n_resamplings": int(sum(getattr(layer, "n_resamplings", 0) for layer in net.layers)),
        "stopped": h.stopped,
    }


def _seed_streams(seed: int):
    """Independent generators for shuffling and for the rule, derived from ``seed``."""
    from bionp.random import Generator

    return Generator(seed).spawn(2)


def _as_list(v, name):
    if isinstance(v, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be a list, got {type(v).__name__}")
    try:
        return list(v)
    except TypeError:
        raise TypeError(f"{name} must be a list, got {type(v).__name__}") from None


def _check_positive(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
