# Two commands set up everything on a fresh machine:
#   make demo   converts a generated dataset with every codec, reads it back, prints figures
#   make test   runs ruff and the whole test suite
# Each creates .venv and installs what it needs the first time (again when pyproject changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/acumen demo

test: $(STAMP)
	$(BIN)/ruff check acumen tests benchmarks
	$(BIN)/ruff format --check acumen tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check --fix acumen tests benchmarks
	$(BIN)/ruff format acumen tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
