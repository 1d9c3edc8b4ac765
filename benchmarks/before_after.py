"""Same-session throughput of TB and Ent-PPO on hypergrid 20^4 for whichever gfnjax is imported, so
that two commits can be compared on one machine:

    git worktree add --detach ../old 8d9a27d
    (cd ../old && PYTHONPATH=$PWD ../main/.venv/bin/python ../main/benchmarks/before_after.py)
    .venv/bin/python benchmarks/before_after.py

Times a jitted `lax.scan` of 2,000 TB / 300 PPO updates with each algorithm's default config
(median of 3 after one warm-up scan) and prints one `BEFORE_AFTER {json}` line.
"""

import importlib
import json
import subprocess
import time

import jax

from gfnjax import algos, envs

# the loop module was gfnjax/train.py before this round and gfnjax/trainer.py after it
try:
    make_trainer = importlib.import_module("gfnjax.train").make_trainer
except (ImportError, AttributeError):
    from gfnjax.trainer import make_trainer


def main():
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
