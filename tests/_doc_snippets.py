"""Code blocks of the README and of the documentation pages, to be run as tests.

A README block is a fenced ```` ```python ```` block; a page block is a
``.. code-block:: python`` directive of ``docs/**/*.rst``. The blocks of one file run in
order in one namespace, as a reader runs them one after the other.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_DIRECTIVE = re.compile(r"^\.\. code-block:: python[^\n]*\n((?:[ \t]*\n|[ \t]+[^\n]*\n)+)", re.M)


def readme_blocks(path=README):
    """``[(line, source)]`` of the README's python blocks."""
    text = Path(path).read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _FENCE.finditer(text)]


def rst_blocks(path):
    """``[(line, source)]`` of a page's ``.. code-block:: python`` directives."""
    text = Path(path).read_text(encoding="utf-8")
    out = []
    for m in _DIRECTIVE.finditer(text):
        body = m.group(1)
        lines = body.splitlines()
        while lines and lines[0].strip().startswith(":"):  # directive options
            lines.pop(0)
        out.append((text.count("\n", 0, m.start()) + 2, textwrap.dedent("\n".join(lines)).strip() + "\n"))
    return out


def doc_pages():
    """The documentation pages that hold python blocks, relative to docs/."""
    pages = []
    for path in sorted(DOCS.rglob("*.rst")):
        rel = path.relative_to(DOCS)
        if rel.parts[0] in ("_build", "api"):
            continue
        if rst_blocks(path):
            pages.append(rel.as_posix())
    return pages
