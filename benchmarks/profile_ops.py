"""Where an update's time goes, by XLA operation kind: a `jax.profiler` trace of K updates of one
algorithm on hypergrid 20^4 (or one row of benchmarks/throughput.py with `--row`), from a state
after `--warmup` updates.

    .venv/bin/python benchmarks/profile_ops.py [--algo ppo | --row tb_bitseq_mlp] [--warmup 300]
        [--updates 20]

XLA:CPU records one trace event per executed thunk (`--xla_cpu_enable_xprof_traceme`); nested
events (a `cond` or `while` and the operations inside) are reduced to self time, then summed per
kind (the HLO name without its number: `dot`, `ynn_fusion` (matrix products run by YNNPACK),
`sort`, `copy`, ...) over both worker threads. Tracing adds a few microseconds per event, so the
traced wall time exceeds the untraced one; the shares are what this table is for. Prints a
markdown table with machine, commit, date and the command.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true"
).strip()

import jax  # noqa: E402

from gfnjax import algos, envs  # noqa: E402


def self_times(xspace_file: str) -> tuple[collections.Counter, collections.Counter]:
    """(self nanoseconds, event count) per operation kind over the XLA worker threads."""
    pd = jax.profiler.ProfileData.from_file(xspace_file)
    total, count = collections.Counter(), collections.Counter()
    for plane in pd.planes:
        for line in plane.lines:
            if "Eigen" not in line.name:  # XLA's intra-op worker threads
                continue
            stack, own = [], {}
            for i, e in enumerate(sorted(line.events, key=lambda e: (e.start_ns, -e.duration_ns))):
                while stack and stack[-1][1] <= e.start_ns:
                    stack.pop()
                if stack:
                    own[stack[-1][0]] = (own[stack[-1][0]][0], own[stack[-1][0]][1] - e.duration_ns)
                own[i] = (e.name, e.duration_ns)
                stack.append((i, e.start_ns + e.duration_ns))
            for name, ns in own.values():
                if name.startswith("ThunkExecutor") or "Await" in name:
                    continue
                kind = re.sub(r"[.0-9]+(clone)?.*$", "", name)
                total[kind] += ns
                count[kind] += 1
    return total, count


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--algo", default="ppo")
    p.add_argument(
        "--row", default=None, help="a row of benchmarks/throughput.py (overrides --algo)"
    )
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    if args.row:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from throughput import ROWS

        name, env_name, env_kw, algo_kw = ROWS[args.row]
        algo = algos.make(name, envs.make(env_name, **env_kw), **algo_kw)
    else:
        algo = algos.make(args.algo, envs.make("hypergrid", dim=4, side=20))
    many = lambda n: jax.jit(
        lambda s, k: jax.lax.scan(lambda s, k: algo.update(s, k), s, jax.random.split(k, n))[0]
    )
    state = many(args.warmup)(algo.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    run = many(args.updates)
    jax.block_until_ready(run(state, jax.random.PRNGKey(2)))
    untraced = []
    for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(run(state, jax.random.PRNGKey(2)))
        untraced.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d)
        t = time.perf_counter()
        jax.block_until_ready(run(state, jax.random.PRNGKey(2)))
        traced = time.perf_counter() - t
        jax.profiler.stop_trace()
        total, count = self_times(sorted(glob.glob(f"{d}/**/*.xplane.pb", recursive=True))[-1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    K, all_ns = args.updates, sum(total.values())
    print(
        f"Machine {platform.node()} ({os.cpu_count()} CPUs), commit {commit}, "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
        f"JAX {jax.__version__}; `{' '.join([os.path.relpath(sys.executable)] + sys.argv)}`\n\n"
        f"{args.row or args.algo}: {1e3 * min(untraced) / K:.2f} ms per update untraced, "
        f"{1e3 * traced / K:.2f} traced; thread time {all_ns / K / 1e6:.2f} ms per update\n"
    )
    print("| operation kind | ms per update | share | events per update |\n|---|---|---|---|")
    for kind, ns in total.most_common(args.top):
        print(f"| {kind} | {ns / K / 1e6:.3f} | {ns / all_ns:.0%} | {count[kind] / K:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
