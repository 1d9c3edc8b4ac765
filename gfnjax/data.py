"""Data directory for environments backed by published reward tables (DESIGN.md "Data").

The tables are not part of the package. They are looked up in

    $GFNJAX_DATA                      if the environment variable is set, else
    <repository root>/../shared/data  (the folder beside the checkout, as in this repo's CI).

A missing or unreadable file raises `DataFileError` naming the expected path and where the file
comes from, so a user knows what to download and where to put it.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "GFNJAX_DATA"


class DataFileError(FileNotFoundError, ValueError):
    """A data table is missing or corrupt (also a ValueError, so CLIs report it as bad input)."""


def data_dir() -> Path:
    """The data directory: $GFNJAX_DATA, default `../shared/data` beside the repository root."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_path(name: str) -> Path:
    return data_dir() / name


def _where(path: Path, origin: str) -> str:
    return (
        f"expected at {path} (set {ENV_VAR} to the folder holding it; default ../shared/data "
        f"beside the repository). Origin: {origin}"
    )


@functools.lru_cache(maxsize=None)
def _load_npy(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def load_array(
    name: str, origin: str, shape: tuple[int, ...] | None = None, dtype: Any = None
) -> np.ndarray:
    """Load `name` (.npy) from the data directory; check shape/dtype; clear error if absent/corrupt.

    The array is cached per path and returned read-only (callers must not modify it).
    """
    path = data_path(name)
    if not path.is_file():
        raise DataFileError(f"data file {name!r} not found: {_where(path, origin)}")
    try:
        arr = _load_npy(str(path))
    except Exception as e:  # noqa: BLE001 - any read failure means a corrupt file
        raise DataFileError(f"data file {name!r} is corrupt ({e}): {_where(path, origin)}") from e
    if shape is not None and arr.shape != tuple(shape):
        raise DataFileError(
            f"data file {name!r} has shape {arr.shape}, expected {tuple(shape)}: "
            f"{_where(path, origin)}"
        )
    if dtype is not None and arr.dtype != np.dtype(dtype):
        raise DataFileError(
            f"data file {name!r} has dtype {arr.dtype}, expected {np.dtype(dtype)}: "
            f"{_where(path, origin)}"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataFileError(
            f"data file {name!r} contains non-finite values: {_where(path, origin)}"
        )
    arr.flags.writeable = False
    return arr


def load_json(name: str, origin: str) -> Any:
    """Load `name` (.json) from the data directory with the same error convention."""
    path = data_path(name)
    if not path.is_file():
        raise DataFileError(f"data file {name!r} not found: {_where(path, origin)}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        raise DataFileError(f"data file {name!r} is corrupt ({e}): {_where(path, origin)}") from e
