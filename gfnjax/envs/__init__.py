"""Environment registry: `gfnjax.envs.make(name, **options)`.

`REGISTRY` maps a name to "module:Class"; the module is imported only when that environment is
used, so importing gfnjax.envs loads no environment (and no RDKit). Adding an environment is one
new module and one line here (docs/adding_an_environment.md).
"""

from __future__ import annotations

import dataclasses

from gfnjax.envs.base import Env
from gfnjax.utils import Registry

REGISTRY: dict[str, str] = {
    "hypergrid": "gfnjax.envs.hypergrid:Hypergrid",
    "bitseq": "gfnjax.envs.bitseq:BitSequence",
    "bitseq_ar": "gfnjax.envs.bitseq:AutoregressiveBitSequence",
    "sequence": "gfnjax.envs.sequence:AutoregressiveSequence",
    "qm9str": "gfnjax.envs.qm9str:QM9String",
    "molgraph": "gfnjax.envs.molgraph:MolGraph",
}
_TABLE = Registry("environment", REGISTRY)
REGISTRY = _TABLE.entries  # the live table (register() adds to it)
names = _TABLE.names
register = _TABLE.register
get_class = _TABLE.get


def env_fields(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_class(name))]


def make(name: str, **kwargs) -> Env:
    """Build a registered environment; unknown names or fields raise ValueError listing valid
    ones."""
    cls = get_class(name)
    valid = env_fields(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} option(s) {unknown}; valid options: {sorted(valid)}")
    return cls(**kwargs)


__all__ = ["Env", "REGISTRY", "env_fields", "get_class", "make", "names", "register"]
