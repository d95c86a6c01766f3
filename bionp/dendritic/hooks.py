"""Training-loop hooks of dendritic layers: resampling events after optimiser steps, and
the replaced synapses' optimiser state."""

from __future__ import annotations

from bionp.dendritic.resampling import reset_optimizer_state as _reset_optimizer_state

__all__ = ["after_step", "trainer_callback"]


def after_step(net, optimizer=None, reset_optimizer_state: bool = False) -> int:
    """Call :meth:`DendriticLayer.after_update` on every layer of ``net`` that has it.

    With ``reset_optimizer_state=True`` the optimiser's state of the replaced
    synapses is zeroed.  Returns the number of resampling events.  Use as
    ``Trainer(..., after_step=lambda tr: after_step(tr.net, tr.optimizer))``.

    Parameters
    ----------
    net : Sequential
    optimizer : Optimizer or None
        Needed with ``reset_optimizer_state``.
    reset_optimizer_state : bool, default False
    """
    layers = getattr(net, "layers", [net])
    n = 0
    for layer in layers:
        if hasattr(layer, "after_update") and layer.after_update():
            n += 1
            if reset_optimizer_state and optimizer is not None:
                _reset_optimizer_state(optimizer, layer.w, layer.resampled_mask)
    return n


def trainer_callback(reset_optimizer_state: bool = False):
    """A ``Trainer(after_step=...)`` callback: :func:`after_step` on the trainer's network
    and optimiser after every update.

    :class:`bionp.train.Trainer` already calls ``net.after_update()`` (which resamples)
    after every step of a :class:`bionp.nn.Sequential`; with such a trainer the callback
    only resets the optimiser's state of the synapses replaced in that step (with
    ``reset_optimizer_state=True``) and returns the number of resampling events.

    Parameters
    ----------
    reset_optimizer_state : bool, default False
    """

    def callback(trainer):
        if getattr(trainer, "updates_layers", False) and hasattr(trainer.net, "after_update"):
            n = 0
            for layer in trainer.net.layers:
                if getattr(layer, "resampled_last_update", False):
                    n += 1
                    if reset_optimizer_state:
                        _reset_optimizer_state(trainer.optimizer, layer.w, layer.resampled_mask)
            return n
        return after_step(trainer.net, trainer.optimizer, reset_optimizer_state)

    return callback
