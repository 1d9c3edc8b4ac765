"""`python -m gfnjax.bench --env ENV --algo ALGO --seeds N --iterations N [--set key=value ...]`.

Trains N seeds as one vmapped, jitted program (chunked into evaluation periods so progress can
be printed), writes one JSON line per seed and prints a mean ± std summary table.

Nothing is lost and nothing is silently wrong (docs/harness.md "Reliability"): every value is
validated and the output path checked before compiling; the compiled program's memory need is
compared with the machine's before it runs; the loop carry is checkpointed (orbax,
`--checkpoint-every`) so a killed run continues with `--resume` to the same curves; a seed whose
loss or parameters become non-finite is reported with its iteration and recorded as diverged
(the run stops when every seed has diverged).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
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
from gfnjax.bench import checkpoint as ckpt
from gfnjax.bench.interrupt import LAST_CHECKPOINT
from gfnjax.bench.records import (
    append_records,
    cell_id,
    check_writable,
    code_version,
    jsonable,
    mean_std,
    read_records,
)
from gfnjax.metrics import MetricsConfig
from gfnjax.metrics.registry import progress_metrics, summary_metrics
from gfnjax.trainer import default_seed_batch, for_rows, make_trainer, map_rows

__all__ = [  # re-exported for scripts written against the older layout
    "append_records",
    "read_records",
]

DEFAULT_ITERATIONS = 2000
DEFAULT_EVAL_EVERY = 250
DEFAULT_CHECKPOINT_EVERY = "60s"
_jsonable = jsonable


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_overrides(env_name: str, algo_name: str, sets: list[str]) -> tuple[dict, dict, dict]:
    """Route `key=value` pairs to the env ("env.key" or an env field), the metrics ("metrics.key")
    or the algorithm config; unknown keys (and a key given twice) raise ValueError naming every
    valid key."""
    env_keys = set(envs.env_fields(env_name))
    algo_keys = set(algos.config_fields(algo_name))
    metric_keys = {f.name for f in dataclasses.fields(MetricsConfig)}
    env_kw, algo_kw, metric_kw = {}, {}, {}
    seen: dict[str, str] = {}
    for item in sets:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key, value = key.strip(), parse_value(text.strip())
        if isinstance(value, list):
            value = tuple(value)
        if key.startswith("env."):
            key = key[4:]
            if key not in env_keys:
                raise ValueError(
                    f"unknown --set key 'env.{key}'; {env_name} options: {sorted(env_keys)}"
                )
            target, where = env_kw, f"env.{key}"
        elif key.startswith("metrics."):
            key = key[8:]
            if key not in metric_keys:
                raise ValueError(
                    f"unknown --set key 'metrics.{key}'; metrics options: {sorted(metric_keys)}"
                )
            target, where = metric_kw, f"metrics.{key}"
        elif key in algo_keys:
            target, where = algo_kw, key
        elif key in env_keys:
            target, where = env_kw, f"env.{key}"
        else:
            raise ValueError(
                f"unknown --set key {key!r}; {algo_name} config fields: {sorted(algo_keys)}; "
                f"{env_name} options: {sorted(env_keys)}; metrics options: "
                f"{sorted('metrics.' + k for k in metric_keys)}"
            )
        if where in seen:
            raise ValueError(
                f"--set {where} is given twice ({seen[where]!r} and {text.strip()!r}); give it once"
            )
        seen[where] = text.strip()
        target[key] = value
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


class ResourceError(ValueError):
    """The run needs more memory than the machine has (reported as bad input: exit 2)."""


def memory_limit_bytes() -> int | None:
    """Memory available to a program: the accelerator's limit, or the host's physical RAM."""
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        return stats.get("bytes_limit")
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _size_hint(trainer, rows: int) -> str:
    cfg = trainer.algo.config
    mc = [m for m in trainer.metrics if hasattr(m, "batch_size")]
    eval_bs = mc[0].batch_size if mc else None
    return (
        f"reduce batch_size ({cfg.batch_size})"
        + (f", metrics.eval_batch_size ({eval_bs})" if eval_bs else "")
        + f", the network (hidden={tuple(cfg.hidden)}), the environment size or the number of "
        f"rows run together ({rows} seed/grid rows; --seed-batch)"
    )


def check_memory(compiled, what: str, hint: str) -> None:
    """Refuse a compiled program whose peak memory (XLA's buffer assignment) exceeds the device's
    memory, before it runs (instead of RESOURCE_EXHAUSTED after minutes)."""
    limit = memory_limit_bytes()
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend reports it
        return
    if m is None or not limit:
        return
    # peak_memory_in_bytes can leave out the temporaries on CPU: take the larger of the two
    need = max(
        getattr(m, "peak_memory_in_bytes", 0) or 0,
        m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes,
    )
    if need > 0.9 * limit:
        raise ResourceError(
            f"the compiled {what} needs {need / 2**30:.1f} GiB of memory, more than this "
            f"machine's {limit / 2**30:.1f} GiB: {hint}"
        )


def _concat(pieces: list[dict], n: int) -> dict[str, np.ndarray]:
    """Join curve pieces {name: [n, k]} along the evaluation axis (NaN where a piece lacks a
    name, e.g. `train_*` before training)."""
    names = sorted({k for p in pieces for k in p})
    out = {}
    for name in names:
        cols = [
            p[name] if name in p else np.full((n, next(iter(p.values())).shape[1]), np.nan)
            for p in pieces
        ]
        out[name] = np.concatenate(cols, axis=1).astype(np.float32)
    return out


def _finite_mean(v: np.ndarray) -> float:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def row_label(seed: int, hparams: dict | None, i: int, batched: bool) -> str:
    hp = ""
    if hparams and batched:
        hp = " (" + ", ".join(f"{k}={float(np.asarray(v)[i]):g}" for k, v in hparams.items()) + ")"
    return f"seed {seed}{hp}"


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
    checkpoint: ckpt.Policy | None = None,
) -> tuple[dict, dict]:
    """Train one row per seed as one compiled program (vmapped, sharded over `mesh` if given).

    hparams: None, a dict of scalars shared by every row, or (hparams_batched) a dict of
    float[R] arrays, one value per row — a flattened seed × hyperparameter grid.
    Returns curves {name: float[R, num_evals + 1]} (host numpy) and info {compile_s,
    first_eval_s, wall_s, checkpoint_s, diverged_at: int[R] (−1 = healthy), stopped_at,
    resumed_from}. Progress is printed after every `chunk` evaluation periods. With `checkpoint`,
    the carry and the curves are saved at chunk boundaries (see gfnjax.bench.checkpoint) and, if
    `checkpoint.resume`, the run continues from the newest checkpoint.
    """
    log = log or (lambda *a: None)
    n = len(seeds)
    raw_hparams = hparams
    mngr = ckpt.Manager(checkpoint) if checkpoint is not None else None
    resume_step = None
    if mngr is not None:  # decide before compiling: a stale checkpoint is refused right away
        step = mngr.latest()
        if step is not None and checkpoint.resume:
            mngr.check(step)
            resume_step = step
        elif step is not None:
            log(
                f"[{label}] note: found a checkpoint of this exact run ({checkpoint.directory}, "
                f"{step} evaluation period(s) done); starting over as asked (pass --resume to "
                "continue from it: the curves would be identical)"
            )
            mngr.delete_all()
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
    hint = _size_hint(trainer, n)

    t0 = time.perf_counter()
    init = (
        _batched(trainer.init, (0, 0 if hparams_batched else None), mesh, seed_batch)
        .lower(keys, hparams)
        .compile()
    )
    check_memory(init, "initialisation", hint)
    carry = init(keys, hparams)
    first_eval = _batched(trainer.evaluate, (0,), mesh, seed_batch).lower(carry).compile()
    check_memory(first_eval, "evaluation", hint)
    programs = {}

    def program(k, length):
        if (k, length) not in programs:
            fn = lambda c: trainer.run(c, k, length)
            compiled = _batched(fn, (0,), mesh, seed_batch).lower(carry).compile()
            check_memory(compiled, "training loop", hint)
            programs[k, length] = compiled
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
    done = 0
    if resume_step is not None:
        carry, saved, meta = mngr.restore(resume_step, carry)
        done = int(meta["periods_done"])
        pieces = [saved]
        log(
            f"[{label}] resumed from checkpoint {checkpoint.directory}/{resume_step}: "
            f"{done}/{trainer.num_evals} evaluation periods already done"
        )
    else:
        carry, first = first_eval(carry)
        jax.block_until_ready(carry)
        pieces = [jax.tree.map(lambda x: x[:, None], host(first))]
    eval_s = time.perf_counter() - t1
    resumed_from = done
    t_run = time.perf_counter()
    ckpt_s, last_ckpt_done, last_ckpt_t = 0.0, done, time.perf_counter()
    shown_metrics = progress_metrics()
    reported: set[int] = set()
    stopped_at = None

    def report_divergence():
        div = np.asarray(host(carry.diverged_at))
        for i in np.flatnonzero(div >= 0):
            if i not in reported:
                reported.add(int(i))
                log(
                    f"  DIVERGED: {row_label(seeds[i], raw_hparams, i, hparams_batched)} at "
                    f"iteration {int(div[i])}: its loss, a diagnostic or a parameter became "
                    "non-finite (NaN/inf); it is recorded as diverged and its later metrics are "
                    "not meaningful"
                )
        return div

    div = report_divergence() if resume_step is not None else np.full(n, -1)
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
        latest = {name: _finite_mean(v[:, -1]) for name, v in curves.items()}
        shown = " ".join(f"{m}={latest[m]:.4g}" for m in shown_metrics if m in latest)
        elapsed = time.perf_counter() - t_run
        eta = elapsed / (done - resumed_from) * (trainer.num_evals - done)
        log(
            f"  it {int(latest['iteration'])}/{trainer.num_iterations}  "
            f"traj {int(latest['trajectories'])}  {shown}"
            f"  [{elapsed:.1f}s, ETA {eta:.0f}s]"
        )
        div = report_divergence()
        if (div >= 0).all():
            stopped_at = int(latest["iteration"])
            log(
                f"  every row diverged: stopping at iteration {stopped_at} "
                f"of {trainer.num_iterations} (the remaining evaluations are recorded as NaN)"
            )
            break
        if (
            mngr is not None
            and done < trainer.num_evals
            and checkpoint.due(done - last_ckpt_done, time.perf_counter() - last_ckpt_t)
        ):
            s = mngr.save(done, carry, _concat(pieces, n), {"label": label})
            LAST_CHECKPOINT["where"] = (
                f"{checkpoint.directory} ({done}/{trainer.num_evals} periods)"
            )
            ckpt_s += s
            last_ckpt_done, last_ckpt_t = done, time.perf_counter()
            log(f"  checkpoint: {done}/{trainer.num_evals} periods saved in {s:.1f}s")
    run_s = time.perf_counter() - t_run
    if mngr is not None:
        mngr.close()
    if done < trainer.num_evals:  # stopped early: NaN for the evaluations never made
        rest = trainer.num_evals - done
        pieces.append({name: np.full((n, rest), np.nan) for name in pieces[-1]})
    return _concat(pieces, n), {
        "compile_s": compile_s,
        "first_eval_s": eval_s,
        "wall_s": run_s,
        "checkpoint_s": ckpt_s,
        "diverged_at": div,
        "stopped_at": stopped_at,
        "resumed_from": resumed_from,
    }


def checkpoint_root(out_path: str) -> str:
    """Checkpoints of runs writing to results/x.jsonl live in results/x.checkpoints/<run key>/."""
    return os.path.splitext(os.path.abspath(out_path))[0] + ".checkpoints"


def run_cells(spec: RunSpec, env, algo, hparams=None, hparams_batched: bool = False) -> list[str]:
    """The cell id of every row: a hash of what determines its numbers (env, configs with the
    row's grid values, metrics config, schedule, seed); equal to the sweep's cell ids."""
    algo_config = dataclasses.asdict(algo.config)
    metrics_config = dataclasses.asdict(MetricsConfig(**spec.metric_kw))
    out = []
    for i, seed in enumerate(spec.seeds):
        cfg = dict(algo_config)
        if hparams:
            cfg.update(
                {
                    k: float(np.asarray(v)[i]) if hparams_batched else float(v)
                    for k, v in hparams.items()
                }
            )
        out.append(
            cell_id(
                {
                    "env": spec.env,
                    "env_config": dataclasses.asdict(env),
                    "algo": spec.algo,
                    "algo_config": cfg,
                    "metrics_config": metrics_config,
                    "iterations": spec.iterations,
                    "eval_every": spec.eval_every,
                    "seed": seed,
                }
            )
        )
    return out


def checkpoint_policy(
    spec: RunSpec,
    cells: list[str],
    root: str,
    every,
    keep: int = 2,
    resume: bool = False,
    chunk: int = 1,
    seed_batch=None,
    num_devices: int = 1,
) -> ckpt.Policy | None:
    """The checkpoint policy of one compiled run (None when `every` is None: no checkpoints).
    Its folder is keyed by everything that determines the numbers and the chunking."""
    if every is None:
        return None
    fingerprint = {
        "cells": cells,
        "chunk": chunk,
        "seed_batch": seed_batch,
        "num_devices": num_devices,
    }
    return ckpt.Policy(
        directory=os.path.join(root, ckpt.run_key(fingerprint)),
        every=every,
        keep=keep,
        resume=resume,
        fingerprint=fingerprint,
    )


def run(
    spec: RunSpec,
    out_path: str | None,
    chunk: int = 1,
    quiet: bool = False,
    hparams: dict | None = None,
    hparams_batched: bool = False,
    mesh: Mesh | None | str = "auto",
    seed_batch: int | None | str = "auto",
    checkpoint_every=None,
    checkpoint_dir: str | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    cells: list[str] | None = None,
    policy: ckpt.Policy | None = None,
) -> list[dict]:
    """Train every seed of `spec` as one program; return (and append to out_path) one record per
    seed.

    With `hparams_batched`, row i trains seed `spec.seeds[i]` with hparams value `[i]` (seeds may
    repeat: a flattened seed × grid). mesh="auto" shards the rows over every visible device when
    there are several (`device_mesh`); None never shards. seed_batch: rows vmapped together
    (None = all; "auto" = `gfnjax.trainer.default_seed_batch()`, 1 on CPU; see `map_rows`).
    checkpoint_every: None (no checkpoints), periods (int) or seconds (float); checkpoints go to
    `checkpoint_dir` (default `checkpoint_root(out_path)`) and are deleted once the records are
    written; `resume` continues from the newest one. `cells`: the rows' cell ids (default
    `run_cells`). `policy`: a ready checkpoint policy (the sweep's), overriding those options.
    """
    env, algo, trainer = build(spec)
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    mesh = device_mesh() if mesh == "auto" else mesh
    seed_batch = default_seed_batch() if seed_batch == "auto" else seed_batch
    cells = cells or run_cells(spec, env, algo, hparams, hparams_batched)
    if policy is None and checkpoint_every is not None and (checkpoint_dir or out_path):
        policy = checkpoint_policy(
            spec,
            cells,
            checkpoint_dir or checkpoint_root(out_path),
            checkpoint_every,
            keep_checkpoints,
            resume,
            chunk,
            seed_batch,
            1 if mesh is None else mesh.size,
        )
    if len(spec.seeds) > 1:  # vmapped rows run padded passes (gfnjax.trainer.for_rows)
        trainer = dataclasses.replace(trainer, algo=for_rows(algo, seed_batch))
    curves, info = train_rows(
        trainer,
        spec.seeds,
        hparams,
        hparams_batched,
        mesh,
        chunk,
        log,
        label=f"{spec.env}/{spec.algo}",
        seed_batch=seed_batch,
        checkpoint=policy,
    )
    run_s = max(info["wall_s"], 1e-9)
    start = info["resumed_from"]

    def done_here(name):  # counts accumulated in this process (not before a resume)
        v = curves[name]
        last = np.array([_last_finite(row) for row in v])
        return float(np.nansum(last - v[:, start]))

    algo_config = jsonable(dataclasses.asdict(algo.config))
    base = {
        "env": spec.env,
        "algo": spec.algo,
        "env_config": jsonable(dataclasses.asdict(env)),
        "algo_config": algo_config,
        "preset": algo.preset.as_record(),
        "metrics_config": jsonable(dataclasses.asdict(MetricsConfig(**spec.metric_kw))),
        "iterations": spec.iterations,
        "eval_every": spec.eval_every,
        "num_seeds": len(spec.seeds),
        "seed_batch": seed_batch,
        "hparams": jsonable(hparams) if hparams and not hparams_batched else None,
        "git_commit": git_commit(),
        "code_version": code_version(),
        "jax_version": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "num_devices": jax.device_count(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "compile_s": info["compile_s"],
        "wall_s": info["wall_s"],
        "first_eval_s": info["first_eval_s"],
        "checkpoint_s": info["checkpoint_s"],
        "resumed_from_period": info["resumed_from"] or None,
        "iterations_per_s": done_here("iteration") / run_s,
        "transitions_per_s": done_here("transitions") / run_s,
        "trajectories_per_s": done_here("trajectories") / run_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    records = []
    for i, seed in enumerate(spec.seeds):
        d = int(info["diverged_at"][i])
        rec = dict(
            base,
            seed=seed,
            cell_id=cells[i],
            status="diverged" if d >= 0 else "ok",
            diverged_at=d if d >= 0 else None,
            stopped_at=info["stopped_at"],
            curves={k: jsonable(v[i]) for k, v in curves.items()},
        )
        if hparams and hparams_batched:
            row = {k: float(np.asarray(v)[i]) for k, v in hparams.items()}
            rec["hparams"] = row
            rec["algo_config"] = dict(algo_config, **row)  # the effective config of this row
        rec["final"] = {k: jsonable(float(v[i, -1])) for k, v in curves.items()}
        records.append(rec)
    if out_path:
        append_records(out_path, records)
        if policy is not None:
            ckpt.Manager(
                policy
            ).delete_all()  # the records are safe: the checkpoints are not needed
    return records


def _last_finite(row: np.ndarray) -> float:
    ok = np.flatnonzero(np.isfinite(row))
    return float(row[ok[-1]]) if len(ok) else float("nan")


SUMMARY_KEYS = tuple(summary_metrics())


def show_config(spec: RunSpec, env, algo, trainer) -> str:
    """Human-readable resolved configuration of a run (what `--show-config` prints)."""
    preset = algo.preset
    lines = [
        f"env {spec.env}: {json.dumps(jsonable(dataclasses.asdict(env)))}",
        f"algo {spec.algo}, preset {preset.name!r} — {preset.source}",
        f"  preset values: {json.dumps(jsonable(preset.values))}",
        f"  your overrides: {json.dumps(jsonable(spec.algo_kw))}",
        f"  resolved config: {json.dumps(jsonable(dataclasses.asdict(algo.config)))}",
        f"metrics: {[type(m).__name__ for m in trainer.metrics]} {json.dumps(spec.metric_kw)}",
        f"schedule: {spec.iterations} iterations, evaluation every {trainer.eval_every}, "
        f"seeds {spec.seeds}",
    ]
    return "\n".join(lines)


def diverged(rec: dict) -> bool:
    """Whether a record is a diverged run (its status, or a non-finite `diverged` curve flag)."""
    if rec.get("status") == "diverged":
        return True
    return bool(rec.get("final", {}).get("diverged"))


def fmt_mean_std(values: list, n_runs: int) -> str:
    """'mean ± sample std' over the finite values; '(k/n)' when only k of the n runs have one."""
    mean, std, n = mean_std(values)
    if not n:
        return "–"
    note = f" ({n}/{n_runs})" if n < n_runs else ""
    return f"{mean:.4g} ± {std:.2g}{note}"


def status_cell(rs: list[dict]) -> str:
    """'ok', or 'DIVERGED k/n (it i, ...)' naming the iterations."""
    bad = [r for r in rs if diverged(r)]
    if not bad:
        return "ok"
    its = sorted({r.get("diverged_at") for r in bad}, key=lambda x: (x is None, x))
    where = ", ".join("?" if i is None else str(i) for i in its[:4])
    return f"DIVERGED {len(bad)}/{len(rs)} (it {where}{', …' if len(its) > 4 else ''})"


def summary_table(records: list[dict]) -> str:
    """Mean ± sample std (ddof 1, as the reports) over the healthy seeds of each env × algo;
    diverged seeds are counted in the status column, never averaged in."""
    if not records:
        return "(no records)"
    keys = [k for k in SUMMARY_KEYS if any(k in r["final"] for r in records)]
    head = (
        "| env | algo | seeds | status | " + " | ".join(keys) + " | it/s | transitions/s | "
        "compile s |"
    )
    sep = "|" + "---|" * (len(keys) + 7)
    rows = [head, sep]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["env"], r["algo"]), []).append(r)
    for (env, algo), rs in groups.items():
        healthy = [r for r in rs if not diverged(r)]
        cells = [fmt_mean_std([r["final"].get(k) for r in healthy], len(rs)) for k in keys]
        r0 = rs[0]
        rows.append(
            f"| {env} | {algo} | {len(rs)} | {status_cell(rs)} | "
            + " | ".join(cells)
            + f" | {r0['iterations_per_s']:.1f} | {r0['transitions_per_s']:.0f} | "
            f"{r0['compile_s']:.1f} |"
        )
    return "\n".join(rows)


def add_reliability_args(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    """Checkpoint / resume options shared by the run, sweep and leaderboard commands."""
    p.add_argument(
        "--checkpoint-every",
        default=DEFAULT_CHECKPOINT_EVERY,
        metavar="N|DURATION",
        help="save the whole training carry every N evaluation periods, or at the first "
        "evaluation boundary DURATION (e.g. 90s, 10m) after the previous save; 0 = never "
        f"(default {DEFAULT_CHECKPOINT_EVERY})",
    )
    p.add_argument(
        "--keep-checkpoints", type=int, default=2, help="newest checkpoints kept per run (2)"
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="folder for checkpoints (default: next to the results file, <out>.checkpoints/)",
    )
    if not sweep:
        p.add_argument(
            "--resume",
            action="store_true",
            help="continue from this run's newest checkpoint (same configuration and code); "
            "the curves equal an uninterrupted run's",
        )
    p.add_argument(
        "--force-rerun",
        action="store_true",
        help="recompute even when results or a checkpoint from other code exist "
        + (
            "(cells already in the results file are recomputed; readers keep the newest)"
            if sweep
            else "(the checkpoint is discarded)"
        ),
    )


def reliability_options(args) -> dict:
    """Validated checkpoint options from parsed arguments (ValueError naming the flag)."""
    every = ckpt.parse_every(args.checkpoint_every)
    if isinstance(args.keep_checkpoints, bool) or args.keep_checkpoints < 1:
        raise ValueError(f"--keep-checkpoints must be ≥ 1, got {args.keep_checkpoints}")
    if args.checkpoint_dir:
        check_writable(os.path.join(args.checkpoint_dir, ".probe"), "--checkpoint-dir")
    return {
        "checkpoint_every": every,
        "checkpoint_dir": args.checkpoint_dir,
        "keep_checkpoints": args.keep_checkpoints,
    }


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
    add_reliability_args(p)
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
        options = reliability_options(args)
        if not args.show_config:
            check_writable(args.out)
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
    try:
        records = run(
            spec,
            args.out,
            chunk=args.chunk,
            seed_batch=seed_batch,
            resume=args.resume and not args.force_rerun,
            **options,
        )
    except ValueError as e:  # a stale checkpoint, a program too large for this machine
        print(f"error: {e}", file=sys.stderr)
        return 2
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        print(f"error: out of memory while running: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as e:  # the results file became unwritable during training (disk full)
        print(
            f"error: could not write the records to {args.out}: {e}; the newest checkpoint is "
            "kept: free space and rerun with --resume to write them without retraining",
            file=sys.stderr,
        )
        return 1
    print(summary_table(records))
    n_div = sum(diverged(r) for r in records)
    print(f"\nrecords appended to {args.out}", file=sys.stderr)
    if n_div:
        print(
            f"warning: {n_div} of {len(records)} seed(s) diverged (see DIVERGED above); they are "
            "recorded with status 'diverged'",
            file=sys.stderr,
        )
        return 3
    return 0
