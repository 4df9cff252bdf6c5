# README's quick start: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= runs/demo
# the demo's model: 40 epochs at batch 32 (1,680 steps) of a half-width DCGAN (ngf = ndf = 32: G 128-64-32,
# D 32-64-128 channels; the paper's 64): legible digits in minutes on 2 cores; docs/training.md says why
DEMO_EPOCHS ?= 40
DEMO_TRAIN_FLAGS ?= --batch-size 32 --ngf 32 --ndf 32

.PHONY: setup demo test

# quiet install: one line of our own; no "new pip version" notice, no setuptools "Editable installation"
# note (information only); pip -q still shows errors and every other warning
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip

$(VENV)/.installed: pyproject.toml
	@echo "setup: installing gan-probe[dev] into $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@$(PIP) install -q -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

# Train the reference DCGAN on the bundled digits (offline), run every offline analysis, write the report.
# On a CPU, report --run-missing runs score and walk with smaller Inception passes and says so (docs/report.md):
# about 470 s of CPU time in all with the Inception weights present, so a few minutes on 2 cores.
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/gan-probe train --dataset digits --epochs $(DEMO_EPOCHS) $(DEMO_TRAIN_FLAGS) --out $(DEMO_DIR) --seed 0
	$(BIN)/gan-probe report $(DEMO_DIR) --run-missing
	@echo "demo: open $(DEMO_DIR)/report.html"

test: setup
	$(BIN)/python -m pytest
