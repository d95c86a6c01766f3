"""Configurations of a sweep: grids, validation, canonical hashes and per-task seeds.

A *config* is a flat ``dict`` from parameter name (``str``) to a
JSON-serialisable value. Its identity is the SHA-256 of its canonical JSON
(keys sorted, no spaces), so ``{"lr": 0.1, "rule": "fa"}`` and
``{"rule": "fa", "lr": 0.1}`` are the same config, while ``1`` and ``1.0`` are
different ones (JSON keeps them apart). Tuples become lists and NumPy scalars
become Python numbers before hashing; the task function receives that
normalised config, exactly as it is stored.

Seeds
-----
Task ``(config, repeat)`` gets the seed

.. math::

    s = \\mathrm{Philox}\\big(\\mathrm{SeedSequence}(e,\\ k \\Vert (h_{hi}, h_{lo}, r))\\big)_0,

the first 64-bit word of the child generator that :meth:`bionp.random.Generator.spawn`
gives for the root ``rng`` (entropy :math:`e`, spawn key :math:`k`) when the
child is addressed by the config's hash :math:`h` and the repeat index
:math:`r` instead of by spawn order. So the seed depends only on ``rng``, the
config and ``r``: never on the order of submission or completion, the number
of workers, or which other configs are in the sweep.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import numbers
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["grid", "normalize_config", "canonical_json", "config_hash", "check_params",
           "task_seed", "rng_state", "SweepConfigError"]


class SweepConfigError(ValueError):
    """A grid or config is not usable for a sweep."""


def _jsonable(value: Any):
    """``json`` default hook: NumPy/bionp scalars and arrays become Python numbers/lists."""
    import numpy as np

    from bionp.backend import asnumpy, is_array

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if is_array(value):
        return asnumpy(value).tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def canonical_json(config: Mapping[str, Any]) -> str:
    """Keys sorted, compact separators, no NaN/inf: the text that is hashed.

    Parameters
    ----------
    config : dict
    """
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False, default=_jsonable)


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits (64 bits) of the SHA-256 of :func:`canonical_json`.

    Parameters
    ----------
    config : dict
    """
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:16]


def normalize_config(config: Any, where: str = "config") -> dict:
    """A JSON round-trip of ``config`` (a mapping of str keys), or a clear error naming the key.

    Parameters
    ----------
    config : Mapping
        Parameter name (str) -> JSON-serialisable value.
    where : str, default "config"
        What ``config`` is, named in the error.
    """
    if not isinstance(config, Mapping):
        raise SweepConfigError(
            f"{where} must be a dict of parameter name -> value, got {type(config).__name__}: "
            f"{config!r:.80}")
    out = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise SweepConfigError(f"{where}: parameter names must be str, got {key!r} "
                                   f"({type(key).__name__})")
        try:
            text = json.dumps(value, allow_nan=False, default=_jsonable)
        except (TypeError, ValueError) as exc:
            raise SweepConfigError(
                f"{where}: the value of parameter {key!r} is not JSON-serialisable "
                f"({type(value).__name__}: {value!r:.60}; {exc}). Configs are stored as JSON: "
                "use numbers, strings, booleans, None, or lists/dicts of them (e.g. a rule's "
                "name instead of the rule object, and build the object inside the task function)."
            ) from None
        out[key] = json.loads(text)
    return out


def grid(param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]]) -> list[dict]:
    """Every combination of the values of ``param_grid`` (its Cartesian product).

    Parameters
    ----------
    param_grid : dict of name -> list of values, or a list of such dicts
        Each value must be a list (or tuple/range/1-d array) of at least one
        value; a scalar must be written as a one-element list. A list of dicts
        gives the concatenation of their grids (as in scikit-learn's
        ``ParameterGrid``), e.g. perturbation rules with their own ``sigma``.

    Returns
    -------
    list of dict
        Deterministic order: the parameters in the order given, the last one
        varying fastest. ``grid({"lr": [0.1, 0.01], "rule": ["bp", "fa"]})``
        is ``[{lr: 0.1, rule: bp}, {lr: 0.1, rule: fa}, {lr: 0.01, rule: bp},
        {lr: 0.01, rule: fa}]``.

    Raises
    ------
    SweepConfigError
        Empty grid, an empty or non-list value, a non-str name, a value that
        is not JSON-serialisable, or two identical combinations.

    Examples
    --------
    >>> grid({"lr": [0.1, 0.01], "rule": ["bp", "fa"]})[:2]
    [{'lr': 0.1, 'rule': 'bp'}, {'lr': 0.1, 'rule': 'fa'}]
    >>> len(grid([{"rule": ["bp"]}, {"rule": ["wp"], "sigma": [1e-3, 1e-2]}]))
    3
    """
    if isinstance(param_grid, Mapping):
        grids = [param_grid]
    elif (isinstance(param_grid, (list, tuple)) and param_grid
          and all(isinstance(g, Mapping) for g in param_grid)):
        grids = list(param_grid)
    else:
        raise SweepConfigError(
            f"grid() takes a dict of parameter name -> list of values (or a non-empty list of such "
            f"dicts), got {type(param_grid).__name__}: {param_grid!r:.80}")
    configs: list[dict] = []
    for gi, g in enumerate(grids):
        where = "grid" if len(grids) == 1 else f"grid {gi}"
        if not g:
            raise SweepConfigError(f"{where} is empty: give at least one parameter with a list of "
                                   "values, e.g. grid({'lr': [0.1, 0.01]})")
        names, values = [], []
        for name, vals in g.items():
            if not isinstance(name, str) or not name.strip():
                raise SweepConfigError(f"{where}: parameter names must be str (non-empty), got "
                                       f"{name!r}")
            if hasattr(vals, "tolist") and not isinstance(vals, (str, bytes)):
                vals = vals.tolist()
            if isinstance(vals, range):
                vals = list(vals)
            if not isinstance(vals, (list, tuple)):
                raise SweepConfigError(
                    f"{where}: the values of {name!r} must be a list, got {type(vals).__name__} "
                    f"{vals!r:.60}; write {name!r}: [{vals!r:.40}] for a single value")
            if len(vals) == 0:
                raise SweepConfigError(f"{where}: parameter {name!r} has an empty list of values; "
                                       "give at least one value or remove the parameter")
            names.append(name)
            values.append(list(vals))
        for combo in itertools.product(*values):
            configs.append(dict(zip(names, combo)))
    return check_configs(configs)


def check_configs(configs: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Normalised configs; error on an empty list, a bad config or a duplicate."""
    if isinstance(configs, Mapping):
        raise SweepConfigError("configs must be a list of dicts; for a parameter grid "
                               "pass bionp.sweep.grid({...}) instead of the dict itself")
    try:
        configs = list(configs)
    except TypeError:
        raise SweepConfigError(
            f"configs must be a list of dicts, got {type(configs).__name__}") from None
    if not configs:
        raise SweepConfigError("no configs to run: the list of configs (or the grid) is empty")
    out, seen = [], {}
    for i, c in enumerate(configs):
        c = normalize_config(c, where=f"config {i}")
        h = config_hash(c)
        if h in seen:
            raise SweepConfigError(f"config {i} {c} is the same as config {seen[h]}: remove the "
                                   "duplicate (use repeats= for several runs of one config)")
        seen[h] = i
        out.append(c)
    return out


def check_params(configs: Sequence[Mapping[str, Any]], params: Iterable[str] | None) -> None:
    """Every parameter name of every config must be one of ``params`` (``None``: no check).

    Parameters
    ----------
    configs : sequence of Mapping
        The configs to check.
    params : iterable of str or None
        The parameter names the task function accepts; ``None``: anything goes.
    """
    if params is None:
        return
    if isinstance(params, str):
        raise SweepConfigError(
            f"params must be a list of parameter names, got the string {params!r}")
    allowed = set(params)
    for i, c in enumerate(configs):
        unknown = [k for k in c if k not in allowed]
        if unknown:
            k = unknown[0]
            close = difflib.get_close_matches(k, sorted(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SweepConfigError(
                f"config {i}: unknown parameter {k!r}; the task function accepts "
                f"{sorted(allowed)}.{hint}")


def rng_state(rng) -> dict:
    """Entropy and spawn key of the root generator (what seeds depend on), JSON-able.

    Parameters
    ----------
    rng : int, bionp.random.Generator or None
        The sweep's root generator or seed (as ``rng=`` takes it).
    """
    from bionp.random import check_rng

    st = check_rng(rng).get_state()
    return {"entropy": int(st["entropy"]), "spawn_key": [int(k) for k in st["spawn_key"]]}


def task_seed(root: Mapping[str, Any], chash: str, repeat: int) -> int:
    """The 64-bit seed of task ``(config, repeat)``: see the module docstring.

    Parameters
    ----------
    root : dict
        :func:`rng_state` of the sweep's generator.
    chash : str
        :func:`config_hash` of the configuration.
    repeat : int >= 0
    """
    from bionp.random import Generator

    if isinstance(repeat, bool) or not isinstance(repeat, numbers.Integral) or repeat < 0:
        raise ValueError(f"repeat must be a non-negative int, got {repeat!r}")
    h = int(chash, 16)
    g = Generator(0)
    st = g.get_state()
    # A generator whose next spawned child has spawn key root_key + (h_hi, h_lo, repeat):
    st.update(entropy=int(root["entropy"]),
              spawn_key=[*(int(k) for k in root["spawn_key"]), h >> 32, h & 0xFFFFFFFF],
              n_children_spawned=int(repeat))
    g.set_state(st)
    child = g.spawn(1)[0]
    import numpy as np

    return int(child.random_raw(1, xp=np)[0])
