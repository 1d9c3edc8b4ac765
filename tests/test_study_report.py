"""experiments/report.py on real harness records (the CI baselines): one section per sweep even
when it is split over files, budget and threshold tables from the curves, provenance, figures."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "benchmarks" / "ci" / "baselines"


def load_report():
    spec = importlib.util.spec_from_file_location("study_report", ROOT / "experiments/report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_sweep_is_one_section_with_tables_from_the_curves(tmp_path, monkeypatch):
    report = load_report()
    study = tmp_path / "hypergrid"
    (study / "results").mkdir(parents=True)
    flow = BASELINES / "hypergrid_flow.jsonl"
    shutil.copy(flow, study / "results" / "flow.jsonl")
    shutil.copy(BASELINES / "hypergrid_tb.jsonl", study / "results" / "flow_b.jsonl")
    monkeypatch.setattr(report, "__file__", str(tmp_path / "report.py"))
    assert report.main(["hypergrid"]) == 0
    text = (study / "report.md").read_text()
    assert text.count("\n## ") == 1 and "## flow" in text  # flow + flow_b: one section
    assert "Commits:" in text and "Machines:" in text
    # the threshold table: the first evaluation where TV ≤ 0.5, per seed, read from the curves
    records = [json.loads(x) for x in flow.read_text().splitlines() if x.strip()]
    rec = records[0]
    tv, traj = rec["curves"]["tv"], rec["curves"]["trajectories"]
    first = next((x for x, y in zip(traj, tv) if y <= 0.5), None)
    assert report.first_crossing(rec, "tv", 0.5, "below") == first
    assert report.first_crossing(rec, "tv", -1.0, "below") is None
    # the budget table: mean over seeds of TV at the final trajectory count
    same = [r for r in records if r["algo"] == rec["algo"]]
    final = int(rec["final"]["trajectories"])
    table = report.budget_table(same, "tv", [final, final + 1])
    vals = [r["curves"]["tv"][r["curves"]["trajectories"].index(final)] for r in same]
    assert len(vals) > 1
    row = table.splitlines()[-1]
    # mean ± sample std (ddof 1), the convention of every table of the harness reports
    assert f"{np.mean(vals):.3g} ± {np.std(vals, ddof=1):.2g}" in row
    assert row.rstrip(" |").endswith("–")
    assert list((study / "figures" / "flow").glob("*.png"))
