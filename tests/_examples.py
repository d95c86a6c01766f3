"""Load an example or benchmark script (``examples/NAME.py``, ``benchmarks/NAME.py``) as a
module, so tests can call its functions."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(folder: str, name: str, prefix: str):
    spec = importlib.util.spec_from_file_location(
        f"{prefix}_{name}", os.path.join(ROOT, folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(name: str):
    """The module ``examples/{name}.py`` (imported under ``example_{name}``)."""
    return _load("examples", name, "example")


def load_benchmark(name: str):
    """The module ``benchmarks/{name}.py`` (imported under ``bench_{name}``)."""
    return _load("benchmarks", name, "bench")
