"""Ent-PPO (Zykova-Myzina, Gritsaev, Tiapkin, Morozov 2026; docs/methods.md §3.7).

Freeze π_old, compute the soft rewards g_t and GAE(λ) advantages under π_old (no advantage
normalisation), then `policy_epochs` passes (× `policy_minibatches` splits of the batch) of Adam
steps on `losses.pg.ppo_surrogate`: clipped ratio surrogate minus the exact KL(π_θ ‖ π_old) over
valid actions (coefficient 1, no entropy bonus). The value net is trained after the policy epochs
(`value_epochs` × `value_minibatches`). The backward policy can be trained by TLM (`pb="tlm"`,
maximum likelihood in separate Adam steps before the forward update).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax

from gfnjax.algos.base import check_divides, minibatch_epochs
from gfnjax.algos.pg import GAEConfig, PGAlgorithm
from gfnjax.losses.pg import ppo_surrogate
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class PPOConfig(GAEConfig):
    """Hypergrid defaults of the Ent-PPO code (configs/PPO_hypergrid.yaml): lr 1e−3, value lr
    3e−4, λ = 0.7, ε = 0.2, KL coefficient 1, 4 policy epochs over the whole batch of 16, value
    4 epochs × 2 splits with targets recomputed by the current V, no advantage normalisation."""

    lam: float = 0.7
    value_lr: float = 3e-4
    clip_eps: float = 0.2
    kl_coef: float = 1.0
    policy_epochs: int = 4
    policy_minibatches: int = 1
    value_epochs: int = 4
    value_minibatches: int = 2
    value_targets: str = "recomputed"

    SWEEPABLE: ClassVar[tuple[str, ...]] = GAEConfig.SWEEPABLE + ("clip_eps", "kl_coef")

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "clip_eps", 0.0, 1e6, lo_open=True)  # ≥ 1: no clipping
        check_range(self, "kl_coef", 0.0, 1e6)
        check_range(self, "policy_epochs", 1, 1000, integer=True)
        check_divides(self, "policy_minibatches")


@dataclasses.dataclass(frozen=True)
class PPO(PGAlgorithm):
    name: ClassVar[str] = "ppo"
    Config: ClassVar[type] = PPOConfig
    uses_value: ClassVar[bool] = True

    def policy_update(self, state, traj, ev_old, adv, extra_grads, key):
        cfg = self.config

        def step(state, batch):
            t, lp_old, a = batch

            def loss_fn(net_params):
                ev = self.evaluation(net_params, t)
                return ppo_surrogate(
                    ev.log_probs[:, :-1],
                    lp_old,
                    t.actions,
                    a,
                    t.forward_mask[:, :-1],
                    t.mask,
                    state.hparams["clip_eps"],
                    state.hparams["kl_coef"],
                )

            (loss, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["net"])
            return self.apply_step(state, "policy", {"net": grads}), dict(info, loss=loss)

        data = (traj, ev_old.log_probs[:, :-1], adv)
        state, infos = minibatch_epochs(
            step, state, data, key, cfg.policy_epochs, cfg.policy_minibatches, cfg.minibatch_order
        )
        return state, jax.tree.map(lambda x: x[-1].mean(), infos)
