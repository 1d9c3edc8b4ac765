"""Results files and their readers (no training): atomic appends, torn-tail repair, warnings on
every skipped line, one record per cell, early checks of the output path, stale-result refusal,
reports of mixed metric sets and of diverged seeds, strict YAML."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
import yaml

from gfnjax.bench import records as rec_mod
from gfnjax.bench import report
from gfnjax.bench.records import (
    append_records,
    check_writable,
    load_results,
    read_records,
    record_cell_id,
    unique_records,
)
from gfnjax.bench.run import summary_table
from gfnjax.bench.sweep import check_resume, load_config, plan


def fake(algo="tb", seed=0, tv=0.1, env="hypergrid", lr=1e-3, metrics=None, **extra):
    """A results record as the harness writes it (3 evaluations)."""
    finals = {"tv": tv, "l1": None if tv is None else tv / 10, "trajectories": 200.0}
    finals.update(metrics or {})
    curves = {k: [None if v is None else v * f for f in (2, 1.5, 1)] for k, v in finals.items()}
    curves["trajectories"] = [0.0, 100.0, 200.0]
    r = {
        "env": env,
        "env_config": {"dim": 2, "side": 4},
        "algo": algo,
        "algo_config": {"lr": lr},
        "metrics_config": {"exact": True},
        "iterations": 20,
        "eval_every": 10,
        "seed": seed,
        "final": finals,
        "curves": curves,
        "compile_s": 1.0,
        "wall_s": 2.0,
        "trajectories_per_s": 100.0,
        "iterations_per_s": 10.0,
        "transitions_per_s": 1000.0,
        "code_version": rec_mod.code_version(),
    }
    r.update(extra)
    return r


def test_torn_tail_is_moved_aside_with_a_warning_and_pandas_can_read_the_file(tmp_path, capsys):
    path = str(tmp_path / "r.jsonl")
    append_records(path, [fake(seed=0)])
    with open(path, "a") as f:
        f.write('{"env": "hypergrid", "curv')  # a writer killed mid-line (or disk full)
    append_records(path, [fake(seed=1)])
    err = capsys.readouterr().err
    assert "last line was incomplete" in err and "r.jsonl.torn" in err
    assert [r["seed"] for r in read_records(path)] == [0, 1]
    assert open(path + ".torn").read() == '{"env": "hypergrid", "curv\n'
    # every line of the file is a complete JSON object: what pandas.read_json(lines=True) needs
    lines = open(path).read().splitlines()
    assert len(lines) == 2 and all(isinstance(json.loads(x), dict) for x in lines)


def test_failed_write_leaves_no_partial_record(tmp_path, monkeypatch):
    """ENOSPC in the middle of the write: the file is truncated back to its previous length."""
    path = str(tmp_path / "r.jsonl")
    append_records(path, [fake(seed=0)])
    before = open(path, "rb").read()
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        append_records(path, [fake(seed=1), fake(seed=2)])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert open(path, "rb").read() == before


def test_readers_warn_on_every_skipped_line(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    good = [json.dumps(fake(seed=s)) for s in range(3)]
    path.write_text(
        "\n".join([good[0], '{"broken": ', good[1], '{"a": 1}', "[1, 2]", good[2]]) + "\n"
    )
    got = read_records(str(path))
    err = capsys.readouterr().err
    assert [r["seed"] for r in got] == [0, 1, 2]
    assert "m.jsonl:2: skipped a line that is not valid JSON" in err
    assert "m.jsonl:4: skipped a JSON line that is not a results record" in err
    assert "m.jsonl:5: skipped a JSON line that is not a results record" in err
    assert err.count("warning:") == 3


def test_duplicates_are_counted_once_and_the_newest_wins(tmp_path, capsys):
    """The same command run twice into one file (or two sweeps on one file): seeds = 1, not 2."""
    path = str(tmp_path / "dup.jsonl")
    append_records(path, [fake(seed=0, tv=0.30)])
    append_records(path, [fake(seed=0, tv=0.20)])  # same cell, recomputed
    append_records(path, [fake(seed=1, tv=0.10)])
    recs = load_results([path])
    assert "1 duplicate record(s)" in capsys.readouterr().err
    assert sorted((r["seed"], r["final"]["tv"]) for r in recs) == [(0, 0.20), (1, 0.10)]
    table = report.results_table(recs, ["tv"])
    row = [x for x in table.splitlines() if x.startswith("| hypergrid | tb | 2 | ok |")][0]
    tv = np.array([0.20, 0.10])
    assert f"{tv.mean():.4g} ± {tv.std(ddof=1):.2g}" in row  # mean ± sample std of 2 seeds


def test_cell_id_of_a_record_equals_the_sweep_cell_id():
    r = fake(seed=3)
    want = rec_mod.cell_id({k: r[k] for k in rec_mod.CELL_KEYS})
    assert record_cell_id(r) == want
    assert record_cell_id(dict(r, cell_id="abc")) == "abc"
    assert len(unique_records([r, dict(r, seed=4)], on_duplicate=None)) == 2


@pytest.mark.parametrize(
    "make_path,needle",
    [
        (lambda d: str(d), "is a directory"),
        (lambda d: str(d / "afile" / "x.jsonl"), "is a file, not a folder"),
        (lambda d: "/proc/x.jsonl", "not writable"),
    ],
)
def test_unwritable_out_is_refused(tmp_path, make_path, needle):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=needle):
        check_writable(make_path(tmp_path))


def test_unwritable_out_fails_before_compiling(tmp_path, monkeypatch, capsys):
    import importlib

    from gfnjax.bench.cli import main

    run_mod = importlib.import_module("gfnjax.bench.run")

    def forbidden(*a, **k):
        raise AssertionError("compilation started despite an unwritable --out")

    monkeypatch.setattr(run_mod, "build", forbidden)
    (tmp_path / "afile").write_text("x")
    for out in (str(tmp_path), str(tmp_path / "afile" / "x.jsonl")):
        assert main(["--seeds", "1", "--out", out]) == 2
        assert "--out" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if not os.access(ro, os.W_OK):  # (root ignores permissions)
        assert main(["--seeds", "1", "--out", str(ro / "x.jsonl")]) == 2
        assert "not writable" in capsys.readouterr().err


def test_report_handles_mixed_metric_sets_and_diverged_seeds(tmp_path):
    """tb (log Z) with fm (none), hypergrid with qm9str metrics, and a group with 3 of 4 seeds
    diverged: shown as DIVERGED 3/4 with the healthy seed's value marked (1/4), never as n=4."""
    recs = [fake("tb", s, 0.1 + s / 100, metrics={"log_z_error": 0.05}) for s in range(2)]
    recs += [fake("fm", s, 0.2) for s in range(2)]
    recs += [fake("tb", s, 0.3, env="qm9str", metrics={"pearson": 0.5}) for s in range(2)]
    recs += [fake("db", 0, 0.03)]
    recs += [
        fake("db", s, None, status="diverged", diverged_at=40 + s, metrics={"l1": 0.01})
        for s in (1, 2, 3)
    ]
    for r in recs:  # the l1 curve of a diverged seed stays plausible: it must not be averaged
        if r.get("status") == "diverged":
            r["final"]["tv"] = None
    path = str(tmp_path / "mixed.jsonl")
    append_records(path, recs)
    md = report.write_report([path], str(tmp_path / "rep"))
    text = open(md).read()
    db = [x for x in text.splitlines() if x.startswith("| hypergrid | db |")]
    assert db and "DIVERGED 3/4 (it 41, 42, 43)" in db[0]
    assert "0.03 ± 0 (1/4)" in db[0] and "0.003 ± 0 (1/4)" in db[0]
    fm = [x for x in text.splitlines() if x.startswith("| hypergrid | fm |")][0]
    assert "–" in fm  # fm has no log_z_error
    assert os.path.exists(tmp_path / "rep" / "qm9str_pearson.png")
    summary = summary_table(recs)
    assert "DIVERGED 3/4" in summary


def test_report_errors_are_clear(tmp_path, capsys):
    from gfnjax.bench.report import main

    assert main([str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "r")]) == 2
    assert "not found" in capsys.readouterr().err
    path = str(tmp_path / "ok.jsonl")
    append_records(path, [fake()])
    assert main([path, "--out", str(tmp_path / "r"), "--metrics", "tv,foo"]) == 2
    assert "no record has ['foo']" in capsys.readouterr().err


def _write_yaml(path, text):
    path.write_text(text)
    return str(path)


def test_yaml_duplicate_keys_are_refused_and_1e_3_is_a_number(tmp_path):
    dup = _write_yaml(tmp_path / "d.yaml", "envs: [hypergrid]\nalgos: [tb]\nseeds: 2\nseeds: 1\n")
    with pytest.raises(yaml.YAMLError, match="'seeds' is given twice"):
        load_config(dup)
    sci = _write_yaml(tmp_path / "s.yaml", "envs: [hypergrid]\nalgos: [tb]\ngrid: {lr: [1e-3]}\n")
    assert load_config(sci)["grid"]["lr"] == [0.001]


CONFIG = {
    "seeds": [0, 1],
    "iterations": 20,
    "eval_every": 10,
    "envs": [{"name": "hypergrid", "dim": 2, "side": 4}],
    "algos": ["tb"],
    "config": {"hidden": [16]},
}


def test_results_from_other_code_are_refused_unless_forced(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "s.jsonl")
    sweep = plan(copy.deepcopy(CONFIG), "s.yaml", out)
    cells = sweep.programs[0].cells
    append_records(out, [fake(seed=i, cell_id=c) for i, c in enumerate(cells)])
    assert set(check_resume(sweep)) == set(cells)  # same code: both cells are done
    monkeypatch.setattr(rec_mod, "code_version", lambda: "0123456789ab")
    import gfnjax.bench.sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "code_version", lambda: "0123456789ab")
    with pytest.raises(ValueError, match="computed by other gfnjax code"):
        check_resume(sweep)
    assert check_resume(sweep, force_rerun=True) == {}  # both are recomputed
    assert set(check_resume(sweep, allow_stale=True)) == set(cells)
    assert "--allow-stale" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad,needle",
    [
        ({"config": {}, "grid": {"hidden": [32, 64]}}, "tuple of positive layer widths"),
        ({"config": {"hidden": 32}}, "tuple of positive layer widths"),
        ({"check": {"wellness": 0.1}}, "check.wellness"),
        ({"check": {"tv": -1}}, "relative margin"),
        ({"metrics": {"exact": "no"}}, "exact must be True or False"),
        ({"grid": {"lr": [float("inf")]}}, "grid.lr"),
        ({"envs": [{"name": "hypergrid", "r0": 1e-40}]}, "smallest normal float32"),
    ],
)
def test_more_invalid_sweep_configs_fail_before_compiling(bad, needle):
    with pytest.raises(ValueError, match=needle):
        plan({**copy.deepcopy(CONFIG), **bad}, "bad.yaml")


def test_records_without_a_code_version_are_kept_with_a_warning(tmp_path, capsys):
    """Files written before records carried `code_version` resume as before (with a warning)."""
    out = str(tmp_path / "old.jsonl")
    sweep = plan(copy.deepcopy(CONFIG), "s.yaml", out)
    cells = sweep.programs[0].cells
    old = [fake(seed=i, cell_id=c) for i, c in enumerate(cells)]
    for r in old:
        del r["code_version"]
    append_records(out, old)
    assert set(check_resume(sweep)) == set(cells)
    assert "carry no code version" in capsys.readouterr().err
    assert check_resume(sweep, force_rerun=True) == {}
