"""Mutation testing of gfnjax's mathematics: `make mutate` (not part of CI; docs/mutation.md).

Each mutant in tools/mutants.py is a realistic small edit — (file, exact snippet, replacement) —
to the losses, rollouts, metrics, environments, replay buffer, optimiser steps or the algorithms'
update structure, with the test files that should notice it. For every mutant this tool

  1. checks that the snippet occurs exactly once in the file (otherwise the mutant is *stale*: the
     code changed under it; stale mutants are reported and make the run fail, never skipped);
  2. writes the mutated file into a temporary copy of the repository (the working tree is never
     touched), runs only the mapped tests there (`pytest -x`, time-boxed), and restores the file;
  3. records *killed* (a test failed, errored or timed out) or *survived* (every test passed).

A baseline run of every mapped test on the unmutated copy comes first: a failing baseline makes
every result meaningless, so the tool stops. Compiled XLA programs are shared between runs through
a persistent JAX compilation cache in the temporary directory (only code a mutant changes is
recompiled).

    python tools/mutate.py                     # every mutant; updates docs/mutation.md
    python tools/mutate.py --only ppo soft_rewards --no-doc
    python tools/mutate.py --list              # the mutants and their tests, nothing run

Exit status 0 when the score killed / (killed + survived) reaches --min-score and no mutant is
stale.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants import MUTANTS, Mutant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COPY = ("gfnjax", "tests", "pyproject.toml")
DOC_BEGIN, DOC_END = "<!-- mutate:begin -->", "<!-- mutate:end -->"


@dataclasses.dataclass
class Result:
    mutant: Mutant
    status: str  # killed | survived | timeout | error | stale
    seconds: float = 0.0
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.status in ("killed", "timeout", "error")


def data_dir() -> str:
    """The reward-table folder the tests of the original checkout would use."""
    return os.environ.get("GFNJAX_DATA") or str(ROOT.parent / "shared" / "data")


def make_copy(tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=ignore)
        else:
            shutil.copy2(src, repo / name)
    return repo


def run_pytest(repo: Path, tests: tuple[str, ...], timeout: float, cache: Path, stop_first=True):
    """(returncode or None on timeout, output, seconds)."""
    env = dict(
        os.environ,
        PYTHONPATH=str(repo),
        PYTHONDONTWRITEBYTECODE="1",
        GFNJAX_DATA=data_dir(),
        JAX_PLATFORMS="cpu",
        COLUMNS="240",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:xdist", "-p", "no:cacheprovider"]
    cmd += (["-x"] if stop_first else []) + list(tests)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out, time.monotonic() - start
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


GENERIC = re.compile(
    r"^(AssertionError:?\s*$|Not equal to tolerance|Mismatched elements|Max absolute|"
    r"Max relative|Arrays are not equal|[xy]: |\(shapes|where |\+ )"
)


def first_failure(output: str) -> str:
    """'test id: message' of the first failure: the test from pytest's short summary, the
    message from the first informative 'E ' line of its traceback (e.g. an assertion's err_msg
    naming the formula)."""
    lines = output.splitlines()
    test = next((ln.split(" - ")[0] for ln in lines if ln.startswith(("FAILED ", "ERROR "))), "")
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    msg = next((e for e in errors if e and not GENERIC.match(e)), "")
    msg = msg.removeprefix("AssertionError: ")
    if not test:
        tail = [ln for ln in lines if ln.strip()]
        return tail[-1][:300] if tail else ""
    return f"{test.split(' ', 1)[1]}: {msg}"[:300]


def check_stale(m: Mutant) -> str:
    """'' if the mutant applies, else why it is stale."""
    path = ROOT / m.file
    if not path.exists():
        return f"{m.file} does not exist"
    n = path.read_text().count(m.find)
    if n != 1:
        return f"snippet occurs {n} times in {m.file} (expected exactly once)"
    if m.find == m.replace:
        return "replacement equals the snippet"
    return ""


def run_mutant(m: Mutant, repo: Path, timeout: float, cache: Path) -> Result:
    stale = check_stale(m)
    if stale:
        return Result(m, "stale", detail=stale)
    target = repo / m.file
    original = target.read_text()
    target.write_text(original.replace(m.find, m.replace))
    try:
        code, out, secs = run_pytest(repo, m.tests, timeout, cache)
    finally:
        target.write_text(original)
    if code is None:
        return Result(m, "timeout", secs, f"no result within {timeout:.0f} s")
    if code == 0:
        return Result(m, "survived", secs)
    if code == 1:
        return Result(m, "killed", secs, first_failure(out))
    if code in (4, 5):  # usage error / no tests collected: the mapping is wrong, not the code
        raise SystemExit(f"mutant {m.id}: pytest exit {code} (bad test selection)\n{out[-2000:]}")
    return Result(m, "error", secs, first_failure(out))


def select(ids: list[str] | None) -> list[Mutant]:
    if not ids:
        return list(MUTANTS)
    chosen = [m for m in MUTANTS if any(s in m.id for s in ids)]
    if not chosen:
        raise SystemExit(f"no mutant id contains any of {ids}; see --list")
    return chosen


def summary(results: list[Result]) -> tuple[int, int, list[Result], list[Result]]:
    killed = sum(r.killed for r in results)
    survivors = [r for r in results if r.status == "survived"]
    stale = [r for r in results if r.status == "stale"]
    return killed, len(survivors), survivors, stale


def markdown(results: list[Result], seconds: float) -> str:
    killed, n_surv, survivors, stale = summary(results)
    total = killed + n_surv
    date = datetime.date.today().isoformat()
    lines = [
        DOC_BEGIN,
        f"Latest run: {date}, {len(results)} mutants, **{killed}/{total} killed "
        f"({100 * killed / max(total, 1):.1f}%)**, {len(stale)} stale, {seconds / 60:.0f} min "
        "(generated by `make mutate`).",
        "",
        "| mutant | file | result | first failing test |",
        "|---|---|---|---|",
    ]
    for r in results:
        detail = r.detail.replace("|", "\\|")
        lines.append(f"| `{r.mutant.id}` | {r.mutant.file} | {r.status} | {detail} |")
    lines += ["", "Survivors:", ""]
    if not survivors:
        lines.append("- none")
    for r in survivors:
        lines.append(f"- `{r.mutant.id}`: {r.mutant.note or '(no note: investigate)'}")
    lines.append(DOC_END)
    return "\n".join(lines)


def write_doc(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else ""
    if DOC_BEGIN in text and DOC_END in text:
        pattern = re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END)
        text = re.sub(pattern, lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", help="run the mutants whose id contains any of these")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant run")
    ap.add_argument("--min-score", type=float, default=0.9)
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--doc", default="docs/mutation.md", help="results block to update")
    ap.add_argument("--no-doc", action="store_true", help="do not update the doc")
    args = ap.parse_args(argv)
    mutants = select(args.only)
    if args.list:
        for m in mutants:
            stale = check_stale(m)
            print(
                f"{m.id:40s} {m.file:32s} {' '.join(m.tests)}{'  STALE: ' + stale if stale else ''}"
            )
        print(f"{len(mutants)} mutants")
        return 0
    ids = [m.id for m in MUTANTS]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SystemExit(f"duplicate mutant ids: {dup}")

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gfnjax-mutate-") as tmp:
        tmp = Path(tmp)
        repo, cache = make_copy(tmp), tmp / "jax-cache"
        if not args.no_baseline:
            tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
            print(f"baseline: {len(tests)} test selections on the unmutated copy ...", flush=True)
            code, out, secs = run_pytest(repo, tests, 4 * args.timeout, cache, stop_first=False)
            if code != 0:
                print(out[-4000:])
                print(f"baseline failed (exit {code}): fix the tests before mutating")
                return 2
            print(f"baseline passed in {secs:.0f} s", flush=True)
        results = []
        for i, m in enumerate(mutants, 1):
            r = run_mutant(m, repo, args.timeout, cache)
            results.append(r)
            flag = {"survived": "SURVIVED", "stale": "STALE"}.get(r.status, r.status.upper())
            print(
                f"[{i}/{len(mutants)}] {flag:8s} {m.id} ({r.seconds:.0f} s) {r.detail}", flush=True
            )
    seconds = time.monotonic() - start

    killed, n_surv, survivors, stale = summary(results)
    total = killed + n_surv
    score = killed / max(total, 1)
    print(
        f"\nscore: {killed}/{total} killed ({100 * score:.1f}%), {len(stale)} stale, "
        f"{seconds / 60:.1f} min"
    )
    for r in survivors:
        print(f"  survived {r.mutant.id}: {r.mutant.note or '(no note: investigate)'}")
    for r in stale:
        print(f"  STALE {r.mutant.id}: {r.detail} — update tools/mutants.py")
    if not args.no_doc and not args.only:
        write_doc(ROOT / args.doc, markdown(results, seconds))
        print(f"updated {args.doc}")
    return 0 if score >= args.min_score and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
