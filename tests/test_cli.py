"""The bench CLI: bad input fails before compiling with a message naming the field; a tiny run
writes one JSON line per seed with curves, timings and throughput."""

import importlib
import json

import pytest

from gfnjax.bench.cli import main

bench_run = importlib.import_module("gfnjax.bench.run")


@pytest.fixture
def no_training(monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("training/compilation started despite invalid input")

    monkeypatch.setattr(bench_run, "run", forbidden)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--env", "hypergird"], "valid names"),
        (["--algo", "tbb"], "valid names"),
        (["--set", "env.side=0"], "side"),
        (["--set", "side=-2"], "side"),
        (["--set", "reward=easy"], "reward"),
        (["--set", "learning_rate=0.1"], "unknown --set key 'learning_rate'"),
        (["--set", "env.sidez=3"], "unknown --set key 'env.sidez'"),
        (["--set", "lr=-1"], "lr"),
        (["--set", "batch_size=0"], "batch_size"),
        (["--seeds", "0"], "--seeds"),
        (["--iterations", "0"], "--iterations must be ≥ 1"),
        (["--eval-every", "0"], "--eval-every must be ≥ 1"),
        (["--chunk", "0"], "--chunk must be ≥ 1"),
        (["--set", "hidden=64"], "hidden must be a tuple"),
        (["--set", "torso=foo"], "torso must be one of"),
        (["--algo", "trpo", "--set", "lr=0.1"], "unknown --set key 'lr'"),
        (["--preset", "nosuch"], "unknown preset"),
        (["--set", "lr"], "key=value"),
    ],
)
def test_bad_input_fails_before_compiling(no_training, capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_tiny_run_writes_one_record_per_seed(tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    code = main(
        [
            "--env",
            "hypergrid",
            "--algo",
            "tb",
            "--seeds",
            "2",
            "--iterations",
            "20",
            "--eval-every",
            "10",
            "--set",
            "env.dim=2",
            "--set",
            "env.side=4",
            "--set",
            "hidden=(16,)",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seed"] for r in recs] == [0, 1]
    r = recs[0]
    assert r["env_config"]["side"] == 4 and r["algo_config"]["hidden"] == [16]
    assert len(r["curves"]["tv"]) == 3 and r["curves"]["trajectories"] == [0.0, 160.0, 320.0]
    for k in (
        "compile_s",
        "wall_s",
        "transitions_per_s",
        "iterations_per_s",
        "peak_rss_mb",
        "git_commit",
        "jax_version",
    ):
        assert k in r
    assert r["transitions_per_s"] > 0
    captured = capsys.readouterr()
    assert "| hypergrid | tb | 2 |" in captured.out  # summary table
    assert "it 20/20" in captured.err  # progress
