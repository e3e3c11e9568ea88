# The newcomer path: `make lab` opens the workbench, `make test` runs every test.
# Both create the project virtualenv from nothing on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: lab test check lint typecheck browser postgres notebooks docs bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lab: $(STAMP)  ## JupyterLab on notebooks/, sharing data/oms.duckdb through an oms serve child
	$(VENV)/bin/oms lab

test: $(STAMP) browser postgres  ## every test: unit, API, stores (DuckDB, PostgreSQL), CLI, widgets, browser, strict nbval
	$(PY) -m pytest

check: test lint typecheck  ## what a reviewer runs before merging

lint: $(STAMP)
	$(VENV)/bin/ruff check oms tests benchmarks
	$(VENV)/bin/ruff format --check oms tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy oms

browser:  ## Debian's Chromium, for the real-browser tests (Playwright cannot download one here)
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

postgres:  ## Debian's PostgreSQL server binaries, for the real-server store tests (a server of their own per run)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql-15 >/dev/null; }

notebooks: $(STAMP)  ## re-run the notebooks and store their outputs (the only writer of them)
	$(PY) scripts/regenerate_notebooks.py

bench: $(STAMP)  ## speed figures as ratios against baselines measured in the same run
	$(PY) benchmarks/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
