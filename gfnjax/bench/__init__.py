"""Benchmark harness: `python -m gfnjax.bench ...` (see `gfnjax.bench.run`)."""

from gfnjax.bench import interrupt as _interrupt

if _interrupt.invoked_as_cli():  # before JAX is imported: Ctrl-C at any time ends cleanly
    _interrupt.install()

from gfnjax.bench.run import RunSpec, run, summary_table  # noqa: E402

__all__ = ["RunSpec", "run", "summary_table"]
