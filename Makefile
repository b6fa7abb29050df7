# sopflow: `make up` runs everything locally, `make test` runs the tests.
# Python 3.11, 3.12 or 3.13 (tested on each); 3.11 first when there are several.
PYTHON ?= $(shell command -v python3.11 || command -v python3.13 || command -v python3.12 || command -v python3)
VENV := .venv
INSTALLED := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: up up-pg test bench bench-attachments bench-pg bench-review bench-sync bench-derive bench-import screenshots lint install clean

up: $(INSTALLED)
	$(VENV)/bin/sopflow up

# The same on PostgreSQL (sopflow's tables and the Prefect server's): a local server from this
# machine's binaries in .data/pg, or an existing one: make up-pg PG_URL=postgresql://user:pw@host/sopflow
up-pg: $(INSTALLED)
	$(VENV)/bin/sopflow up $(if $(PG_URL),--postgres-url '$(PG_URL)',--postgres)

# Tests marked slow (each starts real servers and workers, and mostly waits on them) run in a
# second pytest process alongside the rest; the slow run's summary is printed at the end. The
# rest runs on two pytest-xdist workers, a module per worker at a time (most tests wait on the
# Prefect API or WeCom's emulator, so two share the two cores well); each has its own servers.
test: $(INSTALLED)
	@slowdir=$$(mktemp -d); \
	$(VENV)/bin/pytest -q -m slow --basetemp=$$slowdir/tmp > $$slowdir/log 2>&1 & slow=$$!; \
	$(VENV)/bin/pytest -m "not slow" -n 2 --dist loadfile; main=$$?; \
	wait $$slow; slowrc=$$?; \
	echo "--- tests marked slow (run alongside):"; tail -n 30 $$slowdir/log; rm -rf $$slowdir; \
	test $$main -eq 0 -a $$slowrc -eq 0

bench: $(INSTALLED)
	$(VENV)/bin/python bench/run.py

# The same with an image and a mini-program card on every message (#16).
bench-attachments: $(INSTALLED)
	$(VENV)/bin/python bench/run.py --attachments $(ARGS)

bench-review: $(INSTALLED)
	$(VENV)/bin/python bench/review.py

bench-sync: $(INSTALLED)
	$(VENV)/bin/python bench/sync.py

# One 1:1 occurrence on PostgreSQL worked by 1 and 2 runner processes, then with one killed
# (docs/capacity.md); ARGS="--customers 50000" for a smoke run, "--workers 4" for 1, 2, 4.
bench-pg: $(INSTALLED)
	$(VENV)/bin/python bench/pg.py $(ARGS)

bench-derive: $(INSTALLED)
	$(VENV)/bin/python bench/derive.py

# 1,000,000 orders / 3,000,000 lines from CSV (generated once under bench/.data/), then again unchanged.
bench-import: $(INSTALLED)
	$(VENV)/bin/python bench/imports.py

screenshots: $(INSTALLED)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,ui]'
	$(VENV)/bin/python bench/screenshots.py

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --config pyproject.toml
	$(VENV)/bin/sopflow lint
	$(VENV)/bin/sopflow deployments --check

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 13) else "sopflow needs Python 3.11, 3.12 or 3.13, not %d.%d ($(PYTHON)); set PYTHON=/path/to/python3.1x" % v)'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) .data .prefect reports
