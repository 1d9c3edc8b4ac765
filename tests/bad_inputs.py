"""Bad inputs tried against the harness, and the generator of docs/bad_inputs.md.

Every case is a CLI call (`python -m gfnjax.bench ...`, run in-process), a sweep file checked with
`sweep FILE --dry-run` (or run, when the check is about running), or a `report` call. Each case
states the exit status and a piece of the message it must print; tests/test_bad_inputs.py checks
every case that must fail before compiling (with compilation forbidden), and

    .venv/bin/python tests/bad_inputs.py > docs/bad_inputs.md

runs every case (those that are valid input train a few iterations) and writes the table with the
message each one actually gets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
import tempfile
from typing import Callable

import numpy as np

TINY = [
    "--env", "hypergrid", "--algo", "tb", "--seeds", "1", "--iterations", "20",
    "--eval-every", "10", "--set", "env.dim=2", "--set", "env.side=8", "--checkpoint-every", "0",
]  # fmt: skip
SWEEP_BASE = """\
seeds: 1
iterations: 20
eval_every: 10
envs: [{name: hypergrid, dim: 2, side: 8}]
algos: [tb]
config: {hidden: [16]}
"""


@dataclasses.dataclass
class Case:
    """kind: "cli" (argv after the tiny base run; "B" = with it), "sweep" (YAML text; dry run
    unless `run`), "report" (argv of `report`). rc: expected exit status. expect: text the output
    must contain. compiles: the case needs a compilation (not in the no-compile test).
    env: environment variables for the case; setup: creates files in the case folder {tmp}."""

    id: str
    kind: str
    args: list[str] | str
    rc: int
    expect: str
    what: str = ""
    base: bool = True
    compiles: bool = False
    run: bool = False
    env: dict[str, str] | None = None
    setup: Callable[[str], None] | None = None


def _npy(name: str, make: Callable[[], np.ndarray], cut: int | None = None):
    def setup(tmp: str) -> None:
        os.makedirs(os.path.join(tmp, "data"), exist_ok=True)
        path = os.path.join(tmp, "data", name)
        np.save(path, make())
        if cut is not None:
            with open(path, "rb") as f:
                head = f.read(cut)
            with open(path, "wb") as f:
                f.write(head)

    return setup


QM9 = "qm9str_proxy_s5.npy"
QM9_N = 11**5
DATA = {"GFNJAX_DATA": "{tmp}/data"}
DIM2 = ["--set", "env.dim=2"]
MOLGRAPH = ["--env", "molgraph", "--algo", "tb", "--seeds", "1", "--iterations", "10"]


def cli(id, args, expect, what="", rc=2, base=True, **kw) -> Case:
    return Case(id, "cli", args, rc, expect, what, base=base, **kw)


def sweep(id, text, expect, what="", rc=2, **kw) -> Case:
    return Case(id, "sweep", text, rc, expect, what, **kw)


CASES: list[Case] = [
    # --- names and keys
    cli("c01", ["--env", "nosuch"], "unknown environment 'nosuch'", base=False),
    cli("c02", ["--algo", "nosuch"], "unknown algorithm 'nosuch'", base=False),
    cli("c03", ["--set", "foo=1"], "unknown --set key 'foo'"),
    cli("c04", ["--set", "env.foo=1"], "unknown --set key 'env.foo'"),
    cli("c05", ["--set", "metrics.foo=1"], "unknown --set key 'metrics.foo'"),
    cli("c06", ["--set", "lr"], "--set expects key=value"),
    cli("c07", ["--set", "lr=0.5", "--set", "lr=0.001"], "--set lr is given twice"),
    cli("c08", ["--algo", "trpo", "--set", "lr=0.1"], "unknown --set key 'lr'", "TRPO has no lr"),
    cli("c09", ["--preset", "nosuch"], "unknown preset"),
    # --- algorithm config values
    cli("c10", ["--set", "lr=abc"], "lr must be a number"),
    cli("c11", ["--set", "lr=nan"], "lr must be a number", "'nan' is not a Python literal"),
    cli("c12", ["--set", "lr=1e999"], "lr must be in (0.0, 1000.0], got inf"),
    cli("c13", ["--set", "lr=-1"], "lr must be in (0.0, 1000.0]"),
    cli("c14", ["--set", "hidden=(0,)"], "hidden must be a tuple of positive layer widths"),
    cli("c15", ["--set", "hidden=64"], "hidden must be a tuple of positive layer widths"),
    cli("c16", ["--set", "batch_size=-1"], "batch_size must be in [1, 1048576]"),
    cli("c17", ["--set", "batch_size=16.5"], "batch_size must be an integer"),
    cli("c18", ["--set", "batch_size=True"], "batch_size must be an integer"),
    cli("c19", ["--set", "batch_size=10**9"], "batch_size must be an integer"),
    cli("c20", ["--set", "batch_size=1000000000"], "batch_size must be in [1, 1048576]"),
    cli("c21", ["--set", "epsilon=2"], "epsilon must be in [0.0, 1.0]"),
    cli("c22", ["--set", "temperature=0"], "temperature must be in [1e-06, 1000000.0]"),
    cli("c23", ["--set", "temperature=1e-30"], "temperature must be in [1e-06, 1000000.0]"),
    cli("c24", ["--set", "pb=foo"], "pb must be one of ['uniform', 'learned', 'tlm']"),
    cli("c25", ["--set", "torso=foo"], "torso must be one of"),
    cli("c26", ["--algo", "subtb", "--set", "lam=1e30"], "lam must be in [1e-06, 1000000.0]"),
    cli("c27", ["--algo", "ppo", "--set", "clip_eps=-0.2"], "clip_eps"),
    # --- schedule and CLI flags
    cli("c28", ["--seeds", "0"], "--seeds must be ≥ 1", base=False),
    cli("c29", ["--seeds", "-3"], "--seeds must be ≥ 1", base=False),
    cli("c30", ["--iterations", "0"], "--iterations must be ≥ 1", "was: 2000 ran", base=False),
    cli("c31", ["--iterations", "-200"], "--iterations must be ≥ 1", base=False),
    cli("c32", ["--iterations", "abc"], "invalid int value: 'abc'", base=False),
    cli("c33", ["--eval-every", "0"], "--eval-every must be ≥ 1", "was: default used", base=False),
    cli("c34", ["--chunk", "0"], "--chunk must be ≥ 1", "was: ZeroDivisionError"),
    cli("c35", ["--chunk", "-1"], "--chunk must be ≥ 1", "was: MLIRError"),
    cli("c36", ["--seed-batch", "-1"], "--seed-batch must be ≥ 0"),
    cli("c37", ["--checkpoint-every", "soon"], "--checkpoint-every must be"),
    cli("c38", ["--checkpoint-every", "1.5"], "must be an integer"),
    cli("c39", ["--keep-checkpoints", "0"], "--keep-checkpoints must be ≥ 1"),
    cli(
        "c40",
        ["--iterations", "30", "--eval-every", "20"],
        "it 30/30",
        "not a multiple: the last period is shorter",
        rc=0,
        run=True,
    ),
    cli("c41", ["--seed-offset", "-1"], "it 20/20", "seed −1 is a valid PRNG seed", rc=0, run=True),
    # --- environment options
    cli("c42", ["--set", "env.dim=0"], "Hypergrid.dim must be in [1, inf]", base=False),
    cli("c43", DIM2 + ["--set", "env.side=8.0"], "side must be an integer", base=False),
    cli("c44", ["--set", "env.r0=0"], "Hypergrid.r0 must be > 0"),
    cli("c45", ["--set", "env.r0=1e-40"], "smallest normal float32", "was: NaN run, exit 0"),
    cli("c46", ["--set", "env.r0=1e-50"], "smallest normal float32", "was: NaN run, exit 0"),
    cli("c47", ["--set", "env.r1=1e300"], "must stay finite in float32"),
    cli("c48", ["--set", "env.reward=foo"], "Hypergrid.reward must be one of"),
    cli("c49", ["--set", "env.r0=1e-30"], "it 20/20", "tiny but normal in float32", rc=0, run=True),
    cli(
        "c50",
        DIM2 + ["--set", "env.side=3000"],
        "exact metrics would enumerate 9,000,000 states",
        "was: silent 5-minute hang",
        base=False,
    ),
    cli("c51", ["--set", "env.side=1000000"], "exact metrics would enumerate", base=False),
    # --- metrics options
    cli("c52", ["--set", "metrics.exact=no"], "exact must be True or False", "was: ignored"),
    cli("c53", ["--set", "metrics.exact=false"], "exact must be True or False"),
    cli("c54", ["--set", "metrics.eval_batch_size=0"], "eval_batch_size must be in"),
    cli("c55", ["--set", "metrics.eval_batch_size=1000000000"], "eval_batch_size must be in"),
    cli("c56", ["--set", "metrics.l1_window=10000000000"], "l1_window must be in"),
    cli(
        "c57",
        ["--set", "metrics.exact=False"],
        "it 20/20",
        "trains without exact metrics",
        rc=0,
        run=True,
    ),
    # --- sizes beyond the machine (checked on the compiled program, before it runs)
    cli(
        "c58",
        ["--set", "batch_size=1000000"],
        "GiB of memory, more than this machine",
        "was: RESOURCE_EXHAUSTED traceback",
        compiles=True,
    ),
    # --- output path (checked before anything is built)
    cli("c59", ["--out", "{tmp}"], "is a directory", "was: trained, then crashed"),
    cli("c60", ["--out", "{tmp}/afile/x.jsonl"], "is a file, not a folder", "was: trained, lost"),
    cli("c61", ["--out", "/proc/x.jsonl"], "not writable", "was: trained, then lost"),
    cli("c62", ["--out", "/sys/x.jsonl"], "not writable"),
    # --- data files
    cli("c63", ["--env", "qm9str"], "not found", "empty data folder", env=DATA, base=False),
    cli(
        "c64",
        ["--env", "qm9str"],
        "is corrupt",
        "truncated .npy",
        env=DATA,
        base=False,
        setup=_npy(QM9, lambda: np.ones(QM9_N, np.float32), cut=5000),
    ),
    cli(
        "c65",
        ["--env", "qm9str"],
        "is corrupt",
        ".npy cut inside its header",
        env=DATA,
        base=False,
        setup=_npy(QM9, lambda: np.ones(QM9_N, np.float32), cut=50),
    ),
    cli(
        "c66",
        ["--env", "qm9str"],
        "has shape (100,), expected (161051,)",
        env=DATA,
        base=False,
        setup=_npy(QM9, lambda: np.ones(100, np.float32)),
    ),
    cli(
        "c67",
        ["--env", "qm9str"],
        "contains non-finite values",
        env=DATA,
        base=False,
        setup=_npy(QM9, lambda: np.full(QM9_N, np.nan, np.float32)),
    ),
    cli("c68", ["--env", "qm9str"], "not found", "missing folder", env=DATA, base=False),
    cli(
        "c69",
        ["--env", "qm9str", "--set", "env.reward_exponent=1e300"],
        "overflow float32 training losses",
        "was: NaN run with plausible modes/pearson",
        base=False,
        setup=_npy(QM9, lambda: np.linspace(0.1, 2.0, QM9_N, dtype=np.float32)),
        env=DATA,
    ),
    # --- molecular graphs
    cli("c70", MOLGRAPH + ["--set", "env.elements=('C','Xx')"], "distinct symbols", base=False),
    cli("c71", MOLGRAPH + ["--set", "env.elements=('C','Og')"], "distinct symbols", base=False),
    cli("c72", MOLGRAPH + ["--set", "env.elements=('c','n')"], "distinct symbols", base=False),
    cli("c73", MOLGRAPH + ["--set", "env.elements=('C','C')"], "distinct symbols", base=False),
    cli(
        "c74",
        MOLGRAPH + ["--set", "env.elements=Cl"],
        "must be a tuple of element symbols",
        "was: split into 'C', 'l'",
        base=False,
    ),
    cli("c75", MOLGRAPH + ["--set", "env.max_atoms=50"], "max_atoms must be in", base=False),
    # --- sweep files (`sweep FILE --dry-run`)
    sweep("y01", SWEEP_BASE + "algos: [tb\n", "while parsing", "unclosed ["),
    sweep("y02", SWEEP_BASE + "grid:\n\tlr: [0.1]\n", "found character '\\t'", "tab"),
    sweep("y03", SWEEP_BASE + "iteration: 200\n", "iteration: unknown key"),
    sweep("y04", SWEEP_BASE.replace("side: 8", "sidee: 8"), "unknown hypergrid option"),
    sweep("y05", SWEEP_BASE.replace("[tb]", "[{name: tb, lamda: 1}]"), "unknown tb config"),
    sweep("y06", SWEEP_BASE.replace("seeds: 1", "seeds: four"), "seeds: must be"),
    sweep("y07", SWEEP_BASE.replace("iterations: 20", "iterations: 200.5"), "iterations: must"),
    sweep("y08", SWEEP_BASE + "grid: {lr: []}\n", "must be a non-empty list"),
    sweep("y09", SWEEP_BASE.replace("[tb]", "[tb, tb]"), "two cells are identical"),
    sweep("y10", SWEEP_BASE + "grid: {side: [4, 8]}\n", "grid.side: not a config field"),
    sweep(
        "y11",
        SWEEP_BASE.replace("config: {hidden: [16]}", "grid: {hidden: [32, 64]}"),
        "tuple of positive layer widths",
        "was: 'int' object is not iterable",
    ),
    sweep("y12", SWEEP_BASE + "grid: {torso: [mlp, foo]}\n", "torso must be one of"),
    sweep("y13", SWEEP_BASE + "grid: {lr: [abc]}\n", "lr must be a number"),
    sweep("y14", SWEEP_BASE + "grid: {lr: [.inf]}\n", "grid.lr", "was: trained, then crashed"),
    sweep("y15", SWEEP_BASE + "grid: {lr: [.nan]}\n", "grid.lr"),
    sweep("y16", "", "must be a mapping"),
    sweep(
        "y17", SWEEP_BASE.replace("envs: [{name: hypergrid, dim: 2, side: 8}]", "envs: []"), "envs"
    ),
    sweep("y18", SWEEP_BASE.replace("algos: [tb]\n", ""), "algos: required key is missing"),
    sweep("y19", SWEEP_BASE.replace("seeds: 1", "seeds: [0, 0]"), "seeds: must be"),
    sweep("y20", SWEEP_BASE + "metrics: {foo: 1}\n", "metrics:"),
    sweep("y21", SWEEP_BASE + "check: {foo: 0.1}\n", "check.foo: no known direction"),
    sweep("y22", SWEEP_BASE + "check: {tv: -1}\n", "relative margin"),
    sweep("y23", SWEEP_BASE + "config2: {lam: 0.9}\n", "config2: unknown key"),
    sweep("y24", SWEEP_BASE + "grid: {lam: [0.9]}\n", "grid.lam: not a config field"),
    sweep("y25", SWEEP_BASE + "grid: {lr: 0.001}\n", "must be a non-empty list"),
    sweep("y26", SWEEP_BASE + "seeds: 2\n", "'seeds' is given twice", "was: last value kept"),
    sweep(
        "y27",
        SWEEP_BASE.replace("[tb]", "[{name: tb, lr: 0.01}]") + "grid: {lr: [0.1]}\n",
        "also swept in `grid`",
    ),
    sweep("y28", SWEEP_BASE + "grid: {lr: [1e-3, 3e-3]}\n", "cell(s)", "1e-3 is a number", rc=0),
    sweep("y29", SWEEP_BASE + "grid: {lr: [0.001, 1.0e-3]}\n", "two cells are identical"),
    sweep("y30", SWEEP_BASE + "chunk: 0\n", "chunk: must be"),
    sweep("y31", SWEEP_BASE.replace("[16]", "16"), "tuple of positive layer widths"),
    sweep("y32", "- envs: [hypergrid]\n", "must be a mapping"),
    sweep("y33", SWEEP_BASE + 'metrics: {exact: "no"}\n', "exact must be True or False"),
    sweep(
        "y34",
        SWEEP_BASE.replace(
            "envs: [{name: hypergrid, dim: 2, side: 8}]",
            "envs: [{name: hypergrid, dim: 2, side: 8}, {name: hypergrid, side: 8, dim: 2}]",
        ),
        "two cells are identical",
    ),
    sweep(
        "y35",
        SWEEP_BASE.replace("eval_every: 10", "eval_every: 15"),
        "cell(s)",
        "not a multiple: valid, the last period is shorter",
        rc=0,
    ),
    sweep(
        "y36",
        SWEEP_BASE + "out: {tmp}\n",
        "is a directory",
        "results path checked before compiling",
        run=True,
    ),
    Case("y37", "sweep", None, 2, "No such file or directory", "missing file"),
    # --- reports
    Case("r01", "report", ["{tmp}/missing.jsonl"], 2, "not found", "was: 'no records'"),
    Case("r02", "report", ["{tmp}/empty.jsonl"], 2, "no records", setup=lambda t: _write(t, "")),
    Case(
        "r03",
        "report",
        ["{tmp}/junk.jsonl"],
        2,
        "not valid JSON",
        "each skipped line is named",
        setup=lambda t: _write(t, "junk\n{\n"),
    ),
    Case(
        "r04",
        "report",
        ["{tmp}/other.jsonl"],
        2,
        "not a results record",
        "was: KeyError / AttributeError",
        setup=lambda t: _write(t, '{"a": 1}\n[1, 2]\n'),
    ),
    Case("r05", "report", ["{tmp}"], 2, "is a directory"),
]


def _write(tmp: str, text: str) -> None:
    for name in ("empty", "junk", "other"):
        with open(os.path.join(tmp, f"{name}.jsonl"), "w") as f:
            f.write(text)


def _fill(x, tmp: str):
    if isinstance(x, list):
        return [_fill(v, tmp) for v in x]
    return x.replace("{tmp}", tmp) if isinstance(x, str) else x


def run_case(case: Case, tmp: str) -> tuple[int, str]:
    """(exit status, everything the case printed) of one case, run in-process in folder `tmp`."""
    from gfnjax.bench.cli import main

    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "afile"), "w") as f:
        f.write("x")
    if case.setup:
        case.setup(tmp)
    saved = dict(os.environ)
    os.environ.update({k: _fill(v, tmp) for k, v in (case.env or {}).items()})
    if case.kind == "cli":
        argv = (TINY if case.base else ["--checkpoint-every", "0"]) + _fill(case.args, tmp)
        if "--out" not in argv:
            argv += ["--out", os.path.join(tmp, "runs.jsonl")]
    elif case.kind == "sweep":
        path = os.path.join(tmp, f"{case.id}.yaml")
        if case.args is not None:
            with open(path, "w") as f:
                f.write(_fill(case.args, tmp))
        argv = ["sweep", path] + ([] if case.run else ["--dry-run"])
    else:
        argv = ["report", *_fill(case.args, tmp), "--out", os.path.join(tmp, "rep")]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return rc, err.getvalue() + out.getvalue()


def message(text: str, rc: int) -> str:
    """The line a user reads: the error, or (valid input) the last progress line."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error:") or ": error:" in x]
    warnings = [x for x in lines if x.startswith("warning:")]
    if errors:
        return (warnings[0] + " … " if warnings else "") + errors[-1]
    if rc == 0:
        prog = [x for x in lines if x.startswith("it ") or "cell(s)" in x]
        return "runs: " + (prog[-1] if prog else lines[-1] if lines else "")
    return lines[-1] if lines else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\t", "\\t")


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for case in CASES:
            rc, text = run_case(case, os.path.join(root, case.id))
            msg = message(text, rc).replace(root + "/" + case.id, "<tmp>")
            ok = rc == case.rc and case.expect in text
            print(f"{case.id}: rc {rc} {'ok' if ok else 'UNEXPECTED'}", file=sys.stderr)
            what = case.args if case.kind != "sweep" else (case.args or "(missing file)")
            if isinstance(what, list):
                what = ("B " if case.base and case.kind == "cli" else "") + " ".join(what)
                what = what.replace("{tmp}", "<tmp>")
            else:
                diff = what.replace(SWEEP_BASE, "").strip() or what.strip()
                what = "`" + _md(diff).replace("\n", "` `") + "`"
            rows.append(
                f"| {case.id} | {what if case.kind == 'sweep' else '`' + _md(what) + '`'} | "
                f"{rc}{'' if ok else ' (UNEXPECTED)'} | {_md(msg[:300])} | {_md(case.what)} |"
            )
    n = len(CASES)
    print(
        "# Bad inputs and the message each gets\n\n"
        f"{n} inputs tried against the harness (generated by `tests/bad_inputs.py`; rerun "
        "`.venv/bin/python tests/bad_inputs.py > docs/bad_inputs.md` after changing a message). "
        "Exit status 2 = refused before compiling with a message naming the field and the allowed "
        "values (c58 compiles first: the memory need is known only then, but nothing runs); 0 = "
        "valid input, trained or planned normally (last progress line shown); 1 = the CI check "
        "failed. `tests/test_bad_inputs.py` checks every refusal with compilation forbidden.\n\n"
        "`B` = the tiny base run `--env hypergrid --algo tb --seeds 1 --iterations 20 "
        "--eval-every 10 --set env.dim=2 --set env.side=8`; sweep cases are "
        "`sweep FILE --dry-run` with FILE = a 1-cell hypergrid TB sweep plus the lines shown; "
        '<tmp> is a scratch folder. "was:" notes the behaviour in the reliability review '
        "(main at 8d9a27d).\n\n"
        "| # | input | exit | message | note |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
