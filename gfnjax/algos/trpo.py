"""RL-T of Niu et al. (b): the costs, log Z and GAE of `niu.py` with a TRPO policy step
(Schulman et al. 2015; `losses.pg.trpo_step`): conjugate gradient (10 iterations) on the
KL(π_old ‖ π_θ) Hessian-vector product, step scaled to the trust region δ = 0.01, backtracking
line search that only accepts a step with KL ≤ δ and a lower surrogate loss."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from gfnjax.algos.niu import NiuAlgorithm, NiuConfig
from gfnjax.losses.pg import categorical_kl, trpo_step
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class TRPOConfig(NiuConfig):
    """max_kl δ = 0.01 and cg_iters = 10 (b); damping 0.1, backtrack_iters 10 and backtrack_ratio
    0.8 are the usual TRPO choices (Schulman et al. 2015 / SpinningUp), not given in (b).
    `lr` is unused by the policy (natural-gradient step) but still drives a learned P_B."""

    max_kl: float = 0.01
    cg_iters: int = 10
    damping: float = 0.1
    backtrack_iters: int = 10
    backtrack_ratio: float = 0.8

    SWEEPABLE: ClassVar[tuple[str, ...]] = NiuConfig.SWEEPABLE + ("max_kl", "damping")

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "max_kl", 0.0, None, lo_open=True)
        check_range(self, "cg_iters", 1, None, integer=True)
        check_range(self, "damping", 0.0, None)
        check_range(self, "backtrack_iters", 1, None, integer=True)
        check_range(self, "backtrack_ratio", 0.0, 1.0, lo_open=True, hi_open=True)


@dataclasses.dataclass(frozen=True)
class TRPO(NiuAlgorithm):
    name: ClassVar[str] = "trpo"
    Config: ClassVar[type] = TRPOConfig

    def optimizers(self, hp):
        out = super().optimizers(hp)
        out.pop("policy")  # the policy moves by the trust-region step, not Adam
        return out

    def policy_update(self, state, traj, ev_old, adv, key):
        cfg, hp = self.config, state.hparams
        n = jnp.maximum(traj.mask.sum(), 1)

        def loss_fn(net_params):
            ev = self.evaluation(net_params, traj)
            ratio = jnp.exp(ev.log_pf - ev_old.log_pf)
            return -jnp.mean(jnp.where(traj.mask, ratio * adv, 0.0).sum(-1))

        def kl_fn(net_params):
            ev = self.evaluation(net_params, traj)
            kl = categorical_kl(ev_old.log_probs[:, :-1], ev.log_probs[:, :-1], traj.forward_mask[:, :-1])
            return jnp.where(traj.mask, kl, 0.0).sum() / n

        net, info = trpo_step(
            loss_fn, kl_fn, state.params["net"], hp["max_kl"], cfg.cg_iters, hp["damping"],
            cfg.backtrack_iters, cfg.backtrack_ratio,
        )
        info["loss"] = loss_fn(state.params["net"])
        return state.replace(params={**state.params, "net": net}), info
