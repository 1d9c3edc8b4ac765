"""Throughput of TB on bitseq (n = 120, k = 8, 16 trajectories per iteration); writes a markdown
table.

    .venv/bin/python benchmarks/bitseq_throughput.py [--torsos mlp,transformer] [--iterations 500]
        [--out benchmarks/bitseq_throughput.md]

Measured for each torso, in one process:
  compile      lowering + XLA compilation of the training chunk and of the evaluation (s)
  it/s         training iterations per second of the jitted `lax.scan` of Trainer.step (sampling
               16 trajectories, one TB update, metric carries updated), evaluation excluded
  transitions/s = it/s × transitions per iteration (15 for n/k = 15 slots, no stop action)
  evaluation   one Trainer.evaluate: ELBO (256 forward trajectories) + Pearson/Spearman on the
               7200-sequence test set (N backward trajectories each) + modes + top-k (s)
  peak RSS     resource.getrusage max resident set size of the process (MB)
Wall-clock and process CPU time are both recorded: on a shared machine CPU/wall ≪ #cores shows
contention (other processes got the cores); the CPU-time rate then estimates the speed of a quiet
machine (XLA may use both cores, so a quiet machine can be faster than that rate in wall time).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import time

import jax
import jax.numpy as jnp

from gfnjax import algos, envs
from gfnjax.trainer import make_trainer


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - w, time.process_time() - c


def measure(torso: str, iterations: int, num_test_trajectories: int | None) -> dict:
    kw = {} if num_test_trajectories is None else {"num_test_trajectories": num_test_trajectories}
    env = envs.make("bitseq", n=120, k=8, **kw)
    algo = algos.make("tb", env, batch_size=16, torso=torso)
    trainer = make_trainer(algo, num_iterations=iterations, eval_every=iterations)
    key = jax.random.PRNGKey(0)

    def steps(carry):
        return jax.lax.scan(trainer.step, carry, None, length=iterations)

    t0w, t0c = time.perf_counter(), time.process_time()
    init = jax.jit(trainer.init).lower(key).compile()
    carry = init(key)
    run = jax.jit(steps).lower(carry).compile()
    evaluate = jax.jit(trainer.evaluate).lower(carry).compile()
    compile_w, compile_c = time.perf_counter() - t0w, time.process_time() - t0c

    _, warm_w, _ = _timed(lambda: run(carry))  # first call (allocation)
    (carry2, _), run_w, run_c = _timed(lambda: run(carry))
    transitions = float(carry2.transitions - carry.transitions)
    _, eval_w, eval_c = _timed(lambda: evaluate(carry2))
    (_, out), eval2_w, eval2_c = _timed(lambda: evaluate(carry2))
    return {
        "torso": torso,
        "N": env.num_test_trajectories,
        "iterations": iterations,
        "compile_s": compile_w,
        "compile_cpu_s": compile_c,
        "it_per_s": iterations / run_w,
        "it_per_cpu_s": iterations / run_c,
        "transitions_per_s": transitions / run_w,
        "eval_s": min(eval_w, eval2_w),
        "eval_cpu_s": min(eval_c, eval2_c),
        "pearson": float(out["pearson"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--torsos", default="mlp,transformer")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--num-test-trajectories", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    load_before = os.getloadavg()
    rows = [measure(t, args.iterations, args.num_test_trajectories) for t in args.torsos.split(",")]
    load_after = os.getloadavg()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        "?",
    )
    lines = [
        "| torso | iterations/s (wall) | iterations/s (per CPU-s) | transitions/s (wall) | "
        "compile s (wall / CPU) | evaluation s (wall / CPU) | N | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['torso']} | {r['it_per_s']:.1f} | {r['it_per_cpu_s']:.1f} | "
            f"{r['transitions_per_s']:.0f} | {r['compile_s']:.1f} / {r['compile_cpu_s']:.1f} | "
            f"{r['eval_s']:.1f} / {r['eval_cpu_s']:.1f} | {r['N']} | {r['peak_rss_mb']:.0f} |"
        )
    meta = (
        f"machine: {os.cpu_count()}-core {cpu} ({platform.machine()}), no GPU, "
        f"jax {jax.__version__}, "
        f"commit {commit}; load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}"
    )
    text = "\n".join(lines) + "\n\n" + meta + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
