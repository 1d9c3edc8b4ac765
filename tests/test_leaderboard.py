"""The leaderboard (`make bench` without arguments) on a tiny configuration: ranked table (mean ±
sample std of the primary metric over seeds, best first) and the report files it prints."""

from __future__ import annotations

import os

import numpy as np
import yaml

from gfnjax.bench import leaderboard
from gfnjax.bench.cli import main
from gfnjax.bench.records import read_records
from gfnjax.bench.sweep import plan

TINY = {
    "name": "tiny-leaderboard",
    "seeds": 2,
    "iterations": 30,
    "eval_every": 10,
    "envs": [{"name": "hypergrid", "dim": 2, "side": 4}],
    "algos": ["tb", "db"],
    "config": {"hidden": [16]},
    "metrics": {"eval_batch_size": 16, "l1_window": 500},
}


def test_tiny_leaderboard_ranks_methods_and_writes_the_report(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = str(tmp_path / "lb.jsonl")
    assert main(["leaderboard", "--config", str(cfg), "--out", out]) == 0
    captured = capsys.readouterr()
    records = read_records(out)
    assert len(records) == 4

    # independent computation of the ranking: mean final TV per method, ascending (lower = better)
    tv = {a: [r["final"]["tv"] for r in records if r["algo"] == a] for a in ("tb", "db")}
    order = sorted(tv, key=lambda a: np.mean(tv[a]))
    rows = [x for x in captured.out.splitlines() if x.startswith("| 1 |") or x.startswith("| 2 |")]
    assert [x.split("|")[2].strip() for x in rows] == order
    for x, algo in zip(rows, order):
        v = np.array(tv[algo])
        assert f"{v.mean():.4g} ± {v.std(ddof=1):.2g}" in x, x  # mean ± sample std
        assert leaderboard.FAMILIES[algo] in x
    start = records[0]["curves"]["tv"][0]  # the uniform initial policy's TV, same for both
    assert f"| {start:.4g} |" in rows[0]

    report_dir = str(tmp_path / "lb")
    md = os.path.join(report_dir, "report.md")
    png = os.path.join(report_dir, "hypergrid_tv.png")
    assert f"report: {md}" in captured.out and f"curves: {png}" in captured.out
    text = open(md).read()
    assert rows[0] in text and "](hypergrid_tv.png)" in text
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "ETA" in captured.err and "2/2 methods done" in captured.err

    # a rerun finds every cell done: nothing is recomputed, the same table is printed
    assert main(["leaderboard", "--config", str(cfg), "--out", out, "--quiet"]) == 0
    assert len(read_records(out)) == 4 and rows[0] in capsys.readouterr().out


def test_default_leaderboard_config_is_valid_and_spans_the_three_families():
    sweep = plan(leaderboard.DEFAULT, "leaderboard")
    algos = [p.spec.algo for p in sweep.programs]
    assert {leaderboard.FAMILIES[a] for a in algos} == {
        "flow objective",
        "soft RL",
        "policy gradient",
    }
    assert all(len(p.seeds) >= 2 for p in sweep.programs)
