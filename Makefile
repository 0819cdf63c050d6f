# PartnerOps — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
BOOT_PYTHON := $(shell command -v python3.11 || command -v python3)

.DEFAULT_GOAL := help
.PHONY: help install run test lint format check clean bench bench-smoke backup restore faults

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(BOOT_PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "PartnerOps needs Python 3.11 or newer, found " + sys.version.split()[0]'
	$(BOOT_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install everything (once)

run: install ## Migrate, seed the demo, start a Celery worker + beat, serve http://$(HOST):$(PORT)/
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  PartnerOps is starting on http://$(HOST):$(PORT)/  (Ctrl-C stops everything)"
	@echo "  Database: $${DATABASE_URL:-SQLite at var/partnerops.sqlite3}"
	@echo "  Broker:   $${REDIS_URL:-embedded (kombu filesystem transport in var/celery-broker)}"
	@echo "  Emails are printed below by the worker (console backend)."
	@echo
	@# The worker (with its beat) runs under scripts/supervise.sh, which starts it again if it
	@# exits (it can, when Redis drops); Ctrl-C stops the server, then the supervisor and worker.
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	scripts/supervise.sh worker $(VENV)/bin/celery -A partnerops worker --beat --concurrency=1 --loglevel=warning & worker=$$!; \
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install ## Run the whole test suite (PostgreSQL if DATABASE_URL is set, else SQLite)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: install ## Django system checks and missing-migration check
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# Backup and restore (README: "Backup, restore and database roles"): the database and the
# evidence files with a manifest of SHA-256 hashes. BACKUP=dir chooses the directory.
backup: install ## Back up the database and evidence files (BACKUP=dir, default var/backups/<time>)
	$(PY) manage.py backup $(if $(BACKUP),--output "$(BACKUP)")

restore: install ## Verify, then restore BACKUP=dir into an empty database and media directory
	@test -n "$(BACKUP)" || { echo "Say which backup: make restore BACKUP=var/backups/partnerops-..."; exit 2; }
	$(PY) manage.py restore "$(BACKUP)"

# The benchmark (the bench/ app, partnerops.settings.bench; docs/benchmarks.md): its own
# PostgreSQL databases, whose names must contain "bench": the full data set and, in
# <name>_quarter, a quarter of it. BENCH_ARGS=--single-size measures the full size only.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partnerops_bench
BENCH_SMOKE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partnerops_bench_smoke
BENCH_STAMP := $(VENV)/.bench-installed-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## Benchmark at two sizes against the Django admin: table + bench-results/latest.json
	$(PY) -m bench.run --database-url "$(BENCH_DATABASE_URL)" $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP) ## The benchmark at tiny sizes in about a minute (CI proves it works)
	$(PY) -m bench.run --smoke --database-url "$(BENCH_SMOKE_DATABASE_URL)" $(BENCH_ARGS)

# The fault suite (issue 15): each fault on its own stack and ports; FAULTS_ARGS=--small is CI's size.
faults: install ## Inject faults into a real stack (broker, worker, beat, races, authz, fuzz); print figures
	bash scripts/faults/run_all.sh $(FAULTS_ARGS)

clean: ## Remove the virtualenv, local database and uploads
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
