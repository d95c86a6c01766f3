# bionp: `make test` and `make demo` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
OUT    ?= results/demo

.PHONY: help install test test-fast demo parity gpu-test bench clean

help:
	@echo "make test      create .venv, install bionp[dev], run the test-suite"
	@echo "make demo      run the main demo on the bundled data (writes $(OUT)/)"
	@echo "make parity    python -m bionp parity (NumPy vs CuPy, or vs the strict stand-in)"
	@echo "make gpu-test  CuPy tests + parity, with the machine's own python (GPU machines)"
	@echo "make bench     run the benchmarks (JSON on stdout)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -x -q

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) examples/demo.py --out $(OUT)

parity: $(STAMP)
	$(PY) -m bionp parity

# On a machine with CuPy and a GPU but nothing installed: run from the tree.
gpu-test:
	PYTHONPATH=. python3 -m pytest -q -k "cupy or gpu" tests
	PYTHONPATH=. python3 -m bionp parity --backends cupy

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "# $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
