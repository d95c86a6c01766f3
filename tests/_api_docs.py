"""bionp's public names as the documentation sees them (shared by the docs tests).

The list itself is ``docs/_ext/bionp_docs.py``'s (the extension that writes the API
pages): ``bionp.__all__`` and the ``__all__`` of every public module, each object under
one canonical name. This module adds what the tests ask of each name, read from the
docstrings without Sphinx: a summary line, and a Parameters section where the name takes
parameters.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GAPS_FILE = ROOT / "docs" / "api_gaps.txt"

if str(ROOT / "docs" / "_ext") not in sys.path:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import bionp_docs  # noqa: E402

_PARAMS = re.compile(r"^Parameters\n-{3,}\n", re.M)


class API:
    def __init__(self):
        self._api = bionp_docs.public_api()
        self.modules = self._api.modules
        self.paths = self._api.paths

    def canonical(self, path):
        return self._api.canonical(path)

    def entries(self):
        return self._api.entries()

    def obj(self, path):
        return self.paths[path] if path in self.paths else bionp_docs._lookup(path)

    def is_module(self, path):
        return inspect.ismodule(self.paths[path])

    def is_documentable(self, path):
        """A class or a function (constants are rendered, but need no summary)."""
        obj = self.obj(path)
        return inspect.isclass(obj) or inspect.isroutine(obj)

    def summary(self, path):
        if not self.is_documentable(path):
            return "(constant)"
        doc = inspect.getdoc(self.obj(path)) or ""
        return doc.strip().split("\n\n")[0].strip()

    def needs_parameters(self, path):
        obj = self.obj(path)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                return False
        elif not inspect.isroutine(obj):
            return False
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            return False
        return any(p.name not in ("self", "cls") for p in sig.parameters.values())

    def has_parameters_section(self, path):
        doc = inspect.getdoc(self.obj(path)) or ""
        return bool(_PARAMS.search(doc))


_API = None


def public_api():
    global _API
    if _API is None:
        _API = API()
    return _API


def docstring_gaps():
    """Canonical names of public callables with parameters but no Parameters section."""
    api = public_api()
    return sorted(name for name in api.entries()
                  if api.needs_parameters(name) and not api.has_parameters_section(name))


def known_gaps():
    """The names listed in ``docs/api_gaps.txt`` (one a line, ``#`` comments)."""
    if not GAPS_FILE.exists():
        return set()
    names = set()
    for line in GAPS_FILE.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
    return names
