# bionp: `make test` and `make demo` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
DOCS_STAMP := $(VENV)/.installed-docs
DOCS_HTML  ?= docs/_build/html
OUT    ?= results/demo

.PHONY: help install test test-fast fuzz demo docs docs-figures parity gpu-check gpu-test bench clean

help:
	@echo "make test      create .venv, install bionp[dev], run the test-suite"
	@echo "make fuzz      the generated bad-input suite, long: ~150,000 bad calls (tests/fuzz)"
	@echo "make demo      run the main demo on the bundled data (writes $(OUT)/)"
	@echo "make docs      build the documentation (docs/_build/html; warnings are errors, offline)"
	@echo "               and check it: API entries, and in headless Chromium when installed"
	@echo "make parity    python -m bionp parity (NumPy vs CuPy, or vs the strict stand-in)"
	@echo "make gpu-check the device check (CuPy tests, parity, CPU/GPU timings -> results/gpu-check.json)"
	@echo "               with the machine's own python, nothing installed; run it first on a GPU machine"
	@echo "make gpu-test  alias of gpu-check"
	@echo "make bench     run the benchmarks (JSON on stdout)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -x -q

# tests/fuzz with 800 bad values per argument instead of 32 (BIONP_FUZZ_EXAMPLES=N to choose)
fuzz: $(STAMP)
	BIONP_FUZZ=long $(PY) -m pytest -q -p no:cacheprovider tests/fuzz

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) examples/demo.py --out $(OUT)

# Sphinx with -W (warnings are errors) and -n (every cross-reference to bionp resolves),
# -E: read every page again (autodoc does not notice edited docstrings),
# then the checks of the built site: every public name has an entry, the pages render
# their equations and figures in headless Chromium (skipped where Chromium is absent).
docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(PY) -m sphinx -b html -E -W --keep-going -n -q docs $(DOCS_HTML)
	BIONP_DOCS_HTML=$(DOCS_HTML) $(PY) -m pytest -q -p no:cacheprovider tests/test_docs_site.py

# the figures of the documentation, from the examples on the bundled data (minutes)
docs-figures: $(STAMP)
	PYTHON=$(PY) bash docs/make_figures.sh

parity: $(STAMP)
	$(PY) -m bionp parity

# On a machine with CuPy and a GPU but nothing installed: run from the tree (< 8 minutes;
# one line and exit 0 where there is no GPU).
gpu-check:
	PYTHONPATH=. python3 -m bionp gpu-check

gpu-test: gpu-check

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "# $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info docs/_build docs/api
