"""`python -m gfnjax.bench leaderboard` (`make bench`): a small built-in leaderboard.

Several training methods from the three families — flow objectives, soft RL, policy gradients —
train on the same task with the same budget, over several seeds, as one sweep (gfnjax.bench.sweep:
resumable, checkpointed, one compiled program per method). It prints progress with an ETA, ends
with a table ranked by the primary metric (the first of PRIMARY the results have: the exact TV on
enumerable environments; mean ± sample std over seeds, the value before training for reference)
and writes a report (markdown + PNG curves, gfnjax.bench.report) whose path it prints.

The default (DEFAULT below) was chosen by measurement on a 2-core CPU: hypergrid 8^4 with the
standard reward (4,096 states, exact metrics), where the leaders clearly learn within about two
minutes of training (README "Quick start" gives the numbers). `--config FILE` runs any sweep file
as a leaderboard instead.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np
import yaml

from gfnjax.bench.records import check_writable, mean_std, warn
from gfnjax.bench.run import add_reliability_args, diverged, reliability_options
from gfnjax.metrics.registry import direction
from gfnjax.metrics.registry import info as metric_info

FAMILIES = {
    **{a: "flow objective" for a in ("tb", "db", "subtb", "fm")},
    **{a: "soft RL" for a in ("soft_dqn", "mdqn")},
    **{
        a: "policy gradient"
        for a in ("vpg", "rtg", "v_baseline", "gae", "gae_subtb", "rl_u", "rl_b", "rl_g")
    },
    **{a: "policy gradient" for a in ("trpo", "ppo")},
}
PRIMARY = ("tv", "l1", "pearson", "top_k_reward", "elbo")
EXTRA = ("l1", "kl", "log_z_error", "elbo")

DEFAULT = {
    "name": "leaderboard",
    "seeds": 2,
    "iterations": 1000,
    "eval_every": 125,
    "envs": [{"name": "hypergrid", "dim": 4, "side": 8}],
    "algos": ["ppo", "mdqn", "subtb", "tb"],
    "metrics": {"eval_batch_size": 256, "l1_window": 16000},
}
# CPU seconds per method of the default (compile + training, measured: 147 s for the 4 methods on
# the 2-core VM), for the first ETA only; later ETAs come from the methods already run
FIRST_GUESS_S = 37.0


def primary_metric(records: list[dict]) -> str:
    have = {k for r in records for k, v in r["final"].items() if v is not None}
    for m in PRIMARY:
        if m in have:
            return m
    raise ValueError(f"no rankable metric in the results (looked for {list(PRIMARY)})")


def ranked(records: list[dict]) -> tuple[str, list[dict]]:
    """(primary metric, rows best first). A row per method (program label): mean ± std of the
    primary metric over its healthy seeds; methods with a diverged seed rank last."""
    metric = primary_metric(records)
    sign = -1.0 if direction(metric) == "higher" else 1.0
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get("program") or f"{r['env']} / {r['algo']}", []).append(r)
    rows = []
    for label, rs in groups.items():
        healthy = [r for r in rs if not diverged(r)]
        mean, std, n = mean_std([r["final"].get(metric) for r in healthy])
        start = mean_std([(r["curves"].get(metric) or [None])[0] for r in rs])[0]
        rows.append(
            {
                "label": label,
                "algo": rs[0]["algo"],
                "family": FAMILIES.get(rs[0]["algo"], "?"),
                "seeds": len(rs),
                "diverged": len(rs) - len(healthy),
                "mean": mean,
                "std": std,
                "n": n,
                "start": start,
                "extra": {m: mean_std([r["final"].get(m) for r in healthy]) for m in EXTRA},
                "trajectories": mean_std([r["final"].get("trajectories") for r in healthy])[0],
                "seconds": float(rs[0].get("compile_s", 0.0) + rs[0].get("wall_s", 0.0)),
            }
        )
    rows.sort(key=lambda x: (x["diverged"] > 0, np.isnan(x["mean"]), sign * x["mean"]))
    return metric, rows


def ranked_table(records: list[dict]) -> str:
    """Markdown table ranked by the primary metric (see `ranked`)."""
    metric, rows = ranked(records)
    extra = [m for m in EXTRA if m != metric and any(r["extra"][m][2] for r in rows)]
    head = (
        f"| rank | method | family | seeds | {metric} (mean ± std) | {metric} before training | "
        + "".join(f"{m} | " for m in extra)
        + "trajectories | seconds |"
    )
    out = [head, "|" + "---|" * (8 + len(extra))]
    for i, r in enumerate(rows, 1):
        if r["diverged"]:
            value = f"DIVERGED {r['diverged']}/{r['seeds']}"
        elif r["n"] == 0:
            value = "–"
        else:
            value = f"{r['mean']:.4g} ± {r['std']:.2g}"
            if r["n"] < r["seeds"]:
                value += f" ({r['n']}/{r['seeds']})"
        cells = "".join(
            f"{'–' if not r['extra'][m][2] else format(r['extra'][m][0], '.4g')} | " for m in extra
        )
        out.append(
            f"| {i} | {r['algo']} | {r['family']} | {r['seeds']} | {value} | "
            f"{r['start']:.4g} | {cells}{r['trajectories']:.0f} | {r['seconds']:.0f} |"
        )
    better = "lower" if direction(metric) == "lower" else "higher"
    return (
        "\n".join(out)
        + f"\n\nRanked by the final {metric} ({better} is better): {metric_info(metric).label}. "
        "Seconds = compile + training of the method's one program (all its seeds)."
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gfnjax.bench leaderboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=None, help="a sweep YAML to run instead of the default")
    p.add_argument("--out", default="results/leaderboard.jsonl", help="results file")
    p.add_argument(
        "--report", default=None, help="report folder (default: results file without .jsonl)"
    )
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument("--iterations", type=int, default=None, help="override the budget")
    p.add_argument("--quiet", action="store_true")
    add_reliability_args(p, sweep=True)
    args = p.parse_args(argv)
    from gfnjax.bench.report import render_report
    from gfnjax.bench.sweep import check_resume, load_config, plan, run_sweep

    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    try:
        raw = load_config(args.config) if args.config else copy.deepcopy(DEFAULT)
        for key, value in (("seeds", args.seeds), ("iterations", args.iterations)):
            if value is not None:
                if value < 1:
                    raise ValueError(f"--{key} must be ≥ 1, got {value}")
                raw[key] = value
                if key == "iterations":
                    raw["eval_every"] = max(1, value // 8)
        sweep = plan(raw, args.config or "leaderboard", args.out)
        options = reliability_options(args)
        report_dir = args.report or os.path.splitext(args.out)[0]
        check_writable(sweep.out, "--out")
        check_writable(os.path.join(report_dir, "report.md"), "--report")
        try:
            check_resume(sweep, quiet=True)
            force = args.force_rerun
        except ValueError:  # results of older code: a leaderboard simply recomputes them
            warn(f"{sweep.out} holds results of other gfnjax code: recomputing those methods")
            force = True
    except (ValueError, OSError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env_names = sorted({p.spec.env for p in sweep.programs})
    seeds = len(sweep.programs[0].seeds)
    log(
        f"leaderboard: {len(sweep.programs)} methods × {seeds} seeds on "
        f"{', '.join(p.label.split(' / ')[0] for p in sweep.programs[:1])} "
        f"({sweep.programs[0].spec.iterations} iterations each); results in {sweep.out}"
    )
    t0 = time.perf_counter()
    total = len(sweep.programs)

    def progress(cells_done, cells_total, seconds):
        done = round(total * cells_done / max(cells_total, 1))
        eta = seconds / max(cells_done, 1) * (cells_total - cells_done)
        log(
            f"[leaderboard] {done}/{total} methods done in {seconds:.0f}s, "
            f"ETA {eta:.0f}s for the rest"
        )

    log(
        f"[leaderboard] first estimate: about {FIRST_GUESS_S * total:.0f}s on an idle 2-core CPU "
        "(longer on a busy one); the ETA is updated after each method"
    )
    try:
        records = run_sweep(
            sweep, quiet=args.quiet, force_rerun=force, on_progress=progress, **options
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = ranked_table(records)
    path = render_report(
        records,
        report_dir,
        sweep.out,
        title="gfnjax leaderboard",
        preamble=[f"## Ranked ({', '.join(env_names)})", "", table, ""],
    )
    print(table)
    metric = primary_metric(records)
    png = [f for f in sorted(os.listdir(report_dir)) if f.endswith(f"_{metric}.png")]
    print(f"\nreport: {path}", end="")
    print(f"\ncurves: {os.path.join(report_dir, png[0])}" if png else "")
    log(f"leaderboard finished in {time.perf_counter() - t0:.0f}s")
    return 0
