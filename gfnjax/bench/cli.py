"""CLI dispatch: `python -m gfnjax.bench [run options]` trains one env × algo over seeds.

Subcommands are added here by name (e.g. `sweep`, `report`); anything else goes to `run`.
"""

from __future__ import annotations

import sys

SUBCOMMANDS: dict[str, str] = {  # name -> "module:function"
    "sweep": "gfnjax.bench.sweep:main",
    "report": "gfnjax.bench.report:main",
    "ci": "gfnjax.bench.ci:main",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module, fn = SUBCOMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), fn)(argv[1:])
    from gfnjax.bench.run import main as run_main

    return run_main(argv)
