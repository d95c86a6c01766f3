"""Training loop: batches, progress, history, evaluation, checkpoints, divergence stop.

One :class:`Trainer` step is

.. math::

    g = \\mathrm{rule.gradients}(\\mathrm{net}, x_B, t_B, L), \\quad
    g \\leftarrow \\mathrm{transforms}(\\theta, g), \\quad
    \\theta \\leftarrow \\mathrm{optimizer.step}(g)

for each minibatch ``B`` of a permutation drawn from the trainer's own
:class:`bionp.random.Generator` every epoch.  Anything with a ``gradients``
method works as a rule, anything with ``step`` as an optimiser.

Checkpoints (``checkpoint=PATH``) are written at the end of every epoch as one
``.npz`` file (``allow_pickle=False``): the network's arrays, the optimiser's
state, the rule's state (feedback matrices, its generator), the transforms' state
(:mod:`bionp.plasticity`: per-weight factors, signs, generators), the trainer's
generator, the epoch and the history.  They are written to a temporary file
and renamed into place, so an interrupted write never leaves a broken
checkpoint.  :meth:`Trainer.fit` with ``resume=True`` continues from it and
gives bit-identical results to an uninterrupted run.

If the loss becomes NaN or infinite, training stops, the weights of the last
finite step are restored, and :attr:`History.stopped` says what happened.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from typing import Any, Callable

import numpy as np

from bionp.backend import asarray, asnumpy, get_array_module, to_scalar
from bionp.progress import progress_enabled
from bionp.random import check_rng

__all__ = ["History", "Trainer", "save_checkpoint", "load_checkpoint", "state_arrays", "load_state_arrays"]

CHECKPOINT_FORMAT = "bionp-checkpoint-1"


@dataclasses.dataclass
class History:
    """What happened during training (all plain Python numbers, JSON-able)."""

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


# --------------------------------------------------------------------------
# state of objects as named arrays + JSON
# --------------------------------------------------------------------------

def state_arrays(obj, prefix: str) -> tuple[dict, dict]:
    """(arrays, meta) describing ``obj``'s state, from its ``state_dict()`` if it has one.

    A state dict may hold arrays (saved in the ``.npz``), nested dicts/lists of
    them, and JSON-able values (saved in the metadata).
    """
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    if obj is None or not hasattr(obj, "state_dict"):
        return arrays, meta

    def walk(value, key):
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            arrays[key] = asnumpy(value)
            return {"__array__": key}
        if isinstance(value, dict):
            return {str(k): walk(v, f"{key}/{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{key}/{i}") for i, v in enumerate(value)]
        return value

    meta = walk(obj.state_dict(), prefix)
    return arrays, meta


def load_state_arrays(obj, meta, arrays: dict, xp) -> None:
    """Inverse of :func:`state_arrays`: rebuild the state dict and load it into ``obj``."""
    if obj is None or not hasattr(obj, "load_state_dict") or meta in (None, {}):
        return

    def unwalk(value):
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return asarray(arrays[value["__array__"]], xp=xp)
            return {k: unwalk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwalk(v) for v in value]
        return value

    obj.load_state_dict(unwalk(meta))


def _net_arrays(net) -> dict[str, Any]:
    out = {}
    for i, layer in enumerate(net.layers):
        for name, value in layer.params().items():
            out[f"net/{i}/{name}"] = value
    return out


class _LayerState:
    """A layer's ``state_dict()`` without its parameters (those are saved as ``net/…``)."""

    def __init__(self, layer):
        self.layer = layer

    def state_dict(self) -> dict:
        params = self.layer.params()
        return {k: v for k, v in self.layer.state_dict().items() if k not in params}

    def load_state_dict(self, state: dict) -> None:
        self.layer.load_state_dict({**self.layer.params(), **state})


def _layer_states(net) -> list:
    return [(f"layer{i}", _LayerState(layer)) for i, layer in enumerate(net.layers)
            if hasattr(layer, "state_dict") and hasattr(layer, "load_state_dict")]


def save_checkpoint(path: str | os.PathLike, net, *, optimizer=None, rule=None, trainer=None,
                    transforms=None, extra: dict | None = None) -> None:
    """Write a checkpoint atomically (temporary file in the same folder, then rename).

    Saved: the network's parameters, every layer's other state (its ``state_dict()``
    less the parameters: connectivity, generators, counters), and the state of the
    optimiser, the rule, the trainer and the gradient/weight transforms.
    """
    path = os.fspath(path)
    arrays = {k: asnumpy(v) for k, v in _net_arrays(net).items()}
    meta: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "extra": extra or {}}
    for name, obj in [*_layer_states(net), ("optimizer", optimizer), ("rule", rule),
                      ("trainer", trainer), ("transforms", transforms)]:
        a, m = state_arrays(obj, name)
        arrays.update(a)
        meta[name] = m
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=meta_bytes, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, net, *, optimizer=None, rule=None, trainer=None,
                    transforms=None) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into the given objects.

    Returns the checkpoint's metadata (``extra`` holds what the writer added).
    Shapes are checked against ``net``; nothing is unpickled.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read checkpoint {path!r}: {exc}") from None
    if "__meta__" not in data:
        raise ValueError(f"{path!r} is not a bionp checkpoint (no metadata)")
    meta = json.loads(data.pop("__meta__").tobytes().decode())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r}: unsupported checkpoint format {meta.get('format')!r}; "
                         f"this bionp reads {CHECKPOINT_FORMAT!r}")
    current = _net_arrays(net)
    missing = sorted(set(current) - set(data))
    if missing:
        raise ValueError(f"checkpoint {path!r} does not match the network: missing {missing}")
    for key, value in current.items():
        if tuple(data[key].shape) != tuple(value.shape):
            raise ValueError(f"checkpoint {path!r}: {key} has shape {data[key].shape}, "
                             f"the network has {tuple(value.shape)}")
    xp = get_array_module(*current.values())
    for key, value in current.items():
        value[...] = asarray(data[key], dtype=value.dtype, xp=xp)
    for name, obj in _layer_states(net):
        if name not in meta:
            raise ValueError(f"checkpoint {path!r} has no state for {name} of the network "
                             f"(connectivity, generator); it was written for another network")
        load_state_arrays(obj, meta[name], data, xp)
    for name, obj in (("optimizer", optimizer), ("rule", rule), ("trainer", trainer),
                      ("transforms", transforms)):
        load_state_arrays(obj, meta.get(name), data, xp)
    return meta


# --------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------

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
        Evaluated after each epoch, stored in ``history.diagnostics[name]``.
    progress : bool, optional
        tqdm bar over updates; default: on when stderr is a terminal (env
        ``BIONP_PROGRESS=0`` turns it off).
    checkpoint : path, optional
        Written atomically at the end of every epoch.
    schedule : callable ``epoch -> lr``, optional
        Sets ``optimizer.lr`` at the start of each epoch (0-based), e.g. a cosine decay.
    after_step : callable ``trainer -> None``, optional
        Called after every optimiser step, after the rule's ``after_step`` and the
        network's ``after_update()`` (which runs the layers' own hooks, e.g. synaptic
        resampling).
    """

    #: the trainer calls ``net.after_update()`` itself after every step
    updates_layers = True

    def __init__(self, net, rule, optimizer, loss_fn, *, batch_size: int = 100, rng=None,
                 shuffle: bool | str = True, drop_last: bool = True, transforms: Callable | None = None,
                 diagnostics: dict | None = None, progress: bool | None = None,
                 checkpoint: str | os.PathLike | None = None, eval_batch_size: int = 10_000,
                 after_step: Callable | None = None, schedule: Callable[[int], float] | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if shuffle not in (True, False, "once"):
            raise ValueError(f"shuffle must be True, False or 'once', got {shuffle!r}")
        for name, obj, meth in (("rule", rule, "gradients"), ("optimizer", optimizer, "step")):
            if not hasattr(obj, meth):
                raise TypeError(f"{name} must have a {meth}() method, got {type(obj).__name__}")
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
        self.progress = progress
        self.checkpoint = os.fspath(checkpoint) if checkpoint is not None else None
        self.eval_batch_size = int(eval_batch_size)
        self.after_step = after_step
        self.schedule = schedule
        self.history = History()
        self._fixed_order = None
        self.epoch = 0

    # -- state for checkpoints ----------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "rng": self.rng.get_state(),
            "epoch": self.epoch,
            "history": self.history.to_dict(),
            "fixed_order": self._fixed_order if self._fixed_order is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.set_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.history = History.from_dict(state["history"])
        self._fixed_order = state.get("fixed_order")

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
        acc = 100.0 * float(to_scalar(xp.mean((pred == labels).astype(xp.float64))))
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

    def _snapshot(self):
        return [{k: v.copy() for k, v in layer.params().items()} for layer in self.net.layers]

    def _restore(self, snap) -> None:
        for layer, saved in zip(self.net.layers, snap):
            for k, v in layer.params().items():
                v[...] = saved[k]

    def fit(self, x, target, *, labels=None, epochs: int = 1, x_test=None, target_test=None,
            labels_test=None, resume: bool = False) -> History:
        """Train for ``epochs`` epochs (in total, counting a resumed checkpoint's).

        Parameters
        ----------
        x : (N, n_in) array
        target : (N, n_out) or (N,) array — whatever ``loss_fn`` expects
        labels : (N,) int array, optional — for training accuracy
        x_test, target_test, labels_test : optional evaluation data (each epoch)
        resume : bool
            Continue from ``checkpoint`` if the file exists.
        """
        xp = get_array_module(x, target, *self.net.parameters()[0].values())
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (samples, features), got shape {tuple(x.shape)}")
        if target.shape[0] != x.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but target has {target.shape[0]}")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
        if resume and self.checkpoint and os.path.exists(self.checkpoint):
            load_checkpoint(self.checkpoint, self.net, optimizer=self.optimizer, rule=self.rule, trainer=self,
                            transforms=self.transforms)
        n = x.shape[0]
        bs = self.batch_size
        n_batches = n // bs if self.drop_last else -(-n // bs)
        if n_batches == 0:
            raise ValueError(f"no complete batch: {n} samples with batch_size={bs} and drop_last=True")
        bar = None
        if progress_enabled(self.progress):
            from tqdm.auto import tqdm

            bar = tqdm(total=(epochs - self.epoch) * n_batches, desc="training", unit="batch", leave=False)
        # the weights that produced the last finite loss, copied in place before each step
        good = self._snapshot()
        try:
            while self.epoch < epochs:
                if self.schedule is not None:
                    self.optimizer.lr = float(self.schedule(self.epoch))
                order = self._order(n, xp)
                t0 = time.perf_counter()
                epoch_losses = []
                diverged = None
                for b in range(n_batches):
                    idx = order[b * bs:(b + 1) * bs]
                    xb, tb = x[idx], target[idx]
                    grads = self.rule.gradients(self.net, xb, tb, self.loss_fn)
                    loss_value = self._batch_loss(xb, tb)
                    if not np.isfinite(loss_value):
                        diverged = (f"loss became {loss_value} at epoch {self.epoch + 1}, update {b + 1}; "
                                    "restored the weights of the last finite loss (lower the learning "
                                    "rate or check the data)")
                        break
                    self._copy_params(good)
                    if self.transforms is not None:
                        grads = self.transforms(self.net, grads)
                    self.optimizer.step(grads)
                    if hasattr(self.rule, "after_step"):
                        self.rule.after_step(self.net, self.optimizer)
                    if hasattr(self.net, "after_update"):
                        self.net.after_update()
                    if hasattr(self.transforms, "after_update"):  # last: e.g. Dale's principle
                        self.transforms.after_update(self.net)
                    if self.after_step is not None:
                        self.after_step(self)
                    self.history.loss.append(loss_value)
                    epoch_losses.append(loss_value)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss_value:.4g}", refresh=False)
                if diverged is None and not self._weights_finite(xp):
                    diverged = f"weights became non-finite during epoch {self.epoch + 1}"
                if diverged is not None:
                    self._restore(good)
                    self.history.stopped = diverged
                    break
                self.history.epoch_seconds.append(time.perf_counter() - t0)
                self.history.epoch_loss.append(float(np.mean(epoch_losses)))
                if labels is not None:
                    self.history.train_accuracy.append(self.evaluate(x, labels)["accuracy"])
                if x_test is not None and labels_test is not None:
                    ev = self.evaluate(x_test, labels_test, target_test)
                    self.history.test_accuracy.append(ev["accuracy"])
                    if "loss" in ev:
                        self.history.test_loss.append(ev["loss"])
                for name, fn in self.diagnostics.items():
                    self.history.diagnostics.setdefault(name, []).append(fn(self, self.epoch))
                self.epoch += 1
                self.history.epochs_done = self.epoch
                if self.checkpoint:
                    save_checkpoint(self.checkpoint, self.net, optimizer=self.optimizer,
                                    rule=self.rule, trainer=self, transforms=self.transforms)
        finally:
            if bar is not None:
                bar.close()
        return self.history

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
        for layer in self.net.layers:
            for v in layer.params().values():
                if not bool(to_scalar(xp.all(xp.isfinite(v)))):
                    return False
        return True
