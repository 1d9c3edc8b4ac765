"""Algorithm registry: `gfnjax.algos.make(name, env, **overrides)`.

`make` starts from the published preset for the (algorithm, environment) pair
(`gfnjax.algos.presets`, docs/presets.md), then applies the user's overrides. `REGISTRY` maps a
name to "module:Class", imported on first use; adding an algorithm is one module and one line
here (docs/adding_an_algorithm.md).
"""

from __future__ import annotations

import dataclasses

from gfnjax.algos.base import Algorithm, BaseConfig, StepInfo, TrainState
from gfnjax.envs.base import Env
from gfnjax.utils import Registry

REGISTRY: dict[str, str] = {
    "tb": "gfnjax.algos.tb:TB",
    "db": "gfnjax.algos.db:DB",
    "subtb": "gfnjax.algos.subtb:SubTB",
    "fm": "gfnjax.algos.fm:FM",
    "vpg": "gfnjax.algos.vpg:VPG",
    "rtg": "gfnjax.algos.vpg:RTG",
    "v_baseline": "gfnjax.algos.vpg:VBaseline",
    "gae": "gfnjax.algos.vpg:GAE",
    "gae_subtb": "gfnjax.algos.vpg:GAESubTB",
    "rl_u": "gfnjax.algos.niu:RLU",
    "rl_b": "gfnjax.algos.niu:RLB",
    "rl_g": "gfnjax.algos.niu:RLG",
    "trpo": "gfnjax.algos.trpo:TRPO",
    "ppo": "gfnjax.algos.ppo:PPO",
    "soft_dqn": "gfnjax.algos.soft_dqn:SoftDQN",
    "mdqn": "gfnjax.algos.soft_dqn:MDQN",
}
_TABLE = Registry("algorithm", REGISTRY)
REGISTRY = _TABLE.entries  # the live table (register() adds to it)
names = _TABLE.names
register = _TABLE.register
get_class = _TABLE.get


def config_fields(name: str) -> list[str]:
    """The configurable fields of an algorithm (fields it declares inactive are left out)."""
    cls = get_class(name).Config
    inactive = set(getattr(cls, "INACTIVE", ()))
    return [f.name for f in dataclasses.fields(cls) if f.name not in inactive]


def make(name: str, env: Env, preset: str | None = "auto", **overrides) -> Algorithm:
    """Build a registered algorithm for `env`: the preset for (name, env) (docs/presets.md), then
    `overrides`. preset="auto" picks the published preset of this pair (or the config defaults
    when there is none), a preset name picks another one, None uses the config defaults only.
    Unknown names or fields raise ValueError listing the valid ones."""
    from gfnjax.algos.presets import NONE, resolve

    cls = get_class(name)
    valid = config_fields(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; valid fields: {sorted(valid)}")
    chosen = resolve(name, env, preset) if preset is not None else NONE
    return cls(env=env, config=cls.Config(**{**chosen.values, **overrides}), preset=chosen)


__all__ = [
    "Algorithm",
    "BaseConfig",
    "REGISTRY",
    "StepInfo",
    "TrainState",
    "config_fields",
    "get_class",
    "make",
    "names",
    "register",
]
