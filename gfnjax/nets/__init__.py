"""Networks: the policy/value heads and the torso registry.

    make_torso(name, hidden, env) -> flax Module mapping float[..., obs_dim] to features

Torsos register themselves here (never through an environment import): "mlp" for every
environment, "transformer" for environments that declare `token_shape`, "graph" for those that
declare `graph_layout`. An environment only names its preferred torso (`Env.default_torso`);
`resolve_torso` turns the config's "auto" into it.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

import flax.linen as nn

from gfnjax.nets.core import MLP, OUTPUT_INITS, NetOutput, PolicyNet, ValueNet, num_params

# name -> "module:factory"; factories take (hidden, env) and raise ValueError naming what the
# environment must declare. Imported on first use, so `import gfnjax.nets` stays light.
TORSOS: dict[str, str] = {
    "mlp": "gfnjax.nets.core:_mlp_factory",
    "transformer": "gfnjax.nets.transformer:make_transformer_torso",
    "graph": "gfnjax.nets.graph:make_graph_torso",
}


def register_torso(name: str, factory: str | Callable[..., nn.Module]) -> None:
    """Add a torso: `factory(hidden, env) -> nn.Module`, or its "module:function" path."""
    TORSOS[name] = factory


def torso_names() -> list[str]:
    return sorted(TORSOS)


def check_torso(name: str) -> None:
    """Raise ValueError for an unknown torso name (``auto`` is always valid)."""
    if name != "auto" and name not in TORSOS:
        raise ValueError(f"torso must be one of {['auto', *torso_names()]}, got {name!r}")


def _factory(name: str) -> Callable[..., nn.Module]:
    check_torso(name)
    entry = TORSOS[name]
    if callable(entry):
        return entry
    module, fn = entry.split(":")
    return getattr(importlib.import_module(module), fn)


def resolve_torso(name: str, env: Any) -> str:
    """The torso a config asks for, with "auto" replaced by the environment's `default_torso`."""
    return env.default_torso if name == "auto" else name


def make_torso(name: str, hidden: Sequence[int], env: Any = None) -> nn.Module:
    """Build a registered torso; `env` supplies the declared layout (token_shape, graph_layout)."""
    return _factory(name)(hidden=tuple(hidden), env=env)


__all__ = [
    "MLP",
    "OUTPUT_INITS",
    "NetOutput",
    "PolicyNet",
    "TORSOS",
    "ValueNet",
    "check_torso",
    "make_torso",
    "num_params",
    "register_torso",
    "resolve_torso",
    "torso_names",
]
