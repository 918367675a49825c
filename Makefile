# Two commands do all the set-up on a fresh machine:
#   make demo   installs tamis into .venv and runs the curation demo on bundled data
#   make test   installs tamis (with test and benchmark peers) into .venv and runs the tests
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= cpu,dev

.PHONY: demo test lint bench install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	# PYTHONDONTWRITEBYTECODE is set on these machines: compile once so imports stay fast.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/tamis demo

test: $(VENV)/.installed
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check tamis tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) tamis-demo-run
