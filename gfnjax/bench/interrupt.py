"""Clean Ctrl-C / SIGTERM for the `python -m gfnjax.bench` process (no heavy imports here).

The handlers end the process at once with status 130 and a message saying what is safe: records
are appended atomically (gfnjax.bench.records) and checkpoints are renamed into place when
complete (gfnjax.bench.checkpoint), so nothing half-written survives. Exiting from the handler
(`os._exit`) rather than raising KeyboardInterrupt matters twice: JAX runs Python callbacks in
which a KeyboardInterrupt is swallowed (the run would go on), and interpreter teardown while XLA
threads are still compiling can segfault. Installed only for the CLI process, never on import as a
library.
"""

from __future__ import annotations

import os
import signal
import sys

LAST_CHECKPOINT: dict[str, str] = {}  # {"where": folder (periods)} of this process's newest one


def message() -> str:
    where = LAST_CHECKPOINT.get("where")
    resume = (
        f"the newest checkpoint is {where}: rerun the same command (a sweep resumes by itself, "
        "a single run with --resume) to continue from it"
        if where
        else "no checkpoint was written yet (see --checkpoint-every)"
    )
    return f"interrupted: records written so far are complete; {resume}"


def exit_interrupted(signum=None, frame=None) -> None:
    try:
        sys.stdout.flush()
        print("\n" + message(), file=sys.stderr, flush=True)
    finally:
        os._exit(130)


def install() -> None:
    signal.signal(signal.SIGINT, exit_interrupted)
    signal.signal(signal.SIGTERM, exit_interrupted)


def invoked_as_cli() -> bool:
    """True in the process started by `python -m gfnjax.bench ...`."""
    argv = list(getattr(sys, "orig_argv", []))
    return any(a == "-m" and b == "gfnjax.bench" for a, b in zip(argv, argv[1:]))
