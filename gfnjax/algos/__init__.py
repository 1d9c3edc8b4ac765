"""Algorithm registry: `gfnjax.algos.make(name, env, **config_overrides)`."""

from __future__ import annotations

import dataclasses

from gfnjax.algos.base import Algorithm, BaseConfig, TrainState
from gfnjax.algos.db import DB
from gfnjax.algos.fm import FM
from gfnjax.algos.subtb import SubTB
from gfnjax.algos.tb import TB
from gfnjax.envs.base import Env

REGISTRY: dict[str, type[Algorithm]] = {cls.name: cls for cls in (TB, DB, SubTB, FM)}


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
