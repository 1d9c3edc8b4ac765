"""The CI regression check has teeth and tolerates seed noise (gfnjax/bench/ci.py).

Data: tests/data/ci_seed_noise.jsonl, the final metrics of the CI configurations
(benchmarks/ci/*.yaml: hypergrid 8×8, TB with ε = 0.05 and 0.1, DB, SubTB; 2,000 iterations)
trained with 16 seeds each — four disjoint sets of 4 seeds, i.e. four independent CI runs.
Produced by running those configs with `seeds: 16` (docs/harness.md "CI regression benchmarks").

- Seed noise passes: every set compared with every other set as its baseline is `ok`/`better`.
- The regressions of the reliability review fail against every baseline set: TV ×6, log-Z
  error ×8, L1 ×2.5 (applied to an independent seed set, so noise is included), 3 of 4 seeds NaN,
  a diverged seed, a missing group or baseline.
"""

from __future__ import annotations

import copy
import itertools
import json
import os

import pytest

from gfnjax.bench import ci

DATA = os.path.join(os.path.dirname(__file__), "data", "ci_seed_noise.jsonl")
CHECKS = {  # the margins of benchmarks/ci/*.yaml
    "tb": {"tv": 0.5, "log_z_error": 1.0, "l1": 0.3},
    "db": {"tv": 0.5, "l1": 0.3},
    "subtb": {"tv": 0.5, "l1": 0.3},
}
REGRESSIONS = {"tv": 6.0, "log_z_error": 8.0, "l1": 2.5}


def _groups() -> dict[tuple, dict[int, dict]]:
    out: dict[tuple, dict[int, dict]] = {}
    with open(DATA) as f:
        for line in f:
            r = json.loads(line)
            out.setdefault((r["algo"], json.dumps(r["hparams"])), {})[r["seed"]] = r
    return out


GROUPS = _groups()
SETS = [range(0, 4), range(4, 8), range(8, 12), range(12, 16)]


def seed_set(group, i, scale=None):
    """Seed set i of a group, relabelled seeds 0..3 (as one CI run); metrics times `scale`."""
    out = []
    for j, s in enumerate(SETS[i]):
        r = copy.deepcopy(GROUPS[group][s])
        r["seed"] = j
        for m, f in (scale or {}).items():
            r["final"][m] *= f
        out.append(r)
    return out


def test_data_are_four_independent_ci_runs_per_group():
    assert len(GROUPS) == 4 and all(sorted(g) == list(range(16)) for g in GROUPS.values())


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_seed_noise_passes(group):
    check = CHECKS[group[0]]
    for b, c in itertools.permutations(range(4), 2):
        findings = ci.compare(seed_set(group, c), seed_set(group, b), check)
        assert [f.status for f in findings if f.failed] == [], (group, b, c, findings)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_review_regressions_fail(group):
    check = CHECKS[group[0]]
    for b, c in itertools.permutations(range(4), 2):
        for metric, factor in REGRESSIONS.items():
            if metric not in check:
                continue
            worse = seed_set(group, c, {metric: factor})
            (f,) = ci.compare(worse, seed_set(group, b), {metric: check[metric]})
            assert f.status == "REGRESSION", (group, b, c, metric, f)


def test_nan_seeds_diverged_seeds_and_missing_groups_fail():
    group = sorted(GROUPS)[0]
    base = seed_set(group, 0)
    nan3 = seed_set(group, 1)
    for r in nan3[1:]:  # 3 of 4 seeds NaN (stored as null)
        r["final"]["tv"] = None
    (f,) = ci.compare(nan3, base, {"tv": 0.5})
    assert (f.status, f.note) == ("NAN", "3/4 seeds have no finite tv")
    div = seed_set(group, 1)
    div[2].update(status="diverged", diverged_at=1234)
    (f,) = ci.compare(div, base, {"tv": 0.5})
    assert f.status == "DIVERGED" and "1/4 seeds diverged (iteration 1234)" in f.note
    assert [f.status for f in ci.compare([], base, {"tv": 0.5})] == ["MISSING"]
    assert [f.status for f in ci.compare(base, [], {"tv": 0.5})] == ["NO BASELINE"]
    assert all(f.failed for f in ci.compare([], base, {"tv": 0.5}))


def test_missing_baseline_file_is_reported_as_such(tmp_path, capsys):
    import yaml

    from gfnjax.bench.records import append_records

    (tmp_path / "configs").mkdir()
    cfg = {
        "seeds": 1,
        "iterations": 10,
        "envs": [{"name": "hypergrid", "dim": 2, "side": 4}],
        "algos": ["tb"],
        "check": {"tv": 0.5},
    }
    (tmp_path / "configs" / "x.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "results").mkdir()
    append_records(str(tmp_path / "results" / "x.jsonl"), seed_set(sorted(GROUPS)[0], 0))
    argv = ["--configs", str(tmp_path / "configs"), "--results", str(tmp_path / "results")]
    assert ci.main(argv + ["--no-run"]) == 1
    out = capsys.readouterr()
    assert "MISSING BASELINE" in out.out and "bench-ci: FAILED (1 missing baseline)" in out.out
    assert "regression" not in out.out.split("bench-ci:")[1]
