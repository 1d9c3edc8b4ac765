"""Flax networks: one torso with several heads (torchgfn pays two passes for P_F and P_B).

`PolicyNet(obs) -> NetOutput` with
  logits:          float[..., num_actions]            forward policy logits (unmasked)
  backward_logits: float[..., num_backward_actions]   learned P_B logits, or None
  log_flow:        float[...]                          log F(s) head, or None
The torso is an MLP by default; sequence environments plug in a transformer torso through
`torso_factory` (see `make_torso`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class NetOutput(NamedTuple):
    logits: jax.Array
    backward_logits: jax.Array | None
    log_flow: jax.Array | None


class MLP(nn.Module):
    """Dense layers with an activation after each: float[..., D] -> float[..., hidden[-1]]."""

    hidden: Sequence[int] = (256, 256)
    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        return x


TORSOS: dict[str, Callable[..., nn.Module]] = {}


def register_torso(name: str, factory: Callable[..., nn.Module]) -> None:
    TORSOS[name] = factory


def make_torso(name: str, hidden: Sequence[int], env=None) -> nn.Module:
    if name == "mlp":
        return MLP(hidden=tuple(hidden))
    if name not in TORSOS:
        raise ValueError(f"unknown network torso {name!r}; valid: {['mlp', *sorted(TORSOS)]}")
    return TORSOS[name](hidden=tuple(hidden), env=env)


class PolicyNet(nn.Module):
    """Shared torso with forward-logit, optional backward-logit and optional log-flow heads."""

    num_actions: int
    num_backward_actions: int
    torso: nn.Module
    learn_pb: bool = False
    flow_head: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> NetOutput:
        h = self.torso(obs)
        # Zero-initialised output layers start from the uniform policy, which keeps the first
        # iterations well-behaved for every objective.
        dense = lambda n, name: nn.Dense(n, kernel_init=nn.initializers.zeros, name=name)
        logits = dense(self.num_actions, "pf")(h)
        back = dense(self.num_backward_actions, "pb")(h) if self.learn_pb else None
        log_flow = dense(1, "flow")(h)[..., 0] if self.flow_head else None
        return NetOutput(logits, back, log_flow)


class ValueNet(nn.Module):
    """Scalar value V(s): float[..., D] -> float[...]."""

    torso: nn.Module

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return nn.Dense(1, kernel_init=nn.initializers.zeros)(self.torso(obs))[..., 0]


def num_params(params) -> int:
    return sum(int(jnp.size(x)) for x in jax.tree_util.tree_leaves(params))
