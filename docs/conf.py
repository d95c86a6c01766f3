"""Sphinx configuration of bionp's documentation (``make docs``).

The build imports bionp from this source tree (not an installed copy) and needs no
network: MathJax is served from the build's own ``_static/mathjax`` (the
``sphinx-mathjax-offline`` package), nothing is fetched by intersphinx.
"""

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))            # bionp from this tree
sys.path.insert(0, str(HERE / "_ext"))   # bionp_docs
os.environ.setdefault("MPLBACKEND", "Agg")

import bionp  # noqa: E402

# numpydoc parses the docstring of anything callable to mangle its signature, and
# bionp.plasticity.volume is a module that is callable (its old function, deprecated):
# its module docstring's own sections are not a function's
warnings.filterwarnings("ignore", message=r"Unknown section .* docstring of bionp\.plasticity\.volume ",
                        category=UserWarning)

project = "bionp"
author = "The bionp developers"
copyright = "The bionp developers"
release = bionp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx-mathjax-offline",            # MathJax 3 copied into _static/mathjax: offline
    "bionp_docs",                        # docs/_ext: API pages, alias cross-references
]

exclude_patterns = ["_build", "api/_groups.rst"]
templates_path = []
root_doc = "index"

# every cross-reference to bionp must resolve (-W makes a miss an error); references to
# other projects are not checked (no intersphinx: the build is offline)
nitpicky = True
default_role = "obj"

# autodoc / autosummary / numpydoc
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"               # numpydoc's Parameters section carries the types
autodoc_default_options = {}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False

# HTML
html_theme = "pydata_sphinx_theme"
html_title = f"bionp {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "icon_links": [],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
