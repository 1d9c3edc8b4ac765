"""Training throughput of the default hypergrid config.

hypergrid 20^4 standard, TB, 16 trajectories/iteration, MLP 2×256, one seed: times the jitted
training loop alone (no metrics in the scan) after compilation, then one full evaluation (exact DP
over the 160k-state DAG + ELBO/EUBO + L1) separately.

    .venv/bin/python benchmarks/throughput_hypergrid.py [--iterations 2000] [--algo tb]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import jax

from gfnjax import algos, envs
from gfnjax.trainer import make_trainer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--algo", default="tb")
    p.add_argument("--dim", type=int, default=4)
    p.add_argument("--side", type=int, default=20)
    args = p.parse_args()
    env = envs.make("hypergrid", dim=args.dim, side=args.side)
    algo = algos.make(args.algo, env)
    bare = make_trainer(algo, args.iterations, args.iterations, metrics=())
    key = jax.random.PRNGKey(0)

    t0 = time.perf_counter()
    carry = jax.jit(bare.init)(key)
    run = (
        jax.jit(lambda c: jax.lax.scan(bare.step, c, None, length=args.iterations))
        .lower(carry)
        .compile()
    )
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    carry, _ = run(carry)
    jax.block_until_ready(carry)
    wall = time.perf_counter() - t1

    full = make_trainer(algo, args.iterations, args.iterations)
    t2 = time.perf_counter()
    ev = jax.jit(full.evaluate).lower(full.init(key)).compile()
    eval_compile_s = time.perf_counter() - t2
    c2 = full.init(key)
    t3 = time.perf_counter()
    _, out = ev(c2)
    jax.block_until_ready(out)
    eval_s = time.perf_counter() - t3
    res = {
        "config": f"hypergrid {args.side}^{args.dim} standard, {args.algo}, "
        "16 traj/it, MLP 2x256, 1 seed",
        "iterations": args.iterations,
        "iterations_per_s": args.iterations / wall,
        "transitions_per_s": float(carry.transitions) / wall,
        "mean_trajectory_length": float(carry.transitions) / float(carry.trajectories),
        "compile_s": compile_s,
        "eval_compile_s": eval_compile_s,
        "eval_s": eval_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
        "host": platform.node(),
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
