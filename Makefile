# A few verbs; see README.md. Everything runs from the project's own .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
DEMO_ADMIN_TOKEN ?= demo-admin-token

.PHONY: venv test demo bench lint fmt clean

venv: $(STAMP)

# Reinstall whenever pyproject.toml changes; the stamp records the last successful install.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

demo: $(STAMP)
	DEMO_ADMIN_TOKEN='$(DEMO_ADMIN_TOKEN)' scripts/demo.sh

# Every benchmark against PostgreSQL, Redis and the simulator (about 40 minutes), then bench/RESULTS.md.
bench: $(STAMP)
	$(VENV)/bin/python -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

fmt: $(STAMP)
	$(VENV)/bin/ruff format .

# Leaves .venv and the databases under var/ alone: both are slow or impossible to recreate.
clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache *.egg-info var/static
