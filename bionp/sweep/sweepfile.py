"""Sweep files: a whole sweep described in TOML or JSON, run by ``python -m bionp sweep FILE``.

Example (``lr_sweep.toml``)::

    function = "my_tasks:train"        # module:function, or "tasks.py:train" (beside this file)
    store = "results/lr_sweep.jsonl"   # default: <file name>.jsonl beside this file
    repeats = 3                        # runs per config (default 1)
    seed = 0                           # root of the per-task seeds (default 0)
    scheduler = "serial"               # optional: "local" (default), "serial", "tcp://HOST:PORT"
    n_workers = 2                      # optional: local cluster size (default: cores)
    params = ["lr", "rule", "epochs"]  # optional: the accepted parameter names

    [defaults]                         # parameters that are not swept
    epochs = 2

    [grid]                             # every combination of these lists
    lr = [0.1, 0.01]
    rule = ["backprop", "feedback_alignment"]

Instead of ``[grid]`` a file may give ``[[grid]]`` tables (several grids,
concatenated) or ``configs = [{...}, ...]`` (an explicit list). The JSON form
has the same keys. Any other top-level key is an error (a typo would
otherwise be ignored silently). Relative paths are relative to the sweep file.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from typing import Any

from bionp.sweep.configs import SweepConfigError, grid

__all__ = ["load_sweep_file", "import_function", "SWEEP_FILE_KEYS"]

SWEEP_FILE_KEYS = ("function", "store", "repeats", "seed", "scheduler", "n_workers", "params",
                   "defaults", "grid", "configs", "timeout", "retry_errors")


def _read(path: str) -> dict:
    try:
        return _parse(path)
    except (OSError, UnicodeDecodeError) as exc:  # a folder, unreadable, not text
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SweepConfigError(f"{path}: cannot read the sweep file: {why}") from None


def _parse(path: str) -> dict:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                return json.load(f)
            except ValueError as exc:
                raise SweepConfigError(f"{path}: not valid JSON ({exc})") from None
    if ext == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise SweepConfigError(f"{path}: reading TOML on Python < 3.11 needs `pip install "
                                       "tomli`; or write the sweep file as JSON") from None
        with open(path, "rb") as f:
            try:
                return tomllib.load(f)
            except tomllib.TOMLDecodeError as exc:
                raise SweepConfigError(f"{path}: not valid TOML ({exc})") from None
    raise SweepConfigError(
        f"{path}: a sweep file must end in .toml or .json, got {ext or 'no extension'!r}")


def import_function(spec: str, base_dir: str = "."):
    """The callable named by ``"package.module:function"`` or ``"file.py:function"``.

    Parameters
    ----------
    spec : str
        ``"package.module:function"`` or ``"file.py:function"``.
    base_dir : str, default "."
        Folder a relative ``file.py`` is found in.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise SweepConfigError(
            f"function must be 'module:function' or 'file.py:function', got {spec!r}")
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        file = target if os.path.isabs(target) else os.path.join(base_dir, target)
        if not os.path.exists(file):
            raise SweepConfigError(f"function {spec!r}: no file {file!r}")
        mod_name = "_bionp_sweep_" + os.path.splitext(os.path.basename(file))[0]
        loader_spec = importlib.util.spec_from_file_location(mod_name, file)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        loader_spec.loader.exec_module(module)
        try:  # worker processes cannot import a file by path: ship its functions by value
            import cloudpickle

            cloudpickle.register_pickle_by_value(module)
        except (ImportError, AttributeError):
            pass
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise SweepConfigError(
                f"function {spec!r}: cannot import module {target!r} ({exc})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise SweepConfigError(f"function {spec!r}: {target!r} has no function {name!r}")
    return fn


def load_sweep_file(path: str | os.PathLike) -> dict[str, Any]:
    """The keyword arguments of :func:`bionp.sweep.run` described by a sweep file.

    Returns ``{"fn": ..., "configs": [...], "store": ..., "repeats": ..., "rng": ...,
    ...}``; ``scheduler``/``n_workers``/``params``/``defaults``/``timeout``/
    ``retry_errors`` only when the file sets them.

    Parameters
    ----------
    path : str or path
        A TOML sweep file (see :mod:`bionp.sweep`).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no sweep file {path!r}")
    spec = _read(path)
    if not isinstance(spec, dict):
        raise SweepConfigError(f"{path}: the top level must be a table/object")
    unknown = sorted(set(spec) - set(SWEEP_FILE_KEYS))
    if unknown:
        raise SweepConfigError(
            f"{path}: unknown key(s) {unknown}; a sweep file takes {list(SWEEP_FILE_KEYS)}")
    base = os.path.dirname(os.path.abspath(path))
    if "function" not in spec:
        raise SweepConfigError(f"{path}: missing 'function' (e.g. function = \"my_tasks:train\")")
    has_grid, has_configs = "grid" in spec, "configs" in spec
    if has_grid == has_configs:
        raise SweepConfigError(f"{path}: give exactly one of 'grid' (parameter lists) or 'configs' "
                               "(an explicit list of configs)")
    try:
        kwargs = _run_arguments(spec, path, base, has_grid)
    except (SweepConfigError, SyntaxError, ValueError, TypeError) as exc:  # name the file
        raise SweepConfigError(f"{path}: {exc}") from None
    for key in ("scheduler", "n_workers", "params", "defaults", "timeout", "retry_errors"):
        if key in spec:
            kwargs[key] = spec[key]
    return kwargs


def _run_arguments(spec, path, base, has_grid) -> dict[str, Any]:
    configs = grid(spec["grid"]) if has_grid else spec["configs"]
    store = spec.get("store") or os.path.splitext(os.path.basename(path))[0] + ".jsonl"
    if not isinstance(store, str):
        raise SweepConfigError(f"store must be a path (a string), got {store!r}")
    if not os.path.isabs(store):
        store = os.path.join(base, store)
    return {"fn": import_function(spec["function"], base), "configs": configs, "store": store,
            "repeats": spec.get("repeats", 1), "rng": spec.get("seed", 0)}
