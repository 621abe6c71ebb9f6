# The two commands the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test install install-test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/activelabel simulate --dataset digits --strategies random,margin,cluster_margin \
		--seed-size 20 --batch-size 10 --budget 300 --repeats 3 --test-size 0.3 \
		--random-state 0 --out runs/digits

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/query_speed.py
	$(BIN)/python benchmarks/label_efficiency.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
