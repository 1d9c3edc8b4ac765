"""CLI dispatch: `python -m gfnjax.bench [run options]` trains one env × algo over seeds.

Subcommands are added here by name (e.g. `sweep`, `report`); anything else goes to `run`.
Ctrl-C and SIGTERM (preemption) end every command cleanly with exit status 130: results already
written are complete, and the same command continues from the last checkpoint.
"""

from __future__ import annotations

import sys

SUBCOMMANDS: dict[str, str] = {  # name -> "module:function"
    "sweep": "gfnjax.bench.sweep:main",
    "report": "gfnjax.bench.report:main",
    "ci": "gfnjax.bench.ci:main",
    "leaderboard": "gfnjax.bench.leaderboard:main",
}


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module, fn = SUBCOMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), fn)(argv[1:])
    from gfnjax.bench.run import main as run_main

    return run_main(argv)


def main(argv: list[str] | None = None) -> int:
    """In-process entry (tests, notebooks): the interpreter's own signal handling."""
    return dispatch(list(sys.argv[1:] if argv is None else argv))


def entry() -> int:
    """Process entry (`python -m gfnjax.bench`): Ctrl-C and SIGTERM end the process at once with
    status 130 and a message (gfnjax.bench.interrupt)."""
    from gfnjax.bench import interrupt

    interrupt.install()
    try:
        return main()
    except KeyboardInterrupt:  # raised before the handlers were installed
        interrupt.exit_interrupted()
        return 130
