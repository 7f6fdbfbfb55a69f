# The two commands: `make run` (set up, then collect on the embedded SQLite default) and
# `make test` (dev setup with pinned versions, then lint, types and the test suite).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
RUN_ARGS ?= --simulate-if-no-driver 4 --metrics-port 9400

.PHONY: run test lint typecheck pytest bench gpu-check clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/gpulens collect $(RUN_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.dev-installed
	$(PY) -m pytest

test: lint typecheck pytest

bench: $(VENV)/.dev-installed
	$(PY) bench/collector_cost.py
	$(PY) bench/ingest.py
	$(PY) bench/series_query.py
	$(PY) bench/analyzer_vs_hta.py
	$(PY) bench/hook_overhead.py
	$(PY) bench/advisor_cost.py

# The seeded-bottleneck suite on CUDA: writes bench/results/detection_cuda.md (needs a GPU).
gpu-check: $(VENV)/.dev-installed
	$(PY) bench/gpu_check.py --device cuda

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
