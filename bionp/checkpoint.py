"""Checkpoints: the state of a training setup in one ``.npz`` file, refused when it does not fit.

A checkpoint holds the network's parameters, every layer's other state
(connectivity, generators, counters), and the state of the optimiser, the rule
(feedback matrices, its generator), the gradient/weight transforms
(:mod:`bionp.plasticity`) and the :class:`~bionp.train.Trainer` (its generator, its
learning-rate schedule, the position inside the epoch, the history).  Arrays go into the archive,
everything else into one JSON record (``__meta__``); nothing is pickled and
nothing is unpickled (``allow_pickle=False``).

It also records the **setup** it was written for: the network (class, layer
types, parameter shapes, layer and activation configurations), the rule's class
and configuration, the optimiser's class and the transforms' chain with its
configuration.  :func:`load_checkpoint` compares that record with the objects it
is given, and a difference (a Kolen-Pollack checkpoint loaded into a
feedback-alignment trainer, a Dale-converted network into one without its
plasticity chain, SGD state into Adam) raises one :class:`CheckpointMismatchError`
naming the file, what the checkpoint holds and what was given.  Loading is
all-or-nothing: the file is read and checked in full, then the state is assigned,
and if any object refuses its state, everything already assigned is put back.

Writes are atomic: a temporary file in the same folder, flushed and synced,
then renamed over the target; a process killed mid-write leaves the previous
checkpoint intact (and its temporary file is removed by the next write).

Checkpoints of format ``bionp-checkpoint-1`` (before the setup record) still
load, with a :class:`UserWarning` that their setup cannot be checked.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import warnings
from typing import Any

import numpy as np

from bionp.backend import asarray, asnumpy, get_array_module

__all__ = ["CheckpointError", "CheckpointMismatchError", "save_checkpoint", "load_checkpoint",
           "read_checkpoint", "state_arrays", "load_state_arrays", "setup_record"]

CHECKPOINT_FORMAT = "bionp-checkpoint-2"
_OLD_FORMATS = ("bionp-checkpoint-1",)
#: configuration keys not compared: how an object was initialised (its state comes from the
#: file) and compute choices that do not change the model (a dendritic layer's ``path``)
_INIT_KEYS = frozenset({"init", "init_scale", "bias_init", "scale", "dtype", "rng", "seed", "path"})


class _Default:
    """Default of ``transforms=``: the network's own chain, ``net.plasticity``."""

    def __repr__(self) -> str:
        return "net.plasticity"


_DEFAULT = _Default()


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (missing, truncated, corrupt, not a checkpoint)."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint written for another setup (rule, optimiser, transforms, network)."""


# --------------------------------------------------------------------------
# state of objects as named arrays + JSON
# --------------------------------------------------------------------------

def state_arrays(obj, prefix: str) -> tuple[dict, dict]:
    """(arrays, meta) describing ``obj``'s state, from its ``state_dict()`` if it has one.

    A state dict may hold arrays (saved in the ``.npz``), nested dicts/lists of
    them, and JSON-able values (saved in the metadata).  The arrays are host copies.

    Parameters
    ----------
    obj : object
        Anything with ``state_dict()``; ``None`` or another object gives ``({}, {})``.
    prefix : str
        Key prefix of the arrays.
    """
    arrays: dict[str, np.ndarray] = {}
    if obj is None or not hasattr(obj, "state_dict"):
        return arrays, {}

    def walk(value, key):
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            arrays[key] = np.array(asnumpy(value), copy=True)
            return {"__array__": key}
        if isinstance(value, dict):
            return {str(k): walk(v, f"{key}/{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{key}/{i}") for i, v in enumerate(value)]
        return value

    return arrays, walk(obj.state_dict(), prefix)


def load_state_arrays(obj, meta, arrays: dict, xp) -> None:
    """Inverse of :func:`state_arrays`: rebuild the state dict and load it into ``obj``.

    Parameters
    ----------
    obj : object
        Anything with ``load_state_dict()``; others are left alone.
    meta : dict
        The metadata from :func:`state_arrays`.
    arrays : dict
        The arrays from :func:`state_arrays` (host arrays).
    xp : module
        The array module to load them onto.
    """
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
    return {f"net/{i}/{name}": value for i, layer in enumerate(net.layers)
            for name, value in layer.params().items()}


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


# --------------------------------------------------------------------------
# the setup record
# --------------------------------------------------------------------------

def _jsonable(value):
    return json.loads(json.dumps(value, default=repr))


def _config(obj) -> dict:
    cfg = obj.get_config() if hasattr(obj, "get_config") else {}
    return _jsonable(cfg) if isinstance(cfg, dict) else {"config": _jsonable(cfg)}


def _without_init(cfg):
    if isinstance(cfg, dict):
        return {k: _without_init(v) for k, v in cfg.items() if k not in _INIT_KEYS}
    if isinstance(cfg, list):
        return [_without_init(v) for v in cfg]
    return cfg


def _net_record(net) -> dict:
    acts = getattr(net, "activations", None) or []
    return {
        "class": type(net).__name__,
        "layers": [{"type": type(layer).__name__,
                    "params": {k: list(v.shape) for k, v in layer.params().items()},
                    "config": _without_init(_config(layer))} for layer in net.layers],
        "activations": [_config(a) if hasattr(a, "get_config") else repr(a) for a in acts],
    }


def setup_record(net, *, optimizer=None, rule=None, transforms=None) -> dict:
    """What a checkpoint records about the objects it was written for (JSON-able).

    ``{"network": {class, layers: [{type, params: {name: shape}, config}], activations},
    "rule": {class, config} | None, "optimizer": {class} | None,
    "transforms": {class, config} | None}``.  Initialisation settings (``init``,
    ``init_scale``, ``dtype``, …) are left out: the state comes from the file.
    The optimiser's hyper-parameters are restored from the checkpoint, so only
    its class is compared.

    Parameters
    ----------
    net : Sequential or MLP
    optimizer : Optimizer or None
    rule : Rule or None
    transforms : Chain or None
        The network's plasticity chain.
    """
    return {
        "network": _net_record(net),
        "rule": None if rule is None else {"class": type(rule).__name__,
                                           "config": _without_init(_config(rule))},
        "optimizer": None if optimizer is None else {"class": type(optimizer).__name__},
        "transforms": None if transforms is None else {"class": type(transforms).__name__,
                                                       "config": _config(transforms)},
    }


def _describe(part: str, rec) -> str:
    if rec is None:
        return "no plasticity transforms" if part == "transforms" else f"no {part}"
    if part == "network":
        layers = ", ".join(f"{la['type']}{tuple(la['params']['W'])}" if "W" in la["params"]
                           else f"{la['type']}({la['params']})" for la in rec["layers"])
        acts = [a.get("name", a) if isinstance(a, dict) else a for a in rec["activations"]]
        return f"{rec['class']}([{layers}], activations={acts})"
    if part == "transforms":
        names = [t.get("name") for t in rec["config"].get("transforms", [])] \
            if "transforms" in rec.get("config", {}) else [rec["config"].get("name", rec["class"])]
        text = json.dumps(rec["config"])
        return f"{rec['class']}({', '.join(map(str, names))}) {text[:300]}"
    cfg = {k: v for k, v in rec.get("config", {}).items() if k != "name"}
    args = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
    return f"{rec['class']}({args})"


def _comparable(part: str, rec):
    """What is compared: a network's layers and activations, not its class (an MLP is a
    Sequential of the same layers)."""
    if part == "network" and rec:
        return {k: v for k, v in rec.items() if k != "class"}
    return rec


def _mismatches(saved: dict, given: dict, parts) -> list[str]:
    out = []
    for part in parts:
        a, b = saved.get(part), given.get(part)
        if _comparable(part, a) != _comparable(part, b):
            out.append(f"{part}: the checkpoint holds {_describe(part, a)}, "
                       f"given {_describe(part, b)}")
    return out


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def _remove_stale_temporaries(folder: str, name: str, keep: str) -> None:
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        if stale != keep:
            try:
                os.unlink(stale)
            except OSError:
                pass


def save_checkpoint(path: str | os.PathLike, net, *, optimizer=None, rule=None, trainer=None,
                    transforms=_DEFAULT, extra: dict | None = None) -> None:
    """Write a checkpoint atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    path : path of the ``.npz`` file
    net : the network (parameters and every layer's other state are saved)
    optimizer, rule, trainer : optional, their ``state_dict()`` is saved
    transforms : optional, default ``net.plasticity`` (the chain of
        :func:`bionp.plasticity.convert`, if any)
    extra : dict, optional
        JSON-able values returned by :func:`load_checkpoint` as ``meta["extra"]``.
    """
    path = os.fspath(path)
    if transforms is _DEFAULT:
        transforms = getattr(net, "plasticity", None)
    arrays = {k: asnumpy(v) for k, v in _net_arrays(net).items()}
    meta: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "extra": extra or {},
                            "setup": setup_record(net, optimizer=optimizer, rule=rule,
                                                  transforms=transforms),
                            "saved": {"optimizer": optimizer is not None, "rule": rule is not None,
                                      "trainer": trainer is not None}}
    for name, obj in [*_layer_states(net), ("optimizer", optimizer), ("rule", rule),
                      ("trainer", trainer), ("transforms", transforms)]:
        a, m = state_arrays(obj, name)
        arrays.update(a)
        meta[name] = m
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
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
    _remove_stale_temporaries(folder, base, tmp)


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------

def _reason(exc: BaseException) -> str:
    """Why a file could not be read, in words; never NumPy's advice to unpickle."""
    text = str(exc)
    if isinstance(exc, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, EOFError) or "No data left" in text:
        return "the file is empty or ends early (truncated)"
    if "Object arrays" in text:
        return ("it holds pickled Python objects, which bionp never loads "
                "(not a bionp checkpoint)")
    if "pickle" in text.lower():
        return ("it is not a NumPy .npz archive (bionp checkpoints are .npz archives "
                "written by bionp.train.save_checkpoint; bionp never loads pickled data)")
    return f"{type(exc).__name__}: {text}"


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a checkpoint file, read and checked in full (nothing is assigned).

    Raises :class:`CheckpointError` naming the path and the reason when the file is
    missing, a directory, truncated or corrupt (a bad CRC, a damaged archive or
    record), or not a bionp checkpoint.

    Parameters
    ----------
    path : str or path
    """
    path = os.fspath(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise CheckpointError(f"cannot read checkpoint {path!r}: it holds a single .npy array, "
                                  "not a bionp checkpoint (.npz archive)")
        with loaded as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, …
        raise CheckpointError(f"cannot read checkpoint {path!r}: {_reason(exc)}") from None
    if "__meta__" not in arrays:
        raise CheckpointError(f"{path!r} is not a bionp checkpoint (no metadata record; "
                              f"it holds {sorted(arrays)[:5]})")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        if not isinstance(meta, dict):
            raise ValueError("the record is not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path!r}: its metadata record is "
                              f"damaged ({exc})") from None
    fmt = meta.get("format")
    if fmt != CHECKPOINT_FORMAT and fmt not in _OLD_FORMATS:
        raise CheckpointError(f"{path!r}: unsupported checkpoint format {fmt!r}; "
                              f"this bionp reads {CHECKPOINT_FORMAT!r} and {list(_OLD_FORMATS)}")
    missing = sorted(_referenced(meta) - set(arrays))
    if missing:
        raise CheckpointError(f"cannot read checkpoint {path!r}: the record names arrays the "
                              f"archive does not hold: {missing[:5]}")
    return meta, arrays


def _referenced(meta) -> set:
    out: set = set()

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"__array__"}:
                out.add(v["__array__"])
            else:
                for x in v.values():
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for key, value in meta.items():
        if key not in ("extra", "setup", "format"):
            walk(value)
    return out


def load_checkpoint(path: str | os.PathLike, net, *, optimizer=None, rule=None, trainer=None,
                    transforms=_DEFAULT, strict: bool = True) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into the given objects.

    Only what is given is loaded (``load_checkpoint(path, net)`` restores the network
    alone).  ``transforms`` defaults to ``net.plasticity``, so a network converted with
    :func:`bionp.plasticity.convert` gets its chain's state (Dale's signs, factors)
    back, and a checkpoint of such a network does not load into one without it.

    Parameters
    ----------
    strict : bool, default True
        Refuse a checkpoint whose recorded setup differs from the given objects: the
        network (layer types, shapes, configuration, activations), the rule's class
        and configuration, the optimiser's class, the transforms' chain; and an object
        given for which the checkpoint holds no state.  ``strict=False`` turns those
        differences into a warning (shapes must still fit).

    Returns
    -------
    dict
        The checkpoint's metadata (``extra`` holds what the writer added).

    Raises
    ------
    CheckpointError
        The file cannot be read (missing, truncated, corrupt, not a checkpoint).
    CheckpointMismatchError
        It was written for another setup; the message names the file, what it holds
        and what was given.  Nothing was changed.
    """
    path = os.fspath(path)
    if transforms is _DEFAULT:
        transforms = getattr(net, "plasticity", None)
    meta, data = read_checkpoint(path)
    given = setup_record(net, optimizer=optimizer, rule=rule, transforms=transforms)
    problems = []
    if "setup" in meta:
        saved, parts = meta["setup"], ["network", "transforms"]
        parts += [p for p, obj in (("rule", rule), ("optimizer", optimizer)) if obj is not None]
        problems = _mismatches(saved, given, parts)
        if trainer is not None and not meta.get("saved", {}).get("trainer", False):
            problems.append("trainer: the checkpoint holds no trainer state, given a Trainer")
    else:
        warnings.warn(f"checkpoint {path!r} was written by an older bionp ({meta.get('format')}): "
                      "it does not record its rule, optimiser, transforms or network, so they "
                      "cannot be checked; loading it as it is", UserWarning, stacklevel=2)
    current = _net_arrays(net)
    shape_problems = []
    for key, value in current.items():
        if key not in data:
            shape_problems.append(f"{key} is missing")
        elif tuple(data[key].shape) != tuple(value.shape):
            shape_problems.append(f"{key} has shape {tuple(data[key].shape)}, "
                                  f"the network has {tuple(value.shape)}")
    if shape_problems:
        problems = [p for p in problems if not p.startswith("network:")]
        problems.insert(0, "network: " + "; ".join(shape_problems))
    if problems and (strict or shape_problems):
        raise CheckpointMismatchError(f"checkpoint {path!r} does not fit the given setup:\n  "
                                      + "\n  ".join(problems) + "\nnothing was loaded (load it "
                                      "into the setup it was written for, or pass strict=False "
                                      "to load what fits)")
    if problems:
        warnings.warn(f"checkpoint {path!r}: loading despite (strict=False):\n  "
                      + "\n  ".join(problems), UserWarning, stacklevel=2)
    for name, _ in _layer_states(net):
        if name not in meta:
            raise CheckpointMismatchError(
                f"checkpoint {path!r} has no state for {name} of the network (connectivity, "
                "generator); it was written for another network; nothing was loaded")
    _assign(path, meta, data, net, current, [("optimizer", optimizer), ("rule", rule),
                                             ("trainer", trainer), ("transforms", transforms)])
    return meta


def _assign(path, meta, data, net, current, others) -> None:
    """Assign everything, or, if an object refuses its state, put back what was assigned."""
    xp = get_array_module(*current.values())
    objects = [*_layer_states(net), *[(n, o) for n, o in others if o is not None]]
    backup_net = {k: np.array(asnumpy(v), copy=True) for k, v in current.items()}
    backups = [(name, obj, *state_arrays(obj, name)) for name, obj in objects]
    try:
        for key, value in current.items():
            value[...] = asarray(data[key], dtype=value.dtype, xp=xp)
        for name, obj in objects:
            load_state_arrays(obj, meta.get(name), data, xp)
    except Exception as exc:  # an object refused its state: put back everything
        for key, value in current.items():
            value[...] = asarray(backup_net[key], dtype=value.dtype, xp=xp)
        for name, obj, arrays, m in backups:
            load_state_arrays(obj, m, arrays, xp)
        raise CheckpointMismatchError(f"checkpoint {path!r} does not fit the given setup: "
                                      f"{exc}; nothing was loaded") from exc
