"""How close an iteration is to this machine's limit: the network work on real states alone.

    .venv/bin/python benchmarks/roofline.py [--rows ppo_hypergrid,tb_bitseq_mlp,...]
        [--warmup 30] [--peers-since 2026-12-02T14:49]

For one row of benchmarks/throughput.py, after `--warmup` updates from the initial policy, the
*floor* of an iteration is the wall time of the network passes it cannot avoid, each timed alone
at exactly the batch's real row count (no padding, no packing, no loss, no environment, no
sampling of actions), at the rate XLA reaches for those shapes on this machine:

  TB:  sampling L × forward(B rows) + one forward/backward/Adam step on R rows
  PPO: sampling L × forward(B rows) + π_old forward(R) + V forward(R)
       + policy_epochs × step(R) + value_epochs × value_minibatches × value step(R / splits)

R is the mean number of real states per batch and L the mean number of sampler steps (the longest
trajectory), both over 8 sampled batches. The measured iteration time is the best of 5 chunks of
jitted updates in the same process. `floor / measured` is the share of the iteration spent at the
limit; `1000 / floor` is the most iterations/s any implementation of the same method and networks
can reach here; divided by a peer's iterations/s measured side by side (benchmarks/peers.md,
records in benchmarks/results/peers.jsonl since `--peers-since`, median per peer) it is the
largest speed-up over that peer this machine allows. Prints a markdown table with machine,
commit, date and the command.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_updates import best_ms  # noqa: E402
from throughput import ROWS  # noqa: E402

from gfnjax import algos, envs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = {
    "tb_hypergrid": ("gfnx", "torchgfn"),
    "ppo_hypergrid": ("entppo",),
    "tb_bitseq_transformer": ("gfnx",),
    "tb_bitseq_mlp": ("torchgfn",),
}


def forward_ms(apply, params, x, n=50):
    """Best-of-5 wall milliseconds per forward pass apply(params, x) inside one jitted loop (each
    input depends on the previous output, so XLA cannot hoist the pass)."""

    def many(params, x):
        def body(i, acc):
            out = apply(params, x + acc * 1e-30)
            return acc + sum(jnp.mean(o) for o in jax.tree.leaves(out)) * 1e-30

        return jax.lax.fori_loop(0, n, body, jnp.zeros((), x.dtype))

    return best_ms(jax.jit(many), (params, x), n)


def step_ms(apply, params, x, n=20):
    """Best-of-5 wall milliseconds per training step on x: one forward/backward pass (a loss that
    uses every output) and one Adam update, chained as in training."""
    tx = optax.adam(1e-3)

    def step(carry, _):
        p, opt = carry
        g = jax.grad(lambda p: sum(jnp.sum(jnp.sin(o)) for o in jax.tree.leaves(apply(p, x))))(p)
        upd, opt = tx.update(g, opt, p)
        return (optax.apply_updates(p, upd), opt), None

    many = lambda p: jax.lax.scan(step, (p, tx.init(p)), None, length=n)[0][0]
    return best_ms(jax.jit(many), (params,), n)


def real_rows(traj, n):
    """obs of the first n real states of a batch: float[n, D]."""
    B, T1 = traj.obs.shape[:2]
    valid = (jnp.arange(T1)[None, :] <= traj.length[:, None]).reshape(-1)
    flat = traj.obs.reshape(B * T1, -1)
    idx = jnp.argsort(~valid, stable=True)[:n]
    return flat[idx]


def floor(algo, state, key):
    """(components [(name, calls, rows, ms per call)], R, L) for one row's algorithm."""
    cfg = algo.config
    trajs = [algo.sample(state, k) for k in jax.random.split(key, 8)]
    R = round(statistics.mean(float((t.length + 1).sum()) for t in trajs))
    L = round(statistics.mean(float(t.length.max()) for t in trajs))
    B = cfg.batch_size
    big = trajs[0]
    for t in trajs[1:]:
        if float((t.length + 1).sum()) > float((big.length + 1).sum()):
            big = t
    x = real_rows(big, R)
    pol, net = state.params["net"], algo.apply_net
    parts = [("sampling: forward", L, B, forward_ms(net, pol, x[:B]))]
    if algo.name == "ppo":
        val, vnet = state.params["value"], algo.value_net.apply
        r2 = R // cfg.value_minibatches
        parts += [
            ("π_old: forward", 1, R, forward_ms(net, pol, x)),
            ("V: forward", 1, R, forward_ms(vnet, val, x)),
            ("policy: step", cfg.policy_epochs, R, step_ms(net, pol, x)),
            (
                "value: step",
                cfg.value_epochs * cfg.value_minibatches,
                r2,
                step_ms(vnet, val, x[:r2]),
            ),
        ]
    else:
        parts.append(("training: step", 1, R, step_ms(net, pol, x)))
    return parts, R, L


def measured_ms(algo, state, key, n=20):
    run = jax.jit(
        lambda s, k: jax.lax.scan(lambda s, k: algo.update(s, k), s, jax.random.split(k, n))[0]
    )
    jax.block_until_ready(run(state, key))
    best = float("inf")
    for r in range(5):
        t = time.perf_counter()
        jax.block_until_ready(run(state, jax.random.fold_in(key, r)))
        best = min(best, (time.perf_counter() - t) / n)
    return 1e3 * best


def peer_rates(since: str) -> dict:
    """(row, peer) -> median iterations/s of the full-step records since `since`."""
    rates = collections.defaultdict(list)
    with open(os.path.join(HERE, "results", "peers.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            if "row" in d and d.get("time", "") >= since and d.get("variant") != "lean":
                rates[(d["row"], d["peer"])].append(d["its_per_s"])
    return {k: statistics.median(v) for k, v in rates.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", default=",".join(PEERS))
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--peers-since", default="2026-12-02T14:49")
    args = p.parse_args(argv)
    peers = peer_rates(args.peers_since)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    print(
        f"Machine {platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or 'cpu'}), "
        f"commit {commit}, "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
        f"JAX {jax.__version__}; `{' '.join([os.path.relpath(sys.executable)] + sys.argv)}`\n"
    )
    for row in args.rows.split(","):
        name, env_name, env_kw, algo_kw = ROWS[row]
        algo = algos.make(name, envs.make(env_name, **env_kw), **algo_kw)
        state = algo.init(jax.random.PRNGKey(0))
        if args.warmup:
            state = jax.jit(
                lambda s, k, a=algo: jax.lax.scan(a.update, s, jax.random.split(k, args.warmup))[0]
            )(state, jax.random.PRNGKey(1))
        parts, R, L = floor(algo, state, jax.random.PRNGKey(2))
        total = sum(c * ms for _, c, _, ms in parts)
        meas = measured_ms(algo, state, jax.random.PRNGKey(3))
        print(f"## {row}: R = {R} real states, L = {L} sampler steps per batch\n")
        print(
            "| network pass | calls | rows | ms per call | ms per iteration |\n"
            "|---|---|---|---|---|"
        )
        for nm, c, r, ms in parts:
            print(f"| {nm} | {c} | {r} | {ms:.3f} | {c * ms:.2f} |")
        print(
            f"| **floor** | | | | **{total:.2f}** |\n\n"
            f"measured iteration: {meas:.2f} ms ({1e3 / meas:.1f} it/s); floor / measured = "
            f"{total / meas:.0%}; at the floor: {1e3 / total:.1f} it/s"
        )
        for peer in PEERS[row]:
            if (row, peer) in peers:
                r = peers[(row, peer)]
                print(
                    f"- {peer} ({r:.2f} it/s, side by side since {args.peers_since}): "
                    f"measured {1e3 / meas / r:.1f}×, largest possible here {1e3 / total / r:.1f}×"
                )
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
