# Memory Studio: `make run` serves the dashboard with demo data, `make test` runs every test,
# `make serve` runs it as production does (README, "Running in production").
# Both build .venv themselves, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# One gthread worker per core with 4 threads each (docs/benchmarks.md, load runs on 2 cores):
# 4 served as much as 2 and more than 8, whose threads contend for each worker's interpreter
# lock; 1 thread left a long tail; 4 rather than 2 so a slow request (a streamed export)
# holds one of eight threads, not one of four.
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
THREADS ?= 4
APT_GET := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.PHONY: run serve test screenshots lint format check load-run benchmark db-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps make reinstalling happen only when a requirements file changes.
$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# Browser tests drive Debian's Chromium; Playwright's own browser download cannot work here.
/usr/bin/chromium:
	$(APT_GET) update
	$(APT_GET) install -y chromium

# Debug pages for development only: run turns DEBUG on for itself, serve never does.
run: export DEBUG = True
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runtime_indexes
	$(BIN)/python manage.py count_tokens --missing
	$(BIN)/python manage.py scan_sensitive
	$(BIN)/python manage.py demo_logins --host $(HOST):$(PORT)
	@# One background worker beside the web server; Ctrl-C (or the web server exiting) stops both.
	@$(BIN)/python manage.py db_worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production: SECRET_KEY, ALLOWED_HOSTS and DATABASE_URL come from the environment.
serve: export DEBUG = False
check load-run benchmark db-stop: export DEBUG = True
serve: $(VENV)/.installed
	$(BIN)/python manage.py collectstatic --no-input
	$(BIN)/python manage.py migrate --no-input
	# No request-line cap: ids and page cursors carry stored ids, of any length, in the query.
	# --reuse-port: a socket per worker, so the kernel spreads connections evenly between them.
	$(BIN)/gunicorn studio.wsgi -b $(HOST):$(PORT) -w $(WORKERS) --threads $(THREADS) \
		--reuse-port --limit-request-line 0 --access-logfile -

test: $(VENV)/.installed-test /usr/bin/chromium
	$(BIN)/python -m pytest

# The browser tests save their screenshots under test-results/; this refreshes the docs' ones.
screenshots: $(VENV)/.installed-test /usr/bin/chromium
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/test_browser.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: $(VENV)/.installed
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

# 50 operators under gunicorn on 127.0.0.1 while agno writes the same users (bounded: 30 s).
load-run: $(VENV)/.installed-test
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py load_run --clients 50 --seconds 30 --workers $(WORKERS) --threads $(THREADS) \
		--json docs/load-run.json

# The full-size side-by-side benchmark (docs/benchmarks.md); pass ARGS for a smaller one.
benchmark: $(VENV)/.installed-test
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py benchmark $(ARGS)

db-stop: $(VENV)/.installed
	$(BIN)/python manage.py embedded_postgres stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
