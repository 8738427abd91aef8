# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Both create or reuse the virtual environment at .venv.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export NO_ALBUMENTATIONS_UPDATE := 1
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: demo test lint ui bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/crawl2diffusion demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(PY) -m pytest

ui: $(VENV)/.installed
	DAGSTER_HOME=$(CURDIR)/data/dagster_home $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1

bench: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,bench]"
	$(PY) bench/wat_extract.py
	$(PY) bench/alt_text.py

clean:
	rm -rf data
