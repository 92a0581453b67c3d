# The two commands a newcomer runs (see README.md):
#   make demo   - the travel-assistant demo
#   make test   - install everything (Valkey + search module included) and run lint, types and tests
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: demo test install valkey lint typecheck pytest bench bench-all clean

demo:
	@bash scripts/demo.sh

test:
	@bash scripts/test.sh $(PYTEST_ARGS)

install:
	@bash scripts/bootstrap.sh

bench: install
	$(VENV)/bin/python benchmarks/core_bench.py

# every benchmark suite, then the README's Speed table and benchmarks/README.md regenerated from the runs
bench-all: install
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
