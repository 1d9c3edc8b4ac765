"""Same-session throughput of TB and Ent-PPO on hypergrid 20^4 for whichever gfnjax is imported, so
that two commits can be compared on one machine:

    git worktree add --detach ../old 8d9a27d
    (cd ../old && PYTHONPATH=$PWD ../main/.venv/bin/python ../main/benchmarks/before_after.py)
    .venv/bin/python benchmarks/before_after.py

Times a jitted `lax.scan` of 2,000 TB / 300 PPO updates with each algorithm's default config
(median of 3 after one warm-up scan) and prints one `BEFORE_AFTER {json}` line.

    .venv/bin/python benchmarks/before_after.py --rows tb_bitseq_mlp [--seconds 12]
        [--out benchmarks/results/before_after.jsonl]

instead times rows of benchmarks/throughput.py with its `measure` (steady iterations/s and
process CPU ms per iteration, in this process), for the gfnjax on the import path; `--out`
appends the line's JSON. Alternate the two commits' runs: this host's speed drifts.
"""

import argparse
import datetime
import importlib
import json
import os
import subprocess
import sys
import time

import jax

from gfnjax import algos, envs

# the loop module was gfnjax/train.py before this round and gfnjax/trainer.py after it
try:
    make_trainer = importlib.import_module("gfnjax.train").make_trainer
except (ImportError, AttributeError):
    from gfnjax.trainer import make_trainer


def rows(names, seconds, out_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from throughput import measure

    import gfnjax

    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(gfnjax.__file__)),
    ).stdout.strip()
    for row in names.split(","):
        d = measure(row, seconds, True)
        rec = {
            "commit": rev,
            "row": row,
            "it_per_s": round(d["iterations_per_s"], 2),
            "it_per_s_runs": [round(x, 2) for x in d["iterations_per_s_runs"]],
            "cpu_ms_per_iteration": round(1e3 * d["cpu_s_per_iteration"], 2),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([os.path.relpath(sys.executable)] + sys.argv),
        }
        print("BEFORE_AFTER", json.dumps(rec), flush=True)
        if out_path:
            with open(out_path, "a") as f:
                f.write(json.dumps(rec) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", default=None)
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.rows:
        return rows(args.rows, args.seconds, args.out)
    out = {}
    for name, n in (("tb", 2000), ("ppo", 300)):
        algo = algos.make(name, envs.make("hypergrid", dim=4, side=20))
        bare = make_trainer(algo, n, n, metrics=())
        carry = jax.jit(bare.init)(jax.random.PRNGKey(0))
        scan = lambda c, step=bare.step, n=n: jax.lax.scan(step, c, None, length=n)
        run = jax.jit(scan).lower(carry).compile()
        carry, _ = run(carry)
        jax.block_until_ready(carry)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            carry, _ = run(carry)
            jax.block_until_ready(carry)
            times.append(time.perf_counter() - t)
        out[name] = round(n / sorted(times)[1], 1)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print("BEFORE_AFTER", json.dumps({"commit": rev.stdout.strip(), "it_per_s": out}))


if __name__ == "__main__":
    main()
