"""Training loop: batches, progress, history, evaluation, checkpoints, divergence stop.

One :class:`Trainer` step is

.. math::

    g = \\mathrm{rule.gradients}(\\mathrm{net}, x_B, t_B, L), \\quad
    g \\leftarrow \\mathrm{transforms}(\\theta, g), \\quad
    \\theta \\leftarrow \\mathrm{optimizer.step}(g)

for each minibatch ``B`` of a permutation drawn from the trainer's own
:class:`bionp.random.Generator` every epoch.  Anything with a ``gradients``
method works as a rule, anything with ``step`` as an optimiser.

``fit(x, target, epochs=k)`` trains ``k`` more epochs (each call continues where
the last one stopped, as in Keras); ``fit(..., until_epoch=N)`` trains until ``N``
epochs are done in total, counting those of a resumed checkpoint.

Checkpoints (``checkpoint=PATH``, :mod:`bionp.checkpoint`) are written at the end
of every epoch, and every ``checkpoint_every`` updates if that is given, as one
``.npz`` file written atomically.  The trainer's part records its generator, the
position inside the epoch (updates done, the generator's state before the
epoch's permutation, which redraws it) and the history, so that
``fit(..., resume=True)`` continues from any step with results bit-identical to
an uninterrupted run.  A checkpoint written for another rule, optimiser,
plasticity chain or network is refused.

If the loss becomes NaN or infinite, training stops, the weights of the last
finite step are restored, and :attr:`History.stopped` says what happened.

Host synchronisations (each one stalls a GPU): ``fit`` checks its data's values once
(NaN/Inf, labels in range: two reads) and trains inside
:func:`bionp.validation.data_checked`, so that a step reads one number, its loss; an
epoch adds one (are the weights finite?) and the reads of its evaluation.
``tests/test_host_syncs.py`` counts them on the strict stand-in for every rule.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Callable

import numpy as np

from bionp.backend import asarray, asnumpy, get_array_module, is_array, to_scalar
from bionp.checkpoint import (CheckpointError, CheckpointMismatchError, load_checkpoint,
                              load_state_arrays, save_checkpoint, state_arrays)
from bionp.evaluation_data import (check_rows, check_samples_shape, check_values, evaluation_data,
                                   labels_from_target)
from bionp.history import History
from bionp.progress import progress_enabled
from bionp.random import check_rng
from bionp.schedules import Schedule, as_schedule
from bionp.validation import data_checked

__all__ = ["History", "Trainer", "save_checkpoint", "load_checkpoint", "state_arrays",
           "load_state_arrays", "CheckpointError", "CheckpointMismatchError"]


def _check_count(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        kind = "a positive" if least == 1 else "a non-negative"
        raise ValueError(f"{name} must be {kind} int, got {value!r}")


class Trainer:
    """Minibatch training of ``net`` with any learning ``rule`` and ``optimizer``.

    Parameters
    ----------
    net : bionp.nn.MLP (or anything with ``layers``, ``forward``)
    rule : object with ``gradients(net, x, target, loss_fn)``
    optimizer : object with ``step(grads)``
    loss_fn : callable ``loss_fn(out, target) -> 0-d array``
    batch_size : int
    rng : int | bionp.random.Generator | None
        Shuffles the training set each epoch (``shuffle=True``).
    shuffle : bool or "once"
        ``"once"`` draws one permutation before the first epoch and reuses it (the
        Microlearning tutorial's batching); ``True`` draws a new one every epoch.
    drop_last : bool
        Drop the last incomplete batch (default True: every update sees
        ``batch_size`` samples).
    transforms : callable ``(net, grads) -> grads``, optional
        Applied after the rule and before the optimiser (see :mod:`bionp.plasticity`);
        default: the chain :func:`bionp.plasticity.convert` attached as ``net.plasticity``.
        If it has ``after_update(net)`` (weight operations: rejuvenation, Dale's
        principle), that is called after every optimiser step; its ``state_dict()``
        is saved in checkpoints.
    diagnostics : dict name -> callable ``fn(trainer, epoch) -> float``, optional
        Evaluated after each epoch (``epoch``: the 0-based index of the epoch just
        finished), stored in ``history.diagnostics[name]``.
    diagnostics_at_start : bool, default False
        Also evaluate the diagnostics once before the first update of a fresh run
        (``epoch=-1``), so that ``history.diagnostics[name][i]`` is the value after
        ``i`` epochs and index 0 that of the untrained network (e.g. a rule's alignment
        with backprop at initialisation).  A resumed run does not repeat it.
    progress : bool, optional
        tqdm bar over updates; default: on when stderr is a terminal (env
        ``BIONP_PROGRESS=0`` turns it off).
    checkpoint : path, optional
        The checkpoint file (:mod:`bionp.checkpoint`), written atomically at the end of
        every epoch (and every ``checkpoint_every`` updates); ``fit(..., resume=True)``
        continues from it.
    checkpoint_every : int, optional
        Also write the checkpoint after every ``checkpoint_every``-th update (counted
        over the trainer's life), inside epochs; a resume from it is bit-identical.
    schedule : Schedule or callable ``epoch -> lr``, optional
        Sets ``optimizer.lr``: a :mod:`bionp.schedules` object (``CosineSchedule``,
        ``MultiStepSchedule``) before every update (``per_step``) or at the start of each
        epoch, saved in checkpoints (a resume under another schedule is refused); a plain
        callable at the start of each epoch (0-based), not saved.
    after_step : callable ``trainer -> None``, optional
        Called after every optimiser step, after the rule's ``after_step`` and the
        network's ``after_update()`` (which runs the layers' own hooks, e.g. synaptic
        resampling), with ``trainer.history.loss`` and the position (``trainer.epoch``,
        ``trainer.step``) already counting this step: a checkpoint saved here resumes
        bit-identically.

    Attributes
    ----------
    epoch : int
        Epochs completed.
    step : int
        Updates done in the epoch in progress (0 between epochs).
    n_steps : int
        Updates done in all.
    history : History
    """

    #: the trainer calls ``net.after_update()`` itself after every step
    updates_layers = True

    def __init__(self, net, rule, optimizer, loss_fn, *, batch_size: int = 100, rng=None,
                 shuffle: bool | str = True, drop_last: bool = True, transforms: Callable | None = None,
                 diagnostics: dict | None = None, diagnostics_at_start: bool = False,
                 progress: bool | None = None,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 eval_batch_size: int = 10_000, after_step: Callable | None = None,
                 schedule: Schedule | Callable[[int], float] | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if shuffle not in (True, False, "once"):
            raise ValueError(f"shuffle must be True, False or 'once', got {shuffle!r}")
        for name, obj, meth in (("rule", rule, "gradients"), ("optimizer", optimizer, "step")):
            if not hasattr(obj, meth):
                raise TypeError(f"{name} must have a {meth}() method, got {type(obj).__name__}")
        if checkpoint_every is not None:
            _check_count("checkpoint_every", checkpoint_every, least=1)
            if checkpoint is None:
                raise ValueError("checkpoint_every needs checkpoint=PATH (the file to write)")
        self.net = net
        self.rule = rule
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.batch_size = int(batch_size)
        self.rng = check_rng(rng)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transforms = transforms if transforms is not None else getattr(net, "plasticity", None)
        self.diagnostics = dict(diagnostics or {})
        self.diagnostics_at_start = bool(diagnostics_at_start)
        self.progress = progress
        self.checkpoint = os.fspath(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = None if checkpoint_every is None else int(checkpoint_every)
        self.eval_batch_size = int(eval_batch_size)
        self.after_step = after_step
        self.schedule = as_schedule(schedule)
        self.history = History()
        self._fixed_order = None
        self.epoch = self.step = self.n_steps = 0
        self._epoch_rng = None        # generator state before the epoch in progress drew its order
        self._epoch_shape = None      # (samples, batch_size) of the epoch in progress
        self._epoch_elapsed = 0.0     # training seconds of the epoch in progress before _t0
        self._t0 = None
        self._expect = None           # (samples, batch_size) of the fit that is resuming

    # -- state for checkpoints ----------------------------------------------------
    def state_dict(self) -> dict:
        elapsed = self._epoch_elapsed + (time.perf_counter() - self._t0 if self._t0 else 0.0)
        return {
            "rng": self.rng.get_state(),
            "epoch": self.epoch,
            "step": self.step,
            "n_steps": self.n_steps,
            "epoch_rng": self._epoch_rng,
            "epoch_shape": None if self._epoch_shape is None else list(self._epoch_shape),
            "epoch_elapsed": elapsed,
            "history": self.history.to_dict(),
            "fixed_order": self._fixed_order,
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        step = int(state.get("step", 0))
        shape = state.get("epoch_shape")
        own = None if self.schedule is None else self.schedule.state_dict()
        if state.get("schedule", own) != own:  # (checkpoints older than schedules: no key)
            raise ValueError(f"it was saved under the learning-rate schedule "
                             f"{state['schedule']}; this trainer has {own}: resume with the same "
                             "schedule (or none, as saved)")
        if step and self._expect is not None and tuple(shape) != tuple(self._expect):
            raise ValueError(
                f"it was saved {step} updates into epoch {int(state['epoch']) + 1} of {shape[0]} "
                f"samples in batches of {shape[1]}; this fit has {self._expect[0]} samples in "
                f"batches of {self._expect[1]} (resume with the same data and batch_size)")
        history = History.from_dict(state["history"])
        self.rng.set_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.step = step
        self.n_steps = int(state.get("n_steps", len(history.loss)))
        self._epoch_rng = state.get("epoch_rng")
        self._epoch_shape = None if shape is None else tuple(shape)
        self._epoch_elapsed = float(state.get("epoch_elapsed", 0.0))
        self.history = history
        self._fixed_order = state.get("fixed_order")

    def save(self, path: str | os.PathLike | None = None) -> None:
        """Write a checkpoint of the whole setup (to ``checkpoint`` unless ``path`` is given)."""
        path = path if path is not None else self.checkpoint
        if path is None:
            raise ValueError("no checkpoint path: pass save(path) or Trainer(checkpoint=PATH)")
        save_checkpoint(path, self.net, optimizer=self.optimizer, rule=self.rule, trainer=self,
                        transforms=self.transforms)

    # -- evaluation ------------------------------------------------------------------
    def predict(self, x):
        """Network outputs, in chunks of ``eval_batch_size`` rows."""
        xp = get_array_module(x)
        n = x.shape[0]
        if n <= self.eval_batch_size:
            return self.net.forward(x)
        return xp.concatenate([self.net.forward(x[i:i + self.eval_batch_size])
                               for i in range(0, n, self.eval_batch_size)])

    def evaluate(self, x, labels, target=None) -> dict:
        """``{"accuracy": %, "loss": float}`` (loss only when ``target`` is given)."""
        xp = get_array_module(x)
        out = self.predict(x)
        pred = xp.argmax(out, axis=1)
        # count / n in exact integers, then one rounding: 791 of 1000 is 79.1, not 79.10000000000001
        acc = 100.0 * int(to_scalar(xp.count_nonzero(pred == labels))) / pred.shape[0]
        res = {"accuracy": acc}
        if target is not None:
            res["loss"] = float(to_scalar(self.loss_fn(out, target)))
        return res

    # -- training ----------------------------------------------------------------------
    def _order(self, n: int, xp):
        if self.shuffle is False:
            return xp.arange(n)
        if self.shuffle == "once":
            if self._fixed_order is None:
                self._fixed_order = asnumpy(self.rng.permutation(n, xp=xp)).tolist()
            return asarray(np.asarray(self._fixed_order, dtype=np.int64), xp=xp)
        return self.rng.permutation(n, xp=xp)

    def _epoch_order(self, n: int, xp):
        """This epoch's order: drawn at its start, redrawn from the saved state inside it."""
        if self.step == 0:
            self._epoch_rng = self.rng.get_state()
            self._epoch_shape = (n, self.batch_size)
            self._epoch_elapsed = 0.0
            return self._order(n, xp)
        now = self.rng.get_state()
        self.rng.set_state(self._epoch_rng)
        order = self._order(n, xp)
        if self.rng.get_state() != now:
            self.rng.set_state(now)
            raise ValueError(f"cannot continue epoch {self.epoch + 1} at update {self.step + 1}: "
                             "its order does not redraw to the saved generator state (was shuffle "
                             "changed since the checkpoint?)")
        return order

    def _snapshot(self):
        return [{k: v.copy() for k, v in layer.params().items()} for layer in self.net.layers]

    def _restore(self, snap) -> None:
        for layer, saved in zip(self.net.layers, snap):
            for k, v in layer.params().items():
                v[...] = saved[k]

    def fit(self, x, target, *, labels=None, epochs: int | None = None,
            until_epoch: int | None = None, x_test=None, target_test=None, labels_test=None,
            validation_data=None, resume: bool = False) -> History:
        """Train ``epochs`` more epochs, or until ``until_epoch`` epochs are done in total.

        ``for _ in range(3): trainer.fit(x, y, epochs=1)`` trains three epochs, as
        ``trainer.fit(x, y, epochs=3)`` does.  To reach a total (e.g. after resuming a
        checkpoint), use ``until_epoch``: ``fit(x, y, until_epoch=10, resume=True)``
        trains whatever is left of ten epochs.  An epoch interrupted by a checkpoint is
        finished first and counts as one of ``epochs``.  A call with nothing left to
        do warns and returns the history unchanged.

        Parameters
        ----------
        x : (N, n_in) array, or ``(N, *input_shape)`` for a network with a shaped ``input_shape``
            (images ``(N, C, H, W)`` for a convolutional network; flat rows work too)
        target : (N, n_out) or (N,) array — whatever ``loss_fn`` expects
        labels : (N,) int array, optional
            For the training accuracy (``history.train_accuracy``); by default derived
            from ``target`` when it holds integer labels or one-hot rows (else no
            training accuracy is recorded); ``False``: none (saves one pass over ``x``
            per epoch).
        epochs : int, optional
            Epochs to train in this call (default 1 unless ``until_epoch`` is given).
        until_epoch : int, optional
            Train until this many epochs are done in total (counting earlier calls
            and a resumed checkpoint's); not together with ``epochs``.
        x_test, target_test, labels_test : optional evaluation data (each epoch)
            ``labels_test`` is derived from ``target_test`` when that holds integer
            labels or one-hot rows; other targets (e.g. regression values) are refused
            unless ``labels_test`` is given.  The test loss is recorded when
            ``target_test`` is given.
        validation_data : ``(x, target)`` or ``(x, target, labels)``, optional
            The same as ``x_test=, target_test=`` (and ``labels_test=``), as in Keras.
        resume : bool
            Continue from ``checkpoint`` if the file exists (from the update where it
            was written, inside an epoch too); a checkpoint of another setup is refused
            (:class:`~bionp.checkpoint.CheckpointMismatchError`) with nothing changed.
        """
        if not is_array(x):  # all of x and target are checked before the first update
            raise TypeError(f"x must be an array of the active backend, got {type(x).__name__}; "
                            "convert it with bionp.asarray(x)")
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"x must have shape (samples, ...) with one or more samples, got "
                             f"shape {tuple(x.shape)}")
        if not is_array(target):
            raise TypeError(f"target must be an array (labels or one row per sample), got "
                            f"{type(target).__name__}")
        xp = get_array_module(x, target, *self.net.parameters()[0].values())
        check_samples_shape(self.net, x)
        n = x.shape[0]
        if target.ndim < 1 or target.shape[0] != n:
            raise ValueError(f"x has {n} samples but target has shape {tuple(target.shape)}")
        with data_checked():  # shape, dtype, backend here; the values once, for all of x
            self.net.check_input(x)
        check_values(self.net, x, target)
        with data_checked():
            self.net.prepare_target(target, n)
        for name, value in (("epochs", epochs), ("until_epoch", until_epoch)):
            if value is not None:
                _check_count(name, value, least=0)
        if epochs is not None and until_epoch is not None:
            raise ValueError(f"give epochs= (epochs to train now) or until_epoch= (the total to "
                             f"reach), not both: got epochs={epochs}, until_epoch={until_epoch}")
        if resume and self.checkpoint is None:
            raise ValueError("resume=True needs Trainer(checkpoint=PATH)")
        if labels is False:
            train_labels = None
        elif labels is not None:
            check_rows("labels", labels, n)
            train_labels = labels
        else:
            train_labels = labels_from_target(target, "target")[0]
        evaluation = evaluation_data(x_test, target_test, labels_test, validation_data)
        if evaluation is not None:
            check_samples_shape(self.net, evaluation[0], "x_test")
        bs = self.batch_size
        n_batches = n // bs if self.drop_last else -(-n // bs)
        if n_batches == 0:
            raise ValueError(f"no complete batch: {n} samples with batch_size={bs} and drop_last=True")
        if resume and os.path.exists(self.checkpoint):
            self._expect = (n, bs)
            try:
                load_checkpoint(self.checkpoint, self.net, optimizer=self.optimizer, rule=self.rule,
                                trainer=self, transforms=self.transforms)
            finally:
                self._expect = None
        if self.step and self._epoch_shape != (n, bs):
            have, size = self._epoch_shape
            raise ValueError(f"the trainer is {self.step} updates into epoch {self.epoch + 1} of "
                             f"{have} samples in batches of {size}; this fit has {n} samples in "
                             f"batches of {bs}")
        if (self.diagnostics_at_start and self.epoch == 0 and self.step == 0
                and not self.history.diagnostics):
            for name, fn in self.diagnostics.items():  # index 0: the untrained network
                self.history.diagnostics[name] = [fn(self, -1)]
        asked = f"until_epoch={until_epoch}" if until_epoch is not None else f"epochs={epochs}"
        if until_epoch is None:
            until_epoch = self.epoch + (epochs if epochs is not None else 1)
        if until_epoch <= self.epoch:
            warnings.warn(f"fit({asked}) has nothing to do: {self.epoch} epochs are done already "
                          "(epochs= counts the epochs to train in this call, until_epoch= the "
                          "total)", UserWarning, stacklevel=2)
            return self.history
        if evaluation is not None:
            check_values(self.net, evaluation[0], evaluation[2], "x_test", "target_test")
        with data_checked():  # the batches are slices of what was just checked
            return self._run(x, target, xp, until_epoch, n_batches, train_labels, evaluation)


    def _run(self, x, target, xp, goal, n_batches, train_labels, evaluation) -> History:
        n, bs = x.shape[0], self.batch_size
        bar = None
        if progress_enabled(self.progress):
            from tqdm.auto import tqdm

            bar = tqdm(total=(goal - self.epoch) * n_batches - self.step, desc="training",
                       unit="batch", leave=False)
        # the weights that produced the last finite loss, copied in place before each step (in
        # the update's own pass by an optimiser that updates exactly the network's parameters)
        good = self._snapshot()
        fused = self.transforms is None and getattr(self.optimizer, "updates_exactly",
                                                    lambda net: False)(self.net)
        step_kw = {"backup": good} if fused else {}
        hooks = [(getattr(obj, name), args) for obj, name, args in (
            (self.rule, "after_step", (self.net, self.optimizer)), (self.net, "after_update", ()),
            (self.transforms, "after_update", (self.net,))) if hasattr(obj, name)]
        try:
            while self.epoch < goal:
                order, first = self._epoch_order(n, xp), self.step
                self._t0 = time.perf_counter()
                diverged = None
                for b in range(self.step, n_batches):
                    if self.schedule is not None and (b == first or self.schedule.per_step):
                        self.optimizer.lr = self.schedule.lr_at(self.epoch, b, n_batches)
                    idx = order[b * bs:(b + 1) * bs]
                    xb, tb = x[idx], target[idx]
                    grads = self.rule.gradients(self.net, xb, tb, self.loss_fn)
                    loss_value = self._batch_loss(xb, tb)
                    if not math.isfinite(loss_value):  # a float: no ufunc call
                        diverged = (f"loss became {loss_value} at epoch {self.epoch + 1}, update {b + 1}; "
                                    "restored the weights of the last finite loss (lower the learning "
                                    "rate or check the data)")
                        break
                    if not fused:
                        self._copy_params(good)
                        if self.transforms is not None:
                            grads = self.transforms(self.net, grads)
                    self.optimizer.step(grads, **step_kw)
                    grads = xb = tb = None  # freed now: the next step's arrays reuse the memory
                    for hook, args in hooks:  # the rule's, the layers', the transforms' (last)
                        hook(*args)
                    self.history.loss.append(loss_value)
                    self.step = b + 1
                    self.n_steps += 1
                    if self.after_step is not None:
                        self.after_step(self)
                    if self.checkpoint_every and self.n_steps % self.checkpoint_every == 0:
                        self.save()
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss_value:.4g}", refresh=False)
                if diverged is None and not self._weights_finite(xp):
                    diverged = f"weights became non-finite during epoch {self.epoch + 1}"
                if diverged is not None:
                    self._restore(good)
                    self.history.stopped = diverged
                    self.step, self._epoch_rng, self._epoch_shape = 0, None, None
                    break
                self._end_epoch(x, n_batches, train_labels, evaluation)
        finally:
            self._t0 = None
            if bar is not None:
                bar.close()
        return self.history

    def _end_epoch(self, x, n_batches, train_labels, evaluation) -> None:
        self.history.epoch_seconds.append(self._epoch_elapsed + time.perf_counter() - self._t0)
        self.history.epoch_loss.append(float(np.mean(self.history.loss[-n_batches:])))
        if train_labels is not None:
            self.history.train_accuracy.append(self.evaluate(x, train_labels)["accuracy"])
        if evaluation is not None:
            ev = self.evaluate(*evaluation)
            self.history.test_accuracy.append(ev["accuracy"])
            if "loss" in ev:
                self.history.test_loss.append(ev["loss"])
        for name, fn in self.diagnostics.items():
            self.history.diagnostics.setdefault(name, []).append(fn(self, self.epoch))
        self.epoch += 1
        self.step, self._epoch_rng, self._epoch_shape, self._epoch_elapsed = 0, None, None, 0.0
        self._t0 = None
        self.history.epochs_done = self.epoch
        if self.checkpoint:
            self.save()

    def _batch_loss(self, xb, tb) -> float:
        """Loss of the batch before the step: the rule's own clean forward pass if it
        reports one (``rule.last_loss``), else a forward pass here."""
        value = getattr(self.rule, "last_loss", None)
        if value is None:
            value = self.loss_fn(self.net.forward(xb), tb)
        return float(to_scalar(value))

    def _copy_params(self, into) -> None:
        for layer, saved in zip(self.net.layers, into):
            for k, v in layer.params().items():
                saved[k][...] = v

    def _weights_finite(self, xp) -> bool:
        """Whether every parameter is finite: one host read for the whole network."""
        flags = [xp.all(xp.isfinite(v)) for layer in self.net.layers
                 for v in layer.params().values()]
        return not flags or bool(to_scalar(xp.all(xp.stack(flags))))
