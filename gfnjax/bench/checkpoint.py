"""Checkpoints of a run in progress (orbax): the whole loop carry of every row, the curves so far.

A run (`gfnjax.bench.run.train_rows`) trains in chunks of evaluation periods. At a chunk boundary
it may save a checkpoint:

    <directory>/<step>/state   the `Carry` of every row (train state with optimiser moments,
                               replay buffers, target networks; PRNG key; counters; metric carries)
    <directory>/<step>/curves  float32[rows, evaluations so far] per metric
    <directory>/<step>/meta    periods done, code version, the run's fingerprint

where <step> = evaluation periods done. orbax writes a step into a temporary folder and renames it
when complete, so a kill mid-save leaves the previous checkpoint intact; the newest `keep` steps
are kept. Resuming restores the carry and the curves and continues with the same compiled chunks,
so the curves equal those of an uninterrupted run bit for bit (tests/test_checkpoint.py).

`Policy.every` is either a number of evaluation periods (int) or a wall-clock interval in seconds
(float): a checkpoint is written at the first chunk boundary at least that long after the previous
one, so short runs never pay for one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from typing import Any

import jax
import numpy as np

from gfnjax.bench.records import cell_id, code_version


@dataclasses.dataclass
class Policy:
    """directory: this run's checkpoint folder; every: periods (int) or seconds (float);
    keep: checkpoints kept; resume: continue from the newest one if it exists;
    fingerprint: what must match to resume (configs, seeds, schedule, chunking)."""

    directory: str
    every: int | float = 60.0
    keep: int = 2
    resume: bool = False
    fingerprint: dict = dataclasses.field(default_factory=dict)

    def due(self, periods_since: int, seconds_since: float) -> bool:
        if isinstance(self.every, float):
            return seconds_since >= self.every
        return periods_since >= self.every


def parse_every(text: str | int | float) -> int | float | None:
    """'0' -> None (off); '5' -> 5 evaluation periods; '90s' / '10m' / '1h' -> seconds (float)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise ValueError(
            f"--checkpoint-every must be a number of evaluation periods (e.g. 4), a duration "
            f"(e.g. 90s, 10m, 1h) or 0 (no checkpoints), got {text!r}"
        )
    value, unit = m.groups()
    if not unit:
        if "." in value:
            raise ValueError(
                f"--checkpoint-every in evaluation periods must be an integer, got {text!r}"
            )
        return int(value) or None
    seconds = float(value) * {"s": 1, "m": 60, "h": 3600}[unit]
    return seconds or None


def run_key(fingerprint: dict) -> str:
    return cell_id(fingerprint)


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used (other code version or other run)."""


class Manager:
    """Thin wrapper over `orbax.checkpoint.CheckpointManager` (imported on first use: it takes
    about 2 s to import, which runs that never checkpoint do not pay)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._mngr = None

    def _manager(self):
        if self._mngr is None:
            import orbax.checkpoint as ocp

            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.policy.keep, enable_async_checkpointing=False, create=True
            )
            self._mngr = ocp.CheckpointManager(
                os.path.abspath(self.policy.directory), options=options
            )
        return self._mngr

    def latest(self) -> int | None:
        """The newest complete step in the folder (without importing orbax), or None."""
        d = self.policy.directory
        if not os.path.isdir(d):
            return None
        steps = [
            int(n)
            for n in os.listdir(d)
            if n.isdigit()
            and os.path.isdir(os.path.join(d, n))
            and os.path.exists(os.path.join(d, n, "meta"))
        ]
        return max(steps) if steps else None

    def read_meta(self, step: int) -> dict:
        meta_dir = os.path.join(self.policy.directory, str(step), "meta")
        for name in os.listdir(meta_dir):
            path = os.path.join(meta_dir, name)
            if os.path.isfile(path) and not name.startswith("_"):
                try:
                    with open(path, encoding="utf-8") as f:
                        return json.load(f)
                except (OSError, json.JSONDecodeError):
                    continue
        raise CheckpointError(f"checkpoint {meta_dir} has no readable metadata")

    def check(self, step: int) -> dict:
        """The step's metadata if it belongs to this run and this code; else CheckpointError."""
        meta = self.read_meta(step)
        if meta.get("fingerprint") != json.loads(json.dumps(self.policy.fingerprint)):
            raise CheckpointError(
                f"checkpoint {self.policy.directory}/{step} was written by another run "
                "configuration; remove it or use --force-rerun"
            )
        if meta.get("code_version") != code_version():
            raise CheckpointError(
                f"checkpoint {self.policy.directory}/{step} was written by other gfnjax code "
                f"(code version {meta.get('code_version')}, git {meta.get('git_commit')}; now "
                f"{code_version()}): continuing it would mix two versions in one run. "
                "Use --force-rerun to start the run over (the checkpoint is discarded)"
            )
        return meta

    def save(self, done: int, carry: Any, curves: dict[str, np.ndarray], extra: dict) -> float:
        """Save after `done` periods; returns the seconds it took."""
        import orbax.checkpoint as ocp

        t0 = time.perf_counter()
        meta = dict(
            extra,
            periods_done=done,
            code_version=code_version(),
            fingerprint=self.policy.fingerprint,
        )
        self._manager().save(
            done,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(carry),
                curves=ocp.args.StandardSave({k: np.asarray(v) for k, v in curves.items()}),
                meta=ocp.args.JsonSave(json.loads(json.dumps(meta))),
            ),
            force=True,
        )
        self._manager().wait_until_finished()
        return time.perf_counter() - t0

    def restore(self, step: int, like: Any) -> tuple[Any, dict[str, np.ndarray], dict]:
        """(carry shaped and sharded like `like`, curves, meta) of a saved step."""
        import orbax.checkpoint as ocp

        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), like
        )
        out = self._manager().restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract),
                curves=ocp.args.StandardRestore(),
                meta=ocp.args.JsonRestore(),
            ),
        )
        curves = {k: np.asarray(v) for k, v in out.curves.items()}
        return out.state, curves, dict(out.meta)

    def delete_all(self) -> None:
        if self._mngr is not None:
            self._mngr.close()
            self._mngr = None
        shutil.rmtree(self.policy.directory, ignore_errors=True)
        parent = os.path.dirname(os.path.abspath(self.policy.directory))
        try:  # remove the checkpoints folder too once it holds no other run
            os.rmdir(parent)
        except OSError:
            pass

    def close(self) -> None:
        if self._mngr is not None:
            self._mngr.close()
            self._mngr = None
