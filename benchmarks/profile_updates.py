"""Where an update's time goes: PPO, GAE, TRPO and M-DQN on hypergrid 20^4, padded vs packed.

    .venv/bin/python benchmarks/profile_updates.py [--algos ppo,gae,trpo,mdqn] [--warmup 30]

Each component is timed as a jitted `fori_loop` of N repetitions with a true data dependence
between repetitions (so XLA cannot hoist it), on a batch sampled after `--warmup` updates from the
initial policy; the figure is process CPU milliseconds per call (best of 5), comparable between
components and between padded (`pack=False`: every pass over all B·(T+1) rows, as before) and
packed passes on one machine. Prints a markdown table per algorithm with machine, commit, date.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

from gfnjax import algos, envs, replay
from gfnjax.algos.soft_dqn import trajectory_transitions


def cpu_ms(f, *args, n=20):
    """Best-of-5 process CPU milliseconds per call of f(*args) inside one jitted loop."""

    def many(*args):
        def body(i, acc):
            eps = acc * 1e-30  # data dependence on the previous repetition
            pert = jax.tree.map(
                lambda x: x + eps.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                args,
            )
            out = f(*pert)
            leaves = [x for x in jax.tree.leaves(out) if jnp.issubdtype(x.dtype, jnp.floating)]
            return acc + sum(jnp.mean(x) for x in leaves) * 1e-30

        return jax.lax.fori_loop(0, n, body, 0.0)

    return best_ms(jax.jit(many), args, n, time.process_time)


def best_ms(g, args, n, clock=time.perf_counter):
    """Best of 5 calls of g(*args) (after one warm-up call), in milliseconds of `clock` per one
    of the n repetitions each call makes."""
    jax.block_until_ready(g(*args))
    best = float("inf")
    for _ in range(5):
        t = clock()
        jax.block_until_ready(g(*args))
        best = min(best, (clock() - t) / n)
    return 1e3 * best


def components(algo, state, key):
    """name -> (function, args) for the parts of one update of `algo`."""
    k1, k2 = jax.random.split(key)
    traj = algo.sample(state, k1)
    parts = {"whole update": (algo.update, (state, k2)), "sample": (algo.sample, (state, k2))}
    if algo.name in ("ppo", "gae", "trpo"):
        ev = algo.evaluation(state.params["net"], traj)
        values = algo.trajectory_values(state.params["value"], traj)
        adv, targets, extra, _ = algo.advantages(state, ev, traj, values)
        parts["evaluate π_old"] = (lambda p, t: algo.evaluation(p, t), (state.params["net"], traj))
        parts["values V(s_t)"] = (algo.trajectory_values, (state.params["value"], traj))
        parts["advantages"] = (
            lambda s, e, t, v: algo.advantages(s, e, t, v),
            (state, ev, traj, values),
        )
        parts["policy update"] = (
            lambda s, t, e, a, x, k: algo.policy_update(s, t, e, a, x, k),
            (state, traj, ev, adv, extra, k2),
        )
        parts["value update"] = (
            lambda s, t, e, y, k: algo.value_update(s, t, e, y, k),
            (state, traj, ev, targets, k2),
        )
    elif algo.name in ("mdqn", "soft_dqn"):
        new, valid = trajectory_transitions(traj)
        target, buf = state.extra["target"], state.extra["buffer"]
        parts["TD of new transitions"] = (
            lambda p, t, tr, b: algo.trajectory_td(p, t, tr, b, state.hparams),
            (state.params["net"], target, traj, new),
        )
        parts["replay add"] = (lambda b, n, v: replay.add(b, n, v), (buf, new, valid))
        c = algo.config
        parts["replay sample"] = (
            lambda b, k: replay.sample(b, k, c.replay_batch_size, c.prioritised, 0.5, 0.0),
            (buf, k2),
        )
        batch = replay.sample(buf, k2, c.replay_batch_size, c.prioritised, 0.5, 0.0)
        parts["loss gradient"] = (
            lambda p, t, b, w: jax.grad(lambda q: algo.loss(q, t, b, w, state.hparams)[0])(p),
            (state.params, target, batch.items, batch.weights),
        )
    return parts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--algos", default="ppo,gae,trpo,mdqn")
    p.add_argument("--warmup", type=int, default=30)
    args = p.parse_args(argv)
    env = envs.make("hypergrid", dim=4, side=20)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"Machine {platform.node()} ({os.cpu_count()} CPUs), commit {commit}, "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
        f"JAX {jax.__version__}; `{' '.join([os.path.relpath(sys.executable)] + sys.argv)}`\n"
    )
    for name in args.algos.split(","):
        algo = algos.make(name, env)
        state = algo.init(jax.random.PRNGKey(0))
        update = jax.jit(algo.update)
        for i in range(args.warmup):
            state, _ = update(state, jax.random.PRNGKey(i))
        rows = {}
        for pack in (False, True):
            a = dataclasses.replace(algo, pack=pack)
            for part, (f, fargs) in components(a, state, jax.random.PRNGKey(99)).items():
                rows.setdefault(part, {})[pack] = cpu_ms(f, *fargs)
        traj = algo.sample(state, jax.random.PRNGKey(5))
        real = int(traj.length.sum()) + traj.batch_size
        print(
            f"## {name} (after {args.warmup} updates; this batch: {real} real states of "
            f"{traj.obs.shape[0] * traj.obs.shape[1]} padded rows)\n"
        )
        print("| component | padded CPU ms | packed CPU ms | speed-up |\n|---|---|---|---|")
        for part, r in rows.items():
            print(f"| {part} | {r[False]:.2f} | {r[True]:.2f} | {r[False] / r[True]:.2f}× |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
