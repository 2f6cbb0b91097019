# fxfault — one command each, on a fresh clone:  make test   |   make demo
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: venv test test-fast lint demo bench coverage-table docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

test: venv
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

lint: venv
	$(PY) -m ruff check fxfault tests examples benchmarks
	$(PY) -m mypy fxfault

demo: venv
	$(PY) -m fxfault demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
