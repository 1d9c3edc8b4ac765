# gfnjax developer entry points. `make install bench` on a fresh machine with Python 3.11 + pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# `make bench` with none of ENV ALGO SEEDS ITERS SET runs the built-in leaderboard (several methods
# from the three families, 2 seeds each, ranked table + report); giving any of them runs that one
# env × algo as before (defaults: hypergrid, tb, 4 seeds), e.g. `make bench ALGO=ppo ENV=bitseq`.
# RESUME=1 continues an interrupted single run from its checkpoint (sweeps resume by themselves).
SINGLE := $(strip $(ENV)$(ALGO)$(SEEDS)$(ITERS)$(SET))
ENV ?=
ALGO ?=
SEEDS ?=
ITERS ?=
SET ?=
OUT ?=
RESUME ?=
BENCH_ARGS = --env $(or $(ENV),hypergrid) --algo $(or $(ALGO),tb) --seeds $(or $(SEEDS),4) \
	--out $(or $(OUT),results/runs.jsonl) $(if $(ITERS),--iterations $(ITERS)) \
	$(foreach s,$(SET),--set $(s)) $(if $(RESUME),--resume)
LEADERBOARD_ARGS = $(if $(OUT),--out $(OUT))

.PHONY: install test lint bench mutate
.PHONY: sweep report bench-ci bench-ci-update experiments

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
ifeq ($(SINGLE),)
	$(PY) -m gfnjax.bench leaderboard $(LEADERBOARD_ARGS)
else
	$(PY) -m gfnjax.bench $(BENCH_ARGS)
endif

# Mutation testing (docs/mutation.md; not part of CI, ~30 min on 2 cores): each mutant of
# tools/mutants.py in a temporary copy, its tests only; prints the score and the survivors and
# updates docs/mutation.md. `make mutate ONLY="ppo elbo"` runs the mutants whose id contains them.
ONLY ?=
mutate: install
	nice -n 10 $(PY) tools/mutate.py $(if $(ONLY),--only $(ONLY))

# Reproduction studies (experiments/README.md; long: run by hand, results committed, not CI).
# `make experiments STUDY=hypergrid` runs (or resumes: finished cells are skipped) every sweep
# config of that study, then regenerates its report; STUDY=estimators runs the exact-gradient study.
STUDY ?= hypergrid
CONFIGS ?= $(basename $(notdir $(wildcard experiments/$(STUDY)/*.yaml)))
experiments: install
ifeq ($(STUDY),estimators)
	$(PY) experiments/estimators/estimators.py
else
	PY=$(PY) bash experiments/run_study.sh $(STUDY) $(CONFIGS)
endif

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
# regression beyond the config's relative margin + 3 baseline standard errors, a diverged or NaN
# seed, or a missing group or baseline. bench-ci-update rewrites the baselines.
bench-ci: install
	$(PY) -m gfnjax.bench ci

bench-ci-update: install
	$(PY) -m gfnjax.bench ci --update
