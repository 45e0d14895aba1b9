# A few verbs; see README.md. Everything runs from the project's own .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
DEMO_ADMIN_TOKEN ?= demo-admin-token

.PHONY: venv test demo lint fmt clean

venv: $(STAMP)

# Reinstall whenever pyproject.toml changes; the stamp records the last successful install.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

demo: $(STAMP)
	DEMO_ADMIN_TOKEN='$(DEMO_ADMIN_TOKEN)' scripts/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

fmt: $(STAMP)
	$(VENV)/bin/ruff format .

# Leaves .venv and the databases under var/ alone: both are slow or impossible to recreate.
clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache *.egg-info var/static
