"""Benchmark harness: `python -m gfnjax.bench ...` (see `gfnjax.bench.run`)."""

from gfnjax.bench.run import RunSpec, run, summary_table

__all__ = ["RunSpec", "run", "summary_table"]
