"""`python -m gfnjax.bench ci [--update]`: CI regression benchmarks (`make bench-ci`).

Runs every sweep config in `benchmarks/ci/*.yaml` from scratch (results/ci/<name>.jsonl is
overwritten, never resumed: the point is to measure the current code) and compares each run
group (env × algo × config, over seeds) with the committed baseline records
`benchmarks/ci/baselines/<name>.jsonl` on the metrics listed in the config's `check:` mapping
(metric -> relative margin r, a fraction of the baseline's mean). With n seeds, means μ and the
baseline's sample std s_b:

    regression  ⇔  (μ_now − μ_base)·sign > r·|μ_base| + k·s_b·√(1/n_base + 1/n_now)

with k = 3 (`--k`), sign = +1 for lower-is-better metrics (TV, L1, KL, |log Z error|, EUBO) and
−1 for higher-is-better ones (ELBO, correlations, modes, ...); a checked metric of unknown
direction is a config error. Both terms scale with the metric: r·|μ_base| is a stated fraction of
the baseline (no absolute margin larger than the metric itself), and the second is 3 standard
errors of a difference of two means when the current seeds spread like the baseline's. The
baseline's spread is used on purpose: a regression usually also widens the spread (TV ×6 scales
the std by 6), which with the current std in the formula would hide it.

Beyond the threshold, a group fails when any of its seeds diverged (`DIVERGED`), when a checked
metric is missing or non-finite for some seed (`NAN k/n`: a NaN seed is a failure, never a
smaller n), or when it is absent from the results or from the baseline (`MISSING`, `NO BASELINE`).
Improvements are reported, never failed. Timings are printed next to the baseline's, never
asserted. The calibration (the regressions of the reliability review fail, four other seed sets of
the same configs pass) is tests/test_ci_check.py. `--update` (`make bench-ci-update`) copies the
fresh results over the baselines.
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

from gfnjax.bench.records import mean_std, read_records, unique_records, warn
from gfnjax.bench.run import diverged
from gfnjax.bench.sweep import check_directions
from gfnjax.metrics.registry import direction

__all__ = ["check_directions", "compare", "main"]

DEFAULT_K = 3.0
FAILED = ("REGRESSION", "MISSING", "NO BASELINE", "DIVERGED", "NAN")


@dataclasses.dataclass
class Finding:
    group: str  # program label + swept values
    metric: str
    baseline: tuple[float, float, int]  # mean, std, n (finite values)
    current: tuple[float, float, int]
    tolerance: float  # r·|μ_base| + k·s_b·√(1/n_b + 1/n_c)
    status: str  # "ok", "better", or one of FAILED
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILED


def ci_groups(records: list[dict]) -> dict[str, list[dict]]:
    """Run groups keyed by what the CI config file says (program label, swept values, iterations),
    not by the resolved configs, so a new config field with a default elsewhere in the code does
    not orphan the baselines, while a changed config (another schedule) does. One record per
    cell (duplicates are counted once)."""
    groups: dict[str, list[dict]] = {}
    for r in unique_records(records, on_duplicate=None):
        hp = r.get("hparams") or {}
        name = (
            (r["program"] if "program" in r else f"{r['env']}/{r['algo']}")
            + "".join(f" {k}={v:g}" for k, v in sorted(hp.items()))
            + (f" it={r['iterations']}" if "iterations" in r else "")
        )
        groups.setdefault(name, []).append(r)
    return groups


def _values(rs: list[dict], metric: str) -> np.ndarray:
    return np.array(
        [np.nan if r["final"].get(metric) is None else r["final"][metric] for r in rs], float
    )


def compare(
    current: list[dict], baseline: list[dict], check: dict[str, float], k: float = DEFAULT_K
) -> list[Finding]:
    """Compare final metrics of every run group in `current` with the same group in `baseline`
    (`check`: metric -> relative margin r; see the module docstring for the rule)."""
    check_directions(check)
    cur_groups, base_groups = ci_groups(current), ci_groups(baseline)
    findings = []
    nan3 = (math.nan, math.nan, 0)
    for name in sorted(set(cur_groups) | set(base_groups)):
        cur, base = cur_groups.get(name, []), base_groups.get(name, [])
        n_div = sum(diverged(r) for r in cur)
        for metric, rel in check.items():
            vb, vc = _values(base, metric), _values(cur, metric)
            sb, sc = mean_std(vb), mean_std(vc)
            if not cur:
                findings.append(Finding(name, metric, sb, nan3, math.nan, "MISSING", "no results"))
                continue
            if not base:
                findings.append(
                    Finding(name, metric, nan3, sc, math.nan, "NO BASELINE", "make bench-ci-update")
                )
                continue
            if n_div:
                its = sorted({r.get("diverged_at") for r in cur if diverged(r)}, key=str)
                findings.append(
                    Finding(
                        name,
                        metric,
                        sb,
                        sc,
                        math.nan,
                        "DIVERGED",
                        f"{n_div}/{len(cur)} seeds diverged (iteration {', '.join(map(str, its))})",
                    )
                )
                continue
            if sc[2] < len(cur):
                findings.append(
                    Finding(
                        name,
                        metric,
                        sb,
                        sc,
                        math.nan,
                        "NAN",
                        f"{len(cur) - sc[2]}/{len(cur)} seeds have no finite {metric}",
                    )
                )
                continue
            if sb[2] == 0:
                findings.append(
                    Finding(name, metric, sb, sc, math.nan, "NO BASELINE", f"no finite {metric}")
                )
                continue
            (mc, _, nc), (mb, sdb, nb) = sc, sb
            tol = rel * abs(mb) + k * sdb * math.sqrt(1.0 / nb + 1.0 / nc)
            worse = (mc - mb) * (-1.0 if direction(metric) == "higher" else 1.0)
            status = "REGRESSION" if worse > tol else ("better" if worse < -tol else "ok")
            findings.append(Finding(name, metric, sb, sc, tol, status))
    return findings


def format_findings(findings: list[Finding]) -> str:
    rows = [
        "| run | metric | baseline mean ± std (n) | current mean ± std (n) | tolerance | status |",
        "|---|---|---|---|---|---|",
    ]
    for f in findings:
        b, c = f.baseline, f.current
        status = f.status + (f": {f.note}" if f.note else "")
        rows.append(
            f"| {f.group} | {f.metric} | {b[0]:.4g} ± {b[1]:.2g} ({b[2]}) | "
            f"{c[0]:.4g} ± {c[1]:.2g} ({c[2]}) | {f.tolerance:.3g} | {status} |"
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


class MissingBaseline(FileNotFoundError):
    pass


def check_files(
    results: str, baseline: str, check: dict[str, float], k: float = DEFAULT_K
) -> list[Finding]:
    """Compare two result files (the function `make bench-ci` ends with)."""
    if not os.path.exists(baseline):
        raise MissingBaseline(
            f"no baseline {baseline}; create it deliberately with `make bench-ci-update`"
        )
    return compare(read_records(results), read_records(baseline), check, k)


def verdict(counts: dict[str, int]) -> str:
    """'ok' or 'FAILED (2 regression(s), 1 missing baseline)' from failure counts by kind."""
    parts = [f"{n} {kind}" for kind, n in counts.items() if n]
    return "FAILED (" + ", ".join(parts) + ")" if parts else "ok"


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
    from gfnjax.bench.records import check_writable
    from gfnjax.bench.sweep import load_config, plan, run_sweep

    baselines = args.baselines or os.path.join(args.configs, "baselines")
    configs = sorted(glob.glob(os.path.join(args.configs, "*.yaml")))
    if not configs:
        print(f"error: no *.yaml configs in {args.configs}", file=sys.stderr)
        return 2
    try:  # validate every config and the output paths before training anything
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
            if not sweep.check and not args.update:
                raise ValueError(f"{sweep.source}: no `check:` metrics to compare")
            if not args.no_run:
                check_writable(sweep.out, "CI results file")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {"regression(s)": 0, "diverged": 0, "NaN": 0, "missing": 0, "missing baseline": 0}
    kind = {
        "REGRESSION": "regression(s)",
        "DIVERGED": "diverged",
        "NAN": "NaN",
        "MISSING": "missing",
        "NO BASELINE": "missing baseline",
    }
    for sweep in sweeps:
        base_path = os.path.join(baselines, os.path.basename(sweep.out))
        if not args.no_run:
            if os.path.exists(sweep.out):
                os.remove(sweep.out)  # a CI run measures the current code: never resume
            run_sweep(sweep, quiet=args.quiet, checkpoint_every=None)
        current = read_records(sweep.out)
        print(f"\n## {sweep.name} ({sweep.source})\n")
        if args.update:
            os.makedirs(baselines, exist_ok=True)
            shutil.copyfile(sweep.out, base_path)
            print(f"baseline updated: {base_path} ({len(current)} records)")
            continue
        try:
            findings = check_files(sweep.out, base_path, sweep.check, args.k)
        except MissingBaseline as e:
            warn(str(e))
            print(f"MISSING BASELINE: {base_path}")
            counts["missing baseline"] += 1
            continue
        print(format_findings(findings))
        print("\ntimings (printed, never asserted):\n")
        print(format_timings(current, read_records(base_path)))
        seen = set()
        for f in findings:  # a regression counts per metric, other failures per run group
            key = (f.status, f.group, f.metric if f.status == "REGRESSION" else "")
            if f.failed and key not in seen:
                seen.add(key)
                counts[kind[f.status]] += 1
    result = verdict(counts)
    print("\nbench-ci: " + result)
    return 0 if result == "ok" else 1
