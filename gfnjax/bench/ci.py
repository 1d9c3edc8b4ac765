"""`python -m gfnjax.bench ci [--update]`: CI regression benchmarks (`make bench-ci`).

Runs every sweep config in `benchmarks/ci/*.yaml` from scratch (results/ci/<name>.jsonl is
overwritten, never resumed: the point is to measure the current code) and compares each run
group (env × algo × config, over seeds) with the committed baseline records
`benchmarks/ci/baselines/<name>.jsonl` on the metrics listed in the config's `check:` mapping
(metric -> absolute margin δ). With n seeds, means μ and sample std s, SE = s/√n:

    regression  ⇔  (μ_current − μ_baseline)·sign > k·√(SE_baseline² + SE_current²) + δ

with k = 3 (`--k`), sign = +1 for lower-is-better metrics (TV, L1, KL, |log Z error|, EUBO) and
−1 for higher-is-better ones (ELBO, correlations, modes, top-k reward, validity, ...); a checked
metric of unknown direction is a config error. The combined standard
error is that of the difference of the two means, so a different but equally good draw of seeds
(another CPU, another JAX) passes and a real loss of quality beyond δ fails. Improvements are
reported, never failed. Timings are printed next to the baseline's, never asserted.
`--update` (`make bench-ci-update`) copies the fresh results over the baselines.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import math
import os
import shutil
import sys

import numpy as np

from gfnjax.bench.report import mean_std
from gfnjax.bench.run import read_records
from gfnjax.metrics.registry import METRICS, direction


def check_directions(check: dict[str, float], source: str = "") -> None:
    """Every checked metric must have a known direction (better = lower or higher)."""
    for m in check:
        if direction(m) not in ("lower", "higher"):
            known = sorted(k for k, v in METRICS.items() if v.direction != "none")
            raise ValueError(
                f"sweep config {source}: check.{m}: no known direction for this metric; metrics "
                f"with a direction: {known} (gfnjax/metrics/registry.py)"
            )


DEFAULT_K = 3.0


@dataclasses.dataclass
class Finding:
    group: str  # program label + swept values
    metric: str
    baseline: tuple[float, float, int]  # mean, std, n
    current: tuple[float, float, int]
    tolerance: float  # k·SE_diff + margin
    status: str  # "ok", "better", "REGRESSION", "MISSING"

    @property
    def failed(self) -> bool:
        return self.status in ("REGRESSION", "MISSING")


def ci_groups(records: list[dict]) -> dict[str, list[dict]]:
    """Run groups keyed by what the CI config file says (program label, swept values, iterations),
    not by the resolved configs, so a new config field with a default elsewhere in the code does
    not orphan the baselines, while a changed config (another schedule) does."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        hp = r.get("hparams") or {}
        name = (
            (r["program"] if "program" in r else f"{r['env']}/{r['algo']}")
            + "".join(f" {k}={v:g}" for k, v in sorted(hp.items()))
            + (f" it={r['iterations']}" if "iterations" in r else "")
        )
        groups.setdefault(name, []).append(r)
    return groups


def compare(
    current: list[dict], baseline: list[dict], check: dict[str, float], k: float = DEFAULT_K
) -> list[Finding]:
    """Compare final metrics of every run group in `current` with the same group in `baseline`."""
    check_directions(check)
    cur_groups, base_groups = ci_groups(current), ci_groups(baseline)
    findings = []
    for name in sorted(set(cur_groups) | set(base_groups)):
        for metric, margin in check.items():
            vals = {}
            for side, groups in (("current", cur_groups), ("baseline", base_groups)):
                rs = groups.get(name, [])
                v = np.array(
                    [np.nan if r["final"].get(metric) is None else r["final"][metric] for r in rs],
                    float,
                )
                vals[side] = mean_std(v)
            (mc, sc, nc), (mb, sb, nb) = vals["current"], vals["baseline"]
            if nc == 0 or nb == 0:
                findings.append(
                    Finding(name, metric, vals["baseline"], vals["current"], math.nan, "MISSING")
                )
                continue
            se = math.sqrt(sb**2 / nb + sc**2 / nc)
            tol = k * se + margin
            worse = (mc - mb) * (-1.0 if direction(metric) == "higher" else 1.0)
            status = "REGRESSION" if worse > tol else ("better" if worse < -tol else "ok")
            findings.append(Finding(name, metric, vals["baseline"], vals["current"], tol, status))
    return findings


def format_findings(findings: list[Finding]) -> str:
    rows = [
        "| run | metric | baseline mean ± std (n) | current mean ± std (n) | tolerance | status |",
        "|---|---|---|---|---|---|",
    ]
    for f in findings:
        b, c = f.baseline, f.current
        rows.append(
            f"| {f.group} | {f.metric} | {b[0]:.4g} ± {b[1]:.2g} ({b[2]}) | "
            f"{c[0]:.4g} ± {c[1]:.2g} ({c[2]}) | {f.tolerance:.3g} | {f.status} |"
        )
    return "\n".join(rows)


def format_timings(current: list[dict], baseline: list[dict]) -> str:
    """Per program: compile and run seconds and trajectories/s, now and in the baseline
    (printed only)."""

    def per_program(records):
        out = {}
        for r in records:
            out.setdefault(r.get("program", r["algo"]), r)
        return out

    cur, base = per_program(current), per_program(baseline)
    rows = [
        "| program | compile s (baseline) | run s (baseline) | trajectories/s (baseline) |",
        "|---|---|---|---|",
    ]
    for name, r in cur.items():
        b = base.get(name, {})
        rows.append(
            f"| {name} | {r['compile_s']:.1f} ({b.get('compile_s', math.nan):.1f}) | "
            f"{r['wall_s']:.1f} ({b.get('wall_s', math.nan):.1f}) | "
            f"{r['trajectories_per_s']:.0f} ({b.get('trajectories_per_s', math.nan):.0f}) |"
        )
    return "\n".join(rows)


def check_files(
    results: str, baseline: str, check: dict[str, float], k: float = DEFAULT_K
) -> list[Finding]:
    """Compare two result files (the function `make bench-ci` ends with)."""
    if not os.path.exists(baseline):
        raise FileNotFoundError(
            f"no baseline {baseline}; create it deliberately with `make bench-ci-update`"
        )
    return compare(read_records(results), read_records(baseline), check, k)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gfnjax.bench ci",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--configs", default="benchmarks/ci", help="folder of CI sweep configs (*.yaml)")
    p.add_argument("--baselines", default=None, help="baseline folder (default CONFIGS/baselines)")
    p.add_argument("--results", default="results/ci", help="where fresh results are written")
    p.add_argument("--k", type=float, default=DEFAULT_K, help="standard errors of tolerance")
    p.add_argument("--update", action="store_true", help="run, then overwrite the baselines")
    p.add_argument(
        "--no-run", action="store_true", help="compare existing results only (no training)"
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from gfnjax.bench.sweep import load_config, plan, run_sweep

    baselines = args.baselines or os.path.join(args.configs, "baselines")
    configs = sorted(glob.glob(os.path.join(args.configs, "*.yaml")))
    if not configs:
        print(f"error: no *.yaml configs in {args.configs}", file=sys.stderr)
        return 2
    try:  # validate every config before training anything
        sweeps = [
            plan(
                load_config(c),
                c,
                os.path.join(args.results, f"{os.path.splitext(os.path.basename(c))[0]}.jsonl"),
            )
            for c in configs
        ]
        for sweep in sweeps:
            check_directions(sweep.check, sweep.source)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = False
    for sweep in sweeps:
        base_path = os.path.join(baselines, os.path.basename(sweep.out))
        if not sweep.check and not args.update:
            print(f"error: {sweep.source}: no `check:` metrics to compare", file=sys.stderr)
            return 2
        if not args.no_run:
            if os.path.exists(sweep.out):
                os.remove(sweep.out)  # a CI run measures the current code: never resume
            run_sweep(sweep, quiet=args.quiet)
        current = read_records(sweep.out)
        print(f"\n## {sweep.name} ({sweep.source})\n")
        if args.update:
            os.makedirs(baselines, exist_ok=True)
            shutil.copyfile(sweep.out, base_path)
            print(f"baseline updated: {base_path} ({len(current)} records)")
            continue
        try:
            findings = check_files(sweep.out, base_path, sweep.check, args.k)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
            continue
        print(format_findings(findings))
        print("\ntimings (printed, never asserted):\n")
        print(format_timings(current, read_records(base_path)))
        failed |= any(f.failed for f in findings)
    print("\nbench-ci: " + ("FAILED (quality regression beyond tolerance)" if failed else "ok"))
    return 1 if failed else 0
