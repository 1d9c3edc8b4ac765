"""Environment registry: `gfnjax.envs.make(name, **kwargs)`."""

from __future__ import annotations

import dataclasses

from gfnjax.envs.base import Env
from gfnjax.envs.hypergrid import Hypergrid, HypergridState

REGISTRY: dict[str, type[Env]] = {
    "hypergrid": Hypergrid,
}


def register(name: str, cls: type[Env]) -> None:
    REGISTRY[name] = cls


def env_fields(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_class(name))]


def get_class(name: str) -> type[Env]:
    if name not in REGISTRY:
        raise ValueError(f"unknown environment {name!r}; valid names: {sorted(REGISTRY)}")
    return REGISTRY[name]


def make(name: str, **kwargs) -> Env:
    """Build a registered environment; unknown names or fields raise ValueError listing valid ones."""
    cls = get_class(name)
    valid = env_fields(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} option(s) {unknown}; valid options: {sorted(valid)}")
    return cls(**kwargs)


__all__ = ["Env", "Hypergrid", "HypergridState", "REGISTRY", "make", "register", "env_fields"]
