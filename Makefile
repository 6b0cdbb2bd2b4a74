# Two entry points on a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create the virtual environment on first use. Torch is pinned to the CPU build so pip
# never pulls a multi-GB CUDA wheel; GPU users install their own torch first (see README).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: venv demo test test-fast colcon bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py constraints-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c constraints-ci.txt -e '.[train,ros,dev]'
	touch $@

# The quick start may be run again: it replaces its own demo_out/ (the CLI alone refuses to).
demo: venv
	$(BIN)/depth-unet demo --overwrite

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

colcon: venv
	. $(BIN)/activate && colcon build --build-base build --install-base install

bench: venv
	$(BIN)/python benchmarks/bench_backends.py
	$(BIN)/python benchmarks/bench_node.py

clean:
	rm -rf build install log runs .pytest_cache
