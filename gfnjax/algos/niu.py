"""Niu, Mocanu, Liu et al., "GFlowNet Training by Policy Gradients" (ICML 2024): RL-U, RL-B, RL-G.

Costs to minimise (docs/methods.md §3.6): c_t = log P_F − log P_B, terminal
c_T = log P_F − log P_B − (log R(x) − log Z). log Z is a parameter stepped by Adam on
mean_b Σ_t c_t (its fixed point is the ELBO, where it acts as a constant baseline). Advantages:
GAE(λ = 0.99) of the rewards −c_t against a value net fitted to Monte-Carlo returns, mean-centred
over the batch. The variants differ in the backward policy:

  rl_u  uniform P_B;
  rl_b  P_B trained, after the forward update, to minimise E_{x~P_F} KL(P_B(τ|x) ‖ P_F(τ)):
        backward trajectories τ ~ P_B(·|x) from the batch's terminal states x, costs
        c^B_t = log P_B(s_t|s_{t+1}) − log P_F(s_{t+1}|s_t), REINFORCE with the backward
        cost-to-go against a backward value net V_B (λ = 1), mean-centred;
  rl_g  the same with the guided forward policy P_G in place of P_F:
        E_{x~P_F} KL(P_B(τ|x) ‖ P_G(τ)); P_G is P_F's logits passed through the environment's
        guide (gfnjax.algos.guides; on hypergrid the authors' guide caps the stop logit at
        log 1e−5 where R(s) = R0).

trpo.py (RL-T) shares these costs and replaces the Adam policy step by a trust-region step.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from gfnjax.algos import guides
from gfnjax.algos.pg import GAEConfig, PGAlgorithm
from gfnjax.losses.pg import (
    mean_center,
    niu_costs,
    niu_log_z_gradient,
    pg_surrogate,
    soft_return,
    value_regression,
)
from gfnjax.rollout import sample_backward
from gfnjax.utils import check_range, gather_last, masked_log_softmax


@dataclasses.dataclass(frozen=True)
class NiuConfig(GAEConfig):
    """Defaults of Niu et al.'s code (docs/presets.md): GAE λ = 0.99, value targets = Monte-Carlo
    returns (λ_V = 1) summed per trajectory, mean-centred advantages, log Z by Adam with
    lr_log_z = 0.1, value lr 5e−3, policy lr 1e−3. They train on 128 trajectories per iteration
    of a 4×256 MLP on 256² grids; the 16-trajectory 2×256 default compares with the other papers.

    log_reward_min: clamp of log R in the costs (their sequence code: −12); None = no clamp.
    """

    lam: float = 0.99
    value_target_lam: float | None = 1.0
    value_lr: float = 5e-3
    value_average: str = "trajectories"
    lr_log_z: float = 0.1
    advantage_norm: str = "center"
    log_reward_min: float | None = None

    SWEEPABLE: ClassVar[tuple[str, ...]] = GAEConfig.SWEEPABLE + ("lr_log_z",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lr_log_z", 0.0, 1e3, lo_open=True)
        if self.log_reward_min is not None:
            check_range(self, "log_reward_min", -1e6, 0.0)


@dataclasses.dataclass(frozen=True)
class RLBConfig(NiuConfig):
    """RL-B / RL-G: as NiuConfig with a learned backward policy (pb = "learned", required),
    trained with Adam at `pb_lr` (no decay) after the forward update, and a backward value net
    V_B trained at `value_lr`."""

    pb: str = "learned"
    pb_lr_decay: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.pb != "learned":
            raise ValueError(
                f"{type(self).__name__}.pb must be 'learned' (RL-B/RL-G train P_B), got {self.pb!r}"
            )


@dataclasses.dataclass(frozen=True)
class NiuAlgorithm(PGAlgorithm):
    """Shared cost form, log Z objective and GAE(λ) of Niu et al."""

    uses_value: ClassVar[bool] = True

    def policy_groups(self, hp):
        return {"net": hp["lr"], "log_z": hp["lr_log_z"]}

    def init_params(self, key, hp):
        params = super().init_params(key, hp)
        params["log_z"] = jnp.zeros((), jnp.float32)
        return params

    def log_z(self, state):
        return state.params["log_z"]

    def advantages(self, state, ev, traj, values):
        log_z = state.params["log_z"]
        costs = niu_costs(
            ev.log_pf,
            ev.log_pb,
            traj.log_reward,
            log_z,
            traj.mask,
            traj.done,
            self.config.log_reward_min,
        )
        adv, targets = self.gae_and_targets(-costs, values, traj.mask, state.hparams)
        extra = {"log_z": niu_log_z_gradient(costs, traj.mask)}
        info = {"soft_return": soft_return(-costs, traj.mask).mean() + log_z}
        return self.normalize(adv, traj.mask), targets, extra, info


@dataclasses.dataclass(frozen=True)
class RLU(NiuAlgorithm):
    name: ClassVar[str] = "rl_u"
    Config: ClassVar[type] = NiuConfig


@dataclasses.dataclass(frozen=True)
class RLB(NiuAlgorithm):
    """RL-B: backward policy by REINFORCE on E_{x~P_F} KL(P_B(τ|x) ‖ P_F(τ)) after the P_F step."""

    name: ClassVar[str] = "rl_b"
    Config: ClassVar[type] = RLBConfig
    pb_after_forward: ClassVar[bool] = True

    # the backward value net V_B has its own parameter group and Adam phase
    def phases(self, hp):
        return {**super().phases(hp), "value_b": {"value_b": hp["value_lr"]}}

    def init_params(self, key, hp):
        k_main, k_vb = jax.random.split(key)
        params = super().init_params(k_main, hp)
        obs = jnp.zeros((1, self.env.obs_dim), jnp.float32)
        params["value_b"] = self.value_net.init(k_vb, obs)
        return params

    def target_log_probs(self, logits: jax.Array, states, forward_mask: jax.Array) -> jax.Array:
        """log of the forward policy P_B is pulled towards, float[N, A] (P_F itself for RL-B)."""
        return masked_log_softmax(logits, forward_mask)

    def backward_mask(self, btraj):
        """bool[B, T]: the transitions P_B decides (the stop transition has P_B = 1 and, as in
        Niu et al.'s backward trajectories, carries no cost)."""
        if self.env.stop_action < 0:
            return btraj.mask
        return btraj.mask & (btraj.actions != self.env.stop_action)

    def backward_costs(self, state, btraj):
        """c^B_t = log P_B(s_t|s_{t+1}) − log P_target(s_{t+1}|s_t), float[B, T] (no gradient)."""
        B, T1 = btraj.obs.shape[:2]
        out = self.apply_net(
            state.params["net"], btraj.obs.reshape((B * T1,) + btraj.obs.shape[2:])
        )
        flat_states = jax.tree.map(lambda x: x.reshape((B * T1,) + x.shape[2:]), btraj.states)
        fmask = btraj.forward_mask.reshape(B * T1, -1)
        log_target = self.target_log_probs(out.logits, flat_states, fmask).reshape(B, T1, -1)
        log_pt = gather_last(log_target[:, :-1], btraj.actions)
        return jax.lax.stop_gradient(
            jnp.where(self.backward_mask(btraj), btraj.log_pb - log_pt, 0.0)
        )

    def backward_batch(self, state, terminals, key):
        """Backward trajectories τ ~ P_B(·|x) from `terminals` with their backward costs, the
        cost-to-go (the V_B target) and the centred advantages, all without gradient."""
        btraj = jax.lax.stop_gradient(
            sample_backward(self.env, key, terminals, self.policy_fn(state))
        )
        cost = self.backward_costs(state, btraj)
        mask = self.backward_mask(btraj)
        # the backward decision that made transition t also decides t−1, …, 0: cost-to-go is
        # the forward cumulative sum; V_B(s_{t+1}) is its baseline (GAE with λ = 1)
        to_go = jnp.where(mask, jnp.cumsum(cost, axis=1), 0.0)
        v_b = self.trajectory_values(state.params["value_b"], btraj)[:, 1:]
        adv = mean_center(jnp.where(mask, to_go - v_b, 0.0), mask)
        return btraj, cost, to_go, adv

    def backward_pg_loss(self, net_params, btraj, adv, reduce="mean"):
        """REINFORCE loss of P_B on the backward costs (minimised): its gradient estimates
        ∇ E_{x} KL(P_B(τ|x) ‖ P_target(τ))."""
        log_pb = self.evaluation(net_params, btraj).log_pb
        return pg_surrogate(log_pb, -adv, self.backward_mask(btraj), reduce)

    def pb_after_update(self, state, traj, key):
        # τ ~ P_B(·|x) from the forward batch's terminals x ~ P_F
        btraj, cost, to_go, adv = self.backward_batch(state, traj.final_state, key)

        def pb_loss(net_params):
            return self.backward_pg_loss(net_params, btraj, adv)

        def vb_loss(vb_params):
            v = self.trajectory_values(vb_params, btraj)[:, 1:]
            return value_regression(v, to_go, self.backward_mask(btraj), self.config.value_average)

        loss, g_pb = jax.value_and_grad(pb_loss)(state.params["net"])
        state = self.apply_step(state, "pb", {"net": g_pb})
        vloss, g_vb = jax.value_and_grad(vb_loss)(state.params["value_b"])
        state = self.apply_step(state, "value_b", {"value_b": g_vb})
        kl = jnp.mean(cost.sum(-1))
        return state, {"pb_loss": loss, "pb_value_loss": vloss, "backward_kl": kl}


@dataclasses.dataclass(frozen=True)
class RLG(RLB):
    """RL-G: as RL-B with the guided policy P_G as the target of P_B."""

    name: ClassVar[str] = "rl_g"
    Config: ClassVar[type] = RLBConfig

    def __post_init__(self):
        guides.get(self.env)  # ValueError naming the environments that have a guide

    def target_log_probs(self, logits, states, forward_mask):
        guided = guides.get(self.env)(self.env, states, logits)
        return masked_log_softmax(guided, forward_mask)
