"""Niu et al. (ICML 2024, (b)), "GFlowNet training by policy gradients": RL-U, RL-B, RL-G.

Costs to minimise (REFERENCE.md §3.6): c_t = log P_F − log P_B, terminal
c_T = log P_F(stop|x) − (log R(x) − log Z); log Z ← log Z − η_Z·mean Σ_t c_t tracks the ELBO and
acts as a constant baseline. Advantages: GAE(λ = 0.99) of the rewards −c_t with a value net,
mean-centred over the batch. The three variants differ only in the backward policy:

  rl_u  uniform P_B;
  rl_b  P_B trained to minimise KL(P_B(τ|x) ‖ P_F(τ)) on backward trajectories τ ~ P_B(·|x)
        started from the batch's terminal states (REINFORCE with the backward cost-to-go
        Σ_{t'≤t} (log P_B − log P_F), mean-centred; Niu et al. use a backward value net instead);
  rl_g  P_B trained by maximum likelihood of trajectories sampled forward from a guided policy
        P_G (our reading of the guided distribution of (b)): P_F with the environment's guide
        applied, `env.guide_logit_cap(obs)` — on hypergrid stop capped at log 1e−5 where
        R(s) ≤ R0. Environments without a guide raise ValueError at construction.

trpo.py (RL-T) shares these costs and replaces the Adam policy step by a trust-region step.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from gfnjax.algos.pg import PGAlgorithm, ValueConfig
from gfnjax.losses.flow import backward_maximum_likelihood
from gfnjax.losses.pg import gae, mean_center, niu_costs, niu_log_z_update, soft_return
from gfnjax.rollout import sample_backward, sample_forward
from gfnjax.utils import check_range

sg = jax.lax.stop_gradient


@dataclasses.dataclass(frozen=True)
class NiuConfig(ValueConfig):
    """Defaults of Niu et al. (b): λ = 0.99 (GAE), η_Z = lr_log_z = 0.1, mean-centred advantages,
    policy lr 1e−3 and value lr 1e−3 (assumed; (b) code), 16 trajectories per iteration to compare
    with (a, c) (Niu et al. use 128 on 256² grids: set batch_size=128)."""

    lam: float = 0.99
    lr_log_z: float = 0.1
    advantage_norm: str = "center"

    SWEEPABLE: ClassVar[tuple[str, ...]] = ValueConfig.SWEEPABLE + ("lr_log_z",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lr_log_z", 0.0, 1.0, lo_open=True)


@dataclasses.dataclass(frozen=True)
class RLBConfig(NiuConfig):
    """RL-B: as NiuConfig with a learned backward policy (pb = "learned", required)."""

    pb: str = "learned"

    def __post_init__(self):
        super().__post_init__()
        if self.pb != "learned":
            raise ValueError(f"{type(self).__name__}.pb must be 'learned' (RL-B/RL-G train P_B), got {self.pb!r}")


@dataclasses.dataclass(frozen=True)
class NiuAlgorithm(PGAlgorithm):
    """Shared cost form, log Z update and GAE(λ) of (b)."""

    uses_value: ClassVar[bool] = True

    def init_params(self, key, hp):
        params = super().init_params(key, hp)
        params["log_z"] = jnp.zeros((), jnp.float32)
        return params

    def log_z(self, state):
        return state.params["log_z"]

    def advantages(self, state, ev, traj, values):
        log_z = state.params["log_z"]
        costs = niu_costs(ev.log_pf, ev.log_pb, traj.log_reward, log_z, traj.mask, traj.done)
        adv, targets = gae(-costs, values, traj.mask, state.hparams["lam"])
        new_log_z = niu_log_z_update(log_z, costs, traj.mask, state.hparams["lr_log_z"])
        state = state.replace(params={**state.params, "log_z": new_log_z})
        info = {"soft_return": soft_return(-costs, traj.mask).mean() + log_z}
        return self.normalize(adv, traj.mask), targets, state, info


@dataclasses.dataclass(frozen=True)
class RLU(NiuAlgorithm):
    name: ClassVar[str] = "rl_u"
    Config: ClassVar[type] = NiuConfig


@dataclasses.dataclass(frozen=True)
class RLB(NiuAlgorithm):
    name: ClassVar[str] = "rl_b"
    Config: ClassVar[type] = RLBConfig

    def backward_loss(self, net_params, traj, key, state):
        """KL(P_B(τ|x) ‖ P_F(τ)) by REINFORCE on τ ~ P_B(·|x), x = the batch's terminal states."""
        btraj = sg(sample_backward(self.env, key, traj.final_state, self.policy_fn(state)))
        ev = self.evaluation(net_params, btraj)
        cost = sg(jnp.where(btraj.mask, ev.log_pb - ev.log_pf, 0.0))
        # the backward action creating transition t decides transitions t, t−1, …, 0
        adv = mean_center(jnp.cumsum(cost, axis=1), btraj.mask)
        return jnp.mean(jnp.where(btraj.mask, ev.log_pb * adv, 0.0).sum(-1))


@dataclasses.dataclass(frozen=True)
class RLG(NiuAlgorithm):
    name: ClassVar[str] = "rl_g"
    Config: ClassVar[type] = RLBConfig

    def __post_init__(self):
        if not callable(getattr(self.env, "guide_logit_cap", None)):
            raise ValueError(
                f"rl_g needs a guide: environment {self.env.name!r} has no guide_logit_cap(obs) "
                "method (hypergrid provides one); use rl_b or rl_u instead"
            )

    def guided_policy_fn(self, state):
        base = self.policy_fn(state)

        def fn(obs):
            logits, back = base(obs)
            return jnp.minimum(jax.nn.log_softmax(logits, -1), self.env.guide_logit_cap(obs)), back

        return fn

    def backward_loss(self, net_params, traj, key, state):
        """−mean Σ log P_B on trajectories of the guided forward policy P_G."""
        gtraj = sg(sample_forward(self.env, key, self.guided_policy_fn(state), self.config.batch_size))
        ev = self.evaluation(net_params, gtraj)
        return backward_maximum_likelihood(ev.log_pb, gtraj.mask)
