# finalesync — the two commands: `make demo` and `make test`. Needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# The demo and the lint checks run in development mode: DEBUG on accepts the public development SECRET_KEY and
# makes a local encryption key under var/. Production sets both keys (README: Configuration).
DEV := DEBUG=true

.PHONY: demo test lint venv bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "finalesync needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(DEV) $(MANAGE) demo

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(DEV) $(MANAGE) check
	$(DEV) $(MANAGE) makemigrations --check --dry-run

test: lint
	$(BIN)/pytest

bench: venv
	# DEBUG off as in production (query logging would skew the figures), with the test suite's keys.
	PYTHONPATH=. DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python bench/sync_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
