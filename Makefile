# Two commands do all the set-up on a fresh Debian machine (Python 3.11, root):
#   make demo   installs everything, then runs the mapping protocol on the simulated rig
#   make test   installs everything, then runs the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test bench lint gui clean

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the project's dependency list changes.
$(STAMP): pyproject.toml scripts/install-system-deps.sh | $(BIN)/python
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/neurorig run protocols/mapping.toml --sim --camera sim --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

gui: $(STAMP)
	$(BIN)/neurorig gui --sim

clean:
	rm -rf $(VENV) runs .pytest_cache
