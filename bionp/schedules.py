r"""Learning-rate schedules: the rate of every update as a function of the training position.

A schedule is a thin object: ``schedule.lr_at(epoch, step, steps_per_epoch)`` gives the
learning rate of update ``step`` (0-based) of epoch ``epoch`` (0-based) when an epoch
has ``steps_per_epoch`` updates.  It holds no counters: the rate is a pure function of
the position, so a run resumed from a checkpoint (inside an epoch too) gets the same
rates as an uninterrupted one.  :class:`~bionp.train.Trainer` (``schedule=``) sets
``optimizer.lr`` from it before every update (``per_step=True``) or at the start of
every epoch (``per_step=False``, the default), and saves its configuration in
checkpoints (a resume with another schedule is refused).

The position is :math:`t = e` (per epoch) or :math:`t = e + s / S` (per step: update
:math:`s` of :math:`S` in epoch :math:`e`), in epochs.

:class:`CosineSchedule` (Loshchilov & Hutter 2017, without restarts), over ``epochs``
epochs after ``warmup`` epochs of linear warm-up:

.. math::

    \eta(t) = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})
              \Bigl(1 + \cos\frac{\pi\,(t - t_w)}{T - t_w}\Bigr), \quad t_w \le t < T;
    \qquad \eta(t) = \eta_0\,\frac{t + u}{t_w}, \quad t < t_w;
    \qquad \eta(t) = \eta_{\min}, \quad t \ge T,

with :math:`u` one unit of the schedule's resolution (1 epoch, or :math:`1/S` per step),
so the first update of a warm-up already moves.

:class:`MultiStepSchedule` (PyTorch's ``MultiStepLR``; biotorch's benchmark schedule):

.. math::

    \eta(t) = \eta_0\,\gamma^{\#\{m \in M : m \le t\}} .

Any callable ``epoch -> lr`` is also accepted by the Trainer (set at the start of each
epoch, not saved in checkpoints); :func:`as_schedule` wraps it.
"""

from __future__ import annotations

import math
import numbers

from bionp.validation import check_number, check_real

__all__ = ["Schedule", "CosineSchedule", "MultiStepSchedule", "FunctionSchedule", "as_schedule"]


class Schedule:
    """Base class: a learning rate per training position; subclasses define :meth:`_lr`."""

    #: whether the rate changes inside an epoch (the Trainer then sets it before every update)
    per_step: bool = False

    def lr_at(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        """Learning rate of update ``step`` of epoch ``epoch`` (both 0-based).

        ``steps_per_epoch`` (updates per epoch) places ``step`` inside the epoch for a
        per-step schedule; a per-epoch schedule ignores ``step``.
        """
        check_number("epoch", epoch, low=0, integer=True)
        check_number("steps_per_epoch", steps_per_epoch, low=1, integer=True)
        check_number("step", step, low=0, integer=True)
        if step >= steps_per_epoch:
            raise ValueError(f"step must be < steps_per_epoch={steps_per_epoch} (0-based), "
                             f"got {step}")
        if self.per_step:
            return self._lr(epoch + step / steps_per_epoch, 1.0 / steps_per_epoch)
        return self._lr(float(epoch), 1.0)

    def __call__(self, epoch: int) -> float:
        """The rate at the start of epoch ``epoch`` (the plain ``epoch -> lr`` form)."""
        return self.lr_at(epoch, 0, 1)

    def _lr(self, t: float, unit: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor's arguments (JSON-able)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def state_dict(self) -> dict:
        """``{"name": class name, "config": get_config()}``: all a schedule is."""
        return {"name": type(self).__name__, "config": self.get_config()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_flag(name, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


class CosineSchedule(Schedule):
    """Cosine annealing from ``base_lr`` to ``min_lr`` over ``epochs`` epochs (module docs).

    Parameters
    ----------
    base_lr : float > 0
        :math:`\\eta_0`, the rate after the warm-up (at the first update without one).
    epochs : int >= 1
        :math:`T`: the rate reaches ``min_lr`` at the end of epoch ``epochs`` and stays there.
    min_lr : float, default 0
        :math:`\\eta_{\\min}`, in ``[0, base_lr]``.
    warmup : int, default 0
        :math:`t_w`: epochs of linear warm-up (``0 <= warmup < epochs``).
    per_step : bool, default False
        Anneal at every update (``True``) or once per epoch.
    """

    def __init__(self, base_lr: float, epochs: int, *, min_lr: float = 0.0, warmup: int = 0,
                 per_step: bool = False):
        self.base_lr = check_real("base_lr", base_lr, low=0, low_open=True)
        self.epochs = check_number("epochs", epochs, low=1, integer=True)
        self.min_lr = check_real("min_lr", min_lr, low=0, high=self.base_lr)
        self.warmup = check_number("warmup", warmup, low=0, integer=True)
        if self.warmup >= self.epochs:
            raise ValueError(f"warmup must be < epochs={self.epochs} (epochs left to anneal), "
                             f"got {warmup}")
        self.per_step = _check_flag("per_step", per_step)

    def _lr(self, t, unit):
        if t < self.warmup:
            return self.base_lr * min(1.0, (t + unit) / self.warmup)
        if t >= self.epochs:
            return self.min_lr
        frac = (t - self.warmup) / (self.epochs - self.warmup)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * frac))

    def get_config(self) -> dict:
        return {"base_lr": self.base_lr, "epochs": int(self.epochs), "min_lr": self.min_lr,
                "warmup": int(self.warmup), "per_step": self.per_step}


class MultiStepSchedule(Schedule):
    """``base_lr`` multiplied by ``gamma`` at each milestone epoch (module docs).

    Parameters
    ----------
    base_lr : float > 0
    milestones : sequence of numbers > 0, strictly increasing
        Epochs (positions :math:`t`) at which the rate is multiplied by ``gamma``; with
        ``per_step=True`` a fractional milestone (e.g. 2.5) takes effect mid-epoch.
    gamma : float in (0, 1], default 0.1
    per_step : bool, default False
    """

    def __init__(self, base_lr: float, milestones, *, gamma: float = 0.1,
                 per_step: bool = False):
        self.base_lr = check_real("base_lr", base_lr, low=0, low_open=True)
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be a sequence of epochs, got {milestones!r}")
        ms = list(milestones)
        for i, m in enumerate(ms):
            check_real(f"milestones[{i}]", m, low=0, low_open=True)
        if any(b <= a for a, b in zip(ms, ms[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {ms}")
        self.milestones = [int(m) if isinstance(m, numbers.Integral) else float(m) for m in ms]
        self.gamma = check_real("gamma", gamma, low=0, high=1, low_open=True)
        self.per_step = _check_flag("per_step", per_step)

    def _lr(self, t, unit):
        return self.base_lr * self.gamma ** sum(t >= m for m in self.milestones)

    def get_config(self) -> dict:
        return {"base_lr": self.base_lr, "milestones": list(self.milestones),
                "gamma": self.gamma, "per_step": self.per_step}


class FunctionSchedule(Schedule):
    """A plain callable ``epoch -> lr`` as a per-epoch schedule (its value checked).

    Parameters
    ----------
    fn : callable
        ``fn(epoch) -> lr`` for the 0-based epoch; the rate must be a real number >= 0.
    """

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"a schedule must be a Schedule or a callable epoch -> lr, got "
                            f"{type(fn).__name__}")
        self.fn = fn

    def _lr(self, t, unit):
        return check_real(f"the learning rate the schedule gave for epoch {int(t)}",
                          self.fn(int(t)), low=0)

    def get_config(self) -> dict:
        return {"fn": getattr(self.fn, "__qualname__", repr(self.fn))}

    def state_dict(self):
        """``None``: a function's behaviour cannot be recorded (not compared on resume)."""
        return None


def as_schedule(schedule) -> Schedule | None:
    """``None``, a :class:`Schedule` as it is, or a callable wrapped in
    :class:`FunctionSchedule`.

    Parameters
    ----------
    schedule : Schedule, callable or None
        What ``Trainer(schedule=)`` was given.
    """
    if schedule is None or isinstance(schedule, Schedule):
        return schedule
    return FunctionSchedule(schedule)
