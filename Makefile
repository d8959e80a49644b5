# Castboard's single entry point. `make run` and `make test` work on a fresh
# machine with Python 3.11+ and nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EMBEDDED_REDIS_PORT ?= 6390
export DJANGO_SETTINGS_MODULE := studio.project.settings
export EMBEDDED_REDIS_PORT

.DEFAULT_GOAL := help
.PHONY: help install install-test run serve test lint format migrations-check worker beat clean

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

# `make serve`: the production stack on this machine (Procfile.serve). Plain HTTP on loopback
# unless PUBLIC_BASE_URL is https (a TLS proxy in front), when the secure defaults stay on.
SERVE_URL := $(or $(PUBLIC_BASE_URL),http://127.0.0.1:8000)
SERVE_VAR := $(or $(CASTBOARD_VAR_DIR),var)
SERVE_PROCESSES ?= web worker media scores beat
ifeq ($(origin REDIS_URL),undefined)
SERVE_PROCESSES := redis $(SERVE_PROCESSES)
SERVE_SAYS_REDIS := echo "REDIS_URL is unset: starting an embedded Redis on 127.0.0.1:$(EMBEDDED_REDIS_PORT)."
serve: export REDIS_URL := redis://127.0.0.1:$(EMBEDDED_REDIS_PORT)/0
endif
ifeq ($(SERVE_EMULATORS),1)
SERVE_PROCESSES += emulators announce
serve: export PROVIDER_ALLOWED_NETWORKS ?= 127.0.0.1/32
endif
ifeq ($(filter https://%,$(SERVE_URL)),)
serve: export SECURE_SSL_REDIRECT ?= false
serve: export SESSION_COOKIE_SECURE ?= false
serve: export CSRF_COOKIE_SECURE ?= false
serve: export SECURE_HSTS_SECONDS ?= 0
endif

# $(call serve_secret,VARIABLE,FILE): VARIABLE from the environment, else from FILE, made once
# (0600) and kept. One machine's key: machines that share a database need one value, set.
define serve_secret
if [ -z "$${$(1):-}" ]; then \
  if [ -s $(2) ]; then echo "$(1) is unset: using the one kept in $(2)."; \
  else (umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64), end="")' > $(2)) && \
    echo "$(1) is unset: generated one into $(2) (0600), kept for the next start."; fi; \
  $(1)="$$(cat $(2))"; export $(1); \
fi
endef

serve: export DEBUG := false
serve: export PUBLIC_BASE_URL := $(SERVE_URL)
serve: install  ## Production-like: DEBUG off, gunicorn, workers, beat (SERVE_EMULATORS=1: emulators, demo)
	@mkdir -p $(SERVE_VAR)
	@set -e; \
	$(call serve_secret,SECRET_KEY,$(SERVE_VAR)/secret_key); \
	$(call serve_secret,ENCRYPTION_KEYS,$(SERVE_VAR)/encryption_key); \
	echo "Collecting static files into $(SERVE_VAR)/staticfiles..."; \
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0; \
	$(BIN)/python manage.py migrate --noinput; \
	if [ "$(SERVE_EMULATORS)" = 1 ]; then $(BIN)/python manage.py seed_demo; fi; \
	$(or $(SERVE_SAYS_REDIS),true); \
	echo "Starting $(SERVE_PROCESSES); Castboard will answer at $(SERVE_URL)/"; \
	exec $(BIN)/python -m studio.project.supervisor Procfile.serve $(SERVE_PROCESSES)

worker: install  ## Run one Celery worker on every queue (needs REDIS_URL)
	$(BIN)/celery -A studio worker --loglevel INFO

beat: install  ## Run Celery beat (needs REDIS_URL)
	$(BIN)/celery -A studio beat --loglevel INFO

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
