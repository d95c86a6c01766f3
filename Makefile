# bionp: `make test` and `make demo` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
OUT    ?= results/demo

.PHONY: help install test test-fast fuzz demo parity gpu-check gpu-test bench clean

help:
	@echo "make test      create .venv, install bionp[dev], run the test-suite"
	@echo "make fuzz      the generated bad-input suite, long: ~150,000 bad calls (tests/fuzz)"
	@echo "make demo      run the main demo on the bundled data (writes $(OUT)/)"
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
	rm -rf $(VENV) .pytest_cache build *.egg-info
