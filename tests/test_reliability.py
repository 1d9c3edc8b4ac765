"""Interruption, resume and divergence, end to end on a tiny run (hypergrid 4×4, TB, 16 units).

- A run killed by SIGKILL mid-way resumes (`--resume`) to curves bit-identical to an
  uninterrupted run; a sweep interrupted inside a program resumes from its checkpoint by itself.
- A checkpoint from other code is refused before compiling; `--force-rerun` starts over.
- A seed whose loss becomes NaN is reported with its iteration, recorded as diverged, stops the
  run when every seed has diverged, and fails the CI check.
- Ctrl-C exits with status 130 and a message, never a segfault.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import algos
from gfnjax.algos.tb import TB
from gfnjax.bench import checkpoint as ckpt
from gfnjax.bench import ci
from gfnjax.bench import records as rec_mod
from gfnjax.bench.cli import main
from gfnjax.bench.records import read_records
from gfnjax.bench.sweep import plan, run_sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = [
    "--env", "hypergrid", "--algo", "tb", "--seeds", "2", "--iterations", "120",
    "--eval-every", "10", "--set", "env.dim=2", "--set", "env.side=4", "--set", "hidden=(16,)",
    "--set", "metrics.eval_batch_size=16", "--set", "metrics.l1_window=500",
]  # fmt: skip
SWEEP = {
    "seeds": [0, 1],
    "iterations": 120,
    "eval_every": 10,
    "envs": [{"name": "hypergrid", "dim": 2, "side": 4}],
    "algos": ["tb"],
    "config": {"hidden": [16]},
    "metrics": {"eval_batch_size": 16, "l1_window": 500},
}


def curves(path):
    return {(r["seed"], r["cell_id"]): r["curves"] for r in read_records(path)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (in-process, no checkpoints)."""
    out = str(tmp_path_factory.mktemp("ref") / "ref.jsonl")
    assert main(RUN + ["--out", out, "--checkpoint-every", "0"]) == 0
    return curves(out)


def test_sigkill_mid_run_then_resume_gives_identical_curves(reference, tmp_path, monkeypatch):
    out = str(tmp_path / "k.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gfnjax.bench", *RUN, "--out", out, "--checkpoint-every", "1"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stderr:  # kill right after the 5th of 11 checkpoints
        seen.append(line)
        if "checkpoint: 5/12" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    assert not os.path.exists(out)  # nothing was written: the run was killed
    root = out[: -len(".jsonl")] + ".checkpoints"
    (run_dir,) = os.listdir(root)
    steps = sorted(int(s) for s in os.listdir(os.path.join(root, run_dir)) if s.isdigit())
    assert 5 in steps and len(steps) <= 2  # keep-last-2

    # a checkpoint written by other code is refused before compiling
    run_mod = importlib.import_module("gfnjax.bench.run")

    def forbidden(*a, **k):
        raise AssertionError("compilation started despite a checkpoint from other code")

    monkeypatch.setattr(ckpt, "code_version", lambda: "0123456789ab")
    monkeypatch.setattr(run_mod, "_batched", forbidden)
    assert main(RUN + ["--out", out, "--checkpoint-every", "1", "--resume"]) == 2
    monkeypatch.undo()

    assert main(RUN + ["--out", out, "--checkpoint-every", "1", "--resume"]) == 0
    assert curves(out) == reference  # every metric at every evaluation, bit for bit
    assert not os.path.exists(os.path.join(root, run_dir))  # deleted once the records are safe


def test_sweep_interrupted_inside_a_program_resumes_from_its_checkpoint(
    reference, tmp_path, monkeypatch, capsys
):
    out = str(tmp_path / "s.jsonl")
    sweep = plan(copy.deepcopy(SWEEP), "s.yaml", out)
    assert {(i, c) for i, c in enumerate(sweep.programs[0].cells)} == {
        (seed, cell) for seed, cell in reference
    }  # the sweep's cell ids equal the single run's
    real_save = ckpt.Manager.save
    saves = []

    class Killed(Exception):
        pass

    def save_then_die(self, done, *a, **k):
        out_s = real_save(self, done, *a, **k)
        saves.append(done)
        if len(saves) == 3:
            raise Killed  # as if the process died right after its 3rd checkpoint
        return out_s

    monkeypatch.setattr(ckpt.Manager, "save", save_then_die)
    with pytest.raises(Killed):
        run_sweep(sweep, quiet=False, mesh=None, checkpoint_every=1)
    monkeypatch.undo()
    assert saves == [1, 2, 3] and read_records(out) == []
    capsys.readouterr()
    run_sweep(sweep, quiet=False, mesh=None, checkpoint_every=1)
    assert "resumed from checkpoint" in capsys.readouterr().err
    assert curves(out) == reference


@dataclasses.dataclass(frozen=True)
class NanTB(TB):
    """TB whose loss becomes NaN from iteration 31 on in rows whose learning rate is > 2e-3."""

    name: ClassVar[str] = "nan_tb"

    def update(self, state, key):
        state, info = super().update(state, key)
        bad = (state.step > 30) & (state.hparams["lr"] > 2e-3)
        scalars = dict(info.scalars, loss=jnp.where(bad, jnp.nan, info.scalars["loss"]))
        return state, info._replace(scalars=scalars)


@pytest.fixture
def nan_algo(monkeypatch):
    monkeypatch.setitem(algos.REGISTRY, "nan_tb", f"{__name__}:NanTB")


def test_all_seeds_diverged_stops_the_run_and_is_reported(nan_algo, tmp_path, capsys):
    out = str(tmp_path / "d.jsonl")
    run = [a if a != "tb" else "nan_tb" for a in RUN] + ["--set", "lr=0.003"]
    assert main(run + ["--out", out, "--checkpoint-every", "0"]) == 3
    err = capsys.readouterr()
    assert "DIVERGED: seed 0 at iteration 31" in err.err
    assert "every row diverged: stopping at iteration 40 of 120" in err.err
    assert "DIVERGED 2/2 (it 31)" in err.out  # the summary table
    recs = read_records(out)
    assert [(r["status"], r["diverged_at"], r["stopped_at"]) for r in recs] == [
        ("diverged", 31, 40)
    ] * 2
    it = np.array(recs[0]["curves"]["iteration"], dtype=float)
    assert list(it[:5]) == [0, 10, 20, 30, 40] and np.isnan(it[5:]).all()  # never evaluated


def test_some_seeds_diverged_continue_and_fail_the_ci_check(nan_algo, tmp_path, capsys):
    out = str(tmp_path / "g.jsonl")
    cfg = dict(copy.deepcopy(SWEEP), algos=["nan_tb"], grid={"lr": [0.001, 0.003]})
    sweep = plan(cfg, "g.yaml", out)
    recs = run_sweep(sweep, quiet=False, mesh=None, checkpoint_every=None)
    err = capsys.readouterr().err
    assert "DIVERGED: seed 0 (lr=0.003) at iteration 31" in err
    assert "every row diverged" not in err  # the healthy rows ran to the end
    status = {(r["hparams"]["lr"], r["seed"]): r["status"] for r in recs}
    assert status == {
        (0.001, 0): "ok",
        (0.001, 1): "ok",
        (0.003, 0): "diverged",
        (0.003, 1): "diverged",
    }
    healthy = [r for r in recs if r["status"] == "ok"]
    assert all(r["curves"]["iteration"][-1] == 120 for r in recs)
    # baseline = the same records without the divergence: the diverged group fails
    baseline = copy.deepcopy(recs)
    for r in baseline:
        r["status"], r["diverged_at"] = "ok", None
        r["final"]["tv"] = healthy[0]["final"]["tv"]
    findings = ci.compare(recs, baseline, {"tv": 0.5})
    failed = {(f.group.split(" lr=")[1].split()[0], f.status) for f in findings if f.failed}
    assert failed == {("0.003", "DIVERGED")}


def test_ctrl_c_exits_130_with_a_message(tmp_path):
    out = str(tmp_path / "c.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gfnjax.bench", *RUN, "--out", out],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4.0)  # importing JAX / building / compiling
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Segmentation" not in err


def test_checkpoint_period_parsing():
    assert ckpt.parse_every("0") is None and ckpt.parse_every("3") == 3
    assert ckpt.parse_every("90s") == 90.0 and ckpt.parse_every("2m") == 120.0
    with pytest.raises(ValueError, match="--checkpoint-every"):
        ckpt.parse_every("soon")
    with pytest.raises(ValueError, match="integer"):
        ckpt.parse_every("1.5")
    assert rec_mod.code_version() == rec_mod.code_version() and len(rec_mod.code_version()) == 12
    json.dumps(ckpt.Policy("x").fingerprint)
