"""Environment registry: `gfnjax.envs.make(name, **kwargs)`.

Register a new environment by adding its (module, class) to `_ENTRIES`; the class's `name`
is the registry key.
"""

from __future__ import annotations

import dataclasses
import importlib

from gfnjax.envs.base import Env
from gfnjax.envs.hypergrid import Hypergrid, HypergridState

_ENTRIES = [
    ("gfnjax.envs.hypergrid", "Hypergrid"),
    ("gfnjax.envs.bitseq", "BitSequence"),
    ("gfnjax.envs.bitseq", "AutoregressiveBitSequence"),
    ("gfnjax.envs.sequence", "AutoregressiveSequence"),
    ("gfnjax.envs.qm9str", "QM9String"),
    ("gfnjax.envs.molgraph", "MolGraph"),
]

REGISTRY: dict[str, type[Env]] = {}
for _module, _cls in _ENTRIES:
    _c = getattr(importlib.import_module(_module), _cls)
    REGISTRY[_c.name] = _c


def register(cls: type[Env]) -> type[Env]:
    REGISTRY[cls.name] = cls
    return cls


def get_class(name: str) -> type[Env]:
    if name not in REGISTRY:
        raise ValueError(f"unknown environment {name!r}; valid names: {sorted(REGISTRY)}")
    return REGISTRY[name]


def env_fields(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_class(name))]


def make(name: str, **kwargs) -> Env:
    """Build a registered environment; unknown names or fields raise ValueError listing valid ones."""
    cls = get_class(name)
    valid = env_fields(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} option(s) {unknown}; valid options: {sorted(valid)}")
    return cls(**kwargs)


__all__ = ["Env", "Hypergrid", "HypergridState", "REGISTRY", "make", "register", "env_fields"]
