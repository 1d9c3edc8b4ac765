"""gfnjax: JAX-native, purely functional GFlowNet training library and benchmark suite.

The package root is lazy: `import gfnjax.losses` loads the pure losses only (no environment, no
network, no RDKit); `gfnjax.algos`, `gfnjax.train(...)`, ... are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_SUBMODULES = (
    "algos",
    "bench",
    "envs",
    "losses",
    "metrics",
    "nets",
    "optim",
    "replay",
    "rollout",
    "trainer",
)
_FROM_TRAIN = ("Trainer", "make_trainer", "train", "train_seeds")

__all__ = [*_SUBMODULES, *_FROM_TRAIN, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"gfnjax.{name}")
    if name in _FROM_TRAIN:
        return getattr(importlib.import_module("gfnjax.trainer"), name)
    raise AttributeError(f"module 'gfnjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
