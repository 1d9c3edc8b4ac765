"""Throughput of the molecule environments: iterations/s, molecules/s, share of time in the RDKit
callbacks, peak memory, the molecule metrics of a short run and a grid image of the top samples.

    .venv/bin/python benchmarks/molgraph_throughput.py --env molgraph --algos tb,ppo
    .venv/bin/python benchmarks/fragments_throughput.py --algos tb,ppo

Each (algorithm, torso) runs in a fresh subprocess (so peak RSS is its own) on the environment's
defaults, 16 trajectories per iteration, default algorithm configs, one seed. The timed part is
`Trainer.run` (the one training loop) over `--iterations` updates with no evaluation inside, after
compilation and a warm-up chunk of the same length (so the SMILES caches are in a steady state
typical of a run's first few hundred iterations). Then a fresh run (another seed) of the same
length with the molecule metrics updated every iteration (modes / top-k callback), as `make bench`
runs, and one evaluation of the molecule metrics (256 forward samples; SA, alerts, diversity;
128 test molecules × 8 backward samples), timed separately. The RDKit share is the host time
measured inside the `pure_callback`s (`chem.STATS.seconds`) divided by wall time. After the first
algorithm's run, an RDKit grid of the 16 best distinct molecules among 512 samples is written to
benchmarks/<env>_top.png, each checked against the chemistry rules B1–B5.
Results: benchmarks/<env>.md (rewritten) and benchmarks/results/<env>.jsonl (appended).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

MARKER = "<!-- end of the generated part -->"
DESCRIPTION = {
    "molgraph": "`molgraph` defaults (≤ 9 heavy atoms of C, N, O, F, plausible chemistry, QED, "
    "log R = 10·QED)",
    "fragments": "`fragments` defaults (≤ 6 blocks of the 40-block NCI/BRICS library, plausible "
    "junctions, QED, log R = 10·QED)",
}


def child(env_name: str, algo_name: str, torso: str, iterations: int, draw: bool) -> dict:
    import jax

    from gfnjax import algos, envs
    from gfnjax.envs import chem
    from gfnjax.metrics import MetricsConfig
    from gfnjax.metrics.molecules import MoleculeMetrics, draw_top_samples
    from gfnjax.trainer import make_trainer

    env = envs.make(env_name)
    algo = algos.make(algo_name, env, batch_size=16, torso=torso)
    trainer = make_trainer(algo, iterations, iterations, metrics=[])
    t0 = time.perf_counter()
    carry = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    run = jax.jit(lambda c: trainer.run(c, 1)).lower(carry).compile()
    compile_s = time.perf_counter() - t0
    carry, _ = run(carry)  # warm-up chunk (fills the SMILES caches as a run would)
    jax.block_until_ready(carry)
    chem.STATS.reset()
    t1 = time.perf_counter()
    carry, curves = run(carry)
    jax.block_until_ready(carry)
    wall = time.perf_counter() - t1
    stats = chem.STATS.as_dict()
    molecules = float(curves["trajectories"][-1]) / 2  # trajectories of the timed chunk
    # the harness way: molecule metrics updated every iteration, one evaluation at the end
    metrics = (MoleculeMetrics(env, MetricsConfig().eval_batch_size),)
    full = make_trainer(algo, iterations, iterations, metrics=metrics)
    fcarry = jax.jit(full.init)(jax.random.PRNGKey(1))  # other seed: not the same molecules
    frun = jax.jit(lambda c: full.run(c, 1)).lower(fcarry).compile()
    evaluate = jax.jit(full.evaluate).lower(fcarry).compile()
    fcarry, _ = frun(fcarry)  # warm-up chunk, as above
    evaluate(fcarry)  # warm the evaluation's caches too, so the subtraction below is fair
    jax.block_until_ready(fcarry)
    chem.STATS.reset()
    t2 = time.perf_counter()
    fcarry, fcurves = frun(fcarry)
    jax.block_until_ready(fcarry)
    wall_full = time.perf_counter() - t2
    rdkit_full = chem.STATS.seconds
    chem.STATS.reset()
    t3 = time.perf_counter()
    _, out = evaluate(fcarry)
    jax.block_until_ready(out)
    eval_s = time.perf_counter() - t3
    eval_rdkit = chem.STATS.seconds
    train_full = max(wall_full - eval_s, 1e-9)
    rec = {
        "env": env_name,
        "algo": algo_name,
        "torso": torso,
        "batch_size": 16,
        "iterations": iterations,
        "compile_s": compile_s,
        "wall_s": wall,
        "iterations_per_s": iterations / wall,
        "molecules_per_s": molecules / wall,
        "rdkit_s": stats["seconds"],
        "rdkit_share": stats["seconds"] / wall,
        "rdkit_calls": stats["calls"],
        "molecules_scored": stats["graphs"],
        "invalid": stats["invalid"],
        "with_metrics_iterations_per_s": iterations / train_full,
        "with_metrics_rdkit_share": max(rdkit_full - eval_rdkit, 0.0) / train_full,
        "eval_s": eval_s,
        "eval_rdkit_share": eval_rdkit / eval_s,
        "eval": {k: float(v[-1]) for k, v in fcurves.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if draw:
        png = os.path.join(HERE, f"{env_name}_top.png")
        _, smiles, violations = draw_top_samples(
            env, algo.policy_fn(carry.state), jax.random.PRNGKey(2), png, num_samples=512
        )
        rec["image"] = os.path.relpath(png, ROOT)
        rec["top_smiles"] = smiles
        rec["top_violations"] = violations
    return rec


def machine() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_avg_start": os.getloadavg(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": commit,
    }


def report(env_name: str, records: list[dict], command: str, mach: dict) -> str:
    lines = [
        f"# {env_name} throughput (16 trajectories per iteration)",
        "",
        f"Command: `{command}`  ",
        f"Commit: `{mach['commit']}` (the code measured; this file is committed after it)  ",
        f"Machine: {mach['cpu_count']}-core CPU, no GPU ({mach['platform']}), {mach['date']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in mach['load_avg_start'])} "
        "(the machine was shared with other jobs, so timings are pessimistic).",
        "",
        f"Environment: {DESCRIPTION[env_name]}. Default algorithm configs, one seed. Timed (it/s, "
        "molecules/s, RDKit share): `Trainer.run` over the stated iterations after compilation and "
        'a warm-up chunk of the same length, no metrics. "With metric updates": a fresh run '
        "(another seed) of the same length with the molecule metrics updated every iteration "
        "(modes / top-k callback), as `make bench` runs, minus its final evaluation (timed "
        "separately, warm). Molecules/s = terminal molecules sampled per second (one per "
        "trajectory). RDKit share = host time inside the reward/metric `pure_callback`s / wall "
        "time. Eval = one evaluation of the molecule metrics (256 forward samples with SA, alerts "
        "and diversity; 128 test molecules × 8 backward samples).",
        "",
        "| algo | torso | iterations | it/s | molecules/s | RDKit share | "
        "it/s with metric updates (RDKit share) | eval s (RDKit share) | compile s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['algo']} | {r['torso']} | {r['iterations']} | {r['iterations_per_s']:.2f} | "
            f"{r['molecules_per_s']:.1f} | {100 * r['rdkit_share']:.1f}% | "
            f"{r['with_metrics_iterations_per_s']:.2f} "
            f"({100 * r['with_metrics_rdkit_share']:.0f}%) | "
            f"{r['eval_s']:.2f} ({100 * r['eval_rdkit_share']:.0f}%) | {r['compile_s']:.1f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    cols = [
        ("modes", "modes", ".0f"),
        ("validity", "validity", ".3f"),
        ("uniqueness", "uniqueness", ".3f"),
        ("novelty", "novelty", ".3f"),
        ("diversity", "diversity", ".3f"),
        ("mean_score", "mean QED", ".3f"),
        ("mean_sa", "mean SA", ".2f"),
        ("filter_pass", "PAINS/Brenk pass", ".3f"),
        ("top_k_score", "top-100 QED", ".3f"),
        ("top_k_reward", "top-100 R", ".1f"),
        ("pearson", "pearson", ".3f"),
    ]
    lines += [
        "",
        "Metrics at the end of the run with metric updates (a short run: they show the pipeline "
        "works, not converged quality):",
        "",
        "| algo | torso | " + " | ".join(c[1] for c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for r in records:
        e = r["eval"]
        cells = [format(e.get(k, float("nan")), f) for k, _, f in cols]
        lines.append(f"| {r['algo']} | {r['torso']} | " + " | ".join(cells) + " |")
    for r in records:
        if r.get("image"):
            bad = [v for v in r["top_violations"] if v]
            lines += [
                "",
                f"Top samples after the {r['algo']} run (the 16 best distinct of 512 samples; "
                f"chemistry-rule violations among them: {len(bad)}): "
                f"![top molecules]({os.path.basename(r['image'])})",
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, env_name: str | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--env", default=env_name or "molgraph", choices=sorted(DESCRIPTION))
    p.add_argument("--algos", default="tb,ppo")
    p.add_argument("--torsos", default="graph")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--child", nargs=3, metavar=("ALGO", "TORSO", "DRAW"))
    args = p.parse_args(argv)
    if args.child:
        algo, torso, draw = args.child
        rec = child(args.env, algo, torso, args.iterations, draw == "1")
        print("RESULT " + json.dumps(rec))
        return 0
    script = os.path.relpath(sys.argv[0], ROOT)
    command = f"python {script} " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    mach = machine()
    records = []
    algos_list, torsos = args.algos.split(","), args.torsos.split(",")
    for torso in torsos:
        for algo in algos_list:
            draw = "1" if (algo == algos_list[0] and torso == torsos[0]) else "0"
            out = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--env",
                    args.env,
                    "--iterations",
                    str(args.iterations),
                    "--child",
                    algo,
                    torso,
                    draw,
                ],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if out.returncode or not line:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            rec = json.loads(line[0][7:])
            rec.update(command=command, machine=mach)
            records.append(rec)
            print(
                json.dumps({k: v for k, v in rec.items() if k not in ("eval", "machine")}),
                flush=True,
            )
    jsonl = os.path.join(HERE, "results", f"{args.env}.jsonl")
    os.makedirs(os.path.dirname(jsonl), exist_ok=True)
    with open(jsonl, "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    md = os.path.join(HERE, f"{args.env}.md")
    kept = ""  # hand-written notes below the marker survive a rerun
    if os.path.exists(md):
        text = open(md, encoding="utf-8").read()
        kept = text[text.index(MARKER) :] if MARKER in text else ""
    with open(md, "w", encoding="utf-8") as f:
        f.write(report(args.env, records, command, mach) + ("\n" + kept if kept else ""))
    print(open(md).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
