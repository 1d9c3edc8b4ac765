"""TRPO on Niu et al.'s costs: RL-T of Niu et al. 2024 and the TRPO baseline of the Ent-PPO
paper. The costs, log Z and GAE of `niu.py` with a trust-region policy step
(Schulman et al. 2015; `gfnjax.optim.trpo_step`): conjugate gradient on the Hessian-vector
product of the per-trajectory KL (1/B) Σ_b Σ_t KL(π_old ‖ π_θ), step scaled to the trust region
δ, backtracking line search that only accepts a step with that KL ≤ δ and a lower surrogate loss.
log Z moves by its own Adam step (lr_log_z) on mean_b Σ_t c_t."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from gfnjax.algos.niu import NiuAlgorithm, NiuConfig
from gfnjax.losses.pg import categorical_kl, importance_surrogate, trajectory_kl
from gfnjax.optim import trpo_step
from gfnjax.utils import check_choice, check_range


@dataclasses.dataclass(frozen=True)
class TRPOConfig(NiuConfig):
    """Trust region of both references: max_kl δ = 0.01 on the per-trajectory KL, 10 CG
    iterations, no damping, backtracking 0.5^k for k < `backtrack_iters` (10 in the Ent-PPO code,
    20 in Niu et al.'s). line_search: "ent-ppo" (accept when the per-trajectory KL(π_old ‖ π_θ)
    ≤ δ and the surrogate improves; revert if no candidate passes) or "niu" (their code: accept on
    the per-state mean of KL(π_θ ‖ π_old); keep the last candidate if none passes). The policy
    has no learning rate (the trust region sets the step):
    `lr` is not a field of this algorithm."""

    max_kl: float = 0.01
    cg_iters: int = 10
    damping: float = 0.0
    backtrack_iters: int = 10
    backtrack_ratio: float = 0.5
    line_search: str = "ent-ppo"

    SWEEPABLE: ClassVar[tuple[str, ...]] = NiuConfig.SWEEPABLE + ("max_kl", "damping")
    INACTIVE: ClassVar[tuple[str, ...]] = ("lr",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "max_kl", 0.0, 10.0, lo_open=True)
        check_range(self, "cg_iters", 1, 1000, integer=True)
        check_range(self, "damping", 0.0, 1e6)
        check_range(self, "backtrack_iters", 1, 1000, integer=True)
        check_range(self, "backtrack_ratio", 0.0, 1.0, lo_open=True, hi_open=True)
        check_choice(self, "line_search", ("ent-ppo", "niu"))


@dataclasses.dataclass(frozen=True)
class TRPO(NiuAlgorithm):
    name: ClassVar[str] = "trpo"
    Config: ClassVar[type] = TRPOConfig

    def policy_groups(self, hp):
        return {"log_z": hp["lr_log_z"]}  # the policy moves by the trust-region step

    def policy_update(self, state, traj, ev_old, adv, extra_grads, key):
        cfg, hp = self.config, state.hparams

        def loss_fn(net_params):
            ev = self.evaluation(net_params, traj)
            return importance_surrogate(ev.log_pf, ev_old.log_pf, adv, traj.mask)

        def kl_fn(net_params):
            ev = self.evaluation(net_params, traj)
            return trajectory_kl(
                ev_old.log_probs[:, :-1], ev.log_probs[:, :-1], traj.forward_mask[:, :-1], traj.mask
            )

        def state_kl_reverse(net_params):  # Niu et al.'s acceptance KL
            ev = self.evaluation(net_params, traj)
            kl = categorical_kl(
                ev.log_probs[:, :-1], ev_old.log_probs[:, :-1], traj.forward_mask[:, :-1]
            )
            return jnp.where(traj.mask, kl, 0.0).sum() / jnp.maximum(traj.mask.sum(), 1)

        niu = cfg.line_search == "niu"
        loss0 = loss_fn(state.params["net"])
        net, info = trpo_step(
            loss_fn,
            kl_fn,
            state.params["net"],
            hp["max_kl"],
            cfg.cg_iters,
            hp["damping"],
            cfg.backtrack_iters,
            cfg.backtrack_ratio,
            accept_kl_fn=state_kl_reverse if niu else None,
            revert_on_failure=not niu,
        )
        state = state.replace(params=dict(state.params, net=net))
        state = self.apply_step(state, "policy", extra_grads)
        return state, dict(info, loss=loss0)
