"""Checks of the built documentation site (``make docs`` runs them after Sphinx).

* Every public name (``bionp.__all__`` and the ``__all__`` of every public module) has a
  rendered API entry with a summary line, and a Parameters section where it takes
  parameters; the test lists every name that does not (``docs/api_gaps.txt`` holds the
  known gaps, and a name documented since must leave it).
* In headless Chromium (skipped where it is not installed): the index and a topic page
  load, MathJax (served from the site itself, no network) typesets every equation
  without an error, and every figure image loads.

The site is read from ``$BIONP_DOCS_HTML``, which ``make docs`` sets; without it (as in
``make test``) the site tests skip, and only the docstring checks run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests._api_docs import ROOT, docstring_gaps, known_gaps, public_api

HTML = os.environ.get("BIONP_DOCS_HTML")


@pytest.fixture(scope="module")
def site():
    # only a site named by the environment (make docs sets it right after building): a
    # build left in docs/_build may be older than the docstrings the suite is testing
    if not HTML:
        pytest.skip("BIONP_DOCS_HTML is not set (make docs builds the site and runs these)")
    html = Path(HTML)
    if not (html / "index.html").exists():
        pytest.skip(f"no built documentation in {html} (run `make docs`)")
    return html


@functools.lru_cache(maxsize=2)
def _entries(site):
    """``{canonical name: (summary text, has Parameters)}`` from the API pages."""
    bs4 = pytest.importorskip("bs4")
    out = {}
    for page in sorted((site / "api").glob("*.html")):
        soup = bs4.BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        for dt in soup.select("dt.sig.sig-object.py[id]"):
            dd = dt.find_next_sibling("dd")
            if dd is None:
                continue
            summary = ""
            first = dd.find(["p", "dl"], recursive=False)
            if first is not None and first.name == "p":
                summary = first.get_text(" ", strip=True)
            params = any(f.get_text(strip=True).rstrip(":") == "Parameters"
                         for f in dd.select(":scope > dl.field-list > dt"))
            out[dt["id"]] = (summary, params)
    return out


def test_every_public_name_has_a_rendered_entry(site):
    api = public_api()
    entries = _entries(site)
    gaps = known_gaps()
    missing, no_summary, no_params = [], [], []
    for path in sorted(api.paths):
        if api.is_module(path):
            continue
        canon = api.canonical(path)
        if canon not in entries:
            missing.append(f"{path} (entry {canon})")
            continue
        summary, params = entries[canon]
        if not summary and api.is_documentable(canon):
            no_summary.append(canon)
        if api.needs_parameters(canon) and not params and canon not in gaps:
            no_params.append(canon)
    report = "\n".join([*(f"no entry: {m}" for m in missing),
                        *(f"no summary line: {m}" for m in sorted(set(no_summary))),
                        *(f"no Parameters: {m}" for m in sorted(set(no_params)))])
    assert not report, "public names without a complete rendered entry:\n" + report


def test_no_private_names_rendered(site):
    entries = _entries(site)
    private = sorted(name for name in entries
                     if any(part.startswith("_") and not part.startswith("__")
                            for part in name.split(".")))
    assert private == []


def test_no_page_loads_anything_from_the_network(site):
    """Scripts, styles, fonts and images all come from the site itself (MathJax included)."""
    tag = re.compile(r"<(script|link|img|iframe)\b[^>]*?\b(src|href)=[\"']((?:https?:)?//[^\"']*)")
    remote = []
    for page in sorted(site.rglob("*.html")):
        for m in tag.finditer(page.read_text(encoding="utf-8")):
            remote.append(f"{page.relative_to(site)}: <{m.group(1)}> {m.group(3)}")
    assert remote == []
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_module_pages_match_the_public_modules(site):
    pages = sorted(p.stem for p in (site / "api").glob("*.html"))
    assert pages == public_api().modules


# ---------------------------------------------------------------------------- browser

_PROBE = """<!doctype html><html><body><pre id="result">pending</pre>
<iframe id="f" src="{src}" style="width:1200px;height:900px"></iframe>
<script>
const frame = document.getElementById("f");
frame.addEventListener("load", async () => {{
  const w = frame.contentWindow, d = frame.contentDocument;
  const out = {{}};
  try {{
    if (w.MathJax && w.MathJax.startup) await w.MathJax.startup.promise;
    out.mathjax = !!(w.MathJax && w.MathJax.version);
    out.mathjax_version = w.MathJax && w.MathJax.version;
    out.math_nodes = d.querySelectorAll(".math").length;
    out.rendered = d.querySelectorAll("mjx-container").length;
    out.errors = d.querySelectorAll("mjx-merror").length;
    out.raw_tex_left = Array.from(d.querySelectorAll(".math"))
        .filter(e => !e.querySelector("mjx-container")).length;
    const imgs = Array.from(d.querySelectorAll("img"));
    await Promise.all(imgs.map(i => i.complete ? null :
        new Promise(r => {{ i.onload = r; i.onerror = r; }})));
    out.images = imgs.map(i => [i.getAttribute("src"), i.naturalWidth, i.naturalHeight]);
    out.scripts_from_network = Array.from(d.querySelectorAll("script[src], link[href]"))
        .map(e => e.getAttribute("src") || e.getAttribute("href"))
        .filter(u => /^(https?:)?\\/\\//.test(u) && !/^https?:\\/\\/(localhost|127\\.)/.test(u));
  }} catch (e) {{ out.error = String(e); }}
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>
"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _probe(page, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    probe = tmp_path / "probe.html"
    probe.write_text(_PROBE.format(src=page.resolve().as_uri()), encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=30000", "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    bs4 = pytest.importorskip("bs4")
    result = bs4.BeautifulSoup(proc.stdout, "html.parser").find(id="result")
    assert result is not None, f"Chromium gave no page (exit {proc.returncode}): {proc.stderr[-2000:]}"
    text = result.get_text()
    assert text != "pending", "the page did not finish loading within the time budget"
    return json.loads(text)


@pytest.mark.parametrize("page, figures", [("index.html", 0), ("topics/supervised.html", 2)])
def test_page_renders_in_chromium(site, page, figures, tmp_path):
    out = _probe(site / page, tmp_path)
    assert "error" not in out, out
    assert out["mathjax"], f"MathJax did not load on {page}: {out}"
    assert out["math_nodes"] > 0
    assert out["raw_tex_left"] == 0, f"equations left untypeset on {page}: {out}"
    assert out["rendered"] >= out["math_nodes"]
    assert out["errors"] == 0, f"MathJax errors on {page}: {out}"
    broken = [src for src, w, h in out["images"] if not (w > 0 and h > 0)]
    assert broken == [], f"images that did not load on {page}: {broken}"
    shown = [src for src, w, h in out["images"] if "figures/" in src or "_images/" in src]
    assert len(shown) == figures, out["images"]
    assert out["scripts_from_network"] == [], "the page would load from the network"


# ---------------------------------------------------------------------- without a site

def test_gap_list_is_current():
    """``docs/api_gaps.txt`` lists exactly the public callables whose docstrings lack a
    Parameters section (checked on the docstrings: no build needed)."""
    gaps = known_gaps()
    found = set(docstring_gaps())
    new = sorted(found - gaps)
    fixed = sorted(gaps - found)
    assert not new, ("public names without a Parameters section in their docstring "
                     "(document them, or list them in docs/api_gaps.txt):\n" + "\n".join(new))
    assert not fixed, "documented now, remove from docs/api_gaps.txt:\n" + "\n".join(fixed)


def test_every_public_callable_has_a_summary_line():
    api = public_api()
    missing = [name for name in api.entries() if not api.summary(name)]
    assert missing == []
