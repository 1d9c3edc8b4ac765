"""Flow matching (Bengio et al. 2021): forward logits are log edge flows log F(s→s').

The policy is P_F(a|s) ∝ F(s→a) over valid actions. The in-flow of every visited state s_t
(t ≥ 1) needs the edge flows of all its parents, obtained with `env.backward_step` for each
backward action and one batched network pass over the [B, T, A_b] parents.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from gfnjax.algos.flow import FlowAlgorithm, FlowConfig
from gfnjax.losses.flow import flow_matching
from gfnjax.rollout import apply_packed
from gfnjax.utils import gather_last


@dataclasses.dataclass(frozen=True)
class Config(FlowConfig):
    """FM: lr 1e−3, 16 trajectories per iteration (as TB); `pb` must stay "uniform" (FM learns
    edge flows, which define P_B themselves; no backward policy is trained)."""

    INACTIVE: ClassVar[tuple[str, ...]] = ("pb", "pb_lr", "pb_steps", "pb_lr_decay")

    def __post_init__(self):
        super().__post_init__()
        if self.pb != "uniform":
            raise ValueError("fm Config.pb must be 'uniform': flow matching has no backward policy")


@dataclasses.dataclass(frozen=True)
class FM(FlowAlgorithm):
    name: ClassVar[str] = "fm"
    Config: ClassVar[type] = Config

    def loss(self, params, traj, hp):
        env = self.env
        B, T1 = traj.obs.shape[:2]
        A_b = env.num_backward_actions
        # states s_1..s_T, flattened: [B·T]
        states = jax.tree.map(
            lambda x: x[:, 1:].reshape((B * (T1 - 1),) + x.shape[2:]), traj.states
        )
        n = B * (T1 - 1)

        def parent_of(b):
            ba = jnp.full((n,), b, jnp.int32)
            parent = env.backward_step(states, ba)
            return env.observe(parent), env.to_forward_action(states, ba)

        p_obs, p_act = jax.vmap(parent_of)(jnp.arange(A_b))  # [A_b, n, D], [A_b, n]
        logits = lambda o: self.apply_net(params["net"], o).logits
        in_mask = traj.backward_mask[:, 1:]
        # network passes on real rows only: valid parents of valid states, and valid states
        real_parent = (in_mask & traj.mask[..., None]).reshape(n, A_b).T.reshape(-1)
        flat_p = p_obs.reshape((A_b * n,) + p_obs.shape[2:])
        p_logits = apply_packed(logits, flat_p, real_parent, B, self.pack)
        in_flows = gather_last(p_logits.reshape(A_b, n, -1), p_act).T.reshape(B, T1 - 1, A_b)
        out_obs = traj.obs[:, 1:].reshape((n,) + traj.obs.shape[2:])
        out_flows = apply_packed(logits, out_obs, traj.mask.reshape(-1), B, self.pack)
        out_flows = out_flows.reshape(B, T1 - 1, -1)  # [B, T, A]
        out_mask = traj.forward_mask[:, 1:]
        is_term = env.is_terminal(states).reshape(B, T1 - 1)
        log_r = env.log_reward(states).reshape(B, T1 - 1)
        loss = flow_matching(in_flows, in_mask, out_flows, out_mask, log_r, is_term, traj.mask)
        return loss, {"loss": loss}
