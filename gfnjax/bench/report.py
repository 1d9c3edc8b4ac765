"""`python -m gfnjax.bench report RESULTS [RESULTS ...] [--out DIR]`: markdown tables + PNG plots.

Records (JSON lines from `bench` / `bench sweep`) are grouped into runs that differ only in the
seed: same env and env config, algo and effective algo config (grid values merged), metrics
config and schedule. For each group and metric:

  final = the metric's last evaluation;
  AUC   = normalised area under the curve against trajectories sampled,
          (1 / (T_last − T_first)) ∫ metric dT (trapezoid over the finite evaluation points),
          i.e. the metric averaged over training (same units as the metric; lower TV-AUC = faster).

Tables show mean ± sample std (ddof=1) over seeds. Plots (one PNG per env × metric) show the
mean curve against trajectories sampled with a ±1 std band over seeds (clipped at 0 for
metrics that cannot be negative).

Diverged seeds (status "diverged": a non-finite loss or parameter) are never averaged in and never
dropped silently: the `status` column says `DIVERGED k/n (it …)`, and a mean over fewer seeds than
the group has is marked `(k/n)`. Records of one cell written twice are counted once (the newest);
a group lacking a metric (fm has no log Z, molecules have no exact TV) shows `–`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np

from gfnjax.bench.records import CELL_KEYS, load_results, mean_std
from gfnjax.bench.run import SUMMARY_KEYS, diverged, status_cell
from gfnjax.metrics.registry import info as metric_info

TIMING_KEYS = ("compile_s", "wall_s", "trajectories_per_s")


def group_key(rec: dict) -> str:
    """Everything that identifies a run except the seed (and provenance / timings)."""
    return json.dumps({k: rec.get(k) for k in CELL_KEYS if k != "seed"}, sort_keys=True)


def group_records(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(group_key(r), []).append(r)
    return groups


def _varying(dicts: list[dict]) -> list[str]:
    keys = sorted({k for d in dicts for k in d})
    return [k for k in keys if len({json.dumps(d.get(k), sort_keys=True) for d in dicts}) > 1]


def labels(groups: dict[str, list[dict]]) -> dict[str, tuple[str, str]]:
    """(env label, algo label) per group: the name plus only the options that vary in the
    results."""
    heads = {g: rs[0] for g, rs in groups.items()}
    out = {}
    for g, r in heads.items():
        same_env = [h.get("env_config") or {} for h in heads.values() if h["env"] == r["env"]]
        same_algo = [h.get("algo_config") or {} for h in heads.values() if h["algo"] == r["algo"]]
        env_keys = _varying(same_env)
        algo_keys = _varying(same_algo)
        env_label = r["env"] + "".join(
            f" {k}={_fmt_value((r.get('env_config') or {}).get(k))}" for k in env_keys
        )
        algo_label = r["algo"] + "".join(
            f" {k}={_fmt_value((r.get('algo_config') or {}).get(k))}" for k in algo_keys
        )
        if r.get("iterations") and len({h.get("iterations") for h in heads.values()}) > 1:
            algo_label += f" it={r['iterations']}"
        out[g] = (env_label, algo_label)
    return out


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "x".join(str(x) for x in v)
    return str(v)


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Normalised trapezoid area of y against x over the finite points; NaN if < 2 points."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or x[-1] <= x[0]:
        return float("nan")
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) / (x[-1] - x[0]))


def _curve(rec: dict, key: str) -> np.ndarray:
    return np.array(
        [np.nan if v is None else v for v in (rec.get("curves") or {}).get(key) or []], float
    )


def _auc_of(rec: dict, metric: str) -> float:
    x, y = _curve(rec, "trajectories"), _curve(rec, metric)
    if len(x) != len(y) or not len(y):  # the record has no curve of this metric
        return float("nan")
    return auc(x, y)


def group_stats(rs: list[dict], metric: str) -> dict[str, np.ndarray]:
    """Per-seed final and AUC values of one metric (NaN where missing; diverged seeds NaN)."""
    final = np.array(
        [
            np.nan if diverged(r) or r["final"].get(metric) is None else r["final"][metric]
            for r in rs
        ],
        float,
    )
    areas = np.array([np.nan if diverged(r) else _auc_of(r, metric) for r in rs], float)
    return {"final": final, "auc": areas}


def _cell(v: np.ndarray, n_runs: int | None = None) -> str:
    m, s, n = mean_std(v)
    if n == 0:
        return "–"
    note = f" ({n}/{n_runs})" if n_runs is not None and n < n_runs else ""
    return f"{m:.4g} ± {s:.2g}{note}"


def metrics_present(records: list[dict], metrics: list[str] | None = None) -> list[str]:
    have = {k for r in records for k in r.get("final", {}) if r["final"][k] is not None}
    wanted = metrics or list(SUMMARY_KEYS)
    return [k for k in wanted if k in have]


def check_metrics(records: list[dict], metrics: list[str] | None) -> None:
    """ValueError naming the unknown names when `metrics` asks for something no record has."""
    if not metrics:
        return
    have = sorted({k for r in records for k in r.get("final", {})})
    unknown = [m for m in metrics if m not in have]
    if unknown:
        raise ValueError(f"--metrics: no record has {unknown}; metrics in these results: {have}")


def results_table(records: list[dict], metrics: list[str] | None = None) -> str:
    """Markdown: final-value table, AUC table and timing table (mean ± std over seeds)."""
    if not records:
        return "(no records)"
    groups = group_records(records)
    names = labels(groups)
    keys = metrics_present(records, metrics)
    stats = {g: {k: group_stats(rs, k) for k in keys} for g, rs in groups.items()}
    out = []
    for kind, title in (
        ("final", "Final value"),
        ("auc", "Area under the curve vs trajectories (normalised)"),
    ):
        out += [
            f"**{title}** (mean ± std over seeds)",
            "",
            "| env | algo | seeds | status | " + " | ".join(keys) + " |",
            "|" + "---|" * (len(keys) + 4),
        ]
        for g, rs in groups.items():
            env_label, algo_label = names[g]
            out.append(
                f"| {env_label} | {algo_label} | {len(rs)} | {status_cell(rs)} | "
                + " | ".join(_cell(stats[g][k][kind], len(rs)) for k in keys)
                + " |"
            )
        out.append("")
    out += [
        "**Timing** (per compiled program; seeds × grid points share one program)",
        "",
        "| env | algo | seeds | trajectories | compile s | wall s | trajectories/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for g, rs in groups.items():
        env_label, algo_label = names[g]
        t = {k: _nanmean([r.get(k) for r in rs]) for k in TIMING_KEYS}
        traj = _nanmean([r["final"].get("trajectories") for r in rs])
        out.append(
            f"| {env_label} | {algo_label} | {len(rs)} | {traj:.0f} | {t['compile_s']:.1f} | "
            f"{t['wall_s']:.1f} | {t['trajectories_per_s']:.0f} |"
        )
    return "\n".join(out)


def _nanmean(values: list) -> float:
    v = np.array([np.nan if x is None else x for x in values], float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9=.-]+", "_", text).strip("_")


def plot_curves(records: list[dict], out_dir: str, metrics: list[str] | None = None) -> list[str]:
    """One PNG per env (label) × metric: mean over seeds vs trajectories, ±1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_records(records)
    names = labels(groups)
    by_env: dict[str, list[str]] = {}
    for g in groups:
        by_env.setdefault(names[g][0], []).append(g)
    paths = []
    for env_label, gs in by_env.items():
        for metric in metrics_present([r for g in gs for r in groups[g]], metrics):
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            for g in gs:
                rs = [r for r in groups[g] if not diverged(r) and len(_curve(r, metric))]
                n_div = sum(diverged(r) for r in groups[g])
                if not rs:
                    continue
                ys = [_curve(r, metric) for r in rs]
                xs = [_curve(r, "trajectories") for r in rs]
                n = min(len(y) for y in ys)
                y = np.stack([v[:n] for v in ys])
                x = np.nanmean(np.stack([v[:n] for v in xs]), axis=0)
                ok = np.isfinite(y).all(axis=0)
                if ok.sum() < 1:
                    continue
                mean = y[:, ok].mean(axis=0)
                std = y[:, ok].std(axis=0, ddof=1) if len(rs) > 1 else np.zeros_like(mean)
                note = f", {n_div} diverged not shown" if n_div else ""
                (line,) = ax.plot(
                    x[ok], mean, marker="o", ms=3, label=f"{names[g][1]} ({len(rs)} seeds{note})"
                )
                lo = mean - std
                if metric_info(metric).nonnegative:  # a band below 0 would show impossible values
                    lo = np.maximum(lo, 0.0)
                ax.fill_between(x[ok], lo, mean + std, alpha=0.2, color=line.get_color())
            ax.set_xlabel("trajectories sampled")
            ax.set_ylabel(metric)
            ax.set_title(f"{env_label}: {metric}\n{metric_info(metric).label}", fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="mean ± 1 std over seeds", title_fontsize=7)
            fig.tight_layout()
            path = os.path.join(out_dir, f"{_slug(env_label)}_{metric}.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def write_report(paths: list[str], out_dir: str, metrics: list[str] | None = None) -> str:
    """Read result files, write `out_dir/report.md` (tables + embedded plots); return its path."""
    records = load_results(paths)
    if not records:
        raise ValueError(f"no records in {paths} (every line was empty or skipped)")
    return render_report(records, out_dir, ", ".join(paths), metrics)


def render_report(
    records: list[dict],
    out_dir: str,
    source: str,
    metrics: list[str] | None = None,
    title: str = "gfnjax benchmark report",
    preamble: list[str] | None = None,
) -> str:
    """Write `out_dir/report.md` and the PNGs for `records` (one per cell); return its path."""
    check_metrics(records, metrics)
    os.makedirs(out_dir, exist_ok=True)
    pngs = plot_curves(records, out_dir, metrics)
    commits = sorted({r.get("git_commit", "?") for r in records})
    devices = sorted({f"{r.get('device', '?')} ×{r.get('num_devices', 1)}" for r in records})
    lines = [
        f"# {title}",
        "",
        f"Results: {source} ({len(records)} records). Commits: {', '.join(commits)}. "
        f"JAX {', '.join(sorted({r.get('jax_version', '?') for r in records}))}. "
        f"Devices: {', '.join(devices)}.",
        "",
        *(preamble or []),
        "Final = last evaluation; AUC = (1/(T_last − T_first)) ∫ metric dT over trajectories "
        "sampled (trapezoid). Mean ± sample std over the seeds that did not diverge (`(k/n)`: "
        "only k of the n seeds have a value). TV is the exact total variation "
        "½Σ|P_T − π|; l1 is Tiapkin et al.'s empirical mean_x|π̂ − π| (= 2·TV/|X|, not TV).",
        "",
        results_table(records, metrics),
        "",
        "## Curves (mean ± 1 std over seeds vs trajectories sampled)",
        "",
    ]
    lines += [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in pngs]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gfnjax.bench report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", nargs="+", help="JSON-lines result files")
    p.add_argument("--out", default="results/report", help="output folder (report.md + PNGs)")
    p.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated metrics (default: {','.join(SUMMARY_KEYS)})",
    )
    args = p.parse_args(argv)
    metrics = args.metrics.split(",") if args.metrics else None
    try:
        path = write_report(args.results, args.out, metrics)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0
