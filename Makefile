# finalesync — the two commands: `make demo` and `make test`. Needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py

.PHONY: demo test lint venv bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "finalesync needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(MANAGE) demo

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

test: lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python bench/sync_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
