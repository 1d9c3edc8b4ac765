"""Algorithm registry: `gfnjax.algos.make(name, env, **config_overrides)`.

Each algorithm module defines a `Config` frozen dataclass and an `Algorithm` subclass with a
`name`; register a new one by adding its (module, class) to `_ENTRIES`.
"""

from __future__ import annotations

import dataclasses
import importlib

from gfnjax.algos.base import Algorithm, BaseConfig, TrainState
from gfnjax.envs.base import Env

_ENTRIES = [
    ("gfnjax.algos.tb", "TB"),
    ("gfnjax.algos.db", "DB"),
    ("gfnjax.algos.subtb", "SubTB"),
    ("gfnjax.algos.fm", "FM"),
    ("gfnjax.algos.vpg", "VPG"),
    ("gfnjax.algos.vpg", "RTG"),
    ("gfnjax.algos.vpg", "VBaseline"),
    ("gfnjax.algos.vpg", "GAE"),
    ("gfnjax.algos.vpg", "GAESubTB"),
    ("gfnjax.algos.niu", "RLU"),
    ("gfnjax.algos.niu", "RLB"),
    ("gfnjax.algos.niu", "RLG"),
    ("gfnjax.algos.trpo", "TRPO"),
    ("gfnjax.algos.ppo", "PPO"),
    ("gfnjax.algos.soft_dqn", "SoftDQN"),
    ("gfnjax.algos.soft_dqn", "MDQN"),
]

REGISTRY: dict[str, type[Algorithm]] = {}
for _module, _cls in _ENTRIES:
    _c = getattr(importlib.import_module(_module), _cls)
    REGISTRY[_c.name] = _c


def register(cls: type[Algorithm]) -> type[Algorithm]:
    REGISTRY[cls.name] = cls
    return cls


def get_class(name: str) -> type[Algorithm]:
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; valid names: {sorted(REGISTRY)}")
    return REGISTRY[name]


def config_fields(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_class(name).Config)]


def make(name: str, env: Env, **overrides) -> Algorithm:
    """Build a registered algorithm; unknown names or config fields raise ValueError."""
    cls = get_class(name)
    valid = config_fields(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; valid fields: {sorted(valid)}")
    return cls(env=env, config=cls.Config(**overrides))


__all__ = ["Algorithm", "BaseConfig", "TrainState", "REGISTRY", "make", "register", "config_fields"]
