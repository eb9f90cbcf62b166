# Two entry points a fresh machine needs: `make demo` and `make test`.
# Everything installs into .venv from PyPI; nothing is assumed to be installed by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean-cache

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p reports
	$(BIN)/stratvector backtest strategies/momentum.toml --report reports/momentum.html --json reports/momentum.json

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# Benchmarks use their own environment so the peers' pins never touch the main one.
bench:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -e '.[bench]'
	.venv-bench/bin/python benchmarks/bench_backtest.py

# numba's on-disk cache is keyed on each kernel's own file: after editing a helper
# kernel in another module (costs.py, fills.py), clear it.
clean-cache:
	find stratvector -name '*.nbi' -delete -o -name '*.nbc' -delete
