# fxfault — one command each, on a fresh clone:  make test   |   make demo
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: venv graphviz test test-fast lint demo bench coverage-table docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Graphviz's `dot` renders .svg/.png/.pdf exports. Installed from Debian's packages where it is
# missing; if that is not possible (no apt, no root) the DOT-rendering tests skip with a message.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's graphviz (needed for .svg export)"; \
	  $$SUDO apt-get install -y -qq graphviz >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq graphviz >/dev/null 2>&1; } || \
	  echo "warning: could not install graphviz; install it yourself (apt-get install graphviz / brew install graphviz)"; }

test: venv graphviz
	$(PY) -m pytest

test-fast: venv graphviz
	$(PY) -m pytest -m "not slow"

lint: venv
	$(PY) -m ruff check fxfault tests examples benchmarks
	$(PY) -m mypy fxfault

demo: venv graphviz
	$(PY) -m fxfault demo

# Benchmarks (docs/performance.md): about an hour on 2 cores; keep the machine otherwise idle.
bench: venv
	cd benchmarks && $(abspath $(PY)) bench_overhead.py && $(abspath $(PY)) bench_noise.py \
	  && $(abspath $(PY)) bench_memory.py \
	  && $(abspath $(PY)) bench_transform.py && $(abspath $(PY)) bench_sweep.py \
	  && $(abspath $(PY)) profile_overhead.py && $(abspath $(PY)) report.py

# The quantizer coverage table (docs/coverage.md) and the pictures of the docs.
coverage-table: venv
	$(PY) docs/coverage_table.py

docs: venv graphviz
	$(PY) docs/make_images.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
