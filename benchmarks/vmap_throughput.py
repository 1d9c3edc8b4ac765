"""Throughput of N seeds as one vmapped program versus N sequential single-seed runs.

hypergrid 20^4 standard reward, TB with its defaults (16 trajectories/iteration, MLP 2×256), the
one training loop (`Trainer.train`) in both cases:

  vmapped:    jit(vmap(train))(keys[N])      compiled once, called once
  sequential: jit(train)(keys[i]) for i < N  compiled once, called N times (no recompilation)

Both time the call(s) after compilation with `block_until_ready`; compile times are reported
separately. Evaluation is kept out of the measurement: eval_every = iterations (one evaluation at
the end) with the exact DP metrics off (`metrics.exact=False`; only a 16-trajectory ELBO).

    .venv/bin/python benchmarks/vmap_throughput.py [--seeds 8] [--iterations 500] [--hidden 32]
    .venv/bin/python benchmarks/vmap_throughput.py --components   # where the time goes

`--components` times 50 `algo.update` calls, vmapped over the seeds vs sequential, (i) from the
same initial state every call and (ii) carried through a `lax.scan` as in training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from gfnjax import algos, envs
from gfnjax.metrics import MetricsConfig
from gfnjax.trainer import make_trainer, map_rows


def timed(fn, *args):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t


def components(algo, keys, n: int = 50) -> None:
    """Vmapped / sequential speedup of n updates: from a fixed state, and carried through a scan."""
    state = jax.vmap(algo.init)(keys)

    def total(params):
        return sum(jax.numpy.sum(x) for x in jax.tree.leaves(params))

    def fixed(st, k):
        return jax.lax.scan(
            lambda c, kk: (c, total(algo.update(st, kk)[0].params)), None, jax.random.split(k, n)
        )[1]

    def carried(st, k):
        return total(
            jax.lax.scan(lambda c, kk: (algo.update(c, kk)[0], None), st, jax.random.split(k, n))[
                0
            ].params
        )

    for name, fn in (("fixed state", fixed), ("carried through scan", carried)):
        vmapped = jax.jit(jax.vmap(fn)).lower(state, keys).compile()
        row = lambda i: jax.tree.map(lambda x: x[i], state)
        single = jax.jit(fn).lower(row(0), keys[0]).compile()
        _, t_v = timed(vmapped, state, keys)
        t_s = sum(timed(single, row(i), keys[i])[1] for i in range(len(keys)))
        print(f"| {n} updates, {name} | {t_v:.2f} | {t_s:.2f} | {t_s / t_v:.2f}× |")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--dim", type=int, default=4)
    p.add_argument("--side", type=int, default=20)
    p.add_argument("--algo", default="tb")
    p.add_argument(
        "--hidden", default=None, help="MLP widths, e.g. 64,64 (default: the algo's 256,256)"
    )
    p.add_argument("--components", action="store_true", help="time algo.update only (see above)")
    args = p.parse_args()

    env = envs.make("hypergrid", dim=args.dim, side=args.side)
    overrides = {"hidden": tuple(int(h) for h in args.hidden.split(","))} if args.hidden else {}
    algo = algos.make(args.algo, env, **overrides)
    trainer = make_trainer(
        algo,
        args.iterations,
        args.iterations,
        metrics_config=MetricsConfig(exact=False, eval_batch_size=16),
    )
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    if args.components:
        print("| what | vmapped s | sequential s | speedup |\n|---|---|---|---|")
        components(algo, keys)
        return

    t = time.perf_counter()
    vmapped = jax.jit(jax.vmap(trainer.train)).lower(keys).compile()
    compile_vmapped = time.perf_counter() - t
    t = time.perf_counter()
    single = jax.jit(trainer.train).lower(keys[0]).compile()
    compile_single = time.perf_counter() - t
    t = time.perf_counter()
    mapped = jax.jit(map_rows(trainer.train, (0,), seed_batch=1)).lower(keys).compile()
    compile_mapped = time.perf_counter() - t

    (carry_m, _), wall_m = timed(mapped, keys)
    (carry_v, curves_v), wall_v = timed(vmapped, keys)
    wall_s, traj_s = 0.0, 0.0
    for i in range(args.seeds):
        (carry, curves), dt = timed(single, keys[i])
        wall_s += dt
        traj_s += float(carry.trajectories)
    traj_v = float(np.asarray(carry_v.trajectories).sum())
    traj_m = float(np.asarray(carry_m.trajectories).sum())
    result = {
        "env": f"hypergrid {args.side}^{args.dim}",
        "algo": args.algo,
        "seeds": args.seeds,
        "iterations": args.iterations,
        "batch_size": algo.config.batch_size,
        "hidden": algo.config.hidden,
        "vmapped_s": wall_v,
        "sequential_s": wall_s,
        "vmapped_trajectories_per_s": traj_v / wall_v,
        "sequential_trajectories_per_s": traj_s / wall_s,
        "speedup": (traj_v / wall_v) / (traj_s / wall_s),
        "mapped_s": wall_m,
        "mapped_trajectories_per_s": traj_m / wall_m,
        "speedup_mapped": (traj_m / wall_m) / (traj_s / wall_s),
        "compile_vmapped_s": compile_vmapped,
        "compile_single_s": compile_single,
        "compile_mapped_s": compile_mapped,
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_avg_1m_after": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=1))
    print(
        f"\n| mode | wall s (run only) | trajectories/s |\n|---|---|---|\n"
        f"| {args.seeds} seeds, one vmapped program | {wall_v:.1f} | {traj_v / wall_v:.0f} |\n"
        f"| {args.seeds} seeds, one program, lax.map (seed_batch=1, the CPU default) | "
        f"{wall_m:.1f} | {traj_m / wall_m:.0f} |\n"
        f"| {args.seeds} sequential single-seed runs | {wall_s:.1f} | {traj_s / wall_s:.0f} |\n"
        f"\nspeedup vmapped: {result['speedup']:.2f}×, lax.map: {result['speedup_mapped']:.2f}×"
    )


if __name__ == "__main__":
    main()
