"""Write a study's report from its committed results: `python experiments/report.py STUDY`.

For every results file of experiments/STUDY/results/*.jsonl: the harness report (mean ± std over
seeds of the final value and of the area under the curve, PNG curves against trajectories
sampled; gfnjax.bench.report), plus the study's own tables (e.g. the trajectory budget each method
needs to reach TV ≤ 0.1) and the provenance of the numbers (machines, commits, dates, budget, wall
time). Output: experiments/STUDY/report.md and experiments/STUDY/figures/*.png.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

import numpy as np

from gfnjax.bench import report as harness
from gfnjax.bench.records import mean_std

STUDIES = {
    # study -> (primary metric, threshold rows: (metric, threshold, "below" | "above"))
    "hypergrid": ("tv", [("tv", 0.1, "below"), ("tv", 0.2, "below"), ("tv", 0.5, "below")]),
    "bitseq": ("modes", [("modes", 5, "above"), ("pearson", 0.5, "above")]),
    "qm9str": ("tv", [("tv", 0.1, "below"), ("tv", 0.3, "below")]),
    "molecules": ("modes", [("modes", 100, "above"), ("top_k_reward", 300, "above")]),
    "ablations": ("tv", [("tv", 0.1, "below")]),
}


# trajectory counts at which the primary metric is tabulated (besides each run's final count)
BUDGETS = {
    "hypergrid": (20_000, 40_000, 100_000),
    "ablations": (8_000, 16_000),
    "bitseq": (8_000, 16_000),
    "qm9str": (10_000, 40_000, 100_000),
    "molecules": (2_400, 4_800),
}

# other metrics tabulated at the same trajectory counts
SECONDARY = {"bitseq": ("pearson",), "qm9str": ("pearson",), "molecules": ("top_k_reward",)}


def read(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"warning: {path}: skipped a line that is not JSON", file=sys.stderr)
    return out


def first_crossing(rec: dict, metric: str, threshold: float, side: str) -> float | None:
    """Trajectories sampled at the first evaluation where the metric crosses the threshold."""
    ys = rec["curves"].get(metric, [])
    xs = rec["curves"].get("trajectories", [])
    for x, y in zip(xs, ys):
        if y is None:
            continue
        if (side == "below" and y <= threshold) or (side == "above" and y >= threshold):
            return float(x)
    return None


def threshold_table(records: list[dict], metric: str, threshold: float, side: str) -> str:
    groups = harness.group_records(records)
    names = harness.labels(groups)
    sign = "≤" if side == "below" else "≥"
    rows = [
        f"| env | algo | seeds | trajectories to {metric} {sign} {threshold:g} (per seed) | "
        "median |",
        "|---|---|---|---|---|",
    ]
    for g, rs in groups.items():
        vals = [first_crossing(r, metric, threshold, side) for r in rs]
        reached = [v for v in vals if v is not None]
        shown = ", ".join("not reached" if v is None else f"{v:,.0f}" for v in vals)
        med = (
            f"{np.median(reached):,.0f}"
            if len(reached) == len(vals)
            else (
                f"≥ {max(reached):,.0f} ({len(reached)}/{len(vals)} reached)"
                if reached
                else "not reached"
            )
        )
        rows.append(f"| {names[g][0]} | {names[g][1]} | {len(rs)} | {shown} | {med} |")
    return "\n".join(rows)


def budget_table(records: list[dict], metric: str, budgets: list[int]) -> str:
    """The metric at fixed trajectory counts (mean ± sample std over seeds; – if not reached)."""
    groups = harness.group_records(records)
    names = harness.labels(groups)
    head = " | ".join(f"{metric} at {b:,} traj." for b in budgets)
    rows = [f"| env | algo | seeds | {head} |", "|---|---|---|" + "---|" * len(budgets)]
    for g, rs in groups.items():
        cells = []
        for b in budgets:
            vals = []
            for r in rs:
                xs, ys = r["curves"].get("trajectories", []), r["curves"].get(metric, [])
                vals += [y for x, y in zip(xs, ys) if int(x) == b and y is not None]
            mean, std, n = mean_std(vals)
            note = f" ({n}/{len(vals)} finite)" if n < len(vals) else ""
            cells.append(f"{mean:.3g} ± {std:.2g}{note}" if len(vals) == len(rs) else "–")
        rows.append(f"| {names[g][0]} | {names[g][1]} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def section_of(path: str) -> str:
    """A sweep split over files run side by side (`standard.jsonl`, `standard_b.jsonl`, ...) is
    reported as one section."""
    return re.sub(r"_[b-h]$", "", os.path.splitext(os.path.basename(path))[0])


def provenance(records: list[dict]) -> str:
    commits = sorted({r.get("git_commit", "?") for r in records})
    hosts = sorted(
        {
            f"{r.get('host', '?')} ({r.get('cpu_count', '?')} CPUs, {r.get('device', '?')})"
            for r in records
        }
    )
    # seeds of one compiled program share its wall time: count each program once
    programs = {
        (r.get("program"), round(r.get("wall_s", 0.0), 3)): r.get("wall_s", 0.0) for r in records
    }
    traj = sorted({int(r["final"].get("trajectories", 0)) for r in records})
    dates = sorted({r.get("date", "") for r in records} - {""})
    return (
        f"Machines: {', '.join(hosts)}. Commits: {', '.join(commits)}. "
        + (f"Dates: {', '.join(dates)}. " if dates else "")
        + f"Budgets (trajectories per run): {', '.join(f'{t:,}' for t in traj)}. "
        f"Training wall time, summed over compiled programs: {sum(programs.values()) / 60:.0f} min "
        f"for {len(records)} runs."
    )


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    study = argv[0]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), study)
    files = sorted(glob.glob(os.path.join(root, "results", "*.jsonl")))
    if not files:
        print(f"error: no results in {root}/results", file=sys.stderr)
        return 2
    primary, thresholds = STUDIES.get(study, ("tv", []))
    figures = os.path.join(root, "figures")
    lines = [
        f"# Study report: {study}",
        "",
        "Generated by `python experiments/report.py " + study + "` from the committed "
        "results in `results/`; the sweep configs are the YAML files beside this report.",
        "",
    ]
    sections: dict[str, list[dict]] = {}
    for path in files:
        sections.setdefault(section_of(path), []).extend(read(path))
    for name, records in sections.items():
        if not records:
            continue
        out_dir = os.path.join(figures, name)
        os.makedirs(out_dir, exist_ok=True)
        pngs = harness.plot_curves(records, out_dir)
        lines += [f"## {name}", "", provenance(records), "", harness.results_table(records), ""]
        finals = {int(r["final"].get("trajectories", 0)) for r in records}
        budgets = sorted({b for b in BUDGETS.get(study, ()) if b <= max(finals)} | finals - {0})
        for metric in (primary,) + SECONDARY.get(study, ()):
            if any(metric in r["curves"] for r in records):
                lines += [budget_table(records, metric, budgets), ""]
        for metric, thr, side in thresholds:
            if any(metric in r["curves"] for r in records):
                lines += [threshold_table(records, metric, thr, side), ""]
        lines += [
            f"![{os.path.basename(p)}](figures/{name}/{os.path.basename(p)})"
            for p in pngs
            if any(
                m in os.path.basename(p)
                for m in (primary, "modes", "pearson", "l1") + SECONDARY.get(study, ())
            )
        ]
        lines.append("")
    path = os.path.join(root, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
