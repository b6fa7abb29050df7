# sopflow: `make up` runs everything locally, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
INSTALLED := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: up test bench bench-review lint install clean

up: $(INSTALLED)
	$(VENV)/bin/sopflow up

test: $(INSTALLED)
	$(VENV)/bin/pytest

bench: $(INSTALLED)
	$(VENV)/bin/python bench/run.py

bench-review: $(INSTALLED)
	$(VENV)/bin/python bench/review.py

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --config pyproject.toml
	$(VENV)/bin/sopflow lint
	$(VENV)/bin/sopflow deployments --check

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "sopflow needs Python 3.11; set PYTHON=/path/to/python3.11")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) .data .prefect reports
