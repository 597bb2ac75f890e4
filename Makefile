# Two commands set up everything on a fresh machine:
#   make demo   converts a generated dataset with every codec, reads it back, prints figures
#   make test   runs ruff, the plugins' test suites and the core test suite
# Each creates .venv and installs what it needs the first time (again when pyproject changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean dist docs serve-docs

PLUGINS := plugins/acumen-image plugins/acumen-blosc2

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(foreach p,$(PLUGINS),-e "$(p)[test]")
	# The CPU build: an unpinned torch would pull a CUDA build of several GB.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/acumen demo

# The core suite, then each plugin's own suite (its own pytest settings), as its users would.
test: $(STAMP)
	# acumen view's tests drive Debian's Chromium (installed once; Playwright never downloads one).
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }
	$(BIN)/ruff check acumen tests benchmarks plugins docs/hooks.py
	$(BIN)/ruff format --check acumen tests benchmarks plugins docs/hooks.py
	$(foreach p,$(PLUGINS),$(BIN)/python -m pytest -p no:cacheprovider -q $(p)/tests &&) true
	$(BIN)/python -m pytest -p no:cacheprovider -n auto

# A release: the wheel and the sdist in dist/, checked as a package index checks them.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The docs site into site/; a broken link, anchor or API reference is an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

serve-docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs serve

lint: $(STAMP)
	$(BIN)/ruff check --fix acumen tests benchmarks plugins docs/hooks.py
	$(BIN)/ruff format acumen tests benchmarks plugins docs/hooks.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis dist site *.egg-info
