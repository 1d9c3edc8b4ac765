"""`python -m gfnjax.bench --env ENV --algo ALGO --seeds N --iterations N [--set key=value ...]`.

Trains N seeds as one vmapped, jitted program (chunked into evaluation periods so progress can
be printed), writes one JSON line per seed and prints a mean ± std summary table.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gfnjax import algos, envs
from gfnjax.metrics import MetricsConfig
from gfnjax.metrics.registry import progress_metrics, summary_metrics
from gfnjax.trainer import default_seed_batch, for_rows, make_trainer, map_rows

DEFAULT_ITERATIONS = 2000
DEFAULT_EVAL_EVERY = 250


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_overrides(env_name: str, algo_name: str, sets: list[str]) -> tuple[dict, dict, dict]:
    """Route `key=value` pairs to the env ("env.key" or an env field), the metrics ("metrics.key")
    or the algorithm config; unknown keys raise ValueError naming every valid key."""
    env_keys = set(envs.env_fields(env_name))
    algo_keys = set(algos.config_fields(algo_name))
    metric_keys = {f.name for f in dataclasses.fields(MetricsConfig)}
    env_kw, algo_kw, metric_kw = {}, {}, {}
    for item in sets:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key, value = key.strip(), parse_value(value.strip())
        if isinstance(value, list):
            value = tuple(value)
        if key.startswith("env."):
            key = key[4:]
            if key not in env_keys:
                raise ValueError(
                    f"unknown --set key 'env.{key}'; {env_name} options: {sorted(env_keys)}"
                )
            env_kw[key] = value
        elif key.startswith("metrics."):
            key = key[8:]
            if key not in metric_keys:
                raise ValueError(
                    f"unknown --set key 'metrics.{key}'; metrics options: {sorted(metric_keys)}"
                )
            metric_kw[key] = value
        elif key in algo_keys:
            algo_kw[key] = value
        elif key in env_keys:
            env_kw[key] = value
        else:
            raise ValueError(
                f"unknown --set key {key!r}; {algo_name} config fields: {sorted(algo_keys)}; "
                f"{env_name} options: {sorted(env_keys)}; metrics options: "
                f"{sorted('metrics.' + k for k in metric_keys)}"
            )
    return env_kw, algo_kw, metric_kw


def git_commit() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=os.path.dirname(os.path.abspath(__file__)),
            ).stdout.strip()
            or "unknown"
        )
    except Exception:  # noqa: BLE001 - provenance only
        return "unknown"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.ndarray, jax.Array)):
        return _jsonable(np.asarray(x).tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclasses.dataclass
class RunSpec:
    env: str
    algo: str
    seeds: list[int]
    iterations: int
    eval_every: int
    env_kw: dict
    algo_kw: dict
    metric_kw: dict
    preset: str = "auto"


def build(spec: RunSpec):
    """Validate everything and build env, algorithm and trainer (no compilation)."""
    env = envs.make(spec.env, **spec.env_kw)
    algo = algos.make(spec.algo, env, preset=spec.preset, **spec.algo_kw)
    trainer = make_trainer(
        algo, spec.iterations, spec.eval_every, metrics_config=MetricsConfig(**spec.metric_kw)
    )
    return env, algo, trainer


AXIS = "cells"  # the one mesh axis: flattened seed (× hyperparameter grid) rows


def device_mesh(devices: list | None = None) -> Mesh | None:
    """A 1-D mesh over every visible device (global devices after `jax.distributed.initialize()`),
    or None when there is only one device (then nothing is sharded)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,)) if len(devices) > 1 else None


def _pad_rows(x: np.ndarray, n_pad: int) -> np.ndarray:
    """Repeat row 0 `n_pad` times so the row count divides the device count (pads are dropped)."""
    return np.concatenate([x, np.repeat(x[:1], n_pad, axis=0)]) if n_pad else x


def _place(x: np.ndarray, mesh: Mesh | None, batched: bool) -> jax.Array:
    """Put a host array on device: rows sharded over the mesh (NamedSharding) or replicated.
    `make_array_from_callback` builds a global array, so the same code runs under jax.distributed
    (every process computes the same host array and supplies its own shards)."""
    if mesh is None:
        return jnp.asarray(x)
    sharding = NamedSharding(mesh, P(AXIS) if batched else P())
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def _to_host(x: jax.Array) -> np.ndarray:
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _batched(fn, in_axes: tuple, mesh: Mesh | None, seed_batch: int | None = None):
    """jit(vmap(fn)) (or lax.map over rows, see `gfnjax.trainer.map_rows`); with a mesh, each device
    runs it on its own rows (shard_map), so no collective is ever needed (rows are independent
    runs) and each row's numbers equal the unsharded ones."""
    fn = map_rows(fn, in_axes, seed_batch)
    if mesh is None:
        return jax.jit(fn)
    in_specs = tuple(P(AXIS) if a == 0 else P() for a in in_axes)
    # check_vma=False: the library's scans start from replicated constants (zeros) that become
    # per-row values; every output is per-row anyway (out_specs=P(AXIS)).
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(AXIS), check_vma=False)
    )


def train_rows(
    trainer,
    seeds: list[int],
    hparams: dict | None = None,
    hparams_batched: bool = False,
    mesh: Mesh | None = None,
    chunk: int = 1,
    log=None,
    label: str = "",
    seed_batch: int | None = None,
) -> tuple[dict, dict]:
    """Train one row per seed as one compiled program (vmapped, sharded over `mesh` if given).

    hparams: None, a dict of scalars shared by every row, or (hparams_batched) a dict of
    float[R] arrays, one value per row — a flattened seed × hyperparameter grid.
    Returns curves {name: float[R, num_evals + 1]} (host numpy) and timings
    {compile_s, first_eval_s, wall_s}. Progress is printed after every `chunk` evaluation periods.
    """
    log = log or (lambda *a: None)
    n = len(seeds)
    n_dev = 1 if mesh is None else mesh.size
    n_pad = (-n) % n_dev
    keys = _place(
        _pad_rows(np.stack([np.asarray(jax.random.PRNGKey(s)) for s in seeds]), n_pad), mesh, True
    )
    if hparams is not None:
        hparams = {k: np.asarray(v, np.float32) for k, v in hparams.items()}
        if hparams_batched:
            bad = {k: v.shape for k, v in hparams.items() if v.shape != (n,)}
            if bad:
                raise ValueError(
                    f"batched hparams must have shape ({n},) (one value per seed row), got {bad}"
                )
            hparams = {k: _pad_rows(v, n_pad) for k, v in hparams.items()}
        hparams = {k: _place(v, mesh, hparams_batched) for k, v in hparams.items()}
    full = trainer.num_evals - (1 if trainer.last_period != trainer.eval_every else 0)

    t0 = time.perf_counter()
    init = (
        _batched(trainer.init, (0, 0 if hparams_batched else None), mesh, seed_batch)
        .lower(keys, hparams)
        .compile()
    )
    carry = init(keys, hparams)
    first_eval = _batched(trainer.evaluate, (0,), mesh, seed_batch).lower(carry).compile()
    programs = {}

    def program(k, length):
        if (k, length) not in programs:
            fn = lambda c: trainer.run(c, k, length)
            programs[k, length] = _batched(fn, (0,), mesh, seed_batch).lower(carry).compile()
        return programs[k, length]

    program(min(chunk, full), trainer.eval_every) if full else program(1, trainer.last_period)
    compile_s = time.perf_counter() - t0
    shard_note = f", sharded over {n_dev} devices" if mesh is not None else ""
    log(
        f"[{label}] {n} seed(s){shard_note}, {trainer.num_iterations} iterations, "
        f"compiled in {compile_s:.1f}s"
    )

    host = lambda tree: jax.tree.map(lambda x: _to_host(x)[:n], tree)
    t1 = time.perf_counter()
    carry, first = first_eval(carry)
    jax.block_until_ready(carry)
    eval_s = time.perf_counter() - t1
    pieces = [jax.tree.map(lambda x: x[:, None], host(first))]
    done = 0
    t_run = time.perf_counter()
    shown_metrics = progress_metrics()
    while done < trainer.num_evals:
        if done < full:
            k = min(chunk, full - done)
            carry, curves = program(k, trainer.eval_every)(carry)
        else:
            k = 1
            carry, curves = program(1, trainer.last_period)(carry)
        curves = host(curves)
        pieces.append(curves)
        done += k
        latest = {name: float(np.mean(v[:, -1])) for name, v in curves.items()}
        shown = " ".join(f"{m}={latest[m]:.4g}" for m in shown_metrics if m in latest)
        elapsed = time.perf_counter() - t_run
        eta = elapsed / done * (trainer.num_evals - done)
        log(
            f"  it {int(latest['iteration'])}/{trainer.num_iterations}  "
            f"traj {int(latest['trajectories'])}  {shown}"
            f"  [{elapsed:.1f}s, ETA {eta:.0f}s]"
        )
    run_s = time.perf_counter() - t_run
    names = sorted(pieces[-1])
    curves = {}
    for name in names:
        cols = [p[name] if name in p else np.full((n, 1), np.nan) for p in pieces]
        curves[name] = np.concatenate(cols, axis=1)
    return curves, {"compile_s": compile_s, "first_eval_s": eval_s, "wall_s": run_s}


def run(
    spec: RunSpec,
    out_path: str | None,
    chunk: int = 1,
    quiet: bool = False,
    hparams: dict | None = None,
    hparams_batched: bool = False,
    mesh: Mesh | None | str = "auto",
    seed_batch: int | None | str = "auto",
) -> list[dict]:
    """Train every seed of `spec` as one program; return (and append to out_path) one record per
    seed.

    With `hparams_batched`, row i trains seed `spec.seeds[i]` with hparams value `[i]` (seeds may
    repeat: a flattened seed × grid). mesh="auto" shards the rows over every visible device when
    there are several (`device_mesh`); None never shards. seed_batch: rows vmapped together
    (None = all; "auto" = `gfnjax.trainer.default_seed_batch()`, 1 on CPU; see `map_rows`).
    """
    env, algo, trainer = build(spec)
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    mesh = device_mesh() if mesh == "auto" else mesh
    seed_batch = default_seed_batch() if seed_batch == "auto" else seed_batch
    if len(spec.seeds) > 1:  # vmapped rows run padded passes (gfnjax.trainer.for_rows)
        trainer = dataclasses.replace(trainer, algo=for_rows(algo, seed_batch))
    curves, timing = train_rows(
        trainer,
        spec.seeds,
        hparams,
        hparams_batched,
        mesh,
        chunk,
        log,
        label=f"{spec.env}/{spec.algo}",
        seed_batch=seed_batch,
    )
    run_s = timing["wall_s"]
    iters = spec.iterations * len(spec.seeds)
    transitions = float(curves["transitions"][:, -1].sum())
    algo_config = _jsonable(dataclasses.asdict(algo.config))
    base = {
        "env": spec.env,
        "algo": spec.algo,
        "env_config": _jsonable(dataclasses.asdict(env)),
        "algo_config": algo_config,
        "preset": algo.preset.as_record(),
        "metrics_config": spec.metric_kw,
        "iterations": spec.iterations,
        "eval_every": spec.eval_every,
        "num_seeds": len(spec.seeds),
        "seed_batch": seed_batch,
        "hparams": _jsonable(hparams) if hparams and not hparams_batched else None,
        "git_commit": git_commit(),
        "jax_version": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "num_devices": jax.device_count(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "compile_s": timing["compile_s"],
        "wall_s": run_s,
        "first_eval_s": timing["first_eval_s"],
        "iterations_per_s": iters / run_s,
        "transitions_per_s": transitions / run_s,
        "trajectories_per_s": float(curves["trajectories"][:, -1].sum()) / run_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    records = []
    for i, seed in enumerate(spec.seeds):
        rec = dict(base, seed=seed, curves={k: _jsonable(v[i]) for k, v in curves.items()})
        if hparams and hparams_batched:
            row = {k: float(np.asarray(v)[i]) for k, v in hparams.items()}
            rec["hparams"] = row
            rec["algo_config"] = dict(algo_config, **row)  # the effective config of this row
        rec["final"] = {k: _jsonable(float(v[i, -1])) for k, v in curves.items()}
        records.append(rec)
    if out_path:
        append_records(out_path, records)
    return records


def append_records(path: str, records: list[dict]) -> None:
    """Append JSON lines with a single write + fsync so a killed run never leaves half a line.
    If a previous writer died mid-line anyway, start on a fresh line (readers skip the torn one)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = "\n" + data
        f.write(data.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_records(path: str) -> list[dict]:
    """Every complete JSON line of a results file (a torn last line from a kill is skipped)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


SUMMARY_KEYS = tuple(summary_metrics())


def show_config(spec: RunSpec, env, algo, trainer) -> str:
    """Human-readable resolved configuration of a run (what `--show-config` prints)."""
    preset = algo.preset
    lines = [
        f"env {spec.env}: {json.dumps(_jsonable(dataclasses.asdict(env)))}",
        f"algo {spec.algo}, preset {preset.name!r} — {preset.source}",
        f"  preset values: {json.dumps(_jsonable(preset.values))}",
        f"  your overrides: {json.dumps(_jsonable(spec.algo_kw))}",
        f"  resolved config: {json.dumps(_jsonable(dataclasses.asdict(algo.config)))}",
        f"metrics: {[type(m).__name__ for m in trainer.metrics]} {json.dumps(spec.metric_kw)}",
        f"schedule: {spec.iterations} iterations, evaluation every {trainer.eval_every}, "
        f"seeds {spec.seeds}",
    ]
    return "\n".join(lines)


def summary_table(records: list[dict]) -> str:
    if not records:
        return "(no records)"
    keys = [k for k in SUMMARY_KEYS if k in records[0]["final"]]
    head = "| env | algo | seeds | " + " | ".join(keys) + " | it/s | transitions/s | compile s |"
    sep = "|" + "---|" * (len(keys) + 6)
    rows = [head, sep]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["env"], r["algo"]), []).append(r)
    for (env, algo), rs in groups.items():
        cells = []
        for k in keys:
            vals = np.array([r["final"][k] for r in rs if r["final"].get(k) is not None], float)
            cells.append(f"{vals.mean():.4g} ± {vals.std():.2g}" if len(vals) else "–")
        r0 = rs[0]
        rows.append(
            f"| {env} | {algo} | {len(rs)} | "
            + " | ".join(cells)
            + f" | {r0['iterations_per_s']:.1f} | {r0['transitions_per_s']:.0f} | "
            f"{r0['compile_s']:.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gfnjax.bench", description=__doc__)
    p.add_argument("--env", default="hypergrid", help=f"one of {sorted(envs.REGISTRY)}")
    p.add_argument("--algo", default="tb", help=f"one of {sorted(algos.REGISTRY)}")
    p.add_argument("--seeds", type=int, default=4, help="number of seeds (0..N-1), vmapped")
    p.add_argument("--seed-offset", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--chunk", type=int, default=1, help="evaluation periods per compiled chunk")
    p.add_argument(
        "--seed-batch",
        type=int,
        default=None,
        help="seeds vmapped together inside the one program (0 = all; default: 1 on CPU, "
        "where sequential rows are faster, all on accelerators)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algo config field, env option (env.KEY) or metrics option (metrics.KEY)",
    )
    p.add_argument("--out", default="results/runs.jsonl", help="JSON-lines file to append to")
    p.add_argument(
        "--preset",
        default="auto",
        help="published settings to start from: auto (this env × algo's default), "
        "defaults (config defaults only) or a preset name (docs/presets.md)",
    )
    p.add_argument(
        "--show-config",
        action="store_true",
        help="print the resolved configuration (preset, its source, overrides) and exit",
    )
    args = p.parse_args(argv)
    try:
        envs.get_class(args.env)
        algos.get_class(args.algo)
        if args.seeds < 1:
            raise ValueError(f"--seeds must be ≥ 1, got {args.seeds}")
        if args.seed_batch is not None and args.seed_batch < 0:
            raise ValueError(
                f"--seed-batch must be ≥ 0 (0 = vmap every seed), got {args.seed_batch}"
            )
        for flag, value in (("--iterations", args.iterations), ("--eval-every", args.eval_every)):
            if value is not None and value < 1:
                raise ValueError(f"{flag} must be ≥ 1, got {value}")
        if args.chunk < 1:
            raise ValueError(
                f"--chunk must be ≥ 1 (evaluation periods per compiled chunk), got {args.chunk}"
            )
        env_kw, algo_kw, metric_kw = split_overrides(args.env, args.algo, args.set)
        defaults = envs.get_class(args.env).bench_defaults
        iterations = args.iterations or defaults.get("iterations", DEFAULT_ITERATIONS)
        eval_every = args.eval_every or min(
            defaults.get("eval_every", DEFAULT_EVAL_EVERY), iterations
        )
        spec = RunSpec(
            args.env,
            args.algo,
            list(range(args.seed_offset, args.seed_offset + args.seeds)),
            iterations,
            eval_every,
            env_kw,
            algo_kw,
            metric_kw,
            args.preset,
        )
        env, algo, trainer = build(spec)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.show_config:
        print(show_config(spec, env, algo, trainer))
        return 0
    seed_batch = "auto" if args.seed_batch is None else (args.seed_batch or None)
    records = run(spec, args.out, chunk=args.chunk, seed_batch=seed_batch)
    print(summary_table(records))
    print(f"\nrecords appended to {args.out}", file=sys.stderr)
    return 0
