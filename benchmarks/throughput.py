"""gfnjax's side of the peer-comparison table (benchmarks/peers.md): steady training throughput.

    .venv/bin/python benchmarks/throughput.py [--rows tb_hypergrid,ppo_hypergrid,...] [--seconds 30]
        [--pack both|on|off] [--out benchmarks/results/throughput.jsonl]

Each row runs in its own subprocess (so peak RSS is the row's own), from the initial policy with
the row's preset, 16 trajectories per iteration:

  tb_hypergrid           TB, hypergrid 20^4 standard, MLP 2×256
  ppo_hypergrid          Ent-PPO, hypergrid 20^4 (4 policy epochs, value 4 × 2 splits)
  tb_bitseq_transformer  TB, bit sequences n = 120, k = 8, transformer (3 layers, d 64, 8 heads)
  tb_bitseq_mlp          TB, bit sequences n = 120, k = 8, MLP 2×256
  mdqn_hypergrid, gae_hypergrid, trpo_hypergrid  (profiling rows, not in the peer table)

Measured: compile time of a chunk of updates, the latency from start to the first finished
iteration, steady iterations/s (median over repeated chunks of the jitted `lax.scan` of updates,
no evaluation inside; the chunk length is sized to about `--seconds / 6`), the process CPU seconds
per iteration, peak RSS and the policy's parameter count. Prints a markdown table with the
machine, commit, date and this command; appends one JSON line per row to --out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROWS = {
    "tb_hypergrid": ("tb", "hypergrid", dict(dim=4, side=20), {}),
    "ppo_hypergrid": ("ppo", "hypergrid", dict(dim=4, side=20), {}),
    "tb_bitseq_transformer": ("tb", "bitseq", dict(n=120, k=8), dict(torso="transformer")),
    "tb_bitseq_mlp": ("tb", "bitseq", dict(n=120, k=8), dict(torso="mlp")),
    "mdqn_hypergrid": ("mdqn", "hypergrid", dict(dim=4, side=20), {}),
    "gae_hypergrid": ("gae", "hypergrid", dict(dim=4, side=20), {}),
    "trpo_hypergrid": ("trpo", "hypergrid", dict(dim=4, side=20), {}),
}
PEER_ROWS = ("tb_hypergrid", "ppo_hypergrid", "tb_bitseq_transformer", "tb_bitseq_mlp")


def measure(row: str, seconds: float, pack: bool) -> dict:
    """Run in a fresh process: compile, time, report."""
    t_start = time.perf_counter()
    import dataclasses

    import jax

    from gfnjax import algos, envs
    from gfnjax.nets import num_params

    algo_name, env_name, env_kw, algo_kw = ROWS[row]
    env = envs.make(env_name, **env_kw)
    algo = dataclasses.replace(algos.make(algo_name, env, **algo_kw), pack=pack)
    state = algo.init(jax.random.PRNGKey(0))

    def chunk(state, key, n):
        def body(s, k):
            s, info = algo.update(s, k)
            return s, info.num_transitions

        return jax.lax.scan(body, state, jax.random.split(key, n))

    one = jax.jit(lambda s, k: chunk(s, k, 1))
    t0 = time.perf_counter()
    first = one.lower(state, jax.random.PRNGKey(1)).compile()
    compile_one = time.perf_counter() - t0
    s1, _ = first(state, jax.random.PRNGKey(1))
    jax.block_until_ready(s1)
    first_iteration_s = time.perf_counter() - t_start
    # size the timed chunk from the single-update time
    t1 = time.perf_counter()
    for i in range(5):
        s1, _ = first(s1, jax.random.PRNGKey(2 + i))
    jax.block_until_ready(s1)
    per_it = (time.perf_counter() - t1) / 5
    n = max(5, int(seconds / 6 / max(per_it, 1e-4)))
    t2 = time.perf_counter()
    run = jax.jit(lambda s, k: chunk(s, k, n)).lower(state, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t2
    s, tr = run(state, jax.random.PRNGKey(10))
    jax.block_until_ready(s)
    rates, cpu, transitions = [], [], []
    for r in range(5):
        w0, c0 = time.perf_counter(), time.process_time()
        s, tr = run(s, jax.random.PRNGKey(11 + r))
        jax.block_until_ready(s)
        rates.append(n / (time.perf_counter() - w0))
        cpu.append((time.process_time() - c0) / n)
        transitions.append(float(tr.mean()))
    return {
        "row": row,
        "algo": algo_name,
        "env": env_name,
        "env_config": env_kw,
        "algo_overrides": algo_kw,
        "preset": algo.preset.name,
        "pack": pack,
        "torso": algo.config.torso,
        "hidden": list(algo.config.hidden),
        "policy_params": num_params(state.params["net"]),
        "iterations_per_s": statistics.median(rates),
        "iterations_per_s_runs": rates,
        "cpu_s_per_iteration": statistics.median(cpu),
        "transitions_per_iteration": statistics.mean(transitions),
        "chunk_iterations": n,
        "compile_s": compile_s,
        "compile_one_update_s": compile_one,
        "first_iteration_s": first_iteration_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
    }


def provenance() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    ).stdout.strip()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        cpu = platform.processor()
    return {
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "command": " ".join([os.path.relpath(sys.executable)] + sys.argv),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rows", default=",".join(PEER_ROWS), help=f"comma-separated, from {list(ROWS)}"
    )
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per row (about)")
    p.add_argument("--pack", default="on", choices=("on", "off", "both"))
    p.add_argument("--out", default="benchmarks/results/throughput.jsonl")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        row, pack = args.child.split(":")
        print(json.dumps(measure(row, args.seconds, pack == "on")))
        return 0
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"error: unknown rows {unknown}; valid: {list(ROWS)}", file=sys.stderr)
        return 2
    packs = {"on": ["on"], "off": ["off"], "both": ["off", "on"]}[args.pack]
    prov = provenance()
    results = []
    for row in rows:
        for pack in packs:
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                f"{row}:{pack}",
                "--seconds",
                str(args.seconds),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return 1
            rec = dict(json.loads(out.stdout.strip().splitlines()[-1]), **prov)
            results.append(rec)
            print(
                f"{row} pack={pack}: {rec['iterations_per_s']:.1f} it/s",
                file=sys.stderr,
                flush=True,
            )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    print(
        f"Machine: {prov['host']}, {prov['cpu']} ({prov['cpu_count']} CPUs); commit "
        f"{prov['commit']}; {prov['date']}; `{prov['command']}`\n"
    )
    print(
        "| row | pack | it/s (median of 5) | CPU ms/it | transitions/it | policy params | "
        "compile s | first iteration s | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['row']} | {'on' if r['pack'] else 'off'} | {r['iterations_per_s']:.1f} | "
            f"{1e3 * r['cpu_s_per_iteration']:.2f} | {r['transitions_per_iteration']:.0f} | "
            f"{r['policy_params']:,} | {r['compile_s']:.1f} | {r['first_iteration_s']:.1f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
