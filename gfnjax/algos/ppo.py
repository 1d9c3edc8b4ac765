"""Ent-PPO (Zykova-Myzina et al. 2026, (a); REFERENCE.md §3.7).

Freeze π_old, compute the soft rewards g_t and GAE(λ) advantages under π_old (no advantage
normalisation), then `policy_epochs` passes (× `policy_minibatches` splits of the batch, nested
lax.scan) of Adam steps on `losses.pg.ppo_surrogate`: clipped ratio surrogate minus the exact
KL(π_θ ‖ π_old) over valid actions (coefficient 1, no entropy bonus). The value net is trained
after the policy epochs (`value_epochs` × `value_minibatches`). The backward policy can be
trained by TLM (`pb="tlm"`, maximum likelihood before the forward update).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax

from gfnjax.algos.pg import PGAlgorithm, ValueConfig, minibatch_indices, take_rows
from gfnjax.losses.pg import ppo_surrogate
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class PPOConfig(ValueConfig):
    """Hypergrid defaults of (a) code: lr 1e−3, value lr 3e−4, λ = 0.7, ε = 0.2, KL coefficient 1,
    4 policy epochs (1 minibatch: the whole batch of 16), value 4 epochs × 2 splits, no advantage
    normalisation."""

    lam: float = 0.7
    value_lr: float = 3e-4
    clip_eps: float = 0.2
    kl_coef: float = 1.0
    policy_epochs: int = 4
    policy_minibatches: int = 1
    value_epochs: int = 4
    value_minibatches: int = 2

    SWEEPABLE: ClassVar[tuple[str, ...]] = ValueConfig.SWEEPABLE + ("clip_eps", "kl_coef")

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "clip_eps", 0.0, 1.0, lo_open=True, hi_open=True)
        check_range(self, "kl_coef", 0.0, None)
        check_range(self, "policy_epochs", 1, None, integer=True)
        check_range(self, "policy_minibatches", 1, self.batch_size, integer=True)
        if self.batch_size % self.policy_minibatches:
            raise ValueError(
                f"PPOConfig.policy_minibatches ({self.policy_minibatches}) must divide "
                f"batch_size ({self.batch_size})"
            )


@dataclasses.dataclass(frozen=True)
class PPO(PGAlgorithm):
    name: ClassVar[str] = "ppo"
    Config: ClassVar[type] = PPOConfig
    uses_value: ClassVar[bool] = True

    def policy_update(self, state, traj, ev_old, adv, key):
        cfg = self.config
        data = (traj, ev_old.log_probs[:, :-1], adv)

        def minibatch(state, idx):
            t, lp_old, a = take_rows(data, idx)

            def loss_fn(net_params):
                ev = self.evaluation(net_params, t)
                return ppo_surrogate(
                    ev.log_probs[:, :-1], lp_old, t.actions, a, t.forward_mask[:, :-1], t.mask,
                    state.hparams["clip_eps"], state.hparams["kl_coef"],
                )

            (loss, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["net"])
            return self._adam_step(state, "policy", "net", grads), dict(info, loss=loss)

        def epoch(state, k):
            return jax.lax.scan(minibatch, state, minibatch_indices(k, traj.batch_size, cfg.policy_minibatches))

        state, infos = jax.lax.scan(epoch, state, jax.random.split(key, cfg.policy_epochs))
        return state, jax.tree_util.tree_map(lambda x: x[-1].mean(), infos)
