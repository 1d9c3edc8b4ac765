"""VarGrad: on-policy training by the log-partition variance loss (docs/adding_an_algorithm.md).

Each iteration samples `batch_size` trajectories, takes one Adam step on `log_variance` and
updates a running estimate of log Z, log Z ← d·log Z + (1 − d)·ζ̄ (d = `log_z_decay`), which the
exact metrics compare with the true log Z.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from gfnjax.algos.base import Algorithm, BaseConfig, StepInfo, TrainState, step_info
from gfnjax.utils import check_choice, check_range
from guide_examples.log_variance import log_partition_estimates, log_variance


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """log_z_decay: decay d of the running log Z estimate, in [0, 1); 0.9.
    pb: "uniform" or "learned" (trained by the same loss); no separate P_B phase, so the TLM
    fields are inactive."""

    log_z_decay: float = 0.9

    SWEEPABLE: ClassVar[tuple[str, ...]] = BaseConfig.SWEEPABLE + ("log_z_decay",)
    INACTIVE: ClassVar[tuple[str, ...]] = ("pb_lr", "pb_steps", "pb_lr_decay")

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "log_z_decay", 0.0, 1.0, hi_open=True)
        check_choice(self, "pb", ("uniform", "learned"))


@dataclasses.dataclass(frozen=True)
class VarGrad(Algorithm):
    name: ClassVar[str] = "vargrad"
    Config: ClassVar[type] = Config

    def phases(self, hp):
        return {"main": {"net": hp["lr"]}}  # one Adam over the network (P_F and a learned P_B)

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        params = {"net": self.init_net(key)}
        return self.make_state(params, hp, extra={"log_z": jnp.zeros((), jnp.float32)})

    def log_z(self, state):
        return state.extra["log_z"]

    def loss(self, net_params, traj):
        ev = self.evaluation(net_params, traj)
        args = (ev.log_pf, ev.log_pb, traj.log_reward, traj.mask)
        return log_variance(*args), jax.lax.stop_gradient(log_partition_estimates(*args).mean())

    def update(self, state: TrainState, key: jax.Array) -> tuple[TrainState, StepInfo]:
        traj = self.sample(state, key)
        (loss, zeta_mean), grads = jax.value_and_grad(self.loss, has_aux=True)(
            state.params["net"], traj
        )
        state = self.apply_step(state, "main", {"net": grads})
        d = state.hparams["log_z_decay"]
        log_z = d * state.extra["log_z"] + (1.0 - d) * zeta_mean
        state = state.replace(step=state.step + 1, extra={"log_z": log_z})
        return state, step_info(traj, {"loss": loss, "batch_log_z": zeta_mean})
