# README's quick start: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= runs/demo
DEMO_EPOCHS ?= 20

.PHONY: setup demo test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Train the reference DCGAN on the bundled digits (offline), run every offline analysis, write the report.
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/gan-probe train --dataset digits --epochs $(DEMO_EPOCHS) --out $(DEMO_DIR) --seed 0
	$(BIN)/gan-probe report $(DEMO_DIR) --run-missing
	@echo "demo: open $(DEMO_DIR)/report.html"

test: setup
	$(BIN)/python -m pytest
