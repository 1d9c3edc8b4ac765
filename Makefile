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

.PHONY: install test lint bench mutate
.PHONY: sweep report bench-ci bench-ci-update

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest -n 2 tests

lint: install
	$(VENV)/bin/ruff check gfnjax tests benchmarks experiments tools
	$(VENV)/bin/ruff format --check gfnjax tests benchmarks experiments tools

bench: install
	$(PY) -m gfnjax.bench $(BENCH_ARGS)

# Mutation testing (docs/mutation.md; not part of CI, ~30 min on 2 cores): each mutant of
# tools/mutants.py in a temporary copy, its tests only; prints the score and the survivors and
# updates docs/mutation.md. `make mutate ONLY="ppo elbo"` runs the mutants whose id contains them.
ONLY ?=
mutate: install
	nice -n 10 $(PY) tools/mutate.py $(if $(ONLY),--only $(ONLY))

# Sweeps and reports (docs/harness.md): `make sweep CONFIG=benchmarks/example_sweep.yaml`,
# then `make report RESULTS=results/example.jsonl REPORT=results/report`.
CONFIG ?= benchmarks/example_sweep.yaml
SWEEP_OUT ?=
RESULTS ?= results/example.jsonl
REPORT ?= results/report

sweep: install
	$(PY) -m gfnjax.bench sweep $(CONFIG) $(if $(SWEEP_OUT),--out $(SWEEP_OUT))

report: install
	$(PY) -m gfnjax.bench report $(RESULTS) --out $(REPORT)

# CI regression benchmarks (benchmarks/ci/*.yaml vs benchmarks/ci/baselines/); fails on a quality
# regression beyond 3 standard errors + the config's margin. bench-ci-update rewrites the baselines.
bench-ci: install
	$(PY) -m gfnjax.bench ci

bench-ci-update: install
	$(PY) -m gfnjax.bench ci --update
