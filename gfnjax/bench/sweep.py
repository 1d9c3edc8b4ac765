"""`python -m gfnjax.bench sweep CONFIG [--out RESULTS]`: env × algo × static config × grid × seeds.

A sweep config is a YAML file (schema: docs/harness.md, example: benchmarks/example_sweep.yaml):

    name: hypergrid-lr           # label stored in every record (default: the file's stem)
    out: results/sweep.jsonl     # results file (default results/<name>.jsonl; --out overrides)
    seeds: 4                     # N -> seeds 0..N-1, or an explicit list [0, 5, 7]
    iterations: 2000             # default: the env's bench_defaults, else 2000
    eval_every: 250              # default: the env's bench_defaults, else 250
    chunk: 1                     # evaluation periods per compiled chunk (progress granularity)
    envs: [hypergrid, {name: hypergrid, dim: 2, side: 8}]   # names or {name, option: value}
    algos: [tb, {name: subtb, lam: 0.9}]                     # names or {name, field: value}
    config: {hidden: [64, 64]}   # algo config fields applied to every algo that has them
    grid: {lr: [1e-3, 3e-3], batch_size: [16, 64]}           # cartesian product
    metrics: {eval_batch_size: 256}                          # MetricsConfig fields
    check: {tv: 0.5}             # CI only (gfnjax.bench.ci): metric -> margin (× baseline mean)

Grid keys in an algorithm's `Config.SWEEPABLE` (learning rates, ε, temperature, λ, ...) become a
vmapped axis: every grid point × every seed is one row of ONE compiled program per
env × algo × static config, sharded over the visible devices. Other grid keys (shapes: batch_size,
hidden, ...) are static and give one program per value. A grid key applies to every algo that has
that field and must belong to at least one.

Every cell (env, algo, effective config, seed) has a stable id: a hash of its resolved env config,
algo config with the grid values merged, metrics config, schedule and seed. Each program appends
its records (one JSON line per cell) in one atomic write when it finishes; a rerun skips cells
whose id is already in the results file, and a program in progress is checkpointed
(`--checkpoint-every`, default every 60 s) and resumed from its newest checkpoint, so an
interrupted sweep loses at most one checkpoint period. Records computed by other code (another
`code_version`) are not reused silently: the rerun stops before compiling unless `--force-rerun`
(recompute them) or `--allow-stale` (keep them). Everything is validated, and the results file
checked writable, before anything is compiled.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import re
import sys
from collections.abc import Callable

import jax
import numpy as np
import yaml

from gfnjax import algos, envs
from gfnjax.bench import checkpoint as ckpt
from gfnjax.bench.records import (
    append_records,
    cell_id,
    check_writable,
    code_version,
    jsonable,
    read_records,
    unique_records,
    warn,
)
from gfnjax.bench.run import (
    DEFAULT_EVAL_EVERY,
    DEFAULT_ITERATIONS,
    RunSpec,
    add_reliability_args,
    checkpoint_policy,
    device_mesh,
    diverged,
    reliability_options,
    run,
)
from gfnjax.metrics import MetricsConfig
from gfnjax.metrics.registry import METRICS, direction
from gfnjax.trainer import make_trainer

TOP_KEYS = (
    "name",
    "out",
    "seeds",
    "iterations",
    "eval_every",
    "chunk",
    "envs",
    "algos",
    "config",
    "grid",
    "metrics",
    "check",
)


@dataclasses.dataclass
class Program:
    """One compiled program: env × algo × static config; rows = grid points × seeds (flattened,
    grid-major). `cells[i]` is the id of row i; `hparams` holds float[R] per swept key (or None)."""

    spec: RunSpec
    seeds: list[int]
    hparams: dict[str, list[float]] | None
    cells: list[str]
    label: str


@dataclasses.dataclass
class Sweep:
    name: str
    out: str
    chunk: int
    programs: list[Program]
    check: dict[str, float]
    source: str

    @property
    def num_cells(self) -> int:
        return sum(len(p.cells) for p in self.programs)


def check_directions(check: dict[str, float], source: str = "") -> None:
    """Every checked metric must have a known direction (better = lower or higher)."""
    for m in check:
        if direction(m) not in ("lower", "higher"):
            known = sorted(k for k, v in METRICS.items() if v.direction != "none")
            raise ValueError(
                f"sweep config {source}: check.{m}: no known direction for this metric; metrics "
                f"with a direction: {known} (gfnjax/metrics/registry.py)"
            )


def _err(source: str, key: str, msg: str) -> ValueError:
    return ValueError(f"sweep config {source}: {key}: {msg}")


def _tuplify(v):
    return tuple(_tuplify(x) for x in v) if isinstance(v, list) else v


def _entries(raw, key: str, source: str) -> list[tuple[str, dict]]:
    """`envs` / `algos`: a name, or a list of names / {name: ..., option: value} mappings."""
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _err(
            source,
            key,
            f"must be a non-empty list of names or {{name: ..., option: value}}, got {raw!r}",
        )
    out = []
    for i, e in enumerate(raw):
        if isinstance(e, str):
            out.append((e, {}))
        elif isinstance(e, dict) and isinstance(e.get("name"), str):
            out.append((e["name"], {k: _tuplify(v) for k, v in e.items() if k != "name"}))
        else:
            raise _err(
                source, f"{key}[{i}]", f"must be a name or a mapping with a 'name' key, got {e!r}"
            )
    return out


def _why(e: Exception) -> str:
    """A TypeError from a wrong value type (e.g. hidden: 32) explains itself poorly."""
    if isinstance(e, TypeError) and "not iterable" in str(e):
        return f"{e} (a list such as [64, 64] is expected)"
    return str(e)


def _fmt(v) -> str:
    return (
        "x".join(map(str, v))
        if isinstance(v, tuple)
        else f"{v:g}"
        if isinstance(v, float)
        else str(v)
    )


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that (1) rejects a key given twice in one mapping (PyYAML silently
    keeps the last) and (2) reads `1e-3` as a float (YAML 1.1 needs `1.0e-3`; YAML 1.2 and every
    user expect a number)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} is given twice in one mapping (first on line {seen[key] + 1}); "
                "give it once",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        raw = yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(raw, dict):
        raise _err(path, "(top level)", "must be a mapping of keys to values")
    return raw


def plan(raw: dict, source: str = "<dict>", out: str | None = None) -> Sweep:
    """Validate a sweep config (a dict as loaded from YAML) and expand it into programs.

    Raises ValueError naming the offending key for anything invalid; builds env, algo, metrics
    configs and schedules but compiles nothing.
    """
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise _err(source, unknown[0], f"unknown key; valid keys: {list(TOP_KEYS)}")
    for k in ("envs", "algos"):
        if k not in raw:
            raise _err(source, k, "required key is missing")
    name = raw.get("name") or os.path.splitext(os.path.basename(source))[0]
    if not isinstance(name, str):
        raise _err(source, "name", f"must be a string, got {name!r}")
    out = out or raw.get("out") or os.path.join("results", f"{name}.jsonl")

    seeds = raw.get("seeds", 4)
    if isinstance(seeds, bool) or not (
        (isinstance(seeds, int) and seeds >= 1)
        or (
            isinstance(seeds, list)
            and seeds
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
            and len(set(seeds)) == len(seeds)
        )
    ):
        raise _err(
            source,
            "seeds",
            f"must be an integer ≥ 1 or a list of distinct integers ≥ 0, got {seeds!r}",
        )
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)

    def _int(key, default):
        v = raw.get(key, default)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise _err(source, key, f"must be an integer ≥ 1, got {v!r}")
        return v

    iterations, eval_every, chunk = (
        _int("iterations", None),
        _int("eval_every", None),
        _int("chunk", 1),
    )

    for key in ("config", "grid", "metrics", "check"):
        if not isinstance(raw.get(key, {}), dict):
            raise _err(source, key, f"must be a mapping, got {raw[key]!r}")
    common = {k: _tuplify(v) for k, v in raw.get("config", {}).items()}
    grid = raw.get("grid", {})
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise _err(source, f"grid.{k}", f"must be a non-empty list of values, got {v!r}")
    grid = {k: [_tuplify(x) for x in v] for k, v in grid.items()}
    check = raw.get("check", {})
    for k, v in check.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1e3:
            raise _err(
                source,
                f"check.{k}",
                f"must be a relative margin r ≥ 0 (a fraction of the baseline mean), got {v!r}",
            )
    check_directions(check, source)
    try:
        metrics_config = MetricsConfig(**raw.get("metrics", {}))
    except TypeError as e:
        valid = [f.name for f in dataclasses.fields(MetricsConfig)]
        raise _err(source, "metrics", f"{e}; valid keys: {valid}") from None
    except ValueError as e:
        raise _err(source, "metrics", str(e)) from None

    env_entries = _entries(raw["envs"], "envs", source)
    algo_entries = _entries(raw["algos"], "algos", source)
    all_fields = set()
    for i, (a, _) in enumerate(algo_entries):
        try:
            all_fields |= set(algos.config_fields(a))
        except ValueError as e:
            raise _err(source, f"algos[{i}]", str(e)) from None
    for k in list(common) + list(grid):
        if k not in all_fields:
            where = "config" if k in common else "grid"
            raise _err(
                source,
                f"{where}.{k}",
                f"not a config field of any algo in this sweep; valid: {sorted(all_fields)}",
            )
    for k in common:
        if k in grid:
            raise _err(source, f"grid.{k}", "also fixed in `config`; give it in one place")

    programs = []
    for ei, (env_name, env_kw) in enumerate(env_entries):
        try:
            env = envs.make(env_name, **env_kw)
        except (ValueError, TypeError) as e:
            raise _err(source, f"envs[{ei}]", str(e)) from None
        defaults = type(env).bench_defaults
        its = iterations or defaults.get("iterations", DEFAULT_ITERATIONS)
        ev = eval_every or min(defaults.get("eval_every", DEFAULT_EVAL_EVERY), its)
        env_config = dataclasses.asdict(env)
        for ai, (algo_name, algo_kw) in enumerate(algo_entries):
            fields = set(algos.config_fields(algo_name))
            sweepable = set(algos.get_class(algo_name).Config.sweepable_fields())
            base_kw = {k: v for k, v in common.items() if k in fields}
            for k in algo_kw:
                if k in grid:
                    raise _err(
                        source, f"algos[{ai}].{k}", "also swept in `grid`; give it in one place"
                    )
            base_kw.update(algo_kw)
            keys = [k for k in grid if k in fields]
            static = [k for k in keys if k not in sweepable]
            swept = [k for k in keys if k in sweepable]
            for static_vals in itertools.product(*(grid[k] for k in static)):
                kw = dict(base_kw, **dict(zip(static, static_vals)))
                where = f"algos[{ai}]" + "".join(
                    f", grid.{k}={v!r}" for k, v in zip(static, static_vals)
                )
                try:
                    algo = algos.make(algo_name, env, **kw)
                except (ValueError, TypeError) as e:
                    raise _err(source, where, _why(e)) from None
                try:
                    make_trainer(
                        algo, its, ev, metrics=()
                    )  # schedule checks only (no metrics built)
                except ValueError as e:
                    raise _err(source, "iterations/eval_every", str(e)) from None
                rows_seeds, rows_hp, cells = [], {k: [] for k in swept}, []
                for point in itertools.product(*(grid[k] for k in swept)):
                    hp = dict(zip(swept, point))
                    try:  # the config's own range checks, then the algorithm's (env-dependent)
                        effective = dataclasses.replace(algo.config, **hp)
                        type(algo)(env=env, config=effective, preset=algo.preset)
                    except (ValueError, TypeError) as e:
                        raise _err(source, "grid." + ",".join(swept), _why(e)) from None
                    for seed in seeds:
                        rows_seeds.append(seed)
                        for k in swept:
                            rows_hp[k].append(float(hp[k]))
                        cells.append(
                            cell_id(
                                {
                                    "env": env_name,
                                    "env_config": env_config,
                                    "algo": algo_name,
                                    "algo_config": dataclasses.asdict(effective),
                                    "metrics_config": dataclasses.asdict(metrics_config),
                                    "iterations": its,
                                    "eval_every": ev,
                                    "seed": seed,
                                }
                            )
                        )
                # the label says what the config file says (not resolved defaults): CI matches on it
                label = " ".join(
                    [
                        env_name,
                        *(f"{k}={_fmt(v)}" for k, v in env_kw.items()),
                        "/",
                        algo_name,
                        *(f"{k}={_fmt(v)}" for k, v in algo_kw.items()),
                        *(f"{k}={_fmt(v)}" for k, v in zip(static, static_vals)),
                    ]
                )
                spec = RunSpec(
                    env_name,
                    algo_name,
                    rows_seeds,
                    its,
                    ev,
                    env_kw,
                    kw,
                    dict(raw.get("metrics", {})),
                )
                programs.append(Program(spec, rows_seeds, rows_hp if swept else None, cells, label))
    all_cells = [c for p in programs for c in p.cells]
    if len(set(all_cells)) != len(all_cells):
        raise _err(
            source, "envs/algos/grid", "two cells are identical (a duplicated entry or value)"
        )
    return Sweep(name, out, chunk, programs, dict(check), source)


def _program_policy(sweep: Sweep, prog: Program, rows: list[int], options: dict, resume: bool):
    every = options.get("checkpoint_every")
    if every is None:
        return None
    root = options.get("checkpoint_dir") or (
        os.path.splitext(os.path.abspath(sweep.out))[0] + ".checkpoints"
    )
    return checkpoint_policy(
        prog.spec,
        [prog.cells[i] for i in rows],
        root,
        every,
        options.get("keep_checkpoints", 2),
        resume,
        sweep.chunk,
        options.get("seed_batch"),
        options.get("num_devices", 1),
    )


def stale_cells(sweep: Sweep, done: dict[str, dict]) -> list[dict]:
    """Records of this sweep's cells computed by other code (another, known code_version)."""
    mine = {c for p in sweep.programs for c in p.cells}
    now = code_version()
    return [
        r
        for c, r in done.items()
        if c in mine and r.get("code_version") is not None and r["code_version"] != now
    ]


def check_resume(
    sweep: Sweep, force_rerun: bool = False, allow_stale: bool = False, quiet: bool = False
) -> dict:
    """The finished cells to skip: {cell_id: newest record}. Raises ValueError (before anything is
    compiled) when some were computed by other code, unless `force_rerun` (they are recomputed)
    or `allow_stale` (they are kept, with a warning); records older than code versions are kept
    with a warning (recomputed with `force_rerun`). Stale checkpoints are refused the same way
    when their program runs."""
    say = (lambda msg: None) if quiet else warn
    records = read_records(sweep.out, on_skip=say)
    done = {r["cell_id"]: r for r in unique_records(records, say, sweep.out) if "cell_id" in r}
    stale = stale_cells(sweep, done)
    mine = {c for p in sweep.programs for c in p.cells}
    unknown = [r for c, r in done.items() if c in mine and r.get("code_version") is None]
    if unknown and not force_rerun and not quiet:  # written before records had a code version
        warn(
            f"{len(unknown)} finished cell(s) in {sweep.out} carry no code version (written "
            "before gfnjax recorded it): kept; --force-rerun recomputes them"
        )
    stale += unknown if force_rerun else []
    if stale and not (force_rerun or allow_stale):
        versions = sorted(
            {f"{r.get('code_version')} (git {r.get('git_commit', '?')})" for r in stale}
        )
        raise ValueError(
            f"{len(stale)} of the {sweep.num_cells} cells in {sweep.out} were computed by other "
            f"gfnjax code (code version {', '.join(versions)}; now {code_version()}). "
            "Rerun with --force-rerun to recompute them (readers keep the newest record of a "
            "cell) or --allow-stale to keep them"
        )
    if stale and allow_stale and not quiet:
        warn(f"keeping {len(stale)} cell(s) computed by other gfnjax code (--allow-stale)")
    if force_rerun:
        for r in stale:
            done.pop(r["cell_id"], None)
    return done


def run_sweep(
    sweep: Sweep,
    quiet: bool = False,
    mesh="auto",
    after_program: Callable[[Program, list[dict]], None] | None = None,
    force_rerun: bool = False,
    allow_stale: bool = False,
    checkpoint_every=60.0,
    checkpoint_dir: str | None = None,
    keep_checkpoints: int = 2,
    on_progress: Callable[[int, int, float], None] | None = None,
) -> list[dict]:
    """Run every program with unfinished cells, appending records as each finishes; return the
    records of the whole sweep (finished earlier or now), one per cell, in plan order.

    Finished cells are skipped (see `check_resume` for results from other code; with
    `force_rerun` the stale ones are recomputed); a program interrupted earlier continues from
    its newest checkpoint. `on_progress(cells_done, cells_total, seconds)` is called after every
    program (the leaderboard's ETA)."""
    import time

    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if jax.process_index() == 0:
        check_writable(sweep.out, "sweep results file")
    done = check_resume(sweep, force_rerun, allow_stale)
    mesh = device_mesh() if mesh == "auto" else mesh
    todo = [c for p in sweep.programs for c in p.cells if c not in done]
    log(
        f"sweep {sweep.name}: {len(sweep.programs)} program(s), {sweep.num_cells} cell(s), "
        f"{sweep.num_cells - len(todo)} already in {sweep.out}"
    )
    from gfnjax.trainer import default_seed_batch

    options = {
        "checkpoint_every": checkpoint_every,
        "checkpoint_dir": checkpoint_dir,
        "keep_checkpoints": keep_checkpoints,
        "seed_batch": default_seed_batch(),
        "num_devices": 1 if mesh is None else mesh.size,
    }
    t0, cells_run = time.perf_counter(), 0
    for pi, prog in enumerate(sweep.programs):
        rows = [i for i, c in enumerate(prog.cells) if c not in done]
        if not rows:
            log(f"[{pi + 1}/{len(sweep.programs)}] {prog.label}: done, skipped")
            continue
        log(f"[{pi + 1}/{len(sweep.programs)}] {prog.label}: {len(rows)} cell(s)")
        spec = dataclasses.replace(prog.spec, seeds=[prog.seeds[i] for i in rows])
        hp = (
            {k: np.asarray(v, np.float32)[rows] for k, v in prog.hparams.items()}
            if prog.hparams
            else None
        )
        policy = _program_policy(sweep, prog, rows, options, resume=not force_rerun)
        if policy is not None and force_rerun:
            ckpt.Manager(policy).delete_all()
        records = run(
            spec,
            None,
            chunk=sweep.chunk,
            quiet=quiet,
            hparams=hp,
            hparams_batched=hp is not None,
            mesh=mesh,
            cells=[prog.cells[i] for i in rows],
            policy=policy,
        )
        for i, rec in zip(rows, records):
            rec["sweep"] = sweep.name
            rec["cell_id"] = prog.cells[i]
            rec["program"] = prog.label
            if hp is not None:  # exact YAML values (not float32-rounded) for the record
                rec["hparams"] = jsonable({k: v[i] for k, v in prog.hparams.items()})
                rec["algo_config"].update(rec["hparams"])
        if jax.process_index() == 0:  # multi-host: one writer
            append_records(sweep.out, records)
        if policy is not None:
            ckpt.Manager(policy).delete_all()  # the records are written: no longer needed
        done.update((r["cell_id"], r) for r in records)
        cells_run += len(rows)
        if on_progress is not None:
            on_progress(cells_run, len(todo), time.perf_counter() - t0)
        if after_program is not None:
            after_program(prog, records)
    return [done[c] for p in sweep.programs for c in p.cells]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gfnjax.bench sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="sweep config (YAML), e.g. benchmarks/example_sweep.yaml")
    p.add_argument(
        "--out", default=None, help="results JSON-lines file (overrides the config's `out`)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="validate and list the programs, run nothing"
    )
    p.add_argument(
        "--allow-stale",
        action="store_true",
        help="keep finished cells computed by other gfnjax code (default: refuse)",
    )
    add_reliability_args(p, sweep=True)
    p.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (multi-host; see docs/harness.md); "
        "without the three options below JAX auto-detects SLURM / Open MPI / TPU pods",
    )
    p.add_argument("--coordinator", default=None, help="host:port of process 0 (multi-host)")
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--process-id", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.distributed:
        # before any computation; afterwards jax.devices() lists every host's devices
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    try:
        sweep = plan(load_config(args.config), args.config, args.out)
        options = reliability_options(args)
        if not args.dry_run:
            check_writable(sweep.out, "sweep results file")
    except (ValueError, OSError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for prog in sweep.programs:
            print(
                f"{prog.label}: {len(prog.cells)} cell(s)"
                + (f", vmapped grid over {sorted(prog.hparams)}" if prog.hparams else "")
            )
        return 0
    from gfnjax.bench.report import results_table

    try:
        records = run_sweep(
            sweep,
            quiet=args.quiet,
            force_rerun=args.force_rerun,
            allow_stale=args.allow_stale,
            **options,
        )
    except ValueError as e:  # a stale checkpoint, a program too large for this machine
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(results_table(records))
    print(f"\n{len(records)} record(s) in {sweep.out}", file=sys.stderr)
    n_div = sum(diverged(r) for r in records)
    if n_div:
        warn(f"{n_div} of {len(records)} cell(s) diverged (status 'diverged' in the records)")
        return 3
    return 0
