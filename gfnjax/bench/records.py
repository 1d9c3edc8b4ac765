"""Results files: JSON lines, one record per cell (env × algo × effective config × seed).

Guarantees (docs/harness.md "Results files"):

- `check_writable(path)` is called before anything is compiled, so a run never trains for an hour
  and then fails to save.
- `append_records` writes under an exclusive `flock` (two sweeps on one file never interleave) in
  one `write` + `fsync`; if the write fails (disk full) the file is truncated back to its previous
  length, so no half record is left. A torn last line left by an older crash (no final newline) is
  moved to `<path>.torn` with a warning before the next append, so a file only ever holds complete
  lines and `pandas.read_json(path, lines=True)` keeps working.
- `read_records` warns on every line it skips (not JSON, or JSON that is not a record), with the
  line number; `unique_records` keeps one record per cell (the newest), so the same cell written
  twice (a command run twice into one file, two concurrent sweeps) is never counted as two seeds.
- Every record carries `cell_id` (a hash of what determines its numbers) and `code_version` (a hash
  of the gfnjax sources that computed them), so a resume can refuse results from other code.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

REQUIRED_KEYS = ("env", "algo", "seed", "final")
CELL_KEYS = (
    "env",
    "env_config",
    "algo",
    "algo_config",
    "metrics_config",
    "iterations",
    "eval_every",
    "seed",
)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def mean_std(values) -> tuple[float, float, int]:
    """(mean, sample std with ddof 1, count) over the finite entries of `values` (None counts as
    missing); std 0 for one value, (nan, nan, 0) for none. Every table of the harness and the
    studies reports this."""
    v = np.array([np.nan if x is None else x for x in np.ravel(np.asarray(values, object))], float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def jsonable(x: Any) -> Any:
    """Plain JSON values: tuples/arrays -> lists, non-finite floats -> None (null)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        x = dataclasses.asdict(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        return jsonable(np.asarray(x).tolist())
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def cell_id(cell: dict) -> str:
    """Stable 16-hex-digit id of a cell: sha256 of its canonical JSON (sorted keys)."""
    text = json.dumps(jsonable(cell), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_cell_id(rec: dict) -> str:
    """The record's `cell_id`, or (older records) the id computed from its fields."""
    if isinstance(rec.get("cell_id"), str):
        return rec["cell_id"]
    return cell_id({k: rec.get(k) for k in CELL_KEYS})


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """12-hex-digit sha256 over the gfnjax package's .py sources (path + content, sorted).

    Changes with any edit of the library, committed or not, and needs no git checkout."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def check_writable(path: str, what: str = "--out") -> None:
    """Raise ValueError (before any compilation) unless records can be appended to `path`.

    Creates missing parent folders; an existing file is opened for appending and left untouched;
    a new file is created and removed again."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(
            f"{what} {path!r} is a directory; give a file path such as {p / 'runs.jsonl'}"
        )
    parent = p.parent
    for anc in [parent, *parent.parents]:  # the nearest existing ancestor must be a folder
        if anc.exists():
            if not anc.is_dir():
                raise ValueError(f"{what} {path!r}: {str(anc)!r} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        existed = p.exists()
        with open(p, "ab"):
            pass
        if not existed:
            p.unlink()
    except OSError as e:
        raise ValueError(f"{what} {path!r} is not writable: {e.strerror or e}") from None


def _repair_tail(f, path: str) -> None:
    """If the file (open a+b, locked) ends without a newline, move the torn tail to path.torn."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    # the torn tail starts after the last newline (or at 0)
    block = 1 << 16
    pos = size
    start = 0
    while pos > 0:
        lo = max(0, pos - block)
        f.seek(lo)
        chunk = f.read(pos - lo)
        i = chunk.rfind(b"\n")
        if i >= 0:
            start = lo + i + 1
            break
        pos = lo
    f.seek(start)
    tail = f.read()
    with open(path + ".torn", "ab") as q:
        q.write(tail + b"\n")
        q.flush()
        os.fsync(q.fileno())
    f.truncate(start)
    f.flush()
    os.fsync(f.fileno())
    warn(
        f"{path}: the last line was incomplete ({len(tail)} bytes, left by an interrupted write); "
        f"moved it to {path}.torn and removed it from the results file"
    )


def append_records(path: str, records: list[dict]) -> None:
    """Append one JSON line per record, atomically (see the module docstring)."""
    if not records:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = "".join(json.dumps(jsonable(r), allow_nan=False) + "\n" for r in records)
    data = data.encode("utf-8")
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            _repair_tail(f, path)
            size = f.seek(0, os.SEEK_END)
            try:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            except BaseException:
                f.truncate(size)  # never leave half a record (e.g. ENOSPC mid-write)
                f.flush()
                raise
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def is_record(x: Any) -> bool:
    return (
        isinstance(x, dict)
        and all(k in x for k in REQUIRED_KEYS)
        and isinstance(x.get("final"), dict)
    )


def read_records(
    path: str, missing_ok: bool = True, on_skip: Callable[[str], None] | None = warn
) -> list[dict]:
    """Every record of a results file, in file order. Each skipped line (not JSON, or not a
    record) is reported through `on_skip` with its line number. A missing file is [] when
    `missing_ok`, else FileNotFoundError."""
    if not os.path.exists(path):
        if missing_ok:
            return []
        raise FileNotFoundError(f"results file {path!r} not found")
    if os.path.isdir(path):
        raise IsADirectoryError(f"results file {path!r} is a directory")
    on_skip = on_skip or (lambda msg: None)
    out = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                torn = "" if raw.endswith(b"\n") else " (torn last line)"
                on_skip(f"{path}:{n}: skipped a line that is not valid JSON{torn}: {e}")
                continue
            if not is_record(rec):
                keys = sorted(rec)[:6] if isinstance(rec, dict) else type(rec).__name__
                on_skip(
                    f"{path}:{n}: skipped a JSON line that is not a results record "
                    f"(needs {list(REQUIRED_KEYS)}; got {keys})"
                )
                continue
            out.append(rec)
    return out


def unique_records(
    records: list[dict], on_duplicate: Callable[[str], None] | None = warn, source: str = ""
) -> list[dict]:
    """One record per cell: the last (newest) of records sharing a cell id, in the order of
    their last occurrence; reports how many duplicates were dropped."""
    last: dict[str, int] = {}
    for i, r in enumerate(records):
        last[record_cell_id(r)] = i
    keep = sorted(last.values())
    dropped = len(records) - len(keep)
    if dropped and on_duplicate:
        on_duplicate(
            f"{source + ': ' if source else ''}{dropped} duplicate record(s) of the same cell "
            "(same env, configs, schedule and seed) ignored; the newest of each is used"
        )
    return [records[i] for i in keep]


def load_results(paths: list[str]) -> list[dict]:
    """Records of several files for reports and checks: missing files are errors, bad lines are
    warned about, duplicates across and within files are counted once."""
    records = []
    for p in paths:
        records += read_records(p, missing_ok=False)
    return unique_records(records, source=", ".join(paths))
