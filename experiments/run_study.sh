#!/usr/bin/env bash
# Run (or resume) the sweeps of one study, one XLA thread per process, then write its report.
#   bash experiments/run_study.sh hypergrid standard [hard others ...]
# Sweeps append as each program finishes and skip finished cells when rerun. SWEEP_ARGS passes
# options to every sweep, e.g. SWEEP_ARGS=--allow-stale to keep cells of an earlier code version.
set -euo pipefail
cd "$(dirname "$0")/.."
study="$1"; shift
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1}"
PY="${PY:-.venv/bin/python}"
for cfg in "$@"; do
  "$PY" -m gfnjax.bench sweep "experiments/$study/$cfg.yaml" ${SWEEP_ARGS:-} 2>&1 | tee -a "experiments/$study/results/$cfg.log"
done
"$PY" experiments/report.py "$study"
