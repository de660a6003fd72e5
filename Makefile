# Two commands set everything up on a fresh machine:
#   make demo   - creates .venv, installs, registers the Jupyter kernel, runs the audit, writes reports/
#   make test   - the same environment, then the test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
KERNEL ?= rm-workbench
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.DEFAULT_GOAL := help
.PHONY: help env kernel demo lint format test bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[notebooks,analysis,dev,distributed]" "torch==2.13.0"
	touch $@

env: $(VENV)/.installed  ## create .venv and install the package with all extras

$(VENV)/.kernel: $(VENV)/.installed
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))"
	touch $@

kernel: $(VENV)/.kernel  ## register the named Jupyter kernel inside .venv

demo: $(VENV)/.kernel  ## run the whole audit on the embedded demo RMs; writes reports/index.html
	$(PY) -m workbench demo --kernel $(KERNEL) --out reports

lint: $(VENV)/.installed  ## ruff lint and format check (what make test runs first)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed  ## apply ruff's fixes and formatting, sync notebooks with their jupytext sources
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

test: $(VENV)/.kernel lint  ## lint, then the test suite (offline, CPU)
	$(PY) -m pytest -q

bench: $(VENV)/.installed  ## run the CPU benchmarks (results go to benchmarks/RESULTS.md by hand)
	$(PY) benchmarks/scoring.py

clean:  ## remove generated reports and caches (keeps .venv)
	rm -rf reports/*/ reports/index.html .cache .pytest_cache
