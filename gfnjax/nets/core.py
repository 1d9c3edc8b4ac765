"""Flax networks: one torso with several heads (torchgfn pays two passes for P_F and P_B).

`PolicyNet(obs) -> NetOutput` with
  logits:          float[..., num_actions]            forward policy logits (unmasked)
  backward_logits: float[..., num_backward_actions]   learned P_B logits, or None
  log_flow:        float[...]                          log F(s) head, or None
`ValueNet(obs) -> float[...]` is a scalar head on its own torso.

Output layers are zero-initialised by default (`output_init="zeros"`): every method then starts
from the exactly uniform policy and V = 0, which keeps comparisons between methods free of an
initialisation lottery. The authors' code uses its framework's default initialiser instead
(LeCun-normal in flax/equinox, Kaiming-uniform in PyTorch); `output_init="default"` selects
flax's default for the heads.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax

OUTPUT_INITS = ("zeros", "default")


class NetOutput(NamedTuple):
    logits: jax.Array
    backward_logits: jax.Array | None
    log_flow: jax.Array | None


class MLP(nn.Module):
    """Dense layers with an activation after each: float[..., D] -> float[..., hidden[-1]]."""

    hidden: Sequence[int] = (256, 256)
    activation: Callable = nn.relu
    per_token: bool = False  # a torso's output is flat features (see nets.transformer)

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        return x


def _head(n: int, name: str | None, output_init: str) -> nn.Dense:
    if output_init == "zeros":
        return nn.Dense(n, kernel_init=nn.initializers.zeros, name=name)
    return nn.Dense(n, name=name)


class PolicyNet(nn.Module):
    """Shared torso with forward-logit, optional backward-logit and optional log-flow heads.

    `pb_torso` (optional) gives the backward head a torso of its own, as in Niu et al.'s code
    where P_B is a separate network; otherwise P_B shares the torso (one pass, Tiapkin et al.'s
    "tied" P_B and the Ent-PPO code).
    """

    num_actions: int
    num_backward_actions: int
    torso: nn.Module
    learn_pb: bool = False
    flow_head: bool = False
    output_init: str = "zeros"
    pb_torso: nn.Module | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> NetOutput:
        h = self.torso(obs)
        tokens = getattr(self.torso, "per_token", False)
        if tokens:  # h: L token features; actions (position, symbol) are scored per token
            L = self.num_backward_actions
            ht = h.reshape(h.shape[:-1] + (L, -1))
            logits = _head(self.num_actions // L, "pf", self.output_init)(ht)
            logits = logits.reshape(h.shape[:-1] + (self.num_actions,))
            h = ht.mean(-2)  # pooled features for the log-flow head
        else:
            logits = _head(self.num_actions, "pf", self.output_init)(h)
        back = None
        if self.learn_pb:
            if self.pb_torso is None:
                src, src_tokens = (ht if tokens else h), tokens
            else:
                src = self.pb_torso(obs)
                src_tokens = getattr(self.pb_torso, "per_token", False)
                if src_tokens:
                    src = src.reshape(src.shape[:-1] + (self.num_backward_actions, -1))
            if src_tokens:  # backward action b clears token b: one logit per token
                back = _head(1, "pb", self.output_init)(src)[..., 0]
            else:
                back = _head(self.num_backward_actions, "pb", self.output_init)(src)
        log_flow = _head(1, "flow", self.output_init)(h)[..., 0] if self.flow_head else None
        return NetOutput(logits, back, log_flow)


class ValueNet(nn.Module):
    """Scalar value V(s): float[..., D] -> float[...]."""

    torso: nn.Module
    output_init: str = "zeros"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return _head(1, None, self.output_init)(self.torso(obs))[..., 0]


def num_params(params) -> int:
    """Number of scalars in a parameter pytree."""
    return sum(int(x.size) for x in jax.tree.leaves(params))


def _mlp_factory(hidden: Sequence[int], env=None) -> MLP:
    return MLP(hidden=tuple(hidden))
