"""The README's python blocks and the documentation pages' snippets run as written.

Each file's blocks run in order in one namespace (in a temporary folder: some write
files), on the bundled data, so the documentation cannot drift from the code.

What the README leaves to the reader is supplied here, and only that: ``host_array``
(any host array), and, without CuPy, the strict CPU stand-in wherever the README
switches to ``"cupy"`` (it fails where CuPy would; ``tests/README.md``). Every block
starts on NumPy in float32 (the backend block's global switches end with it). Blocks under
``if __name__ == "__main__":`` are defined, not run (the README's sweep needs a task
body that it writes as ``...``).
"""

from __future__ import annotations

import numpy as np
import pytest

import bionp as bnp
from bionp.backend import cupy_available
from tests._doc_snippets import DOCS, README, doc_pages, readme_blocks, rst_blocks


def _run(blocks, where, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "doc_snippet", "host_array": np.arange(6.0).reshape(2, 3)}
    try:
        for line, source in blocks:
            if not cupy_available():
                source = source.replace('bnp.use("cupy")', 'bnp.use("strict")')
            code = compile(source, f"{where}:{line}", "exec")
            try:
                exec(code, namespace)
            except Exception as exc:  # name the block in the failure
                raise AssertionError(f"the block at {where}:{line} failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
            finally:  # each block starts from the defaults, as a fresh reader's program
                bnp.use("numpy")
                bnp.set_dtype("float32")
    finally:
        bnp.use("numpy")
        bnp.set_dtype("float32")
        import matplotlib.pyplot as plt

        plt.close("all")
    return namespace


def test_readme_has_python_blocks():
    assert len(readme_blocks()) >= 8


@pytest.mark.slow
def test_readme_blocks_run(monkeypatch, tmp_path):
    ns = _run(readme_blocks(), README.name, monkeypatch, tmp_path)
    # the blocks did what they say
    assert len(ns["history"].test_accuracy) >= 1
    assert (tmp_path / "units.png").exists()
    assert list(ns["curve"].sigmas) == [0.0, 0.05, 0.1, 0.2]


@pytest.mark.parametrize("page", doc_pages())
def test_doc_page_snippets_run(page, monkeypatch, tmp_path):
    _run(rst_blocks(DOCS / page), f"docs/{page}", monkeypatch, tmp_path)


def test_every_topic_page_has_a_snippet():
    topics = sorted(p.name for p in (DOCS / "topics").glob("*.rst") if p.name != "index.rst")
    assert topics, "no topic pages"
    pages = set(doc_pages())
    assert [t for t in topics if f"topics/{t}" not in pages] == []
