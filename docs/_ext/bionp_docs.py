"""Sphinx extension of bionp's documentation: the API pages and its cross-references.

* ``public_api()`` lists bionp's public surface: ``bionp.__all__`` and the ``__all__`` of
  every public module (no path component starting with ``_``). Each object gets one
  *canonical* name, the shortest public path that exports it (``bionp.rules.Backprop``,
  not ``bionp.rules.backprop.Backprop``); the other paths are aliases.
* At ``builder-inited`` one page per public module is written to ``docs/api/`` (generated,
  git-ignored): the module's docstring, an autosummary table, and the full entry (autodoc
  with numpydoc) of every name it is the canonical home of; an alias is listed with a
  link to its entry.
* Cross-references: a reference to an alias (``bionp.plasticity.base.Transform``) or a
  relative one that names a bionp object resolves to the canonical entry. A reference
  that names no bionp object (``numpy.ndarray``, ``int``) is external and not checked.
  A reference to a private bionp name (``bionp._strict``), or to a helper that no
  ``__all__`` exports, renders as plain text (they have no entry by design). Every other unresolved reference to bionp stays a
  nitpicky warning, which ``-W`` turns into an error.

``tests/test_docs_api.py`` imports this module for the list of public names.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

SKIP_MODULES = {"bionp.__main__"}


def _private(path):
    return any(part.startswith("_") for part in path.split("."))


def public_modules():
    """Names of bionp's public modules, sorted (``bionp`` first)."""
    import bionp

    names = ["bionp"]
    for info in pkgutil.walk_packages(bionp.__path__, "bionp."):
        if info.name in SKIP_MODULES or _private(info.name):
            continue
        names.append(info.name)
    return sorted(names)


class PublicAPI:
    """bionp's public names: ``exports[module] = [names]``, ``canonical[id] = path``."""

    def __init__(self):
        self.modules = public_modules()
        self.exports = {}  # module -> list of names in its __all__ (None: no __all__)
        self.objects = {}  # id(obj) -> obj (kept alive)
        self.paths = {}  # "module.name" -> obj
        best = {}
        for modname in self.modules:
            module = importlib.import_module(modname)
            names = getattr(module, "__all__", None)
            self.exports[modname] = None if names is None else list(names)
            for name in names or ():
                obj = getattr(module, name)
                path = f"{modname}.{name}"
                self.paths[path] = obj
                self.objects[id(obj)] = obj
                key = self._key(obj, name)
                if key not in best or _rank(path) < _rank(best[key]):
                    best[key] = path
        self._best = best

    @staticmethod
    def _key(obj, name):
        # classes, functions and modules are one object wherever they are exported;
        # a constant (a str, a tuple) is identified by its name too
        if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
            return id(obj)
        return (id(obj), name)

    def canonical(self, path):
        """The canonical public path of the object exported as ``path``."""
        obj = self.paths[path]
        if inspect.ismodule(obj):
            return obj.__name__
        return self._best[self._key(obj, path.rsplit(".", 1)[1])]

    def canonical_of(self, obj, name=None):
        """The canonical path of ``obj`` (or None when it is not public)."""
        if inspect.ismodule(obj):
            return obj.__name__ if obj.__name__ in self.exports else None
        key = self._key(obj, name) if name is not None else id(obj)
        return self._best.get(key)

    def entries(self):
        """Canonical paths of every public non-module object, sorted."""
        return sorted({self.canonical(p) for p, o in self.paths.items() if not inspect.ismodule(o)})


def _rank(path):
    return (path.count("."), len(path), path)


_API = None


def public_api():
    global _API
    if _API is None:
        _API = PublicAPI()
    return _API


# ---------------------------------------------------------------------------- pages

def _directive(obj):
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if inspect.isroutine(obj) or callable(obj) and not isinstance(obj, type):
        return "autofunction" if inspect.isroutine(obj) else "autodata"
    return "autodata"


def module_page(api, modname):
    module = importlib.import_module(modname)
    title = f"``{modname}``"
    lines = [f".. _api-{modname}:", "", title, "=" * len(title), "",
             f".. automodule:: {modname}", "   :no-members:", ""]
    names = api.exports[modname]
    if names is None:
        return "\n".join(lines) + "\n"
    own, aliases, submodules = [], [], []
    for name in names:
        path = f"{modname}.{name}"
        obj = api.paths[path]
        if inspect.ismodule(obj):
            submodules.append(obj.__name__)
        elif api.canonical(path) == path:
            own.append(name)
        else:
            aliases.append((name, api.canonical(path)))
    if own:
        lines += [".. autosummary::", ""]
        lines += [f"   {name}" for name in own]
        lines.append("")
    if submodules:
        lines += ["Modules exported here: " + ", ".join(f":mod:`{m}`" for m in submodules) + ".", ""]
    if aliases:
        lines += ["Also exported here (documented where they are defined for users):", ""]
        lines += [f"* ``{name}``: :obj:`{target}`" for name, target in aliases]
        lines.append("")
    for name in own:
        path = f"{modname}.{name}"
        obj = api.paths[path]
        directive = _directive(obj)
        lines.append(f".. {directive}:: {path}")
        if directive == "autoclass":
            lines += ["   :members:", "   :undoc-members:", "   :special-members: __call__"]
        elif directive == "autoexception":
            lines.append("   :members:")
        elif directive == "autodata":
            lines.append("   :no-value:")
        lines.append("")
    return "\n".join(lines) + "\n"


#: the reference's sections: (title, module prefixes); a module goes to the first match
GROUPS = [
    ("Arrays, backends and random numbers",
     ("bionp", "bionp.backend", "bionp.backend_conv", "bionp.kernels", "bionp.random",
      "bionp.validation")),
    ("Data", ("bionp.data",)),
    ("Networks and layers", ("bionp.nn",)),
    ("Learning rules and optimisers", ("bionp.rules", "bionp.optim")),
    ("Hebbian learning", ("bionp.hebbian",)),
    ("Dendritic layers", ("bionp.dendritic",)),
    ("Bio transformations", ("bionp.plasticity",)),
    ("Training, checkpoints and metrics",
     ("bionp.train", "bionp.history", "bionp.checkpoint", "bionp.evaluation_data",
      "bionp.metrics", "bionp.robustness", "bionp.progress")),
    ("Experiments, sweeps and figures",
     ("bionp.studies", "bionp.sweep", "bionp.experiment", "bionp.plot", "bionp.cli")),
    ("Testing, parity and the device check", ("bionp.testing", "bionp.parity", "bionp.gpucheck")),
]


def group_of(modname):
    for title, prefixes in GROUPS:
        for prefix in prefixes:
            if modname == prefix or prefix != "bionp" and modname.startswith(prefix + "."):
                return title
    return "Other modules"


def _first_paragraph(modname):
    doc = inspect.getdoc(importlib.import_module(modname)) or ""
    return " ".join(doc.strip().split("\n\n")[0].split()) or "(no description)"


def groups_page(api):
    """The toctrees of the API reference, one per section (included by reference.rst)."""
    sections = {}
    for modname in api.modules:
        sections.setdefault(group_of(modname), []).append(modname)
    order = [title for title, _ in GROUPS] + ["Other modules"]
    lines = []
    for title in order:
        if title not in sections:
            continue
        lines += [title, "-" * len(title), "", ".. toctree::", "   :hidden:", ""]
        lines += [f"   api/{m}" for m in sections[title]]
        # each module with the first paragraph of its docstring (not autosummary: it would
        # take the function bionp.backend for the module of that name)
        lines += ["", ".. list-table::", "   :widths: 35 65", ""]
        for m in sections[title]:
            lines += [f"   * - :mod:`{m}`", f"     - {_first_paragraph(m)}"]
        lines.append("")
    return "\n".join(lines) + "\n"


def _write(path, text):
    if not path.exists() or path.read_text() != text:  # unchanged pages keep their mtime
        path.write_text(text)


def write_pages(outdir):
    api = public_api()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    wanted = {f"{m}.rst" for m in api.modules} | {"_groups.rst"}
    for old in outdir.glob("*.rst"):
        if old.name not in wanted:
            old.unlink()
    for modname in api.modules:
        _write(outdir / f"{modname}.rst", module_page(api, modname))
    _write(outdir / "_groups.rst", groups_page(api))


# ------------------------------------------------------------------ cross-references

def _lookup(path):
    """The object at a dotted bionp path, or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        modname = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(modname)
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _candidates(node):
    target = node["reftarget"].lstrip("~.")
    if target.startswith("bionp.") or target == "bionp":
        return [target]
    module = node.get("py:module") or ""
    cls = node.get("py:class") or ""
    out = []
    if module and cls:
        out.append(f"{module}.{cls}.{target}")
    if module:
        out.append(f"{module}.{target}")
    return [c for c in out if c.startswith("bionp")]


def _canonical_for(api, path):
    """Canonical documented path of the bionp object at ``path`` (or its member).

    A member of a class resolves to the entry of the class that defines it (a method
    inherited from ``Rule`` to ``bionp.rules.Rule.gradients``).
    """
    parts = path.split(".")
    for cut in range(len(parts), 1, -1):
        head, tail = ".".join(parts[:cut]), parts[cut:]
        obj = _lookup(head)
        if obj is None:
            continue
        if inspect.isclass(obj) and len(tail) == 1:
            for base in obj.__mro__:
                if tail[0] in vars(base):
                    canon = api.canonical_of(base)
                    if canon is not None:
                        return f"{canon}.{tail[0]}"
        canon = api.canonical_of(obj, parts[cut - 1])
        if canon is not None:
            return ".".join([canon, *tail])
    return None


def on_missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    api = public_api()
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip("~.")
    if node["reftype"] == "mod" and target in domain.modules:
        # a module whose name is also a function's (bionp.backend): the function holds
        # the object entry, the module its own (see _note_object)
        from sphinx.util.nodes import make_refnode

        entry = domain.modules[target]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                            contnode, target)
    for path in _candidates(node):
        if _lookup(path) is None and not _private(path):
            continue
        canon = _canonical_for(api, path)
        if canon is None or canon == path and path == node["reftarget"]:
            continue
        new = node.deepcopy()
        new["reftarget"] = canon
        new["refspecific"] = False
        ref = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], canon,
                                  new, contnode)
        if ref is None and node["reftype"] in ("meth", "attr", "func", "class", "obj", "data"):
            ref = domain.resolve_any_xref(env, node["refdoc"], app.builder, canon, new, contnode)
            ref = ref[0][1] if ref else None
        if ref is not None:
            return ref
    return None


def _exported(path):
    """Whether ``path`` (or the class or module it is a member of) is public API."""
    api = public_api()
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in api.paths or head in api.exports and cut == len(parts):
            return True
        if head in api.exports:  # a module: its member is public only if exported
            return False
    return False


def on_warn_missing_reference(app, domain, node):
    """True (no warning) for references that do not name a public bionp object."""
    if domain is None or domain.name != "py":
        return None
    for path in _candidates(node):
        obj = _lookup(path)
        if obj is not None:
            if _private(path) or _private(getattr(obj, "__module__", None) or "bionp"):
                return True  # a private bionp name: plain text, by design
            if not _exported(path):
                return True  # a helper no __all__ exports (not public API): plain text
            return None  # a public bionp object without an entry: keep the warning
        if _private(path):
            return True
    target = node["reftarget"].lstrip("~.")
    if target.startswith("bionp"):
        return None  # names nothing: a broken reference
    return True  # external (numpy, builtins, typing): not checked


def on_builder_inited(app):
    write_pages(Path(app.srcdir) / "api")


def _patch_note_object():
    """A module and a function of one name (``bionp.backend``, the module and the scoped
    switch) both get an entry: the function keeps the name in the object table, the module
    stays in the module table, where ``:mod:`` finds it (the patched resolve_xref)."""
    from sphinx.domains.python import PythonDomain

    original = PythonDomain.note_object
    if getattr(original, "_bionp", False):
        return

    def note_object(self, name, objtype, node_id, aliased=False, location=None):
        other = self.objects.get(name)
        if other is not None and "module" in (objtype, other.objtype) and objtype != other.objtype:
            if objtype == "module":
                return
            del self.objects[name]
        return original(self, name, objtype, node_id, aliased=aliased, location=location)

    note_object._bionp = True
    PythonDomain.note_object = note_object

    resolve = PythonDomain.resolve_xref

    def resolve_xref(self, env, fromdocname, builder, typ, target, node, contnode):
        # :mod: finds the module even where a function holds its name in the object table
        if typ == "mod" and target in self.modules:
            from sphinx.util.nodes import make_refnode

            entry = self.modules[target]
            return make_refnode(builder, fromdocname, entry.docname, entry.node_id, contnode,
                                target)
        return resolve(self, env, fromdocname, builder, typ, target, node, contnode)

    PythonDomain.resolve_xref = resolve_xref


def setup(app):
    _patch_note_object()
    app.connect("builder-inited", on_builder_inited)
    app.connect("missing-reference", on_missing_reference)
    app.connect("warn-missing-reference", on_warn_missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
