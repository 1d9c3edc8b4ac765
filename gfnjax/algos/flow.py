"""Shared on-policy update of the flow objectives (TB, DB, SubTB, FM).

Each iteration: sample `batch_size` trajectories with the behaviour policy (optional ε /
temperature exploration), optionally train P_B by TLM in its own Adam steps, evaluate log P_F,
log P_B and log F in one batched network pass, and take one Adam step on the objective (net and,
for TB, log Z together). `tb.py`, `db.py`, `subtb.py` and `fm.py` only define their config and
objective.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from gfnjax.algos.base import Algorithm, BaseConfig, StepInfo, TrainState, step_info
from gfnjax.rollout import Evaluation, Trajectory
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class FlowConfig(BaseConfig):
    """Fields of the flow objectives (on top of BaseConfig)."""


@dataclasses.dataclass(frozen=True)
class LogZConfig(FlowConfig):
    """lr_log_z: Adam learning rate of the learned log Z (TB); 0.1 in the Ent-PPO, Tiapkin et al.
    and gfnx hypergrid code."""

    lr_log_z: float = 0.1

    SWEEPABLE: ClassVar[tuple[str, ...]] = FlowConfig.SWEEPABLE + ("lr_log_z",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lr_log_z", 0.0, 1e3, lo_open=True)


@dataclasses.dataclass(frozen=True)
class FlowAlgorithm(Algorithm):
    uses_log_z: ClassVar[bool] = False

    def phases(self, hp):
        groups = {"net": hp["lr"]}
        if self.uses_log_z:
            groups["log_z"] = hp["lr_log_z"]
        return {"main": groups, **self.pb_phase(hp)}

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        params = {"net": self.init_net(key)}
        if self.uses_log_z:
            params["log_z"] = jnp.zeros((), jnp.float32)
        return self.make_state(params, hp)

    def log_z(self, state):
        return state.params["log_z"] if self.uses_log_z else None

    def objective(self, params, ev: Evaluation, traj: Trajectory, hp) -> jax.Array:
        raise NotImplementedError

    def loss(self, params, traj: Trajectory, hp) -> tuple[jax.Array, dict]:
        ev = self.evaluation(params["net"], traj)
        if self.config.pb == "tlm":  # P_B is trained by its own phase, fixed in the objective
            ev = ev.replace(log_pb=jax.lax.stop_gradient(ev.log_pb))
        obj = self.objective(params, ev, traj, hp)
        return obj, {"loss": obj}

    def update(self, state: TrainState, key) -> tuple[TrainState, StepInfo]:
        k_sample, k_pb = jax.random.split(key)
        traj = self.sample(state, k_sample)
        scalars = {}
        if self.config.pb == "tlm":
            state, scalars = self.backward_update(state, traj, k_pb, self.config.pb_steps)
        (_, aux), grads = jax.value_and_grad(self.loss, has_aux=True)(
            state.params, traj, state.hparams
        )
        state = self.apply_step(state, "main", grads)
        return state.replace(step=state.step + 1), step_info(traj, {**scalars, **aux})
