# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Both create or reuse the virtual environment at .venv.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export NO_ALBUMENTATIONS_UPDATE := 1
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: demo test test-heavy lint ui bench clean lock

# uv installs the pinned set (requirements.lock) from pip's configured indexes; pip if uv fails.
$(VENV)/.installed: pyproject.toml constraints.txt requirements.lock tools/install.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) tools/install.py ".[dev,ray]" -c constraints.txt -c requirements.lock
	touch $@

# Pin the newest set pyproject.toml allows (then run make test, and commit the lock with it).
lock: $(VENV)/.installed
	$(PY) tools/install.py --lock requirements.lock

demo: $(VENV)/.installed
	$(VENV)/bin/crawl2diffusion demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(PY) -m pytest

# Heavy proofs (retrain the default diffusion model, about 5 minutes): not part of make test.
test-heavy: $(VENV)/.installed
	$(PY) -m pytest -m heavy

ui: $(VENV)/.installed
	DAGSTER_HOME=$(CURDIR)/data/dagster_home $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1

# The peer tools pull in pyspark, which breaks great-expectations' import: own venv.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml constraints.txt tools/install.py
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python tools/install.py ".[bench]" -c constraints.txt
	touch $@

bench: $(BENCH_VENV)/.installed $(VENV)/.installed
	$(BENCH_VENV)/bin/python bench/wat_extract.py
	$(BENCH_VENV)/bin/python bench/alt_text.py
	$(BENCH_VENV)/bin/python bench/trace.py
	$(PY) bench/clip_scoring.py

clean:
	rm -rf data
