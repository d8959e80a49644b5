# Castboard's single entry point. `make run` and `make test` work on a fresh
# machine with Python 3.11+ and nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EMBEDDED_REDIS_PORT ?= 6390
export DJANGO_SETTINGS_MODULE := studio.project.settings
export EMBEDDED_REDIS_PORT

.DEFAULT_GOAL := help
.PHONY: help install install-test run test lint format migrations-check worker beat clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Castboard needs Python 3.11 or newer (found $$($(PYTHON) --version))."; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
		{ echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt install python3-venv"; exit 1; }
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed  ## Create .venv and install the app

install-test: $(VENV)/.installed-test  ## Install the app and its test tools

run: export DEBUG ?= true
run: export PROVIDER_ALLOWED_NETWORKS ?= 127.0.0.1/32
run: install  ## Migrate, seed the demo, and start Redis, emulators, worker, beat and web
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
ifeq ($(origin REDIS_URL),undefined)
	@echo "REDIS_URL is unset: starting an embedded Redis on 127.0.0.1:$(EMBEDDED_REDIS_PORT)."
	REDIS_URL=redis://127.0.0.1:$(EMBEDDED_REDIS_PORT)/0 $(BIN)/python -m studio.project.supervisor Procfile
else
	$(BIN)/python -m studio.project.supervisor Procfile worker media scores beat web emulators announce
endif

worker: install  ## Run one Celery worker on every queue (needs REDIS_URL)
	$(BIN)/celery -A studio worker --loglevel INFO

beat: install  ## Run Celery beat (needs REDIS_URL)
	$(BIN)/celery -A studio beat --loglevel INFO --schedule var/celerybeat-schedule

test: install-test  ## Run the whole test suite (embedded SQLite and Redis unless *_URL are set)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test  ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: export DEBUG ?= true
migrations-check: install  ## Fail if a model change has no migration
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:  ## Remove the virtualenv and local data under var/
	rm -rf $(VENV) var
