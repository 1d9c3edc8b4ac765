"""Benchmark harness: sweeps, device sharding, resumable results, reports, CI check.

One tiny sweep (hypergrid 4×4, TB, 20 iterations) is run once per module: 3 learning rates × 3
seeds = 9 vmapped rows per program (odd, so the 2-device run pads), × 2 batch sizes = 2 programs.
The same first program runs sharded over 2 forced CPU devices in a subprocess, concurrently.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gfnjax.bench import ci, report
from gfnjax.bench.run import append_records, read_records
from gfnjax.bench.sweep import load_config, plan, run_sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LRS = [0.001, 0.003, 0.01]
CONFIG = {
    "name": "tiny",
    "seeds": [0, 1, 2],
    "iterations": 20,
    "eval_every": 10,
    "envs": [{"name": "hypergrid", "dim": 2, "side": 4}],
    "algos": ["tb"],
    "config": {"hidden": [16, 16]},
    "grid": {"lr": LRS, "batch_size": [4, 8]},
    "metrics": {"eval_batch_size": 16, "l1_window": 500},
}
CHECK = {"tv": 0.5, "log_z_error": 1.0}  # relative margins (fractions of the baseline mean)


class Interrupted(Exception):
    pass


def _run_tiny_sweeps(d) -> dict:
    """Start the sharded subprocess, run the in-process sweep with a kill after its first program,
    rerun it twice; return what the tests check (JSON-able)."""
    sharded_cfg = dict(copy.deepcopy(CONFIG), grid={"lr": LRS, "batch_size": [4]})
    (d / "sharded.yaml").write_text(yaml.safe_dump(sharded_cfg))
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gfnjax.bench",
            "sweep",
            str(d / "sharded.yaml"),
            "--out",
            str(d / "sharded.jsonl"),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = str(d / "tiny.jsonl")
    sweep = plan(copy.deepcopy(CONFIG), "tiny.yaml", out)

    def kill_after_first(prog, records):
        raise Interrupted  # as if the process died right after the first program's append

    with pytest.raises(Interrupted):
        run_sweep(sweep, quiet=True, mesh=None, after_program=kill_after_first)
    after_kill = [r["cell_id"] for r in read_records(out)]
    rerun_programs, third_programs = [], []
    records = run_sweep(
        sweep, quiet=True, mesh=None, after_program=lambda p, r: rerun_programs.append(p.label)
    )
    run_sweep(
        sweep, quiet=True, mesh=None, after_program=lambda p, r: third_programs.append(p.label)
    )
    _, stderr = proc.communicate(timeout=900)
    return {
        "out": out,
        "after_kill": after_kill,
        "returned": [r["cell_id"] for r in records],
        "rerun_programs": rerun_programs,
        "third_programs": third_programs,
        "sharded_rc": proc.returncode,
        "sharded_stderr": stderr,
        "sharded": str(d / "sharded.jsonl"),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Computed once per test session, also under pytest-xdist: workers share the session's base
    temp folder and the first one to take the lock runs the sweeps."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    d = root / "harness_tiny_sweep"
    with open(root / "harness_tiny_sweep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = d / "state.json"
        if not state.exists():
            d.mkdir(exist_ok=True)
            state.write_text(json.dumps(_run_tiny_sweeps(d)))
        result = json.loads(state.read_text())
    result["sweep"] = plan(copy.deepcopy(CONFIG), "tiny.yaml", result["out"])
    return result


def test_sharded_sweep_equals_unsharded(tiny):
    assert tiny["sharded_rc"] == 0, tiny["sharded_stderr"][-3000:]
    sharded = read_records(tiny["sharded"])
    unsharded = {r["cell_id"]: r for r in read_records(tiny["out"])}
    assert len(sharded) == 9 and all(r["num_devices"] == 2 for r in sharded)
    assert all(r["num_devices"] == 1 for r in unsharded.values())
    for r in sharded:
        u = unsharded[r["cell_id"]]  # same cell id: same env, algo, config, hparams, seed
        assert (r["seed"], r["hparams"]) == (u["seed"], u["hparams"])
        for k in ("iteration", "trajectories", "transitions"):
            np.testing.assert_array_equal(r["curves"][k], u["curves"][k])
        for k in ("tv", "kl", "l1", "log_z", "elbo", "eubo", "train_loss"):
            a = np.array(r["curves"][k], float)
            b = np.array(u["curves"][k], float)
            # float32 rounding only (the per-device batch of rows differs: 5 + 5 padded vs 9)
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=k)


def test_killed_sweep_resumes_every_cell_exactly_once(tiny):
    sweep = tiny["sweep"]
    first, second = sweep.programs
    assert sorted(tiny["after_kill"]) == sorted(first.cells) and len(first.cells) == 9
    assert tiny["rerun_programs"] == [second.label]  # the finished program was not recomputed
    assert tiny["third_programs"] == []  # a complete sweep reruns nothing
    ids = [r["cell_id"] for r in read_records(tiny["out"])]
    assert sorted(ids) == sorted(first.cells + second.cells) and len(set(ids)) == 18
    assert tiny["returned"] == first.cells + second.cells
    records = read_records(tiny["out"])
    for r in records:
        assert r["algo_config"]["lr"] == r["hparams"]["lr"] and r["hparams"]["lr"] in LRS
        for k in (
            "git_commit",
            "jax_version",
            "device",
            "env_config",
            "metrics_config",
            "wall_s",
            "compile_s",
            "trajectories_per_s",
        ):
            assert k in r, k
        traj = np.array(r["curves"]["trajectories"])
        assert len(traj) == len(r["curves"]["tv"]) == 3
        # the batch size is a static grid value: trajectories sampled = iteration × batch_size
        np.testing.assert_array_equal(
            traj, np.array(r["curves"]["iteration"]) * r["algo_config"]["batch_size"]
        )
    # the learning rate is a vmapped axis: same seed, different lr -> different runs
    by = {
        (r["algo_config"]["batch_size"], r["seed"], r["hparams"]["lr"]): r["final"]["tv"]
        for r in records
    }
    assert len({by[(4, 0, lr)] for lr in LRS}) == 3


@pytest.mark.parametrize(
    "bad,key",
    [
        ({"algo": "tb"}, "algo: unknown key"),
        ({"grid": {"lrr": [0.1]}}, "grid.lrr"),
        ({"grid": {"lr": [-1.0]}}, "grid.lr"),
        ({"envs": [{"name": "hypergrid", "sidee": 3}]}, "envs[0]"),
        ({"algos": ["tbb"]}, "algos[0]"),
        ({"metrics": {"l1_window": 0}}, "metrics"),
        ({"iterations": 0}, "iterations"),
        ({"grid": {"torso": ["mlp", "foo"]}}, "torso must be one of"),
        ({"seeds": [1, 1]}, "seeds"),
    ],
)
def test_invalid_config_fails_before_compiling_naming_the_key(bad, key):
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        plan({**copy.deepcopy(CONFIG), **bad}, "bad.yaml")


def test_auc_is_the_curve_average_against_trajectories():
    x = np.linspace(0.0, 2.0, 2001)
    assert report.auc(x, 3.0 + 0.5 * x) == pytest.approx(3.5)  # linear: exact
    assert report.auc(x, x**2) == pytest.approx(4.0 / 3.0, rel=1e-5)  # (1/2)∫0^2 x² dx
    assert report.auc(np.array([0.0, 1.0, 2.0]), np.array([np.nan, 1.0, 3.0])) == pytest.approx(2.0)


def test_report_has_table_and_png(tiny, tmp_path):
    out_dir = str(tmp_path / "report")
    path = report.write_report([tiny["out"]], out_dir)
    text = open(path).read()
    records = read_records(tiny["out"])
    rows = [
        r for r in records if r["algo_config"]["batch_size"] == 8 and r["hparams"]["lr"] == 0.003
    ]
    tv = np.array([r["final"]["tv"] for r in rows])
    assert len(rows) == 3
    row = [
        line
        for line in text.splitlines()
        if line.startswith("| hypergrid | tb batch_size=8 lr=0.003 | 3 |")
    ]
    assert len(row) == 3  # final, AUC and timing tables
    assert f"{tv.mean():.4g} ± {tv.std(ddof=1):.2g}" in row[0]
    tv_auc = [
        report.auc(np.array(r["curves"]["trajectories"]), np.array(r["curves"]["tv"])) for r in rows
    ]
    assert f"{np.mean(tv_auc):.4g} ± {np.std(tv_auc, ddof=1):.2g}" in row[1]
    png = os.path.join(out_dir, "hypergrid_tv.png")
    assert "](hypergrid_tv.png)" in text
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[0] > 100


def _ci_dirs(tiny, d, baseline_records):
    (d / "configs" / "baselines").mkdir(parents=True)
    (d / "results").mkdir()
    (d / "configs" / "tiny.yaml").write_text(
        yaml.safe_dump(dict(copy.deepcopy(CONFIG), check=CHECK))
    )
    shutil.copyfile(tiny["out"], d / "results" / "tiny.jsonl")
    append_records(str(d / "configs" / "baselines" / "tiny.jsonl"), baseline_records)
    return ["--configs", str(d / "configs"), "--results", str(d / "results"), "--no-run", "--quiet"]


def test_bench_ci_fails_on_worsened_baseline_and_passes_on_true_one(tiny, tmp_path, capsys):
    records = read_records(tiny["out"])
    assert ci.main(_ci_dirs(tiny, tmp_path / "true", records)) == 0
    findings = ci.compare(records, records, CHECK)
    assert len(findings) == 6 * len(CHECK) and all(f.status == "ok" for f in findings)

    # a baseline claiming a 5× lower TV for one run group: that group's current TV is a regression
    worse = copy.deepcopy(records)
    target = "hypergrid dim=2 side=4 / tb batch_size=8 lr=0.01 it=20"
    for r in worse:
        if r["program"] + f" lr={r['hparams']['lr']:g} it=20" == target:
            r["final"]["tv"] *= 0.2
    assert ci.main(_ci_dirs(tiny, tmp_path / "worse", worse)) == 1
    assert "REGRESSION" in capsys.readouterr().out
    bad = [(f.group, f.metric) for f in ci.compare(records, worse, CHECK) if f.failed]
    assert bad == [(target, "tv")]


def test_ci_tolerance_is_relative_margin_plus_three_baseline_standard_errors():
    base = [
        {"program": "p", "seed": i, "final": {"tv": v, "elbo": -v}}
        for i, v in enumerate((0.10, 0.12, 0.14, 0.16))
    ]
    mean, s_b = 0.13, np.std([0.10, 0.12, 0.14, 0.16], ddof=1)
    # r·|μ_base| + k·s_b·√(1/n_b + 1/n_now), n_b = n_now = 4, r = 0.1, k = 3
    tol = 0.1 * mean + 3 * s_b * np.sqrt(0.5)

    def shifted(d, spread=1.0):
        return [
            {
                "program": "p",
                "seed": r["seed"],
                "final": {
                    "tv": mean + (r["final"]["tv"] - mean) * spread + d,
                    "elbo": -(mean + (r["final"]["tv"] - mean) * spread + d),
                },
            }
            for r in base
        ]

    status = lambda d, spread=1.0: [
        f.status for f in ci.compare(shifted(d, spread), base, {"tv": 0.1, "elbo": 0.1})
    ]
    assert status(0.98 * tol) == ["ok", "ok"]
    assert status(1.02 * tol) == ["REGRESSION", "REGRESSION"]  # higher TV / lower ELBO is worse
    assert status(-1.02 * tol) == ["better", "better"]
    # the current seeds' spread does not widen the tolerance (it is the baseline's)
    assert status(1.02 * tol, spread=10.0) == ["REGRESSION", "REGRESSION"]
    with pytest.raises(ValueError, match="check.wellness"):
        ci.compare(base, base, {"wellness": 0.1})


def test_committed_ci_configs_are_valid():
    paths = sorted(
        p for p in os.listdir(os.path.join(ROOT, "benchmarks", "ci")) if p.endswith(".yaml")
    )
    assert paths
    for p in paths:
        sweep = plan(load_config(os.path.join(ROOT, "benchmarks", "ci", p)), p)
        assert sweep.check
        base = read_records(
            os.path.join(ROOT, "benchmarks", "ci", "baselines", os.path.splitext(p)[0] + ".jsonl")
        )
        want = {
            f"{prog.label}"
            f"{''.join(f' {k}={v[i]:g}' for k, v in sorted((prog.hparams or {}).items()))}"
            f" it={prog.spec.iterations}"
            for prog in sweep.programs
            for i in range(len(prog.cells))
        }
        assert set(ci.ci_groups(base)) == want, (
            f"baseline of {p} does not match its config; make bench-ci-update"
        )
        assert len(base) == sweep.num_cells


def test_sweep_cli_rejects_bad_config_without_training(tmp_path, monkeypatch, capsys):
    from gfnjax.bench import sweep as sweep_module
    from gfnjax.bench.cli import main

    def forbidden(*a, **k):
        raise AssertionError("training started despite an invalid config")

    monkeypatch.setattr(sweep_module, "run", forbidden)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**copy.deepcopy(CONFIG), "grid": {"lr": [0.001, 0.0]}}))
    assert main(["sweep", str(bad)]) == 2
    assert "grid.lr" in capsys.readouterr().err
