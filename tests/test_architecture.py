"""The library's layers, read from its own imports: no cycles, and imports only look down.

Every module under ``bionp/`` is parsed with :mod:`ast`; every ``import`` and
``from ... import`` counts, at the top of the module or inside a function, and so does
``importlib.import_module("bionp....")`` with a literal name.  The order of the layers below
is the architecture's documentation (drawn in ``bionp/__init__.py``); a new module must be
given its layer here, so placing it is a decision somebody makes.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "bionp"

#: Bottom to top.  A module may import modules of its own layer or below, never above.
#: Patterns are module names; ``name.*`` matches the package's modules (not ``name`` itself).
#: The most specific pattern wins (an exact name over ``pkg.*``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("backend", ("bionp._version", "bionp._errors", "bionp._surface", "bionp._host_syncs",
                 "bionp.backend", "bionp.dtypes", "bionp.kernels", "bionp.backend_conv",
                 "bionp.backend_dense", "bionp.backend_noisy", "bionp._noisy_kernels",
                 "bionp._strict", "bionp._dense_kernels", "bionp._cuda_kernels",
                 "bionp._kernels", "bionp._conv_kernels",
                 "bionp.validation", "bionp.plot", "bionp.progress", "bionp.testing",
                 "bionp._random_kernels", "bionp._random_numba", "bionp._box_muller",
                 "bionp._exp32",
                 "bionp.hebbian.plotting", "bionp.dendritic.analysis")),
    ("random", ("bionp", "bionp.random", "bionp.random.*")),
    ("data", ("bionp.data", "bionp.data.*")),
    ("nn", ("bionp.nn", "bionp.nn.*")),
    ("rules", ("bionp.rules", "bionp.rules.*", "bionp.optim", "bionp.schedules",
               "bionp.plasticity", "bionp.plasticity.*", "bionp.hebbian", "bionp.hebbian.*",
               "bionp.dendritic", "bionp.dendritic.*")),
    ("training", ("bionp.train", "bionp.history", "bionp.checkpoint", "bionp.evaluation_data",
                  "bionp.metrics",
                  "bionp.robustness")),
    ("faces", ("bionp.cli", "bionp.__main__", "bionp.experiment", "bionp.gpucheck",
               "bionp.gpucheck.*", "bionp.parity", "bionp.parity.*", "bionp.sweep",
               "bionp.sweep.*", "bionp.studies", "bionp.studies.*")),
]
LAYER_NAMES = [name for name, _ in LAYERS]


def module_names() -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name (packages by their ``__init__``)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = module_names()


def _resolve(name: str) -> str | None:
    """The module an imported dotted name refers to (``bionp.nn.MLP`` -> ``bionp.nn``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> dict[str, int]:
    """bionp modules that ``module`` imports, with the first line of each import."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(name, line):
        target = _resolve(name)
        if target and target != module:
            found[target] = min(line, found.get(target, line))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "bionp":
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "bionp":
                continue
            for alias in node.names:
                # ``from bionp import nn`` imports the module bionp.nn
                candidate = f"{source}.{alias.name}"
                add(candidate if candidate in MODULES else source, node.lineno)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and str(node.args[0].value).startswith("bionp")):
            add(node.args[0].value, node.lineno)
    return found


def layer_of(module: str) -> str | None:
    """The layer a module is assigned to (most specific pattern wins), None if unassigned."""
    best, best_len = None, -1
    for layer, patterns in LAYERS:
        for pat in patterns:
            if pat.endswith(".*"):
                hit = module.startswith(pat[:-1])
                length = len(pat) - 2
            else:
                hit = module == pat
                length = len(pat) + 1  # an exact name beats the package pattern of equal length
            if hit and length > best_len:
                best, best_len = layer, length
    return best


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if layer_of(m) is None)
    assert not missing, (f"modules without a layer: {missing}; add each to LAYERS in "
                         f"tests/test_architecture.py (and to the diagram in bionp/__init__.py)")


def test_imports_only_look_down():
    upward = []
    for module, targets in sorted(GRAPH.items()):
        own = LAYER_NAMES.index(layer_of(module))
        for target, line in sorted(targets.items()):
            if LAYER_NAMES.index(layer_of(target)) > own:
                upward.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line}: {module} "
                              f"({layer_of(module)}) imports {target} ({layer_of(target)})")
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def strongly_connected_components(graph: dict[str, dict]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module are cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    cycles = [c for c in strongly_connected_components(GRAPH) if len(c) > 1]
    assert not cycles, f"import cycles between bionp modules: {cycles}"


def test_library_modules_do_not_register_parity_scenarios():
    """Scenarios train whole networks: they live in bionp/parity/, not beside the code; only
    the faces (the command line, the device check) run them."""
    offenders = [m for m, targets in GRAPH.items()
                 if any(t == "bionp.parity" or t.startswith("bionp.parity.") for t in targets)
                 and layer_of(m) != "faces"]
    assert not offenders, f"library modules importing bionp.parity: {offenders}"


# -- the checker itself ------------------------------------------------------------------------

def test_cycle_finder_finds_cycles_and_only_them():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}, "e": {}}
    comps = [c for c in strongly_connected_components(graph) if len(c) > 1]
    assert comps == [["a", "b", "c"]]


def test_function_local_and_relative_imports_are_seen(tmp_path):
    pkg = tmp_path / "bionp"
    (pkg / "nn").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text("")
    (pkg / "nn" / "__init__.py").write_text("")
    (pkg / "nn" / "layers.py").write_text(
        "def f():\n    from bionp.train import Trainer\n\nfrom .. import train\n"
        "import importlib\nimportlib.import_module('bionp.train')\n")
    global MODULES
    saved = MODULES
    MODULES = {"bionp": pkg / "__init__.py", "bionp.train": pkg / "train.py",
               "bionp.nn": pkg / "nn" / "__init__.py", "bionp.nn.layers": pkg / "nn" / "layers.py"}
    try:
        assert imports_of("bionp.nn.layers") == {"bionp.train": 2}
    finally:
        MODULES = saved


@pytest.mark.parametrize("module, layer", [
    ("bionp.backend", "backend"), ("bionp.nn.layers", "nn"), ("bionp.dendritic.layer", "rules"),
    ("bionp.studies.comparison", "faces"), ("bionp.dendritic", "rules"),
    ("bionp.parity.rules", "faces"),
    ("bionp.hebbian.classifier", "rules"), ("bionp.hebbian.readout", "rules"),
    ("bionp.random.philox", "random"), ("bionp.nn.noisy.functional", "nn"),
])
def test_layer_assignment(module, layer):
    assert layer_of(module) == layer


def test_modules_stay_readable_in_size():
    """One concept per module: none over 500 lines (split where a reader would look for two
    things in two places)."""
    long = {m: n for m, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"
