# The two commands: `make run` (set up with the dashboard and torch, then `gpulens demo`: a
# collector, the dashboard on http://127.0.0.1:8050/ and two CPU training runs, all on a demo
# SQLite store apart from real data; extra flags in RUN_ARGS, e.g. RUN_ARGS="--port 8051") and
# `make test` (dev setup with pinned versions, then lint, types and the test suite).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
RUN_ARGS ?=

.PHONY: run test lint typecheck pytest bench gpu-check clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e ".[torch,dashboard]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/gpulens demo $(RUN_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.dev-installed
	$(PY) -m pytest

test: lint typecheck pytest

bench: $(VENV)/.dev-installed
	$(PY) bench/collector_cost.py
	$(PY) bench/exporter_scrape.py
	$(PY) bench/ingest.py
	$(PY) bench/series_query.py
	$(PY) bench/analyzer_vs_hta.py
	$(PY) bench/hook_overhead.py
	$(PY) bench/advisor_cost.py
	$(PY) bench/dashboard_pages.py > bench/results/dashboard_pages.txt

# The seeded-bottleneck suite on CUDA: writes bench/results/detection_cuda.md (needs a GPU).
gpu-check: $(VENV)/.dev-installed
	$(PY) bench/gpu_check.py --device cuda

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
