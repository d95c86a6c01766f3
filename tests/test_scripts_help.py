"""Every command-line option of the examples, the benchmarks and bionp's own commands says
what it does in ``--help`` (an ``add_argument`` call without ``help=`` shows a bare flag)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("examples", "benchmarks", "bionp")
                 for p in (ROOT / folder).rglob("*.py"))


def _bare_options(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            and not any(k.arg == "help" for k in node.keywords)]


def test_the_scan_finds_the_scripts_and_their_options():
    assert len(SCRIPTS) > 20
    with_options = [p for p in SCRIPTS if "add_argument(" in p.read_text(encoding="utf-8")]
    assert len(with_options) >= 15


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_option_has_help(path):
    bare = _bare_options(path)
    assert not bare, f"{path.relative_to(ROOT)}: options without help= at lines {bare}"


def test_a_bare_option_is_found(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import argparse\nap = argparse.ArgumentParser()\n"
                      "ap.add_argument('--x', help='an x')\nap.add_argument('--y')\n")
    assert _bare_options(script) == [4]
