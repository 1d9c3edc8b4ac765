"""Why consecutive packing capacities differ by 2 (`gfnjax.rollout.PACK_RATIO`): the same update
compiled with several ratios, timed alternately from one fixed state.

    .venv/bin/python benchmarks/pack_ratio.py [--rows ppo_hypergrid,tb_hypergrid]
        [--ratios 2,1.5,1.4142] [--warmup 300] [--rounds 6]
        [--out benchmarks/results/pack_ratio.jsonl]

For each row of benchmarks/throughput.py: `--warmup` updates from the initial policy (so that
trajectories have their trained lengths), then one jitted `lax.scan` of 20 updates per ratio
(compile time measured), then `--rounds` rounds that run every ratio once on the same keys, in
turn, timing process CPU and wall milliseconds per update. A finer ratio means less padding in
each network pass and one more `lax.switch` branch per pass (longer compiles). Prints a markdown
table with machine, commit, date and the command; appends one JSON line per row and ratio.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import ROWS  # noqa: E402

from gfnjax import algos, envs, rollout  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
N = 20  # updates per timed call


def mean_real_states(algo, state, key, n=8):
    """Mean Σ_b (length_b + 1) over n sampled batches."""
    return statistics.mean(
        float((algo.sample(state, k).length + 1).sum()) for k in jax.random.split(key, n)
    )


def run_row(row, ratios, warmup, rounds):
    name, env_name, env_kw, algo_kw = ROWS[row]
    algo = algos.make(name, envs.make(env_name, **env_kw), **algo_kw)
    state = algo.init(jax.random.PRNGKey(0))
    state = jax.jit(lambda s, k: jax.lax.scan(algo.update, s, jax.random.split(k, warmup))[0])(
        state, jax.random.PRNGKey(1)
    )
    real = mean_real_states(algo, state, jax.random.PRNGKey(2))
    n_rows = algo.config.batch_size * (algo.env.max_steps + 1)
    default, compiled, caps = rollout.PACK_RATIO, {}, {}
    try:
        for r in ratios:
            rollout.PACK_RATIO = r  # read when a pass is traced
            caps[r] = list(rollout.pack_capacities(n_rows, 2 * algo.config.batch_size))
            f = jax.jit(lambda s, k: jax.lax.scan(algo.update, s, jax.random.split(k, N))[0])
            t = time.perf_counter()
            compiled[r] = (f.lower(state, jax.random.PRNGKey(3)).compile(), time.perf_counter() - t)
    finally:
        rollout.PACK_RATIO = default
    times = {r: [] for r in ratios}
    for i in range(rounds):
        key = jax.random.PRNGKey(100 + i)
        for r in ratios:
            g = compiled[r][0]
            jax.block_until_ready(g(state, key))
            c, w = time.process_time(), time.perf_counter()
            jax.block_until_ready(g(state, key))
            times[r].append(
                (1e3 * (time.process_time() - c) / N, 1e3 * (time.perf_counter() - w) / N)
            )
    out = []
    for r in ratios:
        cpu, wall = [x[0] for x in times[r]], [x[1] for x in times[r]]
        out.append(
            {
                "row": row,
                "ratio": round(r, 4),
                "capacities": caps[r],
                "mean_real_states": round(real, 1),
                "compile_s": round(compiled[r][1], 2),
                "cpu_ms_median": round(statistics.median(cpu), 3),
                "cpu_ms_min": round(min(cpu), 3),
                "wall_ms_median": round(statistics.median(wall), 3),
                "wall_ms_min": round(min(wall), 3),
                "rounds": rounds,
                "warmup": warmup,
            }
        )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", default="ppo_hypergrid,tb_hypergrid")
    p.add_argument("--ratios", default="2,1.5,1.4142")
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--out", default=os.path.join(HERE, "results", "pack_ratio.jsonl"))
    args = p.parse_args(argv)
    ratios = [float(x) for x in args.ratios.split(",")]
    if any(r <= 1 for r in ratios):
        p.error(f"--ratios must all be > 1, got {args.ratios}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    command = " ".join([os.path.relpath(sys.executable)] + sys.argv)
    print(
        f"Machine {platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or 'cpu'}), "
        f"commit {commit}, {date}, JAX {jax.__version__}; `{command}`\n\n"
        "| row | real states | ratio | compile s | CPU ms/update (median, min) "
        "| wall ms/update (median, min) | CPU vs ratio 2 |\n|---|---|---|---|---|---|---|"
    )
    for row in args.rows.split(","):
        recs = run_row(row, ratios, args.warmup, args.rounds)
        base = next((d["cpu_ms_median"] for d in recs if d["ratio"] == 2.0), None)
        with open(args.out, "a", encoding="utf-8") as f:
            for d in recs:
                d.update(commit=commit, date=date, host=platform.node(), command=command)
                f.write(json.dumps(d) + "\n")
                rel = f"{d['cpu_ms_median'] / base - 1:+.0%}" if base else "–"
                print(
                    f"| {row} | {d['mean_real_states']:.0f} | {d['ratio']:g} "
                    f"| {d['compile_s']:.1f} | {d['cpu_ms_median']:.2f}, {d['cpu_ms_min']:.2f} "
                    f"| {d['wall_ms_median']:.2f}, {d['wall_ms_min']:.2f} | {rel} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
