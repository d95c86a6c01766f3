"""The ``Examples`` sections of bionp's docstrings run as doctests (on the bundled data).

Every module of bionp is searched (``doctest.DocTestFinder``, as ``pytest
--doctest-modules`` does); each module with examples is one test case, run on NumPy in
float32 from a temporary folder.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bionp as bnp

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = ["bionp"] + [m.name for m in pkgutil.walk_packages(bnp.__path__, "bionp.")
                         if m.name != "bionp.__main__"]
    out = []
    for name in sorted(names):
        module = importlib.import_module(name)
        tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
        if tests:
            out.append(name)
    return out


MODULES = _modules()


def test_there_are_docstring_examples():
    assert len(MODULES) >= 8, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    attempted = 0
    try:
        for test in doctest.DocTestFinder().find(module, name):
            if not test.examples:
                continue
            bnp.use("numpy")
            bnp.set_dtype("float32")
            result = runner.run(test, out=lambda s: print(s, end=""))
            attempted += result.attempted
            assert result.failed == 0, f"{test.name}: {result.failed} example(s) failed (output above)"
    finally:
        bnp.use("numpy")
        bnp.set_dtype("float32")
    assert attempted > 0
