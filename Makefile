# gfnjax developer entry points. `make install bench` on a fresh machine with Python 3.11 + pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ENV ?= hypergrid
ALGO ?= tb
SEEDS ?= 4
ITERS ?=
SET ?=
OUT ?= results/runs.jsonl
BENCH_ARGS = --env $(ENV) --algo $(ALGO) --seeds $(SEEDS) --out $(OUT) \
	$(if $(ITERS),--iterations $(ITERS)) $(foreach s,$(SET),--set $(s))

.PHONY: install test lint bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check gfnjax tests

bench: install
	$(PY) -m gfnjax.bench $(BENCH_ARGS)
