"""What happened during training: the :class:`History` a :class:`bionp.train.Trainer`
fills (per-update losses, per-epoch losses, accuracies, seconds and diagnostics), plain
Python numbers throughout, so that it is JSON-able and checkpointed as it is."""

from __future__ import annotations

import dataclasses

__all__ = ["History"]


@dataclasses.dataclass
class History:
    """What happened during training (all plain Python numbers, JSON-able).

    Parameters
    ----------
    loss : list of float
        Training loss per update.
    epoch_loss : list of float
        Mean training loss per epoch.
    train_accuracy, test_accuracy : list of float
        Accuracy (%) per epoch.
    test_loss : list of float
        Test loss per epoch.
    epoch_seconds : list of float
        Training time per epoch.
    diagnostics : dict
        ``name -> per-epoch values``.
    stopped : str, optional
        Why training stopped early; ``None`` if it did not.
    epochs_done : int, default 0
        Epochs completed.
    """

    loss: list = dataclasses.field(default_factory=list)           # per update
    epoch_loss: list = dataclasses.field(default_factory=list)     # mean training loss per epoch
    train_accuracy: list = dataclasses.field(default_factory=list)  # per epoch, %
    test_accuracy: list = dataclasses.field(default_factory=list)   # per epoch, %
    test_loss: list = dataclasses.field(default_factory=list)       # per epoch
    epoch_seconds: list = dataclasses.field(default_factory=list)   # per epoch (training only)
    diagnostics: dict = dataclasses.field(default_factory=dict)     # name -> per-epoch values
    stopped: str | None = None                                      # why training stopped early
    epochs_done: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)
